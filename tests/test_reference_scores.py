"""Scoring given references (mt.evaluation.reference_scores): each sentence's log-probability is
the negative NLL of that sentence alone, in dataset order whatever the batching."""

from __future__ import annotations

import math

import pytest
import torch
from datasets import Dataset

from mt.config import AttentionConfig, DataConfig, ModelConfig
from mt.data.collate import collate
from mt.data.tokenizer import EOS_ID
from mt.evaluation.reference_scores import reference_log_probs, summarize
from mt.models.seq2seq import build_model

V = 25


def tiny_split(n: int = 9) -> Dataset:
    g = torch.Generator().manual_seed(2)
    src = [torch.randint(4, V, (int(torch.randint(1, 8, (1,), generator=g)),), generator=g).tolist() + [EOS_ID]
           for _ in range(n)]  # fmt: skip
    tgt = [
        torch.randint(4, V, (int(torch.randint(1, 6, (1,), generator=g)),), generator=g).tolist()
        for _ in range(n)
    ]
    return Dataset.from_dict({"src_ids": src, "tgt_ids": tgt, "src_len": [len(s) for s in src],
                              "tgt_len": [len(t) for t in tgt]})  # fmt: skip


def test_each_sentence_scores_minus_its_own_nll() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(
        attention=AttentionConfig(name="luong_general"),
        emb_size=8,
        enc_hidden=8,
        dec_hidden=16,
        dropout=0.3,
        emb_dropout=0.3,
    )  # fmt: skip  (eval mode: no dropout)
    model = build_model(cfg, V, V)
    ds = tiny_split()
    data_cfg = DataConfig(eval_batch_sentences=4)  # several batches, sorted by length
    scores = reference_log_probs(model, ds, data_cfg, "fp32", torch.device("cpu"))
    assert len(scores) == len(ds)
    model.eval()
    for k, (log_prob, tokens) in enumerate(scores):
        batch = collate([ds[k]["src_ids"]], [ds[k]["tgt_ids"]], [k])
        with torch.no_grad():
            _, nll = model.loss(batch)
        assert tokens == len(ds[k]["tgt_ids"]) + 1  # the end token is scored too
        assert log_prob == pytest.approx(-float(nll), rel=1e-5)
    total = summarize(scores)
    assert total["tokens"] == sum(n for _, n in scores)
    assert total["ppl"] == pytest.approx(math.exp(-total["log_prob"] / total["tokens"]))
