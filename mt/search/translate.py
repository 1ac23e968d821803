"""Translating whole splits or lists of sentences with a trained model, in input order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from datasets import Dataset

from mt.data.collate import Batch, collate
from mt.data.loaders import eval_batch_size, make_eval_loader, restore_order
from mt.data.tokenizer import BOS_ID, EOS_ID
from mt.models.seq2seq import Seq2Seq
from mt.runtime import autocast, release_memory
from mt.search.beam import Hypothesis, beam_search, greedy_search


@dataclass
class SearchConfig:
    """How to decode: beam_size 1 is greedy search."""

    beam_size: int = 5
    n_best: int = 1
    length_penalty: float = 1.0
    max_len_a: float = 1.5
    max_len_b: int = 10
    precision: str = "bf16"

    @classmethod
    def from_trainer(cls, t: Any, **changes: Any) -> SearchConfig:
        """The final-evaluation search of a run's trainer settings (`trainer.test_beam_size`, ...)."""
        search = cls(beam_size=t.test_beam_size, length_penalty=t.length_penalty, max_len_a=t.max_len_a,
                     max_len_b=t.max_len_b, precision=t.precision)  # fmt: skip
        return replace(search, **changes)


def decode_batch(model: Seq2Seq, batch: Batch, search: SearchConfig) -> list[list[Hypothesis]]:
    """Decode one batch (already on the model's device) -> per sentence its n-best list."""
    args = (model, batch.src, batch.src_lens, batch.src_mask, BOS_ID, EOS_ID)
    with autocast(batch.src.device, search.precision):
        if search.beam_size == 1:
            return [[h] for h in greedy_search(*args, max_len_a=search.max_len_a, max_len_b=search.max_len_b)]
        return beam_search(
            *args,
            beam_size=search.beam_size,
            n_best=search.n_best,
            alpha=search.length_penalty,
            max_len_a=search.max_len_a,
            max_len_b=search.max_len_b,
        )


def _decode_batches(
    model: Seq2Seq, batches: Iterable[Batch], search: SearchConfig, device
) -> list[list[Hypothesis]]:
    was_training = model.training
    model.eval()
    indices, outputs = [], []
    try:
        for batch in batches:
            outputs.extend(decode_batch(model, batch.to(device), search))
            indices.extend(batch.indices.tolist())
            release_memory()
    finally:
        model.train(was_training)
    return restore_order(indices, outputs)


def translate_split(
    model: Seq2Seq, ds: Dataset, data_cfg, search: SearchConfig, device: torch.device
) -> list[list[Hypothesis]]:
    """Every row of an encoded split (src_ids column), n-best lists in dataset order.

    Batches hold ``eval_batch_size(data_cfg, beam_size)`` sentences (about
    ``data_cfg.eval_batch_rows`` hypotheses unless ``data_cfg.eval_batch_sentences`` is set).
    """
    size = eval_batch_size(data_cfg, search.beam_size)
    loader = make_eval_loader(ds.select_columns(["src_ids", "src_len"]), data_cfg, batch_sentences=size)
    return _decode_batches(model, loader, search, device)


def translate_ids(
    model: Seq2Seq,
    ids: list[list[int]],
    search: SearchConfig,
    device: torch.device,
    batch_sentences: int = 0,
    batch_rows: int = 500,
) -> list[list[Hypothesis]]:
    """Encoded sources (each ending with EOS) -> n-best lists in input order.

    Batches (longest sources first) hold `batch_sentences` sentences, or with 0 about
    `batch_rows` hypotheses: `batch_rows // beam_size` sentences.
    """
    if not ids:
        return []
    if batch_sentences <= 0:
        batch_sentences = max(1, batch_rows // search.beam_size)
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))

    def batches() -> Iterator[Batch]:
        for start in range(0, len(order), batch_sentences):
            rows = order[start : start + batch_sentences]
            yield collate([ids[i] for i in rows], None, rows)

    return _decode_batches(model, batches(), search, device)
