#!/usr/bin/env python
"""Decoding speed: greedy and beam search over a test split, sentences per second.

    python scripts/bench_decode.py --checkpoint runs/.../checkpoints/best.pt
    python scripts/bench_decode.py --checkpoint ... --beams 1 5 --repeats 3 --precision bf16

Decodes the whole split (test_2016_flickr by default, 1000 sentences) in length-sorted
batches of `--batch` sentences with the output length capped as in evaluation
(1.5 * source + 10), `--repeats` times, and prints median / min / max sentences per second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from mt.data.pipeline import prepare_data
from mt.inference import SearchConfig, translate_split
from mt.loading import load_model
from mt.runtime import resolve_device, tune_allocator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--split", default="test_2016_flickr")
    ap.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    tune_allocator()
    device = resolve_device(args.device)
    loaded = load_model(args.checkpoint, device)
    data_cfg = loaded.config.data
    data_cfg.eval_batch_sentences = args.batch
    data = prepare_data(data_cfg, loaded.config.tokenizer, tokenizer=loaded.tokenizer)
    ds = data.encoded[args.split]
    t = loaded.config.trainer
    results = {"split": args.split, "sentences": len(ds), "batch": args.batch, "precision": args.precision,
               "threads": torch.get_num_threads(), "device": str(device)}  # fmt: skip
    for beam in args.beams:
        search = SearchConfig(beam, 1, t.length_penalty, t.max_len_a, t.max_len_b, args.precision)
        translate_split(
            loaded.model, ds.select(range(min(len(ds), args.batch))), data_cfg, search, device
        )  # warm-up
        rates = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            translate_split(loaded.model, ds, data_cfg, search, device)
            rates.append(len(ds) / (time.perf_counter() - t0))
        name = "greedy" if beam == 1 else f"beam{beam}"
        results[f"{name}_sents_per_sec"] = {
            "median": statistics.median(rates),
            "min": min(rates),
            "max": max(rates),
        }
        print(f"{name}: {statistics.median(rates):.0f} sentences/s (min {min(rates):.0f}, max {max(rates):.0f}) "
              f"over {len(ds)} sentences, {args.precision}, batches of {args.batch}")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
