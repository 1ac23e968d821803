"""Label-smoothed cross-entropy over the output layer, fused and sliced to bound memory.

The training loss is PyTorch's label-smoothed cross-entropy summed over target tokens:
``(1 - e) * -log p(y) + e * mean_v(-log p(v))``. Its gradient with respect to the logits is
``softmax - (1 - e) * onehot(y) - e / V``, which the forward pass computes directly and keeps
in the logits' dtype: backward is one multiplication, and neither the float32 log-probabilities
nor their gradient are kept (about 3x less memory than autograd through ``log_softmax``: the
largest buffers of a training step). Rows are processed in slices of ``chunk_rows``, so the
float32 temporaries have the same size every step whatever the batch shape, which keeps the
heap from fragmenting.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

LOSS_CHUNK_ROWS = 1024  # target positions per slice


class _SmoothedCrossEntropy(torch.autograd.Function):
    """(logits (n, V), gold (n,), e) -> (loss_sum, nll_sum); gradient prepared in forward."""

    @staticmethod
    def forward(ctx: Any, logits: Tensor, gold: Tensor, smoothing: float) -> tuple[Tensor, Tensor]:
        logp = F.log_softmax(logits.float(), dim=-1)  # (n, V) float32
        nll = -logp.gather(1, gold[:, None]).sum()
        loss = (
            nll.clone() if smoothing == 0.0 else (1.0 - smoothing) * nll - smoothing * logp.mean(dim=-1).sum()
        )
        if ctx.needs_input_grad[0]:
            grad = logp.exp_()  # softmax, in place: (n, V)
            if smoothing:
                grad.sub_(smoothing / logits.shape[-1])
            grad.scatter_add_(1, gold[:, None], grad.new_full((gold.shape[0], 1), smoothing - 1.0))
            ctx.save_for_backward(grad.to(logits.dtype))
        ctx.mark_non_differentiable(nll)
        return loss, nll

    @staticmethod
    def backward(ctx: Any, grad_loss: Tensor, _grad_nll: Tensor) -> tuple[Tensor | None, None, None]:
        (grad,) = ctx.saved_tensors
        return grad * grad_loss.to(grad.dtype), None, None


def output_cross_entropy(
    features: Tensor,
    output: nn.Linear,
    gold: Tensor,
    smoothing: float = 0.0,
    chunk_rows: int = LOSS_CHUNK_ROWS,
) -> tuple[Tensor, Tensor]:
    """Summed (label-smoothed loss, NLL) of `output(features)` against `gold`.

    features: (N, H) decoder states of real target positions; gold: (N,) target ids.
    Returns two float32 scalars; only the first carries a gradient.
    """
    loss = features.new_zeros((), dtype=torch.float32)
    nll = features.new_zeros((), dtype=torch.float32)
    for i in range(0, features.shape[0], chunk_rows):
        part_loss, part_nll = _SmoothedCrossEntropy.apply(
            output(features[i : i + chunk_rows]), gold[i : i + chunk_rows], float(smoothing)
        )  # fmt: skip
        loss = loss + part_loss
        nll = nll + part_nll
    return loss, nll
