"""One kind of registry for everything addressed by name: tasks, searchers, samplers.

A :class:`Registry` maps names to classes. Classes are registered in-process (``@REG.register``
uses the class's ``name`` attribute) or by installed packages through an entry-point group
(``[project.entry-points."oneshot.tasks"] mytask = "mypkg.task:MyTask"``), loaded on first use.
A name may also be a ``module:attribute`` path, imported on the spot with the current directory
on the import path (as ``python -m`` has it), so a class can be used without packaging it. Registering a second, different class under a taken name is an error.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar, overload

from oneshot.errors import OneshotError

__all__ = ["Registry", "RegistryError", "UnknownNameError"]

T = TypeVar("T")


class RegistryError(OneshotError, ValueError):
    """A registration conflict, or a registered object that cannot be loaded or is of the wrong kind."""


class UnknownNameError(RegistryError, KeyError):
    """No entry under that name; the message lists the available ones."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0])


class Registry(Generic[T]):
    """Named classes of one kind (``kind``: "task", "searcher", ...), subclasses of ``base``.

    Args:
        kind: what is registered, for messages.
        base: every entry must be a subclass of it.
        entry_point_group: installed packages add entries through this group.
    """

    def __init__(self, kind: str, *, base: type[T], entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.base = base
        self.entry_point_group = entry_point_group
        self._entries: dict[str, type[T]] = {}

    # ----------------------------------------------------------------- registering
    @overload
    def register(self, obj: type[T], *, name: str | None = None) -> type[T]: ...
    @overload
    def register(self, obj: None = None, *, name: str | None = None) -> Callable[[type[T]], type[T]]: ...

    def register(self, obj: type[T] | None = None, *, name: str | None = None) -> Any:
        """Register a class under ``name`` (default: its ``name`` attribute); usable as a decorator."""

        def _register(cls: type[T]) -> type[T]:
            key = name or getattr(cls, "name", None)
            if not key or not isinstance(key, str):
                raise RegistryError(f"{self.kind} {cls!r} has no name (set a `name` class attribute)")
            self._check_kind(cls, key)
            existing = self._entries.get(key)
            if existing is not None and existing is not cls:
                raise RegistryError(
                    f"{self.kind} {key!r} is already registered by {existing.__module__}.{existing.__qualname__}"
                )
            self._entries[key] = cls
            return cls

        return _register(obj) if obj is not None else _register

    def _check_kind(self, cls: Any, key: str) -> None:
        if not (isinstance(cls, type) and issubclass(cls, self.base)):
            raise RegistryError(f"{self.kind} {key!r}: {cls!r} is not a {self.base.__name__} subclass")

    # ----------------------------------------------------------------- looking up
    def _entry_points(self) -> dict[str, Any]:
        if self.entry_point_group is None:
            return {}
        return {ep.name: ep for ep in entry_points(group=self.entry_point_group)}

    def names(self) -> list[str]:
        """Every available name (registered or installed), sorted."""
        return sorted(set(self._entries) | set(self._entry_points()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> type[T]:
        """The class registered as ``name`` (or at ``module:attribute``); one-line errors otherwise."""
        if name in self._entries:
            return self._entries[name]
        if ":" in name:
            return self._import_path(name)
        ep = self._entry_points().get(name)
        if ep is None:
            available = ", ".join(self.names()) or "none"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; available {self.kind}s: {available}")
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plug-in is reported, not raised raw
            raise RegistryError(f"{self.kind} {name!r} ({ep.value}) could not be imported: {type(exc).__name__}: {exc}") from None
        self._check_kind(cls, name)
        registered_as = getattr(cls, "name", name)
        if registered_as != name:
            raise RegistryError(f"entry point {name!r} ({ep.value}) loads a {self.kind} named {registered_as!r}")
        return self.register(cls, name=name)

    def _import_path(self, path: str) -> type[T]:
        module_name, _, attr = path.partition(":")
        _current_directory_importable()
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise RegistryError(f"{self.kind} {path!r}: cannot import module {module_name!r} ({type(exc).__name__}: {exc})") from None
        cls = module
        for part in attr.split("."):
            cls = getattr(cls, part, None)  # type: ignore[assignment]
            if cls is None:
                raise RegistryError(f"{self.kind} {path!r}: module {module_name!r} has no attribute {attr!r}")
        self._check_kind(cls, path)
        return cls  # type: ignore[return-value]


def _current_directory_importable() -> None:
    """Put the working directory on ``sys.path`` (once), as ``python -m`` does: the ``oneshot``
    console script otherwise sees only installed packages, and ``--task mymodule:MyTask`` run next
    to ``mymodule.py`` would not find it."""
    cwd = os.getcwd()
    if not any(os.path.abspath(p or ".") == cwd for p in sys.path):
        sys.path.append(cwd)
