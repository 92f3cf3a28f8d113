"""``eval`` reads what ``diagnose`` reads: any registered format, the file's own run ids, labels from
the log or from a labels file keyed by run id and the log's own step ids, and label problems."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from attribution.errors import InputError
from attribution.evaluation.data import label_problems, load_runs_for_eval

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_a_folder_of_logs_in_another_format_keeps_run_ids_and_labels(tmp_path):
    runs, origin = load_runs_for_eval(FIXTURES / "tau-bench")
    assert origin.startswith("folder of logs")
    assert {r.format for r in runs} == {"tau-bench"}
    assert "0/trial-0" in {r.run_id for r in runs} and all(r.success is not None for r in runs)
    one, _ = load_runs_for_eval(FIXTURES / "openhands" / "output.jsonl", format="openhands")
    assert [(r.run_id, r.success) for r in one] == [("astropy__astropy-12907", True), ("django__django-11099", False)]


def test_labels_file_by_run_id_and_by_the_logs_own_step_id(tmp_path):
    log = FIXTURES / "otel" / "openinference_multi_agent.json"
    with pytest.raises(InputError, match="expected a labelled run"):
        load_runs_for_eval(log)
    trace = "5b8efff798038103d269b633813fc60c"
    labels = tmp_path / "labels.jsonl"
    labels.write_text(json.dumps({"run_id": trace, "mistake_id": "f1e2d3c4b5a69788", "mistake_agent": "search_agent"}) + "\n")
    run, = load_runs_for_eval(log, labels=labels)[0]
    assert run.mistake_step == 5 and run.steps[5].origin.id == "f1e2d3c4b5a69788" and run.mistake_agent == "search_agent"
    labels.write_text(json.dumps({"run_id": trace, "mistake_step": 3, "success": False}))
    run, = load_runs_for_eval(log, labels=labels)[0]
    assert (run.mistake_step, run.success) == (3, False)
    for bad, msg in [({"run_id": "nope", "success": False}, "expected a run_id of a run in the dataset"),
                     ({"run_id": trace, "mistake_id": "ffff"}, "expected mistake_id naming a step"),
                     ({"run_id": trace, "mistake_step": 99}, "expected mistake_step to index one of the 8 steps"),
                     ({"run_id": trace, "success": "yes"}, "true or false")]:
        labels.write_text(json.dumps(bad))
        with pytest.raises(InputError, match=msg) as info:
            load_runs_for_eval(log, labels=labels)
        assert "\n" not in str(info.value) and "labels.jsonl" in str(info.value)


def test_a_run_labelled_twice_differently_is_refused(tmp_path):
    """Issue 20: the last of two different labels for one run silently won."""
    log = FIXTURES / "otel" / "openinference_multi_agent.json"
    trace = "5b8efff798038103d269b633813fc60c"
    labels = tmp_path / "labels.jsonl"
    same = [{"run_id": trace, "mistake_id": "f1e2d3c4b5a69788", "mistake_agent": "search_agent"},
            {"run_id": trace, "mistake_step": 5, "mistake_agent": "search_agent"}]  # the same label, said twice
    labels.write_text("".join(json.dumps(r) + "\n" for r in same))
    run, = load_runs_for_eval(log, labels=labels)[0]
    assert (run.mistake_step, run.mistake_agent) == (5, "search_agent")
    labels.write_text("".join(json.dumps(r) + "\n" for r in [same[0], {**same[1], "mistake_step": 3}]))
    with pytest.raises(InputError, match="labelled differently at line 1") as info:
        load_runs_for_eval(log, labels=labels)
    assert "labels.jsonl, line 2" in str(info.value) and "\n" not in str(info.value)


def test_json_errors_do_not_repeat_at():
    from attribution.io import json_error

    try:
        json.loads('{"a": "b')
    except json.JSONDecodeError as err:
        assert json_error(err) == "Unterminated string starting at line 1, column 7"
        assert json_error(err, 4) == "Unterminated string starting at line 4, column 7"
        assert json_error(err, column_only=True) == "Unterminated string starting at column 7"
    try:
        json.loads("[1,")
    except json.JSONDecodeError as err:
        assert json_error(err) == "Expecting value at line 1, column 4"


def test_label_problems_are_counted(who_and_when):
    runs, _ = load_runs_for_eval(who_and_when)
    got = label_problems(runs)
    # the README's label noise: AG 14 and 59 label a Computer_terminal step; 6 runs name another speaker
    assert sorted(got["gold_observation"]["runs"]) == ["algorithm-generated/14", "algorithm-generated/59"]
    assert got["agent_mismatch"]["n"] + got["agent_mismatch_case_only"]["n"] == 6
    # two pairs of Algorithm-Generated runs have identical histories (117/121 even carry different labels)
    assert got["duplicate_content"]["runs"] == ["algorithm-generated/51 = algorithm-generated/22",
                                                "algorithm-generated/121 = algorithm-generated/117"]


def test_duplicate_runs_and_ids(tmp_path):
    msgs = [{"role": "user", "content": "q"}, {"role": "assistant", "name": "a", "content": "x"},
            {"role": "assistant", "name": "b", "content": "y"}]
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(json.dumps({"id": i, "messages": msgs, "success": False}) for i in ("r1", "r2")))
    runs, _ = load_runs_for_eval(path)
    assert label_problems(runs)["duplicate_content"] == {"n": 1, "runs": ["r2 = r1"]}
    other = tmp_path / "more"
    other.mkdir()
    for name in ("x.jsonl", "y.jsonl"):
        (other / name).write_text(json.dumps({"id": "same", "messages": msgs, "success": True}))
    with pytest.raises(InputError, match="runs with distinct ids; got run id 'same' also in"):
        load_runs_for_eval(other)
