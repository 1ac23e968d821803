"""Vocabulary shortlists: each batch is decoded over a subset of the target vocabulary.

As Marian's lexical shortlist (Junczys-Dowmunt et al., 2018): the candidates of a batch are
the ``frequent`` most frequent target subwords of the training corpus, the ``per_source``
most probable translations of every subword of the batch's sources under IBM Model 1
(Brown et al., 1993), trained on the training corpus by EM,

    p(t | s) = c(s, t) / sum_t' c(s, t'),   c(s, t) = sum over pairs and positions j with t_j = t of
               p(s | t_j) = t(t_j | s) / sum_{i in 0..S} t(t_j | s_i)    (s_0 = NULL),

and the special ids. The output layer, the softmax and the top-k then run over those V'
rows instead of V: faster, and a different output (a word outside the list cannot be written;
probabilities are normalised over the list). Off by default: `mt-evaluate` and `mt-translate`
use one with ``shortlist=FILE``; `mt-shortlist CHECKPOINT` builds the file (a `LexicalTable`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mt.data.tokenizer import SPECIAL_IDS
from mt.errors import CheckpointError

FORMAT = "mt-shortlist-1"
NO_ID = -1  # fills a row of `LexicalTable.lexical` whose source subword has fewer translations


@dataclass
class LexicalTable:
    """What a shortlist is made of, for one tokenizer (the file `mt-shortlist` writes)."""

    frequent: Tensor  # (Vt - 4,) long: every target id but the specials, most frequent in training first
    lexical: Tensor  # (Vs, K) long: per source id its K most probable target ids, best first; NO_ID pads
    tokenizer_sha256: str  # of `Tokenizer.to_bytes()`: the ids mean nothing with another tokenizer
    src_lang: str
    tgt_lang: str
    sentences: int  # training pairs it was estimated on
    iterations: int  # EM iterations of IBM Model 1

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "frequent": self.frequent, "lexical": self.lexical,
                "tokenizer_sha256": self.tokenizer_sha256, "src_lang": self.src_lang, "tgt_lang": self.tgt_lang,
                "sentences": self.sentences, "iterations": self.iterations}  # fmt: skip


def tokenizer_sha256(tokenizer_bytes: bytes) -> str:
    """The fingerprint a table keeps of its tokenizer."""
    return hashlib.sha256(tokenizer_bytes).hexdigest()


def save_table(table: LexicalTable, path: Path) -> None:
    """Write `table` to `path` atomically; an existing file is never replaced (CheckpointError)."""
    from mt.io import atomic_write

    if path.exists():
        raise CheckpointError(f"{path} exists; remove it or choose another --output")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: torch.save(table.to_dict(), f))


def load_table(path: str | Path, tokenizer_bytes: bytes) -> LexicalTable:
    """Read a table safely (tensors and plain values only) and check that it was built for the
    tokenizer given; CheckpointError naming the file otherwise."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(
            f"shortlist {path} not found; build it with `mt-shortlist CHECKPOINT`"
        ) from None
    except Exception as e:  # noqa: BLE001 - any failure here means the file is not a table
        raise CheckpointError(f"shortlist {path} is not readable as a shortlist file: {e}") from e
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(
            f"shortlist {path} is not an mt shortlist file (format {FORMAT}); build one with `mt-shortlist`"
        )
    table = LexicalTable(**{k: v for k, v in raw.items() if k != "format"})
    if table.tokenizer_sha256 != tokenizer_sha256(tokenizer_bytes):
        raise CheckpointError(
            f"shortlist {path} was built for another tokenizer ({table.src_lang}->{table.tgt_lang}); its ids do not "
            "fit this model: build one for it with `mt-shortlist CHECKPOINT`"
        )
    return table


@dataclass
class Shortlist:
    """The candidates rule of a table: `frequent` + `per_source` translations per source subword."""

    table: LexicalTable
    frequent: int
    per_source: int

    def __post_init__(self) -> None:
        k = self.table.lexical.size(1)
        if not 0 <= self.per_source <= k:
            raise ValueError(
                f"shortlist_per_source must be in [0, {k}]: the file keeps {k} translations per subword"
            )
        if self.frequent < 0:
            raise ValueError("shortlist_frequent must be >= 0")
        self._specials = torch.tensor(sorted(SPECIAL_IDS))
        self._frequent = self.table.frequent[: self.frequent]
        self._lexical = self.table.lexical[:, : self.per_source]
        self.sizes: list[int] = []  # V' of every batch so far

    def candidates(self, src: Tensor, src_mask: Tensor) -> Tensor:
        """src (B, S), src_mask (B, S) -> (V',) long: the sorted target ids a batch may write,
        on src's device."""
        ids = src[src_mask].unique().cpu()  # the batch's source subwords
        lexical = self._lexical[ids.clamp(max=self._lexical.size(0) - 1)].flatten()
        found = torch.cat([self._specials, self._frequent, lexical[lexical != NO_ID]]).unique()  # sorted
        self.sizes.append(found.numel())
        return found.to(src.device)

    def describe(self, since: int = 0) -> dict[str, Any]:
        """The settings, and the mean number of candidates of the batches decoded so far (from
        the `since`-th on)."""
        sizes = self.sizes[since:]
        mean = sum(sizes) / len(sizes) if sizes else 0.0
        return {"frequent": self.frequent, "per_source": self.per_source, "batches": len(sizes),
                "mean_candidates": round(mean, 1)}  # fmt: skip


