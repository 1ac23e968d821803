"""Scoring given references: the log-probability a model gives each reference translation,
log p(y | x) = Σ_t log p(y_t | y_<t, x) over its subwords and the end token, teacher forced
(what JoeyNMT's `test --scores` and fairseq-generate's `--score-reference` report). Written by
`mt-evaluate ... +score_references=true` as `outputs/<split>.ref_scores`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from datasets import Dataset
from torch.nn import functional as F

from mt.data.loaders import make_eval_loader, restore_order
from mt.models.loss import LOSS_CHUNK_ROWS
from mt.models.seq2seq import Seq2Seq
from mt.runtime import autocast, release_memory


@torch.no_grad()
def reference_log_probs(
    model: Seq2Seq, ds: Dataset, data_cfg: Any, precision: str, device: torch.device
) -> list[tuple[float, int]]:
    """Per row of `ds` (src_ids, tgt_ids; dataset order): (log p(reference | source) in nats,
    its number of scored tokens, EOS included)."""
    model.eval()
    indices: list[int] = []
    scores: list[tuple[float, int]] = []
    for batch in make_eval_loader(ds, data_cfg):
        batch = batch.to(device)
        with autocast(device, precision):
            features, _ = model(batch)  # (B, T, H)
        mask = batch.tgt_mask  # (B, T)
        rows = mask.nonzero()[:, 0]  # (N,) the sentence of each real target position
        feats, gold = features[mask], batch.tgt_out[mask]  # (N, H), (N,)
        sums = torch.zeros(mask.size(0), dtype=torch.float64, device=device)  # (B,)
        for i in range(0, feats.size(0), LOSS_CHUNK_ROWS):  # (n, V) logits at a time
            logp = F.log_softmax(model.output(feats[i : i + LOSS_CHUNK_ROWS]).float(), dim=-1)
            picked = logp.gather(1, gold[i : i + LOSS_CHUNK_ROWS, None])[:, 0]  # (n,)
            sums.index_add_(0, rows[i : i + LOSS_CHUNK_ROWS], picked.double())
        scores.extend(zip(sums.tolist(), mask.sum(1).tolist(), strict=True))
        indices.extend(batch.indices.tolist())
        release_memory()
    return restore_order(indices, scores)


def summarize(scores: list[tuple[float, int]]) -> dict[str, float]:
    """Corpus totals of per-sentence scores: summed log-probability, tokens, per-token mean and
    the perplexity exp(-mean)."""
    total, tokens = sum(s for s, _ in scores), sum(n for _, n in scores)
    mean = total / max(tokens, 1)
    return {"log_prob": total, "tokens": tokens, "log_prob_per_token": mean, "ppl": math.exp(min(-mean, 50))}
