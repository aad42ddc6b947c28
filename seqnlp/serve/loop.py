"""The loop that runs the model of ``seqnlp serve``: batches at once, beam search requests continuously batched.

:class:`WorkerLoop` reads requests ``(rid, stream, key, inputs)`` from a connection (``recv()``, ``poll(0)``,
``send(answer)``) and answers each with ``(rid, ok, results or exception, counters)``:

* a request with ``stream`` false is a **batch** (a micro-batch grouped by :mod:`seqnlp.serve.batcher`, any
  task, greedy search and sampling), run as one ``predict`` call;
* a request with ``stream`` true (translation and dialogue under beam search, see :meth:`PredictorPool.streams
  <seqnlp.serve.models.PredictorPool.streams>`) is **continuously batched**: the loop keeps one running beam
  search per parameter set (:class:`~seqnlp.tasks.seq2seq.DecodeStream`) and, between two decoder steps, joins
  every request that has come in since (encoded together) and answers every request whose sentences are done. A
  sentence no longer waits for the batch it came with to finish, nor the next batch for the longest sentence of
  the last one: the search runs with as many sentences as clients are waiting for.

The loop runs in a worker process (:mod:`seqnlp.serve.workers`, ``seqnlp serve --workers N``: the connection is
a pipe) or, without worker processes, in a thread of the server (:class:`ThreadWorker`: the connection is a
queue, the predictors are the server's own).
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, InvalidStateError
from typing import Any

from .models import PredictorPool

__all__ = ["ThreadWorker", "WorkerDied", "WorkerLoop", "settle", "summed_counters"]

log = logging.getLogger("seqnlp.serve")

COUNTERS0 = (0, 0, 0.0, 0, 0.0)  # steps, sentences summed over steps, model seconds, answered, request seconds


class WorkerDied(RuntimeError):
    """The worker running a request died (its requests can be tried again in another one)."""


def settle(fut: Future, result: Any = None, error: BaseException | None = None) -> None:
    """Answer ``fut`` unless it already is (two threads may both try: the reader and a failed send)."""
    try:
        fut.set_exception(error) if error is not None else fut.set_result(result)
    except InvalidStateError:
        pass


def summed_counters(counters: Sequence[tuple], open_requests: int) -> dict:
    """The loops' counters summed (``GET /health``): decoder steps of the continuous searches, sentences per
    step on average, requests answered, seconds in the model (batches and steps) and requests still open."""
    steps = sum(c[0] for c in counters)
    live = sum(c[1] for c in counters)
    return {"steps": steps, "mean_live_inputs": round(live / steps, 2) if steps else 0.0,
            "answered": sum(c[3] for c in counters), "request_seconds": round(sum(c[4] for c in counters), 3),
            "live_input_steps": live, "model_seconds": round(sum(c[2] for c in counters), 3),
            "requests_open": open_requests}


def _portable(e: BaseException) -> BaseException:
    """``e`` if it survives the pipe to the server (pickled, then rebuilt there as ``type(e)(*e.args)``), else a
    RuntimeError with its message."""
    try:
        pickle.dumps(e)
        type(e)(*e.args)
        return e
    except Exception:  # noqa: BLE001  (an exception class whose constructor its args do not fit)
        return RuntimeError(f"{type(e).__name__}: {e}")


class WorkerLoop:
    """The loop: batches run at once, streamed requests join the running search of their key (see the module)."""

    TRIM_EVERY = 1.0  # seconds between two malloc_trim calls while searches run

    def __init__(self, pool: PredictorPool, conn: Any, max_live: int = 256, trim_memory: bool = True,
                 portable: bool = True):
        self.pool, self.conn = pool, conn
        self.max_live, self.trim_memory, self.portable = max_live, trim_memory, portable
        self.streams: dict[tuple[str, ...], Any] = {}
        # counters sent with every answer: steps, sentences summed over steps, seconds in predict / step
        self.steps = self.live_sum = self.answered = 0
        self.seconds = self.request_seconds = 0.0
        self.received: dict[int, float] = {}  # request -> when it came in
        self.trimmed = time.monotonic()

    def live(self) -> int:
        return sum(len(s) for s in self.streams.values())

    def send(self, rid: int, ok: bool, payload: Any) -> None:
        self.answered += 1
        self.request_seconds += time.perf_counter() - self.received.pop(rid, time.perf_counter())
        self.conn.send((rid, ok, payload if ok or not self.portable else _portable(payload),
                        (self.steps, self.live_sum, self.seconds, self.answered, self.request_seconds)))

    def run(self) -> None:
        while True:
            msgs = []
            if self.live() < self.max_live:
                if not self.live():
                    msgs.append(self.conn.recv())  # idle: wait for work
                while self.conn.poll(0) and len(msgs) < self.max_live:
                    msgs.append(self.conn.recv())
            if any(m is None for m in msgs):
                return  # the server stops us (after answering what it waited for)
            joining: dict[tuple[str, ...], list] = {}
            now = time.perf_counter()
            for rid, stream, key, inputs in msgs:
                self.received[rid] = now
                if stream:
                    joining.setdefault(key, []).append((rid, inputs))
                else:
                    self.batch(rid, key, inputs)
            for key, requests in joining.items():
                self.join(key, requests)
            self.step()
            if self.trim_memory and (not self.live() or time.monotonic() - self.trimmed > self.TRIM_EVERY):
                from ..train.device import release_freed_memory

                # the heap's free pages back to the system: when idle, and every second of a search that never
                # stops under load (its tensors change size every step; the heap kept growing: +14% in 5,000
                # 8-sentence requests)
                release_freed_memory()
                self.trimmed = time.monotonic()

    def batch(self, rid: int, key: tuple[str, ...], inputs: list) -> None:
        t0 = time.perf_counter()
        try:
            out = self.pool.get(key).predict(inputs, progress=False)
        except Exception as e:  # noqa: BLE001  (the server maps it to an HTTP status)
            self.seconds += time.perf_counter() - t0
            self.send(rid, False, e)
            return
        self.seconds += time.perf_counter() - t0
        self.send(rid, True, out)

    def join(self, key: tuple[str, ...], requests: list) -> None:
        t0 = time.perf_counter()
        try:
            stream = self.streams.get(key)
            if stream is None:
                stream = self.pool.get(key).stream()
                if stream is None:  # the predictor cannot take inputs mid-search (its model has no merge)
                    self.seconds += time.perf_counter() - t0
                    for rid, inputs in requests:
                        self.batch(rid, key, inputs)
                    return
                self.streams[key] = stream
            done, failed = stream.add(requests)
        except Exception as e:  # noqa: BLE001
            done, failed = [], [(rid, e) for rid, _ in requests]
        self.seconds += time.perf_counter() - t0
        for rid, results in done:
            self.send(rid, True, results)
        for rid, e in failed:
            self.send(rid, False, e)

    def step(self) -> None:
        for key, stream in list(self.streams.items()):
            if not len(stream):
                del self.streams[key]
                continue
            t0 = time.perf_counter()
            self.steps += 1
            self.live_sum += len(stream)
            try:
                done = stream.step()
            except Exception as e:  # noqa: BLE001  (a model error fails the requests of this search only)
                self.seconds += time.perf_counter() - t0
                for rid in stream.drop():
                    self.send(rid, False, e)
                continue
            self.seconds += time.perf_counter() - t0
            for rid, results in done:
                self.send(rid, True, results)


class _Queue:
    """The loop's end of an in-process connection: requests from a queue, answers handed to ``answer``."""

    def __init__(self, answer: Callable[[tuple], None]):
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.answer = answer

    def recv(self) -> Any:
        return self.inbox.get()

    def poll(self, timeout: float = 0.0) -> bool:
        return not self.inbox.empty()

    def send(self, msg: tuple) -> None:
        self.answer(msg)


