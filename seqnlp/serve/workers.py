"""Model worker processes for ``seqnlp serve --workers N``: each loads the model once and runs batches.

In one process the model thread and the web server share one interpreter lock: beam search's per-step Python
(a few dozen small tensor operations per decoder step) and the event loop's request handling take turns on it,
and measured under load the server used about 1.1-1.5 of 2 cores however many model threads it had. Worker
processes have a lock each: the server process parses requests and batches them (:mod:`seqnlp.serve.batcher`),
and each batch runs in a free worker (``--workers 2 --threads 1`` on two cores: two batches decode at once, one
core each).

A worker loads the same checkpoint (the resolved local directory: a Hub model is downloaded once, by the
server) with the server's overrides, precision and threads, and keeps its own predictors of parameter sets
(:class:`~seqnlp.serve.models.PredictorPool`). Workers are started with ``spawn`` (a fork of a process whose
OpenMP threads have run can hang) and ignore SIGINT (Ctrl-C reaches the whole process group): the server stops
them after answering the requests in flight. A worker that dies (killed, out of memory) fails the batch it was
running; the pool is started again and the batcher retries that batch's requests one by one.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from .models import Limits, PredictorPool

__all__ = ["WorkerSpec", "ProcessWorkers"]

_POOL: PredictorPool | None = None  # in a worker process: its predictors


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker loads: ``seqnlp.runner.load(model, device, overrides, precision=..., threads=...)``."""

    model: str
    device: str = "cpu"
    overrides: tuple[str, ...] = ()
    precision: str | None = None
    threads: int = 0
    max_sets: int = 4
    limits: Limits = field(default_factory=Limits)
    trim_memory: bool = True


def _init(spec: WorkerSpec) -> None:
    """A worker's start: ignore Ctrl-C (the terminal sends it to the whole process group; the server stops its
    workers itself, after the requests in flight) and load the model."""
    global _POOL
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from ..runner import load

    def load_set(extra: list[str]):
        return load(spec.model, spec.device, [*spec.overrides, *extra], precision=spec.precision,
                    threads=spec.threads)

    _POOL = PredictorPool(load_set([]), load_set, spec.max_sets, spec.limits, spec.trim_memory)


def _predict(key: tuple[str, ...], inputs: list) -> list:
    assert _POOL is not None, "the worker was not initialised"
    return _POOL.predict(key, inputs)


def _ready() -> int:
    return os.getpid()


class ProcessWorkers:
    """``n`` worker processes; :meth:`predict` (``run(key, inputs)`` for the batcher) runs a batch in one of
    them and blocks the calling thread until its results come back."""

    def __init__(self, spec: WorkerSpec, n: int):
        if n < 1:
            raise ValueError(f"need at least one worker process, got {n}")
        self.spec, self.n = spec, n
        self._lock = threading.Lock()
        self._executor = self._new()
        self.restarts = 0

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.n, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init, initargs=(self.spec,))

    def start(self, timeout: float = 600) -> list[int]:
        """Start every worker and wait until each has loaded the model (their pids); a worker that cannot load
        it raises here, before the server says it is ready."""
        futures = [self._executor.submit(_ready) for _ in range(self.n)]
        try:
            return [f.result(timeout=timeout) for f in futures]
        except BrokenProcessPool:
            raise RuntimeError("a model worker process could not load the model (its error is printed above)") \
                from None

    def predict(self, key: tuple[str, ...], inputs: list) -> list:
        executor = self._executor
        try:
            return executor.submit(_predict, key, inputs).result()
        except BrokenProcessPool:
            with self._lock:
                if self._executor is executor:  # the first thread to notice starts a new pool
                    self._executor = self._new()
                    self.restarts += 1
                    executor.shutdown(wait=False)  # the broken pool has ended its other workers
            raise RuntimeError("a model worker process died while running this batch; the workers were "
                               "restarted") from None

    def pids(self) -> list[int]:
        return sorted(getattr(self._executor, "_processes", {}) or {})

    def stop(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
