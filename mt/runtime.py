"""Process-level runtime setup: device choice, allocator behaviour, seeding."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import random
import sys
import time

import numpy as np
import torch

from mt.errors import ConfigError

log = logging.getLogger("mt.runtime")

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_allocator_tuned = False
# PyTorch's oneDNN matmul path (bf16 and some fp32 CPU matmuls) keeps a compiled kernel per
# operand shape in two caches, 1024 entries each by default. Batch and decoding shapes vary so
# much that they fill up: measured with scripts/memory_probe.py (docs/results.md#memory): 250 MB more
# live heap after 24 training steps on 12 batch shapes, and 4.7 times as many free heap
# fragments. 32 entries keep the shapes of one batch's decoder loop (reused at every step) at
# no measurable cost per step. (0 is not allowed: PyTorch's cache crashes with 0.)
KERNEL_CACHE_CAPACITY = 32


def tune_allocator(rss_limit_mb: int = 0) -> bool:
    """Keep glibc from returning large freed buffers to the OS between training steps.

    Without it, every step page-faults its fresh gradient buffers in again (measured up to
    44% of a step on these machines, see PERF_NOTES). Linux/glibc only; a no-op elsewhere.
    `rss_limit_mb` > 0 caps the resident memory this costs (see `set_memory_limit`) and
    bounds the per-shape matmul kernel caches (see `limit_kernel_cache`).
    Returns whether the setting was applied.
    """
    global _allocator_tuned
    if rss_limit_mb > 0:
        limit_kernel_cache(KERNEL_CACHE_CAPACITY)
    if _allocator_tuned:
        set_memory_limit(rss_limit_mb)
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
    set_memory_limit(rss_limit_mb if ok else 0)
    return ok


def limit_kernel_cache(capacity: int) -> None:
    """Hold at most `capacity` (>= 1) compiled oneDNN kernels per cache: oneDNN's primitive
    cache (ONEDNN_PRIMITIVE_CACHE_CAPACITY) and PyTorch's mkldnn matmul cache (LRU_CACHE_CAPACITY).

    Both are read once, when the first such kernel is built, so this works only before the
    first CPU matmul of the process; values already in the environment (the user's) are kept.
    """
    capacity = max(1, int(capacity))
    for name in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):
        os.environ.setdefault(name, str(capacity))


_libc: ctypes.CDLL | None = None
_rss_limit_bytes = 0
trims = 0  # how often release_memory() gave memory back in this process
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _get_libc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None and sys.platform.startswith("linux"):
        path = ctypes.util.find_library("c")
        if path:
            try:
                _libc = ctypes.CDLL(path)
            except OSError:
                _libc = None
    return _libc


def set_memory_limit(limit_mb: int) -> None:
    """Cap resident memory at about `limit_mb` (0 = no cap) through `release_memory`.

    With `tune_allocator`, freed buffers stay in the process, which makes steps fast but lets
    the heap fragment as batch shapes change (measured up to 9.4 GB over a default run).
    Above the cap, `release_memory` hands the free pages back to the OS.
    """
    global _rss_limit_bytes
    _rss_limit_bytes = max(0, int(limit_mb)) << 20


def resident_bytes() -> int:
    """Resident memory of this process's own heap (0 where /proc is unavailable).

    Pages of memory-mapped files (the cached corpus) are left out: the kernel can drop them at
    any time, and trimming the heap cannot lower them (statm: resident minus shared).
    """
    try:
        with open("/proc/self/statm", "rb") as f:
            fields = f.read().split()
        return (int(fields[1]) - int(fields[2])) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def release_memory(force: bool = False) -> bool:
    """Give free heap pages back to the OS when resident memory is over the cap (or `force`).

    Cheap to call after every step (one read of /proc/self/statm); returns whether it trimmed.
    """
    global trims
    if not force and (not _rss_limit_bytes or resident_bytes() <= _rss_limit_bytes):
        return False
    libc = _get_libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    trims += 1
    return True


def resolve_device(name: str = "auto", key: str = "device") -> torch.device:
    """`auto` -> CUDA when present, else CPU; `cpu`, `cuda`, `cuda:N` as given; a ConfigError at
    `key` when that device is absent."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ConfigError(
            f"config error at `{key}`: {name!r} is not a device; use auto, cpu, cuda or cuda:N"
        ) from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"config error at `{key}`: {name} but CUDA is not available here; use {key}=auto or cpu"
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(
            f"config error at `{key}`: {name} but this machine has {torch.cuda.device_count()} "
            f"GPU(s); use {key}=cuda or auto"
        )
    return device


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so a timer read next is honest (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def autocast(device: torch.device, precision: str) -> torch.autocast:
    """An autocast context for `precision` (bf16 or fp32 = disabled) on `device`."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


_IMPORTED = time.time()


def seconds_since_start() -> float:
    """Seconds since this process started (since this module was imported where /proc is unavailable)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            after_name = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        return uptime - int(after_name[19]) / os.sysconf("SC_CLK_TCK")  # field 22: start time in ticks
    except (OSError, ValueError, IndexError):
        return time.time() - _IMPORTED
