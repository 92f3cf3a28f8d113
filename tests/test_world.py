"""The controlled world: exact checks of the theory, rendering, labels, and the committed pair."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from attribution.world import BETA, World, WorldConfig, soft_objective, solve, telescope
from attribution.world.env import AGENTS, TOOL, USER
from attribution.world.labels import advantages_of, label
from attribution.world.runs import replay, sample_run

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT = ROOT / "attribution" / "world" / "checkpoint"
EXAMPLE = ROOT / "examples" / "world_failed_run.json"


@pytest.fixture(scope="module")
def stochastic():
    return solve(World(), BETA)


@pytest.fixture(scope="module")
def deterministic():
    return solve(World(WorldConfig.deterministic()), BETA)


@pytest.fixture(scope="module")
def tokenizer():
    from attribution.world.lm import build_tokenizer

    return build_tokenizer(World())


# ---- exact checks ------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [BETA, 0.05, 1.0])
def test_log_ratio_of_soft_optimal_policy_is_the_optimal_advantage(beta):
    """pi* = pi_ref exp(A*/beta) and beta log pi*/pi_ref = Q* - V*, at every state and action."""
    world = World()
    sol = solve(world, beta)
    assert len(sol.V) == len(world.states())
    for s in world.states():
        q, v, ref = sol.Q[s], sol.V[s], sol.ref[s]
        # Bellman: Q*(s, a) = E[r + V*(s')], recomputed here from the dynamics
        for i, a in enumerate(world.actions(s)):
            target = sum(o.prob * (o.reward + (sol.V[o.next] if o.next is not None else 0.0)) for o in world.outcomes(s, a))
            assert abs(q[i] - target) < 1e-12
        # pi* as the normalised Boltzmann reweighting of pi_ref, computed independently
        w = ref * np.exp((q - q.max()) / beta)
        pi_star = w / w.sum()
        assert abs(pi_star.sum() - 1.0) < 1e-12
        np.testing.assert_allclose(beta * np.log(pi_star / ref), q - v, rtol=0, atol=1e-9)
        np.testing.assert_allclose(sol.pi_star(s), pi_star, rtol=0, atol=1e-12)


def test_world_is_stochastic_and_the_deterministic_instance_is_not():
    world, det = World(), World(WorldConfig.deterministic())
    assert any(len(world.outcomes(s, a)) > 1 for s in world.states() for a in world.actions(s))
    assert all(len(det.outcomes(s, a)) == 1 for s in det.states() for a in det.actions(s))


def test_soft_optimal_policy_maximises_the_kl_regularised_objective(stochastic):
    world = stochastic.world
    assert abs(soft_objective(world, BETA, stochastic.pi_star) - stochastic.v0()) < 1e-9
    assert soft_objective(world, BETA, world.ref_probs) < stochastic.v0()
    rng = np.random.default_rng(0)
    for _ in range(5):
        noise = {s: stochastic.pi_star(s) * np.exp(0.3 * rng.standard_normal(len(stochastic.ref[s]))) for s in stochastic.V}
        perturbed = {s: p / p.sum() for s, p in noise.items()}
        assert soft_objective(world, BETA, perturbed) < stochastic.v0() - 1e-6


@pytest.mark.parametrize("policy", ["reference", "optimal"])
def test_telescoping_along_runs_of_a_stochastic_world(stochastic, policy):
    """sum_t A* = R - V*(s0) + leftover, exactly; the leftover is the environment's surprise."""
    world = stochastic.world
    pi = world.ref_probs if policy == "reference" else stochastic.pi_star
    rng = np.random.default_rng(1)
    leftovers = []
    for _ in range(400):
        traj = sample_run(world, pi, rng)
        t = telescope(stochastic, [(d.state, d.action) for d in traj.decisions], traj.reward)
        log_ratio_sum = sum(
            BETA * math.log(stochastic.pi_star(d.state)[d.action] / stochastic.ref[d.state][d.action]) for d in traj.decisions
        )
        assert abs(log_ratio_sum - t["sum_advantage"]) < 1e-9
        assert abs(t["sum_advantage"] - (t["reward"] - t["v0"] + t["leftover"])) < 1e-9
        leftovers.append(t["leftover"])
    leftovers = np.array(leftovers)
    assert np.mean(np.abs(leftovers) > 1e-3) > 0.5  # summing the log-ratio does not recover R - V*(s0)
    assert abs(leftovers.mean()) < 4 * leftovers.std() / math.sqrt(len(leftovers))  # mean-zero surprises