class ThreadWorker:
    """A :class:`WorkerLoop` in a thread of the server process, over the server's own predictors: continuous
    batching of beam search without worker processes (``seqnlp serve`` without ``--workers``). :meth:`submit`
    and :meth:`counters` are those of :class:`~seqnlp.serve.workers.ProcessWorkers`. Should the loop itself fail
    (not a request: those fail alone), its open requests fail with :class:`WorkerDied` (the app retries them
    once) and a new loop starts."""

    n = 1

    def __init__(self, pool: PredictorPool, max_live: int = 256, trim_memory: bool = True):
        self.pool, self.max_live, self.trim_memory = pool, max_live, trim_memory
        self.restarts = 0
        self._ids = itertools.count()
        self._lock = threading.Lock()
        self._open: dict[int, Future] = {}
        self._counters: tuple = COUNTERS0
        self._done: tuple = COUNTERS0  # the counters of loops that failed
        self._conn = _Queue(self._answer)
        self._thread: threading.Thread | None = None
        self._stopping = False

    def start(self) -> list[int]:
        self._thread = threading.Thread(target=self._run, name="seqnlp-stream", daemon=True)
        self._thread.start()
        return [os.getpid()]

    def _run(self) -> None:
        while True:
            loop = WorkerLoop(self.pool, self._conn, self.max_live, self.trim_memory, portable=False)
            try:
                loop.run()
                return  # told to stop
            except Exception as e:  # noqa: BLE001  (a bug in the loop: fail what it had, start another)
                log.error("the continuous batching loop failed; restarting it", exc_info=e)
                with self._lock:
                    lost, self._open = self._open, {}
                    self._done = tuple(a + b for a, b in zip(self._done, self._counters))
                    self._counters = COUNTERS0
                self.restarts += 1
                for fut in lost.values():
                    settle(fut, error=WorkerDied("the model loop failed while running this request"))

    def stop(self, timeout: float = 30) -> None:
        """Stop the loop after what it was sent (the server calls this once its requests are answered)."""
        self._stopping = True
        self._conn.inbox.put(None)
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            lost, self._open = self._open, {}
        for fut in lost.values():
            settle(fut, error=RuntimeError("the server is shutting down"))

    def pids(self) -> list[int]:
        return [os.getpid()]

    def submit(self, key: tuple[str, ...], inputs: list, stream: bool = False) -> Future:
        """Hand a request to the loop; the Future of its results (or of the exception it raised)."""
        if self._stopping:
            raise RuntimeError("the server is shutting down")
        fut: Future = Future()
        rid = next(self._ids)
        with self._lock:
            self._open[rid] = fut
        self._conn.inbox.put((rid, stream, key, list(inputs)))
        return fut

    def predict(self, key: tuple[str, ...], inputs: list) -> list:
        return self.submit(key, inputs).result()

    def _answer(self, msg: tuple) -> None:
        rid, ok, payload, counters = msg
        with self._lock:
            self._counters = counters
            fut = self._open.pop(rid, None)
        if fut is not None:
            settle(fut, payload) if ok else settle(fut, error=payload)

    def counters(self) -> dict:
        with self._lock:
            return summed_counters([self._done, self._counters], len(self._open))
