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


@pytest.fixture(scope="session")
def real_data_root():
    """The real datasets (``SEQNLP_DATA``, else ``../shared/data``; CI sets it), resolved and exported as
    ``SEQNLP_DATA`` for the recipes run in the tests. Skips only when the directory is absent."""
    root = Path(os.environ.get("SEQNLP_DATA", "../shared/data")).resolve()
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set SEQNLP_DATA)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SEQNLP_DATA", str(root))
        yield root


@pytest.fixture(scope="module")
def data_dir(real_data_root, request) -> Path:
    """The real dataset folder a recipe test module names in ``DATA`` (``"translation/multi30k"``)."""
    path = real_data_root / request.module.DATA
    if not path.is_dir():
        pytest.skip(f"{path} not found (set SEQNLP_DATA)")
    return path
