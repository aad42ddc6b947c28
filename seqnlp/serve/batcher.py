"""Micro-batching: concurrent requests queue up and are run as one ``predictor.predict`` call.

A request is ``(key, inputs)``: ``key`` names the parameter set it asks for (requests are only grouped with
requests of an equal key: one predictor per parameter set, see :mod:`seqnlp.serve.models`). One worker task
takes the oldest waiting request and, until ``max_wait_ms`` after that request arrived, every other waiting
request of the same key that fits the budget (``max_batch_tokens`` whitespace tokens, ``max_batch_size``
inputs; the first request is always taken, however big). It runs ``run(key, all_inputs)`` once in a model
thread and hands each request its slice of the results. While every model thread is busy, new requests wait,
so under load the next batch starts at once with everything that came in: batches grow with the load and an
idle server answers a lone request after at most ``max_wait_ms``.

With ``workers`` > 1 that many batches run at once, each from its own thread (``seqnlp serve --workers N``:
each thread hands its batch to one of N model processes, :mod:`seqnlp.serve.workers`; while one batch decodes
its last long sentence on few rows, the next one already runs).

Keys for which ``solo(key)`` is true are never grouped with other requests: their results would depend on
what they are batched with (sampling draws from one random generator per call; the char generator seeds the
k-th input of a call with ``seed + k``), and a request must get what the same request gets offline.

When a grouped call fails, each of its requests is run again on its own, so that one bad input fails only its
own request. Exceptions reach the awaiting request as they are; the app maps them to HTTP statuses.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

__all__ = ["BatchStats", "MicroBatcher", "count_tokens"]


def count_tokens(x: Any) -> int:
    """Whitespace tokens of an input (a string, or a list of strings: turns or tokens), at least 1."""
    if isinstance(x, str):
        return max(1, len(x.split()))
    return max(1, sum(len(t.split()) if isinstance(t, str) else 1 for t in x))


@dataclass
class _Request:
    key: Hashable
    inputs: list
    tokens: int
    arrived: float
    future: asyncio.Future


@dataclass
class BatchStats:
    """What the batcher has done (``GET /health`` shows it)."""

    requests: int = 0  # requests answered (or failed)
    inputs: int = 0
    batches: int = 0  # predict calls of grouped requests
    largest_batch: int = 0  # most requests in one call
    largest_batch_inputs: int = 0
    waiting: int = 0  # requests queued now
    running: int = 0  # requests in the model now
    model_seconds: float = 0.0  # time spent in predict (summed over the model threads)
    recent: list[int] = field(default_factory=list)  # requests per call, the last 100 calls

    def as_dict(self) -> dict:
        recent = self.recent or [0]
        return {"requests": self.requests, "inputs": self.inputs, "batches": self.batches,
                "largest_batch": self.largest_batch, "largest_batch_inputs": self.largest_batch_inputs,
                "mean_recent_batch": round(sum(recent) / len(recent), 2), "waiting": self.waiting,
                "running": self.running, "model_seconds": round(self.model_seconds, 3)}


class MicroBatcher:
    """Groups concurrent :meth:`submit` calls into batched ``run(key, inputs) -> results`` calls.

    ``run`` is called in ``workers`` model threads, at most one call per thread at a time (so it must be safe to
    call from several threads when ``workers`` > 1), and must return exactly one result per input.
    :meth:`start` and :meth:`stop` are called from the event loop (the app's lifespan).
    """

    def __init__(self, run: Callable[[Hashable, list], list], *, max_batch_tokens: int = 4096,
                 max_batch_size: int = 256, max_wait_ms: float = 5.0,
                 solo: Callable[[Hashable], bool] = lambda key: False, workers: int = 1):
        if max_batch_tokens < 1 or max_batch_size < 1 or max_wait_ms < 0 or workers < 1:
            raise ValueError("max_batch_tokens, max_batch_size and workers must be >= 1 and max_wait_ms >= 0")
        self.run = run
        self.workers = workers
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.solo = solo
        self.stats = BatchStats()
        self._pending: list[_Request] = []
        self._arrived: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None  # free model threads
        self._inflight: set[asyncio.Task] = set()
        self._stats_lock = threading.Lock()  # the model threads update the counters
        self._busy = 0  # batches dispatched and not finished (event loop only)

    # ------------------------------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._arrived = asyncio.Event()
        self._slots = asyncio.Semaphore(self.workers)
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="seqnlp-model")
        self._worker = asyncio.create_task(self._work(), name="seqnlp-batcher")

    async def stop(self) -> None:
        """Finish what is queued and running, then stop the worker and the model thread."""
        while self._pending or self.stats.running:
            await asyncio.sleep(0.01)
        for task in list(self._inflight):
            task.cancel()
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._worker = self._executor = None

    # ------------------------------------------------------------------------------------------ requests
    async def submit(self, key: Hashable, inputs: Sequence) -> list:
        """The results of ``inputs`` (one per input), computed in a batch with other waiting requests."""
        if self._worker is None or self._arrived is None:
            raise RuntimeError("the batcher is not running")
        inputs = list(inputs)
        if not inputs:
            return []
        fut = asyncio.get_running_loop().create_future()
        self._pending.append(_Request(key, inputs, sum(count_tokens(x) for x in inputs), time.monotonic(), fut))
        self.stats.waiting = len(self._pending)
        self._arrived.set()
        return await fut

    def _take(self, free: int = 1) -> list[_Request]:
        """The oldest request and the waiting ones of its key that fit the budget, removed from the queue. With
        ``free`` idle model workers (this one included) a batch takes at most its share of the waiting inputs of
        its key, so that the next idle worker gets the rest instead of idling while this one runs them all."""
        self._pending = [r for r in self._pending if not r.future.done()]  # drop requests given up on
        if not self._pending:
            return []
        first = self._pending[0]
        batch, tokens, size = [first], first.tokens, len(first.inputs)
        if not self.solo(first.key):
            limit = self.max_batch_size
            if free > 1:
                waiting = sum(len(r.inputs) for r in self._pending if r.key == first.key)
                limit = min(limit, -(-waiting // free))
            for r in self._pending[1:]:
                if r.key != first.key or self.solo(r.key):
                    continue
                if tokens + r.tokens > self.max_batch_tokens or size + len(r.inputs) > limit:
                    break
                batch.append(r)
                tokens += r.tokens
                size += len(r.inputs)
        taken = {id(r) for r in batch}
        self._pending = [r for r in self._pending if id(r) not in taken]
        return batch

    def _full(self, first: _Request) -> bool:
        """Whether the waiting requests of ``first``'s key already fill a batch (no reason to wait longer)."""
        if self.solo(first.key):
            return True
        tokens = size = 0
        for r in self._pending:
            if r.key == first.key:
                tokens += r.tokens
                size += len(r.inputs)
                if tokens >= self.max_batch_tokens or size >= self.max_batch_size:
                    return True
        return False

    async def _work(self) -> None:
        assert self._arrived is not None
        while True:
            if not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            first = self._pending[0]
            # wait for more requests until max_wait after the oldest one came in, unless the batch is full
            while not self._full(first):
                left = first.arrived + self.max_wait - time.monotonic()
                if left <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), timeout=left)
                except asyncio.TimeoutError:
                    break
            assert self._slots is not None
            await self._slots.acquire()  # a free model thread (requests keep arriving meanwhile: the batch grows)
            batch = self._take(free=self.workers - self._busy)
            if not batch:
                self._slots.release()
                continue
            self._busy += 1
            self.stats.waiting = len(self._pending)
            self.stats.running += len(batch)
            task = asyncio.create_task(self._dispatch(batch))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)

    async def _dispatch(self, batch: list[_Request]) -> None:
        """Run one batch in a model thread and answer its requests."""
        assert self._slots is not None
        try:
            outcomes = await asyncio.get_running_loop().run_in_executor(self._executor, self._run_batch, batch)
        except asyncio.CancelledError:  # stop(): fail what was taken (stop waits for it first)
            for r in batch:
                if not r.future.done():
                    r.future.set_exception(RuntimeError("the server is shutting down"))
            raise
        except Exception as e:  # the model thread itself is gone: fail this batch, keep serving
            outcomes = [e] * len(batch)
        finally:
            self.stats.running -= len(batch)
            self._busy -= 1
            self._slots.release()
        for r, out in zip(batch, outcomes):
            if r.future.done():  # the client went away and its handler was cancelled
                continue
            if isinstance(out, BaseException):
                r.future.set_exception(out)
            else:
                r.future.set_result(out)

    # ------------------------------------------------------------------------------------------ model thread
    def _call(self, key: Hashable, inputs: list) -> list:
        t0 = time.perf_counter()
        try:
            results = self.run(key, inputs)
        finally:
            with self._stats_lock:
                self.stats.model_seconds += time.perf_counter() - t0
        if len(results) != len(inputs):  # the task contract; a broken predictor must not misalign answers
            raise RuntimeError(f"the predictor returned {len(results)} results for {len(inputs)} inputs")
        return results

    def _run_batch(self, batch: list[_Request]) -> list:
        """Per request: its results, or the exception that its inputs raised."""
        s = self.stats
        with self._stats_lock:
            s.batches += 1
            s.requests += len(batch)
            s.inputs += sum(len(r.inputs) for r in batch)
            s.largest_batch = max(s.largest_batch, len(batch))
            s.largest_batch_inputs = max(s.largest_batch_inputs, sum(len(r.inputs) for r in batch))
            s.recent = [*s.recent[-99:], len(batch)]
        inputs = [x for r in batch for x in r.inputs]
        try:
            results = self._call(batch[0].key, inputs)
        except Exception as e:
            if len(batch) == 1:
                return [e]
            return [self._alone(r) for r in batch]  # find the request(s) that failed; serve the others
        out, i = [], 0
        for r in batch:
            out.append(results[i : i + len(r.inputs)])
            i += len(r.inputs)
        return out

    def _alone(self, r: _Request) -> Any:
        try:
            return self._call(r.key, r.inputs)
        except Exception as e:
            return e
