"""What every command shares: where the configs are, resolvers, and turning known errors
into one clear message and a non-zero exit instead of a stack trace."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")  # package data: mt/configs

log = logging.getLogger("mt")


def _run_dir(resume: Any, default: str) -> str:
    """hydra.run.dir: the run being resumed, else a fresh directory."""
    return str(resume) if resume not in (None, "", "None") else default


def _ckpt_run_dir(checkpoint: Any) -> str:
    """The run directory a checkpoint belongs to (RUN/checkpoints/x.pt -> RUN)."""
    path = Path(str(checkpoint))
    return str(path.parent.parent if path.parent.name == "checkpoints" else path.parent)


SWEPT_KEYS_ENV = "MT_SWEPT_KEYS"  # keys a multirun varies, from the command line (see record_swept_keys)


def record_swept_keys(argv: list[str]) -> None:
    """Remember which command-line overrides are sweeps (`seed=1,2,3`, `model/attention=a,b`) in
    the environment, which launched jobs inherit, so that job directories name only those."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    args = [a for a in argv if "=" in a and not a.startswith("-")]
    try:
        overrides = OverridesParser.create().parse_overrides(args)
    except OverrideParseException:  # Hydra itself reports malformed overrides
        return
    keys = [
        o.key_or_group for o in overrides if o.is_sweep_override() and not o.key_or_group.startswith("hydra")
    ]
    os.environ[SWEPT_KEYS_ENV] = ",".join(keys)


def _job_dir(task_overrides: Any, num: Any, sweeper_params: Any = None, exclude: Any = None) -> str:
    """hydra.sweep.subdir: a multirun job named by the values that vary across the sweep.

    `model/attention=luong_dot seed=2` -> `model.attention=luong_dot,seed=2`: only swept keys
    (from the command line or `hydra.sweeper.params`), no nested folders, so TensorBoard over
    the sweep directory lists one readable run per job; `job<num>` when nothing varies. Keys in
    `exclude` (hydra.job.config.override_dirname.exclude_keys) never name a job.
    """
    swept = {k for k in os.environ.get(SWEPT_KEYS_ENV, "").split(",") if k}
    swept |= {str(k) for k in (sweeper_params or {})}
    swept -= {str(k) for k in (exclude or ())}
    items = []
    for item in task_overrides or []:
        key = str(item).split("=", 1)[0].lstrip("+~")
        if key in swept:
            items.append(str(item).lstrip("+~").replace("/", "."))
    name = ",".join(sorted(items))
    if len(name) > 160:  # file systems cap names at 255 bytes
        import hashlib

        name = f"{name[:150]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
    return name or f"job{num}"


def _mul(a: Any, b: Any) -> int | float:
    """`${mt_mul:${model.enc_hidden},2}`: a product of two config values."""
    return a * b


RUN_TIME_ENV = "MT_RUN_TIME"  # seconds since the epoch; set for every rank of a data-parallel run


def _now(pattern: str) -> str:
    """`${mt_now:%Y-%m-%d_%H-%M-%S}`: Hydra's `now`, but the time in $MT_RUN_TIME when set, so
    that all processes of a torchrun launch name the same run directory."""
    stamp = os.environ.get(RUN_TIME_ENV)
    return (datetime.fromtimestamp(float(stamp)) if stamp else datetime.now()).strftime(pattern)


