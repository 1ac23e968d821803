"""Heap use of training steps on real Multi30k batches: where resident memory goes.

Runs `--steps` updates of the default model (or the config given by Hydra-style overrides)
on batches drawn at random from `--shapes` batch shapes of epoch 0, and prints glibc's heap
figures (mallinfo2) every few steps and after a final malloc_trim: resident memory, heap size,
bytes in use, free bytes and the number of free fragments. Compare settings by running it
with different environments, e.g. (docs/results.md#memory):

    python scripts/memory_probe.py --steps 24
    ONEDNN_PRIMITIVE_CACHE_CAPACITY=1024 LRU_CACHE_CAPACITY=1024 python scripts/memory_probe.py --steps 24
"""

from __future__ import annotations

import argparse
import ctypes
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_model import train_step  # noqa: E402
from benchmark import compose_config, sample_batches  # noqa: E402

from mt.data.pipeline import prepare_data  # noqa: E402
from mt.models.seq2seq import build_model  # noqa: E402
from mt.runtime import resident_bytes, tune_allocator  # noqa: E402


class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]  # fmt: skip


def heap_line(libc: ctypes.CDLL, tag: str) -> str:
    m = libc.mallinfo2()
    mb = 1 << 20
    return (f"{tag:>12}: rss {resident_bytes() // mb} MiB, heap {m.arena // mb}, in use {m.uordblks // mb}, "
            f"free {m.fordblks // mb} in {m.ordblks} fragments")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--shapes", type=int, default=12, help="distinct batch shapes to draw from")
    ap.add_argument("--every", type=int, default=6)
    ap.add_argument("--cache-dir", default="data/cache", help="data.cache_dir for the prepared data")
    ap.add_argument("overrides", nargs="*", help="config overrides, as for mt-train")
    args = ap.parse_args(argv)

    cfg = compose_config(args.overrides)
    tune_allocator(cfg.trainer.max_rss_mb)  # as mt-train does: cap, no mmap, kernel-cache limit
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2
    data = prepare_data(replace(cfg.data, cache_dir=args.cache_dir), cfg.tokenizer)
    model = build_model(cfg.model, data.tokenizer.src_vocab_size, data.tokenizer.tgt_vocab_size).train()
    batches, _ = sample_batches(data, cfg, args.shapes)
    print(heap_line(libc, "start"), flush=True)
    opt = torch.optim.Adam(model.parameters(), cfg.optim.lr)
    rng = random.Random(0)
    times = []
    for i in range(args.steps):
        b = rng.choice(batches)
        t0 = time.perf_counter()
        train_step(model, opt, b, cfg.trainer.precision, torch.device("cpu"))
        times.append(time.perf_counter() - t0)
        if (i + 1) % args.every == 0:
            print(heap_line(libc, f"step {i + 1}"), flush=True)
    libc.malloc_trim(0)
    print(heap_line(libc, "after trim"))
    print(f"step time: median {sorted(times)[len(times) // 2]:.2f} s over {len(times)} steps")


if __name__ == "__main__":
    main()
