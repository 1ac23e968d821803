"""Real subprocess runs of mt-train, mt-evaluate and mt-translate on a tiny corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clihelpers import TINY_MODEL, run, tiny_corpus_args

from mt.cli.common import quote_paths


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One real mt-train run on the tiny corpus; returns its run directory."""
    root = tmp_path_factory.mktemp("cli")
    run_dir = root / "run"
    proc = run("mt-train", tiny_corpus_args(root) + [f"hydra.run.dir={run_dir}"] + TINY_MODEL, cwd=root)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert b"done: 30 steps" in proc.stdout
    return run_dir


def test_train_writes_the_run_directory(trained: Path):
    for rel in ("config.yaml", ".hydra/overrides.yaml", "train.log", "checkpoints/best.pt", "checkpoints/last.pt", "results.json",
                "outputs/test.hyp", "outputs/validation.hyp", "plots/test_sent0.png", "plots/valid_step0000015_sent1.png"):  # fmt: skip
        assert (trained / rel).is_file(), rel
    assert list((trained / "tb").glob("events.out.tfevents.*"))
    results = json.loads((trained / "results.json").read_text())
    for metric in ("bleu", "chrf", "ter"):
        assert results["test"]["test"][metric]["signature"].startswith("nrefs:1")
        assert 0.0 <= results["test"]["test"][metric]["score"] <= 200.0
    assert "bleu_tok_lc" in results["test"]["test"]
    assert results["train"]["steps"] == 30
    assert 0 < results["train"]["peak_rss_mb_training"] <= results["train"]["peak_rss_mb"]
    assert [h["step"] for h in results["train"]["history"]] == [15, 30]
    assert len((trained / "outputs/test.hyp").read_text().splitlines()) == 30
    assert (trained / "plots/test_sent0.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tensorboard_has_the_promised_tags(trained: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags: dict[str, list[str]] = {"scalars": [], "images": [], "tensors": []}
    for events in (trained / "tb").glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
        acc.Reload()
        for kind in tags:
            tags[kind] += acc.Tags()[kind]
    for tag in ("train/loss", "train/lr", "train/grad_norm", "train/tokens_per_sec", "valid/bleu", "valid/chrf",
                "valid/loss", "valid/ppl"):  # fmt: skip
        assert tag in tags["scalars"], tag
    assert "attention/0" in tags["images"]
    assert any(t.startswith("valid/samples") for t in tags["tensors"])


@pytest.mark.slow  # about 10 s: the full run's time budget
def test_evaluate_and_translate_from_the_checkpoint(trained: Path, tmp_path: Path):
    ckpt = trained / "checkpoints" / "best.pt"
    proc = run(
        "mt-evaluate", [f"checkpoint={ckpt}", "beam_size=2", f"hydra.run.dir={tmp_path / 'ev'}"], cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert b"test: BLEU" in proc.stdout and b"nrefs:1" in proc.stdout
    assert (tmp_path / "ev" / "results.json").is_file()

    src = "Ein Mann fährt Fahrrad.\n\nZwei Hunde spielen im Schnee.\n" + "sehr " * 600 + "lang.\n"
    proc = run("mt-translate", [f"checkpoint={ckpt}", "beam_size=2", "n_best=2", "max_src_len=40", "+attention=true"],
               cwd=tmp_path, stdin=src.encode())  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    lines = proc.stdout.decode().split("\n")
    assert len(lines) == 5 and lines[1] == "" and lines[4] == ""  # 4 lines in order, empty stays empty
    assert all(len(line.split("\t")) == 2 for i, line in enumerate(lines[:4]) if i != 1)
    assert b"cut to max_src_len=40" in proc.stderr
    records = [json.loads(x) for x in (tmp_path / "translate.attention.jsonl").read_text().splitlines()]
    assert [r["line"] for r in records] == [1, 2, 3, 4] and records[1]["hypotheses"] == []
    first = records[0]["hypotheses"][0]
    assert len(first["weights"]) == len(first["output"]) and len(first["weights"][0]) == len(
        records[0]["source"]
    )


def test_translate_rejects_invalid_utf8_with_the_line(trained: Path, tmp_path: Path):
    proc = run(
        "mt-translate",
        [f"checkpoint={trained / 'checkpoints/best.pt'}"],
        cwd=tmp_path,
        stdin=b"gut\n\xff\xfe kaputt\n",
    )
    assert proc.returncode != 0
    assert b"<stdin>:2: invalid UTF-8" in proc.stderr


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.max_stepz=3", "max_stepz"),
        ("model.attention.name=cosine", "cosine"),
        ("model/attention=cosine", "cosine"),
        ("data.src_lang=xx", "unknown language 'xx'"),
        ("model.dec_hidden=-4", "model.dec_hidden"),
        ("trainer.val_every=often", "val_every"),
    ],
)
def test_bad_config_fails_at_start_with_the_key(override: str, message: str, tmp_path: Path):
    proc = run("mt-train", [override, f"hydra.run.dir={tmp_path / 'r'}"], cwd=tmp_path, timeout=120)
    assert proc.returncode != 0
    assert message in proc.stderr.decode(), proc.stderr.decode()[-2000:]
    assert not (tmp_path / "r" / "checkpoints").exists()


