"""The resident-memory cap: free heap pages go back to the OS above trainer.max_rss_mb."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim")


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return proc.stdout.decode()


def test_memory_above_the_cap_is_given_back_and_below_it_is_kept():
    # A fresh process: tune the allocator, touch and free 400 MB of heap, then ask to release.
    out = _run(
        """
        import torch
        from mt import runtime
        assert runtime.tune_allocator(rss_limit_mb=0)
        base = runtime.resident_bytes()
        blocks = [torch.ones(10_000_000) for _ in range(10)]  # 10 x 40 MB on the heap (no mmap)
        del blocks
        kept = runtime.resident_bytes()
        print(runtime.release_memory(), runtime.trims)              # no cap: nothing happens
        runtime.set_memory_limit(max(1, (base >> 20) + 100))        # cap 100 MiB above the start
        print(runtime.release_memory(), runtime.trims)              # over the cap: trimmed
        after = runtime.resident_bytes()
        print(runtime.release_memory())                             # under the cap again: no-op
        print((kept - base) >> 20, (kept - after) >> 20)
        """
    )
    lines = out.split("\n")
    assert lines[0] == "False 0"
    assert lines[1] == "True 1"
    assert lines[2] == "False"
    grown, released = map(int, lines[3].split())
    assert grown >= 300  # freed buffers stayed resident with the tuned allocator
    assert released >= 300  # and went back to the OS when over the cap


def test_no_cap_without_the_tuned_allocator():
    out = _run(
        """
        import os
        os.environ["MT_NO_MALLOPT"] = "1"
        from mt import runtime
        print(runtime.tune_allocator(rss_limit_mb=1), runtime.release_memory())
        """
    )
    assert out.split() == ["False", "False"]


_KERNEL_CACHE_PROBE = """
    import ctypes, os, sys, torch
    from mt import runtime

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    runtime.tune_allocator(rss_limit_mb=int(sys.argv[1]))
    print(os.environ.get("ONEDNN_PRIMITIVE_CACHE_CAPACITY"), os.environ.get("LRU_CACHE_CAPACITY"))
    w, x = torch.randn(256, 768).bfloat16(), torch.randn(600, 256).bfloat16()
    x[:5] @ w
    before = libc.mallinfo2().uordblks
    for m in range(1, 601):  # 600 operand shapes, as batch sizes and shrinking beams make them
        y = x[:m] @ w
    del y
    print((libc.mallinfo2().uordblks - before) >> 20)
"""


def _kernel_cache_probe(cap_mb: int, env: dict[str, str] | None = None) -> tuple[str, int]:
    import os

    code = textwrap.dedent(_KERNEL_CACHE_PROBE)
    proc = subprocess.run([sys.executable, "-c", code, str(cap_mb)], capture_output=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})})  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    caps, grown = proc.stdout.decode().strip().split("\n")
    return caps, int(grown)


def test_memory_cap_bounds_the_kernel_caches():
    """With a memory cap, kernels compiled per matmul shape do not pile up in the heap
    (measured here: 16 MB of live heap for 600 shapes, 150-170 MB without the limit)."""
    caps, grown = _kernel_cache_probe(2600)
    assert caps == "32 32"
    uncapped_caps, uncapped = _kernel_cache_probe(0)
    assert uncapped_caps == "None None"
    assert grown < 50
    if uncapped > 100:  # where bf16 matmuls go through oneDNN (not every CPU): the limit is what helps
        assert grown < uncapped / 3


def test_kernel_cache_limit_keeps_the_users_setting():
    caps, _ = _kernel_cache_probe(2600, {"LRU_CACHE_CAPACITY": "500", "ONEDNN_PRIMITIVE_CACHE_CAPACITY": "7"})
    assert caps == "7 500"
