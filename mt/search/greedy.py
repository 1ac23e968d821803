"""Batched greedy search over a Seq2Seq model (or an ensemble of them).

Each step is a handful of tensor operations over every sentence still decoding, with no
Python loop over sentences. Sentences that are done leave the batch (their rows are dropped
from the encoder context and the decoder state), so they stop costing compute.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from mt.data.collate import Batch
from mt.data.tokenizer import BOS_ID, EOS_ID
from mt.search.base import Hypothesis, SearchConfig, SearchModel, max_lengths
from mt.search.rules import any_rule, apply_rules


@torch.no_grad()
def greedy_search(
    model: SearchModel, batch: Batch, search: SearchConfig, vocab: Tensor | None = None
) -> list[Hypothesis]:
    """Greedy decoding of `batch` (src (B, S)) -> one hypothesis per sentence, in order.

    Uses `search.max_len_a`, `max_len_b` and `max_output_tokens` (the length limit) and the
    rules of `mt.search.rules`; the beam settings are ignored. Score = sum of log-probabilities
    of the chosen tokens. With `vocab` (V',), the sorted target ids of a shortlist
    (`mt.search.shortlist`), only those can be chosen, their probabilities normalised over them.
    """
    src, src_lens = batch.src, batch.src_lens
    B, S = src.shape
    device = src.device
    ctx, state = model.encode(src, src_lens, batch.src_mask, vocab)
    limit = max_lengths(src_lens, search).to(device)  # (B,)
    T = int(limit.max())
    out_tokens = torch.full((B, T), EOS_ID, dtype=torch.long, device=device)
    out_att = torch.zeros(B, T, S, device=device)
    scores = torch.zeros(B, device=device)
    lengths = torch.zeros(B, dtype=torch.long, device=device)
    ended = torch.zeros(B, dtype=torch.bool, device=device)
    alive = torch.arange(B, device=device)  # original rows still decoding
    prev = torch.full((B,), BOS_ID, dtype=torch.long, device=device)
    rules = any_rule(search)
    for t in range(T):
        logits, weights, state = model.next_scores(prev, state, ctx)  # (n, V), (n, S)
        if rules:
            logits = apply_rules(logits, out_tokens[alive, :t], search, vocab)
        logp = F.log_softmax(logits, dim=-1)  # (n, V) or (n, V')
        best, tok = logp.max(dim=-1)  # (n,)
        if vocab is not None:
            tok = vocab[tok]  # shortlist column -> token id
        out_tokens[alive, t] = tok
        out_att[alive, t] = weights.float()
        scores[alive] += best
        is_eos = tok == EOS_ID
        stop = is_eos | (t + 1 >= limit[alive])
        if stop.any():
            done = alive[stop]
            lengths[done] = t + 1
            ended[done] = is_eos[stop]
            keep = (~stop).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            alive, tok = alive[keep], tok[keep]
            state, ctx = state.select(keep), ctx.select(keep)
        prev = tok
    return _collect(out_tokens, out_att, scores, lengths, ended, src_lens)


def _collect(
    tokens: Tensor, att: Tensor, scores: Tensor, lengths: Tensor, ended: Tensor, src_lens: Tensor
) -> list[Hypothesis]:
    """Per sentence a Hypothesis from tokens (B, T), att (B, T, S), scores, lengths, ended (B,)."""
    tokens, att, scores, lengths, ended = (x.cpu() for x in (tokens, att, scores, lengths, ended))
    hyps = []
    for b in range(tokens.size(0)):
        n, fin = int(lengths[b]), bool(ended[b])
        ids = tokens[b, : n - 1 if fin else n].tolist()
        hyps.append(Hypothesis(ids, float(scores[b]), att[b, :n, : int(src_lens[b])], fin))
    return hyps
