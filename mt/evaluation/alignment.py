"""Word alignments from attention: subword-to-word mapping, link extraction, Pharaoh format.

A link ``(i, j)`` joins source word ``i`` and target word ``j``, both 0-based positions among the
whitespace-separated words of a sentence. Attention is over subword pieces, so it is first pooled
to words (:func:`word_attention`), then turned into links (:func:`extract_links`), which are
written one sentence per line in Pharaoh format (``0-0 1-2 2-1``), as ``fairseq-generate
--print-alignment`` and OpenNMT-py ``-report_align`` print them.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

import numpy as np

from mt.config import DEFAULT_ALIGN_METHOD, DEFAULT_ALIGN_THRESHOLD

Links = frozenset[tuple[int, int]]
"""Alignment links ``(i, j)``, 0-based: ``i`` a source word, ``j`` a target word."""

EXTRACT_METHODS = ("argmax", "threshold")

_LINK = re.compile(r"(\d+)([-p])(\d+)")


def word_of_char(text: str) -> list[int]:
    """For each character of ``text``, the index of the whitespace-separated word it belongs to.

    Whitespace (as ``str.split()`` sees it) gets -1. ``word_of_char("a bc")`` is ``[0, -1, 1, 1]``.
    """
    out: list[int] = []
    word = -1
    in_word = False
    for ch in text:
        if ch.isspace():
            in_word = False
            out.append(-1)
        else:
            if not in_word:
                word += 1
                in_word = True
            out.append(word)
    return out


def words_of_pieces(text: str, spans: list[tuple[int, int]], byte_offsets: bool = False) -> list[int]:
    """The word index of each subword piece, given its span ``[begin, end)`` in ``text``.

    The spans are character offsets by default (``Tokenizer.encode_spans`` converts them).
    sentencepiece's own ``.begin``/``.end`` (of ``encode(text, out_type="proto").pieces``) count
    UTF-8 **bytes**, which differ from characters as soon as the text holds a letter such as
    "č": pass those with ``byte_offsets=True``. A piece belongs to the word of the first
    non-space character in its span. A piece with no such character (a lone "▁" over a space,
    a piece of zero width, or one that covers only a space because normalization split a
    character) belongs to the word of the next piece that has one, or of the previous one when
    none follows. Every piece gets a word in ``[0, n_words)``; pieces on a text without words,
    or a span outside the text, are a ValueError.
    """
    chars = word_of_char(text)
    if byte_offsets:  # one entry per UTF-8 byte: each character's word, repeated over its bytes
        units = [w for ch, w in zip(text, chars, strict=True) for _ in range(len(ch.encode("utf-8")))]
    else:
        units = chars
    words: list[int] = []
    for k, (begin, end) in enumerate(spans):
        if not 0 <= begin <= end <= len(units):
            unit = "bytes" if byte_offsets else "characters"
            raise ValueError(f"piece {k} has span [{begin}, {end}) outside the text of {len(units)} {unit}")
        words.append(next((w for w in units[begin:end] if w >= 0), -1))
    if words and max(words) < 0:
        raise ValueError(f"no piece covers a word of {text!r}: cannot map pieces to words")
    following = -1  # backward pass: a wordless piece takes the next piece's word ...
    for k in range(len(words) - 1, -1, -1):
        if words[k] < 0:
            words[k] = following
        else:
            following = words[k]
    previous = -1  # ... and, after the last word, the previous one
    for k, w in enumerate(words):
        if w < 0:
            words[k] = previous
        else:
            previous = w
    return words


def words_of_output(pieces: list[str], text: str) -> list[int]:
    """The index in ``text.split()`` of the word each output piece belongs to, ``text`` being
    the pieces as the tokenizer decoded them.

    A piece reads as its characters with "▁" as a space (so "▁" starts a word). Its non-space
    characters are matched in order to those of ``text`` (all of them when decoding only moved
    whitespace, e.g. dropped the leading space or a lone "▁"; otherwise the longest common
    stretches, `difflib`), and it belongs to the word of its first matched character. A piece
    with none (a lone "▁", "<unk>" decoded as "⁇") belongs to the word of the next piece, else
    the previous one (:func:`words_of_pieces`). ``[]`` when ``text`` has no words.
    """
    if not text.split():
        return []
    owner = [k for k, piece in enumerate(pieces) for ch in piece.replace("▁", " ") if not ch.isspace()]
    ours = "".join(ch for piece in pieces for ch in piece.replace("▁", " ") if not ch.isspace())
    at = [c for c, ch in enumerate(text) if not ch.isspace()]  # non-space character -> its offset
    theirs = "".join(text[c] for c in at)
    blocks = (
        [(0, 0, len(ours))]
        if ours == theirs
        else SequenceMatcher(None, ours, theirs, autojunk=False).get_matching_blocks()
    )
    first = [-1] * len(pieces)  # offset in `text` of each piece's first matched character
    for i, j, size in blocks:
        for d in range(size):
            if first[owner[i + d]] < 0:
                first[owner[i + d]] = at[j + d]
    if all(c < 0 for c in first):
        return [0] * len(pieces)
    return words_of_pieces(text, [(c, c + 1) if c >= 0 else (0, 0) for c in first])


def word_attention(
    att: np.ndarray, src_words: np.ndarray, tgt_words: np.ndarray, n_src: int, n_tgt: int
) -> np.ndarray:
    """Pool attention over pieces ``att (T, S)`` to words ``(n_tgt, n_src)``.

    Row t of ``att`` is target piece t, column s source piece s (EOS rows and columns dropped
    by the caller); ``src_words (S,)`` and ``tgt_words (T,)`` give each piece's word. The weights
    of a source word's pieces are summed (the word gets all the mass put on it), those of a
    target word's pieces averaged (each row still sums to at most 1). A target word without
    pieces gets a row of zeros.
    """
    att = np.asarray(att, dtype=np.float64)
    src_words = np.asarray(src_words, dtype=np.int64)
    tgt_words = np.asarray(tgt_words, dtype=np.int64)
    if att.ndim != 2 or att.shape != (len(tgt_words), len(src_words)):
        raise ValueError(
            f"attention of shape {att.shape} does not match {len(tgt_words)} target and "
            f"{len(src_words)} source pieces (expected (T, S))"
        )
    for name, words, n in (("source", src_words, n_src), ("target", tgt_words, n_tgt)):
        if words.size and (words.min() < 0 or words.max() >= n):
            raise ValueError(f"{name} word indices must lie in [0, {n}), got {words.tolist()}")
    if _runs_of_every_word(src_words, n_src) and _runs_of_every_word(tgt_words, n_tgt):
        # the usual case (each word's pieces are one run, in order): sums over runs, no matrices
        src_start = np.flatnonzero(np.r_[True, src_words[1:] != src_words[:-1]])  # (n_src,)
        tgt_start = np.flatnonzero(np.r_[True, tgt_words[1:] != tgt_words[:-1]])  # (n_tgt,)
        summed = np.add.reduceat(np.add.reduceat(att, src_start, axis=1), tgt_start, axis=0)
        return summed / np.diff(np.r_[tgt_start, len(tgt_words)])[:, None]  # (n_tgt, n_src)
    src_onehot = np.zeros((len(src_words), n_src))  # (S, n_src)
    src_onehot[np.arange(len(src_words)), src_words] = 1.0
    tgt_onehot = np.zeros((n_tgt, len(tgt_words)))  # (n_tgt, T)
    tgt_onehot[tgt_words, np.arange(len(tgt_words))] = 1.0
    counts = tgt_onehot.sum(axis=1, keepdims=True)  # (n_tgt, 1) pieces per target word
    tgt_mean = np.divide(tgt_onehot, counts, out=np.zeros_like(tgt_onehot), where=counts > 0)
    return tgt_mean @ att @ src_onehot  # (n_tgt, T) @ (T, S) @ (S, n_src)


def _runs_of_every_word(words: np.ndarray, n: int) -> bool:
    """Whether ``words`` is 0, 0, 1, 2, 2, ... n - 1: every word, each one contiguous run, in order."""
    return (
        words.size > 0
        and words[0] == 0
        and words[-1] == n - 1
        and bool(np.all(np.diff(words) >= 0))
        and bool(np.all(np.diff(words) <= 1))
    )


def extract_links(
    word_att: np.ndarray, method: str = DEFAULT_ALIGN_METHOD, threshold: float = DEFAULT_ALIGN_THRESHOLD
) -> Links:
    """Links from a word-level attention matrix ``(n_tgt, n_src)``.

    - ``"argmax"``: each target word links to its highest-weight source word (Luong et al.,
      2015, "Effective Approaches to Attention-based NMT", section 5.4); the first on a tie, and
      none for a row without positive weight.
    - ``"threshold"``: every pair whose weight is at least ``threshold`` (> 0) -- the "attention
      mass above a threshold" rule of fairseq and OpenNMT-py guided alignment.
    """
    word_att = np.asarray(word_att, dtype=np.float64)
    if word_att.ndim != 2:
        raise ValueError(f"word attention must be 2-D (n_tgt, n_src), got shape {word_att.shape}")
    if method == "argmax":
        if word_att.shape[1] == 0:
            return frozenset()
        best = word_att.argmax(axis=1)  # (n_tgt,)
        has_mass = word_att.max(axis=1) > 0
        return frozenset((int(best[j]), int(j)) for j in np.flatnonzero(has_mass))
    if method == "threshold":
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        tgt, src = np.nonzero(word_att >= threshold)
        return frozenset(zip(src.tolist(), tgt.tolist(), strict=True))
    raise ValueError(
        f"unknown alignment extraction method {method!r}; choose one of {', '.join(EXTRACT_METHODS)}"
    )


def format_pharaoh(links: Links) -> str:
    """Links as Pharaoh text: ``"i-j"`` pairs sorted, space separated, 0-based."""
    return " ".join(f"{i}-{j}" for i, j in sorted(links))


def parse_link(token: str, one_based: bool = False) -> tuple[int, int, bool]:
    """One Pharaoh token ``"i-j"`` (sure) or ``"ipj"`` (possible) -> ``(i, j, sure)``, 0-based.

    A malformed token (or index 0 when ``one_based``) is a ValueError naming the token.
    """
    m = _LINK.fullmatch(token)
    if m is None:
        raise ValueError(f"malformed alignment link {token!r} (expected i-j or ipj with integers i, j)")
    base = 1 if one_based else 0
    i, j = int(m.group(1)) - base, int(m.group(3)) - base
    if i < 0 or j < 0:
        raise ValueError(f"alignment link {token!r} has index 0 but the indices are 1-based")
    return i, j, m.group(2) == "-"


def parse_pharaoh(line: str, one_based: bool = False) -> tuple[Links, Links]:
    """A line of Pharaoh links -> ``(sure, possible)``, 0-based.

    ``"i-j"`` tokens are sure links, ``"ipj"`` possible ones. ``possible`` is the P of AER: it
    holds the sure links too (S ⊆ P). A malformed token is a ValueError naming it.
    """
    sure: set[tuple[int, int]] = set()
    possible: set[tuple[int, int]] = set()
    for token in line.split():
        i, j, is_sure = parse_link(token, one_based)
        (sure if is_sure else possible).add((i, j))
    return frozenset(sure), frozenset(possible | sure)
