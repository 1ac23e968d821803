"""Content hashes of text collections, used as cache keys for tokenizers and encoded datasets."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from itertools import islice

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def hash_texts(texts: Iterable[str], chunk: int = 65536) -> str:
    """Return the sha256 hex digest of a sequence of strings (order, count and boundaries included)."""
    h = hashlib.sha256()
    it = iter(texts)
    n = 0
    while batch := [s.encode("utf-8", "surrogatepass") for s in islice(it, chunk)]:
        h.update(np.fromiter((len(b) for b in batch), dtype=np.int64, count=len(batch)).tobytes())
        h.update(b"".join(batch))
        n += len(batch)
    h.update(n.to_bytes(8, "little"))
    return h.hexdigest()


def hash_json(*parts: object) -> str:
    """Return the sha256 hex digest of JSON-serialisable parts (dict keys sorted)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class TextArrayHash:
    """sha256 of a sequence of strings fed as Arrow string arrays, whatever their chunking
    (lengths and bytes are hashed apart, then combined with the count)."""

    def __init__(self) -> None:
        self._lengths = hashlib.sha256()
        self._bytes = hashlib.sha256()
        self._n = 0

    def update(self, column: pa.Array | pa.ChunkedArray) -> None:
        """Add the strings of ``column`` (nulls count as empty strings)."""
        for chunk in column.chunks if isinstance(column, pa.ChunkedArray) else [column]:
            if chunk.null_count:
                chunk = pc.fill_null(chunk, "")
            wide = pa.types.is_large_string(chunk.type)
            offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64 if wide else np.int32)
            offsets = offsets[chunk.offset : chunk.offset + len(chunk) + 1].astype(np.int64)
            if len(chunk):
                self._lengths.update(np.diff(offsets).tobytes())
                data = chunk.buffers()[2]
                if data is not None:
                    self._bytes.update(memoryview(data)[int(offsets[0]) : int(offsets[-1])])
            self._n += len(chunk)

    def hexdigest(self) -> str:
        """The digest of everything added so far."""
        return hash_json(self._lengths.hexdigest(), self._bytes.hexdigest(), self._n)
