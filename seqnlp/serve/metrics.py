"""``GET /metrics``: the server's counters in Prometheus' text format (what TorchServe, Triton and TGI expose).

:class:`RequestMetrics` is a plain ASGI middleware (per request a clock read and a few counters): it counts every
HTTP request by route and status into :class:`HttpStats`, with a latency histogram per route. :func:`render`
writes those and the batching counters (the micro-batcher's, and the model loops' of continuous batching) as
Prometheus exposition text (format 0.0.4), so that a Prometheus server can scrape ``/metrics`` as it does any
other service.
Routes outside the app's own are counted as ``other`` (a scan of random paths must not grow the label set).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

__all__ = ["CONTENT_TYPE", "HttpStats", "RequestMetrics", "render"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)  # seconds


class HttpStats:
    """Requests counted by ``(method, route, status)`` and a latency histogram per route (``routes``: the paths
    counted under their own name; others count as ``other``)."""

    def __init__(self, routes: Iterable[str]):
        self.routes = frozenset(routes)
        self.lock = threading.Lock()
        self.count: dict[tuple[str, str, int], int] = {}  # (method, route, status) -> requests
        self.buckets: dict[str, list[int]] = {}  # route -> cumulative counts per bucket (+Inf last)
        self.seconds: dict[str, float] = {}  # route -> summed latency
        self.in_flight = 0

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self.lock:
            key = (method, route, status)
            self.count[key] = self.count.get(key, 0) + 1
            counts = self.buckets.setdefault(route, [0] * (len(BUCKETS) + 1))
            for i, edge in enumerate(BUCKETS):
                if seconds <= edge:
                    counts[i] += 1
            counts[-1] += 1
            self.seconds[route] = self.seconds.get(route, 0.0) + seconds

    def lines(self) -> list[str]:
        with self.lock:
            count, buckets, seconds = dict(self.count), {k: list(v) for k, v in self.buckets.items()}, \
                dict(self.seconds)
        out = ["# HELP seqnlp_http_requests_total HTTP requests answered, by method, route and status.",
               "# TYPE seqnlp_http_requests_total counter"]
        out += [f'seqnlp_http_requests_total{{method="{m}",route="{r}",status="{s}"}} {n}'
                for (m, r, s), n in sorted(count.items())]
        out += ["# HELP seqnlp_http_request_duration_seconds Time from a request's arrival to its answer, by route.",
                "# TYPE seqnlp_http_request_duration_seconds histogram"]
        for route in sorted(buckets):
            counts = buckets[route]
            out += [f'seqnlp_http_request_duration_seconds_bucket{{route="{route}",le="{edge}"}} {c}'
                    for edge, c in zip(BUCKETS, counts)]
            out += [f'seqnlp_http_request_duration_seconds_bucket{{route="{route}",le="+Inf"}} {counts[-1]}',
                    f'seqnlp_http_request_duration_seconds_sum{{route="{route}"}} {seconds[route]:.6f}',
                    f'seqnlp_http_request_duration_seconds_count{{route="{route}"}} {counts[-1]}']
        out += ["# HELP seqnlp_http_requests_in_flight Requests being answered now.",
                "# TYPE seqnlp_http_requests_in_flight gauge", f"seqnlp_http_requests_in_flight {self.in_flight}"]
        return out


class RequestMetrics:
    """ASGI middleware: every HTTP request into ``stats`` (:class:`HttpStats`) with its status and latency."""

    def __init__(self, app: Any, stats: HttpStats):
        self.app, self.stats = app, stats

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        stats = self.stats
        route = scope["path"] if scope["path"] in stats.routes else "other"
        status = [500]  # a request whose app raised before answering

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        t0 = time.perf_counter()
        stats.in_flight += 1
        try:
            await self.app(scope, receive, sending)
        finally:
            stats.in_flight -= 1
            stats.observe(scope["method"], route, status[0], time.perf_counter() - t0)


def _metric(name: str, kind: str, help_: str, value: float, labels: str = "") -> list[str]:
    return [f"# HELP {name} {help_}", f"# TYPE {name} {kind}", f"{name}{labels} {value}"]


def render(requests: HttpStats, task: str, batching: dict, loops: dict | None, restarts: int = 0) -> str:
    """The exposition text: HTTP requests, the micro-batcher's counters (``BatchStats.as_dict()``) and, with
    continuous batching or worker processes, the model loops' (:func:`~seqnlp.serve.loop.summed_counters`)."""
    out = _metric("seqnlp_info", "gauge", "The task this server serves.", 1, f'{{task="{task}"}}')
    out += requests.lines()
    b = batching
    out += _metric("seqnlp_batcher_requests_total", "counter", "Requests run by the micro-batcher.", b["requests"])
    out += _metric("seqnlp_batcher_inputs_total", "counter", "Inputs run by the micro-batcher.", b["inputs"])
    out += _metric("seqnlp_batcher_batches_total", "counter", "Predict calls of grouped requests.", b["batches"])
    out += _metric("seqnlp_batcher_waiting", "gauge", "Requests waiting for a batch.", b["waiting"])
    out += _metric("seqnlp_batcher_model_seconds_total", "counter", "Seconds in the micro-batcher's predict calls.",
                   b["model_seconds"])
    if loops is not None:
        out += _metric("seqnlp_loop_answered_total", "counter", "Requests answered by the model loops (continuous "
                       "batching, worker processes).", loops["answered"])
        out += _metric("seqnlp_loop_steps_total", "counter", "Decoder steps of the running searches.", loops["steps"])
        out += _metric("seqnlp_loop_live_input_steps_total", "counter", "Sentences searched, summed over steps "
                       "(divided by the steps: sentences per step).", loops["live_input_steps"])
        out += _metric("seqnlp_loop_model_seconds_total", "counter", "Seconds the model loops spent in the model.",
                       loops["model_seconds"])
        out += _metric("seqnlp_loop_requests_open", "gauge", "Requests handed to a model loop, not answered yet.",
                       loops["requests_open"])
        out += _metric("seqnlp_worker_restarts_total", "counter", "Model loops or worker processes restarted.",
                       restarts)
    return "\n".join(out) + "\n"
