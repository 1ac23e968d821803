#!/usr/bin/env python
"""The attention table of docs/attention.md: each mechanism's AER on a gold set beside its BLEU.

    mt-train -m experiment=attention_comparison data.src_lang=en data.tgt_lang=cs seed=1 \\
        trainer.max_steps=600 hydra.sweep.dir=multirun/align_table_en-cs
    python scripts/eflomal_baseline.py --threads 2 --out runs/eflomal_baseline
    python scripts/attention_table.py multirun/align_table_en-cs --eflomal runs/eflomal_baseline/scores.json

For each finished job of the sweep, `checkpoints/best.pt` force-aligns every CzEnAli pair once
(`mt.evaluation.force_align`). From the same word-level attention the links are extracted with
argmax and with each `--thresholds` value and scored on the first `--dev-pairs` pairs: the
selection table, where the extraction method is chosen (on those pairs only). The main table
scores `--method` (default: mt's default, argmax) on all pairs, over all links and in-vocabulary
links, beside test BLEU, with the eflomal rows from `scripts/eflomal_baseline.py`'s scores.json.
Each job gets `alignment.json` (the `mt-align ... results=FILE` format, which `mt-report`
reads). One PNG shows a dev sentence's attention for every mechanism, gold links marked.
Writes OUT/table.md, OUT/table.json and OUT/side_by_side.png (OUT: SWEEP/attention_table).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from mt.config import ALIGN_METHODS, DEFAULT_ALIGN_METHOD, DEFAULT_ALIGN_THRESHOLD
from mt.errors import USER_ERRORS
from mt.evaluation.aer import alignment_scores
from mt.evaluation.alignment import extract_links
from mt.evaluation.force_align import force_align, in_vocabulary, training_vocabulary
from mt.evaluation.gold import read_gold_set
from mt.evaluation.gold_scores import alignment_record, score_links
from mt.evaluation.plots import alignment_grid_figure, save_figure
from mt.io import atomic_write_text, write_json
from mt.report.collect import collect_jobs
from mt.runtime import resolve_device
from mt.training.checkpoint import describe, load_model


def default_gold() -> str:
    root = Path(os.environ.get("MT_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
    return str(root / "alignment" / "czenali-en-cs" / "czenali.gz")


def extract(attention: list[np.ndarray], method: str, threshold: float) -> list:
    return [extract_links(a, method=method, threshold=threshold) for a in attention]


def plot_pair(gold: list, dev: int) -> int:
    """The first dev pair of 8 to 12 words on each side (readable in a row of five panels)."""
    for k, pair in enumerate(gold[:dev]):
        if 8 <= len(pair.src_words) <= 12 and 8 <= len(pair.tgt_words) <= 12:
            return k
    return 0


def align_job(job, args, device, vocab_cache: dict) -> dict:
    """Force-align the gold pairs with the job's best checkpoint; its scores and attention."""
    loaded = load_model(job.path / "checkpoints" / "best.pt", device)
    data = loaded.config.data
    gold, warnings = read_gold_set(args.gold, "czenali", data.src_lang, data.tgt_lang, langs=args.gold_langs)
    key = (data.source, data.src_lang, data.tgt_lang, data.limit_train)
    if key not in vocab_cache:
        vocab_cache[key] = in_vocabulary(*training_vocabulary(data))
    keep = vocab_cache[key]
    result = force_align(loaded.model, loaded.tokenizer, [" ".join(p.src_words) for p in gold],
                         [" ".join(p.tgt_words) for p in gold], device, precision=args.precision,
                         progress=False)  # fmt: skip
    selection = {"argmax": alignment_scores(extract(result.attention[: args.dev_pairs], "argmax", 0.5),
                                            gold[: args.dev_pairs])}  # fmt: skip
    for t in args.thresholds:
        links = extract(result.attention[: args.dev_pairs], "threshold", t)
        selection[f"threshold {t:g}"] = alignment_scores(links, gold[: args.dev_pairs])
    links = extract(result.attention, args.method, args.threshold)
    scores = score_links(links, gold, keep)
    settings = {"gold": args.gold, "gold_format": "czenali", "method": args.method, "threshold": args.threshold,
                "precision": args.precision, "checkpoint": str(job.path / "checkpoints" / "best.pt")}  # fmt: skip
    record = {**scores, "pairs": len(gold), "seconds": round(result.seconds, 3)}
    write_json(
        job.path / "alignment.json", alignment_record(record, len(warnings), settings, describe(loaded))
    )
    test = job.results.get("test", {}).get(args.test_split, {})
    last = (job.results["train"].get("history") or [{}])[-1]  # the last validation's diagnostics
    return {
        "job": job.name,
        "attention": mechanism_label(loaded.config),
        "diagnostics": {k: last.get(k) for k in DIAGNOSTICS},
        "direction": f"{data.src_lang}->{data.tgt_lang}",
        "bleu": test.get("bleu", {}).get("score"),
        "steps": job.results["train"]["steps"],
        "train_minutes": job.results["train"]["train_minutes"],
        "pairs_per_s": round(len(gold) / result.seconds, 1),
        "all": scores["all"],
        "in_vocabulary": scores["in_vocabulary"],
        "selection": selection,
        "_attention": result.attention,
        "_gold": gold,
    }


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


