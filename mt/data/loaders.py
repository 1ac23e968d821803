"""From encoded splits to DataLoaders of :class:`Batch` (the data pipeline's last step).

Typical use::

    dsd = encode_splits(load_parallel(cfg.data), tokenizer, cache_dir)
    train, n_dropped = filter_train(dsd["train"], cfg.data.max_len)
    loader = make_train_loader(train, tokenizer, cfg.data, seed=cfg.seed)
    for epoch in range(n):
        loader.sampler.set_epoch(epoch)          # or set_epoch(epoch, start_batch=k) to resume
        for batch in loader: ...
    for batch in make_eval_loader(dsd["validation"], cfg.data): ...   # batch.indices -> restore_order

This module also re-exports the pieces it is built from (encoding, sampler, collate) so callers
need one import.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

import numpy as np
import pyarrow as pa
import sentencepiece as spm
import torch
from datasets import Dataset
from torch.utils.data import DataLoader

from mt.config import DataConfig
from mt.data.collate import Batch, RaggedIds, collate, collate_ragged
from mt.data.encode import encode_split, encode_splits, filter_train, int_column
from mt.data.sampler import BucketBatchSampler, padding_stats
from mt.data.tokenizer import Tokenizer

__all__ = [
    "Batch",
    "BucketBatchSampler",
    "PairBatches",
    "RaggedIds",
    "collate",
    "collate_ragged",
    "encode_split",
    "encode_splits",
    "eval_batch_size",
    "eval_batches",
    "filter_train",
    "make_eval_loader",
    "make_train_loader",
    "padding_stats",
    "restore_order",
]

T = TypeVar("T")


PRELOAD_BYTES = 64 << 20  # id columns up to this size are read once (faster batches); larger ones per batch


class PairBatches(torch.utils.data.Dataset):
    """Map-style dataset whose item for a list of row indices is that whole :class:`Batch`.

    Ids come from the encoded columns: read into memory once when they take at most
    :data:`PRELOAD_BYTES` (Multi30k: 4 MB), else read per batch from the memory-mapped cache, so
    memory does not grow with the corpus. With ``sample=True`` (subword regularisation, train
    only) the raw text of each batch is re-encoded with a sampled segmentation instead.
    """

    def __init__(self, ds: Dataset, tokenizer: Tokenizer | None = None, sample: bool = False) -> None:
        """``ds`` needs ``src_ids``/``tgt_ids`` columns, and ``src``/``tgt`` text when ``sample``."""
        if sample and tokenizer is None:
            raise ValueError("sample=True needs the tokenizer")
        self.n = len(ds)
        self.tokenizer = tokenizer if sample else None
        columns = ["src", "tgt"] if sample else [c for c in ("src_ids", "tgt_ids") if c in ds.column_names]
        self.rows = ds.select_columns(columns).with_format("arrow")
        self.loaded: tuple[RaggedIds, RaggedIds | None] | None = None
        if not sample and self.rows.data.nbytes <= PRELOAD_BYTES:
            self.loaded = self._ragged(self.rows[:])

    @staticmethod
    def _ragged(table: pa.Table) -> tuple[RaggedIds, RaggedIds | None]:
        tgt = RaggedIds.from_arrow(table.column("tgt_ids")) if "tgt_ids" in table.column_names else None
        return RaggedIds.from_arrow(table.column("src_ids")), tgt

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, indices: Sequence[int]) -> Batch:
        idx = np.asarray(indices, dtype=np.int64)
        if self.loaded is not None:
            return collate_ragged(*self.loaded, idx)
        table = self.rows[idx]  # (len(idx) rows) the batch's columns only
        if self.tokenizer is not None:
            src = self.tokenizer.encode_src(table.column("src").to_pylist(), sample=True)
            tgt = self.tokenizer.encode_tgt(table.column("tgt").to_pylist(), sample=True)
            return collate(src, tgt, idx)
        return collate_ragged(*self._ragged(table), np.arange(len(idx)), idx)


def _identity(x: Batch) -> Batch:
    return x


def _seed_worker(worker_id: int) -> None:
    # Forked workers inherit one sentencepiece RNG state; give each worker (and epoch) its own.
    spm.set_random_generator_seed(torch.initial_seed() % (2**31))


def make_train_loader(
    ds: Dataset,
    tokenizer: Tokenizer,
    cfg: DataConfig,
    *,
    seed: int,
    sample: bool | None = None,
    num_workers: int = 0,
    pin_memory: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> DataLoader:
    """Return a loader of bucketed train batches; its ``.sampler`` is the :class:`BucketBatchSampler`.

    ``sample`` (default: ``tokenizer.sampling_alpha > 0``) re-encodes each batch's text with a
    sampled segmentation; the token budget then uses the deterministic lengths, so a batch can
    run slightly over it.
    """
    src_lens, tgt_lens = int_column(ds, "src_len"), int_column(ds, "tgt_len")
    sampler = BucketBatchSampler(
        src_lens,
        tgt_lens,
        batch_tokens=cfg.batch_tokens,
        batch_sentences=cfg.batch_sentences,
        shuffle=True,
        seed=seed,
        chunk_batches=cfg.bucket_chunk_batches,
        rank=rank,
        world_size=world_size,
    )
    if sample is None:
        sample = tokenizer.sampling_alpha > 0
    return DataLoader(
        PairBatches(ds, tokenizer, sample=sample),
        sampler=sampler,
        batch_size=None,
        collate_fn=_identity,
        num_workers=num_workers,
        pin_memory=pin_memory,
        worker_init_fn=_seed_worker if num_workers > 0 else None,
        persistent_workers=num_workers > 0,
        # Its own generator: making an iterator must not draw from the global RNG, or a run
        # resumed mid-epoch would get other dropout masks than the uninterrupted run.
        generator=torch.Generator().manual_seed(seed),
    )


def eval_batches(
    src_lens: Sequence[int] | np.ndarray, batch_sentences: int, max_tokens: int = 12000
) -> list[list[int]]:
    """Return every index once, longest source first, in batches of at most ``batch_sentences``
    examples and ``max_tokens`` padded source tokens (a very long source gets a batch of its own)."""
    lens = np.asarray(src_lens, dtype=np.int64)
    order = np.argsort(-lens, kind="stable")
    batches: list[list[int]] = []
    cur: list[int] = []
    longest = 0
    for i in order.tolist():
        if cur and (len(cur) >= batch_sentences or (len(cur) + 1) * longest > max_tokens):
            batches.append(cur)
            cur = []
        if not cur:
            longest = int(lens[i])
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def eval_batch_size(cfg: DataConfig, rows_per_sentence: int = 1) -> int:
    """Sentences per validation / test batch: ``cfg.eval_batch_sentences`` when set, else
    ``cfg.eval_batch_rows // rows_per_sentence`` (the beam size in beam search), at least 1.

    Decoding cost per step is mostly matrix multiplies over the batch's live rows, which run
    closer to the machine's peak with a few hundred rows than with a hundred.
    """
    if cfg.eval_batch_sentences > 0:
        return cfg.eval_batch_sentences
    return max(1, cfg.eval_batch_rows // max(1, rows_per_sentence))


def make_eval_loader(
    ds: Dataset,
    cfg: DataConfig,
    *,
    batch_sentences: int | None = None,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> DataLoader:
    """Return a loader over every example of a validation/test split, sorted by source length.

    Batches hold ``batch_sentences`` examples (default: :func:`eval_batch_size` of ``cfg`` for
    one row per sentence); put outputs back in dataset order with :func:`restore_order` and
    ``batch.indices``.
    """
    batches = eval_batches(int_column(ds, "src_len"), batch_sentences or eval_batch_size(cfg))
    return DataLoader(
        PairBatches(ds),
        sampler=batches,
        batch_size=None,
        collate_fn=_identity,
        num_workers=num_workers,
        pin_memory=pin_memory,
        generator=torch.Generator(),  # leave the global RNG alone (see make_train_loader)
    )


def restore_order(indices: Iterable[int], items: Iterable[T]) -> list[T]:
    """Return ``items`` in dataset order, given the dataset row of each (e.g. the concatenated ``batch.indices``)."""
    idx = [int(i) for i in indices]
    items = list(items)
    if len(idx) != len(items):
        raise ValueError(f"restore_order got {len(idx)} indices but {len(items)} items")
    if sorted(idx) != list(range(len(idx))):
        raise ValueError(
            "restore_order needs each row index 0..n-1 exactly once (was an eval split filtered?)"
        )
    out: list = [None] * len(idx)
    for i, item in zip(idx, items, strict=True):
        out[i] = item
    return out
