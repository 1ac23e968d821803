"""The text of a corpus split as a memory-mapped Arrow file, written once from the files it is read from.

Multi30k and local splits are streamed, a batch of pairs at a time, into
``<cache_dir>/text/<split>-<key>.arrow`` (string columns ``src`` and ``tgt``), ``key`` being a hash
of the input files' SHA-256 and of how they are read. The file is memory-mapped, so a split of
any size costs the process only the pages it touches; the record beside it vouches for it (see
:mod:`mt.data.cache`), and a damaged or foreign file is rebuilt.

A text dataset made here carries a fingerprint ``mt-text-<key>`` that identifies its content, so
later caches (tokenizer, encoded ids) are keyed by it instead of hashing every sentence again
(`text_key`); any other dataset (hub, in memory) is hashed sentence by sentence.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
from datasets import Dataset, Features, Value
from datasets.table import MemoryMappedTable

from mt.data.cache import entry_lock, file_digest, reusable, write_record
from mt.data.hashing import TextArrayHash, hash_json
from mt.io import atomic_write

logger = logging.getLogger("mt.data")

TEXT_FEATURES = Features({"src": Value("string"), "tgt": Value("string")})
KEY_PREFIX = "mt-text-"
READ_ROWS = 20_000  # rows per batch when a split is read back in order
_TEXT_VERSION = 1

Batches = Iterable[tuple[list[str], list[str]]]


def pairs_to_dataset(src: list[str], tgt: list[str]) -> Dataset:
    """Return an in-memory Dataset with string columns ``src`` and ``tgt``."""
    return Dataset.from_dict({"src": src, "tgt": tgt}, features=TEXT_FEATURES)


def write_arrow(path: Path, features: Features, batches: Iterable[dict[str, pa.Array | list]]) -> int:
    """Write ``batches`` (column -> values) as one Arrow stream file at ``path``, atomically; return its rows."""
    schema = features.arrow_schema
    rows = 0

    def write(f: IO[bytes]) -> None:
        nonlocal rows
        with pa.ipc.new_stream(f, schema) as writer:
            for batch in batches:
                arrays = [pa.array(batch[name], type=schema.field(name).type) for name in schema.names]
                writer.write_batch(pa.record_batch(arrays, schema=schema))
                rows += len(arrays[0])

    atomic_write(path, write)
    return rows


def open_arrow(path: Path, fingerprint: str | None = None) -> Dataset:
    """Return the Arrow stream file at ``path`` as a memory-mapped Dataset."""
    return Dataset(MemoryMappedTable.from_file(str(path)), fingerprint=fingerprint)


def _opens(path: Path) -> None:
    features = open_arrow(path).features
    if features != TEXT_FEATURES:
        raise ValueError(f"columns {sorted(features)}, expected src, tgt text")


def cached_text(
    cache_dir: str | os.PathLike[str],
    split: str,
    inputs: Sequence[Path],
    how: Mapping[str, Any],
    batches: Callable[[], Batches],
) -> Dataset:
    """Return the text of ``split`` read from the files ``inputs`` by ``batches()``, converted once.

    ``how`` holds every setting of the reading that changes the text (format, languages); the
    cached file is reused only for the same input contents and ``how``.
    """
    built_for = {
        "version": _TEXT_VERSION,
        "inputs": [file_digest(p)["sha256"] for p in inputs],
        "how": dict(how),
    }
    key = hash_json(built_for)[:24]
    path = Path(cache_dir) / "text" / f"{split}-{key}.arrow"
    record = path.with_name(path.name + ".json")
    with entry_lock("text cache", path):
        if reusable("text cache", record, built_for, [path], opens=_opens):
            logger.info("data: reusing the %s text from %s", split, path)
        else:
            rows = write_arrow(path, TEXT_FEATURES, ({"src": s, "tgt": t} for s, t in batches()))
            write_record(record, built_for, [path], split=split, rows=rows)
        return open_arrow(path, KEY_PREFIX + key)


def is_keyed(ds: Dataset) -> bool:
    """Whether ``ds`` is a text dataset of this module (its fingerprint names its content)."""
    return ds._fingerprint.startswith(KEY_PREFIX) and ds._indices is None


def first_rows(ds: Dataset, n: int) -> Dataset:
    """Return the first ``n`` rows of ``ds``, keyed when ``ds`` is."""
    if not is_keyed(ds):
        return ds.select(range(n))
    return Dataset(ds.data.slice(0, n), fingerprint=KEY_PREFIX + hash_json(ds._fingerprint, n)[:24])


def text_key(ds: Dataset, column: str) -> str:
    """Return a hash of the text in ``column`` of ``ds``: from its key when keyed, else of every sentence."""
    if is_keyed(ds):
        return hashlib.sha256(f"{ds._fingerprint}/{column}".encode()).hexdigest()
    h = TextArrayHash()
    for table in ds.select_columns([column]).with_format("arrow").iter(batch_size=100_000):
        h.update(table.column(column))
    return h.hexdigest()


def iter_rows(ds: Dataset, columns: Sequence[str], rows: int = READ_ROWS) -> Iterator[dict[str, list]]:
    """Yield ``ds``'s ``columns`` in order, ``rows`` at a time, as Python lists."""
    view = ds.select_columns(list(columns)).with_format("arrow")
    for table in view.iter(batch_size=rows):
        yield {name: table.column(name).to_pylist() for name in columns}


def sample_rows(n: int, k: int, seed: int) -> np.ndarray:
    """Return ``k`` of the row numbers ``0..n-1`` drawn without replacement with ``seed``, in
    increasing order; all of them when ``k <= 0`` or ``k >= n``."""
    if k <= 0 or k >= n:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=k, replace=False))


def take_rows(ds: Dataset, rows: np.ndarray, columns: Sequence[str]) -> dict[str, list]:
    """Return ``columns`` of the (increasing) ``rows`` of ``ds`` as Python lists, reading ``ds`` in order."""
    out: dict[str, list] = {name: [] for name in columns}
    start = 0
    for table in ds.select_columns(list(columns)).with_format("arrow").iter(batch_size=READ_ROWS):
        lo, hi = np.searchsorted(rows, [start, start + table.num_rows])
        if hi > lo:  # only the rows drawn become Python strings
            picked = table.take(pa.array(rows[lo:hi] - start))
            for name in columns:
                out[name] += picked.column(name).to_pylist()
        start += table.num_rows
    return out
