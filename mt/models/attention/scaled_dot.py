"""Scaled dot-product attention of Vaswani et al. (2017), "Attention Is All You Need"
(NeurIPS), with a single head: ``e_j = q^T k_j / sqrt(d_k)``. No parameters; needs Hq == Hk.
"""

from __future__ import annotations

import math

from torch import Tensor

from mt.models.attention.base import Attention
from mt.models.attention.luong_dot import dot_energies, require_equal_sizes
from mt.models.attention.registry import register


@register("scaled_dot")
class ScaledDotAttention(Attention):
    """Scaled dot attention ``q^T k / sqrt(d_k)`` with d_k = key_size; hidden_size is ignored."""

    def __init__(self, query_size: int, key_size: int, hidden_size: int = 0) -> None:
        super().__init__(query_size, key_size, hidden_size)
        require_equal_sizes(self.name, query_size, key_size)
        self.scale = 1.0 / math.sqrt(key_size)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """Energies (B, S) of query (B, H) against the encoder output (B, S, H)."""
        return dot_energies(query, keys) * self.scale

    def score_flops(self, src_len: float) -> tuple[float, float]:
        """Nothing once per batch; ``q . k_j`` over S per step (the scaling is element-wise)."""
        return 0.0, 2 * src_len * self.key_size

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale={self.scale:.4g}"
