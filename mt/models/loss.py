"""The training loss: label-smoothed cross-entropy of the output layer, summed over target tokens,
and the optional coverage loss of See et al. (2017).

``loss = sum_i (1 - e) * -log p(y_i) + e * mean_v(-log p(v))`` (Szegedy et al., 2016,
"Rethinking the Inception Architecture for Computer Vision", CVPR), as PyTorch's
``F.cross_entropy(..., label_smoothing=e, reduction="sum")``; ``nll = sum_i -log p(y_i)``.

The output layer and the loss run over slices of ``chunk_rows`` target positions, so the
(rows, V) float32 temporaries have the same size every step whatever the batch shape, which
keeps the heap from fragmenting. Each slice's loss is the fused kernel
``mt.models.kernels.smoothed_cross_entropy`` (gradient prepared in forward, about 3x less
memory than autograd through ``log_softmax``: the largest buffers of a training step).

Coverage loss (See et al., 2017, "Get To The Point", eq. 12-13): at each target step t the
overlap of the weights with the coverage so far, ``sum_s min(a_t(s), c_t(s))`` with
``c_t = sum_{t' < t} a_t'``, summed over the real target tokens; the trainer adds it times
``trainer.coverage_loss_weight``. It penalises attending again to source positions already
attended to.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mt.models.kernels import smoothed_cross_entropy

LOSS_CHUNK_ROWS = 1024  # target positions per slice


def output_cross_entropy(
    features: Tensor,
    output: nn.Linear,
    gold: Tensor,
    smoothing: float = 0.0,
    chunk_rows: int = LOSS_CHUNK_ROWS,
) -> tuple[Tensor, Tensor]:
    """Summed (label-smoothed loss, NLL) of ``output(features)`` against ``gold``.

    features: (N, H) decoder states of real target positions; gold: (N,) target ids.
    Returns two float32 scalars; only the first carries a gradient.
    """
    loss = features.new_zeros((), dtype=torch.float32)
    nll = features.new_zeros((), dtype=torch.float32)
    for i in range(0, features.shape[0], chunk_rows):
        logits = output(features[i : i + chunk_rows])  # (n, V)
        part_loss, part_nll = smoothed_cross_entropy(logits, gold[i : i + chunk_rows], smoothing)
        loss = loss + part_loss
        nll = nll + part_nll
    return loss, nll


def coverage_loss(attention: Tensor, tgt_mask: Tensor) -> Tensor:
    """Summed ``sum_s min(a_t(s), c_t(s))`` over the real target steps: attention (B, T, S) of
    the teacher-forced pass, tgt_mask (B, T) bool -> a scalar in the weights' dtype."""
    coverage = F.pad(attention.cumsum(dim=1)[:, :-1], (0, 0, 1, 0))  # (B, T, S): c_t = sum_{t' < t} a_t'
    overlap = torch.minimum(attention, coverage).sum(-1)  # (B, T)
    return overlap[tgt_mask].sum()
