"""Attention mechanisms for the RNN decoder, chosen by name from a registry.

Each mechanism lives in its own module of this package and registers itself with
``@register("name")``; importing the package imports every module in it (no list to edit), which
fills :data:`ATTENTION_REGISTRY`. Adding a mechanism is one module here plus one
``mt/configs/model/attention/<name>.yaml``; the module implements ``score`` and states its cost in
``score_flops``.

Usage (once per batch, then once per decoder step)::

    attn = build_attention(cfg.name, query_size=dec_hidden, key_size=enc_out, hidden_size=cfg.hidden_size,
                           window=cfg.window, score=cfg.score)  # each takes the settings it names
    keys = attn.precompute_keys(memory)                    # memory (B, S, Hk)
    context, weights = attn(query, keys, memory, mask, t)  # query (B, Hq), mask (B, S) bool, step t
"""

from mt.models.attention.base import Attention, attend, masked_softmax
from mt.models.attention.registry import (
    ATTENTION_REGISTRY,
    build_attention,
    check_attention_name,
    check_coverage,
    import_submodules,
    register,
)

MODULES = import_submodules(__name__, __path__)  # every mechanism registers itself on import

__all__ = [
    "ATTENTION_REGISTRY",
    "Attention",
    "attend",
    "build_attention",
    "check_attention_name",
    "check_coverage",
    "masked_softmax",
    "register",
]