def from_settings(settings: Any, tokenizer_bytes: bytes) -> Shortlist | None:
    """The shortlist of a command's settings (`shortlist`, `shortlist_frequent`,
    `shortlist_per_source`), None without a file; ConfigError for sizes the file cannot give."""
    from mt.errors import ConfigError

    if not settings.shortlist:
        return None
    table = load_table(settings.shortlist, tokenizer_bytes)
    keep = table.lexical.size(1)
    if settings.shortlist_per_source > keep:
        raise ConfigError(
            f"config error at `shortlist_per_source`: {settings.shortlist_per_source} is more than the "
            f"{keep} translations per subword {settings.shortlist} keeps; lower it, or rebuild with "
            f"`mt-shortlist CHECKPOINT --keep {settings.shortlist_per_source}`"
        )
    return Shortlist(table, settings.shortlist_frequent, settings.shortlist_per_source)


def build_table(
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]],
    src_vocab: int,
    tgt_vocab: int,
    keep: int,
    iterations: int,
    **meta: Any,
) -> LexicalTable:
    """IBM Model 1 p(t | s) by `iterations` EM steps over the pairs (special ids dropped) -> a
    table keeping the `keep` most probable targets of each source id, and the target ids by
    frequency. `meta`: tokenizer_sha256, src_lang, tgt_lang."""
    cells_s, cells_t, cells_g = _cells(src_ids, tgt_ids, src_vocab)
    # one parameter per (s, t) that co-occur: t(t | s) lives on those pairs only
    key = cells_s.astype(np.int64) * tgt_vocab + cells_t
    pairs, inverse = np.unique(key, return_inverse=True)
    pair_s = pairs // tgt_vocab
    prob = np.ones(len(pairs)) / tgt_vocab  # uniform start
    n_occ = int(cells_g.max()) + 1 if len(cells_g) else 0
    for _ in range(iterations):
        p = prob[inverse]  # (cells,)
        denom = np.bincount(cells_g, weights=p, minlength=n_occ)  # per target occurrence: sum_i t(t_j | s_i)
        counts = np.bincount(inverse, weights=p / denom[cells_g], minlength=len(pairs))  # c(s, t)
        totals = np.bincount(pair_s, weights=counts, minlength=src_vocab + 1)  # sum_t c(s, t)
        prob = counts / totals[pair_s]
    lexical = np.full((src_vocab, keep), NO_ID, dtype=np.int64)
    real = pair_s < src_vocab  # the NULL row is not a source subword
    s, t, p = pair_s[real], (pairs % tgt_vocab)[real], prob[real]
    order = np.lexsort((-p, s))  # by source, most probable first
    s, t = s[order], t[order]
    first = np.searchsorted(s, s)  # index of each source's first pair
    rank = np.arange(len(s)) - first
    inside = rank < keep
    lexical[s[inside], rank[inside]] = t[inside]
    flat = (
        np.concatenate([np.asarray(x, dtype=np.int64) for x in tgt_ids])
        if len(tgt_ids)
        else np.zeros(0, np.int64)
    )
    freq = np.bincount(flat, minlength=tgt_vocab)
    freq[list(SPECIAL_IDS)] = 0
    by_freq = np.argsort(-freq, kind="stable")  # ties (the unseen ids) in id order
    frequent = by_freq[~np.isin(by_freq, list(SPECIAL_IDS))]
    return LexicalTable(torch.from_numpy(frequent), torch.from_numpy(lexical), sentences=len(src_ids),
                        iterations=iterations, **meta)  # fmt: skip


def _cells(
    src_ids: Sequence[Sequence[int]], tgt_ids: Sequence[Sequence[int]], null: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (source position incl. NULL, target position) of every pair, as the source id,
    the target id and the target occurrence's global index (cells,) each."""
    specials = np.array(sorted(SPECIAL_IDS))
    ss, ts, gs = [], [], []
    occ = 0
    for src, tgt in zip(src_ids, tgt_ids, strict=True):
        s = np.asarray(src, dtype=np.int64)
        t = np.asarray(tgt, dtype=np.int64)
        s = np.append(s[~np.isin(s, specials)], null)  # NULL generates the words nothing else explains
        t = t[~np.isin(t, specials)]
        if len(t) == 0:
            continue
        ss.append(np.tile(s, len(t)))
        ts.append(np.repeat(t, len(s)))
        gs.append(np.repeat(np.arange(occ, occ + len(t)), len(s)))
        occ += len(t)
    if not ss:
        return (np.zeros(0, np.int64),) * 3  # type: ignore[return-value]
    return np.concatenate(ss), np.concatenate(ts), np.concatenate(gs)
