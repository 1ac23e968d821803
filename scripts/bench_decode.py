#!/usr/bin/env python
"""Decoding speed: greedy and beam search over a test split, sentences per second.

    python scripts/bench_decode.py --checkpoint runs/.../checkpoints/best.pt
    python scripts/bench_decode.py --checkpoint ... --beams 1 5 --repeats 3 --precision bf16
    python scripts/bench_decode.py --checkpoint ... --shortlist RUN/shortlist.pt   # + rows on a shortlist

Decodes the whole split (test_2016_flickr by default, 1000 sentences) in length-sorted
batches of `--batch` sentences (default: about `--rows` hypotheses, `--rows // beam`
sentences) with the output length capped as in evaluation (the checkpoint's
trainer.max_len_a * source + max_len_b, at most trainer.max_output_tokens), `--repeats`
times, and prints median / min / max sentences per second, and the model FLOP rate: the
FLOPs of the encoder and of every search step (mt.models.flops, counted on one more, untimed
pass) over each timed pass's seconds. With `--shortlist` (mt-shortlist's file), each beam is
measured again on the vocabulary shortlist (`--shortlist-frequent`, `--shortlist-per-source`),
with the fraction of sentences whose output is the same as without it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from datasets import Dataset

from mt.config import DEFAULT_SHORTLIST_FREQUENT, DEFAULT_SHORTLIST_PER_SOURCE, DataConfig
from mt.data.loaders import eval_batch_size
from mt.data.pipeline import prepare_data
from mt.models.flops import decode_token_flops, encode_flops
from mt.models.seq2seq import Seq2Seq
from mt.runtime import resolve_device, synchronize, tune_allocator
from mt.search.base import SearchConfig
from mt.search.shortlist import Shortlist, load_table
from mt.search.translate import translate_split
from mt.training.checkpoint import load_model


def decode_speed(
    model: Seq2Seq,
    ds: Dataset,
    data_cfg: DataConfig,
    search: SearchConfig,
    device: torch.device,
    repeats: int = 3,
    warmup: bool = True,
    shortlist: Shortlist | None = None,
) -> dict[str, Any]:
    """Decode every row of the encoded split `ds` `repeats` times (after one untimed batch of
    sentences (one decoding batch, see mt.data.loaders.eval_batch_size) when `warmup`).

    Returns sentences/s per repeat (`rates`) with their median / min / max, model GFLOP/s per
    repeat (`gflops`), and from one more, untimed pass that counts the model's work: its FLOPs
    (`model_flops`), the decoder rows it stepped (`hypothesis_steps`, beam hypotheses times
    steps), the mean output length in tokens and the fraction of outputs that ended with EOS
    (the rest were cut at the length cap), and the outputs' token ids (`outputs`).
    """
    if warmup:
        translate_split(
            model,
            ds.select(range(min(len(ds), eval_batch_size(data_cfg, search.beam_size)))),
            data_cfg,
            search,
            device,
            shortlist,
        )
    rates, hyps = [], []
    for _ in range(repeats):
        synchronize(device)
        t0 = time.perf_counter()
        hyps = translate_split(model, ds, data_cfg, search, device, shortlist)
        synchronize(device)
        rates.append(len(ds) / (time.perf_counter() - t0))
    with counted_work(model) as work:
        hyps = translate_split(model, ds, data_cfg, search, device, shortlist)
    best = [nbest[0] for nbest in hyps]
    return {
        "median": statistics.median(rates),
        "min": min(rates),
        "max": max(rates),
        "rates": rates,
        "gflops": [work["flops"] * r / len(ds) / 1e9 for r in rates],
        "model_flops": work["flops"],
        "hypothesis_steps": work["hypothesis_steps"],
        "sentences": len(ds),
        "mean_output_tokens": sum(len(h.tokens) for h in best) / max(len(best), 1),
        "finished_fraction": sum(h.finished for h in best) / max(len(best), 1),
        "outputs": [h.tokens for h in best],
    }


@contextmanager
def counted_work(model: Seq2Seq) -> Iterator[dict[str, float]]:
    """Inside, every `model.encode` and `model.next_scores` call adds its model FLOPs (real
    source tokens only) to the yielded `flops`, and its rows to `hypothesis_steps`."""
    work = {"flops": 0.0, "hypothesis_steps": 0}
    encode, next_scores = model.encode, model.next_scores

    def counted_encode(src, src_lens, src_mask, vocab=None):  # src (B, S), src_lens (B,), src_mask (B, S)
        work["flops"] += encode_flops(model, float(src_lens.sum()), src.size(0))
        return encode(src, src_lens, src_mask, vocab)

    def counted_next_scores(prev, state, ctx):  # prev (N,): one row per live hypothesis
        rows = prev.numel()
        vocab = None if ctx.vocab_out is None else ctx.vocab_out[0].size(0)  # a shortlist's V'
        work["flops"] += rows * decode_token_flops(model, float(ctx.mask.sum()) / rows, vocab)
        work["hypothesis_steps"] += rows
        return next_scores(prev, state, ctx)

    model.encode, model.next_scores = counted_encode, counted_next_scores  # shadow the methods
    try:
        yield work
    finally:
        del model.encode, model.next_scores


def search_name(beam: int) -> str:
    return "greedy" if beam == 1 else f"beam{beam}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--split", default="test_2016_flickr")
    ap.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    ap.add_argument("--batch", type=int, default=0, help="sentences per batch; 0: --rows // beam")
    ap.add_argument("--rows", type=int, default=500, help="hypotheses per batch when --batch is 0")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--shortlist", help="mt-shortlist's file: measure each beam on it too")
    ap.add_argument("--shortlist-frequent", type=int, default=DEFAULT_SHORTLIST_FREQUENT)
    ap.add_argument("--shortlist-per-source", type=int, default=DEFAULT_SHORTLIST_PER_SOURCE)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    tune_allocator()
    device = resolve_device(args.device)
    loaded = load_model(args.checkpoint, device)
    data_cfg = loaded.config.data
    data_cfg.eval_batch_sentences = args.batch
    data_cfg.eval_batch_rows = args.rows
    data = prepare_data(data_cfg, loaded.config.tokenizer, tokenizer=loaded.tokenizer)
    ds = data.encoded[args.split]
    t = loaded.config.trainer
    results = {"split": args.split, "sentences": len(ds), "batch": args.batch, "rows": args.rows, "precision": args.precision,
               "threads": torch.get_num_threads(), "device": str(device)}  # fmt: skip
    shortlist = None
    if args.shortlist:
        table = load_table(args.shortlist, loaded.tokenizer.to_bytes())
        shortlist = Shortlist(table, args.shortlist_frequent, args.shortlist_per_source)
    for beam in args.beams:
        search = SearchConfig.from_trainer(t, beam_size=beam, precision=args.precision)
        speed = decode_speed(loaded.model, ds, data_cfg, search, device, args.repeats)
        report(
            results,
            search_name(beam),
            speed,
            f"{args.precision}, batches of {eval_batch_size(data_cfg, beam)}",
        )
        if shortlist is not None:
            shortlist.sizes.clear()
            short = decode_speed(
                loaded.model, ds, data_cfg, search, device, args.repeats, shortlist=shortlist
            )
            same = sum(a == b for a, b in zip(short["outputs"], speed["outputs"], strict=True)) / len(ds)
            name = f"{search_name(beam)}_shortlist"
            results[f"{name}_same_output"] = same
            results[f"{name}_settings"] = shortlist.describe()
            report(results, name, short, f"{shortlist.describe()['mean_candidates']:.0f} candidates a batch on "
                   f"average, same output as without for {same:.1%} of the sentences")  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


def report(results: dict[str, Any], name: str, speed: dict[str, Any], note: str) -> None:
    """Add one measurement to `results` and print it."""
    results[f"{name}_sents_per_sec"] = {k: speed[k] for k in ("median", "min", "max")}
    results[f"{name}_gflops"] = statistics.median(speed["gflops"])
    results[f"{name}_hypothesis_steps"] = speed["hypothesis_steps"]
    print(f"{name}: {speed['median']:.0f} sentences/s (min {speed['min']:.0f}, max {speed['max']:.0f}) "
          f"over {speed['sentences']} sentences, {note}; model {statistics.median(speed['gflops']):.0f} GFLOP/s, "
          f"{speed['hypothesis_steps'] / speed['sentences']:.1f} decoder rows stepped per sentence")  # fmt: skip


if __name__ == "__main__":
    main()