# the validation diagnostics of mt.evaluation.diagnostics, as results.json's history names them
DIAGNOSTICS = ("attention_entropy", "attention_max", "monotonicity", "dropped_words", "repeated_words")


def mechanism_label(cfg) -> str:
    """``bahdanau``, ``local_p (general)``, ``bahdanau + coverage, loss 1 after 300``: a row's name;
    up to the comma, the row names of scripts/bench_mechanisms.py."""
    a, t = cfg.model.attention, cfg.trainer
    label = a.name + (f" ({a.score})" if a.name.startswith("local_") else "")
    if a.coverage:
        label += " + coverage"
        if t.coverage_loss_weight:
            label += f", loss {t.coverage_loss_weight:g}" + (
                f" after {t.coverage_loss_after}" if t.coverage_loss_after else " from the start"
            )
    return label


def render_diagnostics(rows: list[dict], speed: dict | None) -> str:
    """The second table: each model's last validation diagnostics and its training tokens/s."""
    out = ["Diagnostics at the last validation (1014 validation pairs, greedy), training speed"
           + (f" ({speed['precision']}, scripts/bench_mechanisms.py)" if speed else "") + "\n",
           "| mechanism | entropy (nats) | max weight | monotonicity | dropped words | repeated words "
           "| train tokens/s | ratio |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        d = r["diagnostics"]
        s = (speed or {}).get("rows", {}).get(r["attention"].split(",")[0])
        rate = f"{s['median']:.0f} | {s['ratio']:.2f}" if s else "- | -"
        cells = [f"{d[k]:.2f}" if d.get(k) is not None else "-" for k in DIAGNOSTICS[:3]]
        cells += [pct(d[k]) if d.get(k) is not None else "-" for k in DIAGNOSTICS[3:]]
        out.append(f"| {r['attention']} | " + " | ".join(cells) + f" | {rate} |")
    return "\n".join(out) + "\n"


def render(rows: list[dict], eflomal: dict | None, args) -> str:
    out = [f"Main table: links by `{args.method}`"
           + (f" (threshold {args.threshold:g})" if args.method == "threshold" else "")
           + f", all {rows[0]['all']['sentences']} gold pairs; BLEU on {args.test_split} (beam as trained)\n",
           "| mechanism | BLEU | AER | P | R | AER in-voc | P in-voc | R in-voc | steps | train min | align pairs/s |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        a, v = r["all"], r["in_vocabulary"]
        bleu = f"{r['bleu']:.2f}" if r["bleu"] is not None else "-"
        out.append(f"| {r['attention']} | {bleu} | {pct(a['aer'])} | {pct(a['precision'])} | {pct(a['recall'])} | "
                   f"{pct(v['aer'])} | {pct(v['precision'])} | {pct(v['recall'])} | {r['steps']} | "
                   f"{r['train_minutes']:.1f} | {r['pairs_per_s']:.0f} |")  # fmt: skip
    if eflomal:
        voc = eflomal["scores_both_words_in_multi30k_train"]
        for m in ("forward", "intersection", "grow-diag-final-and"):
            a, v = eflomal["scores"][m], voc[m]
            out.append(f"| eflomal {m} | - | {pct(a['aer'])} | {pct(a['precision'])} | {pct(a['recall'])} | "
                       f"{pct(v['aer'])} | {pct(v['precision'])} | {pct(v['recall'])} | - | - | - |")  # fmt: skip
    methods = list(rows[0]["selection"])
    out += ["", f"Selection table: AER (%) on the first {args.dev_pairs} gold pairs (where the method is chosen)\n",
            "| mechanism | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]  # fmt: skip
    for r in rows:
        out.append(
            f"| {r['attention']} | " + " | ".join(pct(r["selection"][m]["aer"]) for m in methods) + " |"
        )
    means = [np.mean([r["selection"][m]["aer"] for r in rows]) for m in methods]
    out.append("| mean | " + " | ".join(pct(x) for x in means) + " |")
    return "\n".join(out) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sweep", type=Path, help="the sweep directory (hydra.sweep.dir)")
    p.add_argument("--gold", default=default_gold(), help="CzEnAli TSV (default: $MT_DATA_DIR/alignment/...)")
    p.add_argument(
        "--eflomal", type=Path, help="scores.json of scripts/eflomal_baseline.py (the yardstick rows)"
    )
    p.add_argument("--speed", type=Path, help="the --json of scripts/bench_mechanisms.py (tokens/s)")
    p.add_argument("--gold-langs", nargs=2, help="languages of the TSV's two columns (default: en cs)")
    p.add_argument("--dev-pairs", type=int, default=500, help="pairs the extraction method is chosen on")
    p.add_argument("--thresholds", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.4, 0.5])
    p.add_argument("--method", choices=ALIGN_METHODS, default=DEFAULT_ALIGN_METHOD)
    p.add_argument("--threshold", type=float, default=DEFAULT_ALIGN_THRESHOLD)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    p.add_argument("--test-split", default="test_2016_flickr")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, help="output folder (default: SWEEP/attention_table)")
    args = p.parse_args()
    try:
        jobs, missing = collect_jobs(args.sweep)
        for m in missing:
            print(f"skipped {m.name}: {m.reason}", file=sys.stderr)
        if not jobs:
            raise SystemExit(f"error: no finished job in {args.sweep}")
        device, cache = resolve_device(args.device), {}
        rows = [align_job(job, args, device, cache) for job in jobs]
    except USER_ERRORS as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    eflomal = __import__("json").loads(args.eflomal.read_text()) if args.eflomal else None
    out_dir = args.out or args.sweep / "attention_table"
    text = render(rows, eflomal, args)
    speed = __import__("json").loads(args.speed.read_text()) if args.speed else None
    text += "\n" + render_diagnostics(rows, speed)
    k = plot_pair(rows[0]["_gold"], args.dev_pairs)
    pair = rows[0]["_gold"][k]
    fig = alignment_grid_figure([(r["attention"], r["_attention"][k]) for r in rows], pair.src_words,
                                pair.tgt_words, pair.sure, pair.possible)  # fmt: skip
    png = save_figure(fig, out_dir / "side_by_side.png")
    text += f"\nSide by side: gold pair {k + 1} (line {k + 1} of {args.gold}), {png}\n"
    atomic_write_text(out_dir / "table.md", text)
    write_json(out_dir / "table.json", {"rows": [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows],
                                        "args": {k: str(v) for k, v in vars(args).items()}})  # fmt: skip
    print(text)


if __name__ == "__main__":
    main()
