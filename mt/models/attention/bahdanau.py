"""Additive attention of Bahdanau et al. (2015), "Neural Machine Translation by Jointly
Learning to Align and Translate" (ICLR): ``e_j = v^T tanh(W_q q + W_k k_j)``.

This is the split form of ``v^T tanh(W [q; k_j])``: ``W_k K`` depends only on the encoder
and is computed once per batch, ``W_q q`` once per decoder step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mt.models.attention.base import Attention
from mt.models.attention.registry import register


class _AdditiveEnergies(torch.autograd.Function):
    """``(2v)^T sigmoid(keys2 + query2) - sum(v)`` that saves only its inputs for backward.

    The (B, S, A) sigmoid is recomputed in backward instead of kept: over a decoder loop of
    T steps, keeping it costs T x B x S x A values (500 MB for a batch of 91 sentences of
    56 tokens), recomputing it costs one add and one sigmoid per step.
    """

    @staticmethod
    def forward(ctx, keys2: Tensor, query2: Tensor, v: Tensor) -> Tensor:  # type: ignore[override]
        v_c = v.to(keys2.dtype)
        hidden = torch.add(keys2, query2.unsqueeze(1)).sigmoid_()  # (B, S, A)
        ctx.save_for_backward(keys2, query2, v)
        return torch.matmul(hidden, 2 * v_c) - v_c.sum()  # (B, S)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:  # type: ignore[override]
        keys2, query2, v = ctx.saved_tensors
        hidden = torch.add(keys2, query2.unsqueeze(1)).sigmoid_()  # (B, S, A), recomputed
        grad = grad.to(hidden.dtype)
        grad_v = None
        if ctx.needs_input_grad[2]:
            # d/dv [(2v)^T s - sum(v)] = 2 s - 1, summed over (B, S) with the incoming grad
            grad_v = (2 * torch.einsum("bs,bsa->a", grad, hidden) - grad.sum()).to(v.dtype)  # (A,)
        # d/dz (2v)^T sigmoid(z) = 2v * s (1 - s)
        hidden = hidden.mul_(1 - hidden).mul_(grad.unsqueeze(-1)).mul_(2 * v.to(hidden.dtype))  # (B, S, A)
        grad_keys = hidden if ctx.needs_input_grad[0] else None
        grad_query = hidden.sum(1).to(query2.dtype) if ctx.needs_input_grad[1] else None  # (B, A)
        return grad_keys, grad_query, grad_v


def additive_energies(keys2: Tensor, query2: Tensor, v: Tensor) -> Tensor:
    """Energies ``v^T tanh(k_j + q)`` (B, S) from doubled inputs ``keys2 = 2k`` and ``query2 = 2q``.

    Args:
        keys2: (B, S, A) twice the projected keys.
        query2: (B, A) twice the projected query.
        v: (A,) energy vector.

    Computed in the dtype of ``keys2`` (bf16 under autocast); nothing of size (B, S, A) is
    kept for backward (see ``_AdditiveEnergies``).
    """
    # tanh(z) = 2 sigmoid(2z) - 1, so v^T tanh(z) = (2v)^T sigmoid(2z) - sum(v): the same math,
    # but torch's CPU sigmoid is several times faster than its tanh (scripts/bench_attention.py).
    # Doubling the (B, A) query and the once-per-batch keys is cheap; the sum is the only
    # (B, S, A) temporary and sigmoid runs in place on it.
    if query2.dtype != keys2.dtype:
        query2 = query2.to(keys2.dtype)
    return _AdditiveEnergies.apply(keys2, query2, v)


@register("bahdanau")
class BahdanauAttention(Attention):
    """Additive attention ``v^T tanh(W_q q + W_k k)`` with energy size A = hidden_size.

    Parameters: ``query_proj`` (W_q: Hq -> A, with bias), ``key_proj`` (W_k: Hk -> A, no bias),
    ``v`` (A -> 1, no bias); default ``nn.Linear`` initialisation (uniform).
    """

    def __init__(self, query_size: int, key_size: int, hidden_size: int = 0) -> None:
        super().__init__(query_size, key_size, hidden_size)
        self.query_proj = nn.Linear(query_size, self.hidden_size)
        self.key_proj = nn.Linear(key_size, self.hidden_size, bias=False)
        self.v = nn.Linear(self.hidden_size, 1, bias=False)

    def precompute_keys(self, memory: Tensor) -> Tensor:
        """``2 W_k K`` (B, S, A) from the encoder output (B, S, Hk); the 2 is for ``additive_energies``."""
        return self.key_proj(memory).mul_(2)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """Energies (B, S) of query (B, Hq) against keys (B, S, A) from ``precompute_keys``."""
        query2 = self.query_proj(query).mul_(2)  # (B, A)
        return additive_energies(keys, query2, self.v.weight[0])
