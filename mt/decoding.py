"""Batched greedy and beam search over a Seq2Seq model.

Both work on a whole batch of sentences at once: each step is a handful of tensor
operations over every live hypothesis, with no Python loop over sentences. Sentences
that are done leave the batch (their rows are dropped from the encoder context and the
decoder state), so they stop costing compute. Both return, per sentence, hypotheses with
token ids, a score and the attention matrix that produced them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional as F

from mt.models.seq2seq import Seq2Seq


@dataclass
class Hypothesis:
    """One output: ids without BOS/EOS, its score, and attention (len(ids) [+1 for EOS], S)."""

    tokens: list[int]
    score: float
    attention: Tensor  # (T_out, S_real) float32 on CPU; row i = weights when emitting output i
    finished: bool  # ended with EOS (False when cut at the length limit)


# Hard cap on output length (incl. EOS), whatever the source length: a pathological input
# (say a 100,000-character line) must not turn into tens of thousands of decoder steps.
MAX_OUTPUT_TOKENS = 400


def max_lengths(src_lens: Tensor, a: float, b: int) -> Tensor:
    """Per-sentence output length limit (incl. EOS): ceil(a * |src| + b), in [1, MAX_OUTPUT_TOKENS]."""
    return torch.clamp(torch.ceil(src_lens.float() * a + b).long(), min=1, max=MAX_OUTPUT_TOKENS)


def length_penalty(length: Tensor, alpha: float) -> Tensor:
    """GNMT length penalty ((5 + len) / 6) ** alpha (Wu et al., 2016)."""
    return ((5.0 + length.float()) / 6.0) ** alpha


@torch.no_grad()
def greedy_search(
    model: Seq2Seq,
    src: Tensor,
    src_lens: Tensor,
    src_mask: Tensor,
    bos: int,
    eos: int,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
) -> list[Hypothesis]:
    """Greedy decoding of a batch: src (B, S) -> one hypothesis per sentence, in order.

    Score = sum of log-probabilities of the chosen tokens.
    """
    B, S = src.shape
    device = src.device
    ctx, state = model.encode(src, src_lens, src_mask)
    limit = max_lengths(src_lens, max_len_a, max_len_b).to(device)  # (B,)
    T = int(limit.max())
    out_tokens = torch.full((B, T), eos, dtype=torch.long, device=device)
    out_att = torch.zeros(B, T, S, device=device)
    scores = torch.zeros(B, device=device)
    lengths = torch.zeros(B, dtype=torch.long, device=device)
    ended = torch.zeros(B, dtype=torch.bool, device=device)
    alive = torch.arange(B, device=device)  # original rows still decoding
    prev = torch.full((B,), bos, dtype=torch.long, device=device)
    for t in range(T):
        feats, weights, state = model.decoder.step(prev, state, ctx)  # (n, H), (n, S)
        logp = F.log_softmax(model.output(feats).float(), dim=-1)  # (n, V)
        best, tok = logp.max(dim=-1)  # (n,)
        out_tokens[alive, t] = tok
        out_att[alive, t] = weights.float()
        scores[alive] += best
        is_eos = tok == eos
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
    return _collect_greedy(out_tokens, out_att, scores, lengths, ended, src_lens)


def _collect_greedy(
    tokens: Tensor, att: Tensor, scores: Tensor, lengths: Tensor, ended: Tensor, src_lens: Tensor
) -> list[Hypothesis]:
    tokens, att, scores, lengths, ended = (x.cpu() for x in (tokens, att, scores, lengths, ended))
    hyps = []
    for b in range(tokens.size(0)):
        n, fin = int(lengths[b]), bool(ended[b])
        ids = tokens[b, : n - 1 if fin else n].tolist()
        hyps.append(Hypothesis(ids, float(scores[b]), att[b, :n, : int(src_lens[b])], fin))
    return hyps


@torch.no_grad()
def beam_search(
    model: Seq2Seq,
    src: Tensor,
    src_lens: Tensor,
    src_mask: Tensor,
    bos: int,
    eos: int,
    beam_size: int = 5,
    n_best: int = 1,
    alpha: float = 1.0,
    max_len_a: float = 1.5,
    max_len_b: int = 10,
) -> list[list[Hypothesis]]:
    """Batched beam search: src (B, S) -> per sentence its `n_best` hypotheses, best first.

    Each step ranks the 2K best continuations of every sentence; those among the top K
    that end in EOS are finished (scored with the length penalty) and leave the beam, the
    best K others continue. A sentence is done, and leaves the batch, when it reaches its
    length limit or holds K finished hypotheses that its best live one, normalised at its
    current length, does not beat. With K = 1 this is greedy search.
    """
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best ({n_best}) must be between 1 and the beam size ({beam_size})")
    K = beam_size
    B, S = src.shape
    device = src.device
    ctx, state = model.encode(src, src_lens, src_mask)
    expand = torch.arange(B, device=device).repeat_interleave(K)  # (B*K,)
    ctx, state = ctx.select(expand), state.select(expand)
    limit = max_lengths(src_lens, max_len_a, max_len_b).to(device)  # (B,)
    T = int(limit.max())

    # Results, per original sentence: K finished slots.
    res_score = torch.full((B, K), -math.inf, device=device)  # length-normalised
    res_tokens = torch.full((B, K, T), eos, dtype=torch.long, device=device)
    res_att = torch.zeros(B, K, T, S, device=device)
    res_len = torch.zeros(B, K, dtype=torch.long, device=device)
    res_fin = torch.zeros(B, K, dtype=torch.bool, device=device)

    # Live state for the n sentences still decoding (n shrinks).
    alive = torch.arange(B, device=device)
    beam_score = torch.full((B, K), -math.inf, device=device)
    beam_score[:, 0] = 0.0  # all beams start identical: expand only the first
    seqs = torch.empty(B, K, 0, dtype=torch.long, device=device)
    atts = torch.empty(B, K, 0, S, device=device)
    pool_score = res_score.clone()
    pool_tokens, pool_att = res_tokens.clone(), res_att.clone()
    pool_len, pool_fin = res_len.clone(), res_fin.clone()
    prev = torch.full((B * K,), bos, dtype=torch.long, device=device)
    rank = torch.arange(2 * K, device=device)

    for t in range(T):
        n = alive.numel()
        feats, weights, state = model.decoder.step(prev, state, ctx)  # (n*K, H), (n*K, S)
        logp = F.log_softmax(model.output(feats).float(), dim=-1)  # (n*K, V)
        V = logp.size(1)
        cand = (beam_score.view(n * K, 1) + logp).view(n, K * V)
        top_score, top_idx = cand.topk(2 * K, dim=1)  # (n, 2K), best first
        origin = torch.div(top_idx, V, rounding_mode="floor")  # (n, 2K) beam of origin
        token = top_idx % V
        # histories of the candidates, including this step's token and attention
        cand_seqs = torch.cat([seqs.gather(1, origin[..., None].expand(-1, -1, t)), token[..., None]], dim=2)
        w = weights.float().view(n, K, S).gather(1, origin[..., None].expand(-1, -1, S))  # (n, 2K, S)
        cand_atts = torch.cat(
            [atts.gather(1, origin[..., None, None].expand(-1, -1, t, S)), w[:, :, None]], dim=2
        )

        at_limit = (t + 1 >= limit[alive])[:, None]  # (n, 1)
        is_eos = token == eos
        finishing = (rank < K) & (is_eos | at_limit) & torch.isfinite(top_score)  # (n, 2K)
        # Merge the finishing candidates into each sentence's pool of K (best normalised score).
        norm = top_score / length_penalty(torch.tensor(t + 1, device=device), alpha)
        new_score = torch.where(finishing, norm, torch.full_like(norm, -math.inf))
        pad_t = T - (t + 1)
        all_score = torch.cat([pool_score, new_score], dim=1)  # (n, 3K)
        keep_score, keep_idx = all_score.topk(K, dim=1)
        pool_score = keep_score
        pool_tokens = torch.cat([pool_tokens, F.pad(cand_seqs, (0, pad_t), value=eos)], 1).gather(
            1, keep_idx[..., None].expand(-1, -1, T)
        )
        pool_att = torch.cat([pool_att, F.pad(cand_atts, (0, 0, 0, pad_t))], 1).gather(
            1, keep_idx[..., None, None].expand(-1, -1, T, S)
        )
        pool_len = torch.cat([pool_len, torch.full_like(token, t + 1)], 1).gather(1, keep_idx)
        pool_fin = torch.cat([pool_fin, is_eos], 1).gather(1, keep_idx)

        # The best K candidates that do not end here continue.
        cont_key = torch.where(is_eos, torch.full_like(top_score, -math.inf), top_score)
        cont_score, cont_pos = cont_key.topk(K, dim=1)  # (n, K)
        beam_score = cont_score
        cont_origin = origin.gather(1, cont_pos)
        prev_tok = token.gather(1, cont_pos)
        seqs = cand_seqs.gather(1, cont_pos[..., None].expand(-1, -1, t + 1))
        atts = cand_atts.gather(1, cont_pos[..., None, None].expand(-1, -1, t + 1, S))

        # Done: at the length limit, or K finished hypotheses none of which the best live
        # one (length-normalised as if it ended now) can beat any more.
        best_alive = beam_score[:, 0] / length_penalty(torch.tensor(t + 1, device=device), alpha)
        pool_full = torch.isfinite(pool_score[:, -1])
        done = at_limit[:, 0] | (pool_full & (best_alive <= pool_score[:, -1]))  # (n,)
        sent_rows = torch.arange(n, device=device)  # rows of the sentences that go on
        if done.any():
            rows = alive[done]
            res_score[rows], res_tokens[rows], res_att[rows] = (
                pool_score[done],
                pool_tokens[done],
                pool_att[done],
            )
            res_len[rows], res_fin[rows] = pool_len[done], pool_fin[done]
            keep = (~done).nonzero().squeeze(1)
            if keep.numel() == 0:
                break
            alive = alive[keep]
            beam_score, cont_origin, prev_tok = beam_score[keep], cont_origin[keep], prev_tok[keep]
            seqs, atts = seqs[keep], atts[keep]
            pool_score, pool_tokens, pool_att = pool_score[keep], pool_tokens[keep], pool_att[keep]
            pool_len, pool_fin = pool_len[keep], pool_fin[keep]
            ctx = ctx.select((keep[:, None] * K + torch.arange(K, device=device)).view(-1))
            sent_rows = keep
        # reorder the decoder state: row (i, k) continues from beam cont_origin[i, k]
        state = state.select((sent_rows[:, None] * K + cont_origin).view(-1))
        prev = prev_tok.view(-1)

    return _collect_beams(res_score, res_tokens, res_att, res_len, res_fin, src_lens, n_best)


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
