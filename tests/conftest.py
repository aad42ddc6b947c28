"""Shared fixtures: a fixed seed, offline HuggingFace, and the real-data root."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def seed():
    random.seed(0)
    torch.manual_seed(0)
    return 0


def missing_data(message: str) -> None:
    """Skip a test whose real data is absent -- except under CI (``CI`` set), which provides the data: there a
    missing dataset is a failure, never a silent skip."""
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI sets SEQNLP_DATA to the real datasets (.ci/run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def real_data_root():
    """The real datasets (``SEQNLP_DATA``, else ``../shared/data``; CI sets it), resolved and exported as
    ``SEQNLP_DATA`` for the recipes run in the tests. Skips only when the directory is absent (fails under CI)."""
    root = Path(os.environ.get("SEQNLP_DATA", "../shared/data")).resolve()
    if not root.is_dir():
        missing_data(f"real data not found at {root} (set SEQNLP_DATA)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEQNLP_DATA", str(root))
        yield root


@pytest.fixture(scope="module")
def data_dir(real_data_root, request) -> Path:
    """The real dataset folder a recipe test module names in ``DATA`` (``"translation/multi30k"``)."""
    path = real_data_root / request.module.DATA
    if not path.is_dir():
        missing_data(f"{path} not found (set SEQNLP_DATA)")
    return path


@pytest.fixture(scope="session")
def smoke_runs(real_data_root, tmp_path_factory):
    """``smoke_runs(task)``: the directory of ``task``'s smoke config trained once per test session (fixed
    seed, CPU, one thread, a loss logged every step: :mod:`tests.golden.smoke`), shared by the golden-loss
    test and the contract test."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "golden"))
    import smoke

    done: dict[str, Path] = {}

    def get(task: str) -> Path:
        if task not in done:
            out = tmp_path_factory.mktemp(f"smoke_{task}")
            smoke.run(task, out)
            done[task] = out
        return done[task]

    return get
