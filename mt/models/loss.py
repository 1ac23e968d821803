"""The training loss: label-smoothed cross-entropy of the output layer, summed over target tokens.

``loss = sum_i (1 - e) * -log p(y_i) + e * mean_v(-log p(v))`` (Szegedy et al., 2016,
"Rethinking the Inception Architecture for Computer Vision", CVPR), as PyTorch's
``F.cross_entropy(..., label_smoothing=e, reduction="sum")``; ``nll = sum_i -log p(y_i)``.

The output layer and the loss run over slices of ``chunk_rows`` target positions, so the
(rows, V) float32 temporaries have the same size every step whatever the batch shape, which
keeps the heap from fragmenting. Each slice's loss is the fused kernel
``mt.models.kernels.smoothed_cross_entropy`` (gradient prepared in forward, about 3x less
memory than autograd through ``log_softmax``: the largest buffers of a training step).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

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
