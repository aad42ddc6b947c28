"""The char generator's results table: one row per ``results/char_generator/[experiments/]*.json`` (validation
loss in nats and bits per character, parameters, training time, characters trained and their rate, commit,
machine).

    python benchmarks/char_generator_table.py [results/char_generator]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CELLS = {"window": "window MLP (one-to-one)", "rnn": "Elman RNN", "lstm": "LSTM", "gru": "GRU"}


def rows(folder: Path) -> list[dict]:
    out = []
    for f in sorted(folder.glob("*.json")) + sorted(folder.glob("experiments/*.json")):
        rec = json.loads(f.read_text())
        m = rec["metrics"]
        out.append({"config": f.stem, "model": CELLS.get(m.get("cell"), m.get("cell")), "hidden": m.get("hidden"),
                    "params": m.get("parameters"), "minutes": m["train_seconds"] / 60, "chars": m.get("train_chars"),
                    "rate": m.get("train_chars_per_s"), "val_loss": m["val_loss"], "bpc": m["bits_per_char"],
                    "commit": rec.get("commit", "")[:9], "wall": rec.get("wall_seconds"),
                    "machine": rec.get("machine", "")})
    return out


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "results/char_generator")
    table = rows(folder)
    if not table:
        print(f"no results in {folder}", file=sys.stderr)
        return 1
    print("| config | model | hidden | parameters | training minutes | chars trained | chars/s | val loss (nats/char) "
          "| bits/char | commit |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['config']} | {r['model']} | {r['hidden']} | {r['params'] / 1e6:.2f}M | {r['minutes']:.1f} "
              f"| {r['chars'] / 1e6:.1f}M | {r['rate']:.0f} | {r['val_loss']:.4f} | {r['bpc']:.3f} | {r['commit']} |")
    print(f"\nmachine: {table[0]['machine']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
