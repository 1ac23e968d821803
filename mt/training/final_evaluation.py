"""The final evaluation of a training run, resumable: beam search with the best checkpoint on
validation and every test split. Each split's scores are recorded beside its outputs
(`outputs/<split>.scores.json`: the best checkpoint's step, the search settings, the SHA-256 of
the hypotheses); a resumed run whose final evaluation stopped half way (a full disk, a kill)
reuses every split recorded for the same checkpoint and search, and decodes only the rest."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path
from typing import Any

import torch

from mt.config import TrainConfig
from mt.data.pipeline import PreparedData
from mt.evaluation.evaluate import evaluate_splits
from mt.io import read_json, write_json
from mt.models.seq2seq import Seq2Seq
from mt.search.base import SearchConfig
from mt.training.checkpoint import load_checkpoint
from mt.training.trainer import Trainer

log = logging.getLogger("mt.eval")


def final_evaluation(
    cfg: TrainConfig,
    model: Seq2Seq,
    data: PreparedData,
    run_dir: Path,
    device: torch.device,
    trainer: Trainer,
) -> dict[str, Any]:
    """Beam search with the best checkpoint on validation and every test split -> {split: scores}."""
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt", map_location=device)
    model.load_state_dict(best["model"])
    best_step = best["progress"]["step"]
    del best
    search = SearchConfig.from_trainer(cfg.trainer)
    identity = {"best_step": best_step, "search": dataclasses.asdict(search)}
    splits = ["validation"] + [s for s in data.encoded if s not in ("train", "validation")]
    scores: dict[str, Any] = {}
    for split in splits:
        done = recorded_scores(run_dir, split, identity)
        if done is not None:
            log.info("%s: reusing the outputs decoded before (best checkpoint of step %d)", split, best_step)
            scores[split] = done
            continue
        scores.update(evaluate_splits(model, data, cfg.data, [split], search, device, run_dir, cfg.data.tgt_lang,
                                      plot_sentences=list(cfg.trainer.plot_sentences), tb=trainer.tb,
                                      step=trainer.progress.step))  # fmt: skip
        hyp = run_dir / "outputs" / f"{split}.hyp"
        write_json(
            record_path(run_dir, split), {**identity, "hyp_sha256": sha256(hyp), "scores": scores[split]}
        )
    return scores


def record_path(run_dir: Path, split: str) -> Path:
    return run_dir / "outputs" / f"{split}.scores.json"


def recorded_scores(run_dir: Path, split: str, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The scores recorded for `split` when they belong to this checkpoint and search and the
    hypotheses are the ones scored; None otherwise (decode again)."""
    path, hyp = record_path(run_dir, split), run_dir / "outputs" / f"{split}.hyp"
    if not path.is_file() or not hyp.is_file():
        return None
    try:
        record = read_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or any(record.get(k) != v for k, v in identity.items()):
        return None
    if record.get("hyp_sha256") != sha256(hyp) or not isinstance(record.get("scores"), dict):
        return None
    return record["scores"]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
