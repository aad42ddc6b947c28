"""Attention heatmaps of a seq2seq model: target rows x source columns, one panel per sentence, as a PNG.

    items = translator.attention(["Ein Hund läuft ."])   # [(source pieces, target pieces, weights (T, S))]
    plot_attention(items, "attention.png")

:func:`piece_text` turns a byte-level subword id into a readable axis label.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

__all__ = ["piece_text", "plot_attention"]


def _byte_level_table() -> dict[str, int]:
    """Byte-level BPE's printable stand-ins -> the bytes they stand for (GPT-2's ``bytes_to_unicode``)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs, n = list(bs), 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


_BYTE_OF = _byte_level_table()


def piece_text(tok, i: int) -> str:
    """A readable label for subword ``i`` of tokenizer ``tok``: its text, spaces shown as ``▁``, partial UTF-8
    and control characters as ``\\xNN`` escapes."""
    piece = tok.id_to_token(i) or "?"
    if piece.startswith("<") and piece.endswith(">"):
        return piece
    if all(ch in _BYTE_OF for ch in piece):
        piece = bytes(_BYTE_OF[ch] for ch in piece).decode("utf-8", errors="backslashreplace")
    return "".join(("▁" if ch == " " else ch) if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in piece)


def plot_attention(items: list[tuple[list[str], list[str], torch.Tensor]], path: str | Path) -> Path:
    """Attention heatmaps of ``items`` (source labels, target labels, weights of shape (T, S)) into ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(items)
    widths = [max(4.0, 0.35 * len(s) + 1.5) for s, _, _ in items]
    heights = [max(3.0, 0.3 * len(t) + 1.5) for _, t, _ in items]
    fig, axes = plt.subplots(n, 1, figsize=(max(widths), sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (src, tgt, w) in zip(axes[:, 0], items):
        ax.imshow(w.numpy(), cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(src)), src, rotation=90, fontsize=8)
        ax.set_yticks(range(len(tgt)), tgt, fontsize=8)
        ax.set_xlabel("source subwords")
        ax.set_ylabel("output subwords")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # glyphs the font lacks (CJK, emoji) are drawn as boxes, not errors
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