@pytest.mark.parametrize(
    "cmd, override, message",
    [
        ("mt-train", "trainer.max_stepz=3", "bad override `trainer.max_stepz=3`: Could not override 'trainer.max_stepz'. Key 'max_stepz' not in 'TrainerConfig'. Did you mean trainer.max_steps"),
        ("mt-train", "model/attention=luong_dott", "Did you mean model/attention=luong_dot?"),
        ("mt-train", "optim.lr=fast", "optim.lr is a float, default 0.002"),
        ("mt-evaluate", "beam_sise=3", "Did you mean beam_size?"),
        ("mt-translate", "n_bset=2", "Did you mean n_best?"),
        ("mt-data", "data.limit_trian=5", "Did you mean data.limit_train"),
    ],
)  # fmt: skip
def test_bad_override_is_one_paragraph_with_the_closest_keys(
    cmd: str, override: str, message: str, tmp_path: Path
):
    proc = run(cmd, [override, "checkpoint=x.pt"] if cmd in ("mt-evaluate", "mt-translate") else [override],
               cwd=tmp_path, stdin=b"", timeout=120)  # fmt: skip
    err = proc.stderr.decode()
    assert proc.returncode == 2, err[-2000:]
    assert message in err, err[-2000:]
    assert err.count("\n") == 1 and "Traceback" not in err  # one line, no stack trace
    assert not list(tmp_path.iterdir())  # nothing written


def test_evaluate_refuses_a_corrupt_checkpoint(tmp_path: Path):
    bad = tmp_path / "checkpoints" / "best.pt"
    bad.parent.mkdir()
    bad.write_bytes(b"PK\x03\x04 not really a checkpoint")
    proc = run(
        "mt-evaluate", [f"checkpoint={bad}", f"hydra.run.dir={tmp_path / 'ev'}"], cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 2
    assert f"checkpoint {bad} is truncated or corrupt" in proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode()


def test_paths_named_like_sweep_jobs_are_read_as_paths(tmp_path: Path):
    # a sweep's job directory is named by its overrides: `=` and `,` in a path must not be
    # misread as override syntax (Hydra: "mismatched input '='"); the checkpoint is found
    job = tmp_path / "model.attention=luong_dot,seed=2"
    bad = job / "checkpoints" / "best.pt"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"PK\x03\x04 not really a checkpoint")
    proc = run("mt-evaluate", [f"checkpoint={bad}", f"hydra.run.dir={job / 'ev'}"], cwd=tmp_path, timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and f"checkpoint {bad} is truncated or corrupt" in err, err
    assert quote_paths(["resume=a/b=c,d", "seed=1", "output='x=y'", "+alignment.gold=g[1].tsv", "-m"]) == [
        "resume='a/b=c,d'", "seed=1", "output='x=y'", "+alignment.gold='g[1].tsv'", "-m"
    ]  # fmt: skip


def test_data_stats_command(tmp_path: Path):
    """mt-data prints and writes the statistics of a data config; data.limit_train is honoured."""
    out = tmp_path / "stats"
    proc = run(
        "mt-data", tiny_corpus_args(tmp_path) + ["data.limit_train=300", f"hydra.run.dir={out}"], cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    stats = json.loads((out / "data_stats.json").read_text())
    assert {k: v["sentences"] for k, v in stats["splits"].items()} == {
        "train": 300,
        "validation": 40,
        "test": 30,
    }
    train = stats["splits"]["train"]
    for side in ("src_tokens", "tgt_tokens"):
        s = train[side]
        assert s["total"] > 300 and s["p50"] <= s["p90"] <= s["p99"] <= s["p100"]
        assert s["mean"] == pytest.approx(s["total"] / 300, abs=0.01)
    assert 0.0 <= stats["train_batches"]["src_pad_frac"] < 0.5
    # no tiny-corpus pair is empty or longer than data.max_len=100 subwords: none is dropped
    assert max(train["src_tokens"]["p100"], train["tgt_tokens"]["p100"]) <= 100
    assert stats["train_dropped"] == {"pairs": 0, "max_len": 100, "limit_train": 300}
    assert stats["prepare_seconds"] > 0
    assert b"padding" in proc.stdout and b"train" in proc.stdout
