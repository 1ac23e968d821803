"""Model FLOPs of a training step, counted from the layer shapes.

A matrix multiply of (m, k) by (k, n) is 2mkn FLOPs; a training step is counted as three
forward passes (the backward pass costs about twice the forward). Only real tokens count:
padding is waste, not model work. Element-wise operations are left out. Each attention
mechanism states its own cost (``Attention.flops``).
"""

from __future__ import annotations

from mt.models.cells import GATES
from mt.models.seq2seq import Seq2Seq


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
    att_key, att_tgt = dec.attention.flops(src_len)  # per source token, per target token
    bridge = sum(2 * p.numel() for n, p in model.bridge.named_parameters() if n.endswith("weight"))
    forward = (
        src_tokens * (enc_per_tok + att_key) + tgt_tokens * (dec_per_tok + att_tgt) + n_sentences * bridge
    )
    return 3.0 * forward
