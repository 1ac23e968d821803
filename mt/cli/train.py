"""`mt-train`: train the configured model, then score it on the validation and test splits.

mt-train                                          # Multi30k de->en, GRU, Bahdanau attention
mt-train model/attention=luong_general data.src_lang=en data.tgt_lang=de
mt-train experiment=quick
mt-train resume=runs/de-en/default/2026-11-24_10-00-00   # continue a stopped run, its own settings
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
ADOPTED: list[str] = []  # the resumed run's own overrides that this command line did not repeat


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
    if ADOPTED:
        log.info("resume: the run's own settings from .hydra/overrides.yaml: %s", " ".join(ADOPTED))
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
    ADOPTED[:] = stored_overrides(sys.argv[1:])
    sys.argv[1:1] = ADOPTED
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


def _key(override: str) -> str:
    """The setting an override names: `+trainer.x=1`, `~trainer.x` -> `trainer.x`."""
    return override.partition("=")[0].lstrip("+~")


def stored_overrides(argv: list[str]) -> list[str]:
    """With `resume=DIR`: the overrides DIR's run was started with (DIR/.hydra/overrides.yaml)
    whose keys this command line does not set, so `mt-train resume=DIR` alone continues any run;
    what the command line sets wins (and is then applied or refused by mt/training/run_dir.py).
    Empty without `resume=`, or when DIR has no readable overrides file (a warning)."""
    import yaml

    resume = [a.partition("=")[2] for a in argv if _key(a) == "resume" and "=" in a]
    value = resume[-1].strip("'\"") if resume else ""
    if value in ("", "None", "null"):
        return []
    path = Path(value) / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []  # not a run directory: resume_checkpoint refuses it by name
    try:
        stored = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(stored, list) or not all(isinstance(o, str) for o in stored):
            raise ValueError("not a list of overrides")
    except (OSError, UnicodeError, ValueError, yaml.YAMLError) as e:
        print(f"warning: {path}: {e}; only this command line's settings are used", file=sys.stderr)
        return []
    given = {_key(a) for a in argv if not a.startswith("-")}
    return [o for o in stored if _key(o) not in given and not _key(o).startswith(("hydra.", "hydra/"))]


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
