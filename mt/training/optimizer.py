"""The optimiser of a run: Adam (Kingma & Ba, 2015) or AdamW (Loshchilov & Hutter, 2019) from an
OptimConfig, as torch's single fused kernel over all parameters where torch has one (CPU and
CUDA) instead of a loop of elementwise operations per parameter."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from mt.config import OptimConfig

FUSED_DEVICES = ("cpu", "cuda")  # torch's fused Adam / AdamW kernels


def build_optimizer(
    params: Iterable[torch.nn.Parameter], cfg: OptimConfig, device: torch.device
) -> torch.optim.Optimizer:
    """Adam or AdamW (cfg.name) with cfg's rate, betas, eps and weight decay, for parameters on `device`."""
    cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
    return cls(
        params,
        lr=cfg.lr,
        betas=(cfg.betas[0], cfg.betas[1]),
        eps=cfg.eps,
        weight_decay=cfg.weight_decay,
        fused=device.type in FUSED_DEVICES,
    )
