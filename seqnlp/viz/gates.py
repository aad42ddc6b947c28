"""Looking inside an LSTM: its gates and cell state over a text, as a picture.

In the spirit of Karpathy, Johnson & Fei-Fei, "Visualizing and Understanding Recurrent Networks"
(2015): the text is laid out in lines and every character is coloured by the activation of one unit
after reading it -- the forget gate ``f_t``, input gate ``i_t``, output gate ``o_t`` (in [0, 1]) and
``tanh(C_t)`` of the cell state (in [-1, 1]).

The activations come from :func:`seqnlp.tasks.lm.lstm_activations`: the explicit-gates
:class:`seqnlp.nn.LSTM` loaded with the weights of the trained fused ``torch.nn.LSTM``, so every number in
the picture is the lecture's ``f_t, i_t, o_t, C_t`` of that model.

    acts = lstm_activations(embed, lstm, ids)                 # per layer: {"forget": (T, H), ...}
    pic = render_png(text, acts[-1], units=[3, 17], path="gates.png")
    render_html(text, acts[-1], units=[3, 17], path="gates.html")
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["QUANTITIES", "GatePicture", "panel_values", "pick_units", "render_html", "render_png"]

#: what is drawn for every unit: (name in the picture, activation key, colour range)
QUANTITIES = (("forget gate", "forget", (0.0, 1.0)), ("input gate", "input", (0.0, 1.0)),
              ("output gate", "output", (0.0, 1.0)), ("tanh(cell)", "cell", (-1.0, 1.0)))


def pick_units(acts: dict[str, Tensor], k: int = 4) -> list[int]:
    """The ``k`` units whose ``tanh(cell)`` varies most over the text (a cheap way to find busy units)."""
    spread = torch.tanh(acts["cell"]).std(0)
    return spread.topk(min(k, spread.numel())).indices.tolist()


def panel_values(acts: dict[str, Tensor], unit: int, key: str) -> Tensor:
    """(T,) the drawn values of one unit: the gate itself, or ``tanh`` of the cell state."""
    v = acts[key][:, unit]
    return torch.tanh(v) if key == "cell" else v


@dataclass
class GatePicture:
    """What was drawn: ``values[(unit, key)]`` is the (T,) array of every panel, read back from the plot."""

    path: Path
    units: list[int]
    values: dict[tuple[int, str], list[float]] = field(default_factory=dict)


def _grid(n: int, width: int) -> tuple[int, int]:
    return (n + width - 1) // width, width


def render_png(text: str, acts: dict[str, Tensor], units: Sequence[int], path: str | Path, width: int = 80,
               title: str = "") -> GatePicture:
    """One panel per (unit, quantity): the text in lines of ``width`` characters, each character's cell
    coloured by the activation after reading it. Returns the values read back from the drawn images."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    T = len(text)
    if acts["cell"].size(0) != T:
        raise ValueError(f"{T} characters but activations for {acts['cell'].size(0)} steps")
    rows, cols = _grid(T, min(width, max(T, 1)))
    panels = [(u, name, key, rng) for u in units for name, key, rng in QUANTITIES]
    fig, axes = plt.subplots(len(panels), 1, figsize=(0.13 * cols + 1.5, (0.22 * rows + 0.35) * len(panels) + 0.4),
                             squeeze=False)
    pic = GatePicture(Path(path), list(units))
    for ax, (unit, name, key, (lo, hi)) in zip(axes[:, 0], panels):
        v = panel_values(acts, unit, key).numpy().astype("float64")
        grid = np.full(rows * cols, np.nan)
        grid[:T] = v
        cmap = "viridis" if lo == 0 else "RdBu_r"
        im = ax.imshow(grid.reshape(rows, cols), cmap=cmap, vmin=lo, vmax=hi, aspect="auto",
                       interpolation="nearest")
        for t, ch in enumerate(text):
            shown = {"\n": "↵", " ": "·", "\t": "→"}.get(ch, ch)
            ax.text(t % cols, t // cols, shown, ha="center", va="center", fontsize=6, family="monospace",
                    color="white" if (v[t] - lo) / (hi - lo) < 0.5 else "black")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(f"unit {unit}\n{name}", rotation=0, ha="right", va="center", fontsize=7)
        drawn = np.ma.getdata(im.get_array()).reshape(-1)[:T]
        pic.values[(unit, key)] = drawn.tolist()
    top = 1.0
    if title:
        top = 1 - 0.3 / fig.get_figheight()  # room for the title above the first panel
        fig.suptitle(title, fontsize=9, y=0.995)
    fig.tight_layout(rect=(0, 0, 1, top))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return pic


def _colour(value: float, lo: float, hi: float) -> str:
    """Blue (low) – white – red (high) background for the HTML picture."""
    x = min(1.0, max(0.0, (value - lo) / (hi - lo))) * 2 - 1  # [-1, 1]
    if x >= 0:
        return f"rgb(255,{int(255 * (1 - x))},{int(255 * (1 - x))})"
    return f"rgb({int(255 * (1 + x))},{int(255 * (1 + x))},255)"


def render_html(text: str, acts: dict[str, Tensor], units: Sequence[int], path: str | Path,
                title: str = "") -> GatePicture:
    """The same panels as :func:`render_png` as one HTML page: every character is a ``<span>`` whose
    background shows the value and whose ``data-v`` attribute (and tooltip) holds it."""
    T = len(text)
    if acts["cell"].size(0) != T:
        raise ValueError(f"{T} characters but activations for {acts['cell'].size(0)} steps")
    pic = GatePicture(Path(path), list(units))
    parts = ["<!doctype html><meta charset='utf-8'><title>LSTM gates</title>",
             "<style>body{font-family:sans-serif} pre{font-family:monospace;line-height:1.5;"
             "white-space:pre-wrap} span{padding:1px 0}</style>"]
    if title:
        parts.append(f"<h3>{html.escape(title)}</h3>")
    parts.append("<p>blue = low, white = middle, red = high; gates in [0, 1], tanh(cell) in [-1, 1]. "
                 "Hover a character for its value.</p>")
    for unit in units:
        for name, key, (lo, hi) in QUANTITIES:
            v = panel_values(acts, unit, key).tolist()
            pic.values[(unit, key)] = v
            spans = "".join(
                f"<span data-v='{x:.6f}' title='{x:.3f}' style='background:{_colour(x, lo, hi)}'>"
                f"{html.escape(ch) if ch != chr(10) else '↵' + chr(10)}</span>"
                for ch, x in zip(text, v))
            parts.append(f"<h4>unit {unit}: {name}</h4><pre>{spans}</pre>")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(parts), encoding="utf-8")
    return pic
