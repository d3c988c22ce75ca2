"""A token embedding whose rows stay in the checkpoint file until a forward pass needs them.

Why: SmolLM2's table is 49152 x 576 (113 MB as float32, the biggest tensor of the model) while a
sentence uses a dozen of its rows, and attnviz never needs the rest (no LM head: it looks at
attention). A GGUF file stores each row as a contiguous run of quantized blocks, so `fetch_rows`
can dequantize just those bytes from the memory-mapped file (see gguf.GGUFWeights.fetch_rows).

What still sees the whole table, and pays for it when it asks: `state_dict()` holds the full
`weight` [V, D], dequantized on demand, so `save_model` writes a complete checkpoint and
`pronoun_heads.fingerprint` hashes the same bytes as for an eagerly loaded model. The module has
no parameters: code that counts weights uses `weight_shapes` below.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch
from torch import nn

# Rows per fetch when the whole table is asked for (state_dict): bounds the packed bytes copied
# out of the file at once; the float32 table itself is the answer and is allocated anyway.
_TABLE_CHUNK = 4096


class LazyEmbedding(nn.Module):
    """nn.Embedding's forward over rows fetched on demand.

    fetch_rows(ids) takes sorted unique ids, an int64 CPU tensor [U], and returns their rows as a
    float32 CPU tensor [U, D] (new memory; it may raise AttnvizError for a bad row)."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        fetch_rows: Callable[[torch.Tensor], torch.Tensor],
        dtype=torch.float32,
        device=None,
    ):
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.fetch_rows = fetch_rows
        # Holds no data: it follows .to(dtype/device) like a weight would, so the rows are cast to
        # wherever the rest of the model lives. Not saved (persistent=False).
        self.register_buffer("anchor", torch.empty(0, dtype=dtype, device=device), persistent=False)
        self.rows_fetched = 0  # rows dequantized so far (each forward fetches its unique ids once)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [B, T] -> [B, T, D]: each distinct id is fetched once, then indexed back."""
        unique, inverse = torch.unique(ids, sorted=True, return_inverse=True)  # [U], [B, T]
        if unique.numel() and (int(unique[0]) < 0 or int(unique[-1]) >= self.num_embeddings):
            raise IndexError(
                f"token ids {int(unique[0])}..{int(unique[-1])} out of range for an "
                f"embedding of {self.num_embeddings} rows"
            )
        rows = self.fetch_rows(unique.to("cpu", torch.int64))  # [U, D] float32
        self.rows_fetched += int(unique.numel())
        rows = rows.to(device=self.anchor.device, dtype=self.anchor.dtype)
        return rows[inverse.to(rows.device)]  # [B, T, D]

    def table(self) -> torch.Tensor:
        """The whole table [V, D] in the model's dtype: what nn.Embedding would hold."""
        out = torch.empty(self.num_embeddings, self.embedding_dim, dtype=self.anchor.dtype, device=self.anchor.device)
        for start in range(0, self.num_embeddings, _TABLE_CHUNK):
            ids = torch.arange(start, min(start + _TABLE_CHUNK, self.num_embeddings))
            out[start : start + len(ids)] = self.fetch_rows(ids)
        return out

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        # state_dict() is how saving and fingerprinting read a model: give them the real table.
        super()._save_to_state_dict(destination, prefix, keep_vars)
        destination[prefix + "weight"] = self.table()

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, rows read on demand"


def weight_shapes(encoder: nn.Module) -> Iterator[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every weight the encoder computes with: its parameters and its lazy tables
    (as `<module>.weight`), without reading any of them. For parameter counts (`inspect`)."""
    for name, param in encoder.named_parameters():
        yield name, tuple(param.shape)
    for name, module in encoder.named_modules():
        if isinstance(module, LazyEmbedding):
            yield f"{name}.weight", (module.num_embeddings, module.embedding_dim)
