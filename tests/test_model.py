"""Encoder, decoder and Seq2Seq: shapes, masks, both decoder styles, training/search agreement."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from mt.config import AttentionConfig, ModelConfig
from mt.data.collate import Batch
from mt.models.attention import ATTENTION_REGISTRY
from mt.models.encoder import Bridge, Encoder
from mt.models.seq2seq import build_model

V_SRC, V_TGT = 37, 41


def small_cfg(**kw) -> ModelConfig:
    att = kw.pop("attention", "bahdanau")
    base = dict(emb_size=16, enc_hidden=12, dec_hidden=24, dropout=0.0, emb_dropout=0.0)
    base.update(kw)
    return ModelConfig(attention=AttentionConfig(name=att), **base)


def random_batch(B=5, S=7, T=6, seed=0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    src_lens = torch.randint(1, S + 1, (B,), generator=g)
    src_lens[0] = S
    src = torch.randint(4, V_SRC, (B, S), generator=g)
    src_mask = torch.arange(S)[None] < src_lens[:, None]
    src = src.masked_fill(~src_mask, 0)
    tgt_lens = torch.randint(1, T + 1, (B,), generator=g)
    tgt_lens[-1] = T
    tgt = torch.randint(4, V_TGT, (B, T), generator=g)
    tgt_mask = torch.arange(T)[None] < tgt_lens[:, None]
    tgt_in = torch.cat([torch.full((B, 1), 2), tgt[:, :-1]], 1).masked_fill(~tgt_mask, 0)
    tgt_out = tgt.masked_fill(~tgt_mask, 0)
    return Batch(src, src_lens, src_mask, tgt_in, tgt_out, tgt_mask, int(tgt_mask.sum()), torch.arange(B))


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_encoder_shapes_and_padding(rnn_type, bidirectional):
    enc = Encoder(V_SRC, 8, 6, num_layers=2, bidirectional=bidirectional, rnn_type=rnn_type)
    b = random_batch()
    src, src_lens, src_mask = b.src, b.src_lens, b.src_mask
    memory, h, c = enc(src, src_lens)
    D = 2 if bidirectional else 1
    assert memory.shape == (5, 7, 6 * D)
    assert h.shape == (2, 5, 6 * D)
    assert (c is None) == (rnn_type == "gru")
    assert torch.all(memory[~src_mask] == 0)  # packed: padding produces nothing
    # packing: a sentence's encoding does not depend on the padding around it
    one, _, _ = enc(src[1:2, : src_lens[1]], src_lens[1:2])
    torch.testing.assert_close(memory[1, : src_lens[1]], one[0])


@pytest.mark.parametrize("kind", ["bridge", "last", "zero"])
@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_bridge(kind, rnn_type):
    bridge = Bridge(kind, 10, 10, dec_layers=2, rnn_type=rnn_type)
    h = torch.randn(1, 3, 10)
    c = torch.randn(1, 3, 10) if rnn_type == "lstm" else None
    h0, c0 = bridge(h, c)
    assert h0.shape == (3, 2, 10)
    assert (c0 is None) == (rnn_type == "gru")
    if kind == "zero":
        assert torch.all(h0 == 0)
    if kind == "last":
        torch.testing.assert_close(h0[:, 1], h[0])


def test_bridge_last_size_mismatch_is_clear():
    with pytest.raises(ValueError, match="model.bridge=last"):
        Bridge("last", 10, 12, 1, "gru")


@pytest.mark.parametrize("attention", sorted(ATTENTION_REGISTRY))
@pytest.mark.parametrize("style", ["luong", "bahdanau"])
@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_teacher_forcing_matches_step_by_step(attention, style, rnn_type):
    """The training path (one call over all steps) and the search path (step) agree."""
    torch.manual_seed(0)
    cfg = small_cfg(attention=attention, decoder_style=style, rnn_type=rnn_type, dec_layers=2)
    model = build_model(cfg, V_SRC, V_TGT).eval()
    b = random_batch()
    feats, att = model(b, return_attention=True)
    assert feats.shape == (5, 6, 24) and att.shape == (5, 6, 7)
    ctx, state = model.encode(b.src, b.src_lens, b.src_mask)
    for t in range(b.tgt_in.size(1)):
        f, w, state = model.decoder.step(b.tgt_in[:, t], state, ctx)
        torch.testing.assert_close(f, feats[:, t], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(w, att[:, t], atol=1e-5, rtol=1e-5)
    assert torch.all(att.masked_select(~b.src_mask[:, None, :].expand_as(att)) == 0)
    if ATTENTION_REGISTRY[attention].weights_sum_to_one:
        torch.testing.assert_close(att.sum(-1), torch.ones(5, 6))
    else:  # local_p: a softmax times a Gaussian, not renormalised
        assert torch.all((att.sum(-1) > 0) & (att.sum(-1) <= 1 + 1e-6))


@pytest.mark.parametrize("style", ["luong", "bahdanau"])
def test_loss_backward_and_output_layer_called_once(style):
    torch.manual_seed(0)
    model = build_model(small_cfg(decoder_style=style, dropout=0.2, emb_dropout=0.1), V_SRC, V_TGT).train()
    batch = random_batch()
    calls = []
    model.output.register_forward_hook(lambda m, i, o: calls.append(o.shape))
    loss, nll = model.loss(batch, label_smoothing=0.1)
    assert calls == [(batch.n_tgt_tokens, V_TGT)]  # once, over real tokens only
    assert torch.isfinite(loss) and nll.item() > 0
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []


def test_loss_needs_a_batch_with_targets():
    model = build_model(small_cfg(), V_SRC, V_TGT)
    source_only = replace(random_batch(), tgt_in=None, tgt_out=None, tgt_mask=None, n_tgt_tokens=0)
    with pytest.raises(ValueError, match="needs a batch with targets"):
        model.loss(source_only)


def test_scheduled_sampling_runs_and_differs():
    torch.manual_seed(0)
    model = build_model(small_cfg(), V_SRC, V_TGT).train()
    batch = random_batch()
    torch.manual_seed(1)
    full, _ = model.loss(batch, teacher_forcing=1.0)
    torch.manual_seed(1)
    sampled, _ = model.loss(batch, teacher_forcing=0.0)
    sampled.backward()
    assert not torch.allclose(full, sampled)


def test_tied_embeddings():
    model = build_model(small_cfg(emb_size=24, tie_embeddings=True), V_SRC, V_TGT)
    assert model.output.weight is model.decoder.embed.weight
    with pytest.raises(ValueError, match="tie_embeddings"):
        build_model(small_cfg(emb_size=16, tie_embeddings=True), V_SRC, V_TGT)


def test_dot_attention_size_mismatch_is_build_error():
    with pytest.raises(ValueError):
        build_model(small_cfg(attention="luong_dot", enc_hidden=12, dec_hidden=30), V_SRC, V_TGT)


def test_build_model_from_plain_dict_and_param_count(caplog):
    cfg = {
        "rnn_type": "gru", "emb_size": 8, "enc_hidden": 8, "enc_layers": 1, "bidirectional": True,
        "dec_hidden": 16, "dec_layers": 1, "dropout": 0.0, "emb_dropout": 0.0, "bridge": "bridge",
        "decoder_style": "luong", "input_feeding": True, "tie_embeddings": False,
        "attention": {"name": "scaled_dot", "hidden_size": 0},
    }  # fmt: skip
    with caplog.at_level("INFO", logger="mt.model"):
        model = build_model(cfg, 20, 30)
    assert "parameters" in caplog.text
    assert model.num_parameters() == sum(p.numel() for p in model.parameters())


def test_default_model_size():
    """The default config: embeddings 256, encoder 256 per direction, decoder 512."""
    model = build_model(ModelConfig(), 8000, 8000)
    assert model.encoder.output_size == 512 and model.decoder.hidden_size == 512
    assert 11e6 < model.num_parameters() < 14e6  # 12.3M: 8.2M of it embeddings and output layer


@pytest.mark.parametrize("attention", sorted(ATTENTION_REGISTRY))
def test_flops_from_layer_shapes_match_torch_flop_counter(attention):
    """The analytic count used by the benchmarks agrees with torch's own count of the
    matmul FLOPs of a forward + backward step on an unpadded batch."""
    from torch.utils.flop_counter import FlopCounterMode

    from mt.models.flops import train_step_flops

    model = build_model(small_cfg(attention=attention, enc_hidden=16, dec_hidden=32), 300, 400)
    B, S, T = 8, 6, 5
    src = torch.randint(4, 300, (B, S))
    lens, mask = torch.full((B,), S), torch.ones(B, S, dtype=torch.bool)
    tgt = torch.randint(4, 400, (B, T))
    batch = Batch(src, lens, mask, tgt, tgt, torch.ones(B, T, dtype=torch.bool), B * T, torch.arange(B))
    with FlopCounterMode(display=False) as counter:
        loss, _ = model.loss(batch)
        loss.backward()
    expected = train_step_flops(model, B * S, B * T, B)
    assert expected == pytest.approx(counter.get_total_flops(), rel=0.03)


@pytest.mark.parametrize("attention", sorted(ATTENTION_REGISTRY))
def test_search_flops_match_torch_flop_counter(attention):
    """Encoding and one search step over unpadded rows cost what encode_flops and
    decode_token_flops say (the figures behind the decoding FLOP/s of scripts/bench_decode.py)."""
    from torch.utils.flop_counter import FlopCounterMode

    from mt.models.flops import decode_token_flops, encode_flops

    model = build_model(small_cfg(attention=attention, enc_hidden=16, dec_hidden=32), 300, 400).eval()
    B, S = 8, 6
    src = torch.randint(4, 300, (B, S))
    lens, mask = torch.full((B,), S), torch.ones(B, S, dtype=torch.bool)
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            ctx, state = model.encode(src, lens, mask)
        assert encode_flops(model, B * S, B) == pytest.approx(counter.get_total_flops(), rel=0.03)
        prev = torch.randint(4, 400, (B,))
        _, _, state = model.next_scores(prev, state, ctx)  # a step past the first, as most are
        with FlopCounterMode(display=False) as counter:
            model.next_scores(prev, state, ctx)
    assert B * decode_token_flops(model, S) == pytest.approx(counter.get_total_flops(), rel=0.03)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_loss_equals_pytorch_cross_entropy(smoothing):
    """Loss and NLL come from one log-softmax; they equal F.cross_entropy with and without smoothing."""
    from torch.nn import functional as F

    torch.manual_seed(0)
    model = build_model(small_cfg(), V_SRC, V_TGT).eval()
    batch = random_batch()
    loss, nll = model.loss(batch, label_smoothing=smoothing)
    logits = model.output(model(batch)[0][batch.tgt_mask])
    gold = batch.tgt_out[batch.tgt_mask]
    torch.testing.assert_close(
        loss, F.cross_entropy(logits, gold, reduction="sum", label_smoothing=smoothing)
    )
    torch.testing.assert_close(nll, F.cross_entropy(logits, gold, reduction="sum"))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("chunk_rows", [7, 1024])
def test_fused_loss_gradient_equals_autograd_cross_entropy(smoothing, chunk_rows):
    """The gradient prepared in the forward pass equals autograd through F.cross_entropy,
    also when the rows are cut into slices that do not divide them evenly."""
    from torch.nn import functional as F

    from mt.models.loss import output_cross_entropy

    torch.manual_seed(0)
    output = torch.nn.Linear(16, 50)
    feats = torch.randn(23, 16, requires_grad=True)
    gold = torch.randint(0, 50, (23,))
    loss, nll = output_cross_entropy(feats, output, gold, smoothing, chunk_rows=chunk_rows)
    (2.5 * loss).backward()  # a non-unit upstream gradient
    got = (feats.grad.clone(), output.weight.grad.clone(), output.bias.grad.clone())
    feats.grad = None
    output.zero_grad()
    ref = F.cross_entropy(output(feats), gold, reduction="sum", label_smoothing=smoothing)
    (2.5 * ref).backward()
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(nll, F.cross_entropy(output(feats), gold, reduction="sum"))
    assert not nll.requires_grad
    for a, b in zip(got, (feats.grad, output.weight.grad, output.bias.grad), strict=True):
        torch.testing.assert_close(a, b)


def test_fused_loss_under_bf16_autocast_matches_float32():
    from mt.models.loss import output_cross_entropy

    torch.manual_seed(0)
    output = torch.nn.Linear(32, 100)
    feats = torch.randn(40, 32, requires_grad=True)
    gold = torch.randint(0, 100, (40,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = output_cross_entropy(feats, output, gold, 0.1)
    assert loss.dtype == torch.float32
    loss.backward()
    g16 = feats.grad.clone()
    feats.grad = None
    ref, _ = output_cross_entropy(feats, output, gold, 0.1)
    ref.backward()
    torch.testing.assert_close(loss, ref, rtol=2e-2, atol=0.5)
    torch.testing.assert_close(g16, feats.grad, rtol=5e-2, atol=5e-2)


def test_recurrent_weights_are_cast_once_per_batch_under_autocast():
    """Under bf16 autocast the decoder's recurrent weight is cast (and kept for backward) once
    per batch, not once per target step: the number of bf16 weight copies does not grow with T."""
    torch.manual_seed(0)
    model = build_model(small_cfg(), V_SRC, V_TGT).train()
    w_hh = model.decoder.layers[0].w_hh

    def weight_copies(T: int) -> int:
        batch = random_batch(T=T)
        copies: set[int] = set()

        def pack(t):
            if t.dtype == torch.bfloat16 and t.shape in (w_hh.shape, w_hh.t().shape):
                copies.add(t.untyped_storage().data_ptr())
            return t

        with (
            torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
            torch.autocast("cpu", torch.bfloat16),
        ):
            loss, _ = model.loss(batch)
        loss.backward()
        return len(copies)

    assert weight_copies(3) == weight_copies(8) <= 2  # w_hh and the input-feeding weight
    assert w_hh.grad is not None and w_hh.grad.dtype == torch.float32
