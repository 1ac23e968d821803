"""What every command shares: where the configs are, resolvers, and turning known errors
into one clear message and a non-zero exit instead of a stack trace."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")

log = logging.getLogger("mt")


def _run_dir(resume: Any, default: str) -> str:
    """hydra.run.dir: the run being resumed, else a fresh directory."""
    return str(resume) if resume not in (None, "", "None") else default


def _ckpt_run_dir(checkpoint: Any) -> str:
    """The run directory a checkpoint belongs to (RUN/checkpoints/x.pt -> RUN)."""
    path = Path(str(checkpoint))
    return str(path.parent.parent if path.parent.name == "checkpoints" else path.parent)


def register_resolvers() -> None:
    """OmegaConf resolvers used by configs/ (idempotent)."""
    if not OmegaConf.has_resolver("mt_run_dir"):
        OmegaConf.register_new_resolver("mt_run_dir", _run_dir)
    if not OmegaConf.has_resolver("mt_ckpt_run_dir"):
        OmegaConf.register_new_resolver("mt_ckpt_run_dir", _ckpt_run_dir)


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that are the user's input, reported as one message."""
    from mt.config import ConfigError
    from mt.data.errors import DataError
    from mt.training.checkpoint import CheckpointError
    from mt.training.trainer import TrainingStopped

    return (ConfigError, DataError, CheckpointError, TrainingStopped)


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run `fn`; a known user error is printed as `error: ...` and exits with status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except user_errors() as e:
            log.error("%s", e)
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)

    return wrapper
