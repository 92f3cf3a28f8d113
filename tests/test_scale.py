"""Scale-out: device/dtype selection, OOM back-off, sharding into the score cache, the Ray engine."""

from __future__ import annotations

import pickle
import socket
import sys
from pathlib import Path

import pytest
import torch

from attribution.errors import ConfigError, ScoringError

WORLD = Path(__file__).resolve().parents[1] / "datasets" / "world" / "failures.jsonl"


def world_runs(n: int):
    from attribution.evaluation.data import load_runs_for_eval

    runs, _ = load_runs_for_eval(WORLD)
    return runs[:n]


def predictions(result):
    return [(r["run_id"], r["predictions"]) for r in result.runs]


# -- device and dtype ---------------------------------------------------------------------------


@pytest.fixture
def machine(monkeypatch):
    """Pretend this machine has the accelerators named: ``machine(cuda=2, bf16=True, mps=False)``."""

    def set_(cuda: int = 0, bf16: bool = False, mps: bool = False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda > 0)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)

    return set_


def test_auto_device_and_dtype_on_this_cpu(machine):
    from attribution.score.device import resolve_device, resolve_dtype

    machine()
    assert resolve_device("auto") == "cpu"
    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_device("CPU") == "cpu"


def test_auto_prefers_cuda_then_mps(machine):
    from attribution.score.device import resolve_device, resolve_dtype

    machine(cuda=1, bf16=True, mps=True)
    assert resolve_device("auto") == "cuda"
    assert resolve_dtype("auto", "cuda") == "bfloat16"
    machine(cuda=1, bf16=False)
    assert resolve_dtype("auto", "cuda:0") == "float32"  # a pre-Ampere GPU: no bf16
    machine(mps=True)
    assert resolve_device("auto") == "mps"
    assert resolve_dtype("auto", "mps") == "float32"
    assert resolve_dtype("bfloat16", "cpu") == "bfloat16"  # an explicit dtype is kept


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "cpu:0", "gpu", "", "mps:1"])
def test_unknown_device_is_refused(name, machine):
    from attribution.score.device import resolve_device

    machine(cuda=1)
    with pytest.raises(ConfigError, match="The 'device' parameter must be one of"):
        resolve_device(name)


def test_unavailable_device_is_refused(machine):
    from attribution.score.device import resolve_device

    machine()
    with pytest.raises(ConfigError, match="'cuda' is not available"):
        resolve_device("cuda")
    with pytest.raises(ConfigError, match="'mps' is not available"):
        resolve_device("mps")
    machine(cuda=2)
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(ConfigError, match="has 2 CUDA device"):
        resolve_device("cuda:2")
    machine()
    assert resolve_device("cuda", check=False) == "cuda"  # a remote worker's device
    assert "bfloat16" == __import__("attribution.score.device", fromlist=["x"]).resolve_dtype("auto", "cuda")


def test_device_map(machine):
    from attribution.score.device import parse_device_map

    machine(cuda=2)
    assert parse_device_map("policy=cuda:0,reference=cuda:1") == ("cuda:0", "cuda:1")
    assert parse_device_map("reference=cuda:0, policy=cuda:1") == ("cuda:1", "cuda:0")
    assert parse_device_map("cuda:1,cuda:0") == ("cuda:1", "cuda:0")
    assert parse_device_map(None, "auto") == ("cuda", "cuda")
    for bad in ("cuda:0", "policy=cuda:0,ref=cuda:1", "policy=cuda:0,cuda:1", "a,b,c"):
        with pytest.raises(ConfigError):
            parse_device_map(bad)
    with pytest.raises(ConfigError, match="cuda:5"):
        parse_device_map("cuda:0,cuda:5")


def test_device_map_places_each_side(tiny_pair):
    from attribution.diagnoser import make_scorer

    scorer = make_scorer(policy=str(tiny_pair[0]), reference=str(tiny_pair[1]), device_map="policy=cpu,reference=cpu")
    pair = scorer.pairs.pairs["default"]
    assert (pair.policy.device, pair.reference.device, pair.policy.dtype) == ("cpu", "cpu", "float32")


def test_attention_implementation(monkeypatch):
    import importlib.util

    from attribution.score.device import attention_implementation

    assert attention_implementation("cpu", "float32") == "sdpa"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name == "flash_attn" else None)
    assert attention_implementation("cuda", "bfloat16") == "flash_attention_2"
    assert attention_implementation("cuda", "float32") == "sdpa"  # FlashAttention is half precision only
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert attention_implementation("cuda", "bfloat16") == "sdpa"


def test_models_load_with_sdpa(tiny_pair):
    from attribution.score import CheckpointPair

    pair = CheckpointPair.load(str(tiny_pair[0]), str(tiny_pair[1]), device="cpu")
    assert pair.policy.model.config._attn_implementation == "sdpa"


