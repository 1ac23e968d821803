"""Run directories are never trusted blindly: what a run directory may hold before `mt-train`
writes into it, what `resume=` may change, when a resumed run has nothing left to do, and the
lock that keeps two processes out of one directory. The rules are in docs/reliability.md
("Run directories and resume: the rules").

- A fresh run needs an empty (or new) directory: one holding a run is refused, naming
  `resume=DIR` and another directory as the two ways on.
- `resume=DIR` needs DIR to be the run directory itself, with `checkpoints/last.pt`; the
  requested config may differ from the stored one only in `CHANGEABLE_ON_RESUME` (settings that
  really take effect after a restore); every other difference is refused by name with its
  stored value. A run whose training ended redoes only the final evaluation, and nothing at
  all when `results.json` already describes its last step.
- `RUN_DIR/.lock` holds the pid of the process writing into the directory (with an flock); a
  live holder makes any other `mt-train` refuse, a dead one's lock is taken over with a warning.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mt.errors import ConfigError, OutputError
from mt.io import read_json
from mt.training.checkpoint import check_compatible, flatten, load_checkpoint, migrate_config

log = logging.getLogger("mt.train")

LOCK_NAME = ".lock"
# What Hydra writes into the run directory before `mt-train`'s own code runs, and the lock:
# a directory holding only these holds no run.
BEFORE_RUN = frozenset({".hydra", "train.log", LOCK_NAME})
# Settings a resume applies (checked to take effect after Trainer.restore): when training stops,
# how it reports and saves, where it runs, the final evaluation's beam, where caches live, and the
# gold alignment scoring (diagnostics only). Keys ending in "." are prefixes. Every other
# difference from the stored config is refused: the checkpoint's state (optimizer, schedule,
# RNG, sample order) would override it, or it would change what the run is.
CHANGEABLE_ON_RESUME = (
    "trainer.max_steps", "trainer.max_epochs", "trainer.max_minutes", "trainer.early_stopping_patience",
    "trainer.device", "trainer.progress", "trainer.log_every", "trainer.checkpoint_every",
    "trainer.keep_last", "trainer.max_rss_mb", "trainer.test_beam_size", "trainer.length_penalty",
    "trainer.min_length", "trainer.no_repeat_ngram_size", "trainer.repetition_penalty",
    "data.cache_dir", "data.download", "alignment.", "resume",
)  # fmt: skip


@dataclass
class RunPlan:
    """What a run does in its directory."""

    checkpoint: dict[str, Any] | None  # last.pt to continue from; None for a fresh run
    ended: str  # why training had already ended ('' when it goes on): only the final evaluation is left
    complete: bool  # ended, and results.json describes the last step: nothing to do

    def message(self, run_dir: Path) -> str:
        step = self.checkpoint["progress"]["step"] if self.checkpoint else 0
        return (f"nothing to do: {run_dir} is a finished run (training ended at step {step}: {self.ended}; "
                "results.json written); no file changed")  # fmt: skip


def plan_run(
    run_dir: Path, cfg: Any, resolved: dict[str, Any], mmap: bool = False, check_fresh: bool = True
) -> RunPlan:
    """Check `run_dir` for the run `cfg` asks for (a TrainConfig; `resolved`: its plain dict);
    ConfigError / CheckpointError naming the path or key and the fix when it must not run there.
    `mmap`: map last.pt's tensors instead of reading them; `check_fresh=False`: a fresh run's
    directory is not looked at (data-parallel ranks > 0: rank 0 may be writing there already)."""
    run_dir = Path(run_dir)
    if not cfg.resume:
        if check_fresh:
            check_new_dir(run_dir)
        return RunPlan(None, "", False)
    last = resume_checkpoint(Path(cfg.resume), run_dir)
    ckpt = load_checkpoint(last, mmap=mmap)
    stored = migrate_config(ckpt["config"])
    check_compatible(stored, resolved, f"checkpoint {last}")
    check_overrides(stored, resolved, cfg.resume)
    ended = training_ended(ckpt["progress"], cfg.trainer)
    return RunPlan(ckpt, ended, bool(ended) and results_cover(run_dir, ckpt["progress"]["step"]))


def check_new_dir(run_dir: Path) -> None:
    """A fresh run writes only into a new or empty directory (Hydra's own files aside)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"hydra.run.dir={run_dir} is a file, not a directory: choose another hydra.run.dir")
    found = sorted(p.name for p in run_dir.iterdir() if p.name not in BEFORE_RUN) if run_dir.is_dir() else []
    if not found:
        return
    if (run_dir / "checkpoints" / "last.pt").is_file():
        raise ConfigError(
            f"hydra.run.dir={run_dir} already holds a run ({', '.join(found[:5])}): continue it with "
            f"resume={run_dir}, or start a new run in another directory (hydra.run.dir=NEW_DIR)"
        )
    raise ConfigError(
        f"hydra.run.dir={run_dir} is not empty ({', '.join(found[:5])}): a new run needs a new or "
        "empty directory; choose another hydra.run.dir"
    )


def resume_checkpoint(resume: Path, run_dir: Path) -> Path:
    """`resume=DIR`: DIR/checkpoints/last.pt, where DIR is the run directory itself."""
    if not resume.exists():
        raise ConfigError(
            f"resume={resume}: no such directory; give the run directory of an earlier mt-train run "
            "(it holds checkpoints/last.pt), or drop resume= to start a new run"
        )
    if not resume.is_dir():
        raise ConfigError(f"resume={resume} is a file; give the run directory (it holds checkpoints/last.pt)")
    if resume.resolve() != Path(run_dir).resolve():
        raise ConfigError(
            f"resume={resume} continues that run in its own directory, but hydra.run.dir is {run_dir}: "
            "drop hydra.run.dir (or drop resume= to start a new run there)"
        )
    last, best = resume / "checkpoints" / "last.pt", resume / "checkpoints" / "best.pt"
    if last.is_file():
        return last
    if best.is_file():
        raise ConfigError(
            f"resume={resume} has checkpoints/best.pt but no checkpoints/last.pt, so it cannot be "
            f"continued exactly: evaluate it with mt-evaluate checkpoint={best}, or start a new run "
            "in another directory (hydra.run.dir=NEW_DIR)"
        )
    raise ConfigError(
        f"resume={resume} is not a run directory with a checkpoint (no checkpoints/last.pt): give "
        "one that has it, or start a new run in another directory (hydra.run.dir=NEW_DIR)"
    )


def check_overrides(stored: dict[str, Any], requested: dict[str, Any], resume: Any) -> None:
    """Refuse every difference between the stored and the requested config that a resume would
    not apply (all but CHANGEABLE_ON_RESUME), naming each key with its stored value."""
    a, b = _flat(stored), _flat(requested)
    refused = [
        f"{k} is {a.get(k, '<absent>')!r} there (requested {b.get(k, '<absent>')!r})"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k) and not changeable(k)
    ]
    if refused:
        keys = ", ".join(k.rstrip(".") + (".*" if k.endswith(".") else "") for k in CHANGEABLE_ON_RESUME[:-1])
        raise ConfigError(
            f"resume={resume} continues the stored run, whose settings it cannot change: {'; '.join(refused)}. "
            "Drop the override, or start a new run (another hydra.run.dir, no resume=); a resume may "
            f"change only {keys}"
        )


