"""Rebuild a trained model and its tokenizer from a checkpoint, for evaluation and translation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from mt.config import TrainConfig
from mt.models.seq2seq import Seq2Seq, build_model
from mt.tokenizer import Tokenizer
from mt.training.checkpoint import CheckpointError, load_checkpoint

# Config keys renamed since a checkpoint may have been written: (section, old, new).
RENAMED_KEYS = [("trainer", "valid_every", "val_every")]


def migrate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Bring a checkpoint's stored config up to the current schema's key names."""
    config = {k: dict(v) if isinstance(v, dict) else v for k, v in config.items()}
    for section, old, new in RENAMED_KEYS:
        part = config.get(section)
        if isinstance(part, dict) and old in part:
            part.setdefault(new, part.pop(old))
    return config


@dataclass
class LoadedModel:
    """A model in eval mode with what it was trained with."""

    model: Seq2Seq
    tokenizer: Tokenizer
    config: TrainConfig
    step: int


def load_model(path: str | Path, device: torch.device) -> LoadedModel:
    """Load checkpoint `path` safely and rebuild its model; CheckpointError on any mismatch."""
    ckpt = load_checkpoint(path, map_location=device)
    try:
        cfg: TrainConfig = OmegaConf.to_object(
            OmegaConf.merge(OmegaConf.structured(TrainConfig), migrate_config(ckpt["config"]))
        )  # type: ignore[assignment]
        tokenizer = Tokenizer.from_bytes(ckpt["tokenizer"])
    except Exception as e:  # noqa: BLE001 - any failure here means the file is not usable
        raise CheckpointError(f"checkpoint {path} has an unusable config or tokenizer: {e}") from e
    model = build_model(cfg.model, tokenizer.src_vocab_size, tokenizer.tgt_vocab_size)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(
            f"checkpoint {path} does not fit the model its own config describes: {str(e).splitlines()[0]}"
        ) from e
    step = int(ckpt.get("progress", {}).get("step", 0))
    return LoadedModel(model.to(device).eval(), tokenizer, cfg, step)


def describe(loaded: LoadedModel) -> dict[str, Any]:
    """A few facts for logs and results files."""
    m = loaded.config.model
    return {"step": loaded.step, "attention": m.attention.name, "rnn": m.rnn_type,
            "src_lang": loaded.config.data.src_lang, "tgt_lang": loaded.config.data.tgt_lang}  # fmt: skip
