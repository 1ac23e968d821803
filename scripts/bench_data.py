"""Benchmark the data pipeline on Multi30k: load, tokenizer, encode, padding, collate time.

Prints one JSON object. Usage: ``MT_DATA_DIR=../shared/data python scripts/bench_data.py``
(add ``--src de --tgt en --cache /tmp/mt_bench``).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from mt.config import DataConfig, TokenizerConfig
from mt.data.batching import BucketBatchSampler, PairBatches, encode_splits, filter_train, padding_stats
from mt.data.encode import int_column, text_column
from mt.data.sources import load_parallel
from mt.tokenizer import Tokenizer


def main() -> None:
    """Run the benchmark and print its results as JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--src", default="de")
    ap.add_argument("--tgt", default="en")
    ap.add_argument("--cache", default="data/cache")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cfg = DataConfig(src_lang=args.src, tgt_lang=args.tgt, cache_dir=args.cache)
    out: dict[str, float] = {}
    t = time.perf_counter()
    dsd = load_parallel(cfg)
    out["load_s"] = time.perf_counter() - t
    t = time.perf_counter()
    train = dsd["train"]
    tok = Tokenizer.train_or_load(
        text_column(train, "src"), text_column(train, "tgt"), TokenizerConfig(), args.cache
    )
    out["tokenizer_s"] = time.perf_counter() - t
    t = time.perf_counter()
    enc = encode_splits(dsd, tok, args.cache)
    out["encode_s"] = time.perf_counter() - t
    train, _ = filter_train(enc["train"], cfg.max_len)
    src, tgt = int_column(train, "src_len"), int_column(train, "tgt_len")
    sampler = BucketBatchSampler(
        src, tgt, cfg.batch_tokens, cfg.batch_sentences, seed=1, chunk_batches=cfg.bucket_chunk_batches
    )
    out.update(padding_stats(sampler, src, tgt))
    fetch = PairBatches(train)
    batches = sampler.epoch_batches(0)
    t = time.perf_counter()
    for _ in range(args.repeats):
        for b in batches:
            fetch[b]
    out["collate_ms_per_batch"] = 1e3 * (time.perf_counter() - t) / (args.repeats * len(batches))
    out["mean_padded_tokens_per_batch"] = float(np.mean([fetch[b].src.numel() for b in batches]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
