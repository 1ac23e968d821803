#!/usr/bin/env python
"""Training speed of every attention mechanism in one run: target tokens/s of a real training step.

    export MT_DATA_DIR=/path/holding/multi30k
    python scripts/bench_mechanisms.py --json mechanisms.json              # en->cs, bf16, about 6 min
    python scripts/bench_mechanisms.py --precision fp32 data.src_lang=de data.tgt_lang=en

Every mechanism trains on the same sample of real batches of the default `mt-train` config
(`--batches` of epoch 0, spread over its lengths, as `scripts/benchmark.py` samples them), from
the same seed, with one forward + backward + Adam step per batch (`bench_model.time_train_steps`).
The mechanisms take turns for `--rounds` rounds (CPU timings drift on shared machines), and each
round's figure is all the sample's target tokens over the sum of its step times; printed: the
median over rounds, the range, and the ratio to the first mechanism (bahdanau). Coverage rows
train with the coverage vector in the energies (the coverage loss term itself is a sum over
(B, T, S) and is not included). Run it alone on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench_* scripts

from bench_model import time_train_steps  # noqa: E402
from benchmark import compose_config, sample_batches  # noqa: E402

from mt.data.pipeline import prepare_data  # noqa: E402
from mt.io import write_json  # noqa: E402
from mt.models.seq2seq import build_model  # noqa: E402
from mt.runtime import resolve_device, seed_everything  # noqa: E402

# (row name, the mt-train overrides that make the mechanism): the rows of docs/attention.md
MECHANISMS: list[tuple[str, list[str]]] = [
    ("bahdanau", ["model/attention=bahdanau"]),
    ("bahdanau + coverage", ["model/attention=bahdanau", "model.attention.coverage=true"]),
    ("luong_concat", ["model/attention=luong_concat"]),
    ("luong_dot", ["model/attention=luong_dot"]),
    ("luong_general", ["model/attention=luong_general"]),
    ("scaled_dot", ["model/attention=scaled_dot"]),
    ("luong_location", ["model/attention=luong_location"]),
    ("local_m (general)", ["model/attention=local_m"]),
    ("local_p (general)", ["model/attention=local_p"]),
    ("local_p (concat)", ["model/attention=local_p", "model.attention.score=concat"]),
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="mt-train overrides for every mechanism")
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--batches", type=int, default=8, help="real train batches in the sample")
    parser.add_argument("--rounds", type=int, default=3, help="turns of every mechanism")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before each timed pass")
    parser.add_argument("--only", nargs="*", help="row names to measure (default: all)")
    parser.add_argument("--json", help="write the figures here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    base = ["data.src_lang=en", "data.tgt_lang=cs", *args.overrides]
    rows = [(name, o) for name, o in MECHANISMS if not args.only or name in args.only]
    cfg = compose_config(base + rows[0][1])
    device = resolve_device(cfg.trainer.device)
    data = prepare_data(cfg.data, cfg.tokenizer)
    batches, epoch_batches = sample_batches(data, cfg, args.batches)
    tokens = sum(int(b.n_tgt_tokens) for b in batches)
    models = {}
    for name, overrides in rows:
        mcfg = compose_config(base + overrides)
        seed_everything(mcfg.seed)
        models[name] = build_model(
            mcfg.model, data.tokenizer.src_vocab_size, data.tokenizer.tgt_vocab_size
        ).to(device)
    on_device = [b.to(device) for b in batches]
    rates: dict[str, list[float]] = {name: [] for name, _ in rows}
    for r in range(args.rounds):
        for name, _ in rows:
            (times,) = time_train_steps(models[name], on_device, args.precision, 1, args.warmup, device,
                                        cfg.optim.lr)  # fmt: skip
            rates[name].append(tokens / sum(times))
            print(f"[bench_mechanisms] round {r + 1}: {name} {rates[name][-1]:.0f} tokens/s", file=sys.stderr)
    first = statistics.median(rates[rows[0][0]])
    print(f"\n{args.precision}, {len(batches)} of {epoch_batches} batches ({tokens} target tokens), "
          f"{args.rounds} rounds, threads {torch.get_num_threads()}")  # fmt: skip
    print("| mechanism | train tokens/s (median) | min-max | ratio to bahdanau |\n|---|---|---|---|")
    out = {"precision": args.precision, "batches": len(batches), "target_tokens": tokens, "rows": {}}
    for name, _ in rows:
        med = statistics.median(rates[name])
        print(f"| {name} | {med:.0f} | {min(rates[name]):.0f}-{max(rates[name]):.0f} | {med / first:.2f} |")
        out["rows"][name] = {"median": med, "rounds": rates[name], "ratio": med / first}
    if args.json:
        write_json(args.json, out)
    return out


if __name__ == "__main__":
    main()
