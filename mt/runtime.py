"""Process-level runtime setup: device choice, allocator behaviour, seeding."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import random
import sys

import numpy as np
import torch

log = logging.getLogger("mt.runtime")

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_allocator_tuned = False


def tune_allocator() -> bool:
    """Keep glibc from returning large freed buffers to the OS between training steps.

    Without it, every step page-faults its fresh gradient buffers in again (measured up to
    44% of a step on these machines, see PERF_NOTES). Linux/glibc only; a no-op elsewhere.
    Returns whether the setting was applied.
    """
    global _allocator_tuned
    if _allocator_tuned:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("MT_NO_MALLOPT"):
        return False
    path = ctypes.util.find_library("c")
    if path is None:
        return False
    try:
        libc = ctypes.CDLL(path)
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
    except (OSError, AttributeError):
        return False
    _allocator_tuned = ok
    return ok


def resolve_device(name: str = "auto") -> torch.device:
    """`auto` -> CUDA when present, else CPU; `cpu`, `cuda`, `cuda:N` as given (error if absent)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"trainer.device={name} but CUDA is not available here; use trainer.device=auto or cpu"
        )
    return device


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """An autocast context for `precision` (bf16 or fp32 = disabled) on `device`."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
