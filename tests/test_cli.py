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
    ("attribution diagnose", "quiet"): "issue 17: -q means one thing on every command, worded the same",
    ("attribution eval", "quiet"): "issue 17: -q means one thing on every command, worded the same",
    ("attribution eval", "aggregate"): "issue 17: the help says why eval's default differs from diagnose's",
    ("attribution eval", "ranker"): "issue 17: the help says why eval's default differs from diagnose's",
    ("attribution world train", "out_dir"): "issue 17: a new folder by default, never the shipped pair unless --replace-shipped",
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


# -- issue 17: verdicts you can act on, one CLI ---------------------------------------------------
FIXTURES = Path(__file__).parent / "fixtures"
TAU2_OK = "3f2b9c4e-8d1a-4e0b-9a57-2c6d1e0f7a11"  # reward 1.0 in telecom-tau2.json


@pytest.mark.parametrize("log, extra, handle", [
    ("otel/openinference_multi_agent.json", [], r"\(span [0-9a-f]{16} in trace 5b8efff798038103d269b633813fc60c\)"),
    ("autogen/swarm_team_state.json", [], r"\((event|message) [0-9a-f-]{36}\)"),
    ("tau-bench/telecom-tau2.json", ["--run", TAU2_OK], r"\(JSON pointer /simulations/0/messages/\d+\)"),
])
def test_verdict_names_the_culprits_own_id_the_label_and_every_written_file(tiny_pair, tmp_path, log, extra, handle):
    import re

    out = {k: tmp_path / f"o.{k}" for k in ("json", "html", "jsonl")}
    args = ["diagnose", str(FIXTURES / log), *extra, "--policy", str(tiny_pair[0]), "--reference", str(tiny_pair[1]),
            "--json", str(out["json"]), "--html", str(out["html"]), "--emit", f"jsonl:{out['jsonl']}"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    diag = json.loads(out["json"].read_text())
    culprit = next(s for s in diag["run_steps"] if s["index"] == diag["culprit_step"])
    line = next(ln for ln in res.output.splitlines() if ln.startswith("culprit: "))
    assert re.fullmatch(rf"culprit: step {diag['culprit_step']} by {re.escape(diag['culprit_agent'])} {handle}", line), line
    assert (culprit["origin"].get("id") or culprit["origin"]["pointer"]) in line  # the culprit's own id, not another step's
    for path in out.values():
        assert f"wrote {path}" in res.output.splitlines()
    if "tau" in log:  # the run's success label (reward 1.0), said plainly
        assert "label:   the run succeeded (success: true)" in res.output
    quiet = CliRunner().invoke(main, [*args, "-q"])
    assert quiet.exit_code == 0 and "wrote" not in quiet.output and quiet.output.strip() == line


def test_select_all_ranks_a_files_runs_and_monitor_run_picks_one(tiny_pair, tmp_path):
    pair = ["--policy", str(tiny_pair[0]), "--reference", str(tiny_pair[1])]
    log = str(FIXTURES / "tau-bench" / "telecom-tau2.json")
    res = CliRunner().invoke(main, ["select", log, *pair])
    assert res.exit_code == 2 and "--run ID" in res.output  # one file of two runs: the advice names real options
    out = tmp_path / "sel.json"
    res = CliRunner().invoke(main, ["select", log, "--all", *pair, "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert len(json.loads(out.read_text())["ranking"]) == 2 and f"[{TAU2_OK}]" in res.output and f"wrote {out}" in res.output
    res = CliRunner().invoke(main, ["monitor", log, *pair])
    assert res.exit_code == 2 and "pass --run ID" in res.output
    mon = tmp_path / "mon.json"
    res = CliRunner().invoke(main, ["monitor", log, "--run", TAU2_OK, *pair, "--json", str(mon)])
    assert res.exit_code == 0, res.output
    assert json.loads(mon.read_text())["run_id"] == TAU2_OK and f"wrote {mon}" in res.output
    res = CliRunner().invoke(main, ["monitor", log, "--all", *pair])
    assert res.exit_code == 2 and "pick it with --run ID" in res.output


#: Shared options whose help differs on purpose, and why.
WORDED_APART = {
    "dtype": "the default 'auto' is described where the command can batch on a GPU",
    "json_out": "each command writes its own JSON",
    "aggregate": "eval chooses it by cross-validation by default (the help says so); diagnose takes a fixed one",
    "ranker": "as aggregate",
    "quiet": "one template: 'Print only <the command's result>: no progress bar, table or 'wrote PATH' lines.'",
    "run_id": "'diagnose/monitor the run with this id'; select takes it from each RUN",
    "all_runs": "each command says what it does with every run",
}


def test_shared_options_are_worded_the_same_in_every_help():
    import re

    commands = {n: c for n, c in _commands(main, ["attribution"]) if n.split()[1:] in (["diagnose"], ["eval"], ["select"], ["monitor"])}
    assert len(commands) == 4
    helps: dict[str, dict[str, str]] = {}
    for name, cmd in commands.items():
        res = CliRunner().invoke(main, [*name.split()[1:], "--help"], terminal_width=200)
        assert res.exit_code == 0, res.output
        for p in cmd.params:
            if isinstance(p, click.Option):
                helps.setdefault(p.name, {})[name] = (p.help, p.default)
    shared = {n: v for n, v in helps.items() if len(v) > 1}
    assert {"policy", "reference", "pairs", "beta", "fmt", "window", "device", "quiet", "run_id"} <= set(shared)
    for opt, per_command in shared.items():
        if opt in WORDED_APART:
            continue
        assert len(set(per_command.values())) == 1, f"--{opt} is worded or defaulted differently: {per_command}"
    for name, (text, _) in shared["quiet"].items():
        assert re.fullmatch(r"Print only .+: no progress bar, table or 'wrote PATH' lines\.", text), (name, text)
    aggregate = shared["aggregate"]
    assert aggregate["attribution diagnose"][1] == "sum" and "diagnose" in aggregate["attribution eval"][0]


def test_world_train_never_overwrites_the_shipped_pair_by_default(tmp_path):
    from attribution.cli.world import CHECKPOINT

    train = next(c for n, c in _commands(main, ["attribution"]) if n == "attribution world train")
    out = next(p for p in train.params if p.name == "out_dir")
    assert Path(out.default).resolve() != CHECKPOINT.resolve()
    before = {p: p.stat().st_mtime_ns for p in CHECKPOINT.rglob("*") if p.is_file()}
    res = CliRunner().invoke(main, ["world", "train", "--out", str(CHECKPOINT), "--sft-steps", "1", "--rl-steps", "1"])
    assert res.exit_code == 2 and "--replace-shipped" in res.output
    (tmp_path / "pair").mkdir()
    (tmp_path / "pair" / "pairs.json").write_text("{}")
    res = CliRunner().invoke(main, ["world", "train", "--out", str(tmp_path / "pair")])
    assert res.exit_code == 2 and "already holds a trained pair" in res.output
    assert {p: p.stat().st_mtime_ns for p in CHECKPOINT.rglob("*") if p.is_file()} == before
