"""Predictive local attention (local-p) of Luong et al. (2015), "Effective Approaches to
Attention-based Neural Machine Translation" (EMNLP), section 3.2, eq. 9-10.

The model predicts the window's centre from the decoder state (eq. 9),

    p_t = S * sigmoid(v_p^T tanh(W_p h_t))        S = the real source length, so p_t in (0, S)

attends to the source positions s (from 0) with ``|s - p_t| <= D`` by a softmax of the inner
score (dot, general or concat) over that window, and favours positions near p_t with a
Gaussian of standard deviation ``sigma = D / 2`` (eq. 10):

    a_t(s) = softmax_window(e_s) * exp(-(s - p_t)^2 / (2 sigma^2))    inside the window
    a_t(s) = 0                                                          elsewhere (and on padding)

As in the paper, the weights are not renormalised after the Gaussian: they sum to less than 1.
Only the window is scored (see ``LocalAttention`` in ``local_m.py``).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from mt.config import AttentionConfig
from mt.models.attention.local_m import LocalAttention
from mt.models.attention.registry import register


@register("local_p")
class LocalPAttention(LocalAttention):
    """Local-p: window centre ``p_t = S sigmoid(v_p^T tanh(W_p h_t))``, Gaussian sigma = D / 2.

    Parameters: ``position_proj`` (W_p: Hq -> A, A = hidden_size or Hq, no bias), ``position_v``
    (v_p: A -> 1, no bias), and the inner score's (``inner``).
    """

    weights_sum_to_one: ClassVar[bool] = False

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
        super().__init__(query_size, key_size, hidden_size, window, score, coverage, scaled)
        self.position_proj = nn.Linear(query_size, self.hidden_size, bias=False)
        self.position_v = nn.Linear(self.hidden_size, 1, bias=False)
        self.sigma = window / 2

    def centre(self, query: Tensor, lengths: Tensor, step: int | Tensor | None) -> Tensor:
        """``p_t = S sigmoid(v_p^T tanh(W_p h_t))`` (B,), in at least float32 (not the autocast
        dtype: a bf16 sigmoid would place p_t only to within about 0.2 positions at S = 50)."""
        logit = self.position_v(torch.tanh(self.position_proj(query)))[:, 0]  # (B,)
        dtype = torch.promote_types(logit.dtype, torch.float32)
        return lengths.to(dtype) * torch.sigmoid(logit.to(dtype))

    def reweight(self, weights: Tensor, positions: Tensor, centre: Tensor) -> Tensor:
        """The window's softmax weights (B, W) times ``exp(-(s - p_t)^2 / (2 sigma^2))``."""
        distance = positions.to(centre.dtype) - centre[:, None]  # (B, W)
        return weights * torch.exp(-(distance**2) / (2 * self.sigma**2))

    def score_flops(self, src_len: float) -> tuple[float, float]:
        """The inner score's over the window, plus ``v_p^T tanh(W_p h_t)`` per step."""
        per_source, per_step = super().score_flops(src_len)
        return per_source, per_step + 2.0 * self.hidden_size * (self.query_size + 1)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, sigma={self.sigma:g}"
