"""Causal evidence from the native engine: the model's own readout (readout.py), heads ablated
(ablation.py) or patched from a twin (patching.py), and value zeroing (value_zeroing.py).

All run the layers themselves (forward.py) so that the clean layers below an intervention are
computed once and every head of a layer is intervened on in one batched pass (batch = heads).
The only hook in the model is MultiHeadAttention.edit_context: an edit of the per-head context
[B, H, T, Dh] right before the output projection.
"""
