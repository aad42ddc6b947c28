"""Helpers for the serve tests: a real ``seqnlp serve`` process on a free loopback port, an in-process server
(uvicorn in a thread, so that a test can reach into the app), and a small JSON client on urllib.

Everything talks to 127.0.0.1 only and every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def request(url: str, body=None, *, raw: bytes | None = None, method: str | None = None,
            timeout: float = 60) -> tuple[int, object]:
    """``(status, parsed JSON or text)`` of one HTTP request; a JSON ``body`` is sent as such, ``raw`` as is."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"),
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, text = r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, text


class ServeProcess:
    """``python -m seqnlp.cli serve --model RUN --port 0 ARGS`` until :meth:`stop` (killed if it hangs)."""

    def __init__(self, model: Path | str, *args: str, start_timeout: float = 180):
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "seqnlp.cli", "serve", "--model", str(model), "--host", "127.0.0.1",
               "--port", "0", "--device", "cpu", "--threads", "1", *args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines: list[str] = []
        self.url = ""
        ready = threading.Event()

        def read():
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line)
                if not self.url and line.startswith("seqnlp serve:") and " at http://" in line:
                    self.url = line.split(" at ", 1)[1].split()[0].rstrip("/")
                    ready.set()
            ready.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        ready.wait(start_timeout)
        if not self.url:
            self.stop()
            raise RuntimeError(f"seqnlp serve did not start:\n{self.output}")

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def get(self, path: str, **kw):
        return request(self.url + path, **kw)

    def post(self, path: str, body=None, **kw):
        return request(self.url + path, body, **kw)

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reader.join(5)
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class InProcessServer:
    """A FastAPI app served by uvicorn in a thread on a free 127.0.0.1 port (``with InProcessServer(app) as s``)."""

    def __init__(self, app, timeout: float = 60):
        import uvicorn

        sys.path.insert(0, str(ROOT))
        from seqnlp.serve import bind

        self.sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the in-process server did not start")
            time.sleep(0.02)

    def get(self, path: str, **kw):
        return request(self.url + path, **kw)

    def post(self, path: str, body=None, **kw):
        return request(self.url + path, body, **kw)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def concurrently(fns, timeout: float = 120) -> list:
    """Run the callables at the same moment (a barrier), each in its own thread; their results in order."""
    out: list = [None] * len(fns)
    barrier = threading.Barrier(len(fns))

    def go(i, fn):
        barrier.wait(timeout)
        try:
            out[i] = fn()
        except Exception as e:  # noqa: BLE001  (reported by the caller's asserts)
            out[i] = e

    threads = [threading.Thread(target=go, args=(i, fn), daemon=True) for i, fn in enumerate(fns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return out
