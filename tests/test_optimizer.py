"""The run's optimiser (mt.training.optimizer): torch's fused Adam / AdamW on CPU, giving the
updates of torch's reference (per-parameter loop) implementation."""

from __future__ import annotations

import pytest
import torch

from mt.config import OptimConfig
from mt.training.optimizer import build_optimizer


def two_models(seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(seed)
    a = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    b = torch.nn.Sequential(torch.nn.Linear(7, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize("name, decay", [("adam", 0.0), ("adam", 0.01), ("adamw", 0.01)])
def test_fused_optimizer_takes_the_reference_steps(name: str, decay: float) -> None:
    """Five steps of build_optimizer's fused kernel equal five of torch's for-loop version with
    the same settings (rate, betas, eps, weight decay; AdamW's decoupled decay)."""
    cfg = OptimConfig(name=name, lr=3e-2, betas=[0.8, 0.95], eps=1e-6, weight_decay=decay)
    ours_model, ref_model = two_models()
    ours = build_optimizer(ours_model.parameters(), cfg, torch.device("cpu"))
    assert ours.defaults["fused"] is True
    assert type(ours) is (torch.optim.AdamW if name == "adamw" else torch.optim.Adam)
    ref = type(ours)(ref_model.parameters(), lr=3e-2, betas=(0.8, 0.95), eps=1e-6, weight_decay=decay,
                     foreach=False)  # fmt: skip
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        x = torch.randn(11, 7, generator=g)
        for model, opt in ((ours_model, ours), (ref_model, ref)):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
    for p, q in zip(ours_model.parameters(), ref_model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    assert not torch.equal(ours_model[0].weight, two_models()[0][0].weight)  # the steps moved it


def test_a_reference_optimizer_state_loads_into_the_fused_one() -> None:
    """A checkpoint's optimizer state written by the per-parameter Adam (runs started before the
    fused kernel) loads, keeps that kernel (the saved settings win, so a resumed run makes the
    updates it would have made), and steps on from it."""
    cfg = OptimConfig()
    model, _ = two_models()
    old = torch.optim.Adam(model.parameters(), lr=cfg.lr, foreach=False)
    model(torch.randn(3, 7)).sum().backward()
    old.step()
    new = build_optimizer(model.parameters(), cfg, torch.device("cpu"))
    new.load_state_dict(old.state_dict())
    assert new.state_dict()["state"][0]["step"].item() == 1.0
    assert not new.param_groups[0]["fused"]
    model(torch.randn(3, 7)).sum().backward()
    new.step()
    assert new.state_dict()["state"][0]["step"].item() == 2.0
