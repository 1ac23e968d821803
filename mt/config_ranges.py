"""The range of every numeric setting, in one table: `RANGES` maps a training key
(`optim.lr`, `trainer.log_every`, ...) to its allowed values, and `DECODING` holds the decoding
ranges that `mt-train`'s final test (`trainer.*`), `mt-evaluate` and `mt-translate` share,
written once. The ``validate_*`` functions of `mt.config` and `mt.command_config` check a
config section against them with :func:`check_section`; checks between two keys (`optim.min_lr`
<= `optim.lr`, ...) are next to them. An out-of-range value is one line:
``config error at `trainer.log_every`: must be >= 1, got 0; e.g. trainer.log_every=50 (the default)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from mt.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """lo <= value <= hi (strict at an open end; None = unbounded), finite; for a list, each
    element. `note` says what an edge value means (e.g. "0 = off")."""

    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False
    open_hi: bool = False
    note: str = ""

    def holds(self, value: float) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return False
        above = self.lo is None or (value > self.lo if self.open_lo else value >= self.lo)
        below = self.hi is None or (value < self.hi if self.open_hi else value <= self.hi)
        return above and below

    def __str__(self) -> str:
        lo, hi = _num(self.lo), _num(self.hi)
        if self.hi is None and (self.lo, self.open_lo) == (0, True):
            text = "positive"
        elif self.hi is None:
            text = f"{'>' if self.open_lo else '>='} {lo}"
        elif self.lo is None:
            text = f"{'<' if self.open_hi else '<='} {hi}"
        else:
            text = f"in {'(' if self.open_lo else '['}{lo}, {hi}{')' if self.open_hi else ']'}"
        return text + (f" ({self.note})" if self.note else "")


def _num(x: float | None) -> float | None:
    """1.0 -> 1 in messages."""
    return int(x) if isinstance(x, float) and x.is_integer() else x


def at_least(lo: float, note: str = "") -> Range:
    return Range(lo=lo, note=note)


def positive(note: str = "") -> Range:
    return Range(lo=0, open_lo=True, note=note)


def between(lo: float, hi: float, ends: str = "[]", note: str = "") -> Range:
    """`ends` is how the interval is written: "[]", "[)", "(]" or "()"."""
    return Range(lo=lo, hi=hi, open_lo=ends[0] == "(", open_hi=ends[1] == ")", note=note)


# Decoding, and the memory cap of every command: mt-evaluate / mt-translate keys, and the
# trainer's final test under the same names (but `trainer.test_beam_size`).
DECODING: dict[str, Range] = {
    "beam_size": at_least(1, "1 = greedy search"),
    "length_penalty": at_least(0.0, "GNMT alpha; 0 = no length normalisation"),
    "max_len_a": at_least(0.0, "outputs end at max_len_a * source length + max_len_b tokens"),
    "max_len_b": at_least(0),
    "max_output_tokens": at_least(1),
    "min_length": at_least(0, "0 = off: EOS allowed from the first output token"),
    "no_repeat_ngram_size": at_least(0, "0 = off"),
    "repetition_penalty": positive("1 = off; > 1 discourages repeated tokens"),
    "max_rss_mb": at_least(0, "0 = no cap"),
}
# The vocabulary shortlist of mt-evaluate / mt-translate (`shortlist=FILE`).
SHORTLIST: dict[str, Range] = {
    "shortlist_frequent": at_least(0, "the most frequent target subwords every batch may write"),
    "shortlist_per_source": at_least(0, "translations per source subword, at most the file's --keep"),
}
TRAINER_DECODING = {"beam_size": "test_beam_size"}  # decoding key -> its name under trainer.
SEED = between(0, 2**32 - 1, note="what NumPy and sentencepiece accept")
UNIT_OPEN = between(0.0, 1.0, "[)")

RANGES: dict[str, Range] = {
    "data.limit_train": at_least(0, "0 = all training pairs"),
    "data.max_len": positive(),
    "data.batch_tokens": at_least(0, "0 only with data.batch_sentences > 0"),
    "data.batch_sentences": at_least(0, "0 = batches of data.batch_tokens"),
    "data.eval_batch_sentences": at_least(0, "0 = from data.eval_batch_rows"),
    "data.eval_batch_rows": positive(),
    "data.bucket_chunk_batches": positive(),
    "tokenizer.vocab_size": at_least(16),
    "tokenizer.character_coverage": between(0.0, 1.0, "(]"),
    "tokenizer.sampling_alpha": between(0.0, 1.0, note="0 = no subword sampling"),
    "tokenizer.sampling_nbest": at_least(-1, "-1 = all segmentations"),
    "tokenizer.input_sentence_size": at_least(0, "0 = every pair"),
    "tokenizer.seed": SEED,
    "model.emb_size": positive(),
    "model.enc_hidden": positive(),
    "model.enc_layers": positive(),
    "model.dec_hidden": positive(),
    "model.dec_layers": positive(),
    "model.dropout": UNIT_OPEN,
    "model.emb_dropout": UNIT_OPEN,
    "model.src_word_dropout": UNIT_OPEN,
    "model.tgt_word_dropout": UNIT_OPEN,
    "optim.lr": positive(),
    "optim.betas": UNIT_OPEN,  # each of the two: what torch's Adam accepts
    "optim.eps": positive(),
    "optim.weight_decay": at_least(0.0, "0 = none"),
    "optim.clip_grad_norm": at_least(0.0, "0 = no clipping"),
    "optim.warmup_steps": at_least(0, "0 = no warm-up"),
    "optim.plateau_factor": between(0.0, 1.0, "()"),
    "optim.plateau_patience": at_least(1),
    "optim.min_lr": at_least(0.0),
    "optim.cooldown": between(0.0, 1.0, note="0 = off; 1 = the whole budget"),
    "trainer.max_steps": at_least(0, "0 = no step limit"),
    "trainer.max_epochs": at_least(1),
    "trainer.max_minutes": at_least(0.0, "0 = no time limit"),
    "trainer.val_every": at_least(1),
    "trainer.valid_max_sentences": at_least(0, "0 = the whole validation split"),
    "trainer.early_stopping_patience": at_least(0, "0 = off"),
    "trainer.label_smoothing": UNIT_OPEN,
    "trainer.teacher_forcing": between(0.0, 1.0),
    "trainer.coverage_loss_weight": at_least(0.0, "0 = off"),
    "trainer.coverage_loss_after": at_least(0, "0 = from the first update"),
    "trainer.accumulate_batches": at_least(1, "1 = an update per batch"),
    "trainer.log_every": at_least(1),
    "trainer.checkpoint_every": at_least(0, "0 = only at validations"),
    "trainer.keep_last": at_least(1),
    "trainer.max_nonfinite": at_least(1),
    "trainer.plot_sentences": at_least(0, "indices into the validation split"),
    "trainer.sample_sentences": at_least(0, "0 = none"),
    **{f"trainer.{TRAINER_DECODING.get(k, k)}": r for k, r in DECODING.items()},
    "alignment.threshold": between(0.0, 1.0, "(]"),
    "alignment.valid_max_pairs": at_least(0, "0 = all pairs"),
    "seed": SEED,
}


def _override(value: Any) -> str:
    """A value as written on the command line: [0.9,0.999], 1e-08, 50."""
    return f"[{','.join(map(str, value))}]" if isinstance(value, list | tuple) else str(value)


def check_range(key: str, value: Any, rule: Range, default: Any = None) -> None:
    """Raise ConfigError `config error at `key`: must be RANGE, got VALUE; e.g. key=DEFAULT`."""
    values = value if isinstance(value, list | tuple) else [value]
    if all(rule.holds(v) for v in values):
        return
    finite = all(not isinstance(v, float) or math.isfinite(v) for v in values)
    must = f"must be {'' if finite else 'finite and '}{rule}"
    must = f"every value {must}" if isinstance(value, list | tuple) else must
    fix = f"; e.g. {key}={_override(default)} (the default)" if default is not None else ""
    raise ConfigError(f"config error at `{key}`: {must}, got {_override(value)}{fix}")


def _default(obj: Any, name: str) -> Any:
    if not dataclasses.is_dataclass(obj):
        return None
    f = next(f for f in dataclasses.fields(obj) if f.name == name)
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def check_section(obj: Any, section: str, table: dict[str, Range] = RANGES) -> None:
    """Check each field of `obj` that `table` lists as `section.FIELD` ("" = top-level keys)."""
    prefix = f"{section}." if section else ""
    for key, rule in table.items():
        name = key[len(prefix) :]
        if key.startswith(prefix) and "." not in name:
            check_range(key, getattr(obj, name), rule, _default(obj, name))


def check_decoding(cfg: Any, prefix: str = "") -> None:
    """The decoding settings of mt-evaluate / mt-translate (`DECODING`), and their length limit."""
    for name, rule in DECODING.items():
        check_range(prefix + name, getattr(cfg, name), rule, _default(cfg, name))
    check_length_limit(cfg.max_len_a, cfg.max_len_b, prefix + "max_len_b")


def check_length_limit(a: float, b: int, key: str) -> None:
    """Output length (EOS included) is at most ceil(a * source length + b): a + b <= 1 leaves
    no room for a word after a one-token source, whose output would be empty."""
    if not a + b > 1:
        raise ConfigError(
            f"config error at `{key}`: max_len_a + max_len_b must be > 1, got {a} + {b}: the output "
            "limit max_len_a * source length + max_len_b counts the end token, so raise either"
        )
