"""Gold word alignments: the sentence pairs with their sure and possible links, as published sets ship them.

Two formats: the CzEnAli TSV (English, Czech, sure links, possible links) and the common
tokenized sentence files plus one line of ``i-j`` (sure) / ``ipj`` (possible) links per pair.
Links are returned ``(i, j)``, 0-based, ``i`` on the model's source side.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mt.config import GOLD_FORMATS
from mt.data.readers import read_lines
from mt.errors import ConfigError, DataError
from mt.evaluation.alignment import Links, parse_link

CZENALI_LANGS = ("en", "cs")


@dataclass
class GoldPair:
    """One gold-aligned sentence pair; ``possible`` holds the sure links too (P ⊇ S)."""

    src_words: list[str]
    tgt_words: list[str]
    sure: Links
    possible: Links

    def __post_init__(self) -> None:
        self.sure = frozenset(self.sure)
        self.possible = frozenset(self.possible) | self.sure


def _read_links(
    tokens: Iterable[str],
    n_first: int,
    n_second: int,
    one_based: bool,
    where: str,
    warnings: list[str],
    sides: tuple[str, str],
    sure_column: bool | None = None,
) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """Tokens ``i-j``/``ipj`` -> (sure, possible-only) as (first, second) indices, 0-based.

    ``sure_column`` forces the kind (a TSV column of sure or of possible links); ``sides`` names
    the two sides in messages. Malformed and out-of-range links are appended to ``warnings`` as
    ``"where: ..."`` and skipped.
    """
    sure: set[tuple[int, int]] = set()
    possible: set[tuple[int, int]] = set()
    for token in tokens:
        try:
            i, j, is_sure = parse_link(token, one_based)
        except ValueError as e:
            warnings.append(f"{where}: {e}; skipped")
            continue
        if i >= n_first or j >= n_second:
            warnings.append(
                f"{where}: link {token!r} out of range ({n_first} {sides[0]} and {n_second} {sides[1]} "
                f"words, {'1' if one_based else '0'}-based); skipped"
            )
            continue
        (sure if (is_sure if sure_column is None else sure_column) else possible).add((i, j))
    return sure, possible


def _flip(links: Iterable[tuple[int, int]]) -> Links:
    return frozenset((j, i) for i, j in links)


def read_gold_czenali(path: str | Path, src_lang: str, tgt_lang: str) -> tuple[list[GoldPair], list[str]]:
    """Read CzEnAli (4 tab-separated columns: English, Czech, sure links, possible-only links).

    Links are 1-based ``i-j`` with ``i`` the English position; the file may be gzipped.
    ``src_lang``/``tgt_lang`` (``"en"``/``"cs"``) say which side is the model's source: for a
    cs->en model the pairs are flipped. Returns the pairs and the warnings ("FILE:LINE: ...") for
    malformed or out-of-range links, which are skipped. A wrong column count or an empty
    sentence is a DataError naming the file and line.
    """
    if src_lang not in CZENALI_LANGS or tgt_lang not in CZENALI_LANGS or src_lang == tgt_lang:
        raise ConfigError(
            f"CzEnAli gold alignments are English-Czech, but the model translates {src_lang}->{tgt_lang}; "
            f"use an en->cs or cs->en model (or a gold set in Pharaoh format for other pairs)."
        )
    pairs: list[GoldPair] = []
    warnings: list[str] = []
    for line_no, line in enumerate(read_lines(path), start=1):
        cols = line.split("\t")
        if len(cols) != 4:
            raise DataError(
                f"{path}:{line_no}: expected 4 tab-separated columns (English, Czech, sure links, "
                f"possible links), found {len(cols)}. Fix the line or use the original CzEnAli file."
            )
        en, cs = cols[0].split(), cols[1].split()
        if not en or not cs:
            raise DataError(
                f"{path}:{line_no}: empty {'English' if not en else 'Czech'} sentence; every line needs "
                f"words on both sides. Fix or remove the line."
            )
        where = f"{path}:{line_no}"
        sides = ("English", "Czech")
        sure, _ = _read_links(
            cols[2].split(), len(en), len(cs), True, where, warnings, sides, sure_column=True
        )
        _, possible = _read_links(cols[3].split(), len(en), len(cs), True, where, warnings, sides, False)
        if src_lang == "en":
            pairs.append(GoldPair(en, cs, frozenset(sure), frozenset(possible)))
        else:
            pairs.append(GoldPair(cs, en, _flip(sure), _flip(possible)))
    return pairs, warnings


def read_gold_pharaoh(
    src_path: str | Path,
    tgt_path: str | Path,
    align_path: str | Path,
    one_based: bool = True,
    src_first: bool = True,
) -> tuple[list[GoldPair], list[str]]:
    """Read gold alignments as most published sets ship them (Hansards, RWTH de-en, WPT ro-en).

    One tokenized sentence per line in ``src_path`` and ``tgt_path``; each line of
    ``align_path`` holds links ``i-j`` (sure) and ``ipj`` (possible). ``one_based`` picks the
    index base; ``src_first`` says the first index is on the model's source side (False: the
    links are swapped). Returns the pairs and the warnings ("FILE:LINE: ...") for malformed or
    out-of-range links, which are skipped. Different line counts or an empty sentence are a
    DataError.
    """
    src, tgt, align = read_lines(src_path), read_lines(tgt_path), read_lines(align_path)
    if not len(src) == len(tgt) == len(align):
        raise DataError(
            f"gold alignment files have different line counts: {src_path} has {len(src)}, {tgt_path} "
            f"{len(tgt)} and {align_path} {len(align)}. Line k of each must describe the same sentence "
            f"pair; check for missing or extra newlines."
        )
    pairs: list[GoldPair] = []
    warnings: list[str] = []
    for line_no, (s, t, a) in enumerate(zip(src, tgt, align, strict=True), start=1):
        src_words, tgt_words = s.split(), t.split()
        if not src_words or not tgt_words:
            empty = src_path if not src_words else tgt_path
            raise DataError(f"{empty}:{line_no}: empty sentence; every gold pair needs words on both sides.")
        first, second = (src_words, tgt_words) if src_first else (tgt_words, src_words)
        where = f"{align_path}:{line_no}"
        sides = ("source", "target") if src_first else ("target", "source")
        sure, possible = _read_links(a.split(), len(first), len(second), one_based, where, warnings, sides)
        if src_first:
            pairs.append(GoldPair(src_words, tgt_words, frozenset(sure), frozenset(possible)))
        else:
            pairs.append(GoldPair(src_words, tgt_words, _flip(sure), _flip(possible)))
    return pairs, warnings


def read_gold_set(
    path: str | Path,
    fmt: str,
    src_lang: str,
    tgt_lang: str,
    src_path: str | Path | None = None,
    tgt_path: str | Path | None = None,
    one_based: bool = True,
    src_first: bool = True,
    langs: list[str] | None = None,
) -> tuple[list[GoldPair], list[str]]:
    """A gold set of either format oriented for a ``src_lang``->``tgt_lang`` model, and its warnings.

    ``fmt="czenali"``: ``langs`` names the TSV's two columns (default ``[en, cs]``); the model's
    languages must be those two, in either direction. ``fmt="pharaoh"``: ``src_path``/``tgt_path``
    are the tokenized sentences of the model's source and target sides.
    """
    if fmt == "pharaoh":
        if src_path is None or tgt_path is None:
            raise ConfigError("a gold set in pharaoh format needs the tokenized source and target sentence "
                              "files besides the links file")  # fmt: skip
        return read_gold_pharaoh(src_path, tgt_path, path, one_based=one_based, src_first=src_first)
    if fmt != "czenali":
        raise ConfigError(f"unknown gold format {fmt!r}; choose one of {', '.join(GOLD_FORMATS)}")
    first, second = langs or list(CZENALI_LANGS)
    if {src_lang, tgt_lang} != {first, second}:
        raise ConfigError(
            f"the gold file {path} holds {first} and {second} but the model translates {src_lang}->{tgt_lang}; "
            f"use a model for {first} and {second}, or name the languages of its two columns"
        )
    as_reader = {first: "en", second: "cs"}  # the reader knows the columns as en (first), cs (second)
    return read_gold_czenali(path, as_reader[src_lang], as_reader[tgt_lang])
