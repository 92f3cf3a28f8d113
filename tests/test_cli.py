"""The command line's one home (``attribution/cli/``): the same options as recorded before the move,
no library module importing the CLI, and no import circle among the package's modules."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import click
import networkx as nx
import pytest
from click.testing import CliRunner

from attribution.cli import main

PACKAGE = Path(__file__).resolve().parents[1] / "attribution"
RECORDED = Path(__file__).parent / "fixtures" / "cli_options.json"


def _commands(cmd: click.Command, path: list[str]):
    yield " ".join(path), cmd
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            yield from _commands(cmd.commands[name], path + [name])


def _describe(cmd: click.Command) -> dict:
    """What ``--help`` and parsing depend on: each parameter's click info, its default and show_default."""
    params = []
    for p in cmd.params:
        d = p.to_info_dict()
        d["default"] = repr(d.get("default")).replace(str(PACKAGE), "<package>")  # defaults under the checkout
        d["show_default"] = getattr(p, "show_default", None)
        params.append(d)
    return {"help": cmd.help, "params": params}


#: Options deliberately changed after the move was recorded, with the issue that changed them.
CHANGED = {
    ("attribution diagnose", "fmt"): "issue 9: the help lists every registered reader",
    ("attribution diagnose", "json_out"): "issue 9: diagnosis schema 2, a list with --all",
    ("attribution eval", "dataset"): "issue 9: eval reads every format diagnose reads",
    ("attribution diagnose", "log"): "issue 11: LOG... takes several logs or a folder",
    ("attribution diagnose", "dtype"): "issue 11: default auto",
    ("attribution diagnose", "device"): "issue 11: default auto",
    ("attribution eval", "dtype"): "issue 11: default auto",
    ("attribution eval", "device"): "issue 11: default auto",
    ("attribution world train", "sft_steps"): "issue 20: at least 0 (a negative count was a traceback)",
    ("attribution world train", "rl_steps"): "issue 20: at least 0 (a negative count was a traceback)",
    ("attribution world train", "threads"): "issue 20: at least 1 (0 was a traceback)",
}


def test_every_recorded_command_keeps_its_options():
    """The move changed no command, option, default or help text (options added later are allowed)."""
    recorded = json.loads(RECORDED.read_text())
    now = {name: json.loads(json.dumps(_describe(cmd), default=repr, sort_keys=True)) for name, cmd in _commands(main, ["attribution"])}
    assert set(recorded) <= set(now), "a command recorded before the move is gone"
    for name, entry in recorded.items():
        assert now[name]["help"] == entry["help"]
        params = {p["name"]: p for p in now[name]["params"]}
        for p in entry["params"]:
            assert p["name"] in params, f"{name}: option {p['name']} is gone"
            if (name, p["name"]) in CHANGED:
                continue
            assert params[p["name"]] == p, f"{name}: option {p['name']} differs from the one recorded before the move"
        order = [q for q in params if q in {p["name"] for p in entry["params"]}]
        assert order == [p["name"] for p in entry["params"]], f"{name}: recorded options moved in --help"


@pytest.mark.parametrize("path", [name.split()[1:] for name, _ in _commands(main, ["attribution"])])
def test_help_of_every_command(path):
    res = CliRunner().invoke(main, [*path, "--help"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("Usage: ")


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The ``attribution`` modules ``path`` imports, at module level or inside functions.

    ``from pkg import name`` imports the submodule ``pkg.name`` when there is one, else ``pkg``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = _module_name(path)
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for a in node.names:
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base)
    return {m for m in out if m in modules and m != name}


def _module_graph() -> nx.DiGraph:
    """Modules of the package and the imports between them (how the import circles were checked)."""
    files = {_module_name(f): f for f in PACKAGE.rglob("*.py")}
    G = nx.DiGraph()
    G.add_nodes_from(files)
    for name, f in files.items():
        G.add_edges_from((name, target) for target in _imports(f, set(files)))
    return G


def test_no_library_module_imports_the_cli():
    G = _module_graph()
    offenders = sorted(u for u, v in G.edges if v.startswith("attribution.cli") and not u.startswith("attribution.cli"))
    assert offenders == []


def test_no_import_circle_in_the_package():
    G = _module_graph()
    assert G.number_of_edges() > 50  # the scan sees the package's imports
    assert list(nx.simple_cycles(G)) == []


def test_library_errors_become_one_line(tmp_path):
    res = CliRunner().invoke(main, ["report", str(tmp_path / "missing.json"), "--html", str(tmp_path / "r.html")])
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and res.output.startswith("error: ") and "missing.json" in res.output
    res = CliRunner().invoke(main, ["world", "results", "--data", str(tmp_path), "--out", str(tmp_path / "r.md")])
    assert res.exit_code == 2 and res.output.startswith("error: ") and "failures.jsonl" in res.output
