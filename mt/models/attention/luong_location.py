"""Location-based attention of Luong et al. (2015), "Effective Approaches to Attention-based
Neural Machine Translation" (EMNLP), section 3.1 ("location-based"): the weights come from the
decoder state alone, not from comparing it with the source,

    a_t = softmax(W_a h_t)        W_a: Hq -> L, one row of W_a per source position s < L

restricted to the sentence: positions past its end (padding) get weight 0. L is fixed by the
config (``model.attention.max_src_len``, data.max_len + 1 so that every training source fits).
A longer source, say at test time, is attended over its first L positions only: positions from
L on get weight exactly 0 (a warning says so), since W_a has no row for them.
"""

from __future__ import annotations

import warnings
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mt.config import AttentionConfig
from mt.models.attention.base import Attention
from mt.models.attention.registry import register


@register("luong_location")
class LuongLocationAttention(Attention):
    """Location attention ``softmax(W_a h_t)`` over positions s < min(S, max_src_len).

    Parameter: ``w`` (W_a: Hq -> max_src_len, no bias); default ``nn.Linear`` initialisation.
    hidden_size is ignored, and the keys are not used (only their length S).
    """

    settings: ClassVar[tuple[str, ...]] = ("max_src_len",)

    def __init__(
        self,
        query_size: int,
        key_size: int,
        hidden_size: int = 0,
        max_src_len: int = AttentionConfig.max_src_len,
    ) -> None:
        super().__init__(query_size, key_size, hidden_size)
        if max_src_len < 1:
            raise ValueError(f"luong_location needs max_src_len >= 1, got {max_src_len}")
        self.max_src_len = max_src_len
        self.w = nn.Linear(query_size, max_src_len, bias=False)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """Energies ``W_a h_t`` (B, S) for the first min(S, L) positions, 0 after them."""
        S = keys.size(1)
        energies = F.linear(query, self.w.weight[: min(S, self.max_src_len)])  # (B, min(S, L))
        return F.pad(energies, (0, S - energies.size(1)))  # (B, S)

    def forward(
        self, query: Tensor, keys: Tensor, values: Tensor, mask: Tensor, step: int | Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """As ``Attention.forward``, with positions from max_src_len on masked out."""
        S = mask.size(1)
        if S > self.max_src_len:
            warnings.warn(
                f"luong_location attends over the first model.attention.max_src_len={self.max_src_len} "
                f"source positions only; this batch has sources of up to {S} tokens",
                stacklevel=2,
            )
            mask = mask & (torch.arange(S, device=mask.device) < self.max_src_len)
        return super().forward(query, keys, values, mask, step)

    def score_flops(self, src_len: float) -> tuple[float, float]:
        """Nothing once per batch; ``W_a h_t`` over min(S, max_src_len) positions per step."""
        return 0.0, 2.0 * self.query_size * min(src_len, self.max_src_len)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, max_src_len={self.max_src_len}"
