"""Each speed kernel of mt.models.kernels equals its plain formula: values and gradients in
float64 against autograd through the formula (or PyTorch's own module), gradcheck where cheap."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mt.models.kernels import (
    additive_energies,
    additive_keys,
    dropout,
    gru_step,
    lstm_step,
    smoothed_cross_entropy,
)

f64 = torch.float64


def assert_same_grads(ours: Tensor, reference: Tensor, inputs: tuple[Tensor, ...], seed: int = 7) -> None:
    """Values equal, and gradients of a random weighting of the outputs equal for every input."""
    torch.testing.assert_close(ours, reference)
    upstream = torch.randn(ours.shape, dtype=ours.dtype, generator=torch.Generator().manual_seed(seed))
    got = torch.autograd.grad((ours * upstream).sum(), inputs)
    want = torch.autograd.grad((reference * upstream).sum(), inputs)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b)


# ---------------------------------------------------------------- additive attention energies


def additive_inputs(B: int = 3, S: int = 5, A: int = 4) -> tuple[Tensor, Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    keys = torch.randn(B, S, A, dtype=f64, generator=g, requires_grad=True)
    query = torch.randn(B, A, dtype=f64, generator=g, requires_grad=True)
    v = torch.randn(A, dtype=f64, generator=g, requires_grad=True)
    return keys, query, v


def test_additive_energies_equal_v_tanh_k_plus_q() -> None:
    """``e_j = v^T tanh(k_j + q)``: values and the gradients of keys, query and v (the keys
    through ``additive_keys``, as the mechanisms pass them)."""
    keys, query, v = additive_inputs()
    ours = additive_energies(additive_keys(keys.clone()), query, v)  # (B, S)
    reference = torch.tanh(keys + query[:, None]) @ v  # (B, S, A) @ (A,)
    assert_same_grads(ours, reference, (keys, query, v))


def test_additive_energies_gradcheck() -> None:
    keys, query, v = additive_inputs(2, 3, 4)
    assert torch.autograd.gradcheck(
        lambda k, q, w: additive_energies(additive_keys(k.clone()), q, w), (keys, query, v)
    )  # backward is hand-written and first order only: no gradgradcheck


def test_additive_energies_without_some_gradients() -> None:
    """Inputs that need no gradient (v frozen, keys from a no-grad encoder) get none."""
    keys, query, v = additive_inputs()
    keys2 = additive_keys(keys.detach().clone())
    frozen = v.detach()
    (grad_query,) = torch.autograd.grad(additive_energies(keys2, query, frozen).sum(), (query,))
    reference = torch.autograd.grad((torch.tanh(keys.detach() + query[:, None]) @ frozen).sum(), (query,))[0]
    torch.testing.assert_close(grad_query, reference)


def test_additive_energies_bf16_keys_compute_in_bf16() -> None:
    keys, query, v = (t.detach().float() for t in additive_inputs())
    out = additive_energies(additive_keys(keys.bfloat16()), query, v)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), torch.tanh(keys + query[:, None]) @ v, rtol=0.05, atol=0.05)


# ---------------------------------------------------------------- label-smoothed cross-entropy


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_smoothed_cross_entropy_equals_pytorch(smoothing: float) -> None:
    """Loss and NLL equal ``F.cross_entropy(..., label_smoothing=e, reduction='sum')`` and the
    unsmoothed sum; the loss's gradient equals autograd through F.cross_entropy."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(9, 13, dtype=f64, generator=g, requires_grad=True)
    gold = torch.randint(0, 13, (9,), generator=g)
    loss, nll = smoothed_cross_entropy(logits, gold, smoothing)
    reference = F.cross_entropy(logits, gold, label_smoothing=smoothing, reduction="sum")
    torch.testing.assert_close(nll, F.cross_entropy(logits, gold, reduction="sum"))
    assert not nll.requires_grad
    torch.testing.assert_close(loss, reference)
    (ours,) = torch.autograd.grad(2.5 * loss, (logits,))  # a non-unit upstream gradient
    (theirs,) = torch.autograd.grad(2.5 * reference, (logits,))
    torch.testing.assert_close(ours, theirs)


def test_smoothed_cross_entropy_gradcheck() -> None:
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 6, dtype=f64, generator=g, requires_grad=True)
    gold = torch.randint(0, 6, (4,), generator=g)
    assert torch.autograd.gradcheck(lambda x: smoothed_cross_entropy(x, gold, 0.2)[0], (logits,))


def test_smoothed_cross_entropy_keeps_only_a_gradient_in_the_logits_dtype() -> None:
    """bf16 logits: float32 sums, and the one tensor saved for backward is (n, V) bf16."""
    logits = torch.randn(5, 11).bfloat16().requires_grad_()
    gold = torch.randint(0, 11, (5,))
    saved: list[Tensor] = []

    def pack(t: Tensor) -> Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss, nll = smoothed_cross_entropy(logits, gold, 0.1)
    assert loss.dtype == nll.dtype == torch.float32
    assert [(t.shape, t.dtype) for t in saved] == [((5, 11), torch.bfloat16)]
    loss.backward()
    assert logits.grad is not None and logits.grad.dtype == torch.bfloat16