def test_telescoping_leftover_vanishes_in_a_deterministic_world(deterministic):
    world = deterministic.world
    rng = np.random.default_rng(2)
    for _ in range(200):
        traj = sample_run(world, world.ref_probs, rng)
        t = telescope(deterministic, [(d.state, d.action) for d in traj.decisions], traj.reward)
        assert abs(t["leftover"]) < 1e-12
        assert abs(t["sum_advantage"] - (t["reward"] - t["v0"])) < 1e-9


# ---- runs, rendering, labels -------------------------------------------------------------


def test_runs_are_generic_chat_messages_and_replay_recovers_every_state(stochastic):
    from attribution.parse import parse_run

    world = stochastic.world
    rng = np.random.default_rng(3)
    for _ in range(100):
        traj = sample_run(world, world.ref_probs, rng)
        assert replay(world, traj.messages) == traj.decisions
        run = parse_run(traj.messages, format="chat")
        assert [s.index for s in run.steps if s.is_action] == [d.step for d in traj.decisions]
        assert {s.agent for s in run.steps if s.is_action} <= set(AGENTS)
        assert {s.agent for s in run.steps if not s.is_action} <= {USER, TOOL}


def test_replay_refuses_text_the_world_cannot_produce():
    world = World()
    traj = sample_run(world, world.ref_probs, np.random.default_rng(4))
    bad = [dict(m) for m in traj.messages]
    bad[1]["content"] = "use weather then verify"
    with pytest.raises(ValueError, match="step 1"):
        replay(world, bad)


def test_actions_are_prefix_free_token_sequences(tokenizer):
    from attribution.world.lm import Encoder

    world, enc = World(), Encoder(tokenizer)
    unk = tokenizer.unk_token_id
    for s in world.states():
        trie = enc.trie(world, s)  # raises if an action is a prefix of another
        assert len(_leaves(trie)) == len(world.actions(s))
        for a in world.actions(s):
            assert unk not in enc.encode(a.text)
    for speaker in (USER, TOOL, *AGENTS):
        assert len(enc.encode(f"[{speaker}]: ")) == 1
    assert len(enc.sep) == 1


def _leaves(node):
    return [v for v in node.values() if not isinstance(v, dict)] + [x for v in node.values() if isinstance(v, dict) for x in _leaves(v)]


def test_encoding_matches_the_scorers_rendering(tokenizer):
    from attribution.parse import parse_run
    from attribution.score.render import render_run
    from attribution.world.lm import Encoder

    world, enc = World(), Encoder(tokenizer)
    rng = np.random.default_rng(5)
    for _ in range(30):
        traj = sample_run(world, world.ref_probs, rng)
        ours = enc.encode_run(traj.messages)
        theirs = render_run(parse_run(traj.messages, format="chat"), tokenizer, chat_template=False)
        assert ours.ids == theirs.input_ids
        assert ours.spans == {i: theirs.spans[i] for i in ours.spans}


def test_rollout_token_stream_is_the_rendered_run(tokenizer):
    import torch

    from attribution.world.lm import Encoder, build_model
    from attribution.world.rollout import rollout

    torch.set_num_threads(1)
    world, enc = World(), Encoder(tokenizer)
    from attribution.world.lm import ModelConfig

    model = build_model(tokenizer, ModelConfig(n_embd=16, n_layer=1, n_head=2), seed=0)
    ro = rollout(model, world, enc, 8, np.random.default_rng(6), ref_prefix=[0, 0, 1, 2, 3, 0, 9, 1])
    for traj, ids, spans in zip(ro.trajectories, ro.ids, ro.spans):
        rendered = enc.encode_run(traj.messages)
        assert ids[: len(rendered.ids)] == rendered.ids
        assert set(ids[len(rendered.ids) :]) <= {enc.pad}
        assert replay(world, traj.messages) == traj.decisions
        for start, end, d in spans:
            assert rendered.spans[d.step] == (start, end)


def test_labels_name_the_most_negative_true_advantage(stochastic):
    from attribution.parse import parse_run

    world = stochastic.world
    rng = np.random.default_rng(7)
    n_fail = 0
    for i in range(300):
        traj = sample_run(world, world.ref_probs, rng)
        rec = label(stochastic, traj, f"r{i}")
        json.dumps(rec)
        assert rec["advantages"] == advantages_of(stochastic, traj.messages)
        run = parse_run(rec, format="chat")
        assert run.success == traj.success
        if traj.success:
            assert rec["mistake_step"] is None and rec["mistake_agent"] is None and not rec["lucky_failure"]
            continue
        n_fail += 1
        adv = {d.step: stochastic.advantage(d.state)[d.action] for d in traj.decisions}
        assert rec["mistake_step"] == min(adv, key=lambda k: (adv[k], k))
        assert rec["mistake_agent"] == traj.messages[rec["mistake_step"]]["name"] == run.mistake_agent
        assert run.mistake_step == rec["mistake_step"]
        lucky = all(stochastic.is_best(d.state, d.action) for d in traj.decisions)
        assert rec["lucky_failure"] == lucky
        if not lucky:
            assert adv[rec["mistake_step"]] < 0
    assert n_fail > 50


