"""A searcher's typed options: the model every searcher declares its options in.

Each searcher declares its options as a :class:`SearcherOptions` subclass next to it (e.g.
``EvolutionOptions``) and names it in its ``Options`` class attribute. :class:`~oneshot.search.Searcher`
builds that model from its constructor's arguments (``EvolutionSearcher(space, population=20,
seed=0)``; positional arguments after the space fill the fields in declaration order), and
:func:`~oneshot.search.build_searcher` validates a config's ``search.options.<searcher>`` through
it strictly, so that ``cycles=abc`` is one clear line rather than an error deep in the search.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from oneshot.search.objectives import Objective, parse_objectives

__all__ = ["ObjectivesOption", "SearcherOptions", "default_objectives"]

_O = TypeVar("_O", bound="SearcherOptions")

#: an ``objectives`` option: names, ``"+name"`` / ``"-name"`` or mappings, parsed into Objectives
ObjectivesOption = Annotated[tuple[Objective, ...], BeforeValidator(parse_objectives)]


def default_objectives() -> Any:
    """The default ``objectives`` field: ``("fitness",)``, parsed."""
    return Field(("fitness",), validate_default=True)


class SearcherOptions(BaseModel):
    """Base of a searcher's options model: frozen, and no option it does not declare.

    Declare fields with defaults and constraints (``population: int = Field(50, ge=1)``) and
    cross-field rules as pydantic validators; a rule that needs the search space belongs in the
    searcher's ``_setup``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def from_arguments(
        cls: type[_O], searcher: str, args: Sequence[Any], kwargs: Mapping[str, Any], *, strict: bool = False
    ) -> _O:
        """The options of ``searcher`` from a constructor's positional and keyword arguments (or
        one instance of this model); ``ValueError`` in one line naming the searcher and the option.

        ``strict`` refuses conversions (``"5"`` for an int), as for options read from a config.
        """
        if len(args) == 1 and isinstance(args[0], cls) and not kwargs:
            return args[0]
        names = list(cls.model_fields)
        if len(args) > len(names):
            raise TypeError(f"searcher {searcher!r} takes at most {len(names)} positional options ({', '.join(names)}), got {len(args)}")
        data = dict(zip(names, args, strict=False))  # fewer arguments than fields
        twice = sorted(set(data) & set(kwargs))
        if twice:
            raise TypeError(f"searcher {searcher!r} got option {twice[0]!r} twice")
        data.update(kwargs)
        try:
            return cls.model_validate(data, strict=strict)
        except ValidationError as exc:
            raise ValueError(_one_line(searcher, exc, names)) from None


def _one_line(searcher: str, exc: ValidationError, accepted: list[str]) -> str:
    errors = exc.errors()
    unknown = [str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden"]
    if unknown:
        return f"searcher {searcher!r} has no option {', '.join(map(repr, unknown))}; accepted: {', '.join(accepted)}"
    error = errors[0]
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:  # a rule between several options
        return f"searcher {searcher!r}: {message}"
    return f"searcher {searcher!r} option {'.'.join(map(str, error['loc']))}: {message} (got {error['input']!r})"
