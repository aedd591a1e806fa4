"""Search spaces: choice layers grouped by component, and architectures as one choice per layer.

(Over 400 lines: the three types are one vocabulary, with the validation and JSON forms that
every error message about an architecture goes through.)
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from oneshot.errors import ArchitectureError

__all__ = ["ChoiceLayer", "LayerSpec", "SearchSpace", "Architecture", "RandomLike"]

RandomLike = random.Random | np.random.Generator | int | None


class ChoiceLayer(nn.Module):
    """A layer that holds several candidate modules of which exactly one runs.

    Args:
        candidates: ordered mapping from a candidate name (e.g. ``"shuffle3x3"``) to its module.
            The order defines the choice indices used by :class:`Architecture`.
        label: a stable name for this layer, unique within a search space (e.g. ``"backbone.3"``).
        component: the component the layer belongs to (e.g. ``"backbone"``, ``"head"``, ``"inter"``).

    The forward pass runs the active candidate on the given inputs and returns its output
    unchanged. Choose the candidate with :func:`oneshot.activate` (or :meth:`set_active`);
    calling a layer with no active choice raises a ``RuntimeError`` that names the layer.
    """

    def __init__(self, candidates: Mapping[str, nn.Module], *, label: str, component: str) -> None:
        super().__init__()
        if len(candidates) < 1:
            raise ValueError(f"choice layer {label!r} needs at least one candidate")
        if not label:
            raise ValueError("a choice layer needs a non-empty label")
        if not component:
            raise ValueError(f"choice layer {label!r} needs a non-empty component")
        self.candidates = nn.ModuleDict(dict(candidates))
        self.label = label
        self.component = component
        self._choice_names: tuple[str, ...] = tuple(self.candidates.keys())
        self._active: int | None = None

    @property
    def choice_names(self) -> tuple[str, ...]:
        return self._choice_names

    @property
    def num_choices(self) -> int:
        return len(self._choice_names)

    @property
    def active(self) -> int | None:
        """Index of the active candidate, or ``None`` when no architecture is active."""
        return self._active

    @property
    def active_module(self) -> nn.Module:
        if self._active is None:
            raise RuntimeError(self._inactive_message())
        return self.candidates[self._choice_names[self._active]]

    def set_active(self, index: int | None) -> None:
        if index is not None and not 0 <= int(index) < self.num_choices:
            raise ArchitectureError(
                f"layer {self.label!r}: choice {index} out of range 0..{self.num_choices - 1}"
            )
        self._active = None if index is None else int(index)

    def _inactive_message(self) -> str:
        return (
            f"choice layer {self.label!r} has no active choice; run the model inside "
            "`with oneshot.activate(model, arch):` or freeze it with `oneshot.freeze(model, arch)`"
        )

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.active_module(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"label={self.label!r}, component={self.component!r}, choices={list(self._choice_names)}"


@dataclass(frozen=True)
class LayerSpec:
    """Description of one searchable layer: its label, component and choice names."""

    label: str
    component: str
    choice_names: tuple[str, ...]

    @property
    def num_choices(self) -> int:
        return len(self.choice_names)


@dataclass(frozen=True)
class Architecture:
    """One choice index per layer of a search space. Immutable and hashable.

    ``layer_components`` records the component of each layer so that the architecture can be
    written as JSON grouped by component without the space at hand.
    """

    choices: tuple[int, ...]
    layer_components: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.choices) != len(self.layer_components):
            raise ArchitectureError(
                f"architecture has {len(self.choices)} choices for {len(self.layer_components)} layers"
            )

    def __len__(self) -> int:
        return len(self.choices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.choices)

    def __getitem__(self, index: int) -> int:
        return self.choices[index]

    @property
    def key(self) -> str:
        """A compact string that identifies the architecture within its space."""
        return "-".join(str(c) for c in self.choices)

    def to_json(self) -> dict[str, list[int]]:
        """Choices grouped by component, in layer order: ``{"backbone": [...], "head": [...]}``."""
        grouped: dict[str, list[int]] = {}
        for component, choice in zip(self.layer_components, self.choices, strict=True):
            grouped.setdefault(component, []).append(int(choice))
        return grouped

    @classmethod
    def from_json(cls, space: SearchSpace, obj: Any) -> Architecture:
        """Read an architecture from its JSON form (grouped dict, flat list, or JSON text).

        Raises :class:`~oneshot.errors.ArchitectureError` naming the first problem found.
        """
        return space.from_json(obj)

    def save(self, path: str | Path) -> None:
        """Write the grouped JSON form to ``path`` (atomically)."""
        from oneshot.files import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_json()) + "\n")

    @classmethod
    def load(cls, space: SearchSpace, path: str | Path) -> Architecture:
        """Read an architecture JSON file and validate it against ``space``."""
        from oneshot.files import read_json

        obj = read_json(path, what="architecture file", error=ArchitectureError)
        try:
            return space.from_json(obj)
        except ArchitectureError as exc:
            raise ArchitectureError(f"{path}: {exc}") from None

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v}" for k, v in self.to_json().items())
        return f"Architecture({inner})"


def _as_generator(rng: RandomLike) -> random.Random | np.random.Generator:
    if rng is None or isinstance(rng, int):
        return np.random.default_rng(rng)
    return rng


def _randint(rng: random.Random | np.random.Generator, high: int) -> int:
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(high))
    return rng.randrange(high)


class SearchSpace:
    """An ordered list of searchable layers, grouped into components.

    Build one from a module holding :class:`ChoiceLayer` s (:meth:`from_module`, ordered by module
    traversal) or declare one without any module (:meth:`categorical`).
    """

    def __init__(self, layers: Sequence[LayerSpec]) -> None:
        if not layers:
            raise ValueError("a search space needs at least one layer")
        labels = [layer.label for layer in layers]
        dupes = sorted({label for label in labels if labels.count(label) > 1})
        if dupes:
            raise ValueError(f"duplicate choice-layer labels in search space: {dupes}")
        self._layers = tuple(layers)
        self._label_index = {layer.label: i for i, layer in enumerate(self._layers)}
        components: dict[str, list[int]] = {}
        for i, layer in enumerate(self._layers):
            components.setdefault(layer.component, []).append(i)
        self._components = {name: tuple(idx) for name, idx in components.items()}
        self._layer_components = tuple(layer.component for layer in self._layers)

    # ----------------------------------------------------------------- constructors
    @classmethod
    def from_module(cls, module: nn.Module) -> SearchSpace:
        """The space of every :class:`ChoiceLayer` inside ``module``, in traversal order."""
        layers = [
            LayerSpec(m.label, m.component, m.choice_names)
            for _, m in module.named_modules()
            if isinstance(m, ChoiceLayer)
        ]
        if not layers:
            raise ValueError(f"{type(module).__name__} contains no ChoiceLayer")
        return cls(layers)

    @classmethod
    def categorical(
        cls,
        components: Mapping[str, Sequence[int]],
        *,
        choice_names: Mapping[str, Sequence[Sequence[str]]] | None = None,
    ) -> SearchSpace:
        """A space declared by choice counts per layer, grouped by component.

        Example: ``SearchSpace.categorical({"backbone": [4] * 40, "head": [6] * 7, "inter": [3] * 9})``.
        Layers are labelled ``"{component}.{i}"``; choices are named ``"0", "1", ...`` unless
        ``choice_names`` gives names per component and layer.
        """
        layers = []
        for component, counts in components.items():
            for i, count in enumerate(counts):
                if int(count) < 1:
                    raise ValueError(f"layer {component}.{i} must have at least one choice, got {count}")
                if choice_names and component in choice_names:
                    names = tuple(str(n) for n in choice_names[component][i])
                    if len(names) != int(count):
                        raise ValueError(f"layer {component}.{i}: {len(names)} names for {count} choices")
                else:
                    names = tuple(str(c) for c in range(int(count)))
                layers.append(LayerSpec(f"{component}.{i}", component, names))
        return cls(layers)

    # ----------------------------------------------------------------- properties
    @property
    def layers(self) -> tuple[LayerSpec, ...]:
        return self._layers

    @property
    def num_layers(self) -> int:
        return len(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    @property
    def num_choices(self) -> tuple[int, ...]:
        """Number of choices of every layer, in layer order."""
        return tuple(layer.num_choices for layer in self._layers)

    @property
    def components(self) -> dict[str, tuple[int, ...]]:
        """Component name -> indices of its layers, in order of first appearance."""
        return dict(self._components)

    @property
    def size(self) -> int:
        """Exact number of architectures in the space."""
        return math.prod(self.num_choices)

    @property
    def window_size(self) -> int:
        """Length of a strictly fair window: the lcm of the choice counts."""
        return math.lcm(*self.num_choices)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(layer.label for layer in self._layers)

    def index_of(self, label: str) -> int:
        try:
            return self._label_index[label]
        except KeyError:
            raise KeyError(f"no layer labelled {label!r} in the search space") from None

    def signature(self) -> str:
        """A short hash of the space's layout (labels, components, choice names)."""
        text = json.dumps([[layer.label, layer.component, list(layer.choice_names)] for layer in self._layers])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # ----------------------------------------------------------------- architectures
    def architecture(self, choices: Sequence[int]) -> Architecture:
        """Validate a flat list of choice indices and wrap it as an :class:`Architecture`."""
        return self.validate(choices)

    def validate(self, arch: Architecture | Sequence[int]) -> Architecture:
        """Check an architecture against the space and return it as an :class:`Architecture`.

        Raises :class:`~oneshot.errors.ArchitectureError` naming the layer and the allowed range.
        """
        if isinstance(arch, Architecture):
            if arch.layer_components != self._layer_components:
                raise ArchitectureError(
                    f"architecture has components {_component_counts(arch.layer_components)}, "
                    f"the space has {_component_counts(self._layer_components)}"
                )
            choices: Sequence[Any] = arch.choices
        else:
            choices = list(arch)
        if len(choices) != self.num_layers:
            raise ArchitectureError(
                f"architecture has {len(choices)} choices, the search space has {self.num_layers} layers"
            )
        out = []
        for layer, choice in zip(self._layers, choices, strict=True):
            if isinstance(choice, bool) or not isinstance(choice, (int, np.integer)):
                raise ArchitectureError(
                    f"layer {layer.label!r}: choice must be an integer, got {choice!r}"
                )
            if not 0 <= int(choice) < layer.num_choices:
                raise ArchitectureError(
                    f"layer {layer.label!r}: choice {int(choice)} out of range 0..{layer.num_choices - 1}"
                )
            out.append(int(choice))
        return Architecture(tuple(out), self._layer_components)

    def from_json(self, obj: Any) -> Architecture:
        """An architecture from JSON: a dict grouped by component, a flat list, or JSON text."""
        if isinstance(obj, (str, bytes)):
            try:
                obj = json.loads(obj)
            except json.JSONDecodeError as exc:
                raise ArchitectureError(f"architecture is not valid JSON: {exc.msg}") from None
        if isinstance(obj, Mapping):
            unknown = [k for k in obj if k not in self._components]
            if unknown:
                raise ArchitectureError(
                    f"unknown component {unknown[0]!r} in architecture; the space has {list(self._components)}"
                )
            missing = [k for k in self._components if k not in obj]
            if missing:
                raise ArchitectureError(f"architecture is missing component {missing[0]!r}")
            flat: list[Any] = [None] * self.num_layers
            for name, idx in self._components.items():
                values = obj[name]
                if not isinstance(values, Sequence) or isinstance(values, (str, bytes)):
                    raise ArchitectureError(f"component {name!r} must be a list of choice indices")
                if len(values) != len(idx):
                    raise ArchitectureError(
                        f"component {name!r} has {len(values)} choices, the space has {len(idx)} layers"
                    )
                for i, v in zip(idx, values, strict=True):
                    flat[i] = v
            return self.validate(flat)
        if isinstance(obj, Sequence):
            return self.validate(obj)
        raise ArchitectureError(
            f"an architecture must be a dict grouped by component or a list, got {type(obj).__name__}"
        )

    def sample(self, rng: RandomLike = None) -> Architecture:
        """A uniformly random architecture (``rng``: seed, ``random.Random`` or numpy Generator)."""
        gen = _as_generator(rng)
        return Architecture(tuple(_randint(gen, k) for k in self.num_choices), self._layer_components)

    def __iter__(self) -> Iterator[LayerSpec]:
        return iter(self._layers)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self._layers == other._layers

    def __hash__(self) -> int:
        return hash(self._layers)

    def __repr__(self) -> str:
        comps = ", ".join(f"{k}: {len(v)} layers" for k, v in self._components.items())
        return f"SearchSpace({comps}; size={self.size:.3e}, window={self.window_size})"

    # ----------------------------------------------------------------- inspection
    def to_graph(self) -> Any:
        """The space as a ``networkx.DiGraph`` for inspection and plotting.

        Nodes: one per component (``kind="component"``), one per layer (``kind="layer"``, with
        ``component``, ``num_choices``, ``choices``) and one per choice (``kind="choice"``).
        Edges: component -> its layers (``relation="contains"``), layer -> next layer of the same
        component (``relation="next"``), layer -> its choices (``relation="choice"``).
        """
        import networkx as nx

        graph = nx.DiGraph(size=self.size, window_size=self.window_size)
        for name, idx in self._components.items():
            graph.add_node(name, kind="component", num_layers=len(idx))
            previous = None
            for i in idx:
                layer = self._layers[i]
                graph.add_node(
                    layer.label,
                    kind="layer",
                    index=i,
                    component=name,
                    num_choices=layer.num_choices,
                    choices=list(layer.choice_names),
                )
                graph.add_edge(name, layer.label, relation="contains")
                if previous is not None:
                    graph.add_edge(previous, layer.label, relation="next")
                previous = layer.label
                for c, cname in enumerate(layer.choice_names):
                    node = f"{layer.label}/{cname}"
                    graph.add_node(node, kind="choice", index=c, name=cname, layer=layer.label)
                    graph.add_edge(layer.label, node, relation="choice")
        return graph


def _component_counts(layer_components: Sequence[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in layer_components:
        counts[c] = counts.get(c, 0) + 1
    return counts
