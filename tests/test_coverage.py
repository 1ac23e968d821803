"""Coverage (See et al., 2017), c_t = sum_{t' < t} a_t' in the additive / concat energies, and the
coverage loss sum_s min(a_t(s), c_t(s)): formula, gradients, coverage off unchanged, the loss, the
coverage through teacher forcing, greedy and beam search (reordering), trainer and config."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from tinytrainer import tiny_trainer
from torch import Tensor

from mt.config import AttentionConfig, ModelConfig, TrainConfig, validate_train
from mt.data.collate import Batch, collate
from mt.errors import ConfigError
from mt.models.attention import Attention, build_attention
from mt.models.decoder import DecoderState
from mt.models.kernels import additive_coverage_energies
from mt.models.loss import coverage_loss
from mt.models.seq2seq import Seq2Seq, build_model
from mt.search.base import SearchConfig
from mt.search.beam import beam_search
from mt.search.greedy import greedy_search

GLOBAL = ("bahdanau", "luong_concat")
LOCAL = ("local_m", "local_p")
HIDDEN = 4  # A
Q_SIZE, K_SIZE = 6, 5
V = 30  # vocabulary of the tiny models


def make(name: str, coverage: bool = True, seed: int = 0, window: int = 2) -> Attention:
    torch.manual_seed(seed)
    settings = {"window": window, "score": "concat"} if name in LOCAL else {}
    return build_attention(name, Q_SIZE, K_SIZE, HIDDEN, coverage=coverage, **settings).double()


def make_inputs(lengths: list[int], src_len: int, seed: int = 1) -> tuple[Tensor, ...]:
    """query (B, Hq), memory (B, S, Hk), mask (B, S), coverage (B, S) >= 0 (0 on padding), float64."""
    g = torch.Generator().manual_seed(seed)
    B = len(lengths)
    query = torch.randn(B, Q_SIZE, generator=g, dtype=torch.float64)
    memory = torch.randn(B, src_len, K_SIZE, generator=g, dtype=torch.float64)
    mask = torch.arange(src_len)[None, :] < torch.tensor(lengths)[:, None]
    coverage = 3 * torch.rand(B, src_len, generator=g, dtype=torch.float64) * mask
    return query, memory, mask, coverage


def energy(attn: Attention, q: Tensor, k: Tensor, c: float) -> float:
    """See et al.'s eq. 11, ``v^T tanh(W_h h + W_s s + w_c c + b)``, from the module's parameters."""
    w_c = attn.coverage_proj.weight[:, 0]
    if attn.name == "bahdanau":
        inside = attn.query_proj.weight @ q + attn.query_proj.bias + attn.key_proj.weight @ k
    else:  # luong_concat: W [q; k] + b
        inside = attn.w.weight @ torch.cat([q, k]) + attn.w.bias
    return float(attn.v.weight[0] @ torch.tanh(inside + w_c * c))


@torch.no_grad()
def loop_reference(attn: Attention, query, memory, mask, coverage, t: int = 0) -> tuple[Tensor, Tensor]:
    """weights (B, S) and context (B, Hk), one row and one source position at a time; local
    mechanisms score their window only (local-p: times the Gaussian)."""
    B, S = mask.shape
    weights = torch.zeros(B, S, dtype=torch.float64)
    for b in range(B):
        length = int(mask[b].sum())
        scorer, positions, p = attn, list(range(length)), 0.0
        if attn.name in LOCAL:
            scorer = attn.inner
            if attn.name == "local_m":
                p = float(min(t, length - 1))
            else:
                logit = attn.position_v.weight[0] @ torch.tanh(attn.position_proj.weight @ query[b])
                p = length / (1 + math.exp(-float(logit)))  # S sigmoid(v_p^T tanh(W_p h_t))
            positions = [s for s in positions if abs(s - p) <= attn.window]
        energies = {s: energy(scorer, query[b], memory[b, s], float(coverage[b, s])) for s in positions}
        top = max(energies.values())
        total = sum(math.exp(e - top) for e in energies.values())
        for s, e in energies.items():
            weights[b, s] = math.exp(e - top) / total
            if attn.name == "local_p":
                weights[b, s] *= math.exp(-((s - p) ** 2) / (2 * (attn.window / 2) ** 2))
    context = torch.stack([sum(weights[b, s] * memory[b, s] for s in range(S)) for b in range(B)])
    return weights, context


def run(attn: Attention, query, memory, mask, coverage, t: int = 0) -> tuple[Tensor, Tensor]:
    return attn(query, attn.precompute_keys(memory), memory, mask, t, coverage)


@pytest.mark.parametrize("name", GLOBAL + LOCAL)
def test_matches_loop_over_formula(name: str) -> None:
    attn = make(name)
    query, memory, mask, coverage = make_inputs([1, 6, 3, 5], 6)
    for t in (0, 3):
        with torch.no_grad():
            context, weights = run(attn, query, memory, mask, coverage, t)
        ref_weights, ref_context = loop_reference(attn, query, memory, mask, coverage, t)
        torch.testing.assert_close(weights, ref_weights, rtol=0, atol=1e-12)
        torch.testing.assert_close(context, ref_context, rtol=0, atol=1e-12)
        assert torch.all(weights[~mask] == 0.0) and torch.all(weights[0, 1:] == 0.0)  # padding
        assert weights[0, 0] == 1.0 or name == "local_p"  # a one-token source (local-p: times the Gaussian)


@pytest.mark.parametrize("name", GLOBAL)
def test_coverage_changes_the_weights_and_zero_coverage_does_not(name: str) -> None:
    attn = make(name)
    query, memory, mask, coverage = make_inputs([4, 6], 6)
    with torch.no_grad():
        _, weights = run(attn, query, memory, mask, coverage)
        _, zero = run(attn, query, memory, mask, torch.zeros_like(coverage))
        plain = torch.where(mask, attn.score(query, attn.precompute_keys(memory)), -math.inf).softmax(-1)
    assert (weights - zero).abs().max() > 1e-3
    torch.testing.assert_close(zero, plain, rtol=0, atol=1e-12)  # the coverage kernel at c = 0


def test_kernel_matches_the_plain_formula_and_its_gradients() -> None:
    g = torch.Generator().manual_seed(0)
    B, S, A = 3, 5, 4
    keys, query, v, coverage, w_c = (
        torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
        for shape in ((B, S, A), (B, A), (A,), (B, S), (A,))
    )
    out = additive_coverage_energies(2 * keys, query, v, coverage, w_c)  # the kernel's keys are doubled
    ref = torch.tanh(keys + query[:, None] + coverage[..., None] * w_c) @ v
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)
    grad, inputs = torch.randn(B, S, generator=g, dtype=torch.float64), (keys, query, v, coverage, w_c)
    got, want = torch.autograd.grad(out, inputs, grad), torch.autograd.grad(ref, inputs, grad)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", GLOBAL)
def test_no_energy_tensor_is_kept_for_backward(name: str) -> None:
    """As without coverage: over a decoder loop only the keys are kept at (B, S, A) size."""
    B, S, A, T = 6, 9, 16, 5
    torch.manual_seed(0)
    attn = build_attention(name, 8, 8, A, coverage=True)
    memory = torch.randn(B, S, 8, requires_grad=True)
    mask = torch.ones(B, S, dtype=torch.bool)
    saved: dict[int, int] = {}  # storage address -> bytes (views of one storage count once)

    def pack(t: Tensor) -> Tensor:
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        keys, coverage, total = attn.precompute_keys(memory), torch.zeros(B, S), 0
        for _ in range(T):
            context, weights = attn(torch.randn(B, 8), keys, memory, mask, 0, coverage)
            coverage, total = coverage + weights, total + context.sum()
    assert sum(n >= B * S * A * 4 for n in saved.values()) <= 1  # the keys, once
    total.backward()
    assert torch.isfinite(memory.grad).all() and attn.coverage_proj.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", GLOBAL + LOCAL)
def test_gradcheck(name: str) -> None:
    attn = make(name)
    query, memory, mask, coverage = make_inputs([3, 1, 4], 4)
    values = torch.randn(3, 4, 2, dtype=torch.float64, requires_grad=True)
    for x in (query, memory, coverage):
        x.requires_grad_()

    def step(query: Tensor, memory: Tensor, values: Tensor, coverage: Tensor) -> tuple[Tensor, Tensor]:
        return attn(query, attn.precompute_keys(memory), values, mask, 1, coverage)

    assert torch.autograd.gradcheck(step, (query, memory, values, coverage))


def test_bf16_autocast() -> None:
    attn = make("bahdanau").float()
    query, memory, mask, coverage = make_inputs([5, 1], 5)
    query, memory, coverage = query.float(), memory.float(), coverage.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        context, weights = attn(query, attn.precompute_keys(memory), memory.bfloat16(), mask, 0, coverage)
    assert weights.dtype == torch.float32 and context.dtype == torch.bfloat16
    assert torch.all(weights[~mask] == 0.0) and torch.isfinite(context).all()


@pytest.mark.parametrize("name", GLOBAL + LOCAL)
def test_coverage_off_is_the_mechanism_as_before(name: str) -> None:
    """coverage=false: the same parameters and outputs as before; coverage=true only adds w_c, last."""
    torch.manual_seed(0)
    settings = {"score": "concat", "window": 2} if name in LOCAL else {}
    before = build_attention(name, Q_SIZE, K_SIZE, HIDDEN, **settings).double()
    off, on = make(name, coverage=False), make(name, coverage=True)
    assert off.coverage is False and on.coverage is True
    assert off.state_dict().keys() == before.state_dict().keys()
    assert all(torch.equal(off.state_dict()[k], p) for k, p in before.state_dict().items())
    extra = {k for k in on.state_dict() if k not in before.state_dict()}
    assert {k.rsplit(".", 2)[-2] for k in extra} == {"coverage_proj"} and len(extra) == 1
    same = [k for k in before.state_dict() if not k.startswith("position_")]  # local-p's come after w_c
    assert all(torch.equal(on.state_dict()[k], before.state_dict()[k]) for k in same)
    query, memory, mask, coverage = make_inputs([2, 5], 5)
    with torch.no_grad():
        ref = before(query, before.precompute_keys(memory), memory, mask, 1)
        got = off(query, off.precompute_keys(memory), memory, mask, 1, coverage)  # coverage ignored
    assert all(torch.equal(a, b) for a, b in zip(got, ref, strict=True))
    with pytest.raises(ValueError, match="coverage=c_t"):
        on(query, on.precompute_keys(memory), memory, mask, 1)  # built with coverage, called without


def test_model_without_coverage_keeps_no_coverage_state_and_the_same_loss() -> None:
    model = tiny_model(coverage=False)
    ctx, state = model.encode(TINY.src, TINY.src_lens, TINY.src_mask)
    assert state.coverage is None and model.decoder.step(torch.full((4,), 2), state, ctx)[2].coverage is None
    (loss, nll), (loss0, nll0) = model.loss(TINY), model.loss(TINY, coverage_weight=0.0)
    assert torch.equal(loss, loss0) and torch.equal(nll, nll0)


def test_coverage_loss_hand_computed() -> None:
    """Row 0: c_1 = (.7, .3), c_2 = (1.1, .9): 0 + (.4 + .3) + (.5 + .5) = 1.7. Row 1 (source of
    length 1, two real target steps): 0 + min(1, 1) = 1; its third step is padding."""
    rows = [[[0.7, 0.3], [0.4, 0.6], [0.5, 0.5]], [[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]]
    attention = torch.tensor(rows, dtype=torch.float64)  # (B, T, S)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    assert coverage_loss(attention, mask).item() == pytest.approx(1.7 + 1.0, abs=1e-12)
    assert coverage_loss(attention[:1, :2], mask[:1, :2]).item() == pytest.approx(0.7, abs=1e-12)
    assert coverage_loss(attention[:, :1], mask[:, :1]).item() == 0.0  # nothing covered before step 0


def tiny_batch() -> Batch:
    """4 sentences: sources of 9, 1, 5, 3 tokens, targets of 7, 3, 5, 1 (padded)."""
    g = torch.Generator().manual_seed(3)
    src_mask = torch.arange(9)[None] < torch.tensor([9, 1, 5, 3])[:, None]
    tgt_mask = torch.arange(7)[None] < torch.tensor([7, 3, 5, 1])[:, None]
    src = torch.randint(4, V, (4, 9), generator=g).masked_fill(~src_mask, 0)
    tgt = torch.randint(4, V, (4, 7), generator=g).masked_fill(~tgt_mask, 0)
    tgt_in = torch.cat([torch.full((4, 1), 2), tgt[:, :-1]], 1)
    return Batch(src, src_mask.sum(1), src_mask, tgt_in, tgt, tgt_mask, int(tgt_mask.sum()), torch.arange(4))


TINY = tiny_batch()


def tiny_model(name: str = "bahdanau", style: str = "luong", coverage: bool = True, seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    att = AttentionConfig(name=name, coverage=coverage, score="concat", window=2)
    sizes = {"emb_size": 8, "enc_hidden": 8, "dec_hidden": 16, "dropout": 0.0, "emb_dropout": 0.0}
    model = build_model(ModelConfig(attention=att, decoder_style=style, **sizes), V, V).eval()
    if coverage:  # a strong coverage term, so that a wrong coverage changes every decision
        scorer = model.decoder.attention.get_submodule("inner" if name in LOCAL else "")
        scorer.coverage_proj.weight.data.mul_(4)
    return model


@pytest.mark.parametrize("style", ["luong", "bahdanau"])
def test_forward_and_backward_with_the_coverage_loss(style: str) -> None:
    model = tiny_model(style=style).train()
    loss0, nll0 = model.loss(TINY)
    loss1, nll1 = model.loss(TINY, coverage_weight=0.5)
    _, attention = model(TINY, return_attention=True)
    assert torch.equal(nll0, nll1)  # the NLL (validation perplexity) leaves the coverage loss out
    expected = coverage_loss(attention, TINY.tgt_mask)
    assert expected > 0.1
    torch.testing.assert_close(loss1 - loss0, 0.5 * expected, rtol=1e-5, atol=1e-5)
    loss1.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.decoder.attention.coverage_proj.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", GLOBAL + LOCAL)
@pytest.mark.parametrize("style", ["luong", "bahdanau"])
def test_teacher_forcing_equals_stepping_and_carries_the_running_sum(name: str, style: str) -> None:
    model = tiny_model(name, style)
    with torch.no_grad():
        _, attention = model(TINY, return_attention=True)  # (B, T, S)
        ctx, state = model.encode(TINY.src, TINY.src_lens, TINY.src_mask)
        assert torch.equal(state.coverage, torch.zeros(4, 9))
        for t in range(TINY.tgt_in.size(1)):
            covered = state.coverage
            _, weights, state = model.decoder.step(TINY.tgt_in[:, t], state, ctx)
            torch.testing.assert_close(weights, attention[:, t], rtol=0, atol=1e-6)
            assert torch.equal(state.coverage, covered + weights)
        torch.testing.assert_close(state.coverage, attention.sum(1), rtol=0, atol=1e-5)


def test_decoder_state_select_reorders_the_coverage() -> None:
    """A hand-built beam: rows (sentence 0: beams a, b; sentence 1: beams c, d); the next step
    continues from (b, b) and (d, c), so each row's coverage must come along with its hidden state."""
    hidden = torch.arange(4.0)[:, None].expand(4, 3)
    coverage = torch.tensor([[0.9, 0.1], [0.2, 0.8], [1.0, 0.0], [0.5, 0.5]])
    state = DecoderState((hidden,), None, torch.zeros(4, 0), 3, coverage)
    picked = state.select(torch.tensor([1, 1, 3, 2]))
    assert torch.equal(picked.coverage, coverage[[1, 1, 3, 2]])
    assert torch.equal(picked.hidden[0][:, 0], torch.tensor([1.0, 1.0, 3.0, 2.0])) and picked.step == 3


