"""Confusion matrices as pictures (matplotlib, imported on first use)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from ..metrics import confusion_matrix

__all__ = ["plot_confusion"]


def plot_confusion(gold: Sequence[str], pred: Sequence[str], path: str | Path,
                   title: str = "test confusion (row-normalised)") -> Path:
    """Row-normalised confusion matrix of ``gold`` and ``pred`` labels (gold rows, predicted columns) as a
    picture at ``path``; labels sorted, the figure grows with their number."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = sorted(set(gold) | set(pred))
    m = torch.tensor(confusion_matrix(gold, pred, labels), dtype=torch.float)
    m = m / m.sum(1, keepdim=True).clamp(min=1)
    size = max(5, 0.3 * len(labels))
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(m.numpy(), cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
