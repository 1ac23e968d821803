"""What attention learned, in five numbers: entropy, peak weight, monotonicity and coverage of
the attention matrices that decoding returns (`Hypothesis.attention`).

Each matrix A of a sentence is (T, S): row t holds the weights a_ts when emitting output token t
(the output EOS included when the hypothesis finished), column s a real source subword, the last
column being the source EOS; every row sums to 1. With N sentences, T_n outputs and S_n sources:

    attention_entropy  (1 / sum_n T_n) sum_n sum_t H_nt,   H_nt = -sum_s a_ts ln a_ts   (0 ln 0 = 0)
        in nats, NOT normalised: uniform attention over S positions gives ln S, a one-hot row 0.
        (Normalising by ln S would hide that longer sources spread attention over more words.)
    attention_max      (1 / sum_n T_n) sum_n sum_t max_s a_ts
    monotonicity       mean over sentences with T_n >= 2 of Spearman's rho between the output
        position t and the argmax source position p_t = argmax_s a_ts (ties: first position;
        rank ties in p: average ranks, i.e. Pearson's r of the ranks). A sentence whose argmax
        never moves (all p_t equal: attention collapsed onto one word) has no rank order and
        counts as 0. Spearman rather than the share of non-decreasing steps p_t <= p_t+1: that
        share gives a collapsed attention the best score, 1, and sees only neighbours, so two
        swapped halves (p = 3 4 5 0 1 2) still get 4/5; rho is 1 only for a strictly increasing
        p_t, -1 for a reversed one, and -0.54 for the swapped halves.
    dropped_words      share of source words (all sentences pooled, the source EOS left out)
        whose coverage c_s = sum_t a_ts is < 0.1: the translation (nearly) never looked at them
    repeated_words     share of those source words with c_s > 1.5: looked at about twice or more

The matrices are padded into chunks of sentences and computed with tensor operations only, no
Python loop over tokens or positions; weights in float32 (as decoding returns them), sums over
tokens and sentences in float64. An empty list gives 0.0 for every value.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

DROPPED_BELOW = 0.1
REPEATED_ABOVE = 1.5
KEYS = ("attention_entropy", "attention_max", "monotonicity", "dropped_words", "repeated_words")


def attention_diagnostics(attentions: Sequence[Tensor | np.ndarray], chunk: int = 256) -> dict[str, float]:
    """The five diagnostics (module docstring) of a list of (T_n, S_n) attention matrices."""
    sums = dict.fromkeys(
        ("tokens", "entropy", "max", "rho", "sentences", "words", "dropped", "repeated"), 0.0
    )
    mats = [torch.as_tensor(a).float() for a in attentions]
    for i in range(0, len(mats), chunk):
        for key, value in _chunk_sums(mats[i : i + chunk]).items():
            sums[key] += value
    tokens, sentences, words = max(sums["tokens"], 1), max(sums["sentences"], 1), max(sums["words"], 1)
    return {
        "attention_entropy": sums["entropy"] / tokens,
        "attention_max": sums["max"] / tokens,
        "monotonicity": sums["rho"] / sentences,
        "dropped_words": sums["dropped"] / words,
        "repeated_words": sums["repeated"] / words,
    }


def _chunk_sums(mats: list[Tensor]) -> dict[str, float]:
    """Sums over a few sentences: padded to (N, T, S) with zeros, masks for the real cells."""
    if any(m.dim() != 2 for m in mats):
        raise ValueError("each attention matrix must be 2-D (output tokens, source positions)")
    t_len = torch.tensor([m.shape[0] for m in mats])
    s_len = torch.tensor([m.shape[1] for m in mats])
    n, t_max, s_max = len(mats), int(t_len.max()), max(int(s_len.max()), 1)
    a = torch.zeros(n, t_max, s_max)
    for k, m in enumerate(mats):
        a[k, : m.shape[0], : m.shape[1]] = m
    rows = torch.arange(t_max) < t_len[:, None]  # (N, T) real output tokens
    words = torch.arange(s_max) < (s_len - 1)[:, None]  # (N, S) real source words, EOS excluded

    entropy = -torch.special.xlogy(a, a).sum(-1)  # (N, T); padding rows are all 0 -> 0
    peak = a.amax(-1)  # (N, T)

    # Spearman's rho per sentence: Pearson's r of the (average) ranks of p_t against those of t.
    p = torch.where(rows, a.argmax(-1), s_max)  # (N, T); padding sorts after every real position
    ordered = p.sort(-1).values
    below = torch.searchsorted(ordered, p)  # #{u: p_u < p_t}
    up_to = torch.searchsorted(ordered, p, right=True)  # #{u: p_u <= p_t}
    rank = (below + up_to - 1).to(torch.float64) / 2  # (N, T), average ranks from 0
    pos = torch.arange(t_max, dtype=torch.float64).expand(n, t_max)
    cnt = t_len.clamp(min=1).to(torch.float64)
    dr = torch.where(rows, rank - (rank * rows).sum(-1, keepdim=True) / cnt[:, None], 0.0)
    dq = torch.where(rows, pos - ((cnt - 1) / 2)[:, None], 0.0)
    var_r, var_q = (dr * dr).sum(-1), (dq * dq).sum(-1)
    moving = var_r > 1e-9  # a constant argmax has no rank order: rho counts as 0
    rho = torch.where(moving, (dr * dq).sum(-1) / (var_r * var_q).clamp(min=1e-300).sqrt(), 0.0)
    scored = t_len >= 2

    coverage = a.sum(1)  # (N, S)
    return {
        "tokens": float(t_len.sum()),
        "entropy": float(entropy[rows].sum(dtype=torch.float64)),
        "max": float(peak[rows].sum(dtype=torch.float64)),
        "rho": float(rho[scored].sum()),
        "sentences": float(scored.sum()),
        "words": float(words.sum()),
        "dropped": float(((coverage < DROPPED_BELOW) & words).sum()),
        "repeated": float(((coverage > REPEATED_ABOVE) & words).sum()),
    }
