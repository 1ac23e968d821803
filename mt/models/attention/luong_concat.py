"""Concat attention of Luong et al. (2015), "Effective Approaches to Attention-based Neural
Machine Translation" (EMNLP): ``e_j = v^T tanh(W [q; k_j] + b)`` with one matrix W of shape
(A, Hq + Hk).

W's columns split into a query part and a key part, ``W [q; k] = W_q q + W_k k``, so the key
part is computed once per batch and ``[q; k_j]`` is never built for every pair. The energies
come from the kernel ``mt.models.kernels.additive_energies``, as Bahdanau's do.

With ``coverage=True`` (See et al., 2017, eq. 11) the coverage ``c_j = sum_{t' < t} a_t'(j)``
enters the energy: ``e_j = v^T tanh(W [q; k_j] + w_c c_j + b)``.
"""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from mt.models.attention.base import Attention
from mt.models.attention.registry import register
from mt.models.kernels import additive_coverage_energies, additive_energies, additive_keys


@register("luong_concat")
class LuongConcatAttention(Attention):
    """Concat attention ``v^T tanh(W [q; k] [+ w_c c] + b)`` with energy size A = hidden_size.

    Parameters: ``w`` (W: Hq + Hk -> A with bias b; columns ``[:Hq]`` act on the query,
    ``[Hq:]`` on the key), ``v`` (A -> 1, no bias), with coverage ``coverage_proj`` (w_c: 1 -> A,
    no bias); default ``nn.Linear`` initialisation.
    """

    settings: ClassVar[tuple[str, ...]] = ("coverage",)

    def __init__(self, query_size: int, key_size: int, hidden_size: int = 0, coverage: bool = False) -> None:
        super().__init__(query_size, key_size, hidden_size)
        self.w = nn.Linear(query_size + key_size, self.hidden_size)
        self.v = nn.Linear(self.hidden_size, 1, bias=False)
        if coverage:  # created last: the other parameters draw the same values as without it
            self.coverage = True
            self.coverage_proj = nn.Linear(1, self.hidden_size, bias=False)

    def precompute_keys(self, memory: Tensor) -> Tensor:
        """``W_k K + b`` (B, S, A) from the encoder output (B, S, Hk), in the kernel's layout."""
        w_k = self.w.weight[:, self.query_size :]  # (A, Hk)
        return additive_keys(F.linear(memory, w_k, self.w.bias))

    def score(self, query: Tensor, keys: Tensor, coverage: Tensor | None = None) -> Tensor:
        """``e_j = v^T tanh(W_q q + W_k k_j [+ w_c c_j] + b)`` (B, S) of query (B, Hq) against
        keys (B, S, A), with coverage c (B, S) when given."""
        w_q = self.w.weight[:, : self.query_size]  # (A, Hq)
        if coverage is None:
            return additive_energies(keys, F.linear(query, w_q), self.v.weight[0])
        w_c = self.coverage_proj.weight[:, 0]  # (A,)
        return additive_coverage_energies(keys, F.linear(query, w_q), self.v.weight[0], coverage, w_c)

    def score_flops(self, src_len: float) -> tuple[float, float]:
        """``W_k K`` once per source token; ``W_q q``, ``v^T tanh(.)`` (and ``w_c c``) over S per step."""
        a = self.hidden_size
        per_step = 2.0 * a * self.query_size + 2 * src_len * a
        return 2.0 * a * self.key_size, per_step + (2 * src_len * a if self.coverage else 0)
