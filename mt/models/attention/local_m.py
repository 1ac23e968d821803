"""Monotonic local attention (local-m) of Luong et al. (2015), "Effective Approaches to
Attention-based Neural Machine Translation" (EMNLP), section 3.2, and the window machinery it
shares with local-p.

At target step t the decoder attends only to the window ``[p_t - D, p_t + D]`` of source
positions, with ``p_t = t`` (source and target assumed roughly monotonically aligned), clipped
to the sentence: ``p_t = min(t, S - 1)`` with S the real source length and positions from 0.
Inside the window the weights are a softmax of an inner score ``e_s`` (dot, general or concat,
eq. 8):

    a_t(s) = exp(e_s) / sum_{s' in window} exp(e_s')    for s in [p_t - D, p_t + D], s < S
    a_t(s) = 0                                            elsewhere (and on padding)

Only the window is scored: each step gathers a (B, 2D + 1) slice of keys and values, scores
it and scatters the weights back into (B, S), so its cost does not grow with the source.

With ``scaled=True`` (the YAMLs' default) the ``general`` inner score is divided by sqrt(Hq) and
``dot`` becomes scaled dot (over sqrt(Hk)), as for the global mechanisms: unscaled, their
energies grow with the decoder state and the softmax saturates (docs/attention.md).

Coverage (See et al., 2017) works with the concat inner score only (the one with an energy
layer): the window's slice of the coverage vector enters its energies.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from mt.config import AttentionConfig
from mt.errors import ConfigError
from mt.models.attention.base import Attention, attend, masked_softmax
from mt.models.attention.luong_concat import LuongConcatAttention
from mt.models.attention.luong_dot import LuongDotAttention
from mt.models.attention.luong_general import LuongGeneralAttention
from mt.models.attention.registry import register
from mt.models.attention.scaled_dot import ScaledDotAttention

# The inner score functions of eq. 8, by their AttentionConfig.score name.
INNER_SCORES: dict[str, type[Attention]] = {
    "dot": LuongDotAttention,
    "general": LuongGeneralAttention,
    "concat": LuongConcatAttention,
}


def inner_score(
    score: str, query_size: int, key_size: int, hidden_size: int, coverage: bool, scaled: bool
) -> Attention:
    """The inner score module ``score`` of a local mechanism, scaled and with coverage as asked."""
    if score == "dot" and scaled:
        return ScaledDotAttention(query_size, key_size, hidden_size)
    extra: dict[str, bool] = {"coverage": True} if coverage else {}
    if score == "general":
        extra["scaled"] = scaled
    return INNER_SCORES[score](query_size, key_size, hidden_size, **extra)


class LocalAttention(Attention):
    """Attention over a window ``[p_t - D, p_t + D]`` of the source; subclasses say where its
    centre p_t is (``centre``) and may reweight the window (``reweight``).

    Args (beyond the sizes): window: D >= 1, the half-width; score: the inner score function,
    ``dot`` | ``general`` | ``concat`` (a submodule ``inner``, with its own parameters);
    coverage: the inner score takes the coverage vector (``concat`` only); scaled: ``general``
    over sqrt(Hq), ``dot`` over sqrt(Hk) (``concat`` is bounded by its tanh and ignores it).
    """

    settings: ClassVar[tuple[str, ...]] = ("window", "score", "coverage", "scaled")

    def __init__(
        self,
        query_size: int,
        key_size: int,
        hidden_size: int = 0,
        window: int = AttentionConfig.window,
        score: str = AttentionConfig.score,
        coverage: bool = False,
        scaled: bool = False,
    ) -> None:
        super().__init__(query_size, key_size, hidden_size)
        if window < 1:
            raise ValueError(f"local attention window D must be at least 1, got {window}")
        if score not in INNER_SCORES:
            raise ValueError(f"local attention score must be one of {', '.join(INNER_SCORES)}, got {score!r}")
        if coverage and score != "concat":
            raise ConfigError(
                f"config error at `model.attention.coverage`: the {score} score has no energy layer to take "
                "the coverage vector; use model.attention.score=concat or model.attention.coverage=false"
            )
        self.window = window
        self.coverage = coverage
        self.inner = inner_score(score, query_size, key_size, hidden_size, coverage, scaled)

    def precompute_keys(self, memory: Tensor) -> Tensor:
        """The inner score's keys (B, S, *), once per batch."""
        return self.inner.precompute_keys(memory)

    def score(self, query: Tensor, keys: Tensor, coverage: Tensor | None = None) -> Tensor:
        """The inner energies (B, S) at every position (``forward`` scores only the window)."""
        return self.inner.score(query, keys) if coverage is None else self.inner.score(query, keys, coverage)

    def centre(self, query: Tensor, lengths: Tensor, step: int | Tensor | None) -> Tensor:
        """p_t (B,) in the weights' dtype, within [0, S] for real length S (lengths (B,) long)."""
        raise NotImplementedError

    def reweight(self, weights: Tensor, positions: Tensor, centre: Tensor) -> Tensor:
        """The window's weights (B, W) at source positions (B, W) around p_t (B,); as they are here."""
        return weights

    def slots(self, src_len: float) -> int:
        """W = min(2D + 1, S): the window's width, the positions each step scores."""
        return int(min(2 * self.window + 1, src_len))

    def score_flops(self, src_len: float) -> tuple[float, float]:
        """The inner score's: once per source token, and per step over the W window positions."""
        return self.inner.score_flops(self.slots(src_len))

    def flops(self, src_len: float) -> tuple[float, float]:
        """The energies plus the weighted sum over the W window positions (not all S)."""
        per_source, per_step = self.score_flops(src_len)
        return per_source, per_step + 2 * self.slots(src_len) * self.key_size

    def forward(
        self,
        query: Tensor,
        keys: Tensor,
        values: Tensor,
        mask: Tensor,
        step: int | Tensor | None = None,
        coverage: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Attend over the window around p_t; weights (B, S) are exactly 0 outside it and on padding."""
        B, S = mask.shape
        D, W = self.window, self.slots(S)
        dtype = torch.promote_types(query.dtype, torch.float32)  # that of masked_softmax
        centre = self.centre(query, mask.sum(-1), step).to(dtype)  # (B,) p_t
        # The W slots [lo, lo + W) hold every s with |s - p_t| <= D inside [0, S - 1].
        lo = (torch.round(centre).long() - D).clamp(min=0, max=S - W)  # (B,)
        positions = lo[:, None] + torch.arange(W, device=mask.device)  # (B, W)
        inside = mask.gather(1, positions) & ((positions - centre[:, None]).abs() <= D)  # (B, W)
        rows = (positions + S * torch.arange(B, device=mask.device)[:, None]).flatten()  # (B * W,) in (B * S)
        # index_select of whole rows: several times faster than gather with an expanded index
        window_keys = keys.flatten(0, 1).index_select(0, rows).view(B, W, -1)  # (B, W, *)
        window_values = values.flatten(0, 1).index_select(0, rows).view(B, W, -1)  # (B, W, Hv)
        if self.coverage:
            window_coverage = self.require_coverage(coverage).gather(1, positions)  # (B, W)
            energies = self.inner.score(query, window_keys, window_coverage)  # (B, W)
        else:
            energies = self.inner.score(query, window_keys)  # (B, W)
        weights = self.reweight(masked_softmax(energies, inside), positions, centre)  # (B, W)
        context = attend(weights.to(values.dtype), window_values)  # (B, Hv)
        return context, weights.new_zeros(B, S).scatter(1, positions, weights)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, window={self.window}"


@register("local_m")
class LocalMAttention(LocalAttention):
    """Monotonic local attention: window centre ``p_t = min(t, S - 1)`` from the decoder step t.

    ``forward`` needs ``step`` (an int, or (B,) long); the decoder passes it at every step.
    """

    def centre(self, query: Tensor, lengths: Tensor, step: int | Tensor | None) -> Tensor:
        """``p_t = min(t, S - 1)`` (B,) for real lengths S (B,)."""
        if step is None:
            raise ValueError(
                "local_m attention needs the decoder step: call it as attention(query, keys, values, mask, step=t)"
            )
        t = torch.as_tensor(step, device=lengths.device).expand_as(lengths)
        return torch.minimum(t, lengths - 1)