def rescore(model: Seq2Seq, src: list[int], tokens: list[int]) -> tuple[float, Tensor]:
    """Teacher-forced log-probability of `tokens` (EOS last when finished) and its attention (T, S)."""
    ids = tokens[:-1] if tokens and tokens[-1] == 3 else tokens  # collate adds the EOS (id 3)
    batch = collate([src], [ids])
    with torch.no_grad():
        features, attention = model(batch, return_attention=True)
        logp = torch.log_softmax(model.output(features[0]).float(), -1)
    n = len(tokens)
    return float(logp[torch.arange(n), torch.tensor(tokens)].sum()), attention[0, :n]


def check_hypotheses_against_teacher_forcing(model: Seq2Seq, batch: Batch, hyps: list[list]) -> None:
    """Each hypothesis's score (alpha = 0: the sum of its log-probabilities) and attention are
    those of the teacher-forced pass over it: true only when every step saw its own coverage."""
    for b, sentence in enumerate(hyps):
        src = batch.src[b, : int(batch.src_lens[b])].tolist()
        for h in sentence:
            score, attention = rescore(model, src, h.tokens + ([3] if h.finished else []))
            assert h.score == pytest.approx(score, abs=1e-4)
            torch.testing.assert_close(h.attention, attention, rtol=0, atol=1e-4)


