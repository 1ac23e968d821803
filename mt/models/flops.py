"""Model FLOPs of a training step, counted from the layer shapes.

A matrix multiply of (m, k) by (k, n) is 2mkn FLOPs; a training step is counted as three
forward passes (the backward pass costs about twice the forward). Only real tokens count:
padding is waste, not model work. Element-wise operations are left out.
"""

from __future__ import annotations

from mt.models.cells import GATES
from mt.models.seq2seq import Seq2Seq


def attention_flops(model: Seq2Seq, src_len: float) -> tuple[float, float]:
    """(per source token: precomputed keys, per target token: query side, energies and
    context) forward FLOPs of the model's attention mechanism."""
    att = model.decoder.attention
    hq, hk, a = att.query_size, att.key_size, att.hidden_size
    context = 2 * src_len * hk
    if att.name in ("bahdanau", "luong_concat"):  # W_k K once; W_q q and v^T tanh(.) per step
        return 2.0 * a * hk, 2.0 * a * hq + 2 * src_len * a + context
    if att.name == "luong_general":  # K W^T once; q . k per step
        return 2.0 * hq * hk, 2 * src_len * hq + context
    return 0.0, 2 * src_len * hk + context  # luong_dot, scaled_dot


def train_step_flops(model: Seq2Seq, src_tokens: int, tgt_tokens: int, n_sentences: int) -> float:
    """Forward + backward FLOPs of one step over a batch with these real token counts."""
    enc, dec = model.encoder, model.decoder
    g_enc = GATES[enc.rnn_type] * enc.hidden_size
    enc_per_tok = 0.0
    for layer in range(enc.num_layers):
        n_in = enc.embed.embedding_dim if layer == 0 else enc.output_size
        enc_per_tok += enc.num_directions * 2 * g_enc * (n_in + enc.hidden_size)
    g_dec = GATES[dec.rnn_type] * dec.hidden_size
    dec_per_tok = 0.0
    for layer in dec.layers:
        n_in = sum(w.shape[1] for w in layer.w_ih)
        dec_per_tok += 2 * g_dec * (n_in + dec.hidden_size)
    dec_per_tok += 2 * dec.combine.weight.numel() + 2 * model.output.weight.numel()
    src_len = src_tokens / max(n_sentences, 1)
    att_key, att_tgt = attention_flops(model, src_len)
    bridge = sum(2 * p.numel() for n, p in model.bridge.named_parameters() if n.endswith("weight"))
    forward = (
        src_tokens * (enc_per_tok + att_key) + tgt_tokens * (dec_per_tok + att_tgt) + n_sentences * bridge
    )
    return 3.0 * forward
