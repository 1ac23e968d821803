"""`mt-train`: train the configured model, then score it on the validation and test splits.

mt-train                                          # Multi30k de->en, GRU, Bahdanau attention
mt-train model/attention=luong_general data.src_lang=en data.tgt_lang=de
mt-train experiment=quick
mt-train resume=runs/de-en/default/2026-11-24_10-00-00   # continue a stopped run
torchrun --nproc_per_node=2 -m mt.train ...       # data-parallel (DDP) over 2 processes
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from mt.cli.common import (
    CONFIG_DIR,
    RUN_TIME_ENV,
    friendly_errors,
    preflight,
    quote_paths,
    record_swept_keys,
    register_resolvers,
)
from mt.command_config import register_configs
from mt.config import TrainConfig
from mt.training.distributed import broadcast_object, init_distributed, shutdown

register_resolvers()
register_configs()
log = logging.getLogger("mt.train")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@friendly_errors
def hydra_main(cfg: DictConfig) -> float:
    """Hydra entry point; returns the best validation BLEU (what sweepers maximise)."""
    from mt.training.run import train  # deferred: datasets and the model stack load in seconds

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    typed: TrainConfig = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    preflight("train", sys.argv[1:])
    record_swept_keys(sys.argv[1:])
    dist = init_distributed("cuda" if torch.cuda.is_available() else "cpu")  # main() joined already
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
    for the run directory's time stamp, so they all name the same directory.
    """
    sys.argv[1:] = quote_paths(sys.argv[1:])  # resume=JOB_DIR: a job directory's name holds = and ,
    preflight("train", sys.argv[1:])
    record_swept_keys(sys.argv[1:])
    dist = init_distributed("cuda" if torch.cuda.is_available() else "cpu")
    if dist.enabled:
        os.environ[RUN_TIME_ENV] = repr(broadcast_object(dist, time.time()))
        if not dist.is_main:
            sys.argv += WORKER_OVERRIDES
    try:
        hydra_main()
    finally:
        shutdown(dist)


if __name__ == "__main__":
    main()
