"""Additive attention of Bahdanau et al. (2015), "Neural Machine Translation by Jointly
Learning to Align and Translate" (ICLR): ``e_j = v^T tanh(W_q q + W_k k_j)``.

This is the split form of ``v^T tanh(W [q; k_j])``: ``W_k K`` depends only on the encoder
and is computed once per batch, ``W_q q`` once per decoder step. The energies come from the
kernel ``mt.models.kernels.additive_energies`` (same math, faster and lighter on memory).

With ``coverage=True`` (See et al., 2017, "Get To The Point: Summarization with
Pointer-Generator Networks", ACL, eq. 11) the coverage ``c_j = sum_{t' < t} a_t'(j)`` of each
source position enters the energy: ``e_j = v^T tanh(W_q q + W_k k_j + w_c c_j)``.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from mt.models.attention.base import Attention
from mt.models.attention.registry import register
from mt.models.kernels import additive_coverage_energies, additive_energies, additive_keys


@register("bahdanau")
class BahdanauAttention(Attention):
    """Additive attention ``v^T tanh(W_q q + W_k k [+ w_c c])`` with energy size A = hidden_size.

    Parameters: ``query_proj`` (W_q: Hq -> A, with bias), ``key_proj`` (W_k: Hk -> A, no bias),
    ``v`` (A -> 1, no bias), with coverage ``coverage_proj`` (w_c: 1 -> A, no bias); default
    ``nn.Linear`` initialisation (uniform).
    """

    settings: ClassVar[tuple[str, ...]] = ("coverage",)

    def __init__(self, query_size: int, key_size: int, hidden_size: int = 0, coverage: bool = False) -> None:
        super().__init__(query_size, key_size, hidden_size)
        self.query_proj = nn.Linear(query_size, self.hidden_size)
        self.key_proj = nn.Linear(key_size, self.hidden_size, bias=False)
        self.v = nn.Linear(self.hidden_size, 1, bias=False)
        if coverage:  # created last: the other parameters draw the same values as without it
            self.coverage = True
            self.coverage_proj = nn.Linear(1, self.hidden_size, bias=False)

    def precompute_keys(self, memory: Tensor) -> Tensor:
        """``W_k K`` (B, S, A) from the encoder output (B, S, Hk), in the kernel's layout."""
        return additive_keys(self.key_proj(memory))

    def score(self, query: Tensor, keys: Tensor, coverage: Tensor | None = None) -> Tensor:
        """``e_j = v^T tanh(W_q q + W_k k_j [+ w_c c_j])`` (B, S) of query (B, Hq) against keys
        (B, S, A), with coverage c (B, S) when given."""
        if coverage is None:
            return additive_energies(keys, self.query_proj(query), self.v.weight[0])
        w_c = self.coverage_proj.weight[:, 0]  # (A,)
        return additive_coverage_energies(keys, self.query_proj(query), self.v.weight[0], coverage, w_c)

    def score_flops(self, src_len: float) -> tuple[float, float]:
        """``W_k K`` once per source token; ``W_q q``, ``v^T tanh(.)`` (and ``w_c c``) over S per step."""
        a = self.hidden_size
        per_step = 2.0 * a * self.query_size + 2 * src_len * a
        return 2.0 * a * self.key_size, per_step + (2 * src_len * a if self.coverage else 0)