def test_token_budget_from_free_memory():
    from types import SimpleNamespace

    from attribution.score.device import token_budget

    cfg = SimpleNamespace(hidden_size=2048, intermediate_size=8192)  # 2 * 2 * (6*2048 + 3*8192) bytes per token (bf16)
    per_token = 2 * 2 * (6 * 2048 + 3 * 8192)
    assert token_budget(10 * 2**30, [cfg], "bfloat16", window=4096, reserve=0.0) == 10 * 2**30 // per_token
    assert token_budget(10 * 2**30, [cfg], "float32", window=4096, reserve=0.0) == 10 * 2**30 // (2 * per_token)
    assert token_budget(1 << 20, [cfg], "bfloat16", window=4096) == 4096  # never below one window
    assert token_budget(None, [cfg], "bfloat16", window=4096) == 16384  # CPU: no free-memory reading


def test_out_of_memory_errors_are_recognised():
    from attribution.score.device import is_out_of_memory

    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 1 GB)"))
    assert is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_bad_device_fails_before_any_model_loads(monkeypatch, machine):
    from attribution.evaluation import evaluate
    from attribution.score.pairs import Checkpoint

    machine()

    def no_load(self):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(Checkpoint, "model", property(no_load))
    for kwargs, msg in (({"device": "tpu"}, "'device'"), ({"device": "cuda"}, "not available"),
                        ({"shard": "3/2"}, "'shard'"), ({"shard": "a/b"}, "'shard'")):
        with pytest.raises(ConfigError, match=msg):
            evaluate(world_runs(2), use_cache=False, **kwargs)


# -- out-of-memory back-off ---------------------------------------------------------------------


def fake_oom(monkeypatch, limit: int, error=torch.cuda.OutOfMemoryError):
    """Make every forward pass over more than ``limit`` padded tokens fail as out of memory; count calls."""
    import attribution.score.logprobs as lp

    real = lp.realised_logprobs
    calls = {"ok": 0, "oom": 0}

    def forward(head, input_ids, *args, **kwargs):
        if input_ids.numel() > limit:
            calls["oom"] += 1
            raise error("CUDA out of memory. Tried to allocate 20.00 GiB")
        calls["ok"] += 1
        return real(head, input_ids, *args, **kwargs)

    monkeypatch.setattr(lp, "realised_logprobs", forward)
    return calls


@pytest.mark.parametrize("error", [torch.cuda.OutOfMemoryError, RuntimeError])
def test_out_of_memory_halves_the_batch_and_loses_no_run(monkeypatch, error):
    from attribution.diagnoser import make_scorer

    runs = world_runs(12)
    want = make_scorer(max_batch_tokens=1 << 16).score_many(runs)
    scorer = make_scorer(max_batch_tokens=1 << 16)
    width = max(want[i].n_tokens["world"] for i in range(len(runs)))
    calls = fake_oom(monkeypatch, limit=3 * width, error=error)  # at most 3 windows fit at once
    got = scorer.score_many(runs)
    assert calls["oom"] >= 1 and scorer.stats["oom_retries"] == calls["oom"]
    # Smaller batches round differently (float32 in another batch shape): equal within the stated 1e-5.
    for a, b in zip(got, want):
        assert [s.index for s in a.steps] == [s.index for s in b.steps]
        for x, y in zip(a.steps, b.steps):
            assert x.logps == pytest.approx(y.logps, rel=1e-5, abs=1e-5)
            assert x.ref_logps == pytest.approx(y.ref_logps, rel=1e-5, abs=1e-5)
    # Once halved, later batches start below the size that failed: fewer failures than batches.
    assert calls["oom"] < calls["ok"]


def test_a_window_that_never_fits_is_one_clear_error(monkeypatch):
    from attribution.diagnoser import make_scorer

    fake_oom(monkeypatch, limit=1)
    with pytest.raises(ScoringError, match="does not fit in device memory even alone"):
        make_scorer().score_many(world_runs(2))


def test_out_of_memory_count_reaches_the_report(monkeypatch, tmp_path):
    from attribution.evaluation import evaluate
    from attribution.evaluation.report import resources_line

    from attribution.diagnoser import make_scorer

    runs = world_runs(10)
    width = max(r.n_tokens["world"] for r in make_scorer().score_many(runs))
    fake_oom(monkeypatch, limit=width)  # one window at a time fits
    result = evaluate(runs, use_cache=False, n_boot=0, aggregate="sum", ranker="most-negative", max_batch_tokens=4096)
    assert result.timing["oom_retries"] >= 1 and result.timing["engine"] == "local"
    assert "cpu" in result.timing["peak_memory"] and result.timing["peak_memory"]["cpu"] > 0
    assert f"{result.timing['oom_retries']} out-of-memory retries" in resources_line(result.timing)


