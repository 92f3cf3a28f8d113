"""Ray engine against the local engine on a world set, in one process: ``python eval/bench_engines.py``.

Evaluates the same labelled world runs (embedded pair, no score cache, fixed setting) with the
local engine and then with the Ray engine on a local cluster (``--workers`` CPU actors), checks
that the predictions are equal and writes ``eval/bench_engines.md``: wall time of each (the Ray
time includes starting and stopping the local cluster and each actor loading the pair) and
their ratio. On a 2-core machine the local cluster cannot run faster than one process; the
figure is the engine's overhead, not a speed-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from attribution.evaluation import evaluate  # noqa: E402
from attribution.evaluation.data import load_runs_for_eval  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default=str(HERE.parent / "datasets" / "world" / "failures.jsonl"))
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cpus-per-worker", type=float, default=1)
    p.add_argument("--out", type=Path, default=HERE / "bench_engines.md")
    args = p.parse_args(argv)
    runs, _ = load_runs_for_eval(args.dataset)
    runs = runs[: args.runs]
    kw = dict(use_cache=False, n_boot=0, aggregate="sum", ranker="most-negative")
    t0 = time.perf_counter()
    local = evaluate(runs, **kw)
    t1 = time.perf_counter()
    ray = evaluate(runs, engine="ray", engine_options={"workers": args.workers, "cpus_per_worker": args.cpus_per_worker}, **kw)
    t2 = time.perf_counter()
    same = [r["predictions"] for r in local.runs] == [r["predictions"] for r in ray.runs]
    res = {"local_s": t1 - t0, "ray_s": t2 - t1, "local_scoring_s": local.timing["scoring_s"], "ray_scoring_s": ray.timing["scoring_s"]}
    lines = [
        "# Ray engine against the local engine", "",
        f"`{' '.join(['python eval/bench_engines.py', *(argv if argv is not None else sys.argv[1:])])}` on {os.cpu_count()} CPU cores: "
        f"{len(runs)} runs of `{Path(args.dataset).name}`, embedded pair, no cache; Ray: a local cluster, "
        f"{args.workers} actors × {args.cpus_per_worker:g} CPU. Predictions equal: **{same}**.", "",
        "| engine | evaluate() wall s | of which scoring s |", "|---|---|---|",
        f"| local | {res['local_s']:.1f} | {res['local_scoring_s']:.1f} |",
        f"| ray (local cluster) | {res['ray_s']:.1f} | {res['ray_scoring_s']:.1f} |",
        f"| ratio ray / local | {res['ray_s'] / res['local_s']:.2f}× | {res['ray_scoring_s'] / res['local_scoring_s']:.2f}× |", "",
    ]
    args.out.write_text("\n".join(lines))
    print(args.out.read_text())
    if not same:
        raise SystemExit("the engines' predictions differ")
    return res


if __name__ == "__main__":
    main()
