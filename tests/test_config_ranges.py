"""Every numeric training setting has a checked range, in one table (mt/config_ranges.py): an
out-of-range value is a ConfigError naming exactly its key, an edge value inside passes, checks
between keys (min_lr <= lr, warm-up vs schedule, the output length limit) hold, the decoding
ranges are the ones mt-translate checks, and `mt-train` refuses a bad override with one line
before it prepares any data."""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import typing
from pathlib import Path
from typing import Any

import pytest
from clihelpers import run, tiny_corpus_args

from mt.command_config import TranslateConfig, validate_translate
from mt.config import TrainConfig, validate_train
from mt.config_ranges import DECODING, RANGES, TRAINER_DECODING
from mt.errors import ConfigError

NUMERIC = (int, float, list[int], list[float], int | None, float | None)
OWN_CHECKS = ("model.attention.",)  # the attention's keys: validate_model checks them itself


def numeric_keys(schema: type = TrainConfig, prefix: str = "") -> list[str]:
    """Dotted keys of every int / float / list-of-numbers field of the training schema."""
    keys = []
    for f in dataclasses.fields(schema):
        kind = typing.get_type_hints(schema)[f.name]
        if dataclasses.is_dataclass(kind):
            keys += numeric_keys(kind, f"{prefix}{f.name}.")
        elif kind in NUMERIC:
            keys.append(f"{prefix}{f.name}")
    return [k for k in keys if not k.startswith(OWN_CHECKS)]


def with_values(values: dict[str, Any]) -> TrainConfig:
    """The default training config with `values` ({dotted key: value}) set."""
    cfg = TrainConfig()
    for key, value in values.items():
        *path, name = key.split(".")
        node = cfg
        for part in path:
            node = getattr(node, part)
        assert hasattr(node, name), key
        setattr(node, name, copy.deepcopy(value))
    return cfg


def refused_at(values: dict[str, Any]) -> str:
    """The key the ConfigError of validate_train names (pytest.fail when it accepts)."""
    with pytest.raises(ConfigError) as e:
        validate_train(with_values(values))
    message = str(e.value)
    assert message.startswith("config error at `"), message
    assert "\n" not in message
    return message.split("`")[1]


# ---------------------------------------------------------------------------- one key at a time

