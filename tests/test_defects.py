"""Errors that must not be hidden: a bug is not reported as a bad override, and a removed
config key does not break old checkpoints."""

from __future__ import annotations

import os

import hydra
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from mt.cli.common import SWEPT_KEYS_ENV, preflight, record_swept_keys, register_resolvers
from mt.command_config import register_configs
from mt.config import TrainConfig

register_resolvers()
register_configs()


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("trainer.max_stepz=3", "bad override `trainer.max_stepz=3`"),  # unknown key
        ("trainer.max_steps=many", "bad override `trainer.max_steps=many`"),  # wrong type
        ("model/attention=bahdanauu", "Did you mean model/attention=bahdanau?"),  # unknown option
        ("trainer.max_steps=[1", "bad configuration"),  # not an override at all
    ],
)
def test_a_bad_override_is_one_error_and_exit_2(override: str, expected: str, capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        preflight("train", [override])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and "Traceback" not in err


def test_a_bug_inside_composition_is_not_reported_as_a_bad_override(monkeypatch, capsys) -> None:
    """Only Hydra's composition and override errors are the user's; anything else (a broken
    plugin, a bug) keeps its type and traceback."""
    real = hydra.compose

    def compose(config_name=None, overrides=None, **kwargs):
        if overrides:
            raise RuntimeError("a bug in a Hydra plugin")
        return real(config_name, overrides=overrides, **kwargs)

    monkeypatch.setattr(hydra, "compose", compose)
    with pytest.raises(RuntimeError, match="a bug in a Hydra plugin"):
        preflight("train", ["trainer.max_steps=3"])
    assert "bad override" not in capsys.readouterr().err


def test_a_good_override_passes_preflight(capsys) -> None:
    preflight("train", ["trainer.max_steps=3", "model/attention=luong_dot"])
    assert capsys.readouterr().err == ""


def test_record_swept_keys(monkeypatch) -> None:
    monkeypatch.delenv(SWEPT_KEYS_ENV, raising=False)
    record_swept_keys(["-m", "seed=1,2", "model/attention=luong_dot,bahdanau", "trainer.max_steps=3"])
    assert os.environ[SWEPT_KEYS_ENV] == "seed,model/attention"
    monkeypatch.delenv(SWEPT_KEYS_ENV)
    record_swept_keys(["seed=[1,"])  # malformed: Hydra reports it itself; nothing recorded
    assert SWEPT_KEYS_ENV not in os.environ


def test_record_swept_keys_does_not_hide_a_bug(monkeypatch) -> None:
    def broken(self, overrides):
        raise RuntimeError("a bug in the override parser")

    monkeypatch.setattr(OverridesParser, "parse_overrides", broken)
    with pytest.raises(RuntimeError, match="a bug in the override parser"):
        record_swept_keys(["seed=1,2"])


def test_checkpoints_written_with_the_removed_extra_key_still_load() -> None:
    """`extra` (a config dict nothing read) was removed; a checkpoint's stored config still has it."""
    from mt.training.checkpoint import migrate_config

    stored = {"extra": {}, "seed": 1, "trainer": {"valid_every": 150}}
    config = migrate_config(stored)
    assert "extra" not in config and "extra" in stored  # the stored dict is not changed
    merged = OmegaConf.merge(OmegaConf.structured(TrainConfig), config)
    assert merged.trainer.val_every == 150 and merged.seed == 1
