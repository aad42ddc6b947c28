"""Print a markdown table of every full-run record under results/ and results/*/experiments/ (for docs/results.md;
results/README.md, the headline table, comes from benchmarks/results_readme.py).

    python benchmarks/results_table.py [results]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

HEADLINE = {  # task -> metric keys shown first
    "pos_tagging": ["accuracy", "oov_accuracy"],
    "translation": ["bleu", "chrf"],
    "sentiment": ["accuracy", "macro_f1", "mean_accuracy", "std_accuracy"],
    "char_generator": ["val_loss", "bits_per_char"],
    "dialogue": ["perplexity_word", "distinct_2", "bleu"],
}


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{100 * v:.2f}" if v <= 1.0 else f"{v:.3f}"
    return str(v)


def portable(command: str) -> str:
    """Absolute run directories of this machine shown relative (``output_dir=runs/x``)."""
    return re.sub(r"=(/[^ ]*)?/runs/", "=runs/", command)


def main(root: str = "results") -> None:
    print("| record | metrics | wall | commit | machine | command |")
    print("|---|---|---|---|---|---|")
    for f in sorted(Path(root).glob("*/*.json")) + sorted(Path(root).glob("*/experiments/*.json")):
        rec = json.loads(f.read_text())
        if "metrics" not in rec or "command" not in rec:
            continue
        m = rec["metrics"]
        keys = [k for k in HEADLINE.get(rec.get("task", ""), []) if k in m]
        shown = ", ".join(f"{k} {fmt(m[k])}" for k in keys) or "see file"
        print(f"| `{f}` | {shown} | {rec.get('wall_seconds', '?')} s | `{str(rec.get('commit', '?'))[:10]}` | "
              f"{rec.get('machine', '?')} | `{portable(rec['command'])}` |")


if __name__ == "__main__":
    main(*sys.argv[1:])
