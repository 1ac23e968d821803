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
