"""Greedy and beam search: agreement at beam 1, stopping at EOS, n-best, overfitting a tiny corpus."""

from __future__ import annotations

import pytest
import torch

from mt.config import AttentionConfig, ModelConfig
from mt.data.collate import Batch, collate
from mt.data.tokenizer import BOS_ID as BOS
from mt.data.tokenizer import EOS_ID as EOS
from mt.models.attention import ATTENTION_REGISTRY
from mt.models.seq2seq import build_model
from mt.search.base import SearchConfig, max_lengths
from mt.search.beam import beam_search
from mt.search.greedy import greedy_search

V = 30


def make_model(attention="bahdanau", style="luong", seed=0, **kw):
    torch.manual_seed(seed)
    base = dict(emb_size=16, enc_hidden=16, dec_hidden=32, dropout=0.0, emb_dropout=0.0, decoder_style=style)
    base.update(kw)
    return build_model(ModelConfig(attention=AttentionConfig(name=attention), **base), V, V).eval()


def source_batch(src: torch.Tensor, lens: torch.Tensor, mask: torch.Tensor) -> Batch:
    """A source-only Batch (no target fields), as decoding gets it."""
    return Batch(src, lens, mask, None, None, None, 0, torch.arange(src.size(0)))


def src_batch(B=6, S=9, seed=0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(1, S + 1, (B,), generator=g)
    lens[0] = S
    lens[1] = 1  # a one-token source
    mask = torch.arange(S)[None] < lens[:, None]
    src = torch.randint(4, V, (B, S), generator=g).masked_fill(~mask, 0)
    return source_batch(src, lens, mask)


@pytest.mark.parametrize("style", ["luong", "bahdanau"])
@pytest.mark.parametrize("attention", sorted(ATTENTION_REGISTRY))
def test_beam_one_is_greedy(attention, style):
    model = make_model(attention, style)
    batch = src_batch()
    greedy = greedy_search(model, batch, SearchConfig(max_len_a=1.0, max_len_b=5))
    beam = beam_search(
        model, batch, SearchConfig(beam_size=1, length_penalty=0.0, max_len_a=1.0, max_len_b=5)
    )
    for g, (b,) in zip(greedy, beam, strict=True):
        assert g.tokens == b.tokens
        assert g.finished == b.finished
        assert g.score == pytest.approx(b.score, abs=1e-4)
        torch.testing.assert_close(g.attention, b.attention)


def test_outputs_respect_length_limit_and_attention_shapes():
    model = make_model()
    batch = src_batch()
    lens = batch.src_lens
    greedy = greedy_search(model, batch, SearchConfig(max_len_a=1.0, max_len_b=2))
    for hyp, n in zip(greedy, lens.tolist(), strict=True):
        assert len(hyp.tokens) + hyp.finished <= n + 2
        assert hyp.attention.shape == (len(hyp.tokens) + hyp.finished, n)
        torch.testing.assert_close(hyp.attention.sum(-1), torch.ones(hyp.attention.size(0)))
    for hyps, n in zip(
        beam_search(model, batch, SearchConfig(beam_size=4, n_best=3)), lens.tolist(), strict=True
    ):
        assert len(hyps) == 3
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for h in hyps:
            assert h.attention.shape == (len(h.tokens) + h.finished, n)


def test_decoding_stops_at_eos_and_finished_sentences_leave():
    model = make_model()
    batch = src_batch()
    with torch.no_grad():
        model.output.bias.zero_()
        model.output.bias[EOS] = 100.0  # EOS wins at once
    steps = []
    orig = model.decoder.step

    def counting(prev, state, ctx):
        steps.append(prev.numel())
        return orig(prev, state, ctx)

    model.decoder.step = counting
    greedy = greedy_search(model, batch, SearchConfig())
    assert all(h.tokens == [] and h.finished for h in greedy)
    assert steps == [6]  # one step: every sentence ended at once
    steps.clear()
    beams = beam_search(model, batch, SearchConfig(beam_size=3))
    assert all(h[0].tokens == [] and h[0].finished for h in beams)
    assert len(steps) <= 3


def test_beam_finds_better_or_equal_model_score_than_greedy():
    model = make_model(seed=3)
    batch = src_batch(B=8, seed=3)
    greedy = greedy_search(model, batch, SearchConfig(max_len_a=1.5, max_len_b=3))
    beams = beam_search(
        model, batch, SearchConfig(beam_size=5, length_penalty=0.0, max_len_a=1.5, max_len_b=3)
    )
    better = sum(b[0].score >= g.score - 1e-4 for g, b in zip(greedy, beams, strict=True) if g.finished)
    assert better == sum(g.finished for g in greedy)


def reference_beam_search(model, src, src_len, K, alpha, limit):
    """Beam search over one sentence, one hypothesis at a time, by the rules `beam_search`
    documents: the 2K best continuations; those among the top K that end (EOS or the
    length limit) are finished with score / ((5 + len) / 6) ** alpha; the best K others go
    on; stop at the limit or when K finished ones are not beaten by the best live one."""
    mask = torch.arange(src.size(0))[None] < src_len
    ctx, state = model.encode(src[None], src_len.view(1), mask)
    beams = [(0.0, [], [], state)]  # score, tokens, attention rows, decoder state
    finished = []  # (normalised score, tokens, attention rows, ended with EOS)
    for t in range(limit):
        cands = []
        for score, toks, atts, st in beams:
            prev = torch.tensor([toks[-1] if toks else BOS])
            feats, w, st2 = model.decoder.step(prev, st, ctx)
            logp = torch.log_softmax(model.output(feats).float(), -1)[0]
            cands += [(score + float(logp[v]), toks + [v], atts + [w[0]], st2) for v in range(V)]
        top = sorted(cands, key=lambda c: -c[0])[: 2 * K]
        lp = ((5.0 + t + 1) / 6.0) ** alpha
        for score, toks, atts, _ in top[:K]:
            if toks[-1] == EOS or t + 1 >= limit:
                finished.append((score / lp, toks, atts, toks[-1] == EOS))
        finished = sorted(finished, key=lambda f: -f[0])[:K]
        beams = [c for c in top if c[1][-1] != EOS][:K]
        if t + 1 >= limit or (len(finished) == K and beams[0][0] / lp <= finished[-1][0]):
            break
    return [(s, toks[:-1] if fin else toks, torch.stack(atts), fin) for s, toks, atts, fin in finished]


@pytest.mark.parametrize("style", ["luong", "bahdanau"])
@pytest.mark.parametrize("attention", ["bahdanau", "luong_general"])
def test_batched_beam_search_matches_one_sentence_at_a_time(attention, style):
    """Sentences leaving the batch, beam reordering and the back-pointer history must give
    exactly what decoding each sentence alone, hypothesis by hypothesis, gives."""
    for seed in range(3):
        model = make_model(attention, style, seed=seed)
        batch = src_batch(B=5, seed=seed)
        src, lens = batch.src, batch.src_lens
        K, alpha = 3, 0.8
        search = SearchConfig(beam_size=K, n_best=K, length_penalty=alpha, max_len_a=1.0, max_len_b=3)
        batched = beam_search(model, batch, search)
        limits = max_lengths(lens, search).tolist()
        with torch.no_grad():
            for b in range(src.size(0)):
                ref = reference_beam_search(model, src[b, : lens[b]], lens[b], K, alpha, limits[b])
                assert [h.tokens for h in batched[b]] == [r[1] for r in ref]
                assert [h.finished for h in batched[b]] == [r[3] for r in ref]
                for h, r in zip(batched[b], ref, strict=True):
                    assert h.score == pytest.approx(r[0], abs=1e-4)
                    torch.testing.assert_close(h.attention, r[2], atol=1e-5, rtol=1e-4)


def test_n_best_larger_than_beam_is_error():
    model = make_model()
    with pytest.raises(ValueError, match="n_best"):
        beam_search(model, src_batch(), SearchConfig(beam_size=2, n_best=3))


def tiny_corpus(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    pairs = []
    for _ in range(n):
        L = int(torch.randint(3, 8, (1,), generator=g))
        s = torch.randint(4, V, (L,), generator=g).tolist()
        t = [((x * 7) % (V - 4)) + 4 for x in reversed(s)]  # a deterministic "translation"
        pairs.append((s + [EOS], t))
    return pairs


@pytest.mark.parametrize("attention", sorted(ATTENTION_REGISTRY))
def test_overfits_tiny_corpus_exactly(attention):
    """20 pairs, a few hundred steps: every training pair is reproduced exactly."""
    torch.manual_seed(0)
    model = build_model(
        ModelConfig(
            emb_size=32, enc_hidden=32, dec_hidden=64, dropout=0.0, emb_dropout=0.0,
            attention=AttentionConfig(name=attention),
        ),
        V, V,
    )  # fmt: skip
    pairs = tiny_corpus()
    batch = collate([s for s, _ in pairs], [t for _, t in pairs])  # searches use its source fields
    greedy_cfg, beam_cfg = SearchConfig(max_len_a=2.0, max_len_b=5), SearchConfig(beam_size=4)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for step in range(800):
        model.train()
        loss, _ = model.loss(batch)
        opt.zero_grad()
        (loss / batch.n_tgt_tokens).backward()
        opt.step()
        if step % 50 == 49:
            model.eval()
            hyps = greedy_search(model, batch, greedy_cfg)
            beams = beam_search(model, batch, beam_cfg)
            if [h.tokens for h in hyps] == [b[0].tokens for b in beams] == [t for _, t in pairs]:
                break
    model.eval()
    hyps = greedy_search(model, batch, greedy_cfg)
    assert [h.tokens for h in hyps] == [t for _, t in pairs]
    beams = beam_search(model, batch, beam_cfg)
    assert [b[0].tokens for b in beams] == [t for _, t in pairs]


def test_output_length_has_a_hard_cap():
    from mt.config import DEFAULT_MAX_OUTPUT_TOKENS

    lens = torch.tensor([1, 10, 100_000])
    assert max_lengths(lens, SearchConfig()).tolist() == [12, 25, DEFAULT_MAX_OUTPUT_TOKENS]
    assert max_lengths(lens, SearchConfig(max_output_tokens=20)).tolist() == [12, 20, 20]


@pytest.mark.parametrize("beam_size", [1, 3])
def test_max_output_tokens_caps_every_output(beam_size):
    """A random model rarely emits EOS, so its outputs run to the cap; none goes past it."""
    from mt.search.translate import decode_batch

    model = make_model(seed=1)
    batch = src_batch(B=5, seed=1)
    search = SearchConfig(
        beam_size, beam_size, max_len_a=3.0, max_len_b=10, precision="fp32", max_output_tokens=6
    )
    nbests = decode_batch(model, batch, search)  # greedy search at beam size 1
    rows = [h.attention.size(0) for nbest in nbests for h in nbest]
    assert max(rows) == 6 and all(len(h.tokens) + h.finished <= 6 for nbest in nbests for h in nbest)
