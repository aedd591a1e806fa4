"""Searchers addressed by name: ``register_searcher``, ``build_searcher``, ``available_searchers``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from oneshot.search.base import Searcher
from oneshot.space import SearchSpace

__all__ = ["available_searchers", "build_searcher", "get_searcher_class", "register_searcher"]

S = TypeVar("S", bound=type[Searcher])

_SEARCHERS: dict[str, type[Searcher]] = {}


def register_searcher(name: str, cls: type[Searcher] | None = None) -> Any:
    """Register a :class:`Searcher` subclass under ``name``; usable as ``@register_searcher("x")``.

    Raises ``ValueError`` if the name is taken (by another class) or the class is not a searcher.
    """

    def _register(klass: S) -> S:
        if not (isinstance(klass, type) and issubclass(klass, Searcher)):
            raise ValueError(f"searcher {name!r}: {klass!r} is not a Searcher subclass")
        existing = _SEARCHERS.get(name)
        if existing is not None and existing is not klass:
            raise ValueError(
                f"searcher name {name!r} is already registered by {existing.__module__}.{existing.__qualname__}"
            )
        _SEARCHERS[name] = klass
        return klass

    if not name or not isinstance(name, str):
        raise ValueError(f"a searcher name must be a non-empty string, got {name!r}")
    if cls is not None:
        return _register(cls)  # type: ignore[type-var]
    return _register


def available_searchers() -> list[str]:
    """Names of the registered searchers, sorted."""
    return sorted(_SEARCHERS)


def get_searcher_class(name: str) -> type[Searcher]:
    """The class registered as ``name``; ``ValueError`` listing the available names otherwise."""
    try:
        return _SEARCHERS[name]
    except KeyError:
        raise ValueError(
            f"unknown searcher {name!r}; available: {', '.join(available_searchers())}"
        ) from None


def build_searcher(name: str, space: SearchSpace, *, budget: int | None = None, **options: Any) -> Searcher:
    """Build the searcher ``name`` for ``space``.

    ``budget=n`` builds it with :meth:`Searcher.with_budget` (then only ``seed`` and the keyword
    arguments that searcher's ``with_budget`` accepts, e.g. ``objectives``, may be given besides); otherwise ``options`` are its constructor's keyword arguments. Unknown options raise
    ``ValueError`` naming the accepted ones.
    """
    cls = get_searcher_class(name)
    if budget is not None:
        allowed = {"seed", *_accepted_options(cls.with_budget, skip=2)}
        extra = sorted(set(options) - allowed)
        if extra:
            raise ValueError(
                f"searcher {name!r}: with a budget only {', '.join(map(repr, sorted(allowed)))} may be set, got {extra}"
            )
        return cls.with_budget(space, int(budget), **options)
    accepted = _accepted_options(cls.__init__)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"searcher {name!r} has no option {', '.join(map(repr, unknown))}; accepted: {', '.join(accepted)}"
        )
    return cls(space, **options)


def _accepted_options(init: Callable[..., Any], *, skip: int = 2) -> list[str]:
    params = list(inspect.signature(init).parameters.values())[skip:]  # self, space (or space, n)
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
