"""Searchers addressed by name: ``register_searcher``, ``build_searcher``, ``available_searchers``.

The registry is a :class:`oneshot.registry.Registry`; installed packages add searchers through the
``oneshot.searchers`` entry-point group.
"""

from __future__ import annotations

from typing import Any

from oneshot.registry import Registry, RegistryError
from oneshot.search.base import Searcher
from oneshot.space import SearchSpace

__all__ = ["SEARCHERS", "available_searchers", "build_searcher", "get_searcher_class", "register_searcher"]

SEARCHERS: Registry[Searcher] = Registry("searcher", base=Searcher, entry_point_group="oneshot.searchers")


def register_searcher(name: str | type[Searcher], cls: type[Searcher] | None = None) -> Any:
    """Register a :class:`Searcher` subclass: ``register_searcher(MySearcher)`` or
    ``@register_searcher`` (under its ``name`` attribute), ``register_searcher("x", MySearcher)``
    or ``@register_searcher("x")``.

    Raises ``ValueError`` if the name is taken (by another class) or the class is not a searcher.
    """
    if isinstance(name, type):
        return SEARCHERS.register(name)
    if not name or not isinstance(name, str):
        raise RegistryError(f"a searcher name must be a non-empty string, got {name!r}")
    if cls is not None:
        return SEARCHERS.register(cls, name=name)
    return SEARCHERS.register(name=name)


def available_searchers() -> list[str]:
    """Names of the registered searchers, sorted."""
    return SEARCHERS.names()


def get_searcher_class(name: str) -> type[Searcher]:
    """The class registered as ``name``; ``ValueError`` listing the available names otherwise."""
    return SEARCHERS.get(name)


def build_searcher(name: str, space: SearchSpace, *, budget: int | None = None, **options: Any) -> Searcher:
    """Build the searcher ``name`` for ``space``.

    ``budget=n`` builds it with :meth:`Searcher.with_budget` (then only ``seed`` and the searcher's
    ``budget_extras``, e.g. ``objectives``, may be given besides); otherwise ``options`` are
    ``seed`` and the fields of its options model (``Searcher.Options``), checked strictly: an
    unknown option or a value of the wrong type raises ``ValueError`` in one line naming the
    searcher and the option. A searcher with its own ``__init__`` gets the options unchecked.
    """
    cls = get_searcher_class(name)
    declared = cls.__init__ is Searcher.__init__  # options declared in a model, not by an __init__
    accepted = [*cls.Options.model_fields, "seed"]
    unknown = sorted(set(options) - set(accepted))
    if declared and unknown:
        raise ValueError(
            f"searcher {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(accepted)} (or budget, with seed only)"
        )
    if budget is not None:
        allowed = {"seed", *cls.budget_extras}
        extra = sorted(set(options) - allowed)
        if extra:
            raise ValueError(
                f"searcher {name!r}: with a budget only {', '.join(map(repr, sorted(allowed)))} may be set, got {extra}"
            )
        return cls.with_budget(space, int(budget), **options)
    if not declared:
        return cls(space, **options)
    seed = options.pop("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"searcher {name!r} option seed: must be an integer (got {seed!r})")
    return cls(space, cls.Options.from_arguments(name, (), options, strict=True), seed=seed)
