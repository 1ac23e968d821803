"""Luong et al. (2015)'s location-based and local attentions (luong_location, local_m, local_p):
each against a float64 loop over its formula, windows and masks, gradients, the decoder step,
the cost per step, the config, and a tiny model that trains, decodes greedily and by beam."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import Tensor

from mt.config import AttentionConfig, ModelConfig, validate_model
from mt.data.collate import Batch
from mt.errors import ConfigError
from mt.models.attention import ATTENTION_REGISTRY, Attention, build_attention
from mt.models.attention.local_m import INNER_SCORES
from mt.models.seq2seq import build_model
from mt.search.base import SearchConfig
from mt.search.beam import beam_search
from mt.search.greedy import greedy_search

LOCAL = ("local_m", "local_p")
NEW = (*LOCAL, "luong_location")
SCORES = ("dot", "general", "concat")
CONFIG_DIR = Path(__file__).resolve().parents[1] / "mt" / "configs" / "model" / "attention"
HIDDEN = 4  # A: concat's energy size and local-p's W_p output size


def sizes(score: str) -> tuple[int, int]:
    """(Hq, Hk): different wherever the inner score allows."""
    return (6, 6) if score == "dot" else (6, 5)


def make(
    name: str,
    score: str = "general",
    window: int = 2,
    max_src_len: int = 101,
    seed: int = 0,
    scaled: bool = False,
) -> Attention:
    torch.manual_seed(seed)
    attn = build_attention(
        name, *sizes(score), HIDDEN, window=window, score=score, max_src_len=max_src_len, scaled=scaled
    )
    return attn.double()


def make_mask(lengths: list[int], src_len: int) -> Tensor:
    return torch.arange(src_len)[None, :] < torch.tensor(lengths)[:, None]


def make_inputs(
    lengths: list[int], src_len: int, score: str = "general", seed: int = 1
) -> tuple[Tensor, ...]:
    """query (B, Hq), memory (B, S, Hk), values (B, S, 3), mask (B, S) in float64."""
    g = torch.Generator().manual_seed(seed)
    q_size, k_size = sizes(score)
    B = len(lengths)
    query = torch.randn(B, q_size, generator=g, dtype=torch.float64)
    memory = torch.randn(B, src_len, k_size, generator=g, dtype=torch.float64)
    values = torch.randn(B, src_len, 3, generator=g, dtype=torch.float64)
    return query, memory, values, make_mask(lengths, src_len)


def run(attn: Attention, query, memory, values, mask, step=None) -> tuple[Tensor, Tensor]:
    return attn(query, attn.precompute_keys(memory), values, mask, step)


# ------------------------------------------------------------------ the formulas, one number at a time


def inner_energy(inner: Attention, q: Tensor, k: Tensor) -> float:
    """Luong's eq. 8 for one query and one encoder vector, from the inner module's parameters."""
    if inner.name == "luong_dot":
        return float(q @ k)
    if inner.name == "scaled_dot":
        return float(q @ k) / math.sqrt(k.numel())
    if inner.name == "luong_general":
        return float(q @ (inner.w.weight @ k)) * inner.scale
    return float(inner.v.weight[0] @ torch.tanh(inner.w.weight @ torch.cat([q, k]) + inner.w.bias))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def reference_centre(attn: Attention, q: Tensor, length: int, t: int) -> float:
    if attn.name == "local_m":
        return float(min(t, length - 1))
    hidden = [math.tanh(float(w @ q)) for w in attn.position_proj.weight]
    return length * sigmoid(
        sum(v * h for v, h in zip(attn.position_v.weight[0].tolist(), hidden, strict=True))
    )


@torch.no_grad()
def loop_reference(attn: Attention, query, memory, values, mask, t: int = 0) -> tuple[Tensor, Tensor]:
    """weights (B, S) and context (B, Hv) of local-m / local-p / location, row by row, in Python floats."""
    B, S = mask.shape
    weights = torch.zeros(B, S, dtype=torch.float64)
    for b in range(B):
        length = int(mask[b].sum())
        if attn.name == "luong_location":
            window = range(min(length, attn.max_src_len))
            energies = {s: float(attn.w.weight[s] @ query[b]) for s in window}
        else:
            p = reference_centre(attn, query[b], length, t)
            window = [s for s in range(length) if abs(s - p) <= attn.window]
            energies = {s: inner_energy(attn.inner, query[b], memory[b, s]) for s in window}
        top = max(energies.values())
        total = sum(math.exp(e - top) for e in energies.values())
        for s, e in energies.items():
            weights[b, s] = math.exp(e - top) / total
            if attn.name == "local_p":
                weights[b, s] *= math.exp(-((s - p) ** 2) / (2 * (attn.window / 2) ** 2))
    context = torch.stack([sum(weights[b, s] * values[b, s] for s in range(S)) for b in range(B)])
    return weights, context


# ------------------------------------------------------------------ agreement with the formulas


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("window", [1, 2, 10])  # 10: wider than every sentence here
def test_local_m_matches_loop_at_every_step(score: str, window: int) -> None:
    attn = make("local_m", score, window)
    query, memory, values, mask = make_inputs([1, 8, 3, 6], 8, score)
    for t in range(10):  # past every sentence's end: p_t is clipped to S - 1
        with torch.no_grad():
            context, weights = run(attn, query, memory, values, mask, t)
        ref_weights, ref_context = loop_reference(attn, query, memory, values, mask, t)
        torch.testing.assert_close(weights, ref_weights, rtol=0, atol=1e-12)
        torch.testing.assert_close(context, ref_context, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", LOCAL)
@pytest.mark.parametrize("score", ["dot", "general"])
def test_scaled_inner_score_matches_loop(name: str, score: str) -> None:
    """scaled=True: general's energies over sqrt(Hq), dot's over sqrt(Hk), each against the loop."""
    attn = make(name, score, window=2, scaled=True)
    assert attn.inner.name == ("scaled_dot" if score == "dot" else "luong_general")
    if score == "general":
        assert attn.inner.scale == pytest.approx(1 / math.sqrt(sizes(score)[0]))
    query, memory, values, mask = make_inputs([1, 8, 3, 6], 8, score)
    with torch.no_grad():
        context, weights = run(attn, query, memory, values, mask, 3)
    ref_weights, ref_context = loop_reference(attn, query, memory, values, mask, 3)
    torch.testing.assert_close(weights, ref_weights, rtol=0, atol=1e-12)
    torch.testing.assert_close(context, ref_context, rtol=0, atol=1e-12)
    unscaled = make(name, score, window=2, scaled=False)
    with torch.no_grad():
        assert not torch.allclose(run(unscaled, query, memory, values, mask, 3)[1], weights)


@pytest.mark.parametrize("score", SCORES)
@pytest.mark.parametrize("window", [1, 2, 10])
@pytest.mark.parametrize("bias", [-6.0, 0.0, 6.0])  # p_t near the start, anywhere, near the end
def test_local_p_matches_loop(score: str, window: int, bias: float) -> None:
    attn = make("local_p", score, window)
    query, memory, values, mask = make_inputs([1, 9, 4, 7, 9], 9, score, seed=int(bias) + 10)
    # Push v_p^T tanh(W_p h) towards +-4 to put the window against either end of the sentence.
    with torch.no_grad():
        attn.position_v.weight.add_(bias / HIDDEN * torch.sign(torch.tanh(attn.position_proj(query[1]))))
        centres = attn.centre(query, mask.sum(-1), None)
        context, weights = run(attn, query, memory, values, mask)
    if bias:
        assert (centres[1] > 6.5) if bias > 0 else (centres[1] < 2.5)
    ref_weights, ref_context = loop_reference(attn, query, memory, values, mask)
    torch.testing.assert_close(weights, ref_weights, rtol=0, atol=1e-12)
    torch.testing.assert_close(context, ref_context, rtol=0, atol=1e-12)


@pytest.mark.parametrize("max_src_len", [12, 9])
def test_location_matches_loop(max_src_len: int) -> None:
    attn = make("luong_location", max_src_len=max_src_len)
    query, memory, values, mask = make_inputs([1, 9, 4, 7], 9)
    with torch.no_grad():
        context, weights = run(attn, query, memory, values, mask)
    ref_weights, ref_context = loop_reference(attn, query, memory, values, mask)
    torch.testing.assert_close(weights, ref_weights, rtol=0, atol=1e-12)
    torch.testing.assert_close(context, ref_context, rtol=0, atol=1e-12)
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, dtype=torch.float64), rtol=0, atol=1e-12)


def test_location_truncates_longer_sources_with_a_warning() -> None:
    """A source longer than max_src_len (a test sentence) is attended over its first
    max_src_len positions; the others get weight 0, and a warning says so."""
    attn = make("luong_location", max_src_len=4)
    query, memory, values, mask = make_inputs([7, 3, 5], 7)
    with pytest.warns(UserWarning, match="max_src_len=4"):
        context, weights = run(attn, query, memory, values, mask)
    assert torch.all(weights[:, 4:] == 0.0) and torch.all(weights[1, :3] > 0) and weights[1, 3] == 0.0
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, dtype=torch.float64), rtol=0, atol=1e-12)
    ref_weights, ref_context = loop_reference(attn, query, memory, values, mask)
    torch.testing.assert_close(weights, ref_weights, rtol=0, atol=1e-12)
    torch.testing.assert_close(context, ref_context, rtol=0, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # within the limit: no warning
        run(attn, *make_inputs([4, 2], 4))


# ------------------------------------------------------------------ windows, masks, the step


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("score", SCORES)
def test_weights_are_finite_and_zero_outside_window_and_mask(name: str, score: str) -> None:
    attn = make(name, score, window=2, max_src_len=12)
    query, memory, values, mask = make_inputs([1, 12, 5, 9, 2], 12, score)
    for t in (0, 4, 11):
        with torch.no_grad():
            context, weights = run(attn, query, memory, values, mask, t)
        assert torch.isfinite(weights).all() and torch.isfinite(context).all()
        assert torch.all(weights[~mask] == 0.0) and torch.all(weights >= 0.0)
        assert weights[0, 0] > 0.0 and torch.all(weights[0, 1:] == 0.0)  # a one-token source
        sums = weights.sum(-1)
        if name == "local_p":  # softmax times a Gaussian <= 1, not renormalised
            assert torch.all((sums > 0.0) & (sums < 1.0))
        else:
            torch.testing.assert_close(sums, torch.ones(5, dtype=torch.float64), rtol=0, atol=1e-12)
        if name in LOCAL:
            centre = attn.centre(query, mask.sum(-1), t)
            far = (torch.arange(12)[None, :] - centre[:, None]).abs() > attn.window
            assert torch.all(weights[far] == 0.0)
            assert torch.all((weights > 0).sum(-1) <= 2 * attn.window + 1)


def test_local_m_window_follows_the_step() -> None:
    """The window [t - D, t + D] moves with t, clipped at both sentence ends; a (B,) step
    gives each row its own t; no step is an error."""
    attn = make("local_m", window=1)
    query, memory, values, mask = make_inputs([6, 3], 6)
    support = []
    for t in range(7):
        _, weights = run(attn, query, memory, values, mask, t)
        support.append([(weights[b] > 0).nonzero().flatten().tolist() for b in range(2)])
    assert [row[0] for row in support] == [[0, 1], [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [4, 5], [4, 5]]
    assert [row[1] for row in support] == [[0, 1], [0, 1, 2], [1, 2], [1, 2], [1, 2], [1, 2], [1, 2]]
    _, per_row = run(attn, query, memory, values, mask, torch.tensor([3, 0]))
    torch.testing.assert_close(per_row[0], run(attn, query, memory, values, mask, 3)[1][0], rtol=0, atol=0)
    torch.testing.assert_close(per_row[1], run(attn, query, memory, values, mask, 0)[1][1], rtol=0, atol=0)
    with pytest.raises(ValueError, match="needs the decoder step"):
        run(attn, query, memory, values, mask)


@pytest.mark.parametrize("name", ["bahdanau", "luong_general", "local_p", "luong_location"])
def test_other_mechanisms_ignore_the_step(name: str) -> None:
    torch.manual_seed(0)
    attn = build_attention(name, 6, 5, HIDDEN).double()
    query, memory, values, mask = make_inputs([4, 2], 4)
    ref = run(attn, query, memory, values, mask)
    for step in (0, 3, torch.tensor([1, 2])):
        out = run(attn, query, memory, values, mask, step)
        assert torch.equal(out[0], ref[0]) and torch.equal(out[1], ref[1])


@pytest.mark.parametrize("name", NEW)
def test_padding_content_is_ignored(name: str) -> None:
    attn = make(name, window=3, max_src_len=10)
    query, memory, values, mask = make_inputs([3, 1, 7], 7)
    dirty_memory, dirty_values = memory.clone(), values.clone()
    dirty_memory[~mask] = 1e6
    dirty_values[~mask] = -1e6
    with torch.no_grad():
        clean = run(attn, query, memory, values, mask, 2)
        dirty = run(attn, query, dirty_memory, dirty_values, mask, 2)
    torch.testing.assert_close(dirty, clean, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "score"), [(n, s) for n in LOCAL for s in SCORES] + [("luong_location", "")]
)
def test_gradcheck(name: str, score: str) -> None:
    torch.manual_seed(0)
    q_size, k_size = (3, 3) if score == "dot" else (3, 2)
    attn = build_attention(name, q_size, k_size, 3, window=1, score=score, max_src_len=4).double()
    mask = make_mask([5, 1, 3], 5)
    query = torch.randn(3, q_size, dtype=torch.float64, requires_grad=True)
    memory = torch.randn(3, 5, k_size, dtype=torch.float64, requires_grad=True)
    values = torch.randn(3, 5, 3, dtype=torch.float64, requires_grad=True)

    def step(query: Tensor, memory: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # luong_location: 5 positions > max_src_len
            return attn(query, attn.precompute_keys(memory), values, mask, 2)

    assert torch.autograd.gradcheck(step, (query, memory, values))
    if name == "local_p":  # the Gaussian carries a gradient to p_t's parameters
        step(query, memory, values)[0].sum().backward()
        assert attn.position_proj.weight.grad.abs().sum() > 0 and attn.position_v.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NEW)
def test_bf16_autocast(name: str) -> None:
    attn = make(name, max_src_len=8).float()
    query, memory, values, mask = (
        x.float() if x.is_floating_point() else x for x in make_inputs([5, 1, 8], 8)
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        context, weights = attn(query, attn.precompute_keys(memory), values, mask, 3)
    assert weights.dtype == torch.float32 and context.dtype == torch.bfloat16
    assert torch.isfinite(context).all() and torch.all(weights[~mask] == 0.0) and weights[1, 0] > 0


# ------------------------------------------------------------------ cost per step


@pytest.mark.parametrize("name", LOCAL)
@pytest.mark.parametrize("score", SCORES)
def test_local_attention_scores_only_the_window(name: str, score: str) -> None:
    """Each step scores a (B, 2D + 1) slice of the keys, whatever the source length; the FLOPs
    stay flat as S grows, while global attention's grow."""
    attn = make(name, score, window=3)
    shapes = []
    attn.inner.score = lambda query, keys, f=attn.inner.score: (
        shapes.append(tuple(keys.shape[:2])) or f(query, keys)
    )
    for src_len in (10, 40, 160):
        run(attn, *make_inputs([src_len, src_len // 2], src_len, score), 5)
    assert shapes == [(2, 7)] * 3
    assert attn.flops(40) == attn.flops(200) and attn.flops(3)[1] < attn.flops(40)[1]
    global_attn = build_attention(f"luong_{score}", *sizes(score), HIDDEN)
    assert global_attn.flops(200)[1] > 4 * global_attn.flops(40)[1] / 2 > attn.flops(200)[1]
    assert attn.flops(40)[0] == global_attn.flops(40)[0]  # the same keys, once per source token


# ------------------------------------------------------------------ config and the model


@pytest.mark.parametrize("name", NEW)
def test_config_composes_and_reaches_the_mechanism(name: str) -> None:
    yaml = OmegaConf.load(CONFIG_DIR / f"{name}.yaml")
    cfg = OmegaConf.merge(OmegaConf.structured(AttentionConfig), yaml, {"window": 4, "score": "concat"})
    assert cfg.name == name and (cfg.window, cfg.score, cfg.max_src_len) == (4, "concat", 101)
    model_cfg = ModelConfig(attention=OmegaConf.to_object(cfg), emb_size=8, enc_hidden=8, dec_hidden=16)
    validate_model(model_cfg)  # what mt-train checks of the composed YAML
    model = build_model(model_cfg, 20, 20)
    attn = model.decoder.attention
    assert isinstance(attn, ATTENTION_REGISTRY[name])
    if name in LOCAL:
        assert attn.window == 4 and isinstance(attn.inner, INNER_SCORES["concat"])
        assert yaml.scaled is True  # the general score's default, as luong_general's
        general = build_model(
            ModelConfig(
                attention=OmegaConf.to_object(OmegaConf.merge(cfg, {"score": "general"})), dec_hidden=16
            ),
            9,
            9,
        )
        assert general.decoder.attention.inner.scale == pytest.approx(1 / 4)
    else:
        assert attn.max_src_len == 101 and attn.w.weight.shape == (101, 16)


def test_defaults_are_the_papers() -> None:
    cfg = AttentionConfig()
    assert (cfg.window, cfg.score) == (10, "general")
    attn = build_attention("local_p", 8, 8, 0, window=cfg.window, score=cfg.score)
    assert attn.window == 10 and attn.sigma == 5.0 and isinstance(attn.inner, INNER_SCORES["general"])


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("window", 0, "must be >= 1"),
        ("score", "cosine", "'cosine' is not one of"),
        ("max_src_len", 0, ">= 1"),
    ],
)
def test_validate_model_checks_the_new_keys(key: str, value: object, message: str) -> None:
    validate_model(ModelConfig(attention=AttentionConfig(name="local_p")))
    with pytest.raises(ConfigError, match=rf"model\.attention\.{key}`: .*{message}"):
        validate_model(ModelConfig(attention=AttentionConfig(name="local_p", **{key: value})))


def tiny_batch(B: int = 4, S: int = 9, T: int = 7, V: int = 30) -> Batch:
    g = torch.Generator().manual_seed(3)
    src_lens = torch.tensor([S, 1, 5, 3])[:B]
    src_mask = torch.arange(S)[None] < src_lens[:, None]
    src = torch.randint(4, V, (B, S), generator=g).masked_fill(~src_mask, 0)
    tgt = torch.randint(4, V, (B, T), generator=g)
    tgt_in = torch.cat([torch.full((B, 1), 2), tgt[:, :-1]], 1)
    tgt_mask = torch.ones(B, T, dtype=torch.bool)
    return Batch(src, src_lens, src_mask, tgt_in, tgt, tgt_mask, B * T, torch.arange(B))


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("style", ["luong", "bahdanau"])
def test_tiny_model_trains_and_decodes(name: str, style: str) -> None:
    """build_model with the mechanism: a teacher-forced loss with gradients everywhere, the
    attention of each step inside its window, greedy search, beam search, beam 1 = greedy."""
    torch.manual_seed(0)
    att = AttentionConfig(name=name, window=1, max_src_len=10)
    cfg = ModelConfig(
        attention=att, emb_size=8, enc_hidden=8, dec_hidden=16, decoder_style=style, dropout=0.0
    )
    model = build_model(cfg, 30, 30)
    batch = tiny_batch()
    loss, _ = model.loss(batch)
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        _, att_tf = model(batch, return_attention=True)  # (B, T, S)
    assert torch.all(att_tf.masked_select(~batch.src_mask[:, None, :].expand_as(att_tf)) == 0)
    if name == "local_m":  # step t attends to [min(t, S - 1) - 1, min(t, S - 1) + 1]
        t = torch.arange(7)[None, :, None]
        centre = torch.minimum(t, batch.src_lens[:, None, None] - 1)
        assert torch.all(att_tf[(torch.arange(9)[None, None, :] - centre).abs() > 1] == 0.0)
        assert torch.all(att_tf[0, torch.arange(7), torch.arange(7)] > 0)  # the diagonal
    search = SearchConfig(max_len_a=1.0, max_len_b=4)
    greedy = greedy_search(model, batch, search)
    beams = beam_search(model, batch, SearchConfig(beam_size=3, n_best=2, max_len_a=1.0, max_len_b=4))
    beam1 = beam_search(
        model, batch, SearchConfig(beam_size=1, length_penalty=0.0, max_len_a=1.0, max_len_b=4)
    )
    for g, bs, (b1,), n in zip(greedy, beams, beam1, batch.src_lens.tolist(), strict=True):
        assert g.tokens == b1.tokens and g.attention.shape == (len(g.tokens) + g.finished, n)
        torch.testing.assert_close(g.attention, b1.attention)
        assert len(bs) == 2 and all(torch.isfinite(h.attention).all() for h in bs)
