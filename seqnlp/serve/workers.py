"""Model worker processes for ``seqnlp serve --workers N``: each loads the model once and runs what it is sent.

In one process the model thread and the web server share one interpreter lock: beam search's per-step Python
(a few dozen small tensor operations per decoder step) and the event loop's request handling take turns on it,
and measured under load the server used about 1.1-1.5 of 2 cores however many model threads it had. Worker
processes have a lock each: the server process parses requests, and each request runs in a worker (``--workers
2 --threads 1`` on two cores: two workers decode at once, one core each).

A worker runs :class:`~seqnlp.serve.loop.WorkerLoop` on its end of a pipe: micro-batches (``predict``) run at
once, beam search requests (``submit(..., stream=True)``) join its running search (continuous batching; see
:mod:`seqnlp.serve.loop`).

Requests go to the worker with the fewest sentences in progress. Each worker has a sender thread (the server
never blocks on a full pipe) and one reader thread reads every worker's answers and notices a worker that
died (killed, out of memory): the requests it had are failed with :class:`WorkerDied` (the batcher retries a
batch's requests one by one, the app retries a streamed request once), and a new worker is started in its
place; requests not yet sent to it wait for it.

A worker loads the same checkpoint (the resolved local directory: a Hub model is downloaded once, by the
server) with the server's overrides, precision and threads, and keeps its own predictors of parameter sets
(:class:`~seqnlp.serve.models.PredictorPool`). Workers are started with ``spawn`` (a fork of a process whose
OpenMP threads have run can hang) and ignore SIGINT (Ctrl-C reaches the whole process group): the server stops
them after answering the requests in flight.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
import signal
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from .loop import COUNTERS0, WorkerDied, WorkerLoop, settle, summed_counters
from .models import Limits, PredictorPool

__all__ = ["ProcessWorkers", "WorkerDied", "WorkerSpec"]


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker loads: ``seqnlp.runner.load(model, device, overrides, precision=..., threads=...)``, and
    at most ``max_live`` sentences in its running search (more wait in its pipe)."""

    model: str
    device: str = "cpu"
    overrides: tuple[str, ...] = ()
    precision: str | None = None
    threads: int = 0
    max_sets: int = 4
    limits: Limits = field(default_factory=Limits)
    trim_memory: bool = True
    max_live: int = 256


# ---------------------------------------------------------------------------------------------- worker side
def _pool(spec: WorkerSpec) -> PredictorPool:
    """The worker's predictors: the checkpoint loaded as the server loaded it, and those of parameter sets."""
    from ..runner import load

    def load_set(extra: list[str]):
        return load(spec.model, spec.device, [*spec.overrides, *extra], precision=spec.precision,
                    threads=spec.threads)

    return PredictorPool(load_set([]), load_set, spec.max_sets, spec.limits, trim_memory=False)


def _main(spec: WorkerSpec, conn: Connection) -> None:
    """A worker process: ignore Ctrl-C (the terminal sends it to the whole process group; the server stops its
    workers itself, after the requests in flight), load the model, say so, then serve until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        worker = WorkerLoop(_pool(spec), conn, spec.max_live, spec.trim_memory)
    except BaseException as e:  # noqa: BLE001  (said to the server, which refuses to start)
        conn.send(("failed", f"{type(e).__name__}: {e}"))
        raise
    conn.send(("ready", os.getpid()))
    try:
        worker.run()
    except (EOFError, BrokenPipeError):  # the server is gone
        pass


# ---------------------------------------------------------------------------------------------- server side
class _Slot:
    """One worker process and what it has been sent: its pipe, its sender thread's queue, its open requests."""

    def __init__(self, index: int):
        self.index = index
        self.proc: Any = None
        self.conn: Connection | None = None
        self.ready = threading.Event()
        self.outbox: queue.Queue = queue.Queue()  # messages for the sender thread (None: stop it)
        self.open: dict[int, Future] = {}  # sent, not answered
        self.queued = 0  # in the outbox, not sent yet
        self.sizes: dict[int, int] = {}  # inputs of each request queued or open
        self.inputs = 0  # their sum: what routing balances
        self.counters: tuple = COUNTERS0
        self.failed = ""