# For each key: a value just outside its range, and an edge value inside (with what it needs).
OUT_OF_RANGE: dict[str, Any] = {
    "data.limit_train": -1, "data.max_len": 0, "data.batch_tokens": -1, "data.batch_sentences": -1,
    "data.eval_batch_sentences": -1, "data.eval_batch_rows": 0, "data.bucket_chunk_batches": 0,
    "tokenizer.vocab_size": 15, "tokenizer.character_coverage": 0.0, "tokenizer.sampling_alpha": 1.01,
    "tokenizer.sampling_nbest": -2, "tokenizer.input_sentence_size": -1, "tokenizer.seed": -1,
    "model.emb_size": 0, "model.enc_hidden": -4, "model.enc_layers": 0, "model.dec_hidden": 0,
    "model.dec_layers": 0, "model.dropout": 1.0, "model.emb_dropout": -0.1,
    "model.src_word_dropout": 1.0, "model.tgt_word_dropout": -0.1,
    "optim.lr": 0.0, "optim.betas": [0.9, 1.5], "optim.eps": 0.0, "optim.weight_decay": -0.01,
    "optim.clip_grad_norm": -1.0, "optim.warmup_steps": -1, "optim.plateau_factor": 1.0,
    "optim.plateau_patience": 0, "optim.min_lr": -1e-5, "optim.cooldown": 1.01,
    "trainer.max_steps": -1, "trainer.max_epochs": 0, "trainer.max_minutes": -1.0, "trainer.val_every": 0,
    "trainer.valid_max_sentences": -1, "trainer.early_stopping_patience": -1, "trainer.label_smoothing": 1.0,
    "trainer.teacher_forcing": 1.5, "trainer.coverage_loss_weight": -0.5, "trainer.coverage_loss_after": -1, "trainer.accumulate_batches": 0, "trainer.log_every": 0, "trainer.checkpoint_every": -1,
    "trainer.keep_last": 0, "trainer.max_nonfinite": 0, "trainer.plot_sentences": [0, -1],
    "trainer.sample_sentences": -1, "trainer.test_beam_size": 0, "trainer.length_penalty": -0.1,
    "trainer.max_len_a": -1.0, "trainer.max_len_b": -1, "trainer.max_output_tokens": 0, "trainer.min_length": -1, "trainer.no_repeat_ngram_size": -1, "trainer.repetition_penalty": 0.0,
    "trainer.max_rss_mb": -1, "alignment.threshold": 0.0, "alignment.valid_max_pairs": -1,
    "seed": -1,
}  # fmt: skip
EDGE: dict[str, Any] = {
    "data.limit_train": 0, "data.max_len": 1, "data.batch_tokens": 1, "data.batch_sentences": 0,
    "data.eval_batch_sentences": 0, "data.eval_batch_rows": 1, "data.bucket_chunk_batches": 1,
    "tokenizer.vocab_size": 16, "tokenizer.character_coverage": 1.0, "tokenizer.sampling_alpha": 1.0,
    "tokenizer.sampling_nbest": -1, "tokenizer.input_sentence_size": 0, "tokenizer.seed": 2**32 - 1,
    "model.emb_size": 1, "model.enc_hidden": 1, "model.enc_layers": 1, "model.dec_hidden": 1,
    "model.dec_layers": 1, "model.dropout": 0.0, "model.emb_dropout": 0.99,
    "model.src_word_dropout": 0.99, "model.tgt_word_dropout": 0.0,
    "optim.lr": 1e-5, "optim.betas": [0.0, 0.9999], "optim.eps": 1e-12, "optim.weight_decay": 0.0,
    "optim.clip_grad_norm": 0.0, "optim.warmup_steps": 0, "optim.plateau_factor": 0.99,
    "optim.plateau_patience": 1, "optim.min_lr": 0.0, "optim.cooldown": 1.0,
    "trainer.max_steps": 0, "trainer.max_epochs": 1, "trainer.max_minutes": 0.0, "trainer.val_every": 1,
    "trainer.valid_max_sentences": 0, "trainer.early_stopping_patience": 0, "trainer.label_smoothing": 0.0,
    "trainer.teacher_forcing": 0.0, "trainer.coverage_loss_weight": 0.0, "trainer.coverage_loss_after": 0, "trainer.accumulate_batches": 1, "trainer.log_every": 1, "trainer.checkpoint_every": 0,
    "trainer.keep_last": 1, "trainer.max_nonfinite": 1, "trainer.plot_sentences": [0],
    "trainer.sample_sentences": 0, "trainer.test_beam_size": 1, "trainer.length_penalty": 0.0,
    "trainer.max_len_a": 0.0, "trainer.max_len_b": 0, "trainer.max_output_tokens": 1, "trainer.min_length": 0, "trainer.no_repeat_ngram_size": 0, "trainer.repetition_penalty": 1e-3,
    "trainer.max_rss_mb": 0, "alignment.threshold": 1.0, "alignment.valid_max_pairs": 0,
    "seed": 0,
}  # fmt: skip


def test_every_numeric_setting_has_a_range_and_a_test_case():
    keys = numeric_keys()
    assert "optim.betas" in keys and "seed" in keys and "trainer.plot_sentences" in keys
    assert set(keys) - set(RANGES) == set(), "give these settings a range in mt/config_ranges.py"
    assert set(RANGES) - set(keys) == set(), "ranges of settings that no longer exist"
    assert set(OUT_OF_RANGE) == set(RANGES) == set(EDGE), "every range needs a case in this file"


@pytest.mark.parametrize("key", sorted(OUT_OF_RANGE))
def test_an_out_of_range_value_names_exactly_its_key(key: str):
    assert refused_at({key: OUT_OF_RANGE[key]}) == key
    with pytest.raises(ConfigError, match=re.escape(f"must be {RANGES[key]}, got ")):  # the table's range
        validate_train(with_values({key: OUT_OF_RANGE[key]}))


@pytest.mark.parametrize("key", sorted(EDGE))
def test_an_edge_value_inside_the_range_passes(key: str):
    validate_train(with_values({key: EDGE[key]}))