# ---------------------------------------------------------------- recurrent steps


def test_gru_step_equals_gru_cell() -> None:
    torch.manual_seed(0)
    cell = nn.GRUCell(5, 4).double()
    x = torch.randn(3, 5, dtype=f64, requires_grad=True)
    h = torch.randn(3, 4, dtype=f64, requires_grad=True)
    gx = F.linear(x, cell.weight_ih, cell.bias_ih)  # (B, 3H), the caller's input projection
    ours = gru_step(gx, h, cell.weight_hh, cell.bias_hh)
    assert_same_grads(ours, cell(x, h), (x, h, *cell.parameters()))


def test_lstm_step_equals_lstm_cell() -> None:
    torch.manual_seed(0)
    cell = nn.LSTMCell(5, 4).double()
    x = torch.randn(3, 5, dtype=f64, requires_grad=True)
    h = torch.randn(3, 4, dtype=f64, requires_grad=True)
    c = torch.randn(3, 4, dtype=f64, requires_grad=True)
    gx = F.linear(x, cell.weight_ih, cell.bias_ih)  # (B, 4H)
    ours = torch.cat(lstm_step(gx, h, c, cell.weight_hh, cell.bias_hh), dim=1)  # (B, 2H): h, c
    reference = torch.cat(cell(x, (h, c)), dim=1)
    assert_same_grads(ours, reference, (x, h, c, *cell.parameters()))


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_rnn_steps_gradcheck(rnn_type: str) -> None:
    g = torch.Generator().manual_seed(2)
    G = {"gru": 3, "lstm": 4}[rnn_type] * 3
    gx, h, c = (torch.randn(2, n, dtype=f64, generator=g, requires_grad=True) for n in (G, 3, 3))
    w_hh = torch.randn(G, 3, dtype=f64, generator=g, requires_grad=True)
    b_hh = torch.randn(G, dtype=f64, generator=g, requires_grad=True)
    if rnn_type == "gru":
        assert torch.autograd.gradcheck(gru_step, (gx, h, w_hh, b_hh))
    else:
        assert torch.autograd.gradcheck(lstm_step, (gx, h, c, w_hh, b_hh))


# ---------------------------------------------------------------- dropout


def test_dropout_zeroes_a_fraction_p_and_scales_the_rest() -> None:
    """About p of the units are zeroed (binomial bounds on a million units), the rest are
    exactly x * (1 / (1 - p)) (torch scales so), and the gradient is the same mask and scale."""
    torch.manual_seed(0)
    p = 0.3
    x = torch.rand(1000, 1000, dtype=f64).add_(0.5).requires_grad_()  # no zeros of its own
    y = dropout(x, p)
    kept = y != 0
    n = x.numel()
    assert abs(kept.logical_not().sum().item() - p * n) < 5 * (n * p * (1 - p)) ** 0.5
    torch.testing.assert_close(y[kept], x[kept] * (1 / (1 - p)), rtol=0, atol=0)
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(grad, kept.to(f64) * (1 / (1 - p)), rtol=0, atol=0)


def test_dropout_masks_are_independent_draws() -> None:
    """Two calls draw two masks, and a seed repeats them."""
    x = torch.ones(100, 100)
    torch.manual_seed(1)
    a, b = dropout(x, 0.5), dropout(x, 0.5)
    torch.manual_seed(1)
    assert not torch.equal(a, b) and torch.equal(dropout(x, 0.5), a)


def test_dropout_bf16_rounds_as_torch_scales() -> None:
    """A kept bf16 unit is the float32 product x / (1 - p) rounded once, as torch's
    native_dropout computes it."""
    torch.manual_seed(2)
    x = torch.randn(300, 300).bfloat16()
    y = dropout(x, 0.3)
    assert y.dtype == torch.bfloat16
    kept = y != 0
    want = (x.float() * (1.0 / 0.7)).bfloat16()
    assert torch.equal(y[kept], want[kept])


def test_dropout_ends() -> None:
    """p = 0 is the identity (the same tensor), p = 1 zeroes everything."""
    x = torch.randn(4, 5)
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros(4, 5))


def test_dropout_layer_is_the_identity_in_evaluation() -> None:
    """mt's Dropout layer: the kernel in training, the input itself in evaluation."""
    from mt.models.dropout import Dropout

    layer = Dropout(0.5)
    x = torch.ones(50, 50)
    assert (layer(x) == 0).any()
    layer.eval()
    assert layer(x) is x
    assert isinstance(layer, nn.Dropout)
    with pytest.raises(ValueError, match="between 0 and 1"):
        Dropout(1.5)
