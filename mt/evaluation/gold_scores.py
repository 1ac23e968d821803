"""A model's attention scored against a gold alignment set: AER, precision and recall over all
links and over in-vocabulary links, with the per-sentence counts a bootstrap resamples.

`score_links` is what `mt-align gold=...` writes; `GoldScorer` is the same for a training run
(`alignment.gold=...`): the gold set and the training vocabulary are read once, and each call
force-aligns the model (`mt.evaluation.force_align`) on all pairs or the `max_pairs` shortest.
`alignment_record` is the one `alignment.json` record (which `mt-report` reads) that `mt-align`,
a run's final alignment and `scripts/attention_table.py` write; `scores_line` its summary line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from mt.config import AlignmentConfig, DataConfig
from mt.data.tokenizer import Tokenizer
from mt.evaluation.aer import COUNT_FIELDS, scores_of_counts, sentence_counts
from mt.evaluation.alignment import Links
from mt.evaluation.force_align import force_align, in_vocabulary, training_vocabulary
from mt.evaluation.gold import GoldPair, read_gold_set
from mt.models.seq2seq import Seq2Seq

IN_VOCABULARY_RULE = ("both words occur in the model's training text, Moses-tokenized (sacremoses, "
                      "escape=False) and lowercased")  # fmt: skip


def score_links(links: list[Links], gold: list[GoldPair], keep: Callable[[GoldPair, int, int], bool]) -> dict:
    """``{"all": scores, "in_vocabulary": scores, "sentence_counts": {...}}``; the counts are
    per pair, in the order of :data:`mt.evaluation.aer.COUNT_FIELDS`."""
    counts_all = sentence_counts(links, gold)
    counts_voc = sentence_counts(links, gold, keep)
    return {
        "all": scores_of_counts(counts_all),
        "in_vocabulary": scores_of_counts(counts_voc),
        "in_vocabulary_rule": IN_VOCABULARY_RULE,
        "sentence_counts": {"fields": list(COUNT_FIELDS), "all": counts_all, "in_vocabulary": counts_voc},
    }


def alignment_record(
    scores: dict[str, Any], warnings: int, settings: dict[str, Any], model: dict[str, Any]
) -> dict[str, Any]:
    """The ``alignment.json`` record: `score_links`'s scores (with ``pairs`` and ``seconds`` where
    known), the number of gold-set warnings, the alignment settings and the model's facts."""
    return {**scores, "warnings": warnings, "settings": settings, "model": model}


def scores_line(scores: dict[str, Any]) -> str:
    """``AER .. P .. R .. (all links) | AER .. P .. R .. (in-vocabulary)`` of `score_links`'s scores."""
    a, v = scores["all"], scores["in_vocabulary"]
    return (f"AER {a['aer']:.4f} P {a['precision']:.4f} R {a['recall']:.4f} (all links) | "
            f"AER {v['aer']:.4f} P {v['precision']:.4f} R {v['recall']:.4f} (in-vocabulary)")  # fmt: skip


@dataclass
class GoldScorer:
    """The gold set of a training run, oriented for its language pair, and its vocabulary filter."""

    pairs: list[GoldPair]
    keep: Callable[[GoldPair, int, int], bool]
    warnings: list[str]
    cfg: AlignmentConfig

    @classmethod
    def from_config(cls, cfg: AlignmentConfig, data_cfg: DataConfig) -> GoldScorer:
        """Read `cfg.gold` for a `data_cfg.src_lang`->`tgt_lang` model (ConfigError / DataError on bad files)."""
        pairs, warnings = read_gold_set(cfg.gold, cfg.format, data_cfg.src_lang, data_cfg.tgt_lang, cfg.src,
                                        cfg.tgt, one_based=cfg.one_based, src_first=cfg.src_first,
                                        langs=cfg.langs)  # fmt: skip
        return cls(pairs, in_vocabulary(*training_vocabulary(data_cfg)), warnings, cfg)

    def shortest(self, n: int) -> list[GoldPair]:
        """The `n` pairs with the fewest words (source + target; ties by position), in file order.

        A forced-alignment batch takes as many decoder steps as its longest target, so scoring
        the short pairs at each validation is what keeps its cost small (docs/attention.md)."""
        size = [len(p.src_words) + len(p.tgt_words) for p in self.pairs]
        by_length = sorted(range(len(self.pairs)), key=lambda i: (size[i], i))
        return [self.pairs[i] for i in sorted(by_length[:n])]

    def __call__(
        self,
        model: Seq2Seq,
        tokenizer: Tokenizer,
        device: torch.device,
        precision: str = "fp32",
        max_pairs: int = 0,
    ) -> dict[str, Any]:
        """Scores (see :func:`score_links`) of the model's links on the `max_pairs` shortest pairs
        (:meth:`shortest`; 0 = all pairs), plus ``pairs``, ``seconds`` and ``pairs_per_s``."""
        pairs = self.shortest(max_pairs) if 0 < max_pairs < len(self.pairs) else self.pairs
        result = force_align(model, tokenizer, [" ".join(p.src_words) for p in pairs],
                             [" ".join(p.tgt_words) for p in pairs], device, precision=precision,
                             method=self.cfg.method, threshold=self.cfg.threshold, progress=False)  # fmt: skip
        scores = score_links(result.links, pairs, self.keep)
        rate = len(pairs) / result.seconds if result.seconds > 0 else 0.0
        return {
            **scores,
            "pairs": len(pairs),
            "seconds": round(result.seconds, 3),
            "pairs_per_s": round(rate, 1),
        }
