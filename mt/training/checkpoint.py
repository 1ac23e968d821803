"""Everything about a checkpoint: its layout, atomic save, safe load, migration of old ones,
compatibility with a configuration, and the model rebuilt from it.

A checkpoint is a dict of tensors and plain Python values (numbers, strings, bytes,
lists, dicts), saved with torch.save and loaded with ``torch.load(weights_only=True)``,
which refuses anything that would need arbitrary code to unpickle. Layout (``FORMAT`` 1):

    format      int, the layout version (a newer one than this code knows is refused)
    model       state dict;  optimizer, schedule: state dicts
    progress    the trainer's counters (step, epoch, batch position, best score, history, ...)
    rng         Python, NumPy, torch (and CUDA) generator states
    config      the resolved training config (plain dict)
    tokenizer   the sentencepiece model(s) as bytes
    vocab       {"src": int, "tgt": int}
"""

from __future__ import annotations

import copy
import pickle
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from mt.config import TrainConfig
from mt.data.tokenizer import Tokenizer
from mt.errors import CheckpointError
from mt.io import atomic_write, unreadable_reason
from mt.models.seq2seq import Seq2Seq, build_model

FORMAT = 1
# Config sections that must match when a run is resumed or a checkpoint is reused.
COMPATIBLE_SECTIONS = ("model", "tokenizer")
# Config keys renamed since a checkpoint may have been written: (section, old, new).
RENAMED_KEYS = [("trainer", "valid_every", "val_every")]
# Config keys removed since then: (section, or None at the top level, key).
REMOVED_KEYS = [(None, "extra")]


def checkpoint_state(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    schedule: Any,
    progress: dict[str, Any],
    config: dict[str, Any],
    tokenizer: Tokenizer,
) -> dict[str, Any]:
    """The checkpoint dict of a training run (the layout above), RNG states taken now."""
    return {
        "format": FORMAT,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "progress": progress,
        "rng": rng_state(),
        "config": config,
        "tokenizer": tokenizer.to_bytes(),
        "vocab": {"src": tokenizer.src_vocab_size, "tgt": tokenizer.tgt_vocab_size},
    }


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """torch.save to `path` atomically (see `mt.io.atomic_write`)."""
    atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu", mmap: bool = False
) -> dict[str, Any]:
    """Load a checkpoint safely; every failure is a CheckpointError naming the file. `mmap`: map
    the tensors from the file instead of reading them (a cheap look at the counters)."""
    path = Path(path)
    what = unreadable_reason(path)
    if what is not None:
        raise CheckpointError(f"checkpoint {path} {what}; pass checkpoint=RUN_DIR/checkpoints/best.pt")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refusing to load {path}: it needs arbitrary (pickled) code to load, which could run "
            f"anything. Only checkpoints written by mt are accepted. Detail: {str(e).splitlines()[0]}"
        ) from e
    except Exception as e:  # noqa: BLE001 - random bytes make the unpickler fail in any way (IndexError, KeyError, ...)
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
            f"use another checkpoint (e.g. checkpoints/last.pt or best.pt of the run)"
        ) from e
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise CheckpointError(f"{path} is not an mt checkpoint (no model/config entries)")
    fmt = ckpt.get("format", 1)  # the first checkpoints had no format field; their layout is 1
    if not isinstance(fmt, int) or not 1 <= fmt <= FORMAT:
        raise CheckpointError(
            f"checkpoint {path} has layout format {fmt!r}, this mt reads format 1 to {FORMAT}; "
            "load it with the mt version that wrote it"
        )
    return ckpt


