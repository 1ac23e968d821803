"""Tests of mt.models.attention: every mechanism against a loop over its formula, masking,
gradients, bf16 autocast, the registry and the configs."""

from __future__ import annotations

import copy
import importlib
import math
import pkgutil
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from torch import Tensor

import mt.models.attention as attention_package
from mt.config import AttentionConfig
from mt.models.attention import ATTENTION_REGISTRY, Attention, build_attention, masked_softmax, register
from mt.models.attention.registry import import_submodules

MECHANISMS = ("bahdanau", "luong_concat", "luong_dot", "luong_general", "scaled_dot")
LUONG_2015 = ("local_m", "local_p", "luong_location")  # tested in test_local_attention.py
REGISTERED = set(MECHANISMS + LUONG_2015)  # every mechanism in the registry
EQUAL_SIZES = ("luong_dot", "scaled_dot")  # compare query and key directly
CONFIG_DIR = Path(__file__).resolve().parents[1] / "mt" / "configs" / "model" / "attention"
HIDDEN = 4  # A, the energy size of the additive mechanisms


def sizes(name: str) -> tuple[int, int]:
    """(Hq, Hk) for a mechanism: different sizes wherever the mechanism allows them."""
    return (6, 6) if name in EQUAL_SIZES else (6, 5)


def make(name: str, dtype: torch.dtype = torch.float64, seed: int = 0) -> Attention:
    torch.manual_seed(seed)
    return build_attention(name, *sizes(name), HIDDEN).to(dtype)


def make_mask(lengths: list[int], src_len: int) -> Tensor:
    """(B, S) bool, True on the first lengths[b] positions of row b."""
    return torch.arange(src_len)[None, :] < torch.tensor(lengths)[:, None]


def make_inputs(
    name: str, lengths: list[int], src_len: int, dtype: torch.dtype = torch.float64, seed: int = 1
) -> tuple[Tensor, Tensor, Tensor]:
    """query (B, Hq), memory (B, S, Hk) and mask (B, S) for the given source lengths."""
    g = torch.Generator().manual_seed(seed)
    q_size, k_size = sizes(name)
    query = torch.randn(len(lengths), q_size, generator=g, dtype=dtype)
    memory = torch.randn(len(lengths), src_len, k_size, generator=g, dtype=dtype)
    return query, memory, make_mask(lengths, src_len)


