"""Pruner and recoverer registries: decorator registration, wildcard listing, a None-dropping factory.

Same style as the backbone registry (``backbones._registry``, whose generic :class:`Registry` is
reused): one registry per axis, filled by a decorator on the strategy class, listed with fnmatch
patterns. ``strategies/__init__.py`` imports every strategy module once, so both registries are
complete as soon as ``import strategies`` returns (no import-time magic beyond that).

    @register_pruner("cluster")
    class ClusterPruner(Pruner): ...

    create_pruner("cluster", k=2)            # None kwargs are dropped, unknown ones rejected
    list_pruners("*", exclude="none")
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from backbones._registry import Registry, RegistryError
from strategies.base import Pruner, Recoverer

P = TypeVar("P", bound=type[Pruner])
R = TypeVar("R", bound=type[Recoverer])

_PRUNERS = Registry("pruner")
_RECOVERERS = Registry("recoverer")


def _register(registry: Registry, base: type, name: str) -> Callable[[Any], Any]:
    """Class decorator factory shared by both registries: type-checks, names and adds the class."""

    def deco(cls: Any) -> Any:
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise TypeError(f"@register_{registry.kind}('{name}') expects a {base.__name__} subclass, got {cls!r}")
        setattr(cls, "name", name)  # noqa: B010  (cls is typed as a plain type here)
        registry.add(name, cls)
        return cls

    return deco


def register_pruner(name: str) -> Callable[[P], P]:
    """Class decorator: ``@register_pruner("uniform")`` over a :class:`Pruner` subclass."""
    return _register(_PRUNERS, Pruner, name)


def register_recoverer(name: str) -> Callable[[R], R]:
    """Class decorator: ``@register_recoverer("attention")`` over a :class:`Recoverer` subclass."""
    return _register(_RECOVERERS, Recoverer, name)


def list_pruners(pattern: str | Iterable[str] = "*", exclude: str | Iterable[str] = ()) -> list[str]:
    """Registered pruner names matching an fnmatch ``pattern``, minus ``exclude`` (sorted)."""
    return _PRUNERS.names(pattern, exclude)


def list_recoverers(pattern: str | Iterable[str] = "*", exclude: str | Iterable[str] = ()) -> list[str]:
    """Registered recoverer names matching an fnmatch ``pattern``, minus ``exclude`` (sorted)."""
    return _RECOVERERS.names(pattern, exclude)


def get_pruner_class(name: str) -> type[Pruner]:
    """The class registered as pruner ``name`` (RegistryError lists the known ones)."""
    cls: type[Pruner] = _PRUNERS.get(name)
    return cls


def get_recoverer_class(name: str) -> type[Recoverer]:
    """The class registered as recoverer ``name`` (RegistryError lists the known ones)."""
    cls: type[Recoverer] = _RECOVERERS.get(name)
    return cls


def _options(cls: type, fixed: tuple[str, ...] = ()) -> list[str]:
    params = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
    return [
        p
        for p in params
        if p != "self" and p not in fixed and params[p].kind not in (params[p].VAR_KEYWORD, params[p].VAR_POSITIONAL)
    ]


def _clean(kind: str, name: str, cls: type, kwargs: dict[str, Any], fixed: tuple[str, ...] = ()) -> dict[str, Any]:
    clean = {k: v for k, v in kwargs.items() if v is not None}
    options = _options(cls, fixed)
    unknown = sorted(set(clean) - set(options))
    if unknown:
        known = ", ".join(options) if options else "none"
        raise RegistryError(f"{kind} '{name}' does not take {', '.join(unknown)} (options: {known})")
    return clean


def create_pruner(name: str, **kwargs: Any) -> Pruner:
    """Build pruner ``name``; ``None`` kwargs are dropped, unknown ones rejected (one-line message)."""
    cls = get_pruner_class(name)
    return cls(**_clean("pruner", name, cls, kwargs))


def create_recoverer(name: str, frames: int, dim: int, **kwargs: Any) -> Recoverer:
    """Build recoverer ``name`` for ``frames`` T output frames and token width ``dim`` C.

    ``None`` kwargs are dropped, unknown ones rejected (one-line message).
    """
    cls = get_recoverer_class(name)
    return cls(frames=frames, dim=dim, **_clean("recoverer", name, cls, kwargs, fixed=("frames", "dim")))


__all__ = [
    "RegistryError",
    "create_pruner",
    "create_recoverer",
    "get_pruner_class",
    "get_recoverer_class",
    "list_pruners",
    "list_recoverers",
    "register_pruner",
    "register_recoverer",
]
