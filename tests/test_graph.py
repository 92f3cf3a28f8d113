import networkx as nx
import pytest

from attribution.errors import InputError
from attribution.graph import build_graph, read_graph, to_node_link, write_graph
from attribution.parse import load_run, parse_run

from test_parse import TOOL_RUN


def _edges(G, kind):
    return sorted((u, v) for u, v, d in G.edges(data=True) if kind in d["types"])


def test_nodes_and_graph_attributes():
    G = build_graph(parse_run(TOOL_RUN, "runs/demo.json"))
    assert G.graph == {"run_id": "demo", "source": "runs/demo.json", "format": "chat"}
    assert list(G) == list(range(6))
    assert G.nodes[2] == {"index": 2, "agent": "planner", "role": "assistant", "kind": "action",
                          "content": "Ask the coder.", "to": None}


def test_chat_edges():
    G = build_graph(parse_run(TOOL_RUN))
    assert _edges(G, "next") == [(i, i + 1) for i in range(5)]
    assert _edges(G, "reads") == [(0, 2), (1, 2), (4, 5)]
    assert _edges(G, "calls") == [(3, 4)]
    assert G.edges[3, 4]["types"] == ["calls", "next"] and G.edges[3, 4]["type"] == "calls+next"


def test_hand_crafted_handoff_to_the_agents_next_step(who_and_when):
    run = load_run(who_and_when / "Hand-Crafted" / "1.json")
    G = build_graph(run)
    # 6: Orchestrator (-> WebSurfer); 7: Orchestrator (thought); 8: WebSurfer
    assert G.nodes[6]["to"] == "WebSurfer" and G.nodes[8]["agent"] == "WebSurfer"
    assert G.edges[6, 8]["types"] == ["handoff"]
    assert (0, 1) in _edges(G, "reads")  # the human's question is read by the Orchestrator
    handoffs = _edges(G, "handoff")
    assert handoffs and all(G.nodes[v]["agent"] == G.nodes[u]["to"] for u, v in handoffs)


def test_algorithm_generated_terminal_output_is_read(who_and_when):
    G = build_graph(load_run(who_and_when / "Algorithm-Generated" / "1.json"))
    assert _edges(G, "reads") == [(1, 2), (3, 4)] and not _edges(G, "handoff")


def test_node_link_round_trip(tmp_path):
    G = build_graph(parse_run(TOOL_RUN, "runs/demo.json"))
    assert "edges" in to_node_link(G)
    path = tmp_path / "g.json"
    write_graph(G, path)
    H = read_graph(path)
    assert isinstance(H, nx.DiGraph) and nx.utils.graphs_equal(G, H)
    assert H.graph == G.graph and dict(H.nodes(data=True)) == dict(G.nodes(data=True))


def test_read_graph_bad_file(tmp_path):
    path = tmp_path / "g.json"
    path.write_text("[1, 2]")
    with pytest.raises(InputError, match="g.json: expected a node-link JSON step graph"):
        read_graph(path)
