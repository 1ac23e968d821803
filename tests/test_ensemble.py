"""Ensemble decoding (mt.models.ensemble, `ensemble=[...]` of mt-evaluate and mt-translate): an
ensemble of one model decodes exactly as that model, two average their log-probabilities, and
models with another vocabulary are refused by name."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from clihelpers import run
from conftest import synthetic_sentences
from test_averaging import write_checkpoint
from torch.nn import functional as F

from mt.config import AttentionConfig, ModelConfig, TokenizerConfig
from mt.data.collate import Batch
from mt.data.tokenizer import EOS_ID, Tokenizer
from mt.errors import CheckpointError
from mt.models.ensemble import Ensemble
from mt.models.seq2seq import Seq2Seq, build_model
from mt.search.base import SearchConfig
from mt.search.beam import beam_search
from mt.search.greedy import greedy_search
from mt.training.checkpoint import load_ensemble, load_model

V = 30


def tiny_model(seed: int, vocab: int = V) -> Seq2Seq:
    torch.manual_seed(seed)
    cfg = ModelConfig(attention=AttentionConfig(name="bahdanau"), emb_size=8, enc_hidden=8, dec_hidden=16,
                      dropout=0.0, emb_dropout=0.0)  # fmt: skip
    return build_model(cfg, V, vocab).eval()


def tiny_batch() -> Batch:
    g = torch.Generator().manual_seed(5)
    src_lens = torch.tensor([7, 1, 4, 6, 2])
    src_mask = torch.arange(7)[None] < src_lens[:, None]
    src = torch.randint(4, V, (5, 7), generator=g).masked_fill(~src_mask, 0)
    tgt = torch.full((5, 1), EOS_ID)
    return Batch(src, src_lens, src_mask, tgt, tgt, torch.ones(5, 1, dtype=torch.bool), 5, torch.arange(5))


GREEDY = SearchConfig(beam_size=1, precision="fp32", max_len_a=1.0, max_len_b=8)
BEAM = SearchConfig(beam_size=3, n_best=3, precision="fp32", max_len_a=1.0, max_len_b=8)


def test_an_ensemble_of_one_decodes_exactly_as_its_model() -> None:
    model = tiny_model(0)
    alone, ensemble = (
        greedy_search(model, tiny_batch(), GREEDY),
        greedy_search(Ensemble([model]), tiny_batch(), GREEDY),
    )
    for a, e in zip(alone, ensemble, strict=True):
        assert (a.tokens, a.score, a.finished) == (e.tokens, e.score, e.finished)
        assert torch.equal(a.attention, e.attention)
    alone, ensemble = (
        beam_search(model, tiny_batch(), BEAM),
        beam_search(Ensemble([model]), tiny_batch(), BEAM),
    )
    for nbest_a, nbest_e in zip(alone, ensemble, strict=True):
        assert [(h.tokens, h.score) for h in nbest_a] == [(h.tokens, h.score) for h in nbest_e]
    assert len({tuple(h.tokens) for nbest in alone for h in nbest}) > 5  # a real test: outputs differ


def test_two_models_average_their_log_probabilities() -> None:
    a, b = tiny_model(0), tiny_model(1)
    ensemble = Ensemble([a, b])
    batch = tiny_batch()
    ctx, state = ensemble.encode(batch.src, batch.src_lens, batch.src_mask)
    prev = torch.full((5,), 2)
    logp, weights, _ = ensemble.next_scores(prev, state, ctx)
    expected, attention = [], []
    for m in (a, b):
        c, s = m.encode(batch.src, batch.src_lens, batch.src_mask)
        logits, w, _ = m.next_scores(prev, s, c)
        expected.append(F.log_softmax(logits, dim=-1))
        attention.append(w)
    torch.testing.assert_close(logp, (expected[0] + expected[1]) / 2, rtol=0, atol=1e-6)
    torch.testing.assert_close(weights, (attention[0] + attention[1]) / 2, rtol=0, atol=1e-6)
    # the searches run on it, beam 1 = greedy, and it is neither model alone
    greedy = [h.tokens for h in greedy_search(ensemble, batch, GREEDY)]
    beam1 = [n[0].tokens for n in beam_search(ensemble, batch, SearchConfig(beam_size=1, length_penalty=0.0,
                                                                            precision="fp32", max_len_a=1.0, max_len_b=8))]  # fmt: skip
    assert greedy == beam1
    assert greedy != [h.tokens for h in greedy_search(a, batch, GREEDY)]
    assert greedy != [h.tokens for h in greedy_search(b, batch, GREEDY)]


def test_another_target_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError, match="share the target vocabulary; their sizes differ: \\[30, 40\\]"):
        Ensemble([tiny_model(0), tiny_model(1, vocab=40)])


@pytest.fixture(scope="module")
def other_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Tokenizer:
    cfg = TokenizerConfig(vocab_size=150)
    return Tokenizer.train_or_load(
        synthetic_sentences(800, 3), synthetic_sentences(800, 4), cfg, tmp_path_factory.mktemp("tok2")
    )


def test_a_checkpoint_with_another_tokenizer_is_refused_by_name(
    tmp_path: Path, small_tokenizer, other_tokenizer
) -> None:
    a = write_checkpoint(tmp_path / "a.pt", small_tokenizer, 1, seed=0)
    b = write_checkpoint(tmp_path / "b.pt", small_tokenizer, 1, seed=1)
    c = write_checkpoint(tmp_path / "c.pt", other_tokenizer, 1, seed=2)
    cpu = torch.device("cpu")
    first = load_model(a, cpu)
    assert load_ensemble(first, a, [], cpu) is first.model
    assert len(load_ensemble(first, a, [b], cpu).models) == 2
    with pytest.raises(CheckpointError, match=r"c\.pt cannot join an ensemble with .*a\.pt: its tokenizer"):
        load_ensemble(first, a, [b, c], cpu)


def test_a_model_trained_with_subword_sampling_joins_and_a_lowercasing_one_does_not(
    tmp_path: Path, small_tokenizer
) -> None:
    """Subword sampling changes only training; the ids of a text are the same, so such a model
    joins an ensemble. Lowercasing changes the ids of a cased text, so it does not."""
    protos = small_tokenizer._protos
    sampled = Tokenizer(*protos, sampling_alpha=0.5, sampling_nbest=-1)
    lowered = Tokenizer(*protos, lowercase=True)
    assert sampled.to_bytes() != small_tokenizer.to_bytes()
    a = write_checkpoint(tmp_path / "a.pt", small_tokenizer, 1, seed=0)
    b = write_checkpoint(tmp_path / "b.pt", sampled, 1, seed=1)
    c = write_checkpoint(tmp_path / "c.pt", lowered, 1, seed=2)
    cpu = torch.device("cpu")
    first = load_model(a, cpu)
    assert len(load_ensemble(first, a, [b], cpu).models) == 2
    with pytest.raises(CheckpointError, match=r"c\.pt cannot join an ensemble with .*a\.pt: its tokenizer"):
        load_ensemble(first, a, [c], cpu)


@pytest.mark.slow  # three runs of mt-translate
def test_mt_translate_with_an_ensemble(tmp_path: Path, small_tokenizer, other_tokenizer) -> None:
    """A real mt-translate: `+ensemble=[a.pt]` with checkpoint a.pt gives a.pt's output; with
    another tokenizer's checkpoint: exit code 2 naming it."""
    a = write_checkpoint(tmp_path / "a.pt", small_tokenizer, 1, seed=0)
    c = write_checkpoint(tmp_path / "c.pt", other_tokenizer, 1, seed=2)
    src = b"ab cd ef\nghi\n"
    common = [f"checkpoint={a}", "device=cpu", "max_output_tokens=6", "beam_size=2"]
    alone = run("mt-translate", common, tmp_path, stdin=src)
    assert alone.returncode == 0, alone.stderr.decode()[-2000:]
    twice = run("mt-translate", common + [f"ensemble=[{a}]"], tmp_path, stdin=src)
    assert twice.returncode == 0, twice.stderr.decode()[-2000:]
    assert twice.stdout == alone.stdout and len(alone.stdout.decode().splitlines()) == 2  # a with itself
    bad = run("mt-translate", common + [f"ensemble=[{c}]"], tmp_path, stdin=src)
    err = bad.stderr.decode()
    assert bad.returncode == 2 and "c.pt cannot join an ensemble" in err and "Traceback" not in err
