"""Gold word alignments, AER / precision / recall, and symmetrization of two directions.

Gold alignments have sure links S and possible links P (S ⊆ P); a predicted alignment A scores
(Och & Ney, 2003, "A Systematic Comparison of Various Statistical Alignment Models")::

    AER = 1 - (|A∩S| + |A∩P|) / (|A| + |S|)    precision = |A∩P| / |A|    recall = |A∩S| / |S|

Links are ``(i, j)``, 0-based, ``i`` on the model's source side (see :mod:`mt.evaluation.alignment`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mt.data.readers import read_lines
from mt.errors import ConfigError, DataError
from mt.evaluation.alignment import Links, parse_link

SYMMETRIZE_METHODS = ("intersection", "union", "grow-diag-final-and")
CZENALI_LANGS = ("en", "cs")

# Koehn's neighbourhood: the 4 adjacent cells, then the 4 diagonal ones (Moses, atools).
_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


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


def alignment_scores(
    pred: list[Links],
    gold: list[GoldPair],
    keep: Callable[[GoldPair, int, int], bool] | None = None,
) -> dict:
    """Corpus AER, precision and recall of predicted links against gold (micro: counts summed).

    ``keep(pair, i, j)``, when given, filters the links of A, S and P alike (e.g. "both words
    are in the training vocabulary"). When a denominator is 0 the value is the vacuous one:
    precision 1.0 when nothing is predicted (no wrong link), recall 1.0 when there is no sure
    link (nothing to find), AER 0.0 when there are neither. Returns ``{"aer", "precision",
    "recall", "links_predicted", "links_sure", "links_possible", "sentences"}``.
    """
    if len(pred) != len(gold):
        raise ValueError(f"{len(pred)} predicted alignments but {len(gold)} gold pairs")
    n_a = n_s = n_p = a_and_s = a_and_p = 0
    for links, pair in zip(pred, gold, strict=True):
        a, s, p = frozenset(links), pair.sure, pair.possible | pair.sure
        if keep is not None:
            a, s, p = (frozenset(x for x in lk if keep(pair, *x)) for lk in (a, s, p))
        n_a, n_s, n_p = n_a + len(a), n_s + len(s), n_p + len(p)
        a_and_s += len(a & s)
        a_and_p += len(a & p)
    return {
        "aer": 1.0 - (a_and_s + a_and_p) / (n_a + n_s) if n_a + n_s else 0.0,
        "precision": a_and_p / n_a if n_a else 1.0,
        "recall": a_and_s / n_s if n_s else 1.0,
        "links_predicted": n_a,
        "links_sure": n_s,
        "links_possible": n_p,
        "sentences": len(gold),
    }


def symmetrize(forward: Links, backward: Links, method: str) -> Links:
    """Combine the links of the two translation directions, both as (source i, target j).

    - ``"intersection"``: links both directions found (high precision).
    - ``"union"``: links either found (high recall).
    - ``"grow-diag-final-and"``: Koehn's heuristic as in Moses and fast_align's ``atools``:
      start from the intersection; repeatedly, for every aligned point (source-major order), add
      each neighbouring point (the 4 adjacent cells, then the 4 diagonal ones) that is in the
      union and aligns a word not yet aligned, until nothing changes; then "final-and": add the
      forward links, then the backward ones, whose two words are both still unaligned.
    """
    forward, backward = frozenset(forward), frozenset(backward)
    if method == "intersection":
        return forward & backward
    if method == "union":
        return forward | backward
    if method == "grow-diag-final-and":
        return _grow_diag_final_and(forward, backward)
    raise ValueError(f"unknown symmetrization {method!r}; choose one of {', '.join(SYMMETRIZE_METHODS)}")


def _grow_diag_final_and(forward: Links, backward: Links) -> Links:
    union = forward | backward
    aligned = set(forward & backward)
    src_aligned = {i for i, _ in aligned}
    tgt_aligned = {j for _, j in aligned}

    def add(i: int, j: int) -> None:
        aligned.add((i, j))
        src_aligned.add(i)
        tgt_aligned.add(j)

    grew = True
    while grew:  # grow-diag
        grew = False
        for i, j in sorted(aligned):
            for di, dj in _NEIGHBOURS:
                ni, nj = i + di, j + dj
                if (ni, nj) in union and (ni, nj) not in aligned:
                    if ni not in src_aligned or nj not in tgt_aligned:
                        add(ni, nj)
                        grew = True
    for links in (forward, backward):  # final-and
        for i, j in sorted(links):
            if i not in src_aligned and j not in tgt_aligned:
                add(i, j)
    return frozenset(aligned)
