"""A training run's attention scored against a gold word-alignment set (`alignment.gold=...`).

The gold set and the training vocabulary are read once, before training (`load_gold_scorer`);
each validation scores the `alignment.valid_max_pairs` shortest pairs (`valid_alignment_scores`,
whose keys join the validation's diagnostics: the history record of results.json and the
`valid/<key>` TensorBoard scalars); the final evaluation scores all pairs with the best model
and writes `alignment.json` in the format of `mt-align ... gold=... results=FILE`
(`final_alignment`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from mt.config import AlignmentConfig, TrainConfig
from mt.data.tokenizer import Tokenizer
from mt.errors import USER_ERRORS, ConfigError
from mt.evaluation.gold_scores import GoldScorer, alignment_record, scores_line
from mt.io import write_json
from mt.models.seq2seq import Seq2Seq
from mt.training.distributed import DistContext, broadcast_object

log = logging.getLogger("mt.train")

# the keys a validation adds to its history record (and to TensorBoard as valid/<key>)
VALID_KEYS = ("aer", "aer_precision", "aer_recall", "aer_in_vocabulary")


def load_gold_scorer(cfg: TrainConfig, dist: DistContext) -> GoldScorer | None:
    """The run's gold set, read on rank 0 (the rank that validates); None without `alignment.gold`.

    A bad gold file is a ConfigError / DataError on every rank: rank 0's error is broadcast, so
    that the other ranks stop too instead of waiting for it.
    """
    if cfg.alignment.gold is None:
        return None
    scorer, error = None, None
    if dist.is_main:
        try:
            check_gold_files(cfg.alignment)
            scorer = GoldScorer.from_config(cfg.alignment, cfg.data)
        except USER_ERRORS as e:
            error = e
    error = broadcast_object(dist, error)
    if error is not None:
        raise error
    if scorer is not None:
        for warning in scorer.warnings:  # each names the gold file and line; the link is skipped
            log.warning("%s", warning)
        n, limit = len(scorer.pairs), cfg.alignment.valid_max_pairs
        log.info("gold alignments: %d pairs from %s (%d bad links skipped); %d scored at each validation, all at "
                 "the end", n, cfg.alignment.gold, len(scorer.warnings), min(limit or n, n))  # fmt: skip
    return scorer


def check_gold_files(cfg: AlignmentConfig) -> None:
    """A ConfigError naming the `alignment.*` key of a gold file that does not exist."""
    for key in ("gold", "src", "tgt") if cfg.format == "pharaoh" else ("gold",):
        path = getattr(cfg, key)
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"config error at `alignment.{key}`: no file {path} (relative paths are read from "
                              f"{Path.cwd()}); give the path of the gold alignment set, or leave alignment.gold "
                              "unset to train without one")  # fmt: skip


def valid_alignment_scores(
    scorer: GoldScorer,
    model: Seq2Seq,
    tokenizer: Tokenizer,
    device: torch.device,
    precision: str,
    max_pairs: int,
) -> dict[str, float]:
    """AER, precision and recall (all links) and in-vocabulary AER of the `max_pairs` shortest gold
    pairs (0 = all), with the model in eval mode: {key: value} for :data:`VALID_KEYS`."""
    model.eval()
    scores = scorer(model, tokenizer, device, precision, max_pairs)
    a, v = scores["all"], scores["in_vocabulary"]
    log.info("AER %.4f (P %.4f R %.4f; in-vocabulary AER %.4f) on %d gold pairs in %.1fs", a["aer"],
             a["precision"], a["recall"], v["aer"], scores["pairs"], scores["seconds"])  # fmt: skip
    return {
        "aer": a["aer"],
        "aer_precision": a["precision"],
        "aer_recall": a["recall"],
        "aer_in_vocabulary": v["aer"],
    }


def final_alignment(
    scorer: GoldScorer,
    model: Seq2Seq,
    tokenizer: Tokenizer,
    device: torch.device,
    precision: str,
    run_dir: Path,
    model_facts: dict[str, Any],
) -> dict[str, Any]:
    """Score every gold pair with `model` (the best checkpoint's); write RUN_DIR/alignment.json
    (the format `mt-align ... results=FILE` writes: all, in_vocabulary, sentence_counts, ...)
    and return its summary for results.json: {"all", "in_vocabulary", "pairs"}."""
    scores = scorer(model, tokenizer, device, precision, max_pairs=0)
    settings = asdict(scorer.cfg)
    write_json(
        run_dir / "alignment.json", alignment_record(scores, len(scorer.warnings), settings, model_facts)
    )
    log.info("final %s on %d gold pairs in %.1fs; in %s", scores_line(scores), scores["pairs"], scores["seconds"],
             run_dir / "alignment.json")  # fmt: skip
    return {"all": scores["all"], "in_vocabulary": scores["in_vocabulary"], "pairs": scores["pairs"]}
