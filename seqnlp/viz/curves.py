"""Training curves as a picture (matplotlib, imported on first use)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["plot_curves"]


def plot_curves(path: str | Path, curves: dict[str, list[dict]], metric: str,
                keys: dict[str, str] | None = None) -> Path | None:
    """One panel per non-empty curve of ``curves`` (``{name: [{"step": ..., key: value}, ...]}``): the value of
    ``keys.get(name, metric)`` against the step, saved at ``path``; None when there is nothing to draw."""
    panels = [(k, v) for k, v in curves.items() if v]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = keys or {}
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.5), squeeze=False)
    for ax, (name, hist) in zip(axes[0], panels):
        key = keys.get(name, metric)
        ax.plot([h["step"] for h in hist], [h.get(key) for h in hist], marker="o")
        ax.set_xlabel("step")
        ax.set_ylabel(f"{name} {key}")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
