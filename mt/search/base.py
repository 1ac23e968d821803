"""What greedy and beam search share: how to decode (`SearchConfig`), what comes out
(`Hypothesis`), the per-sentence output length limit and the GNMT length penalty."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

import torch
from torch import Tensor

from mt.config import (
    DEFAULT_BEAM_SIZE,
    DEFAULT_LENGTH_PENALTY,
    DEFAULT_MAX_LEN_A,
    DEFAULT_MAX_LEN_B,
    DEFAULT_MAX_OUTPUT_TOKENS,
)
from mt.config_ranges import TRAINER_DECODING


class SearchModel(Protocol):
    """What greedy and beam search need of a model: a `Seq2Seq`, or an `Ensemble` of them."""

    @property
    def tgt_vocab_size(self) -> int: ...

    def encode(
        self, src: Tensor, src_lens: Tensor, src_mask: Tensor, vocab: Tensor | None = None
    ) -> tuple[Any, Any]:
        """(context, state) for src (B, S); both have ``select(idx)`` over rows. With `vocab`
        (V',), sorted target ids (a shortlist), the scores are over those ids only."""
        ...

    def next_scores(self, prev: Tensor, state: Any, ctx: Any) -> tuple[Tensor, Tensor, Any]:
        """prev (B,) -> next-token scores (B, V) float32 ((B, V') on a shortlist), attention
        (B, S), the new state."""
        ...


@dataclass
class SearchConfig:
    """How to decode: beam_size 1 is greedy search.

    Output length (EOS included) is at most ceil(max_len_a * |src| + max_len_b), and never more
    than `max_output_tokens`, whatever the source length: a pathological input (say a
    100,000-character line) must not turn into tens of thousands of decoder steps.
    `min_length`, `no_repeat_ngram_size` and `repetition_penalty` are the rules of
    `mt.search.rules` (0, 0 and 1.0: off).
    """

    beam_size: int = DEFAULT_BEAM_SIZE
    n_best: int = 1
    length_penalty: float = DEFAULT_LENGTH_PENALTY
    max_len_a: float = DEFAULT_MAX_LEN_A
    max_len_b: int = DEFAULT_MAX_LEN_B
    precision: str = "bf16"
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS
    min_length: int = 0
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0

    @classmethod
    def from_settings(
        cls, settings: Any, names: dict[str, str] | None = None, **changes: Any
    ) -> SearchConfig:
        """The search of a command's settings (mt-evaluate, mt-translate: the field names here;
        `names` maps a field to another name), fields they lack at their defaults."""
        names = names or {}
        found = {f.name: names.get(f.name, f.name) for f in fields(cls)}
        search = cls(**{k: getattr(settings, n) for k, n in found.items() if hasattr(settings, n)})
        return replace(search, **changes)

    @classmethod
    def from_trainer(cls, t: Any, **changes: Any) -> SearchConfig:
        """The final-evaluation search of a run's trainer settings (`trainer.test_beam_size`, ...)."""
        return cls.from_settings(t, TRAINER_DECODING, **changes)


@dataclass
class Hypothesis:
    """One output: ids without BOS/EOS, its score, and attention (len(ids) [+1 for EOS], S)."""

    tokens: list[int]
    score: float
    attention: Tensor  # (T_out, S_real) float32 on CPU; row i = weights when emitting output i
    finished: bool  # ended with EOS (False when cut at the length limit)


def max_lengths(src_lens: Tensor, search: SearchConfig) -> Tensor:
    """Per-sentence output length limit (incl. EOS), src_lens (B,) -> (B,) long:
    ceil(max_len_a * |src| + max_len_b), in [1, max_output_tokens]."""
    limit = torch.ceil(src_lens.float() * search.max_len_a + search.max_len_b).long()
    return torch.clamp(limit, min=1, max=search.max_output_tokens)


def length_penalty(length: Tensor, alpha: float) -> Tensor:
    """GNMT length penalty ((5 + len) / 6) ** alpha (Wu et al., 2016)."""
    return ((5.0 + length.float()) / 6.0) ** alpha
