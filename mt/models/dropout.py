"""Dropout (Srivastava et al., 2014): each unit zeroed with probability p in training, the kept
ones scaled by ``1 / (1 - p)``; the identity in evaluation. ``nn.Dropout`` with the faster
mask of ``mt.models.kernels.dropout``."""

from __future__ import annotations

from torch import Tensor, nn

from mt.models.kernels import dropout


class Dropout(nn.Dropout):
    """``nn.Dropout(p)`` (an instance of it: code that finds or changes the dropout layers by
    that class still does) with its mask drawn by ``mt.models.kernels.dropout``; no
    parameters, so checkpoints are the same as with ``nn.Dropout``."""

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p) if self.training else x
