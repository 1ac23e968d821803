"""The decoding limits are configuration: `max_output_tokens` (the hard cap on output length)
and `max_rss_mb` (the allocator's resident-memory cap) in mt-evaluate and mt-translate, and
`trainer.max_output_tokens` for the searches of a training run. Each is range-checked, and
each reaches the code it sets."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from clihelpers import run

from mt.command_config import EvaluateConfig, TranslateConfig, validate_search
from mt.config import (
    DEFAULT_BEAM_SIZE,
    DEFAULT_LENGTH_PENALTY,
    DEFAULT_MAX_LEN_A,
    DEFAULT_MAX_LEN_B,
    DEFAULT_MAX_OUTPUT_TOKENS,
    DEFAULT_MAX_RSS_MB,
    ModelConfig,
    TrainConfig,
    TrainerConfig,
    validate_train,
)
from mt.config_ranges import TRAINER_DECODING
from mt.errors import ConfigError
from mt.search.base import SearchConfig

RUN_MAX_OUTPUT_TOKENS = 9  # the fake run's trainer.max_output_tokens, which mt-evaluate inherits


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory, small_tokenizer) -> Path:
    """A checkpoint of a randomly initialised tiny model: it almost never emits EOS, so its
    outputs run to the length limit (the worst case the cap exists for)."""
    from omegaconf import OmegaConf

    from mt.models.seq2seq import build_model
    from mt.training.checkpoint import FORMAT, atomic_torch_save

    torch.manual_seed(0)
    model_cfg = ModelConfig(emb_size=16, enc_hidden=16, dec_hidden=32, dropout=0.0, emb_dropout=0.0)
    cfg = TrainConfig(model=model_cfg, trainer=TrainerConfig(max_output_tokens=RUN_MAX_OUTPUT_TOKENS))
    tok = small_tokenizer
    model = build_model(model_cfg, tok.src_vocab_size, tok.tgt_vocab_size)
    path = tmp_path_factory.mktemp("random_ckpt") / "checkpoints" / "best.pt"
    path.parent.mkdir()
    atomic_torch_save({"format": FORMAT, "model": model.state_dict(), "progress": {"step": 0},
                       "config": OmegaConf.to_container(OmegaConf.structured(cfg)), "tokenizer": tok.to_bytes(),
                       "vocab": {"src": tok.src_vocab_size, "tgt": tok.tgt_vocab_size}}, path)  # fmt: skip
    return path


# ---------------------------------------------------------------------------- defaults, ranges


def test_defaults_are_todays_values_and_written_once():
    assert DEFAULT_MAX_OUTPUT_TOKENS == 400 and DEFAULT_MAX_RSS_MB == 2600
    for cfg in (TranslateConfig(), TrainerConfig(), SearchConfig()):
        assert cfg.max_output_tokens == DEFAULT_MAX_OUTPUT_TOKENS
    assert EvaluateConfig().max_output_tokens is None  # null = the run's trainer.max_output_tokens
    assert TranslateConfig().max_rss_mb == EvaluateConfig().max_rss_mb == DEFAULT_MAX_RSS_MB


def test_search_defaults_agree_across_the_schemas():
    """The trainer's final test, mt-translate and the search itself start from one set of
    decoding defaults (mt.config's DEFAULT_*), so a default changed once changes all three."""
    search = SearchConfig()
    assert (search.beam_size, search.length_penalty, search.max_len_a, search.max_len_b) == (
        DEFAULT_BEAM_SIZE, DEFAULT_LENGTH_PENALTY, DEFAULT_MAX_LEN_A, DEFAULT_MAX_LEN_B)  # fmt: skip
    trainer, translate = TrainerConfig(), TranslateConfig()
    for f in dataclasses.fields(SearchConfig):
        expected = getattr(search, f.name)
        assert getattr(translate, f.name) == expected, f.name
        trainer_key = TRAINER_DECODING.get(f.name, f.name)
        if hasattr(trainer, trainer_key):
            assert getattr(trainer, trainer_key) == expected, trainer_key
    assert trainer.test_beam_size == DEFAULT_BEAM_SIZE


def test_translate_yaml_matches_the_schema_defaults():
    """mt/configs/translate.yaml lists every key (it has no schema in its defaults list): its
    values must be the schema's, so a default changed in mt/config.py cannot silently differ."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from mt.cli.common import CONFIG_DIR

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            composed = OmegaConf.to_container(compose("translate", overrides=["checkpoint=x.pt"]))
    finally:
        GlobalHydra.instance().clear()
    defaults = dataclasses.asdict(TranslateConfig(checkpoint="x.pt"))
    assert {k: v for k, v in composed.items() if k in defaults} == {
        k: v for k, v in defaults.items() if k in composed
    }
    assert {"max_output_tokens", "max_rss_mb"} <= composed.keys()


@pytest.mark.parametrize(
    "schema, key, value",
    [
        (TranslateConfig, "max_output_tokens", 0),
        (TranslateConfig, "max_rss_mb", -1),
        (EvaluateConfig, "max_output_tokens", 0),
        (EvaluateConfig, "max_rss_mb", -1),
    ],
)
def test_search_keys_are_range_checked(schema, key: str, value: int):
    # evaluate's decoding keys are validated once resolved from the run: give them values
    resolved = dict(beam_size=5, length_penalty=1.0, max_len_a=1.5, max_len_b=10, max_output_tokens=400,
                    min_length=0, no_repeat_ngram_size=0, repetition_penalty=1.0,
                    precision="bf16") if schema is EvaluateConfig else {}  # fmt: skip
    cfg = schema(checkpoint="x.pt", **{**resolved, key: value})
    with pytest.raises(ConfigError, match=f"config error at `{key}`"):
        validate_search(cfg)
    validate_search(dataclasses.replace(cfg, **{key: 1 if key == "max_output_tokens" else 0}))


def test_trainer_max_output_tokens_is_range_checked_and_reaches_the_searches():
    cfg = TrainConfig(trainer=TrainerConfig(max_output_tokens=0))
    with pytest.raises(ConfigError, match="config error at `trainer.max_output_tokens`"):
        validate_train(cfg)
    t = TrainerConfig(max_output_tokens=17, test_beam_size=3)
    assert SearchConfig.from_trainer(t).max_output_tokens == 17  # final test decoding
    assert SearchConfig.from_trainer(t, beam_size=1) == SearchConfig(  # validation decoding
        beam_size=1, length_penalty=t.length_penalty, max_len_a=t.max_len_a, max_len_b=t.max_len_b,
        precision=t.precision, max_output_tokens=17,
    )  # fmt: skip


@pytest.mark.parametrize(
    "cmd, override",
    [
        ("mt-translate", "max_output_tokens=0"),
        ("mt-translate", "max_rss_mb=-5"),
        ("mt-evaluate", "max_output_tokens=0"),
        ("mt-evaluate", "max_rss_mb=-5"),
        ("mt-train", "trainer.max_output_tokens=0"),
        ("mt-translate", "repetition_penalty=0"),  # the other rule keys: test_config_ranges.py
    ],
)
def test_commands_refuse_an_out_of_range_key(
    cmd: str, override: str, random_checkpoint: Path, tmp_path: Path
):
    args = [override] + ([f"checkpoint={random_checkpoint}", "device=cpu"] if cmd != "mt-train" else [])
    proc = run(
        cmd, args + [f"hydra.run.dir={tmp_path / 'r'}"], cwd=tmp_path, stdin=b"ein Hund\n", timeout=120
    )
    err = proc.stderr.decode()
    assert proc.returncode == 2, err[-2000:]
    assert f"config error at `{override.split('=')[0]}`" in err, err[-2000:]
    assert "Traceback" not in err


# ---------------------------------------------------------------------------- values reach their use


def test_translate_caps_outputs_at_max_output_tokens(random_checkpoint: Path, tmp_path: Path):
    """A real `mt-translate max_output_tokens=5`: sources whose length limit (1.5 * |src| + 10)
    is far above 5 give outputs of at most 5 tokens (EOS included), and the random model's
    outputs, which do not end, stop at exactly 5."""
    src = "ein Hund läuft über die Wiese\nzwei Kinder spielen im Schnee und lachen laut\nja\n"
    args = [f"checkpoint={random_checkpoint}", "device=cpu", "beam_size=2", "n_best=2", "max_output_tokens=5",
            "+attention=true"]  # fmt: skip
    proc = run("mt-translate", args, cwd=tmp_path, stdin=src.encode(), timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    assert len(proc.stdout.decode().splitlines()) == 3
    records = [json.loads(x) for x in (tmp_path / "translate.attention.jsonl").read_text().splitlines()]
    hyps = [h for r in records for h in r["hypotheses"]]
    assert len(hyps) == 6
    assert all(len(h["weights"]) == len(h["output"]) <= 5 for h in hyps)
    assert all(len(h["output"]) == 5 for h in hyps if h["output"][-1:] != ["</s>"])
    assert max(len(h["output"]) for h in hyps) == 5


@pytest.mark.slow  # four runs of mt-translate
def test_translate_honours_the_search_rules(random_checkpoint: Path, tmp_path: Path):
    """A real `mt-translate no_repeat_ngram_size=1`, greedy and beam: no output token twice,
    where the random model's plain outputs repeat."""
    src = "ein Hund läuft über die Wiese\nzwei Kinder spielen im Schnee und lachen laut\n"

    def outputs(*extra: str) -> list[list[str]]:
        args = [
            f"checkpoint={random_checkpoint}",
            "device=cpu",
            "+attention=true",
            "max_output_tokens=12",
            *extra,
        ]
        proc = run("mt-translate", args, cwd=tmp_path, stdin=src.encode(), timeout=120)
        assert proc.returncode == 0, proc.stderr.decode()[-3000:]
        records = (tmp_path / "translate.attention.jsonl").read_text().splitlines()
        return [h["output"] for r in map(json.loads, records) for h in r["hypotheses"]]

    for beam in ("beam_size=1", "beam_size=3"):
        assert any(len(set(o)) < len(o) for o in outputs(beam))
        assert all(len(set(o)) == len(o) for o in outputs(beam, "no_repeat_ngram_size=1"))


class _Stop(Exception):
    """Raised by the fake tune_allocator: the test has seen what it needs."""


def test_evaluate_honours_max_rss_mb_and_the_runs_max_output_tokens(
    random_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    import mt.cli.evaluate as cli
    import mt.runtime

    seen: dict = {}

    def fake_tune(rss_limit_mb: int = 0) -> bool:
        seen["max_rss_mb"] = rss_limit_mb
        raise _Stop

    def spy_validate(cfg, prefix: str = "") -> None:
        seen["max_output_tokens"] = cfg.max_output_tokens
        validate_search(cfg, prefix)

    monkeypatch.setattr(mt.runtime, "tune_allocator", fake_tune)
    monkeypatch.setattr(cli, "validate_search", spy_validate)
    for given, expect in ((None, RUN_MAX_OUTPUT_TOKENS), (33, 33)):
        with pytest.raises(_Stop):
            cfg = EvaluateConfig(checkpoint=str(random_checkpoint), device="cpu", max_rss_mb=1234,
                                 max_output_tokens=given)  # fmt: skip
            cli.evaluate(cfg, tmp_path)
        assert seen == {"max_rss_mb": 1234, "max_output_tokens": expect}


def test_translate_honours_max_rss_mb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import mt.cli.translate as cli
    import mt.runtime

    seen = []

    def fake_tune(rss_limit_mb: int = 0) -> bool:
        seen.append(rss_limit_mb)
        raise _Stop

    monkeypatch.setattr(mt.runtime, "tune_allocator", fake_tune)
    with pytest.raises(_Stop):
        cli.translate(TranslateConfig(checkpoint="x.pt", device="cpu", max_rss_mb=0))
    assert seen == [0]
