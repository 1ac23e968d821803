"""Data-parallel training: `torchrun --nproc_per_node=2 -m mt.train` on CPU (gloo) writes one run
directory, and its parameters after N steps are those of one process trained on the union of
both ranks' batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from clihelpers import TINY_MODEL, tiny_corpus_args
from omegaconf import OmegaConf

from mt.training.distributed import (
    DistContext,
    all_reduce_sum,
    barrier,
    broadcast_object,
    init_distributed,
    main_first,
)

WORLD = 2
STEPS = 4
DDP_ARGS = [
    "model.dropout=0", "model.emb_dropout=0",  # dropout masks differ per rank
    "data.batch_tokens=400", f"trainer.max_steps={STEPS}", "trainer.val_every=1000", "trainer.log_every=2",
    "trainer.max_minutes=0", "trainer.early_stopping_patience=0", "trainer.device=cpu",
]  # fmt: skip


def torchrun(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node=2 -m mt.train ARGS` (a free port, this Python)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(cmd + ["-m", "mt.train"] + args, cwd=cwd, capture_output=True, timeout=240, env=env)


def replay_single_process(run_dir: Path, ranks: list[int], work_dir: Path) -> tuple[dict, dict]:
    """Train in this process as the DDP run did, each step on the union of `ranks`' batches of
    that step; returns (initial, final) parameters."""
    from mt.config import TrainConfig
    from mt.data.loaders import PairBatches, make_train_loader
    from mt.data.pipeline import prepare_data
    from mt.data.tokenizer import Tokenizer
    from mt.models.seq2seq import build_model
    from mt.runtime import seed_everything
    from mt.training.trainer import Trainer

    cfg: TrainConfig = OmegaConf.to_object(
        OmegaConf.merge(OmegaConf.structured(TrainConfig), OmegaConf.load(run_dir / "config.yaml"))
    )  # type: ignore[assignment]
    ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    seed_everything(cfg.seed)  # as mt.training.run.train does, before data and model
    data = prepare_data(cfg.data, cfg.tokenizer, tokenizer=Tokenizer.from_bytes(ckpt["tokenizer"]))
    model = build_model(cfg.model, data.tokenizer.src_vocab_size, data.tokenizer.tgt_vocab_size)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = Trainer(cfg, model, data, work_dir, torch.device("cpu"), resolved_config={})
    samplers = [
        make_train_loader(
            data.train, data.tokenizer, cfg.data, seed=cfg.seed, rank=r, world_size=WORLD
        ).sampler
        for r in range(WORLD)
    ]
    pairs = PairBatches(data.train)
    step, epoch = 0, 0
    while step < STEPS:
        per_rank = [s.rank_batches(epoch) for s in samplers]  # (WORLD, batches per rank)
        for k in range(len(per_rank[0])):
            union = [i for r in ranks for i in per_rank[r][k]]
            _, _, applied = trainer._update([pairs[union]])  # loss / tokens of the union
            assert applied
            step += 1
            if step == STEPS:
                break
        epoch += 1
    return initial, model.state_dict()


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.mark.slow  # over 10 s: the full run's time budget
def test_torchrun_two_cpu_ranks_equal_one_process_on_the_union_of_batches(tmp_path: Path):
    overridden = {a.split("=")[0] for a in DDP_ARGS}
    args = (
        tiny_corpus_args(tmp_path) + [a for a in TINY_MODEL if a.split("=")[0] not in overridden] + DDP_ARGS
    )
    proc = torchrun(args, cwd=tmp_path)
    err = proc.stderr.decode()
    assert proc.returncode == 0, err[-4000:]

    # One set of artifacts: both ranks named the same run directory, rank 0 alone wrote into it.
    run_dirs = [d for d in (tmp_path / "runs").glob("*/*/*") if d.is_dir()]
    assert len(run_dirs) == 1, run_dirs
    run_dir = run_dirs[0]
    assert {p.name for p in run_dir.iterdir()} == {
        ".hydra", "checkpoints", "config.yaml", "outputs", "plots", "results.json", "tb", "train.log"
    }  # fmt: skip
    assert {p.name for p in (run_dir / "checkpoints").iterdir()} == {"best.pt", "last.pt"}
    assert len({f.name.rsplit(".", 2)[1] for f in (run_dir / "tb").iterdir()}) == 1  # one writer process
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()
    log = proc.stdout.decode() + err
    assert log.count("training stopped (max_steps=4)") == 1  # rank 1 logs warnings only
    results = json.loads((run_dir / "results.json").read_text())
    assert results["train"]["steps"] == STEPS
    ddp = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert ddp["progress"]["step"] == STEPS

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only wait for each other on a busy machine
    try:
        initial, union = replay_single_process(run_dir, ranks=[0, 1], work_dir=tmp_path / "replay")
        _, rank0_only = replay_single_process(run_dir, ranks=[0], work_dir=tmp_path / "replay")
    finally:
        torch.set_num_threads(threads)
    assert max_diff(union, ddp["model"]) < 1e-5  # measured 3e-7 to 6e-7
    assert max_diff(initial, ddp["model"]) > 1e-3  # the steps did move the parameters (4e-3)
    assert max_diff(rank0_only, ddp["model"]) > 1e-4  # and rank 1's batches counted (7e-3)


def test_without_torchrun_everything_is_a_single_process(monkeypatch: pytest.MonkeyPatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(var, raising=False)
    ctx = init_distributed("cpu")
    assert ctx == DistContext() and ctx.is_main and not ctx.enabled
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not init_distributed("cpu").enabled  # torchrun with one process: no process group
    assert not torch.distributed.is_initialized()
    assert all_reduce_sum(ctx, [3, 0.5]) == [3.0, 0.5]
    assert broadcast_object(ctx, {"a": 1}) == {"a": 1}
    barrier(ctx)
    with main_first(ctx):
        pass


def test_all_ranks_name_the_same_run_directory(monkeypatch: pytest.MonkeyPatch):
    from mt.cli.common import RUN_TIME_ENV, _now

    monkeypatch.setenv(RUN_TIME_ENV, repr(1795519937.9))
    from datetime import datetime

    assert _now("%Y-%m-%d_%H-%M-%S") == datetime.fromtimestamp(1795519937.9).strftime("%Y-%m-%d_%H-%M-%S")
    monkeypatch.delenv(RUN_TIME_ENV)
    assert _now("%Y") == datetime.now().strftime("%Y")
