"""Checkpoint averaging: one model whose parameters are the element-wise mean of several
checkpoints' of the same run (the last or best N), as Vaswani et al. (2017) and fairseq's
`average_checkpoints.py` do; decoding the average is usually better than any one of them.

The averaged checkpoint holds what decoding needs (model, config, tokenizer, vocab, the
newest step) and the files it came from; no optimizer or RNG state: it is evaluated and
translated with, not resumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from mt.errors import CheckpointError
from mt.training.checkpoint import FORMAT, config_differences, load_checkpoint


def _differences(first: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """What keeps two checkpoints' parameters from being averaged: model / tokenizer settings,
    languages, tokenizer models, parameter names and shapes."""
    diffs = config_differences(first["config"], other["config"], ("first", "this"))
    if first.get("tokenizer") != other.get("tokenizer"):
        diffs.append("the tokenizer models differ (another subword vocabulary)")
    a, b = first["model"], other["model"]
    if a.keys() != b.keys():
        diffs.append(f"parameters {sorted(set(a) ^ set(b))[:3]} are in one only")
    else:
        diffs += [
            f"{k}: shape {tuple(a[k].shape)} vs {tuple(b[k].shape)}" for k in a if a[k].shape != b[k].shape
        ]
    return diffs


def average_checkpoints(paths: Sequence[str | Path]) -> dict[str, Any]:
    """The averaged checkpoint of `paths` (at least one): floating-point parameters averaged in
    float64 and cast back; other tensors must be equal. CheckpointError names the file that
    does not fit the first and each difference."""
    if not paths:
        raise CheckpointError("no checkpoint to average: give at least one")
    first = load_checkpoint(paths[0])
    total = {k: v.double() if v.is_floating_point() else v for k, v in first["model"].items()}
    newest, steps = first, [int(first.get("progress", {}).get("step", 0))]
    for path in paths[1:]:
        ckpt = load_checkpoint(path)
        diffs = _differences(first, ckpt)
        if diffs:
            raise CheckpointError(f"{path} cannot be averaged with {paths[0]}: " + "; ".join(diffs[:5]))
        for k, v in ckpt["model"].items():
            if v.is_floating_point():
                total[k] += v.double()
            elif not torch.equal(v, total[k]):
                raise CheckpointError(
                    f"{path} cannot be averaged with {paths[0]}: {k} differs and is not a float"
                )
        steps.append(int(ckpt.get("progress", {}).get("step", 0)))
        if steps[-1] >= max(steps[:-1]):
            newest = ckpt
    n = len(paths)
    model = {k: (v / n).to(first["model"][k].dtype) if v.is_floating_point() else v for k, v in total.items()}
    return {
        "format": FORMAT,
        "model": model,
        "progress": {"step": max(steps)},
        "config": newest["config"],
        "tokenizer": newest["tokenizer"],
        "vocab": newest.get("vocab"),
        "averaged_from": [str(p) for p in paths],
        "averaged_steps": steps,
    }
