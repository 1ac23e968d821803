"""Model FLOPs of a training step and of a search step, counted from the layer shapes.

A matrix multiply of (m, k) by (k, n) is 2mkn FLOPs; a training step is counted as three
forward passes (the backward pass costs about twice the forward). Only real tokens count:
padding is waste, not model work. Element-wise operations are left out. Each attention
mechanism states its own cost (``Attention.flops``).
"""

from __future__ import annotations

from mt.models.cells import GATES
from mt.models.seq2seq import Seq2Seq


def encode_flops(model: Seq2Seq, src_tokens: float, n_sentences: int) -> float:
    """Forward FLOPs of encoding `n_sentences` holding `src_tokens` real tokens: the RNN
    layers, the attention's keys and the bridge to the decoder's first state."""
    enc = model.encoder
    g_enc = GATES[enc.rnn_type] * enc.hidden_size
    enc_per_tok = 0.0
    for layer in range(enc.num_layers):
        n_in = enc.embed.embedding_dim if layer == 0 else enc.output_size
        enc_per_tok += enc.num_directions * 2 * g_enc * (n_in + enc.hidden_size)
    att_key, _ = model.decoder.attention.flops(src_tokens / max(n_sentences, 1))
    bridge = sum(2 * p.numel() for n, p in model.bridge.named_parameters() if n.endswith("weight"))
    return src_tokens * (enc_per_tok + att_key) + n_sentences * bridge


def decode_token_flops(model: Seq2Seq, src_len: float, vocab: int | None = None) -> float:
    """Forward FLOPs of one target position of one sentence (or one search hypothesis) over
    `src_len` real source tokens: the RNN layers, attention, W_c and the output projection
    (onto `vocab` rows of it, a shortlist's, instead of all)."""
    dec = model.decoder
    g_dec = GATES[dec.rnn_type] * dec.hidden_size
    per_tok = 0.0
    for layer in dec.layers:
        n_in = sum(w.shape[1] for w in layer.w_ih)
        per_tok += 2 * g_dec * (n_in + dec.hidden_size)
    rows = model.output.out_features if vocab is None else vocab
    per_tok += 2 * dec.combine.weight.numel() + 2 * rows * model.output.in_features
    return per_tok + dec.attention.flops(src_len)[1]


def train_step_flops(model: Seq2Seq, src_tokens: int, tgt_tokens: int, n_sentences: int) -> float:
    """Forward + backward FLOPs of one step over a batch with these real token counts."""
    src_len = src_tokens / max(n_sentences, 1)
    forward = encode_flops(model, src_tokens, n_sentences) + tgt_tokens * decode_token_flops(model, src_len)
    return 3.0 * forward
