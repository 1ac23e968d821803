"""AER, precision and recall against gold alignments, and symmetrization of two directions.

Gold alignments have sure links S and possible links P (S ⊆ P); a predicted alignment A scores
(Och & Ney, 2003, "A Systematic Comparison of Various Statistical Alignment Models")::

    AER = 1 - (|A∩S| + |A∩P|) / (|A| + |S|)    precision = |A∩P| / |A|    recall = |A∩S| / |S|

Links are ``(i, j)``, 0-based, ``i`` on the model's source side (see :mod:`mt.evaluation.alignment`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mt.evaluation.alignment import Links
from mt.evaluation.gold import GoldPair

SYMMETRIZE_METHODS = ("intersection", "union", "grow-diag-final-and")

# Koehn's neighbourhood: the 4 adjacent cells, then the 4 diagonal ones (Moses, atools).
_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))

# Per sentence: |A|, |S|, |A∩S|, |A∩P| (and |P|): what corpus scores and bootstraps sum.
COUNT_FIELDS = ("predicted", "sure", "a_and_s", "a_and_p", "possible")


def sentence_counts(
    pred: list[Links],
    gold: list[GoldPair],
    keep: Callable[[GoldPair, int, int], bool] | None = None,
) -> list[tuple[int, int, int, int, int]]:
    """Per pair the counts of :data:`COUNT_FIELDS`; ``keep(pair, i, j)`` filters A, S and P alike."""
    if len(pred) != len(gold):
        raise ValueError(f"{len(pred)} predicted alignments but {len(gold)} gold pairs")
    counts = []
    for links, pair in zip(pred, gold, strict=True):
        a, s, p = frozenset(links), pair.sure, pair.possible | pair.sure
        if keep is not None:
            a, s, p = (frozenset(x for x in lk if keep(pair, *x)) for lk in (a, s, p))
        counts.append((len(a), len(s), len(a & s), len(a & p), len(p)))
    return counts


def scores_of_counts(counts: Sequence[Sequence[int]]) -> dict:
    """Corpus (micro) AER, precision and recall from per-sentence counts (:func:`sentence_counts`).

    When a denominator is 0 the value is the vacuous one: precision 1.0 when nothing is
    predicted (no wrong link), recall 1.0 when there is no sure link (nothing to find), AER 0.0
    when there are neither.
    """
    n_a = sum(c[0] for c in counts)
    n_s = sum(c[1] for c in counts)
    a_and_s = sum(c[2] for c in counts)
    a_and_p = sum(c[3] for c in counts)
    return {
        "aer": 1.0 - (a_and_s + a_and_p) / (n_a + n_s) if n_a + n_s else 0.0,
        "precision": a_and_p / n_a if n_a else 1.0,
        "recall": a_and_s / n_s if n_s else 1.0,
        "links_predicted": n_a,
        "links_sure": n_s,
        "links_possible": sum(c[4] for c in counts),
        "sentences": len(counts),
    }


def alignment_scores(
    pred: list[Links],
    gold: list[GoldPair],
    keep: Callable[[GoldPair, int, int], bool] | None = None,
) -> dict:
    """Corpus AER, precision and recall of predicted links against gold (counts summed over pairs).

    ``keep(pair, i, j)``, when given, filters the links of A, S and P alike (e.g. "both words
    are in the training vocabulary"). Returns ``{"aer", "precision", "recall",
    "links_predicted", "links_sure", "links_possible", "sentences"}``.
    """
    return scores_of_counts(sentence_counts(pred, gold, keep))


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
