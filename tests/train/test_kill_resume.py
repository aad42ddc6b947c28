"""Exact resume after SIGKILL at an arbitrary step (a real process, killed without warning)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from safetensors.torch import load_file

HERE = Path(__file__).parent
STEPS = 40


def run(out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.Popen([sys.executable, str(HERE / "toy_run.py"), str(out), str(STEPS)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def losses(out: Path) -> dict[int, float]:
    """Last logged training loss of every step (steps replayed after a kill overwrite earlier entries)."""
    rec = {}
    for line in (out / "log.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["event"] == "train":
            rec[r["step"]] = r["loss"]
    return rec


def final_weights(out: Path) -> dict:
    return load_file(out / "checkpoints" / "latest" / "model.safetensors")


def test_sigkill_then_resume_is_bit_exact(tmp_path):
    ref = tmp_path / "ref"
    p = run(ref)
    assert p.wait(timeout=300) == 0, p.stderr.read()

    for kill_at in (9, 23):  # arbitrary steps; the kill may land mid-save
        cut = tmp_path / f"cut{kill_at}"
        p = run(cut)
        deadline = time.time() + 240
        while time.time() < deadline:
            if (cut / "log.jsonl").exists() and max(losses(cut), default=0) >= kill_at:
                break
            time.sleep(0.01)
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        latest = cut / "checkpoints" / "latest"
        assert (latest / "config.json").exists()  # never a partial directory
        p = run(cut)
        assert p.wait(timeout=300) == 0, p.stderr.read()
        assert losses(cut) == losses(ref)
        a, b = final_weights(ref), final_weights(cut)
        assert a.keys() == b.keys()
        for k in a:
            assert (a[k] == b[k]).all(), k
