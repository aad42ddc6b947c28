"""The recorded results stay valid: every task's smoke training reproduces the per-step losses and final
metrics recorded in ``tests/golden/smoke_losses.json`` (``python tests/golden/smoke.py`` writes it).

Tolerances: the same machine and thread count reproduce a run exactly (``test_same_command_same_result``).
Between one and two torch threads on one machine (AMD EPYC, AVX-512) the largest relative difference of a
step's loss was 7.6e-8 (translation, dialogue; the other tasks were identical); AVX2 and AVX-512/AMX kernels
round differently, so losses are compared to a relative 1e-4 and the final metrics (which can flip a
discrete decision: a token's tag, a beam) to a relative 1e-3 or an absolute 0.01, whichever is larger.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "golden"))
import smoke  # noqa: E402

RECORD = json.loads(smoke.RECORD.read_text())
LOSS_RTOL = 1e-4
METRIC_RTOL, METRIC_ATOL = 1e-3, 0.01


@pytest.mark.parametrize("task", sorted(smoke.METRICS))
def test_smoke_losses_and_metrics_match_the_record(task, smoke_runs):
    got = smoke.read(task, smoke_runs(task))
    want = RECORD[task]
    assert [s for s, _ in got["losses"]] == [s for s, _ in want["losses"]]
    for (step, a), (_, b) in zip(got["losses"], want["losses"]):
        assert a == pytest.approx(b, rel=LOSS_RTOL), f"{task} step {step}: loss {a} vs recorded {b}"
    for key, b in want["metrics"].items():
        assert got["metrics"][key] == pytest.approx(b, rel=METRIC_RTOL, abs=METRIC_ATOL), f"{task} {key}"


@pytest.mark.parametrize("task", sorted(smoke.METRICS))
def test_same_command_same_result(task, smoke_runs, tmp_path):
    """Run twice on one machine: identical losses and metrics, to the last bit."""
    again = smoke.run(task, tmp_path / "again")
    assert again == smoke.read(task, smoke_runs(task))
