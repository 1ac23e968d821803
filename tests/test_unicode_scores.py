"""Scores do not depend on the Unicode normalization form of references or hypotheses: a German,
Czech or French reference file with decomposed diacritics (NFD) scores as the precomposed one."""

from __future__ import annotations

import unicodedata

import pytest

from mt.evaluation.metrics import quick_bleu, score_corpus

# Sentences full of diacritics; the hypotheses differ from the references in a few words.
CASES = {
    "de": (
        ["Ein Mädchen läuft über die Brücke.", "Zwei Männer spielen Fußball auf der Straße.",
         "Die Frau trägt einen grünen Hut und lächelt."],
        ["Ein Mädchen läuft über eine Brücke.", "Zwei Männer spielen Fußball auf einer Straße.",
         "Die Frau trägt einen grünen Hut."],
    ),
    "cs": (
        ["Žena v červených šatech běží přes náměstí.", "Dítě si hraje s míčem na trávě.",
         "Muž řídí kolo po silnici."],
        ["Žena v červených šatech běží po náměstí.", "Dítě si hraje s míčem v trávě.",
         "Muž řídí kolo na silnici."],
    ),
    "fr": (
        ["Un garçon élève sa tête vers le ciel étoilé.", "Une femme âgée achète des pêches au marché.",
         "Le chien noir traverse la forêt."],
        ["Un garçon lève la tête vers le ciel étoilé.", "Une femme âgée achète des pêches.",
         "Le chien noir traverse une forêt."],
    ),
}  # fmt: skip


def nfd(lines: list[str]) -> list[str]:
    out = [unicodedata.normalize("NFD", line) for line in lines]
    assert out != lines  # the test data really has composed characters
    return out


def scores_only(result: dict) -> dict[str, float]:
    return {m: result[m]["score"] for m in ("bleu", "chrf", "ter", "bleu_tok_lc")}


@pytest.mark.parametrize("lang", sorted(CASES))
def test_nfd_references_score_as_nfc(lang: str):
    refs, hyps = CASES[lang]
    nfc_scores = scores_only(score_corpus(hyps, refs, lang))
    assert 0 < nfc_scores["bleu"] < 100  # a real, imperfect score
    assert scores_only(score_corpus(hyps, nfd(refs), lang)) == nfc_scores
    assert scores_only(score_corpus(nfd(hyps), refs, lang)) == nfc_scores
    assert scores_only(score_corpus(nfd(hyps), nfd(refs), lang)) == nfc_scores


@pytest.mark.parametrize("lang", sorted(CASES))
def test_validation_scores_ignore_the_normalization_form(lang: str):
    refs, hyps = CASES[lang]
    assert quick_bleu(hyps, nfd(refs)) == quick_bleu(hyps, refs)
    assert quick_bleu(nfd(hyps), refs) == quick_bleu(hyps, refs)


def test_results_say_the_text_was_nfc_normalized():
    refs, hyps = CASES["de"]
    assert score_corpus(hyps, refs, "de")["unicode_normalization"] == "NFC"
