#!/usr/bin/env python
"""Forced-alignment speed: pairs per second over the 2,501 CzEnAli pairs.

    python scripts/bench_align.py --checkpoint runs/.../checkpoints/best.pt
    python scripts/bench_align.py --checkpoint ... --repeats 3 --precision bf16 --device cuda

Times `mt.evaluation.force_align.force_align` (subword encoding with spans, batching, the
teacher-forced forward pass with attention, word pooling and link extraction; model loading
excluded) over every CzEnAli pair, `--repeats` times after one untimed warm-up batch, and
prints JSON with the median / min / max pairs per second, and the model's FLOPs per pass (a
forward without the output layer, matrix products only, `mt.models.flops`) per second. An en<->cs checkpoint aligns the
pairs the right way round; for any other language pair the English column is fed as the
source and the Czech one as the target (the speed, not the alignments, is what is measured).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from mt.evaluation.force_align import force_align
from mt.evaluation.gold import read_gold_czenali
from mt.models.flops import train_step_flops
from mt.runtime import resolve_device, synchronize
from mt.training.checkpoint import describe, load_model


def default_gold() -> str:
    root = Path(os.environ.get("MT_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
    return str(root / "alignment" / "czenali-en-cs" / "czenali.gz")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--gold", default=default_gold(), help="CzEnAli TSV (default: $MT_DATA_DIR/alignment/...)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    p.add_argument("--batch-sentences", type=int, default=0, help="0: about --batch-tokens tokens per batch")
    p.add_argument("--batch-tokens", type=int, default=4000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()

    device = resolve_device(args.device)
    loaded = load_model(args.checkpoint, device)
    src_lang, tgt_lang = loaded.config.data.src_lang, loaded.config.data.tgt_lang
    langs = (src_lang, tgt_lang) if {src_lang, tgt_lang} == {"en", "cs"} else ("en", "cs")
    pairs, _ = read_gold_czenali(args.gold, *langs)
    src = [" ".join(pair.src_words) for pair in pairs]
    tgt = [" ".join(pair.tgt_words) for pair in pairs]
    kw = dict(precision=args.precision, batch_sentences=args.batch_sentences, batch_tokens=args.batch_tokens,
              progress=False)  # fmt: skip
    force_align(loaded.model, loaded.tokenizer, src[:64], tgt[:64], device, **kw)  # warm-up
    rates = []
    for _ in range(args.repeats):
        synchronize(device)
        t0 = time.perf_counter()
        out = force_align(loaded.model, loaded.tokenizer, src, tgt, device, **kw)
        synchronize(device)
        rates.append(len(pairs) / (time.perf_counter() - t0))
    # model work of one pass: the training-step count / 3 (a forward), without the output layer,
    # which forced alignment never runs; real tokens with EOS (source) and BOS (target input)
    n_src = sum(len(ids) + 1 for ids, _ in loaded.tokenizer.encode_spans(src, "src"))
    n_tgt = sum(len(ids) + 1 for ids, _ in loaded.tokenizer.encode_spans(tgt, "tgt"))
    flops = (
        train_step_flops(loaded.model, n_src, n_tgt, len(pairs)) / 3
        - n_tgt * 2 * loaded.model.output.weight.numel()
    )
    seconds = len(pairs) / statistics.median(rates)
    print(json.dumps({
        "benchmark": "force_align", "pairs": len(pairs), "direction": f"{langs[0]}->{langs[1]}",
        "pairs_per_s": {"median": round(statistics.median(rates), 1), "min": round(min(rates), 1),
                        "max": round(max(rates), 1)},
        "rates": [round(r, 1) for r in rates], "truncated": out.truncated, "device": str(device),
        "subword_tokens": {"src": n_src, "tgt": n_tgt}, "model_gflop": round(flops / 1e9, 3),
        "model_gflop_per_s": round(flops / 1e9 / seconds, 1),
        "device_name": __import__("torch").cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": args.precision, "batch_sentences": args.batch_sentences, "batch_tokens": args.batch_tokens,
        "model": describe(loaded), "checkpoint": args.checkpoint,
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
