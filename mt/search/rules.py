"""Rules on the next token that greedy and beam search apply to the output layer's logits
before the softmax, each off by default (as in fairseq, JoeyNMT and Hugging Face generate):

- minimum length m (``min_length``): EOS gets no probability while fewer than m tokens are out
  (the length limit still ends a hypothesis);
- no repeated n-gram (``no_repeat_ngram_size`` n): a token that would complete an n-gram the
  hypothesis already holds gets no probability;
- repetition penalty θ (``repetition_penalty``, Keskar et al. 2019, "CTRL"): the logit l of a
  token the hypothesis already holds becomes l / θ if l > 0, else l · θ (θ > 1 discourages
  repeats, θ = 1 is off).

Scores of hypotheses are the log-probabilities after the rules.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor

from mt.data.tokenizer import EOS_ID


class Rules(Protocol):
    """The settings the rules read (a SearchConfig)."""

    min_length: int
    no_repeat_ngram_size: int
    repetition_penalty: float


def needs_history(rules: Rules) -> bool:
    """Whether the rules read the tokens each hypothesis has produced so far."""
    return rules.no_repeat_ngram_size > 0 or rules.repetition_penalty != 1.0


def any_rule(rules: Rules) -> bool:
    """Whether any rule is on."""
    return rules.min_length > 0 or needs_history(rules)


def apply_rules(logits: Tensor, history: Tensor, rules: Rules, vocab: Tensor | None = None) -> Tensor:
    """Logits (N, V) of the next token after `history` (N, t): the t tokens each row has
    produced (no BOS), the same t for every row. Returns new logits (N, V). On a shortlist,
    logits are (N, V') over the sorted ids `vocab` (V',), which hold every token of `history`."""
    eos = EOS_ID
    if vocab is not None:  # token ids -> their columns in the shortlist's logits
        history = torch.searchsorted(vocab, history)
        eos = int(torch.searchsorted(vocab, torch.tensor(EOS_ID, device=vocab.device)))
    t = history.size(1)
    if rules.repetition_penalty != 1.0 and t > 0:
        seen = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, history, True)  # (N, V)
        theta = rules.repetition_penalty
        logits = torch.where(seen, torch.where(logits > 0, logits / theta, logits * theta), logits)
    n = rules.no_repeat_ngram_size
    if n > 0 and t >= n:
        grams = history.unfold(1, n, 1)  # (N, t - n + 1, n): every n-gram so far
        prefix = history[:, t - n + 1 :]  # (N, n - 1): what the next token would extend
        repeats = (grams[..., :-1] == prefix[:, None, :]).all(-1)  # (N, t - n + 1)
        ban = torch.where(repeats, -math.inf, 0.0).to(logits.dtype)
        logits = logits.scatter_add(1, grams[..., -1], ban)  # -inf on each n-gram's last token
    if t < rules.min_length:
        logits = logits.index_fill(1, torch.tensor([eos], device=logits.device), -math.inf)
    return logits
