"""A real Phoenix server for the tests, and a sender of OpenInference traces through its OTLP endpoint.

:class:`PhoenixServer` starts ``python -m phoenix.server.main serve`` on free loopback ports with
its SQLite store in a temporary folder, waits (bounded) for ``/healthz`` and stops it, killing it
if it does not stop. :func:`send_trace` replays an OTLP/JSON fixture through the OpenTelemetry
SDK's OTLP/HTTP exporter with fresh trace and span ids (so one fixture gives as many traces as
wanted) and waits until Phoenix serves every span. Used by tests/test_phoenix.py and by
docs/phoenix/screenshot.py.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["free_port", "PhoenixServer", "Proxy", "send_trace", "phoenix_installed"]


def phoenix_installed() -> bool:
    import importlib.util

    names = ("phoenix.server", "opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")
    try:
        return all(importlib.util.find_spec(n) is not None for n in names)
    except ImportError:  # a parent package is missing
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PhoenixServer:
    """``with PhoenixServer(folder) as phx: phx.base`` -> ``http://127.0.0.1:PORT``."""

    def __init__(self, folder: Path, *, startup_s: float = 120.0, port: int | None = None):
        self.folder = Path(folder)
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.startup_s = startup_s
        self.proc: subprocess.Popen | None = None

    def start(self) -> "PhoenixServer":
        self.folder.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PHOENIX_WORKING_DIR": str(self.folder), "PHOENIX_HOST": "127.0.0.1",
               "PHOENIX_PORT": str(self.port), "PHOENIX_GRPC_PORT": str(free_port()),
               "PHOENIX_TELEMETRY_ENABLED": "false", "PHOENIX_SQL_DATABASE_URL": f"sqlite:///{self.folder / 'phoenix.db'}"}
        env.pop("PHOENIX_API_KEY", None)
        self.log = open(self.folder / "server.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "phoenix.server.main", "serve"], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Phoenix exited with {self.proc.returncode}; see {self.folder / 'server.log'}")
            try:
                with urllib.request.urlopen(f"{self.base}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"Phoenix did not answer /healthz within {self.startup_s:g} s; see {self.folder / 'server.log'}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if getattr(self, "log", None) is not None:
            self.log.close()
            self.log = None

    def __enter__(self) -> "PhoenixServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _value(v: dict):
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    raise ValueError(f"unsupported attribute value {v}")


def send_trace(base: str, fixture: Path, project: str, *, shift_s: float | None = None, wait_s: float = 60.0) -> dict:
    """Send the spans of an OTLP/JSON ``fixture`` to Phoenix at ``base`` into ``project``, through the
    OpenTelemetry SDK's OTLP/HTTP exporter, with a fresh trace id and fresh span ids, times moved to
    now (``shift_s`` ago). Returns ``{"trace_id", "span_ids": {fixture id: sent id}, "root"}`` once
    Phoenix serves every span (bounded by ``wait_s``)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

    value = json.loads(Path(fixture).read_text())
    trace_id = secrets.token_hex(16)
    ids: dict[str, str] = {}
    spans_json = [(rs, ss, s) for rs in value["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
    for _, _, s in spans_json:
        ids[s["spanId"]] = secrets.token_hex(8)
    first = min(int(s["startTimeUnixNano"]) for _, _, s in spans_json)
    offset = time.time_ns() - int((shift_s or 0) * 1e9) - first - int(60e9)
    out = []
    root = None
    for rs, ss, s in spans_json:
        attrs = {a["key"]: _value(a["value"]) for a in rs["resource"].get("attributes", [])}
        attrs["openinference.project.name"] = project
        ctx = SpanContext(int(trace_id, 16), int(ids[s["spanId"]], 16), is_remote=False, trace_flags=TraceFlags(1))
        parent = None
        if s.get("parentSpanId"):
            parent = SpanContext(int(trace_id, 16), int(ids[s["parentSpanId"]], 16), is_remote=False, trace_flags=TraceFlags(1))
        else:
            root = ids[s["spanId"]]
        out.append(ReadableSpan(
            name=s["name"], context=ctx, parent=parent, resource=Resource.create(attrs),
            attributes={a["key"]: _value(a["value"]) for a in s.get("attributes", [])},
            kind=SpanKind.INTERNAL, status=Status(StatusCode.OK),
            start_time=int(s["startTimeUnixNano"]) + offset, end_time=int(s["endTimeUnixNano"]) + offset,
            instrumentation_scope=InstrumentationScope(ss["scope"]["name"], ss["scope"].get("version")),
        ))
    exporter = OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=30)
    result = exporter.export(out)
    exporter.shutdown()
    if result.name != "SUCCESS":
        raise RuntimeError(f"OTLP export to {base} failed: {result}")
    deadline = time.monotonic() + wait_s
    url = f"{base}/v1/projects/{project}/spans?trace_id={trace_id}&limit=1000"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if len(json.loads(r.read())["data"]) == len(out):
                    return {"trace_id": trace_id, "span_ids": ids, "root": root}
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"Phoenix did not serve the {len(out)} spans of trace {trace_id} within {wait_s:g} s")


class Proxy:
    """A loopback HTTP proxy in front of ``target`` that records every request (method, path, headers,
    JSON body) and can answer ``POST /v1/span_annotations`` with ``fail_post`` (a status) or hold
    every answer ``delay_s`` seconds. ``with Proxy(base) as p: p.base``."""

    def __init__(self, target: str):
        import http.server
        import threading

        self.target = target.rstrip("/")
        self.requests: list[dict] = []
        self.fail_post: int | None = None
        self.delay_s = 0.0
        #: When set: every root-span query (a watch poll) after the first waits for this event.
        self.roots_gate: threading.Event | None = None
        self.roots_calls = 0
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                proxy.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                       "body": json.loads(body) if body else None})
                if proxy.delay_s:
                    time.sleep(proxy.delay_s)
                if proxy.roots_gate is not None and "parent_id=null" in self.path:
                    proxy.roots_calls += 1
                    if proxy.roots_calls > 1:
                        proxy.roots_gate.wait(120)
                if self.command == "POST" and self.path.startswith("/v1/span_annotations") and proxy.fail_post:
                    data = json.dumps({"detail": "injected failure"}).encode()
                    self.send_response(proxy.fail_post)
                else:
                    req = urllib.request.Request(proxy.target + self.path, data=body, method=self.command,
                                                 headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
                    try:
                        with urllib.request.urlopen(req, timeout=30) as r:
                            status, data = r.status, r.read()
                    except urllib.error.HTTPError as err:
                        status, data = err.code, err.read()
                    self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except OSError:
                    pass

            do_GET = do_POST = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def posts(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST" and r["path"].startswith("/v1/span_annotations")]

    def __enter__(self) -> "Proxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