@pytest.mark.parametrize(
    "key, value",
    [("optim.lr", float("nan")), ("trainer.max_minutes", float("inf")), ("optim.betas", [0.9, float("nan")])],
)
def test_non_finite_values_are_refused(key: str, value: Any):
    assert refused_at({key: value}) == key
    with pytest.raises(ConfigError, match="must be finite and"):
        validate_train(with_values({key: value}))


def test_the_message_has_the_range_the_value_and_the_fix():
    with pytest.raises(ConfigError) as e:
        validate_train(with_values({"trainer.log_every": 0}))
    assert (
        str(e.value)
        == "config error at `trainer.log_every`: must be >= 1, got 0; e.g. trainer.log_every=50 (the default)"
    )
    with pytest.raises(ConfigError) as e:
        validate_train(with_values({"optim.betas": [0.9, 1.5]}))
    assert str(e.value) == (
        "config error at `optim.betas`: every value must be in [0, 1), got [0.9,1.5]; "
        "e.g. optim.betas=[0.9,0.999] (the default)"
    )  # fmt: skip


# ---------------------------------------------------------------------------- between keys


@pytest.mark.parametrize(
    "values, key",
    [
        ({"optim.min_lr": 1.0}, "optim.min_lr"),  # above optim.lr (0.002)
        ({"optim.lr": 1e-6}, "optim.min_lr"),  # below the default min_lr (1e-5)
        ({"optim.betas": [0.9]}, "optim.betas"),
        ({"optim.betas": [0.9, 0.99, 0.999]}, "optim.betas"),
        ({"optim.warmup_steps": 100}, "optim.warmup_steps"),  # plateau has no warm-up
        ({"optim.warmup_steps": 100, "optim.schedule": "none"}, "optim.warmup_steps"),
        ({"trainer.max_len_a": 0.0, "trainer.max_len_b": 1}, "trainer.max_len_b"),  # EOS only: empty outputs
        ({"trainer.max_len_a": 0.5, "trainer.max_len_b": 0}, "trainer.max_len_b"),
        ({"data.batch_tokens": 0}, "data.batch_tokens"),  # with no data.batch_sentences
        ({"optim.cooldown": 0.2, "optim.schedule": "budget"}, "optim.cooldown"),  # decays already
        ({"optim.schedule": "budget"}, "optim.cooldown"),  # against the default cooldown
    ],
)  # fmt: skip
def test_checks_between_keys_name_the_key_to_change(values: dict[str, Any], key: str):
    assert refused_at(values) == key


@pytest.mark.parametrize(
    "values",
    [
        {"optim.min_lr": 0.002},  # = optim.lr: no decay, allowed
        {"optim.cooldown": 0.2, "trainer.max_steps": 0},  # the epoch limit ends the budget
        {"optim.schedule": "inverse_sqrt", "optim.warmup_steps": 1949},
        {
            "optim.schedule": "budget",
            "optim.cooldown": 0.0,
            "optim.warmup_steps": 5000,
            "trainer.max_steps": 0,
        },  # no step limit
        {"optim.name": "adamw", "optim.schedule": "inverse_sqrt", "optim.warmup_steps": 1000},  # optim=adamw
        {
            "optim.schedule": "inverse_sqrt",
            "optim.warmup_steps": 1000,
            "trainer.max_steps": 240,
        },  # +experiment=quick
        {"trainer.max_len_a": 0.0, "trainer.max_len_b": 2},
        {"trainer.max_len_a": 0.5, "trainer.max_len_b": 1},
        {"data.batch_tokens": 0, "data.batch_sentences": 32},
    ],
)
def test_consistent_combinations_pass(values: dict[str, Any]):
    validate_train(with_values(values))


# ---------------------------------------------------------------------------- decoding: written once

DECODING_BAD = {"beam_size": 0, "length_penalty": -1.0, "max_len_a": -1.0, "max_len_b": -1, "max_output_tokens": 0,
                "max_rss_mb": -1, "min_length": -1, "no_repeat_ngram_size": -1, "repetition_penalty": 0.0}  # fmt: skip


