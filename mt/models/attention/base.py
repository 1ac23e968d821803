"""The attention interface every mechanism implements, and its two pure helpers.

A mechanism scores one decoder query against every encoder position (``score``); the base
class turns those energies into weights over the real (unpadded) source positions and a
context vector (``forward``). Work that depends only on the encoder output is done once per
batch by ``precompute_keys`` and handed back to every call explicitly, so a module holds no
state between calls.

Coverage (See et al., 2017): a mechanism built with ``coverage=True`` (those whose energy layer
can take it name ``coverage`` in ``settings``) adds the running sum of past weights per source
position, ``c_t = sum_{t' < t} a_t'``, to its energies; the decoder keeps c_t in its state and
passes it to ``forward`` at every step.

Shapes: B batch, S source length, Hq query size, Hk key (encoder output) size, Hv value size.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor, nn


def masked_softmax(energies: Tensor, mask: Tensor) -> Tensor:
    """Softmax of ``energies`` over the positions where ``mask`` is True, exactly 0.0 elsewhere.

    Args:
        energies: (B, S) scores, any floating dtype.
        mask: (B, S) bool, True for a real position. Every row needs at least one True: a row
            without one gives NaN (not checked, as a check would cost a device sync per step).

    Returns:
        (B, S) weights in at least float32 (float64 stays float64), each row summing to 1.
    """
    dtype = torch.promote_types(energies.dtype, torch.float32)
    return torch.where(mask, energies, float("-inf")).softmax(dim=-1, dtype=dtype)


def attend(weights: Tensor, values: Tensor) -> Tensor:
    """Weighted sum of ``values`` (B, S, Hv) over source positions with ``weights`` (B, S) -> (B, Hv)."""
    return torch.bmm(weights.unsqueeze(1), values).squeeze(1)  # (B, 1, S) @ (B, S, Hv) -> (B, Hv)


class Attention(nn.Module, ABC):
    """Base class of the attention mechanisms; subclasses implement ``score`` and state its
    cost in ``score_flops``.

    Args:
        query_size: Hq, size of the decoder state that asks the question.
        key_size: Hk, size of an encoder output vector.
        hidden_size: A, energy size of the mechanisms that have one (additive, concat);
            0 means ``query_size``. Dot-product mechanisms ignore it.
    """

    name: ClassVar[str] = ""  # set by mt.models.attention.registry.register
    # AttentionConfig keys (beyond the sizes) that the constructor takes as keyword arguments.
    settings: ClassVar[tuple[str, ...]] = ()
    # False where the weights may sum to less than 1 (local-p's Gaussian is not renormalised).
    weights_sum_to_one: ClassVar[bool] = True

    def __init__(self, query_size: int, key_size: int, hidden_size: int = 0) -> None:
        super().__init__()
        if query_size <= 0 or key_size <= 0:
            raise ValueError(
                f"attention sizes must be positive, got query_size={query_size}, key_size={key_size}"
            )
        if hidden_size < 0:
            raise ValueError(f"attention hidden_size must be >= 0 (0 = query_size), got {hidden_size}")
        self.query_size = query_size
        self.key_size = key_size
        self.hidden_size = hidden_size or query_size
        self.coverage = False  # True: score takes the coverage vector (set by the mechanisms that can)

    def precompute_keys(self, memory: Tensor) -> Tensor:
        """Keys derived from the encoder output (B, S, Hk) alone; compute once per batch.

        Returns (B, S, *), passed back to ``score`` / ``forward`` at every decoder step.
        The default is the encoder output itself.
        """
        return memory

    @abstractmethod
    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        """Energies (B, S) of one query (B, Hq) against keys (B, S, *) from ``precompute_keys``."""

    @abstractmethod
    def score_flops(self, src_len: float) -> tuple[float, float]:
        """Forward FLOPs of the energies: (per source token in ``precompute_keys``, per decoder
        step in ``score`` over ``src_len`` positions). A multiply-add counts 2, so (m, k) @ (k, n) is
        2mkn; element-wise work is left out."""

    def flops(self, src_len: float) -> tuple[float, float]:
        """Forward FLOPs (per source token, per target token) of attending over ``src_len``
        positions: the energies plus the weighted sum of values of size Hk (the encoder output)."""
        per_source, per_step = self.score_flops(src_len)
        return per_source, per_step + 2 * src_len * self.key_size  # attend: (1, S) @ (S, Hk)

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor,
        mask: Tensor,
        step: int | Tensor | None = None,
        coverage: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Attend from ``query`` over the source.

        Args:
            query: (B, Hq) decoder state.
            keys: (B, S, *) from ``precompute_keys(memory)``.
            values: (B, S, Hv) vectors to average, usually the encoder output ``memory``.
            mask: (B, S) bool, True for a real token; every row needs at least one.
            step: the index t (from 0) of the target position being predicted, an int or (B,)
                long; the decoder passes it. Only position-dependent mechanisms (``local_m``)
                read it; global ones ignore it.
            coverage: (B, S) running sum of the past steps' weights; required when the
                mechanism was built with ``coverage=True``, ignored otherwise.

        Returns:
            context (B, Hv) in the values' dtype (the autocast dtype under autocast) and
            weights (B, S) in the softmax's dtype (float32 under autocast): the weights sum to 1
            over the real positions and are exactly 0.0 on padding.
        """
        if self.coverage:
            energies = self.score(query, keys, self.require_coverage(coverage))  # (B, S)
        else:
            energies = self.score(query, keys)  # (B, S)
        weights = masked_softmax(energies, mask)  # (B, S)
        return attend(weights.to(values.dtype), values), weights

    def require_coverage(self, coverage: Tensor | None) -> Tensor:
        """``coverage``, or a ValueError when a mechanism built with coverage is called without it."""
        if coverage is None:
            raise ValueError(
                f"{self.name} attention was built with coverage: call it with coverage=c_t (B, S), the sum of "
                "the past steps' weights (zeros at the first step)"
            )
        return coverage

    def extra_repr(self) -> str:
        cov = ", coverage=True" if self.coverage else ""
        return f"query_size={self.query_size}, key_size={self.key_size}, hidden_size={self.hidden_size}{cov}"