# -- sharding -----------------------------------------------------------------------------------


def test_shard_spec():
    from attribution.engine import parse_shard, select_shard

    assert parse_shard("1/1") == (1, 1) and parse_shard(" 3 / 4 ") == (3, 4) and parse_shard((2, 2)) == (2, 2)
    for bad in ("3/2", "0/2", "a/b", "1", "1/0", "-1/2", "1/2/3"):
        with pytest.raises(ConfigError, match="The 'shard' parameter must be I/N"):
            parse_shard(bad)
    runs = world_runs(11)
    shards = [select_shard(runs, (i, 3)) for i in (1, 2, 3)]
    assert sorted(len(s) for s in shards) == [3, 4, 4]
    assert sorted(r.content_hash() for s in shards for r in s) == sorted(r.content_hash() for r in runs)
    assert select_shard(list(reversed(runs)), (2, 3)) == shards[1]  # independent of input order


def test_two_shards_then_a_plain_eval_with_no_forward_pass(monkeypatch, tmp_path):
    import attribution.score.logprobs as lp
    from attribution.evaluation import evaluate

    runs = world_runs(16)
    kw = dict(n_boot=0, aggregate="sum", ranker="most-negative")
    want = evaluate(runs, use_cache=False, **kw)
    cache = tmp_path / "cache"
    parts = [evaluate(runs, cache_dir=cache, shard=f"{i}/2", **kw) for i in (1, 2)]
    assert [p.timing["scored"] for p in parts] == [8, 8] and parts[0].subsets == {}
    assert parts[0].settings["shard"] == "1/2"

    real, calls = lp.realised_logprobs, []
    monkeypatch.setattr(lp, "realised_logprobs", lambda *a, **k: calls.append(1) or real(*a, **k))
    got = evaluate(runs, cache_dir=cache, **kw)
    assert calls == [] and got.timing["scored"] == 0 and got.timing["from_cache"] == 16
    assert predictions(got) == predictions(want)
    assert got.to_dict()["subsets"] == want.to_dict()["subsets"]


def test_shard_needs_the_disk_cache():
    from attribution.evaluation import evaluate

    with pytest.raises(ConfigError, match="needs the cache"):
        evaluate(world_runs(2), use_cache=False, shard="1/2")


# -- engines ------------------------------------------------------------------------------------


def test_checkpoints_pickle_without_their_models(tiny_pair):
    from attribution.diagnoser import make_scorer

    scorer = make_scorer(policy=str(tiny_pair[0]), reference=str(tiny_pair[1]))
    pair = scorer.pairs.pairs["default"]
    assert pair.policy.model is not None and pair.reference.model is not pair.policy.model
    copy = pickle.loads(pickle.dumps(scorer))
    cp = copy.pairs.pairs["default"]
    assert cp.policy._model is None and cp.policy.name == pair.policy.name and cp.reference.device == "cpu"
    assert len(pickle.dumps(scorer)) < 100_000  # no weights travel


def test_unknown_engine_and_local_options():
    from attribution.engine import make_engine

    with pytest.raises(ConfigError, match="The 'engine' parameter must be one of local, ray"):
        make_engine("spark")
    with pytest.raises(ConfigError, match="apply to --engine ray"):
        make_engine("local", workers=4)
    assert make_engine("local", workers=None).name == "local"


def test_ray_engine_without_ray_says_how_to_install(monkeypatch):
    from attribution.engine import make_engine

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'attribution\[ray\]'") as err:
        make_engine("ray").check()
    assert "\n" not in str(err.value)


def test_ray_address_that_cannot_be_reached_fails_at_once():
    pytest.importorskip("ray")
    from attribution.engine import make_engine

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(ConfigError, match="cannot be reached"):
            make_engine("ray", address=address).check()
    with pytest.raises(ConfigError, match="The 'address' parameter must be"):
        make_engine("ray", address="nowhere").check()
    with pytest.raises(ConfigError, match="'workers'"):
        make_engine("ray", workers=0)
    with pytest.raises(ConfigError, match="'device' parameter must be 'auto' or 'cpu'"):
        make_engine("ray").worker_device("cuda:1")


@pytest.fixture
def ray_down():
    """Whatever a test does, no Ray cluster outlives it."""
    ray = pytest.importorskip("ray")
    yield ray
    if ray.is_initialized():
        ray.shutdown()


