"""Dot attention of Luong et al. (2015), "Effective Approaches to Attention-based Neural
Machine Translation" (EMNLP): ``e_j = q^T k_j``. No parameters; needs Hq == Hk.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mt.models.attention.base import Attention
from mt.models.attention.registry import register


def dot_energies(query: Tensor, keys: Tensor) -> Tensor:
    """Energies ``q^T k_j`` (B, S) of query (B, H) against keys (B, S, H)."""
    return torch.linalg.vecdot(keys, query.unsqueeze(1))  # (B, S, H) . (B, 1, H) -> (B, S)


def require_equal_sizes(name: str, query_size: int, key_size: int) -> None:
    """Raise ValueError, with the fix, unless a dot-product mechanism's two sizes match."""
    if query_size != key_size:
        raise ValueError(
            f"attention {name!r} compares query and key directly, so it needs query_size == key_size, "
            f"got query_size={query_size} (decoder hidden) and key_size={key_size} (encoder output). "
            "Fix: make model.dec_hidden equal to the encoder output size (2 * model.enc_hidden for a "
            "bidirectional encoder), or choose model.attention.name=luong_general, which learns a "
            "projection between the two sizes."
        )


@register("luong_dot")
class LuongDotAttention(Attention):
    """Dot attention ``q^T k``; hidden_size is ignored and query_size must equal key_size."""

    def __init__(self, query_size: int, key_size: int, hidden_size: int = 0) -> None:
        super().__init__(query_size, key_size, hidden_size)
        require_equal_sizes(self.name, query_size, key_size)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """Energies (B, S) of query (B, H) against the encoder output (B, S, H)."""
        return dot_energies(query, keys)

    def score_flops(self, src_len: float) -> tuple[float, float]:
        """Nothing once per batch; ``q . k_j`` over S per step."""
        return 0.0, 2 * src_len * self.key_size