@pytest.mark.parametrize("name", sorted(DECODING))
def test_decoding_ranges_are_the_same_in_mt_train_and_mt_translate(name: str):
    trainer_key = f"trainer.{TRAINER_DECODING.get(name, name)}"
    assert RANGES[trainer_key] is DECODING[name]  # one range, not two copies
    bad = DECODING_BAD[name]
    with pytest.raises(ConfigError, match=f"^config error at `{name}`:"):
        validate_translate(TranslateConfig(checkpoint="x.pt", **{name: bad}))
    assert refused_at({trainer_key: bad}) == trainer_key


def test_translate_refuses_a_length_limit_that_leaves_only_the_end_token():
    with pytest.raises(ConfigError, match="^config error at `max_len_b`:"):
        validate_translate(TranslateConfig(checkpoint="x.pt", max_len_a=0.0, max_len_b=1))
    validate_translate(TranslateConfig(checkpoint="x.pt", max_len_a=0.0, max_len_b=2))


# ---------------------------------------------------------------------------- what ships passes

SHIPPED = [[], ["experiment=quick"], ["optim=adamw"], ["tokenizer=bpe"], ["model=lstm"], ["data=hub"],
           ["experiment=attention_comparison"], ["trainer.max_steps=0"], ["trainer.early_stopping_patience=0"],
           ["trainer.max_minutes=14.3", "optim.schedule=budget", "optim.cooldown=0"], ["trainer.max_rss_mb=0"],
           ["trainer.max_len_a=0.5", "trainer.max_len_b=2", "trainer.plot_sentences=[]"],
           ["model.dropout=0", "model.emb_dropout=0", "trainer.val_every=100000", "trainer.checkpoint_every=4"]]  # fmt: skip


@pytest.mark.parametrize("overrides", SHIPPED, ids=lambda o: " ".join(o) or "defaults")
def test_shipped_configs_and_documented_values_pass(overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from mt.cli.common import CONFIG_DIR, register_resolvers
    from mt.command_config import register_configs

    register_resolvers()
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = OmegaConf.to_object(compose("train", overrides=overrides))
    finally:
        GlobalHydra.instance().clear()
    validate_train(cfg)  # type: ignore[arg-type]
    validate_translate(TranslateConfig(checkpoint="x.pt"))


# ---------------------------------------------------------------------------- the real command


# Should a check go missing, the run this test starts by mistake is over in seconds.
SMALL_RUN = ["trainer.device=cpu", "model.emb_size=8", "model.enc_hidden=8", "model.dec_hidden=8",
             "trainer.max_steps=2", "trainer.val_every=2", "trainer.valid_max_sentences=4", "trainer.test_beam_size=1",
             "trainer.plot_sentences=[]", "trainer.progress=false", "trainer.precision=fp32"]  # fmt: skip


@pytest.mark.parametrize(
    "override, key",
    [
        ("optim.min_lr=1", "optim.min_lr"),
        ("trainer.log_every=0", "trainer.log_every"),
        ("seed=-1", "seed"),
        ("optim.betas=[0.9,1.5]", "optim.betas"),
        ("trainer.max_len_a=-1", "trainer.max_len_a"),
        ("trainer.max_minutes=-5", "trainer.max_minutes"),
        (
            "model/attention=luong_dot model.attention.coverage=true",
            "model.attention.coverage",
        ),  # no energy layer
    ],
)
def test_mt_train_refuses_a_bad_value_in_one_line_before_preparing_data(
    override: str, key: str, tmp_path: Path
):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    args = tiny_corpus_args(corpus) + SMALL_RUN + override.split() + [f"hydra.run.dir={tmp_path / 'r'}"]
    proc = run("mt-train", args, cwd=tmp_path, timeout=120)
    err = proc.stderr.decode()
    assert proc.returncode == 2, err[-2000:]
    assert err.startswith(f"error: config error at `{key}`: "), err[-2000:]
    assert err.count("\n") == 1 and "Traceback" not in err  # one line
    assert not (corpus / "cache").exists()  # no tokenizer trained, no data cached
    assert set(os.listdir(tmp_path)) <= {"corpus", "r"}  # no runs/, data/ or outputs/ in the cwd
    if (tmp_path / "r").exists():  # Hydra's own files at most: no checkpoint, TensorBoard or config
        assert set(os.listdir(tmp_path / "r")) <= {".hydra", "train.log"}
