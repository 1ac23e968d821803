"""Ensemble decoding: several trained models searched as one. At each step every model reads
the same previous tokens, and the ensemble's next-token scores are the mean of the models'
log-probabilities (log of the normalised product of their distributions, as OpenNMT-py and
Marian combine them); its attention is the mean of theirs (for plots and alignments).
Greedy and beam search take an `Ensemble` wherever they take a `Seq2Seq`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mt.models.decoder import DecoderState, EncoderContext
from mt.models.seq2seq import Seq2Seq


@dataclass
class EnsembleContext:
    """Each model's encoder context."""

    contexts: tuple[EncoderContext, ...]

    def select(self, idx: Tensor) -> EnsembleContext:
        """Rows `idx` (N,) of every model's context."""
        return EnsembleContext(tuple(c.select(idx) for c in self.contexts))


@dataclass
class EnsembleState:
    """Each model's decoder state."""

    states: tuple[DecoderState, ...]

    def select(self, idx: Tensor) -> EnsembleState:
        """Rows `idx` (N,) of every model's state."""
        return EnsembleState(tuple(s.select(idx) for s in self.states))


class Ensemble(nn.Module):
    """Models with one target vocabulary, decoded together (the search interface of Seq2Seq)."""

    def __init__(self, models: Sequence[Seq2Seq]) -> None:
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        sizes = sorted({m.tgt_vocab_size for m in models})
        if len(sizes) > 1:
            raise ValueError(f"ensemble models must share the target vocabulary; their sizes differ: {sizes}")
        self.models = nn.ModuleList(models)

    @property
    def tgt_vocab_size(self) -> int:
        """V, the models' shared output size."""
        return self.models[0].tgt_vocab_size

    def encode(
        self, src: Tensor, src_lens: Tensor, src_mask: Tensor, vocab: Tensor | None = None
    ) -> tuple[EnsembleContext, EnsembleState]:
        """Every model's context and initial state for src (B, S) (on a shortlist `vocab`: see
        `Seq2Seq.encode`)."""
        pairs = [m.encode(src, src_lens, src_mask, vocab) for m in self.models]
        return EnsembleContext(tuple(c for c, _ in pairs)), EnsembleState(tuple(s for _, s in pairs))

    def next_scores(
        self, prev: Tensor, state: EnsembleState, ctx: EnsembleContext
    ) -> tuple[Tensor, Tensor, EnsembleState]:
        """prev (B,) -> mean log-probabilities (B, V), mean attention (B, S), the states. One
        model gives its own logits and attention (the search normalises them): an ensemble of
        one decodes exactly as that model."""
        outputs = [
            m.next_scores(prev, s, c) for m, s, c in zip(self.models, state.states, ctx.contexts, strict=True)
        ]
        states = EnsembleState(tuple(s for _, _, s in outputs))
        if len(outputs) == 1:
            logits, weights, _ = outputs[0]
            return logits, weights, states
        logp = torch.stack([F.log_softmax(logits, dim=-1) for logits, _, _ in outputs]).mean(0)  # (B, V)
        weights = torch.stack([w.float() for _, w, _ in outputs]).mean(0)  # (B, S)
        return logp, weights, states
