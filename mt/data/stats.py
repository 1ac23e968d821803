"""Statistics of a prepared corpus: sentences, subword tokens, length percentiles, dropped
pairs, batches and padding, and the preparation time (what `mt-data` reports)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from mt.command_config import DataStatsConfig
from mt.config import validate_data, validate_tokenizer
from mt.data.loaders import BucketBatchSampler, int_column, padding_stats
from mt.data.pipeline import prepare_data

PERCENTILES = (50, 90, 95, 99, 100)


def length_stats(lengths: np.ndarray) -> dict[str, Any]:
    """Total, mean and percentiles of a length column."""
    if len(lengths) == 0:
        return {"total": 0, "mean": 0.0, **{f"p{p}": 0 for p in PERCENTILES}}
    pct = np.percentile(lengths, PERCENTILES)
    return {"total": int(lengths.sum()), "mean": round(float(lengths.mean()), 2),
            **{f"p{p}": int(round(v)) for p, v in zip(PERCENTILES, pct, strict=True)}}  # fmt: skip


def data_stats(cfg: DataStatsConfig) -> dict[str, Any]:
    """Prepare the data as `mt-train` would and measure it."""
    validate_data(cfg.data)
    validate_tokenizer(cfg.tokenizer)
    t0 = time.perf_counter()
    data = prepare_data(cfg.data, cfg.tokenizer)
    seconds = time.perf_counter() - t0
    splits = {}
    for name, ds in data.encoded.items():
        # src_len counts the EOS the encoder sees; report subwords of the text itself
        src = int_column(ds, "src_len") - 1
        tgt = int_column(ds, "tgt_len")
        splits[name] = {
            "sentences": len(ds),
            "src_tokens": length_stats(src),
            "tgt_tokens": length_stats(tgt),
        }
    train = data.train
    sampler = BucketBatchSampler(
        int_column(train, "src_len"), int_column(train, "tgt_len"), batch_tokens=cfg.data.batch_tokens,
        batch_sentences=cfg.data.batch_sentences, seed=cfg.seed, chunk_batches=cfg.data.bucket_chunk_batches,
    )  # fmt: skip
    padding = padding_stats(sampler, int_column(train, "src_len"), int_column(train, "tgt_len"))
    return {
        "data": {"source": cfg.data.source, "src_lang": cfg.data.src_lang, "tgt_lang": cfg.data.tgt_lang},
        "tokenizer": {"model_type": cfg.tokenizer.model_type, "vocab_size": cfg.tokenizer.vocab_size,
                      "joint": cfg.tokenizer.joint, "src_vocab": data.tokenizer.src_vocab_size,
                      "tgt_vocab": data.tokenizer.tgt_vocab_size},
        "prepare_seconds": round(seconds, 2),
        "splits": splits,
        "train_dropped": {"pairs": data.n_dropped, "max_len": cfg.data.max_len, "limit_train": cfg.data.limit_train},
        "train_batches": {"batches_per_epoch": len(sampler), "batch_tokens": cfg.data.batch_tokens, **padding},
    }  # fmt: skip


def print_table(stats: dict[str, Any]) -> None:
    """The statistics as a table on standard output."""
    print(f"{'split':<18} {'sentences':>9}  {'src tok':>8} {'mean':>6} {'p50/p90/p99/max':>16}  "
          f"{'tgt tok':>8} {'mean':>6} {'p50/p90/p99/max':>16}")  # fmt: skip
    for name, s in stats["splits"].items():
        cells = []
        for side in ("src_tokens", "tgt_tokens"):
            x = s[side]
            cells.append(f"{x['total']:>8} {x['mean']:>6} {x['p50']:>4}/{x['p90']}/{x['p99']}/{x['p100']:<5}")
        print(f"{name:<18} {s['sentences']:>9}  {cells[0]:>32}  {cells[1]:>32}")
    b = stats["train_batches"]
    print(f"train: {stats['train_dropped']['pairs']} pairs dropped (> {stats['train_dropped']['max_len']} subwords or empty); "
          f"{b['batches_per_epoch']} batches/epoch of <= {b['batch_tokens']} tokens; padding "
          f"{100 * b['src_pad_frac']:.1f}% of source, {100 * b['tgt_pad_frac']:.1f}% of target positions")  # fmt: skip
    print(f"prepared in {stats['prepare_seconds']:.1f}s")
