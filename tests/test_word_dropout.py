"""Word dropout (`model.src_word_dropout`, `model.tgt_word_dropout`): whole tokens' embeddings
zeroed with probability p and the rest scaled by 1 / (1 - p) in training, the identity in
evaluation, nothing drawn when off (a run without it keeps its trajectory), no parameters (a
checkpoint fits a model with or without it), and a real `mt-train` run that uses both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from clihelpers import TINY_MODEL, run, tiny_corpus_args

from mt.config import ModelConfig
from mt.data.collate import collate
from mt.models.dropout import WordDropout
from mt.models.seq2seq import build_model


def test_whole_tokens_are_dropped_and_the_rest_scaled() -> None:
    torch.manual_seed(0)
    emb = torch.randn(64, 50, 8)  # (B, L, E)
    layer = WordDropout(0.3).train()
    out = layer(emb)
    dropped = (out == 0).all(-1)  # (B, L)
    kept = ~dropped
    assert torch.allclose(out[kept], emb[kept] / 0.7)
    # a token is dropped whole or not at all: no row is partly zero
    assert not ((out == 0).any(-1) & kept).any()
    assert 0.27 < dropped.float().mean().item() < 0.33  # 3200 tokens, p = 0.3
    # two calls draw two masks; a (B, E) step input is dropped per row
    assert not torch.equal(layer(emb), out)
    step = layer(torch.ones(1000, 4))
    sums = step.sum(-1)  # (1000,) each 0 or 4 / 0.7
    assert ((sums == 0) | ((sums - 4 / 0.7).abs() < 1e-5)).all() and (sums == 0).any()


def test_identity_in_evaluation_and_when_off_without_drawing() -> None:
    emb = torch.randn(4, 7, 3, requires_grad=True)
    assert WordDropout(0.5).eval()(emb) is emb
    state = torch.get_rng_state()
    assert WordDropout(0.0).train()(emb) is emb
    assert torch.equal(torch.get_rng_state(), state)  # nothing drawn
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="word dropout"):
            WordDropout(bad)


def test_the_gradient_of_a_dropped_token_is_zero() -> None:
    torch.manual_seed(1)
    emb = torch.randn(8, 20, 5, requires_grad=True)
    out = WordDropout(0.5).train()(emb)
    out.sum().backward()
    dropped = (out == 0).all(-1)
    assert dropped.any() and (~dropped).any()
    assert (emb.grad[dropped] == 0).all()
    assert torch.allclose(emb.grad[~dropped], torch.full_like(emb.grad[~dropped], 2.0))


def test_the_model_takes_it_on_both_sides_without_new_parameters() -> None:
    base = ModelConfig(emb_size=16, enc_hidden=16, dec_hidden=32, dropout=0.0, emb_dropout=0.0)
    dropping = ModelConfig(**{**base.__dict__, "src_word_dropout": 0.5, "tgt_word_dropout": 0.5})
    plain, wd = build_model(base, 30, 31), build_model(dropping, 30, 31)
    assert wd.encoder.word_dropout.p == 0.5 and wd.decoder.word_dropout.p == 0.5
    assert plain.encoder.word_dropout.p == 0.0 and plain.decoder.word_dropout.p == 0.0
    wd.load_state_dict(plain.state_dict())  # strict: the same parameters
    batch = collate([[5, 6, 7, 2], [8, 9, 2]], [[4, 5, 6, 2], [7, 2]])
    old = {k: v for k, v in base.__dict__.items() if "word_dropout" not in k}  # a dict from before them
    old["attention"] = dict(base.attention.__dict__)
    assert build_model(old, 30, 31).encoder.word_dropout.p == 0.0
    plain.eval(), wd.eval()
    with torch.no_grad():
        assert torch.equal(plain(batch)[0], wd(batch)[0])  # evaluation: the same function
    plain.train(), wd.train()
    torch.manual_seed(3)
    with torch.no_grad():
        a = plain(batch)[0]
        torch.manual_seed(3)
        b = plain(batch)[0]
        torch.manual_seed(3)
        c = wd(batch)[0]
    assert torch.equal(a, b) and not torch.equal(a, c)  # training: the tokens' dropout shows


def test_a_real_run_with_word_dropout_trains_and_records_it(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = [*tiny_corpus_args(tmp_path), *TINY_MODEL, "trainer.max_steps=10", "trainer.val_every=10",
            "model.src_word_dropout=0.2", "model.tgt_word_dropout=0.1", f"hydra.run.dir={run_dir}"]  # fmt: skip
    proc = run("mt-train", args, tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    model = results["config"]["model"]
    assert (model["src_word_dropout"], model["tgt_word_dropout"]) == (0.2, 0.1)
    ckpt = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    assert ckpt["config"]["model"]["src_word_dropout"] == 0.2
    hyps = (run_dir / "outputs" / "test.hyp").read_text(encoding="utf-8").splitlines()
    assert len(hyps) == 30


def test_an_out_of_range_rate_is_one_line_naming_the_key(tmp_path: Path) -> None:
    proc = run("mt-train", [*tiny_corpus_args(tmp_path), "model.tgt_word_dropout=1.0",
                            f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)  # fmt: skip
    assert proc.returncode == 2
    err = proc.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "model.tgt_word_dropout" in err[0], err
    assert not (tmp_path / "run" / "checkpoints").exists()
