"""The dashboard's HTTP server: 127.0.0.1 on a free port, in daemon threads of the CLI.

Routes: `/` the page, `/live.js` its script, `/api/live` the JSON the page
polls, `/grafana.json` the Grafana dashboard of the run shown. Everything the
page needs comes from here: it makes no other request.

A watcher thread follows the run: when its Prometheus is up it writes the
Grafana files and tells the caller (`on_run`), once per run. `stop()` shuts
both threads down and never waits on a slow request for long.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

from scalelab import paths
from scalelab.live import grafana
from scalelab.live.follow import RunFollower, RunState
from scalelab.live.prom import Prometheus
from scalelab.live.snapshot import snapshot

WATCH_S = 0.5
CACHE_S = 0.5
STATIC = {"/": ("page.html", "text/html"), "/live.js": ("live.js", "text/javascript")}

OnRun = Callable[[RunState, Path | None], None]


class Dashboard:
    def __init__(
        self,
        follower: RunFollower,
        on_run: OnRun | None = None,
        serve: bool = True,
        port: int = 0,
    ):
        self.follower = follower
        self.on_run = on_run
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self)) if serve else None
        self.stopped = threading.Event()
        self._prom: Prometheus | None = None
        self._lock = threading.Lock()
        self._cached: tuple[float, bytes] | None = None
        self._announced: set[str] = set()
        self._threads = [threading.Thread(target=self._watch, name="live-watch", daemon=True)]
        if self.server is not None:
            self.server.daemon_threads = True
            serve_forever = self.server.serve_forever
            self._threads.append(threading.Thread(target=serve_forever, args=(0.2,), daemon=True))

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT/, or "" when not serving."""
        if self.server is None:
            return ""
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def start(self) -> Dashboard:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; idempotent, returns within a few seconds whatever a request does."""
        if self.stopped.is_set():
            return
        self.stopped.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        for thread in self._threads:
            thread.join(timeout=3)
        with self._lock:
            if self._prom is not None:
                self._prom.close()

    def __enter__(self) -> Dashboard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def payload(self) -> bytes:
        """The JSON for `/api/live`, computed at most once per CACHE_S for all viewers."""
        with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < CACHE_S:
                return self._cached[1]
            state = self.follower.current()
            body = json.dumps(snapshot(state, self._client(state))).encode()
            self._cached = (time.monotonic(), body)
            return body

    def grafana_json(self) -> bytes:
        state = self.follower.current()
        if state is None:
            return b"{}"
        return json.dumps(grafana.dashboard(state), indent=2).encode()

    def _client(self, state: RunState | None) -> Prometheus | None:
        url = state.prometheus if state else None
        if url is None:
            return None
        if self._prom is None or self._prom.url != url.rstrip("/"):
            if self._prom is not None:
                self._prom.close()
            self._prom = Prometheus(url)
        return self._prom

    def _watch(self) -> None:
        while not self.stopped.wait(WATCH_S):
            state = self.follower.current()
            if state is None or state.prometheus is None or state.id in self._announced:
                continue
            self._announced.add(state.id)
            written = grafana.write(state)
            if self.on_run is not None:
                self.on_run(state, written)


def start_dashboard(
    on_run: OnRun | None = None, run_dir: Path | None = None, serve: bool = True, port: int = 0
) -> Dashboard:
    """Serve the live page for this process's runs (or one run directory) until `stop()`.

    With `serve=False` only the watcher runs: `on_run` is still called, nothing listens.
    `port` 0 takes a free one.
    """
    follower = RunFollower(runs=paths.runs_dir(), run_dir=run_dir)
    return Dashboard(follower, on_run, serve, port).start()


def _handler(dashboard: Dashboard) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            route = self.path.split("?", 1)[0]
            if route in STATIC:
                name, kind = STATIC[route]
                self._send(resources.files("scalelab.live").joinpath(name).read_bytes(), kind)
            elif route == "/api/live":
                self._send(dashboard.payload(), "application/json")
            elif route == "/grafana.json":
                self._send(dashboard.grafana_json(), "application/json")
            else:
                self.send_error(404)

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet: the terminal belongs to the run's live view."""

    return Handler
