"""Translating whole splits or lists of sentences with a trained model, in input order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from datasets import Dataset

from mt.data.collate import Batch, collate
from mt.data.loaders import eval_batch_size, make_eval_loader, restore_order
from mt.models.ensemble import Ensemble
from mt.models.seq2seq import Seq2Seq
from mt.runtime import autocast, release_memory
from mt.search.base import Hypothesis, SearchConfig
from mt.search.beam import beam_search
from mt.search.greedy import greedy_search
from mt.search.shortlist import Shortlist

__all__ = ["SearchConfig", "decode_batch", "translate_ids", "translate_split"]


def decode_batch(
    model: Seq2Seq | Ensemble, batch: Batch, search: SearchConfig, shortlist: Shortlist | None = None
) -> list[list[Hypothesis]]:
    """Decode one batch (already on the model's device) -> per sentence its n-best list
    (greedy search when `search.beam_size` is 1), under `search.precision` autocast; with a
    `shortlist`, over the batch's candidate target ids only."""
    vocab = None if shortlist is None else shortlist.candidates(batch.src, batch.src_mask)
    with autocast(batch.src.device, search.precision):
        if search.beam_size == 1:
            return [[h] for h in greedy_search(model, batch, search, vocab)]
        return beam_search(model, batch, search, vocab)


def _decode_batches(
    model: Seq2Seq | Ensemble,
    batches: Iterable[Batch],
    search: SearchConfig,
    device,
    shortlist: Shortlist | None = None,
) -> list[list[Hypothesis]]:
    was_training = model.training
    model.eval()
    indices, outputs = [], []
    try:
        for batch in batches:
            outputs.extend(decode_batch(model, batch.to(device), search, shortlist))
            indices.extend(batch.indices.tolist())
            release_memory()
    finally:
        model.train(was_training)
    return restore_order(indices, outputs)


def translate_split(
    model: Seq2Seq | Ensemble,
    ds: Dataset,
    data_cfg,
    search: SearchConfig,
    device: torch.device,
    shortlist: Shortlist | None = None,
) -> list[list[Hypothesis]]:
    """Every row of an encoded split (src_ids column), n-best lists in dataset order.

    Batches hold ``eval_batch_size(data_cfg, beam_size)`` sentences (about
    ``data_cfg.eval_batch_rows`` hypotheses unless ``data_cfg.eval_batch_sentences`` is set).
    """
    size = eval_batch_size(data_cfg, search.beam_size)
    loader = make_eval_loader(ds.select_columns(["src_ids", "src_len"]), data_cfg, batch_sentences=size)
    return _decode_batches(model, loader, search, device, shortlist)


def translate_ids(
    model: Seq2Seq | Ensemble,
    ids: list[list[int]],
    search: SearchConfig,
    device: torch.device,
    batch_sentences: int = 0,
    batch_rows: int = 500,
    shortlist: Shortlist | None = None,
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

    return _decode_batches(model, batches(), search, device, shortlist)
