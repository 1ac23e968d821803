"""Checkpoints: atomic writes, safe loading, RNG round trip, incompatible configs."""

from __future__ import annotations

import errno
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mt.errors import CheckpointError, OutputError
from mt.training.checkpoint import (
    atomic_torch_save,
    load_checkpoint,
    rng_state,
    set_rng_state,
)


def good_checkpoint(value: float = 1.0) -> dict:
    return {
        "model": {"w": torch.full((3,), value)},
        "config": {"model": {"emb_size": 8}},
        "tokenizer": b"\x00\x01",
    }


class Evil:
    """Unpickling this would run a shell command."""

    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/mt_pwned",))


def test_round_trip_and_rng_state(tmp_path: Path):
    path = tmp_path / "ck" / "last.pt"
    random.seed(3), np.random.seed(3), torch.manual_seed(3)
    state = rng_state()
    atomic_torch_save({**good_checkpoint(), "rng": state}, path)
    expected = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(0), np.random.seed(0), torch.manual_seed(0)
    set_rng_state(load_checkpoint(path)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected
    assert not list(path.parent.glob(".*.tmp"))  # no temporary files left behind


def test_malicious_pickle_is_refused(tmp_path: Path):
    path = tmp_path / "evil.pt"
    torch.save({**good_checkpoint(), "payload": Evil()}, path)
    Path("/tmp/mt_pwned").unlink(missing_ok=True)
    with pytest.raises(CheckpointError, match="refusing to load"):
        load_checkpoint(path)
    assert not Path("/tmp/mt_pwned").exists()


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_checkpoint_names_the_file(tmp_path: Path, damage: str):
    path = tmp_path / "best.pt"
    atomic_torch_save(good_checkpoint(), path)
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": os.urandom(4096), "empty": b""}[damage])
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)


def test_not_an_mt_checkpoint(tmp_path: Path):
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not an mt checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("fmt", [2, 0, "1"])
def test_a_layout_format_this_code_does_not_read_is_refused(tmp_path: Path, fmt):
    """The `format` field is checked: a newer (or nonsensical) layout is refused by name, not
    half-read; a checkpoint without the field (the first ones) is layout 1."""
    path = tmp_path / "x.pt"
    torch.save({**good_checkpoint(), "format": fmt}, path)
    with pytest.raises(CheckpointError, match=rf"{path}.*format {fmt!r}.*version that wrote it"):
        load_checkpoint(path)
    torch.save(good_checkpoint(), path)  # no format field
    assert load_checkpoint(path)["model"]["w"].tolist() == [1.0, 1.0, 1.0]
    torch.save({**good_checkpoint(), "format": 1}, path)
    assert load_checkpoint(path)["format"] == 1


def test_missing_checkpoint(tmp_path: Path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_full_disk_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "last.pt"
    atomic_torch_save(good_checkpoint(1.0), path)

    def no_space(obj, f, *a, **k):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", no_space)
    with pytest.raises(OutputError, match="No space left on device.*previous file.*intact"):
        atomic_torch_save(good_checkpoint(2.0), path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.full((3,), 1.0))
    assert not list(tmp_path.glob(".*.tmp"))


def test_kill_during_write_keeps_the_previous_checkpoint(tmp_path: Path):
    """A process SIGKILLed in the middle of writing leaves the old file intact."""
    path = tmp_path / "last.pt"
    atomic_torch_save(good_checkpoint(1.0), path)
    code = f"""
import os, signal, torch
from mt.training.checkpoint import atomic_torch_save
real_save = torch.save
def dying_save(obj, f, *a, **k):
    f.write(b"x" * 100000)
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
torch.save = dying_save
atomic_torch_save({{"model": {{"w": torch.zeros(3)}}, "config": {{}}}}, {str(path)!r})
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert proc.returncode == -9
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.full((3,), 1.0))


def test_incompatible_config_is_refused_with_the_differences():
    from mt.training.checkpoint import check_compatible

    saved = {"model": {"emb_size": 256, "attention": {"name": "bahdanau"}}, "tokenizer": {"vocab_size": 8000},
             "data": {"src_lang": "de", "tgt_lang": "en"}}  # fmt: skip
    now = {"model": {"emb_size": 256, "attention": {"name": "luong_dot"}}, "tokenizer": {"vocab_size": 4000},
           "data": {"src_lang": "de", "tgt_lang": "en"}}  # fmt: skip
    with pytest.raises(CheckpointError) as err:
        check_compatible(saved, now, "checkpoint X")
    msg = str(err.value)
    assert "model.attention.name: checkpoint 'bahdanau' vs now 'luong_dot'" in msg
    assert "tokenizer.vocab_size: checkpoint 8000 vs now 4000" in msg
    check_compatible(saved, saved, "checkpoint X")  # the same config passes


def test_old_config_keys_are_migrated():
    from mt.training.checkpoint import migrate_config

    old = {"trainer": {"valid_every": 150, "max_steps": 0}, "model": {"emb_size": 8}}
    new = migrate_config(old)
    assert new["trainer"]["val_every"] == 150 and new["trainer"]["max_steps"] == 0
    assert "valid_every" not in new["trainer"]
    assert old["trainer"]["valid_every"] == 150  # the stored dict is not changed
    assert new["model"]["emb_size"] == 8  # a stored value stays


def test_keys_added_since_a_checkpoint_get_their_defaults_and_it_still_fits():
    # a run saved before model.attention.window and the alignment section existed can be resumed
    from omegaconf import OmegaConf

    from mt.config import TrainConfig
    from mt.training.checkpoint import check_compatible, migrate_config

    now = OmegaConf.to_container(OmegaConf.structured(TrainConfig))
    saved = migrate_config(now)
    for key in ("window", "score", "max_src_len"):
        saved["model"]["attention"].pop(key, None)
    del saved["alignment"]
    migrated = migrate_config(saved)
    assert migrated["model"]["attention"] == now["model"]["attention"]
    assert migrated["alignment"] == now["alignment"]
    check_compatible(migrated, now, "checkpoint X")
    with pytest.raises(CheckpointError, match="model.attention.window"):
        check_compatible(saved, now, "checkpoint X")  # without the migration: refused


def test_random_bytes_are_always_a_checkpoint_error(tmp_path: Path):
    """Whatever the bytes, loading fails with a CheckpointError naming the file, never another exception."""
    import random

    rng = random.Random(0)
    for i in range(200):
        path = tmp_path / f"junk{i}.pt"
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096))))
        with pytest.raises(CheckpointError, match=str(path)):
            load_checkpoint(path)