SEARCH = SearchConfig(beam_size=3, n_best=3, length_penalty=0.0, max_len_a=1.0, max_len_b=4)


@pytest.mark.parametrize("name", GLOBAL + LOCAL)
@pytest.mark.parametrize("style", ["luong", "bahdanau"])
def test_greedy_and_beam_carry_the_coverage(name: str, style: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Greedy and beam hypotheses equal the teacher-forced pass over them (rows leaving the
    batch, beams reordered), and beam 1 is greedy; the beams did swap (the check is not vacuous)."""
    model = tiny_model(name, style)
    greedy = greedy_search(model, TINY, SEARCH)
    check_hypotheses_against_teacher_forcing(model, TINY, [[h] for h in greedy])
    beam1 = beam_search(model, TINY, replace(SEARCH, beam_size=1, n_best=1))
    for g, (b,) in zip(greedy, beam1, strict=True):
        assert g.tokens == b.tokens and g.score == pytest.approx(b.score, abs=1e-4)
        torch.testing.assert_close(g.attention, b.attention)
    reorders = []
    select = DecoderState.select
    monkeypatch.setattr(DecoderState, "select", lambda self, idx: reorders.append(idx) or select(self, idx))
    beams = beam_search(model, TINY, SEARCH)
    check_hypotheses_against_teacher_forcing(model, TINY, beams)
    K = SEARCH.beam_size
    # a row continuing from another beam than its own (the first select expands 1 row into K)
    assert any(not torch.equal(idx % K, torch.arange(idx.numel()) % K) for idx in reorders[1:]), "no swap"


def test_beam_search_with_coverage_left_in_place_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above fails when beam reordering forgets the coverage (each row keeps its own)."""
    model = tiny_model()
    select = DecoderState.select

    def forgetful(self: DecoderState, idx: Tensor) -> DecoderState:
        picked = select(self, idx)
        if self.coverage is None or idx.numel() != self.coverage.size(0):
            return picked  # expansion and pruning: keep those right
        picked.coverage = self.coverage  # reordered rows keep the old row's coverage
        return picked

    monkeypatch.setattr(DecoderState, "select", forgetful)
    beams = beam_search(model, TINY, SEARCH)
    monkeypatch.undo()
    with pytest.raises(AssertionError):
        check_hypotheses_against_teacher_forcing(model, TINY, beams)


@pytest.mark.parametrize("name", ["luong_dot", "luong_general", "scaled_dot", "luong_location"])
def test_mechanisms_without_an_energy_layer_refuse_coverage(name: str) -> None:
    with pytest.raises(ConfigError, match=r"^config error at `model\.attention\.coverage`: .*bahdanau, "):
        tiny_model(name)


@pytest.mark.parametrize("name", LOCAL)
@pytest.mark.parametrize("score", ["dot", "general"])
def test_local_attention_takes_coverage_with_concat_only(name: str, score: str) -> None:
    with pytest.raises(ConfigError, match=r"^config error at `model\.attention\.coverage`: .*score=concat"):
        build_attention(name, 8, 8, 0, score=score, coverage=True)
    assert build_attention(name, 8, 8, 0, score="concat", coverage=True).coverage


def test_validate_train_checks_the_coverage_loss_weight() -> None:
    cfg = TrainConfig()
    cfg.trainer.coverage_loss_weight = 1.0
    with pytest.raises(ConfigError, match=r"^config error at `trainer\.coverage_loss_weight`: .*=true"):
        validate_train(cfg)
    cfg.model.attention.coverage = True
    validate_train(cfg)
    cfg.trainer.coverage_loss_weight = -1.0
    with pytest.raises(ConfigError, match=r"^config error at `trainer\.coverage_loss_weight`: must be >= 0"):
        validate_train(cfg)
    assert TrainConfig().trainer.coverage_loss_weight == 0.0 and not TrainConfig().model.attention.coverage
    cfg.trainer.coverage_loss_weight, cfg.trainer.coverage_loss_after = 0.0, 300
    with pytest.raises(ConfigError, match=r"^config error at `trainer\.coverage_loss_after`: .*weight > 0"):
        validate_train(cfg)
    cfg.trainer.coverage_loss_weight = 1.0
    validate_train(cfg)


def test_the_trainer_adds_the_coverage_loss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = tiny_trainer(tmp_path, coverage_loss_weight=0.25)
    seen = []
    loss = trainer.model.loss
    monkeypatch.setattr(trainer.model, "loss", lambda batch, **kw: seen.append(kw) or loss(batch, **kw))
    batch = next(iter(trainer.loader))
    trainer._update([batch])
    assert seen[-1]["coverage_weight"] == 0.25
    trainer.cfg.trainer.coverage_loss_weight = 0.0
    trainer._update([batch])
    assert "coverage_weight" not in seen[-1]  # off: the call of before


def test_the_coverage_loss_starts_after_the_set_number_of_updates(tmp_path: Path, monkeypatch) -> None:
    trainer = tiny_trainer(tmp_path, coverage_loss_weight=0.5, coverage_loss_after=2)
    seen = []
    loss = trainer.model.loss
    monkeypatch.setattr(trainer.model, "loss", lambda batch, **kw: seen.append(kw) or loss(batch, **kw))
    batch = next(iter(trainer.loader))
    for step in range(4):  # what the training loop does between updates
        trainer.progress.step = step
        trainer._update([batch])
    assert [kw.get("coverage_weight") for kw in seen] == [None, None, 0.5, 0.5]


def test_data_parallel_loss_forward_passes_the_coverage_weight():
    # DDP calls LossForward, not model.loss: the coverage term must reach the loss there too
    from mt.training.distributed import LossForward

    model, batch = tiny_model(), tiny_batch()
    torch.manual_seed(0)
    plain, _ = LossForward(model)(batch)
    torch.manual_seed(0)
    wrapped, nll = LossForward(model)(batch, coverage_weight=1.0)
    torch.manual_seed(0)
    direct, _ = model.loss(batch, coverage_weight=1.0)
    assert torch.equal(wrapped, direct) and wrapped > plain
