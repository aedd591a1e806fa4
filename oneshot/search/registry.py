"""Searchers addressed by name: ``register_searcher``, ``build_searcher``, ``available_searchers``.

The registry is a :class:`oneshot.registry.Registry`; installed packages add searchers through the
``oneshot.searchers`` entry-point group.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
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

    ``budget=n`` builds it with :meth:`Searcher.with_budget` (then only ``seed`` and the keyword
    arguments that searcher's ``with_budget`` accepts, e.g. ``objectives``, may be given besides);
    otherwise ``options`` are its constructor's keyword arguments. Unknown options raise
    ``ValueError`` naming the accepted ones.
    """
    cls = get_searcher_class(name)
    accepted = _accepted_options(cls.__init__)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"searcher {name!r} has no option {', '.join(map(repr, unknown))}; "
            f"accepted: {', '.join(accepted)} (or budget, with seed only)"
        )
    if budget is not None:
        allowed = {"seed", *_accepted_options(cls.with_budget, skip=2)}
        extra = sorted(set(options) - allowed)
        if extra:
            raise ValueError(
                f"searcher {name!r}: with a budget only {', '.join(map(repr, sorted(allowed)))} may be set, got {extra}"
            )
        return cls.with_budget(space, int(budget), **options)
    _check_option_types(name, cls.__init__, options)
    return cls(space, **options)


def _check_option_types(name: str, init: Callable[..., Any], options: dict[str, Any]) -> None:
    """Check option values against the constructor's annotations, so that ``cycles=abc`` is one
    clear line now rather than a comparison error deep inside the search."""
    import typing

    from pydantic import TypeAdapter, ValidationError

    try:
        hints = typing.get_type_hints(init)
    except Exception:  # unresolvable annotations: the constructor will have to judge
        return
    for key, value in options.items():
        if key not in hints:
            continue
        try:
            TypeAdapter(hints[key]).validate_python(value, strict=True)
        except ValidationError as exc:
            message = exc.errors()[0]["msg"]
            raise ValueError(f"searcher {name!r} option {key}: {message} (got {value!r})") from None
        except Exception:  # a type pydantic cannot check
            continue


def _accepted_options(init: Callable[..., Any], *, skip: int = 2) -> list[str]:
    params = list(inspect.signature(init).parameters.values())[skip:]  # self, space (or space, n)
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
