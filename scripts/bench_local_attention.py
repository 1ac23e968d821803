"""Cost of one attention call per decoder step as the source grows: global attention
(``luong_general``, ``bahdanau``) against Luong et al. (2015)'s local attentions (``local_m``,
``local_p``), which score only a window of 2D + 1 positions.

For each mechanism and source length S it times one call ``attn(query, keys, values, mask, t)``
(the keys precomputed once per batch, as in decoding; t = S // 2) at the default model's sizes
(query 512, keys 512, batch 64, every source S tokens long), and prints one JSON line per case
(median microseconds per step, best of ``--repeats`` rounds, and the ratio to the first S),
then a markdown table of the same numbers.

    python scripts/bench_local_attention.py                          # CPU, forward only (search)
    python scripts/bench_local_attention.py --mode fwd_bwd           # a training step's attention
    python scripts/bench_local_attention.py --device cuda --threads 0
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import torch
from torch.utils import benchmark

from mt.models.attention import build_attention

MECHANISMS = ("luong_general", "bahdanau", "local_m", "local_p")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src-lens", type=int, nargs="+", default=[25, 50, 100, 200])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--query-size", type=int, default=512, help="Hq, the decoder hidden size")
    p.add_argument("--key-size", type=int, default=512, help="Hk, the encoder output size")
    p.add_argument("--window", type=int, default=10, help="D, the local window's half-width")
    p.add_argument("--score", default="general", choices=("dot", "general", "concat"))
    p.add_argument("--mode", default="fwd", choices=("fwd", "fwd_bwd"), help="fwd_bwd: with backward")
    p.add_argument("--device", default="cpu")
    p.add_argument("--min-run-time", type=float, default=0.5, help="seconds per timing round")
    p.add_argument("--repeats", type=int, default=3, help="rounds per case; the best median counts")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = torch's default")
    return p.parse_args()


def step_call(name: str, src_len: int, args: argparse.Namespace) -> Callable[[], object]:
    """A closure running one decoder step of attention `name` over sources of `src_len` tokens."""
    torch.manual_seed(0)
    device = torch.device(args.device)
    attn = build_attention(name, args.query_size, args.key_size, 0, window=args.window, score=args.score)
    attn = attn.to(device)
    memory = torch.randn(args.batch, src_len, args.key_size, device=device)  # (B, S, Hk)
    query = torch.randn(args.batch, args.query_size, device=device)  # (B, Hq)
    mask = torch.ones(args.batch, src_len, dtype=torch.bool, device=device)  # (B, S)
    with torch.no_grad():
        keys = attn.precompute_keys(memory)  # once per batch: not timed
    step = src_len // 2
    if args.mode == "fwd":

        def fwd() -> None:
            with torch.no_grad():
                attn(query, keys, memory, mask, step)

        return fwd
    keys.requires_grad_()
    values = memory.clone().requires_grad_()
    query.requires_grad_()

    def fwd_bwd() -> None:
        context, weights = attn(query, keys, values, mask, step)
        (context.sum() + weights.sum()).backward()

    return fwd_bwd


def time_us(fn: Callable[[], object], args: argparse.Namespace) -> float:
    """Best over rounds of the median microseconds of one call."""
    timer = benchmark.Timer("fn()", globals={"fn": fn})
    return (
        min(timer.blocked_autorange(min_run_time=args.min_run_time).median for _ in range(args.repeats)) * 1e6
    )


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results: dict[str, list[float]] = {}
    for name in MECHANISMS:
        results[name] = []
        for src_len in args.src_lens:
            us = time_us(step_call(name, src_len, args), args)
            results[name].append(us)
            record = {
                "mechanism": name, "src_len": src_len, "us_per_step": round(us, 2),
                "ratio": round(us / results[name][0], 3), "batch": args.batch, "query_size": args.query_size,
                "key_size": args.key_size, "window": args.window, "score": args.score, "mode": args.mode,
                "device": args.device, "threads": torch.get_num_threads(),
            }  # fmt: skip
            print(json.dumps(record), flush=True)
    first = args.src_lens[0]
    header = " | ".join(f"S={s}" for s in args.src_lens)
    print(f"\n| mechanism | {header} | " + " | ".join(f"S={s} / S={first}" for s in args.src_lens[1:]) + " |")
    print("|---" * (1 + 2 * len(args.src_lens) - 1) + "|")
    for name, times in results.items():
        cells = [f"{t:.0f} us" for t in times] + [f"{t / times[0]:.2f}" for t in times[1:]]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
