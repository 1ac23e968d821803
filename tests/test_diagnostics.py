"""Attention diagnostics: hand-made matrices with known values, and a training run whose
history records carry them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from tinytrainer import tiny_trainer

from mt.evaluation.diagnostics import KEYS, attention_diagnostics


def test_a_one_hot_diagonal_is_sharp_monotone_and_covers_each_word_once():
    d = attention_diagnostics([torch.eye(5), np.eye(3, dtype=np.float32)])  # last column: source EOS
    assert d == pytest.approx(
        {
            "attention_entropy": 0.0,
            "attention_max": 1.0,
            "monotonicity": 1.0,
            "dropped_words": 0.0,
            "repeated_words": 0.0,
        }
    )


def test_uniform_attention_has_entropy_log_s():
    d = attention_diagnostics([torch.full((4, 6), 1 / 6)])
    assert d["attention_entropy"] == pytest.approx(math.log(6))
    assert d["attention_max"] == pytest.approx(1 / 6)
    assert d["monotonicity"] == 0.0  # argmax never moves (ties -> first position): no order
    # each word gets 4/6 in all: neither dropped nor repeated
    assert d["dropped_words"] == 0.0 and d["repeated_words"] == 0.0


def test_entropy_is_averaged_over_tokens_of_all_sentences():
    # 3 one-hot rows (entropy 0) and 1 uniform row over 4 positions: (3 * 0 + ln 4) / 4
    d = attention_diagnostics([torch.eye(3), torch.full((1, 4), 0.25)])
    assert d["attention_entropy"] == pytest.approx(math.log(4) / 4)
    assert d["attention_max"] == pytest.approx((3 + 0.25) / 4)
    assert d["monotonicity"] == pytest.approx(1.0)  # the one-row sentence is not scored


def test_a_word_never_looked_at_is_dropped():
    # 4 words + EOS; word 2 never attended
    a = torch.zeros(4, 5)
    a[0, 0] = a[1, 1] = a[2, 3] = a[3, 4] = 1.0
    d = attention_diagnostics([a])
    assert d["dropped_words"] == pytest.approx(1 / 4)
    assert d["repeated_words"] == 0.0
    assert d["monotonicity"] == pytest.approx(1.0)


def test_a_word_looked_at_twice_is_repeated_and_a_reversal_is_negative():
    a = torch.zeros(4, 4)  # 3 words + EOS: outputs look at 2, 1, 1, 0
    a[0, 2] = a[1, 1] = a[2, 1] = a[3, 0] = 1.0
    d = attention_diagnostics([a])
    assert d["repeated_words"] == pytest.approx(1 / 3)
    assert d["dropped_words"] == 0.0
    # ranks of (2, 1, 1, 0): (3, 1.5, 1.5, 0) against (0, 1, 2, 3): rho = -4.5 / sqrt(4.5 * 5)
    assert d["monotonicity"] == pytest.approx(-4.5 / math.sqrt(4.5 * 5))
    assert attention_diagnostics([torch.eye(4).flip(0)])["monotonicity"] == pytest.approx(-1.0)


def test_coverage_shares_pool_the_words_of_all_sentences_and_skip_the_source_eos():
    a = torch.zeros(2, 3)  # 2 words + EOS, word 1 dropped, EOS never attended (not counted)
    a[:, 0] = 1.0
    d = attention_diagnostics([a, torch.eye(4)])  # 2 + 3 words, 1 dropped, 1 repeated
    assert d["dropped_words"] == pytest.approx(1 / 5)
    assert d["repeated_words"] == pytest.approx(1 / 5)


def test_monotonicity_is_spearman_rho_and_chunks_do_not_change_anything():
    from scipy.stats import spearmanr

    gen = torch.Generator().manual_seed(0)
    mats = [torch.rand(int(t), int(s), generator=gen).softmax(-1)
            for t, s in torch.randint(2, 12, (40, 2), generator=gen)]  # fmt: skip
    rhos = []
    for m in mats:
        p = m.argmax(-1).numpy()
        rhos.append(0.0 if len(set(p)) == 1 else spearmanr(np.arange(len(p)), p).statistic)
    d = attention_diagnostics(mats)
    assert d["monotonicity"] == pytest.approx(float(np.mean(rhos)))
    assert attention_diagnostics(mats, chunk=7) == pytest.approx(d)
    assert d["attention_entropy"] == pytest.approx(
        float(torch.cat([-(m * m.log()).sum(-1) for m in mats]).mean())
    )


def test_empty_and_degenerate_inputs_give_finite_values():
    assert attention_diagnostics([]) == dict.fromkeys(KEYS, 0.0)
    d = attention_diagnostics([torch.zeros(0, 3), torch.ones(1, 1)])  # no output; only the source EOS
    assert all(math.isfinite(v) for v in d.values())
    assert d["dropped_words"] == 1.0  # the 2 words of the first sentence were never looked at
    with pytest.raises(ValueError, match="2-D"):
        attention_diagnostics([torch.ones(3)])


def test_training_history_and_tensorboard_carry_the_diagnostics(tmp_path: Path, monkeypatch):
    from mt.evaluation.tensorboard import TensorBoard

    trainer = tiny_trainer(tmp_path, max_steps=6, val_every=3)
    logged: dict[str, list[int]] = {}
    monkeypatch.setattr(TensorBoard, "scalars",
                        lambda self, values, step: [logged.setdefault(k, []).append(step) for k in values])  # fmt: skip
    p = trainer.fit()  # its history is results.json's train.history (mt.training.run)
    assert all(logged[f"valid/{k}"] == [3, 6] for k in KEYS), logged
    assert [h["step"] for h in p.history] == [3, 6]
    for record in p.history:
        assert all(math.isfinite(record[k]) for k in KEYS), record
        assert record["attention_entropy"] >= 0.0 and 0.0 < record["attention_max"] <= 1.0
        assert -1.0 <= record["monotonicity"] <= 1.0
        assert 0.0 <= record["dropped_words"] <= 1.0 and 0.0 <= record["repeated_words"] <= 1.0
