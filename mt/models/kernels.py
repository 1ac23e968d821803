"""Speed kernels: the same math as a plain formula, computed faster or in less memory.

Each function here is tested equal to its formula in float64, values and gradients
(tests/test_kernels.py); the mechanism and layer files call them and read at the level of
the formula.

- ``additive_energies``: ``v^T tanh(k_j + q)`` (Bahdanau and Luong concat attention), through
  sigmoid and without keeping any (B, S, A) tensor for backward.
- ``additive_coverage_energies``: the same with a coverage term, ``v^T tanh(k_j + q + c_j w_c)``
  (See et al., 2017), by the same trick.
- ``smoothed_cross_entropy``: PyTorch's label-smoothed cross-entropy summed over rows, with its
  gradient prepared in the forward pass.
- ``gru_step`` / ``lstm_step``: one ``nn.GRUCell`` / ``nn.LSTMCell`` step whose input projection
  was computed by the caller (for all time steps at once).
- ``dropout``: ``F.dropout`` in training, its keep mask drawn by comparing uniform numbers with
  ``p`` instead of torch's CPU ``bernoulli_`` (3x slower to draw); the same distribution,
  another random stream.

Shapes: B batch, S source length, A energy size, n rows, V vocabulary, H hidden size.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

# ---------------------------------------------------------------- additive attention energies


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
        # d/dz (2v)^T sigmoid(z) = 2v * s (1 - s), with s (1 - s) = s - s^2 in place (no temporary)
        hidden = (
            hidden.addcmul_(hidden, hidden, value=-1.0)
            .mul_((2 * grad).unsqueeze(-1))
            .mul_(v.to(hidden.dtype))
        )
        grad_keys = hidden if ctx.needs_input_grad[0] else None
        grad_query = hidden.sum(1).to(query2.dtype) if ctx.needs_input_grad[1] else None  # (B, A)
        return grad_keys, grad_query, grad_v


def additive_keys(keys: Tensor) -> Tensor:
    """The projected keys (B, S, A) in the form ``additive_energies`` takes: doubled, in place.

    Call it once per batch on a fresh tensor (the output of the key projection).
    """
    return keys.mul_(2)


def additive_energies(keys: Tensor, query: Tensor, v: Tensor) -> Tensor:
    """Energies ``e_j = v^T tanh(k_j + q)`` (B, S).

    Args:
        keys: (B, S, A) projected keys from ``additive_keys`` (stored doubled, 2k).
        query: (B, A) projected query q.
        v: (A,) energy vector.

    Computed in the dtype of ``keys`` (bf16 under autocast); nothing of size (B, S, A) is
    kept for backward (see ``_AdditiveEnergies``).
    """
    # tanh(z) = 2 sigmoid(2z) - 1, so v^T tanh(z) = (2v)^T sigmoid(2z) - sum(v): the same math,
    # but torch's CPU sigmoid is several times faster than its tanh (scripts/bench_attention.py).
    # Doubling the (B, A) query and the once-per-batch keys is cheap (and exact); the sum is the
    # only (B, S, A) temporary and sigmoid runs in place on it.
    query2 = (2 * query).to(keys.dtype)  # (B, A)
    return _AdditiveEnergies.apply(keys, query2, v)


class _AdditiveCoverageEnergies(torch.autograd.Function):
    """``(2v)^T sigmoid(keys2 + query2 + coverage w_c2) - sum(v)``, saving only its inputs for
    backward (the (B, S, A) sigmoid is recomputed, as in ``_AdditiveEnergies``)."""

    @staticmethod
    def forward(ctx, keys2: Tensor, query2: Tensor, coverage: Tensor, w_c2: Tensor, v: Tensor) -> Tensor:  # type: ignore[override]
        v_c = v.to(keys2.dtype)
        hidden = _coverage_sum(keys2, query2, coverage, w_c2).sigmoid_()  # (B, S, A)
        ctx.save_for_backward(keys2, query2, coverage, w_c2, v)
        return torch.matmul(hidden, 2 * v_c) - v_c.sum()  # (B, S)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        keys2, query2, coverage, w_c2, v = ctx.saved_tensors
        hidden = _coverage_sum(keys2, query2, coverage, w_c2).sigmoid_()  # (B, S, A), recomputed
        grad = grad.to(hidden.dtype)
        grad_v = None
        if ctx.needs_input_grad[4]:
            grad_v = (2 * torch.einsum("bs,bsa->a", grad, hidden) - grad.sum()).to(v.dtype)  # (A,)
        # d/dz (2v)^T sigmoid(z) = 2v * s (1 - s), z = keys2 + query2 + coverage w_c2
        dz = (
            hidden.addcmul_(hidden, hidden, value=-1.0)
            .mul_((2 * grad).unsqueeze(-1))
            .mul_(v.to(hidden.dtype))
        )
        needs = ctx.needs_input_grad
        grad_query = dz.sum(1).to(query2.dtype) if needs[1] else None  # (B, A)
        grad_coverage = torch.matmul(dz, w_c2).to(coverage.dtype) if needs[2] else None  # (B, S)
        grad_w_c2 = torch.einsum("bsa,bs->a", dz, coverage).to(w_c2.dtype) if needs[3] else None  # (A,)
        return dz if needs[0] else None, grad_query, grad_coverage, grad_w_c2, grad_v


def _coverage_sum(keys2: Tensor, query2: Tensor, coverage: Tensor, w_c2: Tensor) -> Tensor:
    """``keys2 + query2 + coverage w_c2`` (B, S, A), one new tensor."""
    return torch.add(keys2, query2.unsqueeze(1)).addcmul_(coverage.unsqueeze(-1), w_c2)


def additive_coverage_energies(
    keys: Tensor, query: Tensor, v: Tensor, coverage: Tensor, w_c: Tensor
) -> Tensor:
    """Energies ``e_j = v^T tanh(k_j + q + c_j w_c)`` (B, S): ``additive_energies`` with a coverage term.

    Args:
        keys: (B, S, A) projected keys from ``additive_keys`` (stored doubled, 2k).
        query: (B, A) projected query q.
        v: (A,) energy vector.
        coverage: (B, S) coverage c_j, the running sum of past attention weights.
        w_c: (A,) coverage vector, the weight of c_j in each energy unit.

    Computed in the dtype of ``keys``; nothing of size (B, S, A) is kept for backward.
    """
    query2 = (2 * query).to(keys.dtype)  # (B, A), see additive_energies
    coverage_c = coverage.to(keys.dtype)  # (B, S)
    return _AdditiveCoverageEnergies.apply(keys, query2, coverage_c, (2 * w_c).to(keys.dtype), v)


# ---------------------------------------------------------------- label-smoothed cross-entropy


class _SmoothedCrossEntropy(torch.autograd.Function):
    """(logits (n, V), gold (n,), e) -> (loss_sum, nll_sum); gradient prepared in forward.

    The gradient of the loss with respect to the logits is ``softmax - (1 - e) onehot(y) - e / V``:
    the forward pass computes it from the log-probabilities it already has and keeps it in the
    logits' dtype, so backward is one multiplication and neither the float32 log-probabilities
    nor their gradient are kept (about 3x less memory than autograd through ``log_softmax``).
    """

    @staticmethod
    def forward(ctx: Any, logits: Tensor, gold: Tensor, smoothing: float) -> tuple[Tensor, Tensor]:
        dtype = torch.promote_types(logits.dtype, torch.float32)  # float64 stays float64
        logp = F.log_softmax(logits.to(dtype), dim=-1)  # (n, V) at least float32
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


def smoothed_cross_entropy(logits: Tensor, gold: Tensor, smoothing: float = 0.0) -> tuple[Tensor, Tensor]:
    """Summed ``(1 - e) * -log p(y) + e * mean_v(-log p(v))`` and summed ``-log p(y)``.

    Equal to ``F.cross_entropy(logits, gold, label_smoothing=e, reduction="sum")`` and the same
    without smoothing. logits (n, V) any float dtype, gold (n,) long -> two scalars in at least
    float32 (float64 logits give float64); only the first carries a gradient.
    """
    return _SmoothedCrossEntropy.apply(logits, gold, float(smoothing))


# ---------------------------------------------------------------- recurrent steps, input projected


def gru_step(gx: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor) -> Tensor:
    """``nn.GRUCell`` with gx = W_ih x + b_ih given: gx (B, 3H), h (B, H) -> new h (B, H).

    ``r, z = sigmoid(gx_rz + W_hr,hz h + b_hr,hz)``; ``n = tanh(gx_n + r (W_hn h + b_hn))``;
    ``h' = (1 - z) n + z h``, in PyTorch's gate order (r, z, n).
    """
    # F.linear on the parameter itself (not a view such as w_hh.t()): autocast caches its
    # bf16 copy for the whole decoder loop instead of casting and saving it once per step.
    gh = F.linear(h, w_hh, b_hh)  # (B, 3H)
    H = h.size(1)
    rz = torch.sigmoid(gx[:, : 2 * H] + gh[:, : 2 * H])
    r, z = rz[:, :H], rz[:, H:]
    n = torch.tanh(gx[:, 2 * H :] + r * gh[:, 2 * H :])
    return n + z * (h - n)


def lstm_step(gx: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor) -> tuple[Tensor, Tensor]:
    """``nn.LSTMCell`` with gx = W_ih x + b_ih given: gx (B, 4H), h, c (B, H) -> new h, c (B, H).

    ``i, f, g, o = sigma(gx + W_hh h + b_hh)`` (sigmoid, tanh for g); ``c' = f c + i g``;
    ``h' = o tanh(c')``, in PyTorch's gate order (i, f, g, o).
    """
    gates = gx + F.linear(h, w_hh, b_hh)  # (B, 4H), see gru_step
    H = h.size(1)
    i = torch.sigmoid(gates[:, :H])
    f = torch.sigmoid(gates[:, H : 2 * H])
    g = torch.tanh(gates[:, 2 * H : 3 * H])
    o = torch.sigmoid(gates[:, 3 * H :])
    c = f * c + i * g
    return o * torch.tanh(c), c


# ---------------------------------------------------------------- dropout


def dropout(x: Tensor, p: float, mask_shape: tuple[int, ...] | None = None) -> Tensor:
    """Inverted dropout: ``x * m / (1 - p)``, ``m_i ~ Bernoulli(1 - p)`` independent, any shape;
    ``mask_shape`` (default ``x.shape``) broadcast against ``x`` drops whole slices (word dropout:
    ``(B, L, 1)`` for ``(B, L, E)`` embeddings).

    ``m_i = [u_i >= p]`` with ``u_i ~ U[0, 1)`` in float32: the distribution of ``F.dropout``
    (up to the 2^-24 grid of u), drawn 3x faster on CPU than torch's ``bernoulli_``: forward
    and backward 1.3-1.7x faster than ``F.dropout`` (scripts/bench_dropout.py). The product
    and the scaling are computed as torch's ``native_dropout`` computes them, so a given mask
    gives torch's values, bf16 included.
    """
    if p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = torch.rand(mask_shape or x.shape, device=x.device) >= p  # (...) bool, P(keep) = 1 - p
    return (x * keep).mul_(1.0 / (1.0 - p))
