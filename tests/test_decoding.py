"""Greedy and beam search: agreement at beam 1, stopping at EOS, n-best, overfitting a tiny corpus."""

from __future__ import annotations

import pytest
import torch

from mt.config import AttentionConfig, ModelConfig
from mt.decoding import beam_search, greedy_search
from mt.models.attention import ATTENTION_REGISTRY
from mt.models.seq2seq import build_model

BOS, EOS = 2, 3
V = 30


def make_model(attention="bahdanau", style="luong", seed=0, **kw):
    torch.manual_seed(seed)
    base = dict(emb_size=16, enc_hidden=16, dec_hidden=32, dropout=0.0, emb_dropout=0.0, decoder_style=style)
    base.update(kw)
    return build_model(ModelConfig(attention=AttentionConfig(name=attention), **base), V, V).eval()


def src_batch(B=6, S=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(1, S + 1, (B,), generator=g)
    lens[0] = S
    lens[1] = 1  # a one-token source
    mask = torch.arange(S)[None] < lens[:, None]
    src = torch.randint(4, V, (B, S), generator=g).masked_fill(~mask, 0)
    return src, lens, mask


@pytest.mark.parametrize("style", ["luong", "bahdanau"])
@pytest.mark.parametrize("attention", sorted(ATTENTION_REGISTRY))
def test_beam_one_is_greedy(attention, style):
    model = make_model(attention, style)
    src, lens, mask = src_batch()
    greedy = greedy_search(model, src, lens, mask, BOS, EOS, max_len_a=1.0, max_len_b=5)
    beam = beam_search(model, src, lens, mask, BOS, EOS, beam_size=1, alpha=0.0, max_len_a=1.0, max_len_b=5)
    for g, (b,) in zip(greedy, beam, strict=True):
        assert g.tokens == b.tokens
        assert g.finished == b.finished
        assert g.score == pytest.approx(b.score, abs=1e-4)
        torch.testing.assert_close(g.attention, b.attention)


def test_outputs_respect_length_limit_and_attention_shapes():
    model = make_model()
    src, lens, mask = src_batch()
    for hyp, n in zip(greedy_search(model, src, lens, mask, BOS, EOS, 1.0, 2), lens.tolist(), strict=True):
        assert len(hyp.tokens) + hyp.finished <= n + 2
        assert hyp.attention.shape == (len(hyp.tokens) + hyp.finished, n)
        torch.testing.assert_close(hyp.attention.sum(-1), torch.ones(hyp.attention.size(0)))
    for hyps, n in zip(
        beam_search(model, src, lens, mask, BOS, EOS, 4, n_best=3), lens.tolist(), strict=True
    ):
        assert len(hyps) == 3
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for h in hyps:
            assert h.attention.shape == (len(h.tokens) + h.finished, n)


def test_decoding_stops_at_eos_and_finished_sentences_leave():
    model = make_model()
    src, lens, mask = src_batch()
    with torch.no_grad():
        model.output.bias.zero_()
        model.output.bias[EOS] = 100.0  # EOS wins at once
    steps = []
    orig = model.decoder.step

    def counting(prev, state, ctx):
        steps.append(prev.numel())
        return orig(prev, state, ctx)

    model.decoder.step = counting
    greedy = greedy_search(model, src, lens, mask, BOS, EOS)
    assert all(h.tokens == [] and h.finished for h in greedy)
    assert steps == [6]  # one step: every sentence ended at once
    steps.clear()
    beams = beam_search(model, src, lens, mask, BOS, EOS, beam_size=3)
    assert all(h[0].tokens == [] and h[0].finished for h in beams)
    assert len(steps) <= 3


def test_beam_finds_better_or_equal_model_score_than_greedy():
    model = make_model(seed=3)
    src, lens, mask = src_batch(B=8, seed=3)
    greedy = greedy_search(model, src, lens, mask, BOS, EOS, 1.5, 3)
    beams = beam_search(model, src, lens, mask, BOS, EOS, beam_size=5, alpha=0.0, max_len_a=1.5, max_len_b=3)
    better = sum(b[0].score >= g.score - 1e-4 for g, b in zip(greedy, beams, strict=True) if g.finished)
    assert better == sum(g.finished for g in greedy)


def test_n_best_larger_than_beam_is_error():
    model = make_model()
    src, lens, mask = src_batch()
    with pytest.raises(ValueError, match="n_best"):
        beam_search(model, src, lens, mask, BOS, EOS, beam_size=2, n_best=3)


def tiny_corpus(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    pairs = []
    for _ in range(n):
        L = int(torch.randint(3, 8, (1,), generator=g))
        s = torch.randint(4, V, (L,), generator=g).tolist()
        t = [((x * 7) % (V - 4)) + 4 for x in reversed(s)]  # a deterministic "translation"
        pairs.append((s + [EOS], t))
    return pairs


def collate_pairs(pairs):
    B = len(pairs)
    S = max(len(s) for s, _ in pairs)
    T = max(len(t) for _, t in pairs) + 1
    src = torch.zeros(B, S, dtype=torch.long)
    tin = torch.zeros(B, T, dtype=torch.long)
    tout = torch.zeros(B, T, dtype=torch.long)
    for i, (s, t) in enumerate(pairs):
        src[i, : len(s)] = torch.tensor(s)
        tin[i, : len(t) + 1] = torch.tensor([BOS] + t)
        tout[i, : len(t) + 1] = torch.tensor(t + [EOS])
    lens = torch.tensor([len(s) for s, _ in pairs])
    return src, lens, src != 0, tin, tout, tout != 0


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
    batch = collate_pairs(pairs)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for step in range(800):
        model.train()
        loss, _ = model.loss(*batch)
        opt.zero_grad()
        (loss / batch[-1].sum()).backward()
        opt.step()
        if step % 50 == 49:
            model.eval()
            hyps = greedy_search(model, *batch[:3], BOS, EOS, 2.0, 5)
            beams = beam_search(model, *batch[:3], BOS, EOS, beam_size=4)
            if [h.tokens for h in hyps] == [b[0].tokens for b in beams] == [t for _, t in pairs]:
                break
    model.eval()
    hyps = greedy_search(model, *batch[:3], BOS, EOS, 2.0, 5)
    assert [h.tokens for h in hyps] == [t for _, t in pairs]
    beams = beam_search(model, *batch[:3], BOS, EOS, beam_size=4)
    assert [b[0].tokens for b in beams] == [t for _, t in pairs]


def test_output_length_has_a_hard_cap():
    from mt.decoding import MAX_OUTPUT_TOKENS, max_lengths

    limits = max_lengths(torch.tensor([1, 10, 100_000]), 1.5, 10)
    assert limits.tolist() == [12, 25, MAX_OUTPUT_TOKENS]
