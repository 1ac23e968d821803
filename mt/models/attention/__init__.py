"""Attention mechanisms for the RNN decoder, chosen by name from a registry.

Each mechanism lives in its own module and registers itself on import; importing this package
fills :data:`ATTENTION_REGISTRY`. Adding a mechanism is one module here (imported below) plus one
``mt/configs/model/attention/<name>.yaml``.

Usage (once per batch, then once per decoder step)::

    attn = build_attention(cfg.name, query_size=dec_hidden, key_size=enc_out, hidden_size=cfg.hidden_size)
    keys = attn.precompute_keys(memory)                    # memory (B, S, Hk)
    context, weights = attn(query, keys, memory, mask)     # query (B, Hq), mask (B, S) bool
"""

from mt.models.attention import bahdanau, luong_concat, luong_dot, luong_general, scaled_dot  # noqa: F401
from mt.models.attention.base import Attention, attend, masked_softmax
from mt.models.attention.registry import ATTENTION_REGISTRY, build_attention, register

__all__ = ["ATTENTION_REGISTRY", "Attention", "attend", "build_attention", "masked_softmax", "register"]
