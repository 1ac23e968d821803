"""Attention mechanisms by name: the registry, its decorator and the factory."""

from __future__ import annotations

from collections.abc import Callable

from mt.models.attention.base import Attention

ATTENTION_REGISTRY: dict[str, type[Attention]] = {}


def register(name: str) -> Callable[[type[Attention]], type[Attention]]:
    """Class decorator that makes an :class:`Attention` subclass buildable as ``name``."""

    def decorator(cls: type[Attention]) -> type[Attention]:
        if not (isinstance(cls, type) and issubclass(cls, Attention)):
            raise TypeError(f"@register({name!r}) needs an Attention subclass, got {cls!r}")
        known = ATTENTION_REGISTRY.get(name)
        if known is not None and known is not cls:
            raise ValueError(f"attention name {name!r} is already taken by {known.__qualname__}")
        cls.name = name
        ATTENTION_REGISTRY[name] = cls
        return cls

    return decorator


def build_attention(name: str, query_size: int, key_size: int, hidden_size: int = 0) -> Attention:
    """The registered mechanism ``name`` with the given sizes (hidden_size 0 = query_size)."""
    try:
        cls = ATTENTION_REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(ATTENTION_REGISTRY))
        raise ValueError(f"unknown attention {name!r}; known mechanisms: {known}") from None
    return cls(query_size, key_size, hidden_size)
