"""Corpus scores with sacreBLEU (BLEU, chrF, TER with their signatures) and the
tokenized lowercased BLEU used by published Multi30k results.

Hypotheses and references are brought to Unicode NFC before any metric sees them
(:func:`nfc_lines`), so a reference file with decomposed diacritics (NFD: ``a`` + U+0308)
scores exactly as the same text precomposed (``ä``); the sentencepiece tokenizer already
outputs NFKC, which is NFC too. A model trained on lowercased text (``tokenizer.lowercase``) is
scored ignoring case (``lowercase=True``: sacreBLEU's ``case:lc`` in the signatures), since its
outputs could never match a capital letter.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from sacrebleu.metrics import BLEU, CHRF, TER

UNICODE_NORMALIZATION = "NFC"  # applied to hypotheses and references before scoring
TOK_LC_PROTOCOL = "sacremoses tokenizer (no escaping) + lowercase, then BLEU with tokenize=none"


@lru_cache(maxsize=8)
def _moses(lang: str):
    from sacremoses import MosesTokenizer

    return MosesTokenizer(lang=lang)


def sacrebleu_metric(name: str, lowercase: bool = False) -> BLEU | CHRF | TER:
    """A fresh sacreBLEU metric, "bleu", "chrf" or "ter", ignoring case with ``lowercase``."""
    if name == "ter":
        return TER(case_sensitive=not lowercase)
    return {"bleu": BLEU, "chrf": CHRF}[name](lowercase=lowercase)


def nfc_lines(lines: Iterable[str]) -> list[str]:
    """Each line in Unicode normalization form NFC (what every score here is computed on)."""
    return [unicodedata.normalize(UNICODE_NORMALIZATION, line) for line in lines]


def moses_tok_lc(lines: list[str], lang: str) -> list[str]:
    """Moses-tokenize and lowercase, as multi-bleu.perl evaluations of Multi30k did."""
    tok = _moses(lang)
    return [tok.tokenize(line, escape=False, return_str=True).lower() for line in lines]


def score_corpus(
    hyps: list[str], refs: list[str], tgt_lang: str = "en", lowercase: bool = False
) -> dict[str, Any]:
    """Detokenized hypotheses vs raw references -> {bleu, chrf, ter, bleu_tok_lc}.

    Each of bleu, chrf, ter is {"score": float, "signature": str}; bleu also carries the
    n-gram precisions and the brevity penalty. Both sides are scored in Unicode NFC, which
    "unicode_normalization" records; with ``lowercase`` BLEU, chrF and TER ignore case.
    """
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references")
    hyps, refs = nfc_lines(hyps), nfc_lines(refs)
    bleu, chrf, ter = (sacrebleu_metric(name, lowercase) for name in ("bleu", "chrf", "ter"))
    b = bleu.corpus_score(hyps, [refs])
    c = chrf.corpus_score(hyps, [refs])
    t = ter.corpus_score(hyps, [refs])
    tok = BLEU(tokenize="none", force=True)
    bt = tok.corpus_score(moses_tok_lc(hyps, tgt_lang), [moses_tok_lc(refs, tgt_lang)])
    return {
        "bleu": {"score": round(b.score, 2), "signature": str(bleu.get_signature()),
                 "precisions": [round(p, 1) for p in b.precisions], "bp": round(b.bp, 3),
                 "sys_len": b.sys_len, "ref_len": b.ref_len},
        "chrf": {"score": round(c.score, 2), "signature": str(chrf.get_signature())},
        "ter": {"score": round(t.score, 2), "signature": str(ter.get_signature())},
        "bleu_tok_lc": {"score": round(bt.score, 2), "signature": str(tok.get_signature()), "protocol": TOK_LC_PROTOCOL},
        "unicode_normalization": UNICODE_NORMALIZATION,
    }  # fmt: skip


def quick_bleu(hyps: list[str], refs: list[str], lowercase: bool = False) -> tuple[float, float]:
    """(BLEU, chrF) only, in Unicode NFC like :func:`score_corpus`: the validation metrics."""
    hyps, refs = nfc_lines(hyps), nfc_lines(refs)
    bleu, chrf = sacrebleu_metric("bleu", lowercase), sacrebleu_metric("chrf", lowercase)
    return bleu.corpus_score(hyps, [refs]).score, chrf.corpus_score(hyps, [refs]).score


def summary_line(name: str, scores: dict[str, Any]) -> str:
    """One line: split, BLEU, chrF, TER, tokenized lowercased BLEU."""
    return (
        f"{name}: BLEU {scores['bleu']['score']:.2f}  chrF {scores['chrf']['score']:.2f}  "
        f"TER {scores['ter']['score']:.2f}  BLEU(tok,lc) {scores['bleu_tok_lc']['score']:.2f}"
    )
