"""Renderers: they take an AttentionResult and draw it; they never run a model."""
