"""Alignment from attention and AER (pure: no model, no torch).

Run: .venv/bin/python -m pytest -q tests/test_alignment.py
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import numpy as np
import pytest

from mt.errors import ConfigError, DataError
from mt.evaluation.aer import alignment_scores, scores_of_counts, sentence_counts, symmetrize
from mt.evaluation.alignment import (
    extract_links,
    format_pharaoh,
    parse_pharaoh,
    word_attention,
    word_of_char,
    words_of_pieces,
)
from mt.evaluation.gold import GoldPair, read_gold_czenali, read_gold_pharaoh, read_gold_set

REPO_ROOT = Path(__file__).resolve().parent.parent


def _czenali_path() -> Path | None:
    # Read at import: the autouse fixture in conftest.py removes MT_DATA_DIR during each test.
    env = os.environ.get("MT_DATA_DIR")
    for root in ([Path(env)] if env else []) + [REPO_ROOT.parent / "shared" / "data"]:
        path = root / "alignment" / "czenali-en-cs" / "czenali.gz"
        if path.is_file():
            return path
    return None


CZENALI = _czenali_path()


# ---- subword pieces -> words ---------------------------------------------------------------


def test_word_of_char():
    assert word_of_char("ab  c d") == [0, 0, -1, -1, 1, -1, 2]
    assert word_of_char(" a ") == [-1, 0, -1]
    assert word_of_char("") == []


def test_words_of_pieces_splits_words_and_attaches_the_first_piece():
    # "▁Hel" "lo" "▁wor" "ld" "!" : the pieces with "▁" span the space before their word.
    text = "Hello world!"
    spans = [(0, 3), (3, 5), (5, 9), (9, 11), (11, 12)]
    assert words_of_pieces(text, spans) == [0, 0, 1, 1, 1]
    # "▁un" "bel" "iev" "able" "▁x": one word in four pieces
    assert words_of_pieces("unbelievable x", [(0, 2), (2, 5), (5, 8), (8, 12), (12, 14)]) == [0, 0, 0, 0, 1]


def test_words_of_pieces_lone_space_piece():
    # "▁a" then a lone "▁" over the space, then "X" "yz": the lone piece joins the next word.
    assert words_of_pieces("a Xyz", [(0, 1), (1, 2), (2, 3), (3, 5)]) == [0, 1, 1, 1]
    # a zero-width "▁" first piece joins the first word
    assert words_of_pieces("Ab c", [(0, 0), (0, 2), (2, 4)]) == [0, 0, 1]
    # a wordless last piece has no next word: it joins the previous one
    assert words_of_pieces("a b ", [(0, 1), (1, 3), (3, 4)]) == [0, 1, 1]
    assert words_of_pieces("a b", [(0, 1), (1, 3), (3, 3)]) == [0, 1, 1]


def test_words_of_pieces_reads_sentencepiece_byte_offsets():
    # Real sentencepiece output (Multi30k joint model): its spans count UTF-8 bytes.
    text = "Příliš žluťoučký kůň"
    pieces = [("▁P", 0, 1), ("ří", 1, 5), ("li", 5, 7), ("š", 7, 9), ("▁", 9, 10), ("ž", 10, 12),
              ("lu", 12, 14), ("ť", 14, 16), ("o", 16, 17), ("u", 17, 18), ("č", 18, 20),
              ("k", 20, 21), ("ý", 21, 23), ("▁k", 23, 25), ("ůň", 25, 29)]  # fmt: skip
    byte_spans = [(b, e) for _, b, e in pieces]
    assert words_of_pieces(text, byte_spans, byte_offsets=True) == [0] * 4 + [1] * 9 + [2] * 2
    # the same pieces as character spans (what Tokenizer.encode_spans passes, the default)
    char_of_byte = [c for c, ch in enumerate(text) for _ in ch.encode("utf-8")] + [len(text)]
    char_spans = [(char_of_byte[b], char_of_byte[e]) for b, e in byte_spans]
    assert char_spans[:5] == [(0, 1), (1, 3), (3, 5), (5, 6), (6, 7)]
    assert words_of_pieces(text, char_spans) == [0] * 4 + [1] * 9 + [2] * 2
    # NFKC splits the ligature "ﬁ" into "▁f" (zero width) and "ine" (covering "ﬁne")
    spans = [(0, 0), (0, 5), (5, 8), (8, 9), (9, 11)]
    assert words_of_pieces("ﬁne café", spans, byte_offsets=True) == [0, 0, 1, 1, 1]
    # byte spans read as characters would run past the text
    with pytest.raises(ValueError, match="outside the text of 8 characters"):
        words_of_pieces("ﬁne café", spans)


def test_words_of_pieces_rejects_bad_input():
    with pytest.raises(ValueError, match="outside the text"):
        words_of_pieces("ab", [(0, 3)])
    with pytest.raises(ValueError, match="no piece covers a word"):
        words_of_pieces("  ", [(0, 1)])
    assert words_of_pieces("", []) == []


# ---- attention -> words -> links ------------------------------------------------------------


def test_word_attention_sums_source_pieces_and_averages_target_pieces():
    att = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]])  # (T=3, S=3)
    # source pieces 0,1 -> word 0, piece 2 -> word 1; target piece 0 -> word 0, pieces 1,2 -> word 1
    out = word_attention(att, np.array([0, 0, 1]), np.array([0, 1, 1]), n_src=2, n_tgt=2)
    # rows summed over source words: [0.8, 0.2], [0.2, 0.8], [0.6, 0.4]; word 1 = mean of the last two
    np.testing.assert_allclose(out, [[0.8, 0.2], [0.4, 0.6]])
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    # a target word without pieces gets zeros
    out = word_attention(att[:1], np.array([0, 0, 1]), np.array([1]), n_src=2, n_tgt=2)
    np.testing.assert_allclose(out, [[0.0, 0.0], [0.8, 0.2]])
    with pytest.raises(ValueError, match="does not match"):
        word_attention(att, np.array([0, 1]), np.array([0, 1, 1]), 2, 2)
    with pytest.raises(ValueError, match="source word indices"):
        word_attention(att, np.array([0, 0, 2]), np.array([0, 1, 1]), 2, 2)


WORD_ATT = np.array([[0.7, 0.2, 0.1], [0.1, 0.45, 0.45], [0.0, 0.4, 0.6]])  # (n_tgt, n_src)


def test_word_attention_runs_of_pieces_match_the_loop_definition():
    # the common shape (each word's pieces contiguous, in order) takes a reduceat path: check it,
    # and the out-of-order general path, against sums and means written as loops
    rng = np.random.default_rng(0)
    for _ in range(200):
        n_tgt, n_src = rng.integers(1, 8, 2)
        tgt = np.sort(np.r_[np.arange(n_tgt), rng.integers(0, n_tgt, rng.integers(0, 6))])
        src = np.sort(np.r_[np.arange(n_src), rng.integers(0, n_src, rng.integers(0, 6))])
        for src_words in (src, rng.permutation(src)):
            att = rng.random((len(tgt), len(src_words)))
            expected = np.array([[att[tgt == i][:, src_words == j].sum(axis=1).mean() for j in range(n_src)]
                                 for i in range(n_tgt)])  # fmt: skip
            np.testing.assert_allclose(word_attention(att, src_words, tgt, n_src, n_tgt), expected)


def test_extract_links_argmax():
    # target 0 -> source 0; target 1: tie between sources 1 and 2 -> first (1); target 2 -> 2
    assert extract_links(WORD_ATT, "argmax") == {(0, 0), (1, 1), (2, 2)}
    # a row without weight gets no link
    assert extract_links(np.array([[0.0, 0.0], [0.3, 0.7]]), "argmax") == {(1, 1)}
    assert extract_links(np.zeros((2, 0)), "argmax") == frozenset()


def test_extract_links_threshold():
    # weights >= 0.4: (t0,s0)=0.7, (t1,s1)=0.45, (t1,s2)=0.45, (t2,s1)=0.4, (t2,s2)=0.6
    assert extract_links(WORD_ATT, "threshold", 0.4) == {(0, 0), (1, 1), (2, 1), (1, 2), (2, 2)}
    assert extract_links(WORD_ATT, "threshold", 0.5) == {(0, 0), (2, 2)}
    with pytest.raises(ValueError, match="argmax, threshold"):
        extract_links(WORD_ATT, "max")
    with pytest.raises(ValueError, match="threshold must be > 0"):
        extract_links(WORD_ATT, "threshold", 0.0)


# ---- Pharaoh format -------------------------------------------------------------------------


def test_pharaoh_round_trip():
    links = frozenset({(2, 1), (0, 0), (10, 3), (2, 0)})
    text = format_pharaoh(links)
    assert text == "0-0 2-0 2-1 10-3"
    assert parse_pharaoh(text) == (links, links)
    assert format_pharaoh(frozenset()) == ""
    assert parse_pharaoh("") == (frozenset(), frozenset())


def test_parse_pharaoh_possible_and_one_based():
    sure, possible = parse_pharaoh("0-0 1p2 3-4")
    assert sure == {(0, 0), (3, 4)}
    assert possible == {(0, 0), (1, 2), (3, 4)}  # P includes S
    assert parse_pharaoh("1-1 2p3", one_based=True) == ({(0, 0)}, {(0, 0), (1, 2)})
    for bad in ("1-x", "1-2-3", "12", "-1-2", "1_2"):
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            parse_pharaoh(f"0-0 {bad}")
    with pytest.raises(ValueError, match="'0-1'"):
        parse_pharaoh("0-1", one_based=True)


# ---- AER ------------------------------------------------------------------------------------


def _pair(sure, possible_only=(), n_src=3, n_tgt=3) -> GoldPair:
    return GoldPair(["s"] * n_src, ["t"] * n_tgt, frozenset(sure), frozenset(possible_only))


GOLD = _pair({(0, 0), (1, 1)}, {(1, 2)})  # S = {0-0, 1-1}, P = S + {1-2}


def test_aer_perfect():
    # |A∩S| = 2, |A∩P| = 2, |A| = 2, |S| = 2: AER = 1 - 4/4 = 0, P = 2/2, R = 2/2
    s = alignment_scores([frozenset({(0, 0), (1, 1)})], [GOLD])
    assert s == {"aer": 0.0, "precision": 1.0, "recall": 1.0, "links_predicted": 2, "links_sure": 2,
                 "links_possible": 3, "sentences": 1}  # fmt: skip


def test_aer_empty_prediction():
    # |A| = 0: AER = 1 - 0/(0 + 2) = 1; recall 0/2 = 0; precision 0/0 -> 1.0 by convention
    s = alignment_scores([frozenset()], [GOLD])
    assert (s["aer"], s["precision"], s["recall"], s["links_predicted"]) == (1.0, 1.0, 0.0, 0)
    # nothing predicted, nothing to find: AER 0/0 -> 0.0, recall 0/0 -> 1.0
    s = alignment_scores([frozenset()], [_pair(set())])
    assert (s["aer"], s["precision"], s["recall"]) == (0.0, 1.0, 1.0)


def test_aer_sure_only_gold():
    # S = P = {0-0, 1-1, 2-2}, A = {0-0, 1-1, 2-1}: |A∩S| = |A∩P| = 2, |A| = |S| = 3
    # AER = 1 - (2 + 2)/(3 + 3) = 1/3, precision = 2/3, recall = 2/3
    s = alignment_scores([frozenset({(0, 0), (1, 1), (2, 1)})], [_pair({(0, 0), (1, 1), (2, 2)})])
    assert s["aer"] == pytest.approx(1 / 3)
    assert s["precision"] == pytest.approx(2 / 3)
    assert s["recall"] == pytest.approx(2 / 3)


def test_aer_possible_only_gold():
    # S = {}, P = {0-0, 1-1}, A = {0-0, 2-2}: |A∩S| = 0, |A∩P| = 1, |A| = 2, |S| = 0
    # AER = 1 - (0 + 1)/(2 + 0) = 0.5, precision = 1/2, recall 0/0 -> 1.0
    s = alignment_scores([frozenset({(0, 0), (2, 2)})], [_pair(set(), {(0, 0), (1, 1)})])
    assert (s["aer"], s["precision"], s["recall"]) == (0.5, 0.5, 1.0)
    assert (s["links_sure"], s["links_possible"]) == (0, 2)


MIX_GOLD = [_pair({(0, 0), (1, 1)}, {(1, 2), (2, 2)}), _pair({(0, 1)}, {(1, 0)}, n_src=2, n_tgt=2)]
MIX_PRED = [frozenset({(0, 0), (1, 2), (2, 0)}), frozenset({(0, 1), (1, 0)})]


def test_aer_mix_over_a_corpus():
    # sentence 1: A∩S = {0-0} (1), A∩P = {0-0, 1-2} (2), |A| = 3, |S| = 2, |P| = 4
    # sentence 2: A∩S = {0-1} (1), A∩P = {0-1, 1-0} (2), |A| = 2, |S| = 1, |P| = 2
    # corpus: AER = 1 - (2 + 4)/(5 + 3) = 0.25, precision = 4/5, recall = 2/3
    s = alignment_scores(MIX_PRED, MIX_GOLD)
    assert s["aer"] == pytest.approx(0.25)
    assert s["precision"] == pytest.approx(0.8)
    assert s["recall"] == pytest.approx(2 / 3)
    assert (s["links_predicted"], s["links_sure"], s["links_possible"], s["sentences"]) == (5, 3, 6, 2)


def test_sentence_counts_are_what_corpus_scores_sum():
    # per sentence (|A|, |S|, |A∩S|, |A∩P|, |P|), worked out above for test_aer_mix_over_a_corpus
    counts = sentence_counts(MIX_PRED, MIX_GOLD)
    assert counts == [(3, 2, 1, 2, 4), (2, 1, 1, 2, 2)]
    assert scores_of_counts(counts) == alignment_scores(MIX_PRED, MIX_GOLD)
    # a bootstrap resample that draws sentence 2 twice: AER = 1 - (2 + 4)/(4 + 2) = 0
    assert scores_of_counts([counts[1], counts[1]])["aer"] == 0.0


def test_aer_keep_filters_prediction_and_gold_alike():
    # drop source word 2 of sentence 1 (the "pair" argument tells the sentences apart):
    # sentence 1: A = {0-0, 1-2}, S = {0-0, 1-1}, P = {0-0, 1-1, 1-2}: A∩S 1, A∩P 2, |A| 2, |S| 2
    # sentence 2 unchanged: A∩S 1, A∩P 2, |A| 2, |S| 1
    # AER = 1 - (2 + 4)/(4 + 3) = 1/7, precision = 4/4, recall = 2/3
    s = alignment_scores(MIX_PRED, MIX_GOLD, keep=lambda pair, i, j: i != 2)
    assert s["aer"] == pytest.approx(1 / 7)
    assert s["precision"] == 1.0
    assert s["recall"] == pytest.approx(2 / 3)
    assert (s["links_predicted"], s["links_possible"]) == (4, 5)


def test_aer_length_mismatch():
    with pytest.raises(ValueError, match="1 predicted alignments but 2 gold"):
        alignment_scores(MIX_PRED[:1], MIX_GOLD)


def test_gold_pair_possible_includes_sure():
    assert GOLD.possible == {(0, 0), (1, 1), (1, 2)}


# ---- gold readers ---------------------------------------------------------------------------

# canonical links, 0-based, (source, target): line 1 and line 2 (sure "-", possible "p")
_CANON = [
    [(0, 0, "-"), (1, 1, "p"), (2, 1, "-")],
    [(0, 0, "-"), (1, 2, "-"), (1, 0, "p"), (2, 0, "-")],  # (2, 0): source has only 2 words
]
_EXPECTED = [
    GoldPair(["a", "b", "c"], ["x", "y"], frozenset({(0, 0), (2, 1)}), frozenset({(1, 1)})),
    GoldPair(["d", "e"], ["z", "w", "v"], frozenset({(0, 0), (1, 2)}), frozenset({(1, 0)})),
]


@pytest.mark.parametrize("one_based", [True, False])
@pytest.mark.parametrize("src_first", [True, False])
def test_read_gold_pharaoh(tmp_path: Path, one_based: bool, src_first: bool):
    base = int(one_based)
    lines = []
    for links in _CANON:
        toks = [f"{i + base}{k}{j + base}" if src_first else f"{j + base}{k}{i + base}" for i, j, k in links]
        lines.append(" ".join(toks))
    lines[1] += " 1-q"  # malformed
    (tmp_path / "src.txt").write_text("a b c\nd e\n", encoding="utf-8")
    (tmp_path / "tgt.txt").write_text("x y\nz w v\n", encoding="utf-8")
    align = tmp_path / "gold.align"
    align.write_text("\n".join(lines) + "\n", encoding="utf-8")
    pairs, warnings = read_gold_pharaoh(
        tmp_path / "src.txt", tmp_path / "tgt.txt", align, one_based, src_first
    )
    assert pairs == _EXPECTED
    assert len(warnings) == 2
    assert all(w.startswith(f"{align}:2: ") and w.endswith("skipped") for w in warnings)
    bad = f"{2 + base}-{0 + base}" if src_first else f"{0 + base}-{2 + base}"
    assert any("out of range" in w and repr(bad) in w for w in warnings)
    assert any("malformed" in w and "'1-q'" in w for w in warnings)


def test_read_gold_pharaoh_errors(tmp_path: Path):
    (tmp_path / "src.txt").write_text("a b\nc\n", encoding="utf-8")
    (tmp_path / "tgt.txt").write_text("x\ny\n", encoding="utf-8")
    (tmp_path / "one.align").write_text("1-1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"one\.align 1") as e:
        read_gold_pharaoh(tmp_path / "src.txt", tmp_path / "tgt.txt", tmp_path / "one.align")
    assert "src.txt has 2" in str(e.value)
    (tmp_path / "tgt.txt").write_text("x\n\n", encoding="utf-8")
    (tmp_path / "two.align").write_text("1-1\n1-1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"tgt\.txt:2: empty sentence"):
        read_gold_pharaoh(tmp_path / "src.txt", tmp_path / "tgt.txt", tmp_path / "two.align")


CZENALI_LINES = [
    "The cat sleeps .\tKočka spí .\t2-1 3-2 4-3\t1-1",
    "Hello\tAhoj\t1-1 5-1\t1-x",  # out of range (English has 1 word), malformed
]


@pytest.mark.parametrize("gz", [False, True])
def test_read_gold_czenali_both_directions(tmp_path: Path, gz: bool):
    path = tmp_path / ("gold.tsv.gz" if gz else "gold.tsv")
    data = ("\n".join(CZENALI_LINES) + "\n").encode("utf-8")
    path.write_bytes(gzip.compress(data) if gz else data)
    pairs, warnings = read_gold_czenali(path, "en", "cs")
    assert pairs[0] == GoldPair(
        "The cat sleeps .".split(),
        ["Kočka", "spí", "."],
        frozenset({(1, 0), (2, 1), (3, 2)}),
        frozenset({(0, 0)}),
    )
    assert pairs[1] == GoldPair(["Hello"], ["Ahoj"], frozenset({(0, 0)}), frozenset())
    assert len(warnings) == 2 and all(w.startswith(f"{path}:2: ") for w in warnings)
    assert "'5-1'" in warnings[0] and "out of range" in warnings[0] and "'1-x'" in warnings[1]
    flipped, _ = read_gold_czenali(path, "cs", "en")
    assert flipped[0] == GoldPair(
        ["Kočka", "spí", "."],
        "The cat sleeps .".split(),
        frozenset({(0, 1), (1, 2), (2, 3)}),
        frozenset({(0, 0)}),
    )


def test_read_gold_czenali_errors(tmp_path: Path):
    path = tmp_path / "gold.tsv"
    path.write_text(CZENALI_LINES[0] + "\nHello\tAhoj\t1-1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"gold\.tsv:2: expected 4 tab-separated columns.*found 3"):
        read_gold_czenali(path, "en", "cs")
    path.write_text(CZENALI_LINES[0] + "\n \tAhoj\t\t\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"gold\.tsv:2: empty English sentence"):
        read_gold_czenali(path, "en", "cs")
    with pytest.raises(ConfigError, match="de->en"):
        read_gold_czenali(path, "de", "en")


def test_read_gold_set_orients_either_format(tmp_path: Path):
    path = tmp_path / "gold.tsv"
    path.write_text(CZENALI_LINES[0] + "\n", encoding="utf-8")
    (en_cs,), _ = read_gold_set(path, "czenali", "en", "cs")
    (cs_en,), _ = read_gold_set(path, "czenali", "cs", "en")
    assert en_cs.src_words == cs_en.tgt_words and (1, 0) in en_cs.sure and (0, 1) in cs_en.sure
    # the same TSV shape for another language pair, named by `langs`
    (de_fr,), _ = read_gold_set(path, "czenali", "fr", "de", langs=["de", "fr"])
    assert de_fr.src_words == ["Kočka", "spí", "."] and (0, 1) in de_fr.sure
    with pytest.raises(ConfigError, match="holds en and cs but the model translates de->en"):
        read_gold_set(path, "czenali", "de", "en")
    with pytest.raises(ConfigError, match="pharaoh format needs the tokenized source and target"):
        read_gold_set(path, "pharaoh", "de", "en")
    with pytest.raises(ConfigError, match="unknown gold format 'moses'"):
        read_gold_set(path, "moses", "en", "cs")


@pytest.mark.skipif(CZENALI is None, reason="czenali.gz not found (set MT_DATA_DIR or use ../shared/data)")
def test_read_real_czenali():
    pairs, warnings = read_gold_czenali(CZENALI, "en", "cs")
    assert len(pairs) == 2501
    assert len(warnings) == 1
    assert f"{CZENALI}:1431:" in warnings[0] and "'60-44'" in warnings[0]
    assert all(p.sure <= p.possible for p in pairs)
    assert sum(len(p.sure) for p in pairs) > 2501 * 5  # news sentences: many sure links each
    assert all(i < len(p.src_words) and j < len(p.tgt_words) for p in pairs for i, j in p.possible)
    flipped, _ = read_gold_czenali(CZENALI, "cs", "en")
    assert flipped[0].src_words == pairs[0].tgt_words
    assert flipped[0].sure == {(j, i) for i, j in pairs[0].sure}


# ---- symmetrization -------------------------------------------------------------------------


def test_symmetrize_intersection_union():
    fwd, bwd = frozenset({(0, 0), (1, 1)}), frozenset({(0, 0), (1, 2)})
    assert symmetrize(fwd, bwd, "intersection") == {(0, 0)}
    assert symmetrize(fwd, bwd, "union") == {(0, 0), (1, 1), (1, 2)}
    with pytest.raises(ValueError, match="intersection, union, grow-diag-final-and"):
        symmetrize(fwd, bwd, "grow-diag")


def test_grow_diag_adds_a_diagonal_neighbour():
    # 4 source x 2 target words. Intersection {0-0, 3-1}; the forward model adds 1-1.
    # 1-1 touches no aligned point horizontally or vertically (0-1, 2-1, 1-0 are unaligned), but
    # it is the diagonal neighbour of 0-0 and source word 1 is unaligned: grow-diag adds it.
    # final-and alone would not (target word 1 is already aligned by 3-1).
    fwd, bwd = frozenset({(0, 0), (3, 1), (1, 1)}), frozenset({(0, 0), (3, 1)})
    assert symmetrize(fwd, bwd, "grow-diag-final-and") == {(0, 0), (1, 1), (3, 1)}


def test_grow_skips_links_whose_words_are_both_aligned():
    # Intersection {0-0, 1-1}; union adds 0-1, adjacent to both, but words 0 and 1 are aligned.
    fwd, bwd = frozenset({(0, 0), (1, 1)}), frozenset({(0, 0), (1, 1), (0, 1)})
    assert symmetrize(fwd, bwd, "grow-diag-final-and") == {(0, 0), (1, 1)}


def test_final_and_adds_links_between_unaligned_words():
    # Intersection {0-0}. 2-2 (forward) and 1-2 (backward) are not neighbours of 0-0, so grow adds
    # nothing. final-and: forward first, 2-2 joins two unaligned words -> added; then backward
    # 1-2: target word 2 is now aligned -> not added ("and": both words must be unaligned).
    fwd, bwd = frozenset({(0, 0), (2, 2)}), frozenset({(0, 0), (1, 2)})
    assert symmetrize(fwd, bwd, "grow-diag-final-and") == {(0, 0), (2, 2)}
    # a chain: grow adds 1-1 (diagonal of 0-0), then 2-2 (diagonal of 1-1); 4-3 neighbours no
    # aligned point, final-and adds it (words 4 and 3 unaligned); backward 3-0 is not added
    # (target word 0 is aligned by 0-0)
    fwd, bwd = frozenset({(0, 0), (1, 1), (2, 2), (4, 3)}), frozenset({(0, 0), (3, 0)})
    assert symmetrize(fwd, bwd, "grow-diag-final-and") == {(0, 0), (1, 1), (2, 2), (4, 3)}


def test_grow_diag_final_and_invariants_on_random_alignments():
    # intersection ⊆ result ⊆ union, and no union link left out joins two unaligned words
    # (final-and would have added it)
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, m = rng.integers(1, 7, size=2)
        fwd = frozenset(zip(rng.integers(0, n, 6).tolist(), rng.integers(0, m, 6).tolist(), strict=True))
        bwd = frozenset(zip(rng.integers(0, n, 6).tolist(), rng.integers(0, m, 6).tolist(), strict=True))
        out = symmetrize(fwd, bwd, "grow-diag-final-and")
        assert fwd & bwd <= out <= fwd | bwd
        src, tgt = {i for i, _ in out}, {j for _, j in out}
        assert all(i in src or j in tgt for i, j in (fwd | bwd) - out)


def test_gold_scorer_validates_on_the_shortest_pairs_in_file_order():
    from mt.config import AlignmentConfig
    from mt.evaluation.gold_scores import GoldScorer

    sizes = [(5, 5), (1, 2), (3, 3), (2, 1), (1, 1)]  # words: 10, 3, 6, 3, 2
    pairs = [GoldPair(["s"] * a, ["t"] * b, frozenset(), frozenset()) for a, b in sizes]
    scorer = GoldScorer(pairs, lambda pair, i, j: True, [], AlignmentConfig())
    assert scorer.shortest(3) == [pairs[1], pairs[3], pairs[4]]  # 2, then the tie 3 / 3 by position
    assert scorer.shortest(2) == [pairs[1], pairs[4]]
    assert scorer.shortest(9) == pairs
