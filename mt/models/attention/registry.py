"""Attention mechanisms by name: the registry, its decorator, module discovery and the factory."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from typing import Any

from mt.errors import ConfigError
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


def import_submodules(package: str, path: Iterable[str]) -> list[str]:
    """Import every module of ``package`` (found on its ``__path__``), so each ``@register``
    runs; returns the full module names, sorted."""
    names = sorted(f"{package}.{info.name}" for info in pkgutil.iter_modules(path) if not info.ispkg)
    for name in names:
        importlib.import_module(name)
    return names


def check_attention_name(name: str, key: str = "model.attention.name") -> None:
    """Raise ConfigError, naming `key` and the registered mechanisms, unless `name` is registered."""
    if name not in ATTENTION_REGISTRY:
        known = ", ".join(repr(n) for n in sorted(ATTENTION_REGISTRY))
        raise ConfigError(f"config error at `{key}`: {name!r} is not one of {known}")


def check_coverage(name: str, coverage: bool) -> None:
    """Raise ConfigError naming `model.attention.coverage` when mechanism `name` (registered) cannot
    take a coverage vector; checked before any work is done and again when the model is built."""
    if coverage and "coverage" not in ATTENTION_REGISTRY[name].settings:
        able = sorted(n for n, c in ATTENTION_REGISTRY.items() if "coverage" in c.settings)
        local = " and ".join(n for n in able if "score" in ATTENTION_REGISTRY[n].settings)  # inner score
        raise ConfigError(
            f"config error at `model.attention.coverage`: {name} has no energy layer to take the coverage "
            f"vector; use one that has ({', '.join(n for n in able if n not in local)}; {local} with "
            "model.attention.score=concat) or model.attention.coverage=false"
        )


def build_attention(
    name: str, query_size: int, key_size: int, hidden_size: int = 0, **settings: Any
) -> Attention:
    """The registered mechanism ``name`` with the given sizes (hidden_size 0 = query_size).

    ``settings`` may hold any AttentionConfig keys; each mechanism takes those it names in its
    ``settings`` class attribute (e.g. ``window`` and ``score`` for the local ones) and ignores
    the others, so callers can pass the whole config section. ``coverage=True`` for a mechanism
    that cannot take it is a ConfigError naming ``model.attention.coverage``."""
    try:
        cls = ATTENTION_REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(ATTENTION_REGISTRY))
        raise ValueError(f"unknown attention {name!r}; known mechanisms: {known}") from None
    check_coverage(name, bool(settings.get("coverage")))
    return cls(query_size, key_size, hidden_size, **{k: v for k, v in settings.items() if k in cls.settings})
