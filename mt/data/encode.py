"""Turning text splits into subword ids (cached on disk) and filtering the train split.

Encoded splits keep ``src``/``tgt`` text and add:

- ``src_ids``: source ids ending with EOS; ``src_len = len(src_ids)`` (EOS included);
- ``tgt_ids``: target ids without BOS/EOS; ``tgt_len = len(tgt_ids)`` (the collate adds them).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
from datasets import Dataset, DatasetDict, Features, List, Value

from mt.data.cache import reusable, write_record
from mt.data.hashing import hash_json, hash_texts
from mt.data.tokenizer import Tokenizer
from mt.errors import DataError

logger = logging.getLogger("mt.data")

_ENCODE_VERSION = 1
ENCODED_FEATURES = Features(
    {
        "src": Value("string"),
        "tgt": Value("string"),
        "src_ids": List(Value("int32")),
        "tgt_ids": List(Value("int32")),
        "src_len": Value("int32"),
        "tgt_len": Value("int32"),
    }
)


def text_column(ds: Dataset, name: str) -> list[str]:
    """Return a string column as a Python list (fast path through Arrow)."""
    return ds.with_format("arrow")[name].to_pylist()


def int_column(ds: Dataset, name: str) -> np.ndarray:
    """Return an integer column as a numpy array (fast path through Arrow)."""
    return ds.with_format("arrow")[name].to_numpy()


def _encode_batch(batch: dict[str, list], tokenizer: Tokenizer) -> dict[str, list]:
    src_ids = tokenizer.encode_src(batch["src"])
    tgt_ids = tokenizer.encode_tgt(batch["tgt"])
    return {
        "src_ids": src_ids,
        "tgt_ids": tgt_ids,
        "src_len": [len(x) for x in src_ids],
        "tgt_len": [len(x) for x in tgt_ids],
    }


def _open_arrow(n_rows: int) -> Callable[[Path], object]:
    """Return a check that the arrow file at a path loads as ``n_rows`` rows of :data:`ENCODED_FEATURES`."""

    def opens(path: Path) -> None:
        loaded = Dataset.from_file(str(path))
        if loaded.num_rows != n_rows or loaded.features != ENCODED_FEATURES:
            raise ValueError(
                f"{loaded.num_rows} rows of {sorted(loaded.features)}, expected {n_rows} encoded rows"
            )

    return opens


def encode_split(ds: Dataset, tokenizer: Tokenizer, cache_dir: str | os.PathLike[str], name: str) -> Dataset:
    """Return ``ds`` with id and length columns, loaded from ``cache_dir/encoded/`` when cached.

    The cached ``<name>-<key>.arrow`` is reused only when its record ``<name>-<key>.arrow.json``
    vouches for it (see :mod:`mt.data.cache`); otherwise it is (re)built.
    """
    src_hash, tgt_hash = hash_texts(text_column(ds, "src")), hash_texts(text_column(ds, "tgt"))
    key = hash_json(_ENCODE_VERSION, tokenizer.fingerprint, src_hash, tgt_hash)[:24]
    built_for = {"version": _ENCODE_VERSION, "tokenizer": tokenizer.fingerprint, "src_text": src_hash,
                 "tgt_text": tgt_hash}  # fmt: skip
    path = Path(cache_dir) / "encoded" / f"{name}-{key}.arrow"
    record = path.with_name(path.name + ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    # datasets loads any file at cache_file_name: let it only when the record vouches for it
    cached = reusable("encoded-data cache", record, built_for, [path], opens=_open_arrow(len(ds)))
    if cached:
        logger.info("data: reusing encoded %s split from %s", name, path)
    out = ds.map(
        _encode_batch,
        batched=True,
        batch_size=2000,
        fn_kwargs={"tokenizer": tokenizer},
        features=ENCODED_FEATURES,
        cache_file_name=str(path),
        load_from_cache_file=cached,
        new_fingerprint=key,
        desc=f"encode {name}",
    )
    if not cached:  # datasets wrote path (via a temporary file); vouch for it
        write_record(record, built_for, [path], split=name)
    return out


def encode_splits(dsd: DatasetDict, tokenizer: Tokenizer, cache_dir: str | os.PathLike[str]) -> DatasetDict:
    """Return every split with ``src_ids``, ``tgt_ids``, ``src_len``, ``tgt_len`` columns (disk-cached)."""
    return DatasetDict({name: encode_split(ds, tokenizer, cache_dir, name) for name, ds in dsd.items()})


def filter_train(ds: Dataset, max_len: int) -> tuple[Dataset, int]:
    """Return the train pairs with non-empty text and at most ``max_len`` subwords a side, and the number dropped.

    Lengths exclude the special tokens (the source EOS is not counted). Use on train only:
    validation and test sets are never filtered.
    """
    table = ds.with_format("arrow")[:]
    empty = np.zeros(len(ds), dtype=bool)
    for col in ("src", "tgt"):
        trimmed = pc.utf8_trim_whitespace(table.column(col))
        empty |= pc.equal(pc.utf8_length(trimmed), 0).to_numpy(zero_copy_only=False)
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
