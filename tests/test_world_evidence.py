"""World evidence: candidates answer one task, the pick rule is select_runs's, tables are consistent."""

import numpy as np
import pytest

from attribution.world import BETA, World, solve
from attribution.world.evidence import NS, PA, SELECT_JUDGES, _judge_scores, sample_candidates, selection_table


@pytest.fixture(scope="module")
def groups():
    return sample_candidates(solve(World(), BETA), groups=6, seed=7)


def test_candidates_answer_one_task_each(groups):
    assert len(groups) == 6 and all(len(g) == max(NS) for g in groups)
    for g in groups:
        assert len({r["messages"][0]["content"] for r in g}) == 1


def test_selection_table_is_consistent(groups):
    rng = np.random.default_rng(0)
    scores = [[{j: float(rng.normal()) for j in SELECT_JUDGES} for _ in g] for g in groups]
    table = selection_table(groups, scores)
    succ = np.array([[r["success"] for r in g] for g in groups], dtype=float)
    for n in NS:
        rows = table[n]["rows"]
        assert rows["oracle best-of-N"]["mean"] == pytest.approx(succ[:, :n].max(axis=1).mean())
        assert rows["random pick (expectation)"]["mean"] == pytest.approx(succ[:, :n].mean())
        assert rows["first run"]["mean"] == pytest.approx(succ[:, 0].mean())
        for j in SELECT_JUDGES:
            assert rows[j]["mean"] <= rows["oracle best-of-N"]["mean"] + 1e-12
            lo, hi = rows[j]["ci"]
            assert lo <= rows[j]["mean"] <= hi


def test_the_pick_is_select_runs_pick(groups):
    """The evidence's progress-advantage pick is what `attribution select` picks, with the committed pair."""
    from attribution.diagnoser import default_pairs_path, make_scorer
    from attribution.parse import parse_run
    from attribution.rank import aggregate
    from attribution.select import select_runs

    scorer = make_scorer(pairs=default_pairs_path(), chat_template=False)
    for g in groups[:2]:
        runs = [parse_run(r, source=r["id"], format="chat") for r in g]
        sel = select_runs(runs, scorer=scorer)
        scores = [_judge_scores(aggregate(s.steps, "sum"), r)[PA] for s, r in zip(scorer.score_many(runs), g)]
        best = min(range(len(g)), key=lambda k: (-scores[k], k))
        assert sel.best.run.run_id == runs[best].run_id
        assert [c.score for c in sel.ranking] == pytest.approx(sorted(scores, reverse=True), abs=1e-6)