class ProcessWorkers:
    """``n`` worker processes. :meth:`predict` (``run(key, inputs)`` for the batcher) runs a batch in one of
    them and blocks the calling thread until its results come back; :meth:`submit` hands a request to one and
    returns a :class:`~concurrent.futures.Future` of its results (``stream=True``: joined to the worker's
    running search)."""

    def __init__(self, spec: WorkerSpec, n: int):
        if n < 1:
            raise ValueError(f"need at least one worker process, got {n}")
        self.spec, self.n = spec, n
        self.restarts = 0
        self._ctx = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()  # slots' open / queued counts, routing
        self._ids = itertools.count()
        self._slots = [_Slot(i) for i in range(n)]
        self._stopping = False
        self._changed_r, self._changed_w = self._ctx.Pipe(duplex=False)  # wakes the reader when pipes change
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 600) -> list[int]:
        """Start every worker and wait until each has loaded the model (their pids); a worker that cannot load
        it raises here, before the server says it is ready."""
        for slot in self._slots:
            self._spawn(slot)
            t = threading.Thread(target=self._send_loop, args=(slot,), name=f"seqnlp-worker-{slot.index}-send",
                                 daemon=True)
            t.start()
            self._threads.append(t)
        reader = threading.Thread(target=self._read_loop, name="seqnlp-worker-read", daemon=True)
        reader.start()
        self._threads.append(reader)
        deadline = time.monotonic() + timeout
        for slot in self._slots:
            while not slot.ready.wait(0.1):
                if slot.failed or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"a model worker process could not load the model: "
                                       f"{slot.failed or 'timed out'}")
        return self.pids()

    def _spawn(self, slot: _Slot) -> None:
        ours, theirs = self._ctx.Pipe()
        proc = self._ctx.Process(target=_main, args=(self.spec, theirs), name=f"seqnlp-worker-{slot.index}",
                                 daemon=True)
        proc.start()
        theirs.close()
        slot.ready.clear()
        slot.proc, slot.conn = proc, ours
        self._changed_w.send(b"")

    def stop(self) -> None:
        """Stop the workers (after what they were sent: the server calls this once its requests are answered)."""
        self._stopping = True
        for slot in self._slots:
            slot.outbox.put(None)
        for slot in self._slots:
            if slot.proc is not None:
                slot.proc.join(10)
                if slot.proc.is_alive():
                    slot.proc.terminate()
                    slot.proc.join(5)
        self._changed_w.send(b"")
        with self._lock:
            lost = [fut for slot in self._slots for fut in slot.open.values()]
            for slot in self._slots:
                slot.open.clear()
        for fut in lost:
            settle(fut, error=RuntimeError("the server is shutting down"))

    def pids(self) -> list[int]:
        return sorted(s.proc.pid for s in self._slots if s.proc is not None and s.proc.is_alive())

    def counters(self) -> dict:
        """The workers' counters summed (:func:`~seqnlp.serve.loop.summed_counters`)."""
        with self._lock:
            waiting = sum(len(s.open) + s.queued for s in self._slots)
        return summed_counters([s.counters for s in self._slots], waiting)

    # ------------------------------------------------------------------------------------------ requests
    def submit(self, key: tuple[str, ...], inputs: list, stream: bool = False) -> Future:
        """Send a request to the worker with the fewest inputs in progress; the Future of its results (or the
        exception it raised; :class:`WorkerDied` when its worker died meanwhile)."""
        fut: Future = Future()
        rid = next(self._ids)
        with self._lock:
            if self._stopping:
                raise RuntimeError("the server is shutting down")
            ready = [s for s in self._slots if s.ready.is_set()] or self._slots
            slot = min(ready, key=lambda s: s.inputs)  # the fewest sentences in progress
            slot.queued += 1
            slot.sizes[rid] = len(inputs)
            slot.inputs += len(inputs)
        slot.outbox.put((rid, fut, (rid, stream, key, list(inputs))))
        return fut

    def predict(self, key: tuple[str, ...], inputs: list) -> list:
        return self.submit(key, inputs).result()

    # ------------------------------------------------------------------------------------------ threads
    def _send_loop(self, slot: _Slot) -> None:
        while True:
            item = slot.outbox.get()
            if item is None:
                conn = slot.conn
                try:
                    if conn is not None:
                        conn.send(None)
                except OSError:
                    pass
                return
            rid, fut, msg = item
            while True:  # a worker being replaced: its requests wait for the new one
                with self._lock:  # (the reader swaps a dead worker's pipe under this lock: no send to a dead one)
                    conn = slot.conn if slot.ready.is_set() else None
                    if conn is not None or slot.failed or self._stopping:
                        slot.queued -= 1
                        if conn is not None:
                            slot.open[rid] = fut
                        else:
                            slot.inputs -= slot.sizes.pop(rid, 0)
                        break
                slot.ready.wait(0.5)
            if conn is None:
                why = slot.failed or "the server is shutting down"
                settle(fut, error=WorkerDied(f"a model worker process could not be started ({why})"))
                continue
            try:
                conn.send(msg)
            except (OSError, ValueError):  # it died meanwhile and never got this one: it waits for the next one
                with self._lock:
                    again = slot.open.pop(rid, None) is not None  # (else the reader has failed it already)
                    if again:
                        slot.queued += 1
                if again:
                    slot.outbox.put(item)

    def _read_loop(self) -> None:
        while True:
            by_conn = {s.conn: s for s in self._slots if s.conn is not None}
            by_proc = {s.proc.sentinel: s for s in self._slots if s.proc is not None}
            try:
                ready = wait([self._changed_r, *by_conn, *by_proc])
            except OSError:
                ready = []
            for r in ready:
                if r is self._changed_r:
                    self._changed_r.recv_bytes()
                elif r in by_conn:
                    self._receive(by_conn[r])
            for r in ready:
                if r in by_proc and by_proc[r].proc is not None and not by_proc[r].proc.is_alive():
                    self._died(by_proc[r])
            if self._stopping and all(s.proc is None or not s.proc.is_alive() for s in self._slots):
                return

    def _receive(self, slot: _Slot) -> None:
        conn = slot.conn
        try:
            while conn is not None and conn.poll(0):
                msg = conn.recv()
                if msg[0] == "ready":
                    slot.ready.set()
                    continue
                if msg[0] == "failed":
                    slot.failed = msg[1]
                    continue
                rid, ok, payload, counters = msg
                slot.counters = counters
                with self._lock:
                    fut = slot.open.pop(rid, None)
                    slot.inputs -= slot.sizes.pop(rid, 0)
                if fut is not None:
                    settle(fut, payload) if ok else settle(fut, error=payload)
        except (EOFError, OSError):  # its end is closed: the sentinel says it died
            pass

    def _died(self, slot: _Slot) -> None:
        """A worker is gone: fail its open requests, start another in its place (unless the server stops)."""
        with self._lock:  # atomically: what it had, and no more sends to it (see _send_loop)
            lost, slot.open = slot.open, {}
            for rid in lost:
                slot.inputs -= slot.sizes.pop(rid, 0)
            was_ready, code, conn = slot.ready.is_set(), slot.proc.exitcode, slot.conn
            slot.conn, slot.proc = None, None
            slot.ready.clear()
        for fut in lost.values():
            settle(fut, error=WorkerDied("a model worker process died while running this request; the workers "
                                          "were restarted"))
        if conn is not None:
            conn.close()
        if self._stopping:
            return
        if not was_ready:  # it could not load the model: start() says so (no restarting it forever)
            slot.failed = slot.failed or f"exit status {code}"
            return
        self.restarts += 1
        self._spawn(slot)
