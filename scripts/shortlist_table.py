#!/usr/bin/env python
"""Vocabulary shortlist settings side by side: BLEU, decoding speed and the outputs that change.

    mt-shortlist RUN/checkpoints/best.pt                                   # RUN/shortlist.pt
    python scripts/shortlist_table.py RUN/checkpoints/best.pt --shortlist RUN/shortlist.pt \\
        --settings 100:10 100:20 100:50 500:20 --split validation --json table.json

Decodes the split (validation by default: shortlist settings are chosen there) with the
checkpoint's own test search (beam 5 unless `--beam`) without a shortlist, then with each
setting FREQUENT:PER_SOURCE (`shortlist_frequent`, `shortlist_per_source` of mt-evaluate),
`--repeats` timed passes each (the fastest counts), all in one process one after the other so
the speeds compare. Printed per row: candidates a batch on average, sacreBLEU and its change,
the sentences whose output is the same as without a shortlist, sentences/s and its ratio to
no shortlist.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench_decode

from bench_decode import decode_speed  # noqa: E402

from mt.evaluation.eval_data import load_eval_data  # noqa: E402
from mt.evaluation.metrics import score_corpus  # noqa: E402
from mt.runtime import resolve_device, tune_allocator  # noqa: E402
from mt.search.base import SearchConfig  # noqa: E402
from mt.search.shortlist import Shortlist, load_table  # noqa: E402
from mt.training.checkpoint import load_model  # noqa: E402


def setting(text: str) -> tuple[int, int]:
    """FREQUENT:PER_SOURCE -> (frequent, per_source)."""
    try:
        frequent, per_source = (int(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not FREQUENT:PER_SOURCE, e.g. 100:20") from None
    return frequent, per_source


def table(args: argparse.Namespace) -> dict[str, Any]:
    """Every row of the table, keyed by 'none' and 'F:K'."""
    tune_allocator()
    device = resolve_device(args.device)
    loaded = load_model(args.checkpoint, device)
    tok, data_cfg = loaded.tokenizer, loaded.config.data
    data = load_eval_data(data_cfg, tok, [args.split], {})
    ds, refs = data.encoded[args.split], list(data.text[args.split]["tgt"])
    changes = {"precision": args.precision} | ({"beam_size": args.beam} if args.beam else {})
    search = SearchConfig.from_trainer(loaded.config.trainer, **changes)
    lexical = load_table(args.shortlist, tok.to_bytes())
    rows: dict[str, Any] = {}
    full_outputs: list[list[int]] = []
    for frequent, per_source in [(-1, -1), *args.settings]:
        shortlist = None if frequent < 0 else Shortlist(lexical, frequent, per_source)
        speed = decode_speed(loaded.model, ds, data_cfg, search, device, args.repeats, shortlist=shortlist)
        outputs = speed["outputs"]
        if shortlist is None:
            full_outputs = outputs
        texts = [tok.decode_tgt(ids) for ids in outputs]
        scores = score_corpus(texts, refs, data_cfg.tgt_lang, lowercase=tok.lowercase)
        rows["none" if shortlist is None else f"{frequent}:{per_source}"] = {
            "mean_candidates": tok.tgt_vocab_size
            if shortlist is None
            else shortlist.describe()["mean_candidates"],
            "bleu": round(scores["bleu"]["score"], 2),
            "bleu_tok_lc": round(scores["bleu_tok_lc"]["score"], 2),
            "same_output": sum(a == b for a, b in zip(outputs, full_outputs, strict=True)) / len(outputs),
            "sentences_per_second": round(speed["max"], 1),  # the fastest pass
            "rates": [round(r, 1) for r in speed["rates"]],
        }
        print(row_line(next(reversed(rows)), rows), flush=True)
    return {"checkpoint": str(args.checkpoint), "shortlist": str(args.shortlist), "split": args.split,
            "beam_size": search.beam_size, "precision": args.precision, "threads": torch.get_num_threads(),
            "rows": rows}  # fmt: skip


def row_line(name: str, rows: dict[str, Any]) -> str:
    r, full = rows[name], rows["none"]
    return (
        f"| {name} | {r['mean_candidates']:.0f} | {r['bleu']:.2f} ({r['bleu'] - full['bleu']:+.2f}) | "
        f"{r['same_output']:.1%} | {r['sentences_per_second']:.0f} ({r['sentences_per_second'] / full['sentences_per_second']:.2f}x) |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--shortlist", type=Path, required=True, help="mt-shortlist's file for this checkpoint")
    ap.add_argument("--settings", type=setting, nargs="+", default=[(100, 20)], metavar="FREQUENT:PER_SOURCE")
    ap.add_argument("--split", default="validation")
    ap.add_argument("--beam", type=int, default=0, help="beam size (0: the run's trainer.test_beam_size)")
    ap.add_argument("--repeats", type=int, default=2, help="timed passes per row; the fastest counts")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", type=Path, help="write the table here")
    args = ap.parse_args()
    print(
        "| shortlist (frequent:per source) | candidates a batch | BLEU (change) | same output | sentences/s (x none) |"
    )
    print("|---|---|---|---|---|")
    result = table(args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