def run(attn: Attention, query: Tensor, memory: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """One decoder step with memory as keys' source and as values."""
    return attn(query, attn.precompute_keys(memory), memory, mask)


def formula_energy(attn: Attention, q: Tensor, k: Tensor) -> Tensor:
    """The paper's energy of one query q (Hq,) and one key k (Hk,), from the module's parameters."""
    name = attn.name
    if name == "bahdanau":
        w_q, b_q, w_k = attn.query_proj.weight, attn.query_proj.bias, attn.key_proj.weight
        return attn.v.weight[0] @ torch.tanh(w_q @ q + b_q + w_k @ k)
    if name == "luong_concat":
        return attn.v.weight[0] @ torch.tanh(attn.w.weight @ torch.cat([q, k]) + attn.w.bias)
    if name == "luong_dot":
        return q @ k
    if name == "luong_general":
        return q @ (attn.w.weight @ k)
    if name == "scaled_dot":
        return q @ k / math.sqrt(k.numel())
    raise AssertionError(f"no reference formula for {name!r}")


def loop_reference(
    attn: Attention, query: Tensor, memory: Tensor, mask: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """energies (NaN on padding), weights and context, one batch row and source position at a time."""
    batch, src_len, _ = memory.shape
    energies = torch.full((batch, src_len), float("nan"), dtype=memory.dtype)
    weights = torch.zeros(batch, src_len, dtype=memory.dtype)
    context = torch.zeros(batch, memory.shape[2], dtype=memory.dtype)
    for b in range(batch):
        real = [j for j in range(src_len) if mask[b, j]]
        for j in real:
            energies[b, j] = formula_energy(attn, query[b], memory[b, j])
        top = max(energies[b, j].item() for j in real)
        exp = [math.exp(energies[b, j].item() - top) for j in real]
        for j, e in zip(real, exp, strict=True):
            weights[b, j] = e / sum(exp)
            context[b] += weights[b, j] * memory[b, j]
    return energies, weights, context


def test_registry_holds_every_mechanism() -> None:
    assert set(ATTENTION_REGISTRY) == REGISTERED
    for name, cls in ATTENTION_REGISTRY.items():
        assert issubclass(cls, Attention) and cls.name == name


@pytest.mark.parametrize("name", MECHANISMS)
def test_shapes(name: str) -> None:
    attn = make(name, torch.float32)
    q_size, k_size = sizes(name)
    query, memory, mask = make_inputs(name, [5, 2, 7], 7, torch.float32)
    keys = attn.precompute_keys(memory)
    key_width = {"bahdanau": HIDDEN, "luong_concat": HIDDEN, "luong_general": q_size}.get(name, k_size)
    assert keys.shape == (3, 7, key_width)
    assert attn.score(query, keys).shape == (3, 7)
    context, weights = attn(query, keys, memory, mask)
    assert context.shape == (3, k_size) and weights.shape == (3, 7)
    assert context.dtype == weights.dtype == torch.float32


@pytest.mark.parametrize("name", MECHANISMS)
def test_matches_loop_over_formula(name: str) -> None:
    attn = make(name)
    lengths = [1, 6, 3, 5]
    query, memory, mask = make_inputs(name, lengths, 6)
    ref_energies, ref_weights, ref_context = loop_reference(attn, query, memory, mask)
    with torch.no_grad():
        energies = attn.score(query, attn.precompute_keys(memory))
        context, weights = run(attn, query, memory, mask)
    torch.testing.assert_close(energies[mask], ref_energies[mask], rtol=0, atol=1e-12)
    torch.testing.assert_close(weights, ref_weights, rtol=0, atol=1e-12)
    torch.testing.assert_close(context, ref_context, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", MECHANISMS)
def test_masking(name: str) -> None:
    attn = make(name)
    query, memory, mask = make_inputs(name, [4, 1, 7, 2], 7)
    memory.requires_grad_()
    context, weights = run(attn, query, memory, mask)
    assert torch.all(weights[~mask] == 0.0)
    assert torch.all(weights[mask] > 0.0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(4, dtype=torch.float64), rtol=0, atol=1e-12)
    assert weights[1, 0].item() == 1.0  # a one-token row inside a longer batch
    context.sum().backward()
    assert torch.all(memory.grad[~mask] == 0.0)  # padding gets no gradient


@pytest.mark.parametrize("name", MECHANISMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_one_token_source(name: str, dtype: torch.dtype) -> None:
    attn = make(name, dtype)
    query, memory, mask = make_inputs(name, [1, 1, 1], 1, dtype)
    context, weights = run(attn, query, memory, mask)
    assert torch.all(weights == 1.0)
    assert torch.equal(context, memory[:, 0])


@pytest.mark.parametrize("name", MECHANISMS)
def test_padding_content_is_ignored(name: str) -> None:
    attn = make(name)
    query, memory, mask = make_inputs(name, [3, 1, 5], 5)
    garbage = memory.clone()
    garbage[~mask] = 1e6 * torch.randn_like(garbage[~mask])
    with torch.no_grad():
        clean_context, clean_weights = run(attn, query, memory, mask)
        context, weights = run(attn, query, garbage, mask)
    torch.testing.assert_close(weights, clean_weights, rtol=0, atol=1e-12)
    torch.testing.assert_close(context, clean_context, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", MECHANISMS)
def test_gradcheck(name: str) -> None:
    torch.manual_seed(0)
    q_size, k_size = (3, 3) if name in EQUAL_SIZES else (3, 2)
    attn = build_attention(name, q_size, k_size, 3).double()
    mask = make_mask([3, 1], 4)
    query = torch.randn(2, q_size, dtype=torch.float64, requires_grad=True)
    memory = torch.randn(2, 4, k_size, dtype=torch.float64, requires_grad=True)
    values = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)

    def step(query: Tensor, memory: Tensor, values: Tensor) -> tuple[Tensor, Tensor]:
        return attn(query, attn.precompute_keys(memory), values, mask)

    assert torch.autograd.gradcheck(step, (query, memory, values))


@pytest.mark.parametrize("name", EQUAL_SIZES)
def test_dot_mechanisms_need_equal_sizes(name: str) -> None:
    with pytest.raises(ValueError, match=r"query_size=512 .*key_size=1024") as err:
        build_attention(name, 512, 1024, 0)
    assert "model.dec_hidden" in str(err.value) and "luong_general" in str(err.value)


def test_unknown_name_lists_known_mechanisms() -> None:
    with pytest.raises(ValueError, match="unknown attention 'luong_dott'") as err:
        build_attention("luong_dott", 8, 8, 0)
    assert all(name in str(err.value) for name in MECHANISMS)


def test_register() -> None:
    class Uniform(Attention):
        def score(self, query: Tensor, keys: Tensor) -> Tensor:
            return keys.new_zeros(keys.shape[:2])

        def score_flops(self, src_len: float) -> tuple[float, float]:
            return 0.0, 0.0

    try:
        assert register("test_uniform")(Uniform) is Uniform
        attn = build_attention("test_uniform", 4, 4, 0)
        query, memory, mask = torch.randn(2, 4), torch.randn(2, 3, 4), make_mask([3, 2], 3)
        _, weights = run(attn, query, memory, mask)
        torch.testing.assert_close(weights, torch.tensor([[1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0]]))
    finally:
        ATTENTION_REGISTRY.pop("test_uniform", None)
    with pytest.raises(ValueError, match="already taken"):
        register("bahdanau")(Uniform)
    with pytest.raises(TypeError):
        register("not_attention")(torch.nn.Linear)
    assert set(ATTENTION_REGISTRY) == REGISTERED


@pytest.mark.parametrize("name", ["bahdanau", "luong_concat"])
def test_hidden_size_zero_means_query_size(name: str) -> None:
    attn = build_attention(name, 6, 5, 0)
    assert attn.hidden_size == 6
    assert attn.v.weight.shape == (1, 6)


def test_luong_concat_has_one_weight_matrix() -> None:
    attn = build_attention("luong_concat", 6, 5, 4)
    assert attn.w.weight.shape == (4, 6 + 5) and attn.w.bias.shape == (4,)
    assert attn.v.bias is None


@pytest.mark.parametrize("name", MECHANISMS)
def test_no_state_kept_between_calls(name: str) -> None:
    attn = make(name)
    fresh = copy.deepcopy(attn)
    attributes, params = dict(vars(attn)), {k: v.clone() for k, v in attn.state_dict().items()}
    run(attn, *make_inputs(name, [2, 4], 4, seed=1))
    context, weights = run(attn, *make_inputs(name, [3, 1, 2], 3, seed=2))
    ref_context, ref_weights = run(fresh, *make_inputs(name, [3, 1, 2], 3, seed=2))
    assert torch.equal(context, ref_context) and torch.equal(weights, ref_weights)
    assert vars(attn).keys() == attributes.keys()
    assert all(torch.equal(v, params[k]) for k, v in attn.state_dict().items())


@pytest.mark.parametrize("name", MECHANISMS)
@pytest.mark.parametrize("values_dtype", [torch.float32, torch.bfloat16])
def test_bf16_autocast(name: str, values_dtype: torch.dtype) -> None:
    attn = make(name, torch.float32)
    query, memory, mask = make_inputs(name, [5, 1, 8, 3], 8, torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        context, weights = attn(query, attn.precompute_keys(memory), memory.to(values_dtype), mask)
    assert weights.dtype == torch.float32  # the softmax's dtype: attention plots keep full precision
    assert context.dtype == torch.bfloat16
    assert torch.all(weights[~mask] == 0.0) and weights[1, 0].item() == 1.0
    torch.testing.assert_close(weights.sum(-1), torch.ones(4), rtol=0, atol=1e-5)
    assert torch.isfinite(context).all()


def test_masked_softmax() -> None:
    energies = torch.tensor([[1.0, 2.0, 30.0], [0.0, -5.0, 7.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    expected = torch.tensor([[1 / (1 + math.e), math.e / (1 + math.e), 0.0], [1.0, 0.0, 0.0]])
    torch.testing.assert_close(masked_softmax(energies, mask), expected)
    assert masked_softmax(energies.bfloat16(), mask).dtype == torch.float32
    assert masked_softmax(energies.double(), mask).dtype == torch.float64


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(MECHANISMS),
    batch=st.integers(1, 9).flatmap(
        lambda src_len: st.tuples(st.just(src_len), st.lists(st.integers(1, src_len), min_size=1, max_size=5))
    ),
    seed=st.integers(0, 2**16),
)
def test_property_weights_are_a_distribution_over_real_tokens(
    name: str, batch: tuple[int, list[int]], seed: int
) -> None:
    src_len, lengths = batch
    attn = make(name, torch.float32, seed)
    query, memory, mask = make_inputs(name, lengths, src_len, torch.float32, seed)
    with torch.no_grad():
        _, weights = run(attn, query, memory, mask)
    assert torch.all(weights[~mask] == 0.0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(len(lengths)), rtol=0, atol=1e-5)


def test_every_mechanism_has_a_config() -> None:
    """One YAML per registered mechanism, and one registered mechanism per YAML."""
    assert {path.stem for path in CONFIG_DIR.glob("*.yaml")} == set(ATTENTION_REGISTRY) == REGISTERED


def mechanism_modules() -> list[str]:
    """The modules of mt/models/attention/ other than the interface and the registry."""
    infos = pkgutil.iter_modules(attention_package.__path__)
    return sorted(i.name for i in infos if i.name not in ("base", "registry"))


def test_every_module_registers_a_mechanism() -> None:
    """Each mechanism module is discovered (the package lists none) and registers a mechanism."""
    init_source = Path(attention_package.__file__).read_text()
    for module in mechanism_modules():
        assert module not in init_source, f"__init__.py lists {module}; discovery should find it"
        full = f"{attention_package.__name__}.{module}"
        assert full in attention_package.MODULES
        registered = [name for name, cls in ATTENTION_REGISTRY.items() if cls.__module__ == full]
        assert registered, f"{full} registers no mechanism"
    defined_in = {cls.__module__.rsplit(".", 1)[1] for cls in ATTENTION_REGISTRY.values()}
    assert defined_in == set(mechanism_modules())


def test_a_new_module_with_register_is_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new file with ``@register("name")`` is all it takes: discovery imports it."""
    package = tmp_path / "extra_attention"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "uniform.py").write_text(
        "from mt.models.attention import Attention, register\n\n\n"
        '@register("test_discovered")\n'
        "class Uniform(Attention):\n"
        "    def score(self, query, keys):\n"
        "        return keys.new_zeros(keys.shape[:2])\n\n"
        "    def score_flops(self, src_len):\n"
        "        return 0.0, 0.0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert import_submodules("extra_attention", [str(package)]) == ["extra_attention.uniform"]
        assert build_attention("test_discovered", 4, 4).name == "test_discovered"
    finally:
        ATTENTION_REGISTRY.pop("test_discovered", None)
        for name in ("extra_attention", "extra_attention.uniform"):
            sys.modules.pop(name, None)
    importlib.invalidate_caches()


def old_flops(name: str, hq: int, hk: int, a: int, src_len: float) -> tuple[float, float]:
    """The per-mechanism FLOPs that mt.models.flops counted before each mechanism stated its own."""
    context = 2 * src_len * hk
    if name in ("bahdanau", "luong_concat"):
        return 2.0 * a * hk, 2.0 * a * hq + 2 * src_len * a + context
    if name == "luong_general":
        return 2.0 * hq * hk, 2 * src_len * hq + context
    return 0.0, 2 * src_len * hk + context


@pytest.mark.parametrize("name", MECHANISMS)
@pytest.mark.parametrize("src_len", [1.0, 13.5, 40.0])
def test_flops_match_the_former_counts(name: str, src_len: float) -> None:
    hq, hk, a = (32, 32, 16) if name in EQUAL_SIZES else (32, 24, 16)
    attn = build_attention(name, hq, hk, a)
    assert attn.flops(src_len) == old_flops(name, hq, hk, a, src_len)


@pytest.mark.parametrize("name", sorted(ATTENTION_REGISTRY))
def test_flops_are_positive_and_agree_with_torch_flop_counter(name: str) -> None:
    """Every mechanism states positive per-step FLOPs; those of precompute_keys equal torch's
    count, and a step's cover torch's count (which leaves out the energies' matrix-vector and
    vecdot products: the whole-model count in test_model.py includes them within 3%)."""
    from torch.utils.flop_counter import FlopCounterMode

    B, S, T = 3, 7, 4
    attn = make(name, torch.float32)
    query, memory, mask = make_inputs(name, [S] * B, S, torch.float32)
    per_source, per_step = attn.flops(S)
    assert per_step > 0  # (per_source is checked exactly below; 0 where the keys are the memory)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        keys = attn.precompute_keys(memory)
    assert counter.get_total_flops() == pytest.approx(B * S * per_source)  # 0 where keys = memory
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        for _ in range(T):
            attn(query, keys, memory, mask, step=2)  # local_m needs the decoder step
    assert 0 < counter.get_total_flops() <= B * T * per_step


@pytest.mark.parametrize("name", MECHANISMS)
def test_config_composes(name: str) -> None:
    cfg = OmegaConf.merge(OmegaConf.structured(AttentionConfig), OmegaConf.load(CONFIG_DIR / f"{name}.yaml"))
    assert cfg.name == name and cfg.name in ATTENTION_REGISTRY
    attn = build_attention(cfg.name, 8, 8, cfg.hidden_size)
    assert isinstance(attn, ATTENTION_REGISTRY[name])


@pytest.mark.parametrize("name", ["bahdanau", "luong_concat"])
def test_additive_attention_keeps_no_energy_tensor_for_backward(name: str) -> None:
    """Over a decoder loop, the (B, S, A) sigmoid of every step was kept for backward: 500 MB
    on a long Multi30k batch. Only the inputs (keys once, per-step (B, A) queries) are kept now."""
    B, S, A, T = 6, 9, 16, 5
    torch.manual_seed(0)
    attn = build_attention(name, 8, 8, A)
    memory = torch.randn(B, S, 8, requires_grad=True)
    mask = make_mask([9, 4, 1, 9, 2, 7], S)
    saved: dict[int, int] = {}  # storage address -> bytes (views of one storage count once)

    def pack(t: Tensor) -> Tensor:
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        keys = attn.precompute_keys(memory)
        total = sum(attn(torch.randn(B, 8), keys, memory, mask)[0].sum() for _ in range(T))
    assert sum(n >= B * S * A * 4 for n in saved.values()) <= 1  # the keys, once
    total.backward()
    assert memory.grad is not None and torch.isfinite(memory.grad).all()


def test_scaled_general_is_general_over_sqrt_query_size() -> None:
    """model.attention.scaled: e = q^T W k / sqrt(Hq), the same W; loop formula and gradcheck."""
    plain = make("luong_general")
    torch.manual_seed(0)
    scaled = build_attention("luong_general", *sizes("luong_general"), HIDDEN, scaled=True).to(torch.float64)
    scaled.load_state_dict(plain.state_dict())
    query, memory, mask = make_inputs("luong_general", [1, 6, 3, 5], 6)
    with torch.no_grad():
        e_plain = plain.score(query, plain.precompute_keys(memory))
        e_scaled = scaled.score(query, scaled.precompute_keys(memory))
        ref = torch.stack(
            [torch.stack([query[b] @ (scaled.w.weight @ memory[b, j]) for j in range(6)]) for b in range(4)]
        )
    torch.testing.assert_close(e_scaled, ref / math.sqrt(query.shape[1]), rtol=0, atol=1e-12)
    torch.testing.assert_close(e_scaled, e_plain / math.sqrt(query.shape[1]), rtol=0, atol=1e-12)
    query.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda q: run(scaled, q, memory, mask), (query,))


def test_scaled_is_refused_where_it_does_nothing() -> None:
    from mt.config import ModelConfig, validate_model
    from mt.errors import ConfigError

    cfg = ModelConfig()
    cfg.attention.scaled = True
    with pytest.raises(ConfigError, match="model.attention.scaled"):
        validate_model(cfg)
    for name in ("luong_general", "local_m", "local_p"):  # general (local: or dot) scores
        cfg.attention.name = name
        validate_model(cfg)
