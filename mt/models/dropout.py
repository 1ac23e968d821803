"""Dropout (Srivastava et al., 2014): each unit zeroed with probability p in training, the kept
ones scaled by ``1 / (1 - p)``; the identity in evaluation. ``nn.Dropout`` with the faster
mask of ``mt.models.kernels.dropout``; and word dropout, the same over whole tokens."""

from __future__ import annotations

from torch import Tensor, nn

from mt.models.kernels import dropout


class Dropout(nn.Dropout):
    """``nn.Dropout(p)`` (an instance of it: code that finds or changes the dropout layers by
    that class still does) with its mask drawn by ``mt.models.kernels.dropout``; no
    parameters, so checkpoints are the same as with ``nn.Dropout``."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p) if self.training else x


class WordDropout(nn.Module):
    """Word dropout (Sennrich et al., 2016, "Edinburgh Neural Machine Translation Systems for
    WMT 16"; Nematus' ``dropout_source`` / ``dropout_target``): in training each token's whole
    embedding is zeroed with probability p, the kept ones scaled by ``1 / (1 - p)``:

        e'_t = e_t * m_t / (1 - p),   m_t ~ Bernoulli(1 - p), one draw per token

    so the network learns not to lean on any single word. The identity in evaluation, and with
    p = 0 it draws nothing from the random generator (a run without it keeps its trajectory).
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"word dropout must be in [0, 1), got {p}")
        self.p = p

    def forward(self, emb: Tensor) -> Tensor:
        """emb (..., E) -> (..., E), each token's whole row (e.g. emb[b, t] of (B, L, E)) zeroed or scaled."""
        if not self.training:
            return emb
        return dropout(emb, self.p, (*emb.shape[:-1], 1))  # one mask value per token

    def extra_repr(self) -> str:
        return f"p={self.p}"