def rng_state() -> dict[str, Any]:
    """Python, NumPy and torch generator states, as plain values and tensors."""
    np_state = np.random.get_state()
    state = {
        "python": _to_plain(random.getstate()),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }  # fmt: skip
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what rng_state() captured."""
    random.setstate(_to_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_plain(x: Any) -> Any:
    return [_to_plain(v) for v in x] if isinstance(x, (tuple, list)) else x


def _to_tuple(x: Any) -> Any:
    return tuple(_to_tuple(v) for v in x) if isinstance(x, list) else x


def migrate_config(config: dict[str, Any]) -> dict[str, Any]:
    """Bring a checkpoint's stored config up to the current schema: renamed keys get their new
    names, removed keys go, and keys added since get their schema default (a new setting's
    default keeps the old behaviour, e.g. `model.attention.window` of mechanisms that ignore it)."""
    config = copy.deepcopy(config)
    for section, old, new in RENAMED_KEYS:
        part = config.get(section)
        if isinstance(part, dict) and old in part:
            part.setdefault(new, part.pop(old))
    for section, key in REMOVED_KEYS:
        part = config if section is None else config.get(section)
        if isinstance(part, dict):
            part.pop(key, None)
    _fill_missing(config, OmegaConf.to_container(OmegaConf.structured(TrainConfig)))
    return config


def _fill_missing(config: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Add, in place and recursively, each key of `defaults` that `config` lacks."""
    for key, value in defaults.items():
        if key not in config:
            config[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(config[key], dict):
            _fill_missing(config[key], value)


@dataclass
class LoadedModel:
    """A model in eval mode with what it was trained with."""

    model: Seq2Seq
    tokenizer: Tokenizer
    config: TrainConfig
    step: int


def load_model(path: str | Path, device: torch.device) -> LoadedModel:
    """Load checkpoint `path` safely and rebuild its model; CheckpointError on any mismatch."""
    ckpt = load_checkpoint(path, map_location=device)
    try:
        cfg: TrainConfig = OmegaConf.to_object(
            OmegaConf.merge(OmegaConf.structured(TrainConfig), migrate_config(ckpt["config"]))
        )  # type: ignore[assignment]
        tokenizer = Tokenizer.from_bytes(ckpt["tokenizer"])
    except Exception as e:  # noqa: BLE001 - any failure here means the file is not usable
        raise CheckpointError(f"checkpoint {path} has an unusable config or tokenizer: {e}") from e
    model = build_model(cfg.model, tokenizer.src_vocab_size, tokenizer.tgt_vocab_size)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise CheckpointError(
            f"checkpoint {path} does not fit the model its own config describes: {str(e).splitlines()[0]}"
        ) from e
    step = int(ckpt.get("progress", {}).get("step", 0))
    return LoadedModel(model.to(device).eval(), tokenizer, cfg, step)


def load_ensemble(
    first: LoadedModel, first_path: str | Path, others: Sequence[str | Path], device: torch.device
):
    """`first`'s model, or with `others` an `Ensemble` of it and theirs (each loaded safely);
    CheckpointError naming the file when a model does not share the first's tokenizer (its
    target vocabulary and source subwords) or its languages."""
    from mt.models.ensemble import Ensemble

    if not others:
        return first.model
    models = [first.model]
    for path in others:
        other = load_model(path, device)
        data, mine = other.config.data, first.config.data
        # the same ids for the same text; training-only settings (subword sampling) may differ
        if other.tokenizer.fingerprint != first.tokenizer.fingerprint:
            raise CheckpointError(
                f"{path} cannot join an ensemble with {first_path}: its tokenizer (target vocabulary, "
                f"{other.tokenizer.tgt_vocab_size} pieces) is another one; ensembles need models trained with one "
                "tokenizer (the same data and tokenizer settings)"
            )
        if (data.src_lang, data.tgt_lang) != (mine.src_lang, mine.tgt_lang):
            raise CheckpointError(
                f"{path} translates {data.src_lang}->{data.tgt_lang}, {first_path} {mine.src_lang}->{mine.tgt_lang}: "
                "an ensemble needs one direction"
            )
        models.append(other.model)
    return Ensemble(models).eval()


def describe(loaded: LoadedModel) -> dict[str, Any]:
    """A few facts for logs and results files."""
    m = loaded.config.model
    return {"step": loaded.step, "attention": m.attention.name, "rnn": m.rnn_type,
            "src_lang": loaded.config.data.src_lang, "tgt_lang": loaded.config.data.tgt_lang}  # fmt: skip


def config_differences(
    saved: dict[str, Any], current: dict[str, Any], names: tuple[str, str] = ("checkpoint", "now")
) -> list[str]:
    """Each model or tokenizer setting and language in which two configs differ, as
    ``KEY: NAME0 VALUE vs NAME1 VALUE``."""
    diffs = []
    for section in COMPATIBLE_SECTIONS:
        a, b = flatten(saved.get(section, {}), section), flatten(current.get(section, {}), section)
        diffs += [
            f"{k}: {names[0]} {a.get(k)!r} vs {names[1]} {b.get(k)!r}"
            for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k)
        ]
    for key in ("src_lang", "tgt_lang"):
        a, b = saved.get("data", {}).get(key), current.get("data", {}).get(key)
        if a != b:
            diffs.append(f"data.{key}: {names[0]} {a!r} vs {names[1]} {b!r}")
    return diffs


def check_compatible(saved: dict[str, Any], current: dict[str, Any], what: str) -> None:
    """Refuse a checkpoint whose model or tokenizer settings or language pair differ, naming each difference."""
    diffs = config_differences(saved, current)
    if diffs:
        raise CheckpointError(f"{what} does not fit this configuration: " + "; ".join(diffs))


def flatten(d: Any, prefix: str) -> dict[str, Any]:
    """Nested dicts as {"prefix.a.b": value}."""
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}.{k}"))
    else:
        out[prefix] = d
    return out
