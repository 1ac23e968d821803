"""`mt-train`: train the configured model, then score it on the validation and test splits.

mt-train                                          # Multi30k de->en, GRU, Bahdanau attention
mt-train model/attention=luong_general data.src_lang=en data.tgt_lang=de
mt-train experiment=quick
mt-train resume=runs/de-en/default/2026-11-24_10-00-00   # continue a stopped run
torchrun --nproc_per_node=2 -m mt.train ...       # data-parallel (DDP) over 2 processes
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

from mt.cli.common import (
    CONFIG_DIR,
    RUN_TIME_ENV,
    compose_run,
    friendly_errors,
    preflight,
    quote_paths,
    record_swept_keys,
    register_resolvers,
    user_errors,
)
from mt.command_config import register_configs
from mt.config import TrainConfig, validate_train
from mt.training.distributed import DistContext, broadcast_object, init_distributed, shutdown

register_resolvers()
register_configs()
log = logging.getLogger("mt.train")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@friendly_errors
def hydra_main(cfg: DictConfig) -> float:
    """Hydra entry point; returns the best validation BLEU (what sweepers maximise)."""
    from mt.training.run import train  # deferred: datasets and the model stack load in seconds
    from mt.training.run_dir import lock_run_dir

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    typed: TrainConfig = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    preflight("train", sys.argv[1:])
    record_swept_keys(sys.argv[1:])
    dist = init_distributed("cuda" if torch.cuda.is_available() else "cpu")  # main() joined already
    with lock_run_dir(run_dir) if dist.is_main else contextlib.nullcontext():  # held already by main()
        results = train(typed, resolved, run_dir, dist)
    return float(results["valid"]["best_greedy_bleu"])


# Ranks > 0 of a data-parallel run: no .hydra/ or train.log of their own in rank 0's run
# directory, and only warnings and errors (on standard error).
WORKER_OVERRIDES = [
    "hydra.output_subdir=null",
    "hydra/job_logging=stderr",
    "hydra.job_logging.root.level=WARNING",
    "hydra/hydra_logging=none",
]


def main() -> None:
    """`mt-train`, `python -m mt.train`; under torchrun every process runs it (data-parallel).

    Before Hydra composes the config, the ranks join the process group and take rank 0's clock
    for the run directory's time stamp, so they all name the same directory; then that directory
    is checked and locked (`claim_run_dir`) before Hydra writes into it.
    """
    sys.argv[1:] = quote_paths(sys.argv[1:])  # resume=JOB_DIR: a job directory's name holds = and ,
    preflight("train", sys.argv[1:])
    record_swept_keys(sys.argv[1:])
    dist = init_distributed("cuda" if torch.cuda.is_available() else "cpu")
    # one clock for the run directory's time stamp: that of every rank, and of claim_run_dir
    os.environ[RUN_TIME_ENV] = repr(broadcast_object(dist, time.time()))
    if dist.enabled and not dist.is_main:
        sys.argv += WORKER_OVERRIDES
    try:
        with claim_run_dir(sys.argv[1:], dist):
            hydra_main()
    finally:
        shutdown(dist)


def claim_run_dir(argv: list[str], dist: DistContext) -> contextlib.ExitStack:
    """Before Hydra writes anything: refuse a run directory this run must not use (`error: ...`,
    exit 2), take its lock (rank 0; the returned context holds it), and stop with exit status 0,
    changing no file, when a resumed run is already complete (mt/training/run_dir.py)."""
    from omegaconf.errors import OmegaConfBaseException

    from mt.training.run_dir import lock_run_dir, plan_run, resume_checkpoint

    held = contextlib.ExitStack()
    try:
        cfg = compose_run("train", argv)
        if cfg is None:  # Hydra's own modes and sweeps: each job checks its directory in train()
            return held
        run_dir = Path(str(cfg.hydra.run.dir))
        with open_dict(cfg):
            del cfg["hydra"]
        typed: TrainConfig = OmegaConf.to_object(cfg)  # type: ignore[assignment]
        resolved = OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException:
        return held  # Hydra reports it
    try:
        validate_train(typed)
        if typed.resume:  # before the lock creates a directory
            resume_checkpoint(Path(typed.resume), run_dir)
        if dist.is_main:
            held.enter_context(lock_run_dir(run_dir))
        plan = plan_run(run_dir, typed, resolved, mmap=True, check_fresh=dist.is_main)
    except user_errors() as e:
        held.close()
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    if plan.complete:
        held.close()
        if dist.is_main:
            print(plan.message(run_dir))
        sys.exit(0)
    return held


if __name__ == "__main__":
    main()
