"""General attention of Luong et al. (2015), "Effective Approaches to Attention-based Neural
Machine Translation" (EMNLP): ``e_j = q^T W k_j``; works for any Hq and Hk. With
``scaled=True``: ``e_j = q^T W k_j / sqrt(Hq)``, the scaling of Vaswani et al. (2017), which
keeps the softmax out of saturation as the energies grow in training (docs/attention.md).

``W K`` depends only on the encoder and is computed once per batch; each step is then a dot
product.
"""

from __future__ import annotations

import math
from typing import ClassVar

from torch import Tensor, nn

from mt.models.attention.base import Attention
from mt.models.attention.luong_dot import dot_energies
from mt.models.attention.registry import register


@register("luong_general")
class LuongGeneralAttention(Attention):
    """Bilinear attention ``q^T W k``; hidden_size is ignored.

    Parameter: ``w`` (W: Hk -> Hq, no bias); default ``nn.Linear`` initialisation.
    """

    settings: ClassVar[tuple[str, ...]] = ("scaled",)

    def __init__(self, query_size: int, key_size: int, hidden_size: int = 0, scaled: bool = False) -> None:
        super().__init__(query_size, key_size, hidden_size)
        self.w = nn.Linear(key_size, query_size, bias=False)
        self.scale = 1.0 / math.sqrt(query_size) if scaled else 1.0

    def precompute_keys(self, memory: Tensor) -> Tensor:
        """``K W^T`` (B, S, Hq) from the encoder output (B, S, Hk)."""
        return self.w(memory)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """Energies (B, S) of query (B, Hq) against keys (B, S, Hq) from ``precompute_keys``."""
        energies = dot_energies(query, keys)
        return energies * self.scale if self.scale != 1.0 else energies

    def score_flops(self, src_len: float) -> tuple[float, float]:
        """``K W^T`` once per source token; ``q . k_j`` over S per step."""
        return 2.0 * self.query_size * self.key_size, 2 * src_len * self.query_size

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale={self.scale:.4g}"