def test_committed_datasets_are_what_generate_writes(stochastic):
    from attribution.world.data import failure_set, heldout_failure_set, load_set, mixed_set

    if not (ROOT / "datasets" / "world" / "failures.jsonl").is_file():
        pytest.skip("datasets/world not generated (attribution world generate)")
    for name, make in (("failures", failure_set), ("mixed", mixed_set), ("failures_heldout", heldout_failure_set)):
        assert load_set(name, ROOT / "datasets" / "world") == json.loads(json.dumps(make(stochastic)))


# ---- the committed pair --------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair():
    if not (CHECKPOINT / "policy" / "config.json").is_file():
        pytest.skip("no committed world pair (attribution world train)")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(CHECKPOINT / "reference")
    pol = AutoModelForCausalLM.from_pretrained(CHECKPOINT / "policy").eval()
    ref = AutoModelForCausalLM.from_pretrained(CHECKPOINT / "reference").eval()
    return tok, pol, ref


def test_committed_pair_is_small_and_shares_one_tokenizer(pair):
    tok, pol, ref = pair
    other = __import__("transformers").AutoTokenizer.from_pretrained(CHECKPOINT / "policy")
    assert tok.get_vocab() == other.get_vocab()
    size = sum(f.stat().st_size for f in CHECKPOINT.rglob("*") if f.is_file())
    assert size < 20e6
    assert 3e5 <= sum(p.numel() for p in pol.parameters()) <= 2e6


def test_pair_action_probabilities_are_a_distribution_over_the_actions(pair):
    """The LM's mass on token sequences that are no action of the state is small."""
    from attribution.world.lm import Encoder, action_distribution

    tok, pol, ref = pair
    world, enc = World(), Encoder(tok)
    traj = sample_run(world, world.ref_probs, np.random.default_rng(8))
    for d in traj.decisions:
        for model in (ref, pol):
            probs = action_distribution(model, enc, world, traj.messages[: d.step], d.state)
            assert 0.97 < probs.sum() <= 1.0 + 1e-6


def test_world_scores_equal_the_package_scorer(pair):
    from attribution.parse import parse_run
    from attribution.score import CheckpointPair, Scorer
    from attribution.world.lm import Encoder
    from attribution.world.train import score_runs

    tok, pol, ref = pair
    world = World()
    rng = np.random.default_rng(9)
    runs = [sample_run(world, world.ref_probs, rng).messages for _ in range(5)]
    ours = score_runs(pol, Encoder(tok), runs)
    ours_ref = score_runs(ref, Encoder(tok), runs)
    scorer = Scorer(CheckpointPair.load(policy=str(CHECKPOINT / "policy"), reference=str(CHECKPOINT / "reference"), beta=BETA))
    for msgs, lp, rlp in zip(runs, ours, ours_ref):
        steps = scorer.score(parse_run(msgs, format="chat"))
        for s in steps:
            if s.kind == "action":
                assert abs(sum(s.logps) - lp[s.index]) < 1e-4
                assert abs(sum(s.ref_logps) - rlp[s.index]) < 1e-4


def test_example_run_is_diagnosed_with_its_true_culprit(pair):
    from attribution import diagnose

    record = json.loads(EXAMPLE.read_text())
    result = diagnose(str(EXAMPLE), policy=str(CHECKPOINT / "policy"), reference=str(CHECKPOINT / "reference"), beta=BETA)
    assert result.culprit_step == record["mistake_step"]
    assert result.culprit_agent == record["mistake_agent"]
    assert not record["success"] and not record["lucky_failure"]


def test_training_runs_end_to_end(tmp_path):
    from attribution.world.data import failure_set
    from attribution.world.lm import ModelConfig
    from attribution.world.train import TrainConfig, train

    sol = solve(World(), BETA)
    cfg = TrainConfig(sft_steps=20, rl_steps=4, sft_batch=16, rl_batch=8, eval_every=2, model=ModelConfig(n_embd=32, n_layer=1, n_head=2))
    summary = train(tmp_path, cfg, eval_records=failure_set(sol, n=20), log=lambda _: None)
    assert [c["rl_step"] for c in summary["curve"]] == [0, 2, 4]
    assert (tmp_path / "policy" / "model.safetensors").is_file()
    assert summary["curve"][0]["n"] > 0
