"""Turning text splits into subword ids (cached on disk, memory-mapped) and filtering the train split.

Encoded splits keep ``src``/``tgt`` text and add:

- ``src_ids``: source ids ending with EOS; ``src_len = len(src_ids)`` (EOS included);
- ``tgt_ids``: target ids without BOS/EOS; ``tgt_len = len(tgt_ids)`` (the collate adds them).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict, Features, List, Value, concatenate_datasets

from mt.data.cache import entry_lock, reusable, write_record
from mt.data.hashing import hash_json
from mt.data.text_store import iter_rows, open_arrow, text_key, write_arrow
from mt.data.tokenizer import Tokenizer
from mt.errors import DataError

logger = logging.getLogger("mt.data")

_ENCODE_VERSION = 2  # 2: the cache holds ids, lengths and blank flags; the text stays in its own file
ENCODE_ROWS = 20_000  # sentence pairs encoded (and written) at a time
IDS_FEATURES = Features(
    {
        "src_ids": List(Value("int32")),
        "tgt_ids": List(Value("int32")),
        "src_len": Value("int32"),
        "tgt_len": Value("int32"),
        "blank": Value("bool"),  # the source or the target text is empty or only white space
    }
)
ENCODED_FEATURES = Features({"src": Value("string"), "tgt": Value("string"), **IDS_FEATURES})


def text_column(ds: Dataset, name: str) -> list[str]:
    """Return a string column as a Python list (fast path through Arrow)."""
    return ds.with_format("arrow")[name].to_pylist()


def int_column(ds: Dataset, name: str) -> np.ndarray:
    """Return an integer column as a numpy array (fast path through Arrow)."""
    return ds.with_format("arrow")[name].to_numpy()


def encode_columns(src: list[str], tgt: list[str], tokenizer: Tokenizer) -> dict[str, list]:
    """Return the columns of :data:`IDS_FEATURES` for these sentence pairs."""
    src_ids = tokenizer.encode_src(src)  # sentencepiece encodes a batch on every core
    tgt_ids = tokenizer.encode_tgt(tgt)
    return {
        "src_ids": src_ids,
        "tgt_ids": tgt_ids,
        "src_len": [len(x) for x in src_ids],
        "tgt_len": [len(x) for x in tgt_ids],
        "blank": [not s.strip() or not t.strip() for s, t in zip(src, tgt, strict=True)],
    }


def _encode_batches(ds: Dataset, tokenizer: Tokenizer) -> Iterator[dict[str, list]]:
    for batch in iter_rows(ds, ["src", "tgt"], ENCODE_ROWS):
        yield encode_columns(batch["src"], batch["tgt"], tokenizer)


def _opens_as(n_rows: int) -> Callable[[Path], object]:
    """Return a check that the arrow file at a path loads as ``n_rows`` rows of :data:`IDS_FEATURES`."""

    def opens(path: Path) -> None:
        loaded = open_arrow(path)
        if loaded.num_rows != n_rows or loaded.features != IDS_FEATURES:
            raise ValueError(
                f"{loaded.num_rows} rows of {sorted(loaded.features)}, expected {n_rows} encoded rows"
            )

    return opens


def encode_split(ds: Dataset, tokenizer: Tokenizer, cache_dir: str | os.PathLike[str], name: str) -> Dataset:
    """Return ``ds`` with id and length columns, loaded from ``cache_dir/encoded/`` when cached.

    The ids are streamed, a batch at a time, into ``<name>-<key>.arrow`` (memory-mapped, beside
    the text: nothing is copied), reused only when its record ``<name>-<key>.arrow.json`` vouches
    for it (see :mod:`mt.data.cache`); otherwise it is (re)built.
    """
    if ds._indices is not None:  # row selections of datasets: join by position needs the rows themselves
        ds = ds.flatten_indices()
    src_key, tgt_key = text_key(ds, "src"), text_key(ds, "tgt")
    key = hash_json(_ENCODE_VERSION, tokenizer.fingerprint, src_key, tgt_key)[:24]
    built_for = {"version": _ENCODE_VERSION, "tokenizer": tokenizer.fingerprint, "src_text": src_key,
                 "tgt_text": tgt_key}  # fmt: skip
    path = Path(cache_dir) / "encoded" / f"{name}-{key}.arrow"
    record = path.with_name(path.name + ".json")
    with entry_lock("encoded-data cache", path):
        if reusable("encoded-data cache", record, built_for, [path], opens=_opens_as(len(ds))):
            logger.info("data: reusing encoded %s split from %s", name, path)
        else:
            logger.info("data: encoding the %s split (%d pairs)", name, len(ds))
            write_arrow(path, IDS_FEATURES, _encode_batches(ds, tokenizer))
            write_record(record, built_for, [path], split=name)
        ids = open_arrow(path, hash_json("encoded", key)[:24])
    return concatenate_datasets([ds, ids], axis=1)


def encode_splits(dsd: DatasetDict, tokenizer: Tokenizer, cache_dir: str | os.PathLike[str]) -> DatasetDict:
    """Return every split with ``src_ids``, ``tgt_ids``, ``src_len``, ``tgt_len`` columns (disk-cached)."""
    return DatasetDict({name: encode_split(ds, tokenizer, cache_dir, name) for name, ds in dsd.items()})


def filter_train(ds: Dataset, max_len: int) -> tuple[Dataset, int]:
    """Return the train pairs with non-blank text and at most ``max_len`` subwords a side, and the number dropped.

    Lengths exclude the special tokens (the source EOS is not counted). Use on train only:
    validation and test sets are never filtered.
    """
    table = ds.select_columns(["src_len", "tgt_len", "blank"]).with_format("arrow")[:]  # no text read
    empty = table.column("blank").to_numpy(zero_copy_only=False).astype(bool)
    src_sub = table.column("src_len").to_numpy() - 1  # without EOS
    tgt_sub = table.column("tgt_len").to_numpy()
    empty |= (src_sub <= 0) | (tgt_sub <= 0)
    too_long = ~empty & ((src_sub > max_len) | (tgt_sub > max_len))
    keep = ~(empty | too_long)
    n_dropped = int(len(ds) - keep.sum())
    logger.info(
        "data: train filter dropped %d of %d pairs (%d empty, %d longer than data.max_len=%d subwords)",
        n_dropped,
        len(ds),
        int(empty.sum()),
        int(too_long.sum()),
        max_len,
    )
    if n_dropped == len(ds) and len(ds) > 0:
        raise DataError(
            f"every train pair was dropped ({int(empty.sum())} empty, {int(too_long.sum())} longer than "
            f"{max_len} subwords). Raise data.max_len or check the train data."
        )
    if n_dropped == 0:
        return ds, 0
    return ds.select(np.flatnonzero(keep)), n_dropped
