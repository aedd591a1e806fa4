"""The data flow between a supernet's choice layers and components, traced from one forward pass.

:func:`layer_graph` runs the model once on an example input (one architecture active) and follows
the autograd graph backwards from each :class:`~oneshot.space.ChoiceLayer`'s inputs to the nearest
outputs of other choice layers: an edge ``A -> B`` means B consumed (through any non-searchable
parts in between: FPN, pooling, upsampling...) what A produced. :func:`component_graph` contracts
that to components, so the inter-modular connections of a multi-component space (backbone ->
heads, the two directions of attention between branches...) are read off the model itself rather
than declared by hand. Both are ``networkx.DiGraph`` s; :func:`plot_component_graph` draws the
second.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from oneshot.space import Architecture, ChoiceLayer, SearchSpace
from oneshot.supernet import activate

__all__ = ["component_graph", "layer_graph", "plot_component_graph"]


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _tensors(v)


def _default_forward(model: nn.Module, example: Any) -> Any:
    return model(example)


def layer_graph(
    model: nn.Module,
    example_input: Any,
    *,
    arch: Architecture | None = None,
    forward: Callable[[nn.Module, Any], Any] = _default_forward,
    max_nodes: int = 200_000,
) -> Any:
    """Choice layers as nodes (``component``, ``index``, ``choices``), data-flow edges between them.

    Args:
        model: a supernet holding choice layers (its mode is kept; nothing is trained).
        example_input: what ``forward(model, example_input)`` takes, e.g. a batch of one image.
        arch: the path that runs (default: the first choice of every layer). Data flow does not
            depend on the choices in the spaces this library builds; where it does (a skip
            choice), trace the architectures that matter and union the graphs.
        forward: how to call the model (default ``model(example_input)``).
        max_nodes: a bound on the autograd nodes visited per layer input.
    """
    import networkx as nx

    space = SearchSpace.from_module(model)
    arch = arch if arch is not None else space.architecture([0] * space.num_layers)
    layers = {m: i for i, m in enumerate(m for m in model.modules() if isinstance(m, ChoiceLayer))}
    produced: dict[Any, int] = {}  # autograd node of a choice layer's output -> layer index
    consumed: dict[int, list[Any]] = {}  # layer index -> autograd nodes of its inputs

    def pre_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        nodes = [t.grad_fn for t in _tensors((args, kwargs)) if t.grad_fn is not None]
        consumed.setdefault(layers[module], []).extend(nodes)

    def post_hook(module: nn.Module, _args: Any, output: Any) -> None:
        for t in _tensors(output):
            if t.grad_fn is not None:
                produced.setdefault(t.grad_fn, layers[module])

    handles = [m.register_forward_pre_hook(pre_hook, with_kwargs=True) for m in layers]
    handles += [m.register_forward_hook(post_hook) for m in layers]
    try:
        with torch.enable_grad(), activate(model, arch):
            forward(model, example_input)
    finally:
        for h in handles:
            h.remove()

    graph = nx.DiGraph()
    for spec, i in zip(space.layers, range(space.num_layers), strict=True):
        graph.add_node(spec.label, index=i, component=spec.component, choices=list(spec.choice_names))
    for consumer, roots in consumed.items():
        for producer in _producers(roots, produced, max_nodes):
            if producer != consumer:
                graph.add_edge(space.layers[producer].label, space.layers[consumer].label)
    return graph


def _producers(roots: list[Any], produced: dict[Any, int], max_nodes: int) -> set[int]:
    """Choice layers whose outputs the autograd nodes ``roots`` depend on (the nearest ones)."""
    found: set[int] = set()
    seen: set[Any] = set()
    stack = list(roots)
    while stack and len(seen) < max_nodes:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if node in produced:
            found.add(produced[node])
            continue  # the nearest producer: what it consumed is its own edge
        stack.extend(parent for parent, _ in node.next_functions)
    return found


def component_graph(layers: Any) -> Any:
    """Contract a :func:`layer_graph` to components: nodes carry ``num_layers``; an edge ``A -> B``
    carries ``connections`` (how many layer-to-layer edges cross from A to B) and marks the
    inter-modular connections; a self-loop counts the connections inside one component."""
    import networkx as nx

    graph = nx.DiGraph()
    for _, data in layers.nodes(data=True):
        name = data["component"]
        if name not in graph:
            graph.add_node(name, num_layers=0)
        graph.nodes[name]["num_layers"] += 1
    for a, b in layers.edges():
        ca, cb = layers.nodes[a]["component"], layers.nodes[b]["component"]
        if graph.has_edge(ca, cb):
            graph[ca][cb]["connections"] += 1
        else:
            graph.add_edge(ca, cb, connections=1, inter_modular=ca != cb)
    return graph


def plot_component_graph(graph: Any, *, path: str | None = None, title: str = "Components and their connections") -> Any:
    """Draw a :func:`component_graph`: one box per component (its number of searchable layers),
    arrows for the data flow between components labelled with their layer-to-layer connections.
    Returns the matplotlib figure; writes it to ``path`` when given."""
    import networkx as nx

    from oneshot.viz import _figure, _save

    fig = _figure((6.5, 4.5))
    ax = fig.add_subplot()
    order = list(graph.nodes())  # in the space's order: the component of the first layer first
    try:
        pos = nx.shell_layout(graph, nlist=[order]) if len(order) > 2 else nx.spring_layout(graph, seed=0)
    except Exception:  # a layout that cannot place the nodes: fall back to a line
        pos = {n: (i, 0) for i, n in enumerate(order)}
    inter = [(a, b) for a, b, d in graph.edges(data=True) if d.get("inter_modular")]
    nx.draw_networkx_nodes(graph, pos, ax=ax, node_size=2600, node_color="#dbe9f6", edgecolors="#1f4e79")
    nx.draw_networkx_labels(
        graph, pos, ax=ax, font_size=8,
        labels={n: f"{n}\n{d['num_layers']} layers" for n, d in graph.nodes(data=True)},
    )
    nx.draw_networkx_edges(
        graph, pos, edgelist=inter, ax=ax, node_size=2600, arrowsize=16, width=1.6,
        edge_color="#c0392b", connectionstyle="arc3,rad=0.12",
    )
    nx.draw_networkx_edge_labels(
        graph, pos, ax=ax, font_size=7, edge_labels={(a, b): graph[a][b]["connections"] for a, b in inter},
        connectionstyle="arc3,rad=0.12",
    )
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
    return _save(fig, path)
