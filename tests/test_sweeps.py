"""Real multirun sweeps of mt-train: basic, joblib and submitit_local launchers, the Optuna
sweeper, and the experiment files that store sweeps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from clihelpers import TINY_MODEL, run, tiny_corpus_args

FEW_STEPS = ["trainer.max_steps=4", "trainer.val_every=4", "trainer.plot_sentences=[0]"]


def _sweep(tmp_path: Path, *args: str, timeout: int = 300, model: list[str] = TINY_MODEL) -> Path:
    sweep = tmp_path / "sweep"
    proc = run(
        "mt-train",
        ["-m", *tiny_corpus_args(tmp_path), *model, *FEW_STEPS, f"hydra.sweep.dir={sweep}", *args],
        cwd=tmp_path,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-4000:]
    return sweep


def _jobs(sweep: Path) -> dict[str, dict]:
    """Job directory name -> results.json of every finished job under a sweep directory."""
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/results.json")}


def _job_dir_names(sweep: Path) -> set[str]:
    return {p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith(".")}


@pytest.mark.slow  # over 10 s: the full run's time budget
def test_multirun_names_job_directories_by_their_overrides(tmp_path: Path):
    sweep = _sweep(tmp_path, "model/attention=bahdanau,luong_general")
    jobs = _jobs(sweep)
    # one flat directory per job, named by its overrides (no nested model/ folder)
    assert _job_dir_names(sweep) == {"model.attention=bahdanau", "model.attention=luong_general"}
    assert set(jobs) == _job_dir_names(sweep)
    for name, results in jobs.items():
        assert results["config"]["model"]["attention"]["name"] == name.split("=")[1]
        assert results["train"]["steps"] == 4
        assert list((sweep / name / "tb").glob("events.out.tfevents.*"))
        assert (sweep / name / "checkpoints" / "best.pt").is_file()
    assert (sweep / "multirun.yaml").is_file()


@pytest.mark.slow  # over 10 s: the full run's time budget
def test_joblib_launcher_runs_two_jobs(tmp_path: Path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = _sweep(tmp_path, "seed=1,2", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    jobs = _jobs(sweep)
    assert set(jobs) == {"seed=1", "seed=2"}
    assert {r["config"]["seed"] for r in jobs.values()} == {1, 2}


@pytest.mark.slow  # over 10 s: the full run's time budget
def test_submitit_local_launcher_runs_a_job(tmp_path: Path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = _sweep(tmp_path, "seed=3", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10")
    assert set(_jobs(sweep)) == {"job0"}  # nothing is swept: the job is named by its number
    assert list((sweep / ".submitit").rglob("*_result.pkl"))  # the job really went through submitit


@pytest.mark.slow  # over 10 s: the full run's time budget
def test_optuna_search_runs_two_trials_and_maximises_valid_bleu(tmp_path: Path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    sweep = _sweep(
        tmp_path,
        "hparams_search=attention_optuna",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=2",
        # the search space's own sizes: a size given on the command line would fix it
        model=[a for a in TINY_MODEL if not a.startswith(("model.enc_hidden", "model.dec_hidden"))],
    )
    jobs = list(_jobs(sweep).values())
    assert len(jobs) == 2
    for results in jobs:
        model = results["config"]["model"]
        assert model["dec_hidden"] == 2 * model["enc_hidden"]  # tied so that dot attention is defined
        assert model["enc_hidden"] in (128, 256, 384)
        assert 3e-4 <= results["config"]["optim"]["lr"] <= 3e-3
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["name"] == "optuna"
    assert best["best_value"] == pytest.approx(max(r["valid"]["best_greedy_bleu"] for r in jobs))


@pytest.mark.slow  # about 10 s: the full run's time budget
def test_a_failing_job_does_not_stop_the_other_jobs(tmp_path: Path):
    """A job with a bad setting fails on its own; the sweep reports it after the others ran."""
    sweep = tmp_path / "sweep"
    proc = run(
        "mt-train",
        ["-m", *tiny_corpus_args(tmp_path), *[a for a in TINY_MODEL if not a.startswith("model.dec_hidden")],
         "model.dec_hidden=48", *FEW_STEPS, f"hydra.sweep.dir={sweep}",
         "model/attention=luong_dot,luong_general"],  # luong_dot needs dec_hidden == 2 * enc_hidden
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode != 0
    assert b"luong_dot" in proc.stderr
    assert set(_jobs(sweep)) == {"model.attention=luong_general"}


def test_experiment_files_store_their_sweeps():
    from hydra import compose, initialize_config_dir

    from mt.cli.common import CONFIG_DIR, register_resolvers
    from mt.command_config import register_configs

    register_resolvers()
    register_configs()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["experiment=attention_comparison"], return_hydra_config=True)
        params = cfg.hydra.sweeper.params
        assert params["model/attention"].split(",") == [
            "bahdanau", "luong_dot", "luong_general", "luong_concat", "scaled_dot"
        ]  # fmt: skip
        assert params["seed"] == "1,2,3"
        assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
        quick = compose("train", overrides=["experiment=quick"])
        assert quick.trainer.max_steps > 0 and quick.experiment_name == "quick"
        slurm = compose("train", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
        assert slurm.hydra.launcher._target_.endswith("SlurmLauncher")
        assert slurm.hydra.launcher.gpus_per_node == 1
