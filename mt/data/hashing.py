"""Content hashes of text collections, used as cache keys for tokenizers and encoded datasets."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from itertools import islice

import numpy as np


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
