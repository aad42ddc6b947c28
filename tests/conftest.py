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


@pytest.fixture
def real_data() -> Path:
    """The real datasets (``SEQNLP_DATA``); CI sets it. Skips only when the directory is absent."""
    root = Path(os.environ.get("SEQNLP_DATA", "../shared/data"))
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set SEQNLP_DATA)")
    return root
