"""The Ray engine: Ray Data with a pool of actors, each loading its checkpoint pair(s) once.

Groups of runs are the rows of a Ray dataset; ``map`` with an :class:`ActorPoolStrategy`
sends each to one of ``workers`` actors, which scores it with its own copy of the scorer (the
scorer pickles without its models, :meth:`attribution.score.pairs.Checkpoint.__getstate__`,
and each actor loads them on its first group). Scored runs stream back to the driver, which
writes them into the score cache atomically as they arrive, so a killed job resumes.

Without ``address`` a local cluster is started (``ray.init()``; a laptop) and shut down by
:meth:`RayEngine.close`; with one, the engine joins that cluster (each node needs this package
installed) and leaves it running. ``ray`` is an optional extra: ``pip install 'attribution[ray]'``.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit

from attribution.engine.base import Engine
from attribution.errors import ConfigError
from attribution.types import Run

__all__ = ["RayEngine", "INSTALL_HINT"]

INSTALL_HINT = "the Ray engine needs the 'ray' package: pip install 'attribution[ray]' (or pip install 'ray[data]')"


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse at once an address whose host:port does not answer (ray.init would retry for a minute)."""
    if address in ("auto", "local"):
        return
    parts = urlsplit(address if "://" in address else f"ray://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or port is None:
        raise ConfigError(f"The 'address' parameter must be HOST:PORT, ray://HOST:PORT or auto. Got {address!r} instead.")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise ConfigError(
            f"Ray address {address!r} cannot be reached ({err.strerror or err}); start a cluster there with "
            "'ray start --head', or omit --address to run a local cluster"
        ) from None


class _ScoreActor:
    """One Ray actor: unpickles the scorer once and scores the groups it is given."""

    def __init__(self, scorer: bytes, threads: int):
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
        self.scorer = pickle.loads(scorer)
        self.tag = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        from attribution.score.device import peak_memory

        runs = pickle.loads(row["group"])
        before = self.scorer.stats.get("oom_retries", 0)
        scored = self.scorer.score_many(runs)
        devices = [c.device for p in self.scorer.pairs.pairs.values() for c in (p.policy, p.reference)]
        stats = {
            "oom_retries": self.scorer.stats.get("oom_retries", 0) - before,
            "peak_memory": {f"{self.tag} {d}": b for d, b in peak_memory(devices).items()},
        }
        return {"scored": pickle.dumps(scored), "stats": pickle.dumps(stats)}


class RayEngine(Engine):
    """Score on a Ray cluster with ``workers`` actors.

    Parameters
    ----------
    address : str, optional
        An existing cluster (``HOST:PORT``, ``ray://HOST:PORT`` or ``auto``); default: start a
        local cluster for this job.
    workers : int
        Actors in the pool; each loads the pair(s) once.
    gpus_per_worker : float
        GPUs Ray gives each actor (0: CPU actors). With GPUs, the scorer is built for ``cuda``.
    cpus_per_worker : float
        CPUs Ray reserves per actor (and torch threads per actor, at least 1).
    """

    name = "ray"
    remote = True

    def __init__(self, address: str | None = None, workers: int = 2, gpus_per_worker: float = 0, cpus_per_worker: float = 1):
        for pname, value, least in (("workers", workers, 1), ("gpus_per_worker", gpus_per_worker, 0), ("cpus_per_worker", cpus_per_worker, 0)):
            if not isinstance(value, (int, float)) or value < least:
                raise ConfigError(f"The '{pname}' parameter must be a number >= {least}. Got {value!r} instead.")
        self.address = address
        self.workers = int(workers)
        self.gpus_per_worker = float(gpus_per_worker)
        self.cpus_per_worker = float(cpus_per_worker)
        self._ray: Any = None
        self._started = False
        self._stats: dict[str, Any] = {"oom_retries": 0, "peak_memory": {}}

    def worker_device(self, device: str) -> str:
        target = "cuda" if self.gpus_per_worker > 0 else "cpu"
        if device not in ("auto", target):
            raise ConfigError(
                f"The 'device' parameter must be 'auto' or '{target}' with the Ray engine (each worker uses "
                f"the {'GPUs Ray gives it' if target == 'cuda' else 'CPU'}; see --gpus-per-worker). Got {device!r} instead."
            )
        return target

    def check(self) -> None:
        """Ray is installed and ``address`` (if any) answers; one-line :class:`ConfigError` otherwise."""
        _import_ray()
        if self.address is not None:
            _check_reachable(self.address)

    def start(self) -> "RayEngine":
        """Check, then join or start the cluster; loads no model."""
        if self._ray is not None:
            return self
        self.check()
        ray = _import_ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
            if self.address is None:
                # A local cluster sized for the pool; workers import this package from where the driver does.
                pkg_root = str(Path(__file__).resolve().parents[2])
                path = os.pathsep.join(p for p in (pkg_root, os.environ.get("PYTHONPATH", "")) if p)
                kwargs["num_cpus"] = max(1, int(-(-self.workers * self.cpus_per_worker // 1)))
                kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
            else:
                kwargs["address"] = self.address
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise ConfigError(f"cannot join the Ray cluster at {self.address or 'a new local cluster'}: {str(err).strip().splitlines()[0]}") from None
            self._started = True
        self._ray = ray
        gpus = float(ray.cluster_resources().get("GPU", 0))
        if self.gpus_per_worker > 0 and gpus < self.gpus_per_worker:
            self.close()
            raise ConfigError(
                f"The 'gpus_per_worker' parameter asks for {self.gpus_per_worker:g} GPU(s) per worker, but the Ray cluster has {gpus:g}"
            )
        return self

    def close(self) -> None:
        if self._started and self._ray is not None:
            self._ray.shutdown()
        self._ray, self._started = None, False

    def score(self, scorer: Any, groups: Sequence[Sequence[Run]], *, progress: bool = False) -> Iterator[list[Any]]:
        if not groups:
            return
        self.start()
        ray = self._ray
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = progress
        ctx.execution_options.verbose_progress = False
        # Ray Data logs each dataset's plan at INFO on the driver; keep the terminal for our own output.
        logging.getLogger("ray.data").setLevel(logging.INFO if progress else logging.ERROR)
        ds = ray.data.from_items([{"group": pickle.dumps(list(g))} for g in groups], override_num_blocks=len(groups))
        pool = min(self.workers, len(groups))
        ds = ds.map(
            _ScoreActor,
            fn_constructor_kwargs={"scorer": pickle.dumps(scorer), "threads": max(1, int(self.cpus_per_worker))},
            compute=ray.data.ActorPoolStrategy(size=pool),
            num_cpus=self.cpus_per_worker,
            num_gpus=self.gpus_per_worker,
        )
        for row in ds.iter_rows():
            stats = pickle.loads(row["stats"])
            self._stats["oom_retries"] += stats["oom_retries"]
            for k, v in stats["peak_memory"].items():
                self._stats["peak_memory"][k] = max(v, self._stats["peak_memory"].get(k, 0))
            yield pickle.loads(row["scored"])

    def stats(self) -> dict[str, Any]:
        return {"oom_retries": self._stats["oom_retries"], "peak_memory": dict(self._stats["peak_memory"])}