@pytest.mark.slow
def test_ray_engine_predictions_equal_the_local_engine(ray_down, tmp_path):
    from attribution.evaluation import evaluate

    runs = world_runs(16)
    kw = dict(n_boot=0, aggregate="sum", ranker="most-negative")
    local = evaluate(runs, cache_dir=tmp_path / "local", **kw)
    remote = evaluate(runs, cache_dir=tmp_path / "ray", engine="ray", group_size=4,
                      engine_options={"workers": 2, "cpus_per_worker": 1}, **kw)
    assert not ray_down.is_initialized()  # the engine shut down the local cluster it started
    assert remote.timing["engine"] == "ray" and remote.timing["scored"] == 16
    assert len(remote.timing["peak_memory"]) == 2  # one entry per actor
    assert predictions(remote) == predictions(local)
    # the driver wrote every entry of the pair into the cache (the null pair, scored locally, has its own folder)
    assert len(list((tmp_path / "ray" / remote.settings["cache"]["setup"]).glob("*.npz"))) == 16
    again = evaluate(runs, cache_dir=tmp_path / "ray", **kw)
    assert again.timing["scored"] == 0 and predictions(again) == predictions(local)


@pytest.mark.slow
def test_diagnose_many_logs_on_ray_equals_local(ray_down, tmp_path):
    import json

    from attribution.diagnoser import diagnose_many

    folder = tmp_path / "logs"
    folder.mkdir()
    for k, line in enumerate(WORLD.read_text().splitlines()[:6]):
        (folder / f"run{k}.json").write_text(json.dumps(json.loads(line)["messages"]))
    local = diagnose_many(folder)
    remote = diagnose_many([folder], engine="ray", engine_options={"workers": 2, "cpus_per_worker": 0.5}, group_size=2)
    assert not ray_down.is_initialized()
    assert [d.source for d in local] == sorted(str(p) for p in folder.glob("*.json"))
    assert [(d.source, d.culprit_step, d.culprit_agent, d.top) for d in remote] == [
        (d.source, d.culprit_step, d.culprit_agent, d.top) for d in local
    ]


# -- command line -------------------------------------------------------------------------------


@pytest.mark.parametrize("args, msg", [
    (["--device", "tpu"], "The 'device' parameter"),
    (["--device", "cuda:7"], "not available"),
    (["--shard", "3/2"], "The 'shard' parameter"),
    (["--shard", "a/b"], "The 'shard' parameter"),
    (["--device-map", "cuda:0"], "The 'device_map' parameter"),
    (["--engine", "ray", "--address", "127.0.0.1:1"], "cannot be reached"),
    (["--workers", "2"], "apply to --engine ray"),
])
def test_cli_bad_scale_settings_are_one_line_and_exit_2(args, msg, monkeypatch, machine):
    from click.testing import CliRunner

    from attribution.cli import main
    from attribution.score.pairs import Checkpoint

    if "ray" in args:
        pytest.importorskip("ray")
    machine()
    monkeypatch.setattr(Checkpoint, "model", property(lambda self: pytest.fail("a model was loaded")))
    res = CliRunner().invoke(main, ["eval", "--dataset", str(WORLD), "--no-cache", "-q", *args])
    assert res.exit_code == 2, res.output
    assert msg in res.output and res.output.count("\n") == 1


def test_cli_shards_then_plain_eval_and_diagnose_a_folder(tmp_path):
    import json

    from click.testing import CliRunner

    from attribution.cli import main

    data = tmp_path / "runs.jsonl"
    data.write_text("\n".join(WORLD.read_text().splitlines()[:6]) + "\n")
    common = ["eval", "--dataset", str(data), "--cache-dir", str(tmp_path / "cache"), "--bootstrap", "0",
              "--aggregate", "sum", "--ranker", "most-negative"]
    for i in (1, 2):
        res = CliRunner().invoke(main, [*common, "--shard", f"{i}/2"])
        assert res.exit_code == 0, res.output
        assert f"shard {i}/2: 3 runs, 3 scored" in res.output
    res = CliRunner().invoke(main, [*common, "-q", "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    timing = json.loads((tmp_path / "r.json").read_text())["timing"]
    assert (timing["scored"], timing["from_cache"]) == (0, 6)

    folder = tmp_path / "logs"
    folder.mkdir()
    for k, line in enumerate(WORLD.read_text().splitlines()[:3]):
        (folder / f"run{k}.json").write_text(json.dumps(json.loads(line)["messages"]))
    res = CliRunner().invoke(main, ["diagnose", str(folder), "-q", "--json", str(tmp_path / "d.json")])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[-1] == "3 runs diagnosed" and len(lines) == 5
    assert [line.split()[0][-9:] for line in lines[1:4]] == ["run0.json", "run1.json", "run2.json"]
    assert len(json.loads((tmp_path / "d.json").read_text())) == 3


def test_free_memory_counts_the_allocator_cache(monkeypatch, machine):
    from attribution.score.device import free_memory

    machine(cuda=1)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda dev: (3 << 30, 80 << 30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda dev: 5 << 30)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda dev: 4 << 30)
    assert free_memory("cuda:0") == 4 << 30
    assert free_memory("cpu") is None
