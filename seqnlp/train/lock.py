"""One run owns its run directory: ``output_dir/.lock`` holds the owner's pid while it trains.

A second training into the same directory stops with a clear message instead of "resuming" from checkpoints the
first is writing (and appending to its log). The lock is released when the run ends, however it ends; a lock
left by a process that no longer exists (killed, machine rebooted) is taken over with a note.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

LOCK = ".lock"


class RunLocked(RuntimeError):
    """Another live process trains into this run directory."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """``with RunLock(output_dir): train(...)`` -- raises :class:`RunLocked` naming the owner's pid."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK
        self.held = False

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
              "command": " ".join(sys.argv)}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                pid = owner.get("pid")
                same_host = owner.get("host") in (None, socket.gethostname())
                if isinstance(pid, int) and (_alive(pid) or not same_host):
                    raise RunLocked(f"{self.path.parent} is in use by another training run (pid {pid} on "
                                    f"{owner.get('host', '?')}, started {owner.get('started', '?')}: "
                                    f"{owner.get('command', '?')}); wait for it, stop it, or choose another "
                                    f"output_dir (remove {self.path} only if that process is gone)") from None
                print(f"note: taking over {self.path}, left by process {pid}, which no longer runs", file=sys.stderr)
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return
        raise RunLocked(f"could not lock {self.path}")

    def _owner(self) -> dict:
        try:
            data = json.loads(self.path.read_text() or "{}")
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def release(self) -> None:
        if self.held:
            if self._owner().get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


__all__ = ["LOCK", "RunLock", "RunLocked"]
