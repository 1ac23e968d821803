"""Benchmark the data pipeline on Multi30k: load, tokenizer, encode, padding, collate time.

Prints one JSON object. Usage: ``MT_DATA_DIR=../shared/data python scripts/bench_data.py``
(add ``--src de --tgt en --cache /tmp/mt_bench``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from datasets import Dataset

from mt.config import DataConfig, TokenizerConfig
from mt.data.encode import int_column, text_column
from mt.data.loaders import BucketBatchSampler, PairBatches, encode_splits, filter_train, padding_stats
from mt.data.sources import load_parallel
from mt.data.tokenizer import Tokenizer


def stage_times(cfg: DataConfig, tok_cfg: TokenizerConfig, cache: str) -> tuple[dict[str, float], Dataset]:
    """Seconds to load the text, train (or load) the tokenizer and encode the splits with
    `cache` as the cache folder; also returns the filtered, encoded train split."""
    out: dict[str, float] = {}
    t = time.perf_counter()
    dsd = load_parallel(cfg)
    out["load_s"] = time.perf_counter() - t
    t = time.perf_counter()
    train = dsd["train"]
    tok = Tokenizer.train_or_load(text_column(train, "src"), text_column(train, "tgt"), tok_cfg, cache)
    out["tokenizer_s"] = time.perf_counter() - t
    t = time.perf_counter()
    enc = encode_splits(dsd, tok, cache)
    out["encode_s"] = time.perf_counter() - t
    train, _ = filter_train(enc["train"], cfg.max_len)
    return out, train


def batching_stats(train: Dataset, cfg: DataConfig, repeats: int = 5, seed: int = 1) -> dict[str, float]:
    """Padding of one epoch of length-bucketed batches and the time to collate them: the mean
    milliseconds per batch over all `repeats` passes (`collate_ms_per_batch`) and per pass
    (`collate_ms_per_batch_runs`)."""
    src, tgt = int_column(train, "src_len"), int_column(train, "tgt_len")
    sampler = BucketBatchSampler(
        src, tgt, cfg.batch_tokens, cfg.batch_sentences, seed=seed, chunk_batches=cfg.bucket_chunk_batches
    )
    out: dict = dict(padding_stats(sampler, src, tgt))
    fetch = PairBatches(train)
    batches = sampler.epoch_batches(0)
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        for b in batches:
            fetch[b]
        runs.append(1e3 * (time.perf_counter() - t) / len(batches))
    out["collate_ms_per_batch"] = statistics.fmean(runs)
    out["collate_ms_per_batch_runs"] = runs
    out["mean_padded_tokens_per_batch"] = float(np.mean([fetch[b].src.numel() for b in batches]))
    return out


def main() -> None:
    """Run the benchmark and print its results as JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--src", default="de")
    ap.add_argument("--tgt", default="en")
    ap.add_argument("--cache", default="data/cache")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cfg = DataConfig(src_lang=args.src, tgt_lang=args.tgt, cache_dir=args.cache)
    out, train = stage_times(cfg, TokenizerConfig(), args.cache)
    stats = batching_stats(train, cfg, args.repeats)
    stats.pop("collate_ms_per_batch_runs")
    out.update(stats)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
