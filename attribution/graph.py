"""A run as a step graph, and its node-link JSON form.

One node per step, keyed by the step's index, with attributes ``index``, ``agent``,
``role``, ``kind``, ``content`` and ``to``; the graph carries ``run_id``, ``source``
and ``format``. Edge types:

``next``
    temporal order, ``i -> i + 1``;
``handoff``
    a step that names a recipient (Magentic-One's ``Orchestrator (-> WebSurfer)``)
    to that agent's next step after it, when there is one;
``reads``
    an observation (tool output, the human's input) to the next action step after
    it, the one that reads it;
``calls``
    a chat action whose ``tool_calls`` hold an id to the ``tool`` message answering
    that id.

Several types can join the same pair (an observation is usually read by the very
next step), so every edge has ``types``, a sorted list, and ``type``, the same
types joined with ``"+"`` (``"next+reads"``). Test membership with ``types``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import networkx as nx

from attribution.errors import InputError
from attribution.io import atomic_write_text, read_json_file
from attribution.types import Run

__all__ = ["EDGE_TYPES", "build_graph", "to_node_link", "from_node_link", "write_graph", "read_graph"]

EDGE_TYPES = ("next", "handoff", "reads", "calls")


def build_graph(run: Run) -> nx.DiGraph:
    """The step graph of a run.

    Parameters
    ----------
    run : Run

    Returns
    -------
    networkx.DiGraph
        Nodes are step indices; see the module docstring for attributes and edges.

    Examples
    --------
    >>> from attribution.types import Step
    >>> run = Run(steps=[Step(0, "human", "human", "observation", "Find X."),
    ...                  Step(1, "Orchestrator", "Orchestrator (-> WebSurfer)", "action", "Search X.", to="WebSurfer"),
    ...                  Step(2, "Orchestrator", "Orchestrator (thought)", "action", "Next speaker WebSurfer"),
    ...                  Step(3, "WebSurfer", "WebSurfer", "action", "X is 4.")], run_id="demo")
    >>> G = build_graph(run)
    >>> sorted((u, v, d["type"]) for u, v, d in G.edges(data=True))
    [(0, 1, 'next+reads'), (1, 2, 'next'), (1, 3, 'handoff'), (2, 3, 'next')]
    """
    G = nx.DiGraph(run_id=run.run_id, source=run.source, format=run.format)
    steps = run.steps
    for s in steps:
        G.add_node(s.index, index=s.index, agent=s.agent, role=s.role, kind=s.kind, content=s.content, to=s.to)
    for a, b in zip(steps, steps[1:]):
        _add_edge(G, a.index, b.index, "next")
    for pos, s in enumerate(steps):
        if s.to is not None:
            target = next((t for t in steps[pos + 1 :] if t.agent == s.to), None)
            if target is not None:
                _add_edge(G, s.index, target.index, "handoff")
    next_action = None
    for s in reversed(steps):
        if not s.is_action and next_action is not None:
            _add_edge(G, s.index, next_action, "reads")
        if s.is_action:
            next_action = s.index
    for caller, tool in run.meta.get("tool_calls", []):
        _add_edge(G, caller, tool, "calls")
    return G


def to_node_link(G: nx.DiGraph) -> dict[str, Any]:
    """The node-link form of a step graph (edges under the key ``"edges"``).

    Examples
    --------
    >>> G = nx.DiGraph(run_id="r")
    >>> G.add_edge(0, 1, types=["next"], type="next")
    >>> data = to_node_link(G)
    >>> data["graph"], data["edges"]
    ({'run_id': 'r'}, [{'types': ['next'], 'type': 'next', 'source': 0, 'target': 1}])
    >>> nx.utils.graphs_equal(from_node_link(data), G)
    True
    """
    try:
        return nx.node_link_data(G, edges="edges")
    except TypeError:  # networkx < 3.4 names the keyword ``link``
        return nx.node_link_data(G, link="edges")


def from_node_link(data: dict[str, Any]) -> nx.DiGraph:
    """The inverse of :func:`to_node_link`."""
    try:
        return nx.node_link_graph(data, edges="edges")
    except TypeError:
        return nx.node_link_graph(data, link="edges")


def write_graph(G: nx.DiGraph, path: str | Path) -> None:
    """Write a step graph as node-link JSON (UTF-8, atomically; missing parent folders are created)."""
    atomic_write_text(path, json.dumps(to_node_link(G), ensure_ascii=False, indent=1))


def read_graph(path: str | Path) -> nx.DiGraph:
    """Read a step graph written by :func:`write_graph`.

    Raises
    ------
    InputError
        If the file is missing or not node-link JSON.
    """
    data = read_json_file(path, "a node-link JSON step graph")
    try:
        if not isinstance(data, dict):
            raise TypeError(f"top level is {type(data).__name__}, not an object")
        return from_node_link(data)
    except (KeyError, TypeError, ValueError, nx.NetworkXError) as err:
        raise InputError(path, "a node-link JSON step graph", got=f"{type(err).__name__}: {err}") from err


def _add_edge(G: nx.DiGraph, u: int, v: int, kind: str) -> None:
    types = sorted(set(G.edges[u, v]["types"]) | {kind}) if G.has_edge(u, v) else [kind]
    G.add_edge(u, v, types=types, type="+".join(types))