def register_resolvers() -> None:
    """OmegaConf resolvers used by mt/configs/ (idempotent)."""
    if not OmegaConf.has_resolver("mt_run_dir"):
        OmegaConf.register_new_resolver("mt_run_dir", _run_dir)
    if not OmegaConf.has_resolver("mt_ckpt_run_dir"):
        OmegaConf.register_new_resolver("mt_ckpt_run_dir", _ckpt_run_dir)
    if not OmegaConf.has_resolver("mt_now"):
        OmegaConf.register_new_resolver("mt_now", _now, use_cache=True)
    if not OmegaConf.has_resolver("mt_job_dir"):
        OmegaConf.register_new_resolver("mt_job_dir", _job_dir)
    if not OmegaConf.has_resolver("mt_mul"):
        OmegaConf.register_new_resolver("mt_mul", _mul)


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that are the user's input, reported as one message."""
    from mt.errors import USER_ERRORS

    return USER_ERRORS


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def friendly_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run `fn`; a known user error is printed as `error: ...` and exits with status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except user_errors() as e:
            log.error("%s", e)
            print(f"error: {e}", file=sys.stderr)
            if _in_multirun():
                raise  # fail this job only; the sweeper reports it after the other jobs ran
            sys.exit(2)
        except OSError as e:  # the machine's, not the code's: a full disk, permissions, a bad path
            from mt.errors import os_error_message

            message = os_error_message(e)
            if message is None or _in_multirun():
                raise
            hint = (
                " A stopped training run continues with mt-train resume=RUN_DIR."
                if "train" in fn.__module__
                else ""
            )
            log.error("%s", message)
            print(f"error: {message}.{hint}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def exit_on_user_error(prog: str, fn: Callable[[], Any]) -> Any:
    """`fn()` for a command without Hydra (mt-average, mt-shortlist): a known user error or a
    machine's OSError is one `PROG: error: ...` line and exit status 2."""
    from mt.errors import USER_ERRORS, os_error_message

    try:
        return fn()
    except USER_ERRORS as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
    except OSError as e:
        print(f"{prog}: error: {os_error_message(e) or e}", file=sys.stderr)
    sys.exit(2)


# Hydra flags after which the command line is not a plain run (help, config printing, sweeps).
_HYDRA_FLAGS = ("-m", "--multirun", "-c", "--cfg", "--info", "--help", "-h", "--hydra-help", "--version",
                "-cp", "--config-path", "-cn", "--config-name", "-cd", "--config-dir", "--resolve",
                "--shell-completion", "-sc", "-p", "--package", "--experimental-rerun")  # fmt: skip


# Settings that name a file or directory: the last part of their key (`resume`, `alignment.gold`).
PATH_KEYS = frozenset({"resume", "checkpoint", "src", "tgt", "input", "output", "gold", "gold_src", "gold_tgt",
                       "results", "data_dir", "cache_dir", "output_dir", "dir"})  # fmt: skip
_GRAMMAR_CHARS = frozenset("=,[]{}() ")


def quote_paths(argv: list[str]) -> list[str]:
    """Quote the value of a path setting that Hydra's override grammar would misread.

    Job directories of a sweep are named by their overrides (`model.attention=luong_dot,seed=2`),
    so `resume=multirun/.../model.attention=luong_dot,seed=2` must mean that directory, not a
    syntax error: such a value is passed on as `key='value'`. Values already quoted, or holding
    both kinds of quotes, are left as they are.
    """
    out = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        name = key.lstrip("+~").rsplit(".", 1)[-1]
        if eq and name in PATH_KEYS and value[:1] not in ("'", '"') and _GRAMMAR_CHARS & set(value):
            quote = "'" if "'" not in value else '"' if '"' not in value else ""
            arg = f"{key}={quote}{value}{quote}"
        out.append(arg)
    return out


def preflight(config_name: str, argv: list[str]) -> None:
    """Compose `config_name` with the command line's overrides before Hydra runs: a bad override
    (unknown key, wrong type, unknown group option) becomes one `error:` paragraph naming the
    key, the closest valid keys or options and the fix, and exit status 2."""
    if any(a.split("=")[0] in _HYDRA_FLAGS for a in argv):
        return  # Hydra's own modes; sweeps check every job's config when it is composed
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import ConfigCompositionException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    overrides = [a for a in argv if "=" in a and not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    try:
        if any(o.is_sweep_override() for o in OverridesParser.create().parse_overrides(overrides)):
            return
    except OverrideParseException:
        pass  # a malformed override: compose below reports it
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            try:
                composed = compose(config_name, overrides=overrides)
                OmegaConf.to_container(composed, resolve=True)  # an interpolation that names no key
            # The user's: an override that does not parse, an unknown key or group option
            # (MissingConfigException is a ConfigCompositionException), a value of the wrong
            # type. Anything else (a broken plugin, a bug) keeps its traceback.
            except (ConfigCompositionException, OverrideParseException, OmegaConfBaseException) as e:
                reference = compose(config_name)
                print(f"error: {explain_override_error(e, overrides, reference)}", file=sys.stderr)
                sys.exit(2)
    finally:
        GlobalHydra.instance().clear()


def compose_run(config_name: str, argv: list[str]) -> Any:
    """The config Hydra will compose for this command line, `hydra` node included, before Hydra
    runs (and writes anything); None for Hydra's own modes and sweeps. Call after `preflight`."""
    if any(a.split("=")[0] in _HYDRA_FLAGS for a in argv):
        return None
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = [a for a in argv if "=" in a and not a.startswith("-")]
    if any(o.is_sweep_override() for o in OverridesParser.create().parse_overrides(overrides)):
        return None
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose(config_name, overrides=overrides, return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


def explain_override_error(error: BaseException, overrides: list[str], reference: Any) -> str:
    """Hydra's composition error as one paragraph, with the valid keys or options closest to a typo."""
    import difflib
    import re

    text = "\n".join(str(e) for e in (error, error.__cause__) if e is not None)
    noise = ("To append to your", "reference_type=", "object_type=", "Config search path", "provider=")
    lines = [
        line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith(noise)
    ]
    lines = list(dict.fromkeys(lines))  # the cause often repeats the message
    full_key = next((m.group(1) for m in map(re.compile(r"full_key: (\S+)").search, lines) if m), None)
    bad = next(
        (o for o in reversed(overrides) if full_key and o.lstrip("+~").split("=")[0] == full_key), None
    )
    lines = [line for line in lines if not line.startswith("full_key:")]
    if any("Available options" in line for line in lines):  # an unknown config-group option
        at = next(i for i, line in enumerate(lines) if "Available options" in line)
        head, options = lines[:at], lines[at + 1 :]
        head = [re.sub(r"^In '[^']*': ", "", line) for line in head]
        missing = re.search(r"Could not find '(.+)/([^/']+)'", " ".join(head))
        if missing:
            group, option = missing.groups()
            bad = next((o for o in overrides if o.lstrip("+~") == f"{group}={option}"), bad)
            close = difflib.get_close_matches(option, options, n=1, cutoff=0.5)
            head.append(f"Did you mean {group}={close[0]}?" if close else "")
        message = f"{' '.join(head[:1])}; {lines[at]} {', '.join(options)}. {' '.join(head[1:])}".strip()
    else:
        message = " ".join(line if line.endswith((".", ":")) else line + "." for line in lines)
    if full_key:
        keys = list(_flat_keys(reference))
        if full_key not in keys:
            close = difflib.get_close_matches(full_key, keys, n=3, cutoff=0.6)
            message += (
                f" Did you mean {' or '.join(close)}?"
                if close
                else " (no such key; see mt/configs/ for the keys)"
            )
        else:
            message += f" {full_key} is {_describe(reference, full_key)}."
    return (f"bad override `{bad}`: " if bad else "bad configuration: ") + message


def _flat_keys(cfg: Any, prefix: str = "") -> list[str]:
    from omegaconf import DictConfig

    keys = []
    for k in cfg.keys() if isinstance(cfg, DictConfig) else []:
        path = f"{prefix}{k}"
        node = cfg._get_node(k)
        keys.append(path)
        if isinstance(node, DictConfig):
            keys += _flat_keys(node, path + ".")
    return keys


def _describe(cfg: Any, key: str) -> str:
    value = OmegaConf.select(cfg, key, throw_on_missing=False)
    kind = type(value).__name__
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}, default {value!r}"


def typed_config(cfg: Any, schema: type, config_name: str) -> Any:
    """`cfg` merged onto the dataclass `schema`: unknown keys (typos) and wrong types become a
    ConfigError that names mt/configs/<config_name>.yaml for the keys."""
    from omegaconf.errors import OmegaConfBaseException

    from mt.errors import ConfigError

    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), cfg))
    except OmegaConfBaseException as e:
        raise ConfigError(
            f"config error: {str(e).splitlines()[0]} (see mt/configs/{config_name}.yaml for the keys)"
        ) from e
