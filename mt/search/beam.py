"""Batched beam search over a Seq2Seq model (or an ensemble), and reading its hypotheses back.

The whole batch of sentences is decoded at once: each step is a handful of tensor operations
over every live hypothesis, with no Python loop over sentences. Sentences that are done leave
the batch (their rows are dropped from the encoder context and the decoder state), so they
stop costing compute. Per sentence it returns the n best hypotheses with token ids, a score
and the attention matrix that produced them.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from mt.data.collate import Batch
from mt.data.tokenizer import BOS_ID, EOS_ID
from mt.search.base import Hypothesis, SearchConfig, SearchModel, length_penalty, max_lengths
from mt.search.rules import any_rule, apply_rules


@torch.no_grad()
def beam_search(
    model: SearchModel, batch: Batch, search: SearchConfig, vocab: Tensor | None = None
) -> list[list[Hypothesis]]:
    """Batched beam search: src (B, S) -> per sentence its `n_best` hypotheses, best first.

    Each step ranks the 2K best continuations of every sentence; those among the top K
    that end in EOS are finished (scored with the length penalty) and leave the beam, the
    best K others continue. A sentence is done, and leaves the batch, when it reaches its
    length limit or holds K finished hypotheses that its best live one, normalised at its
    current length, does not beat. With K = 1 this is greedy search.

    Histories are kept as per-step tokens, attention rows and back-pointers, and read back
    once at the end, so a step costs the same whatever the length so far. The first step
    runs on one row per sentence (all K beams start identical).

    Uses `search.beam_size` (K), `n_best`, `length_penalty` (alpha), the length limit
    (`max_len_a`, `max_len_b`, `max_output_tokens`) and the rules of `mt.search.rules` (with
    them on, each live beam's tokens so far are kept in step with the beams); `precision` is
    the caller's autocast. With `vocab` (V',), the sorted target ids of a shortlist
    (`mt.search.shortlist`), only those can be chosen, their probabilities normalised over them.
    """
    K, n_best, alpha = search.beam_size, search.n_best, search.length_penalty
    if not 1 <= n_best <= K:
        raise ValueError(f"n_best ({n_best}) must be between 1 and the beam size ({K})")
    src, src_lens = batch.src, batch.src_lens
    B, S = src.shape
    device = src.device
    V = model.tgt_vocab_size if vocab is None else vocab.numel()  # columns of the scores
    if 2 * K > V:
        what = "a vocabulary" if vocab is None else "a shortlist"
        raise ValueError(f"beam size {K} is too large for {what} of {V}: need 2 * beam <= {V}")
    ctx, state = model.encode(
        src, src_lens, batch.src_mask, vocab
    )  # one row per sentence until step 0 is done
    limit = max_lengths(src_lens, search).to(device)  # (B,)
    T = int(limit.max())

    # History of the live beams, per original sentence and step: the token beam k emitted at
    # step t, the attention row that produced it, and the beam at step t-1 it extends.
    hist_tok = torch.full((B, K, T), EOS_ID, dtype=torch.long, device=device)
    hist_att = torch.zeros(B, K, T, S, device=device)
    hist_back = torch.zeros(B, K, T, dtype=torch.long, device=device)
    # Each sentence's K best finished hypotheses, as (score, length, last token, its attention
    # row, beam at step length-2 it extends, ended with EOS). The pool of the n sentences
    # still decoding moves to `res_*` (indexed by original sentence) when a sentence is done.
    res_score = torch.full((B, K), -math.inf, device=device)  # length-normalised
    res_len = torch.ones(B, K, dtype=torch.long, device=device)
    res_last = torch.full((B, K), EOS_ID, dtype=torch.long, device=device)
    res_last_att = torch.zeros(B, K, S, device=device)
    res_origin = torch.zeros(B, K, dtype=torch.long, device=device)
    res_fin = torch.zeros(B, K, dtype=torch.bool, device=device)
    pool = [x.clone() for x in (res_score, res_len, res_last, res_last_att, res_origin, res_fin)]

    alive = torch.arange(B, device=device)  # original rows still decoding
    beam_score = torch.zeros(B, 1, device=device)  # (n, kk): kk = 1 at step 0, then K
    prev = torch.full((B,), BOS_ID, dtype=torch.long, device=device)
    rank = torch.arange(2 * K, device=device)
    beams = torch.arange(K, device=device)
    rules = any_rule(search)  # then the tokens of each live beam so far (n*kk, t) are kept
    live = torch.zeros(B, 0, dtype=torch.long, device=device)

    for t in range(T):
        n, kk = beam_score.shape
        logits, weights, state = model.next_scores(prev, state, ctx)  # (n*kk, V), (n*kk, S)
        if rules:
            logits = apply_rules(logits, live, search, vocab)
        # log p(y | prefix) plus the prefix's score, added in place: the same sums, and one
        # (n*kk, V) buffer less to write per step
        cand = F.log_softmax(logits, dim=-1).add_(beam_score.view(n * kk, 1)).view(n, kk * V)
        top_score, top_idx = cand.topk(2 * K, dim=1)  # (n, 2K), best first
        origin = torch.div(top_idx, V, rounding_mode="floor")  # (n, 2K) beam of origin
        token = top_idx % V if vocab is None else vocab[top_idx % V]  # (n, 2K) token ids
        w = weights.float().view(n, kk, S).gather(1, origin[..., None].expand(-1, -1, S))  # (n, 2K, S)

        at_limit = (t + 1 >= limit[alive])[:, None]  # (n, 1)
        is_eos = token == EOS_ID
        finishing = (rank < K) & (is_eos | at_limit) & torch.isfinite(top_score)  # (n, 2K)
        # Merge the finishing candidates into each sentence's pool of K (best normalised score).
        norm = top_score / length_penalty(torch.tensor(t + 1, device=device), alpha)
        new = (
            torch.where(finishing, norm, torch.full_like(norm, -math.inf)),
            torch.full_like(token, t + 1),
            token,
            w,
            origin,
            is_eos,
        )
        pool_score, keep_idx = torch.cat([pool[0], new[0]], dim=1).topk(K, dim=1)  # of (n, 3K)
        pool = [pool_score] + [
            torch.cat([old, cur], dim=1).gather(
                1, keep_idx.view(n, K, *([1] * (old.dim() - 2))).expand_as(old)
            )
            for old, cur in zip(pool[1:], new[1:], strict=True)
        ]

        # The best K candidates that do not end here continue.
        cont_key = torch.where(is_eos, torch.full_like(top_score, -math.inf), top_score)
        beam_score, cont_pos = cont_key.topk(K, dim=1)  # (n, K)
        cont_origin = origin.gather(1, cont_pos)
        prev_tok = token.gather(1, cont_pos)
        hist_tok[alive, :, t] = prev_tok
        hist_back[alive, :, t] = cont_origin
        hist_att[alive, :, t] = w.gather(1, cont_pos[..., None].expand(-1, -1, S))
        if rules:  # each continuing beam: its origin's tokens, then its own (n, K, t + 1)
            kept = live.view(n, kk, t).gather(1, cont_origin[..., None].expand(-1, -1, t))
            live = torch.cat([kept, prev_tok[..., None]], dim=2)

        # Done: at the length limit, or K finished hypotheses none of which the best live
        # one (length-normalised as if it ended now) can beat any more.
        best_alive = beam_score[:, 0] / length_penalty(torch.tensor(t + 1, device=device), alpha)
        pool_full = torch.isfinite(pool[0][:, -1])
        done = at_limit[:, 0] | (pool_full & (best_alive <= pool[0][:, -1]))  # (n,)
        keep = torch.arange(n, device=device)  # rows of the sentences that go on
        if done.any():
            rows = alive[done]
            for r, p in zip(
                (res_score, res_len, res_last, res_last_att, res_origin, res_fin), pool, strict=True
            ):
                r[rows] = p[done]
            keep = (~done).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            alive = alive[keep]
            beam_score, cont_origin, prev_tok = beam_score[keep], cont_origin[keep], prev_tok[keep]
            pool = [p[keep] for p in pool]
            if rules:
                live = live[keep]
        if kk == 1:  # after step 0: one row per sentence becomes K
            ctx = ctx.select(keep.repeat_interleave(K))
        elif keep.numel() < n:
            ctx = ctx.select((keep[:, None] * K + beams).view(-1))
        # reorder the decoder state: row (i, k) continues from beam cont_origin[i, k]
        state = state.select((keep[:, None] * kk + cont_origin).view(-1))
        prev = prev_tok.view(-1)
        if rules:
            live = live.view(-1, t + 1)

    tokens, att = _backtrack(hist_tok, hist_att, hist_back, res_len, res_last, res_last_att, res_origin)
    return _collect_beams(res_score, tokens, att, res_len, res_fin, src_lens, n_best)


def _backtrack(
    hist_tok: Tensor,
    hist_att: Tensor,
    hist_back: Tensor,
    length: Tensor,
    last: Tensor,
    last_att: Tensor,
    origin: Tensor,
) -> tuple[Tensor, Tensor]:
    """Full token ids (B, K, T) and attention (B, K, T, S) of finished hypotheses, read from
    the per-step history by following back-pointers from each one's last step."""
    B, K, T, S = hist_att.shape
    tokens = torch.full((B, K, T), EOS_ID, dtype=torch.long, device=hist_tok.device)
    att = torch.zeros(B, K, T, S, device=hist_att.device)
    end = (length - 1).clamp(0, T - 1)  # (B, K) step of the last token
    tokens.scatter_(2, end[..., None], last[..., None])
    att.scatter_(2, end[..., None, None].expand(-1, -1, 1, S), last_att[:, :, None])
    beam = origin.clone()  # (B, K) beam at step t that the hypothesis extends
    for t in range(T - 2, -1, -1):
        inside = t < end  # (B, K)
        tok_t = hist_tok[:, :, t].gather(1, beam)
        att_t = hist_att[:, :, t].gather(1, beam[..., None].expand(-1, -1, S))
        tokens[:, :, t] = torch.where(inside, tok_t, tokens[:, :, t])
        att[:, :, t] = torch.where(inside[..., None], att_t, att[:, :, t])
        beam = torch.where(inside, hist_back[:, :, t].gather(1, beam), beam)
    return tokens, att


def _collect_beams(
    score: Tensor, tokens: Tensor, att: Tensor, lengths: Tensor, fin: Tensor, src_lens: Tensor, n_best: int
) -> list[list[Hypothesis]]:
    score, tokens, att, lengths, fin = (x.cpu() for x in (score, tokens, att, lengths, fin))
    order = score.argsort(dim=1, descending=True)
    out = []
    for b in range(score.size(0)):
        hyps = []
        for k in order[b, :n_best].tolist():
            n, f = int(lengths[b, k]), bool(fin[b, k])
            ids = tokens[b, k, : n - 1 if f else n].tolist()
            hyps.append(Hypothesis(ids, float(score[b, k]), att[b, k, :n, : int(src_lens[b])], f))
        out.append(hyps)
    return out
