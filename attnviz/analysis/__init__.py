"""Analysis of an AttentionResult (NumPy only): focus ranking, word aggregation, head statistics,
rollout, comparison. Each module takes result objects and returns numbers or new results."""
