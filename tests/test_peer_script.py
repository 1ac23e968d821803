"""scripts/peer_joeynmt.py and scripts/peer_timing.py: the data export, the JoeyNMT config that
mirrors mt's, the speed arithmetic, the sentencepiece fix, and the timers in a real mt-train.
The JoeyNMT runs themselves need its virtual environment: the last test runs the whole script
when MT_JOEYNMT_PYTHON names that environment's python (CI does not install JoeyNMT)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sentencepiece as spm
import yaml
from clihelpers import TINY_MODEL, tiny_corpus_args

REPO = Path(__file__).resolve().parents[1]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


peer = load_script("peer_joeynmt")
timing = load_script("peer_timing")


def test_train_speed_counts_tokens_between_update_starts_minus_validation():
    record = {
        "updates": [{"start": 0.0, "tokens": 999}, {"start": 1.0, "tokens": 100},
                    {"start": 3.0, "tokens": 200}, {"start": 9.0, "tokens": 300}, {"start": 10.0, "tokens": 7}],
        "validations": [{"start": 4.0, "seconds": 4.0}, {"start": 20.0, "seconds": 5.0}],
    }  # fmt: skip
    # updates 1..3 (the first is warm-up, the last only closes the interval): 600 tokens in
    # 10 - 1 = 9 s, of which 4 s validated
    assert peer.train_speed(record, warmup=1) == pytest.approx(600 / 5)
    with pytest.raises(SystemExit, match="only 5 updates"):
        peer.train_speed(record, warmup=4)


def test_beam_speed_uses_only_the_searches_of_that_beam():
    record = {"searches": [{"seconds": 2.0, "sentences": 100, "beam_size": 1},
                           {"seconds": 1.0, "sentences": 30, "beam_size": 5},
                           {"seconds": 3.0, "sentences": 90, "beam_size": 5}]}  # fmt: skip
    assert peer.beam_speed(record, 5) == (pytest.approx(30.0), 120)
    assert peer.beam_speed(record, 1) == (pytest.approx(50.0), 100)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("peer")
    overrides = tiny_corpus_args(root) + TINY_MODEL
    return root, peer.export_data(root / "work", overrides)


def test_export_writes_the_splits_and_mt_tokenizer_for_joeynmt(exported):
    root, out = exported
    data = root / "work" / "data"
    assert out["test"] == "test"  # the local corpus' one test split
    for name, split, n in (("train", "train", 400), ("dev", "val", 40), ("test", "test_2016_flickr", 30)):
        for lang in ("de", "en"):
            assert (data / f"{name}.{lang}").read_text(encoding="utf-8") == (
                root / f"{split}.{lang}"
            ).read_text(encoding="utf-8"), (name, lang)
            assert len((data / f"{name}.{lang}").read_text(encoding="utf-8").splitlines()) == n
    assert out["refs"] == (root / "test_2016_flickr.en").read_text(encoding="utf-8").splitlines()
    sp = spm.SentencePieceProcessor(model_file=str(data / "spm.model"))
    vocab = (data / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert len(vocab) == sp.get_piece_size() - 4 and len(set(vocab)) == len(vocab)
    assert "<unk>" not in vocab and "</s>" not in vocab
    assert timing.spm_set_vocabulary(sp, vocab) == 0  # the JoeyNMT fix accepts the full vocabulary
    with pytest.raises(ValueError, match="lacks 1 pieces"):
        timing.spm_set_vocabulary(sp, vocab[:-1])


def test_joeynmt_config_mirrors_mt_settings(exported):
    root, out = exported
    cfg = peer.compose_config([])  # mt's default model and training, not the tiny test model
    path = peer.joeynmt_config(root / "work", "jn", cfg, max_updates=77, validate=True)
    c = yaml.safe_load(path.read_text())
    enc, dec, tr, te = c["model"]["encoder"], c["model"]["decoder"], c["training"], c["testing"]
    assert (enc["type"], enc["rnn_type"], enc["hidden_size"], enc["bidirectional"]) == (
        "recurrent",
        "gru",
        256,
        True,
    )
    assert enc["embeddings"] == {"embedding_dim": 256, "dropout": 0.3}
    assert (dec["hidden_size"], dec["attention"], dec["init_hidden"], dec["input_feeding"]) == (
        512, "bahdanau", "bridge", True)  # fmt: skip
    assert (dec["hidden_dropout"], dec["embeddings"]["dropout"]) == (0.3, 0.3)
    assert (tr["learning_rate"], tr["clip_grad_norm"], tr["label_smoothing"]) == (2e-3, 1.0, 0.1)
    assert (tr["batch_size"], tr["batch_type"], tr["normalization"]) == (6000, "token", "tokens")
    assert tr["patience"] == 2  # mt's plateau_patience 3 = torch's patience 2
    assert (tr["updates"], tr["validation_freq"], tr["early_stopping_metric"]) == (77, 150, "bleu")
    assert (te["beam_size"], te["beam_alpha"], te["batch_size"]) == (5, 1.0, 100)
    assert c["data"]["src"]["tokenizer_cfg"]["model_file"].endswith("data/spm.model")
    assert c["model_dir"] == str(root / "work" / "jn")
    no_valid = yaml.safe_load(peer.joeynmt_config(root / "work", "jn2", cfg, 5, validate=False).read_text())
    assert no_valid["training"]["validation_freq"] > 10**6


@pytest.mark.slow
def test_timers_record_a_real_mt_train(tmp_path: Path):
    record = tmp_path / "rec.json"
    args = tiny_corpus_args(tmp_path) + TINY_MODEL + ["trainer.max_steps=6", "trainer.val_every=3",
                                                      f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "peer_timing.py"), "--toolkit", "mt",
                           "--record", str(record), "--", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(record.read_text())
    starts = [u["start"] for u in r["updates"]]
    assert len(starts) == 6 and starts == sorted(starts) and all(u["tokens"] > 0 for u in r["updates"])
    assert len(r["validations"]) == 2 and r["validations"][0]["start"] > starts[2]
    # the final evaluation: validation (40) and test (30) with the test beam
    assert [(s["sentences"], s["beam_size"]) for s in r["searches"]] == [(40, 3), (30, 3)]
    assert (tmp_path / "run" / "results.json").is_file()


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("MT_JOEYNMT_PYTHON"), reason="MT_JOEYNMT_PYTHON: JoeyNMT 2.3's python")
def test_whole_side_by_side_quick(tmp_path: Path):
    venv = Path(os.environ["MT_JOEYNMT_PYTHON"]).parent.parent
    args = tiny_corpus_args(tmp_path) + [
        a for a in TINY_MODEL if not a.startswith(("trainer.max_steps", "trainer.progress"))
    ]
    out = tmp_path / "peer.json"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "peer_joeynmt.py"), "--workdir", str(tmp_path / "w"),
                           "--venv", str(venv), "--quick", "--json", str(out), *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    res = json.loads(out.read_text())
    assert set(res["train_tokens_per_s"]) == {"mt_fp32", "mt_bf16", "joeynmt_fp32"}
    assert all(v > 0 for v in res["train_tokens_per_s"].values())
    row = res["budgets"]["1min"]
    for side in ("mt", "joeynmt"):
        assert row[side]["updates"] > 0 and row[side]["beam_sentences"] == 70  # validation 40 + test 30
    assert len(res["compat"]) == 2 and "mt / JoeyNMT" in proc.stdout