def changeable(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in CHANGEABLE_ON_RESUME)


def _flat(config: dict[str, Any]) -> dict[str, Any]:
    return {k.lstrip("."): v for k, v in flatten(config, "").items()}


def training_ended(progress: Mapping[str, Any], t: Any) -> str:
    """Why training is over for counters `progress` under trainer settings `t`; '' when it goes on.
    Checked before any update, so that an ended run never trains one more step."""
    if t.max_steps and progress["step"] >= t.max_steps:
        return f"max_steps={t.max_steps}"
    if progress["epoch"] >= t.max_epochs:
        return f"max_epochs={t.max_epochs}"
    if t.max_minutes > 0 and progress["train_seconds"] >= t.max_minutes * 60:
        return f"max_minutes={t.max_minutes}"
    if t.early_stopping_patience and progress["bad_validations"] >= t.early_stopping_patience:
        return f"early stopping: no BLEU gain in {progress['bad_validations']} validations"
    return ""


def results_cover(run_dir: Path, step: int) -> bool:
    """Whether run_dir/results.json is readable and scores the model of step `step`."""
    try:
        return int(read_json(run_dir / "results.json")["train"]["steps"]) == step
    except (OSError, ValueError, KeyError, TypeError):
        return False


# ---------------------------------------------------------------------------------------- lock
_HELD: dict[Path, int] = {}  # run directory (resolved) -> descriptor of its lock file, this process


@contextlib.contextmanager
def lock_run_dir(run_dir: Path) -> Iterator[None]:
    """Hold RUN_DIR/.lock (created with the directory when needed) for the duration; OutputError
    naming the pid when another live process holds it. Re-entrant within one process."""
    key = Path(run_dir).resolve()
    if key in _HELD:
        yield
        return
    try:
        key.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(
            f"cannot create the run directory {run_dir}: {e.strerror}; choose another hydra.run.dir"
        ) from e
    path = key / LOCK_NAME
    _HELD[key] = _acquire(path)
    try:
        yield
    finally:
        fd = _HELD.pop(key)
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                path.unlink()
        os.close(fd)


def _acquire(path: Path) -> int:
    for _ in range(10):  # the holder may remove the file between our open and our flock
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise OutputError(
                f"cannot create the lock file {path}: {e.strerror}; choose another hydra.run.dir"
            ) from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                os.close(fd)
                raise
            pid = _read_pid(fd)
            os.close(fd)
            raise OutputError(_in_use(path, pid)) from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        pid = _read_pid(fd)
        if pid is not None and pid != os.getpid():
            if _alive(pid):
                os.close(fd)
                raise OutputError(_in_use(path, pid))
            log.warning("taking over the stale lock %s of pid %d, which no longer runs", path, pid)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd
    raise OutputError(f"could not lock {path}: other processes keep replacing it; try again")


def _in_use(path: Path, pid: int | None) -> str:
    who = f"pid {pid}" if pid is not None else "a process that is starting"
    return (
        f"{path.parent} is in use by another mt-train ({who}; lock {path}): wait for it to end or train "
        f"into another directory (hydra.run.dir=NEW_DIR); if no such process runs, delete {path}"
    )


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode("ascii", "replace").strip())
    except ValueError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
