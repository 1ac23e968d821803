#!/usr/bin/env python
"""What scoring a gold alignment set adds to a validation: seconds with and without it.

    python scripts/bench_valid_alignment.py --checkpoint RUN/checkpoints/best.pt --pairs 50 100 500

Loads the checkpoint and its data (the run's own config; cached ids are reused), then times,
`--repeats` times each, one validation as `mt-train` runs it (greedy decoding of the whole
validation split, BLEU, teacher-forced loss, attention diagnostics: `run_validation`) and the
gold-set scoring that `alignment.gold` adds to it on the first N pairs, for each `--pairs` N.
Prints JSON: median seconds and the added share of the validation time. The issue's bound is
10%. The gold set must be in the model's language pair (CzEnAli: an en<->cs model).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

from mt.config import AlignmentConfig
from mt.data.pipeline import prepare_data
from mt.evaluation.gold_scores import GoldScorer
from mt.runtime import resolve_device, synchronize
from mt.search.base import SearchConfig
from mt.training.checkpoint import describe, load_model
from mt.training.validation import run_validation


def default_gold() -> str:
    root = Path(os.environ.get("MT_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
    return str(root / "alignment" / "czenali-en-cs" / "czenali.gz")


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--gold", default=default_gold())
    p.add_argument("--pairs", type=int, nargs="+", default=[50, 100, 500])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto")
    args = p.parse_args()

    device = resolve_device(args.device)
    loaded = load_model(args.checkpoint, device)
    cfg = loaded.config
    data = prepare_data(cfg.data, cfg.tokenizer, tokenizer=loaded.tokenizer)
    search = SearchConfig.from_trainer(cfg.trainer, beam_size=1)
    scorer = GoldScorer.from_config(replace(AlignmentConfig(), gold=args.gold), cfg.data)

    def valid() -> None:
        run_validation(loaded.model, data, cfg.data, search, device, cfg.trainer.valid_max_sentences)

    valid()  # warm-up
    synchronize(device)
    base = statistics.median(timed(valid) for _ in range(args.repeats))
    added = {}
    for n in args.pairs:

        def score(n: int = n) -> None:
            scorer(loaded.model, loaded.tokenizer, device, search.precision, n)

        added[n] = statistics.median(timed(score) for _ in range(args.repeats))
    print(json.dumps({
        "benchmark": "validation with alignment.gold", "validation_seconds": round(base, 3),
        "validation_sentences": len(data.encoded["validation"]), "precision": search.precision,
        "gold_seconds": {str(n): round(s, 3) for n, s in added.items()},
        "added_share": {str(n): round(s / base, 3) for n, s in added.items()},
        "device": str(device), "model": describe(loaded), "checkpoint": args.checkpoint,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
