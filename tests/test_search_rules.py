"""The search rules (mt.search.rules): each on hand-made logits, then through greedy and beam
search on a tiny random model (whose outputs repeat tokens and can be made to end at once), beam
1 equal to greedy with every rule on, the config ranges and a real mt-translate."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from mt.config import AttentionConfig, ModelConfig
from mt.config_ranges import DECODING
from mt.data.collate import Batch
from mt.data.tokenizer import EOS_ID
from mt.models.seq2seq import Seq2Seq, build_model
from mt.search.base import SearchConfig
from mt.search.beam import beam_search
from mt.search.greedy import greedy_search
from mt.search.rules import apply_rules

V = 30
OFF = SearchConfig(beam_size=1, precision="fp32", max_len_a=0.0, max_len_b=12)


def rules(**on: object) -> SearchConfig:
    return replace(OFF, **on)


# ------------------------------------------------------------------ each rule, one number at a time


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits_of_seen_tokens() -> None:
    logits = torch.tensor([[2.0, -1.0, 3.0, 0.5, -2.0]])
    history = torch.tensor([[0, 1, 1]])  # tokens 0 and 1 seen (1 twice: penalised once)
    out = apply_rules(logits, history, rules(repetition_penalty=2.0))
    assert out.tolist() == [[1.0, -2.0, 3.0, 0.5, -2.0]]
    assert torch.equal(apply_rules(logits, history, OFF), logits)


def test_no_repeat_ngram_bans_the_token_that_would_repeat_an_ngram() -> None:
    logits = torch.zeros(2, 6)
    history = torch.tensor(
        [[1, 2, 3, 1, 2], [4, 4, 4, 5, 1]]
    )  # row 0 ends in (1, 2): 3 would repeat (1, 2, 3)
    out = apply_rules(logits, history, rules(no_repeat_ngram_size=3))
    assert out[0].tolist() == [0, 0, 0, -math.inf, 0, 0] and out[1].tolist() == [0] * 6
    bigram = apply_rules(
        logits, history, rules(no_repeat_ngram_size=2)
    )  # after 2: 3 (row 0); after 1: nothing
    assert bigram[0].tolist() == [0, 0, 0, -math.inf, 0, 0] and bigram[1].tolist() == [0] * 6
    unigram = apply_rules(logits, history, rules(no_repeat_ngram_size=1))  # no token twice
    assert (unigram[1] == -math.inf).tolist() == [False, True, False, False, True, True]
    short = apply_rules(logits, history[:, :2], rules(no_repeat_ngram_size=3))  # no whole 3-gram yet
    assert torch.equal(short, logits[:, :6])


def test_min_length_bans_eos_until_enough_tokens() -> None:
    logits = torch.zeros(3, 6)
    for t in range(5):
        out = apply_rules(logits, torch.full((3, t), 7), rules(min_length=3))
        assert bool((out[:, EOS_ID] == -math.inf).all()) == (t < 3)
        assert torch.equal(out[:, EOS_ID + 1 :], logits[:, EOS_ID + 1 :])


# ------------------------------------------------------------------ through the searches


def tiny_model(seed: int = 0, eos_bias: float = 0.0) -> Seq2Seq:
    torch.manual_seed(seed)
    cfg = ModelConfig(attention=AttentionConfig(name="bahdanau"), emb_size=8, enc_hidden=8, dec_hidden=16,
                      dropout=0.0, emb_dropout=0.0)  # fmt: skip
    model = build_model(cfg, V, V).eval()
    with torch.no_grad():
        model.output.bias[EOS_ID] += eos_bias
    return model


def tiny_batch(B: int = 6, S: int = 7) -> Batch:
    g = torch.Generator().manual_seed(5)
    src_lens = torch.tensor([7, 1, 4, 6, 2, 5])[:B]
    src_mask = torch.arange(S)[None] < src_lens[:, None]
    src = torch.randint(4, V, (B, S), generator=g).masked_fill(~src_mask, 0)
    tgt = torch.full((B, 1), EOS_ID)
    return Batch(src, src_lens, src_mask, tgt, tgt, torch.ones(B, 1, dtype=torch.bool), B, torch.arange(B))


def decode(model: Seq2Seq, search: SearchConfig) -> list[list[int]]:
    if search.beam_size == 1:
        return [h.tokens for h in greedy_search(model, tiny_batch(), search)]
    return [hyps[0].tokens for hyps in beam_search(model, tiny_batch(), search)]


def ngrams(tokens: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


@pytest.mark.parametrize("beam", [1, 4])
def test_min_length_holds_where_the_model_would_end_at_once(beam: int) -> None:
    model = tiny_model(eos_bias=30.0)  # EOS first, always
    assert all(len(t) == 0 for t in decode(model, rules(beam_size=beam)))
    outputs = decode(model, rules(beam_size=beam, min_length=4))
    assert [len(t) for t in outputs] == [4] * 6  # then EOS at once


@pytest.mark.parametrize("beam", [1, 4])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_no_ngram_twice_in_any_output(beam: int, n: int) -> None:
    model = tiny_model()
    plain = decode(model, rules(beam_size=beam))
    assert any(len(set(ngrams(t, n))) < len(ngrams(t, n)) for t in plain)  # a random model repeats
    for tokens in decode(model, rules(beam_size=beam, no_repeat_ngram_size=n)):
        assert len(set(ngrams(tokens, n))) == len(ngrams(tokens, n)), tokens


@pytest.mark.parametrize("beam", [1, 4])
def test_repetition_penalty_lowers_repeats(beam: int) -> None:
    model = tiny_model()

    def repeats(outputs: list[list[int]]) -> int:
        return sum(len(t) - len(set(t)) for t in outputs)

    plain = repeats(decode(model, rules(beam_size=beam)))
    assert repeats(decode(model, rules(beam_size=beam, repetition_penalty=3.0))) < plain
    # below 1 it rewards repeats: the rule has a direction
    assert repeats(decode(model, rules(beam_size=beam, repetition_penalty=0.5))) >= plain


@pytest.mark.parametrize(
    "on",
    [
        {"min_length": 5},
        {"no_repeat_ngram_size": 2},
        {"repetition_penalty": 1.7},
        {"min_length": 3, "no_repeat_ngram_size": 1, "repetition_penalty": 1.3},
    ],  # fmt: skip
)
def test_beam_one_equals_greedy_with_the_rules(on: dict) -> None:
    model = tiny_model(seed=2, eos_bias=1.0)
    greedy = greedy_search(model, tiny_batch(), rules(**on))
    beam = beam_search(model, tiny_batch(), rules(beam_size=1, length_penalty=0.0, **on))
    assert [h.tokens for h in greedy] == [b[0].tokens for b in beam]
    for g, (b,) in zip(greedy, beam, strict=True):
        assert g.score == pytest.approx(b.score, abs=1e-5)


def test_the_rules_are_off_by_default_and_ranged() -> None:
    search = SearchConfig()
    assert (search.min_length, search.no_repeat_ngram_size, search.repetition_penalty) == (0, 0, 1.0)
    assert {"min_length", "no_repeat_ngram_size", "repetition_penalty"} <= DECODING.keys()
