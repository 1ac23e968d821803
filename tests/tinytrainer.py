"""A Trainer on a tiny synthetic corpus, for in-process tests of the training loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from clihelpers import write_corpus

from mt.config import AttentionConfig, DataConfig, ModelConfig, TokenizerConfig, TrainConfig, TrainerConfig
from mt.data.pipeline import prepare_data
from mt.models.seq2seq import build_model
from mt.training.trainer import Trainer


def tiny_trainer(tmp_path: Path, **trainer: Any) -> Trainer:
    """A fp32 CPU Trainer of a 16/32-unit luong_general model; `trainer` sets TrainerConfig fields."""
    files = write_corpus(tmp_path, None)
    cfg = TrainConfig(
        data=DataConfig(source="local", files=files, cache_dir=str(tmp_path / "cache"), batch_tokens=300),
        tokenizer=TokenizerConfig(vocab_size=60),
        model=ModelConfig(
            emb_size=16, enc_hidden=16, dec_hidden=32, attention=AttentionConfig(name="luong_general")
        ),
        trainer=TrainerConfig(
            **{"max_minutes": 0, "progress": False, "precision": "fp32", "plot_sentences": [], **trainer}
        ),  # fmt: skip
    )
    data = prepare_data(cfg.data, cfg.tokenizer)
    model = build_model(cfg.model, data.tokenizer.src_vocab_size, data.tokenizer.tgt_vocab_size)
    return Trainer(cfg, model, data, tmp_path / "run", torch.device("cpu"), resolved_config={"model": {}})
