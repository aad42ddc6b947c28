"""Messages a run says once: to the terminal and, as ``{"event": ...}`` records, to ``output_dir/log.jsonl``
(beside the training loop's own records), e.g. how many examples were skipped or truncated."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tqdm.auto import tqdm


class Notes:
    """``note(message, event="note", **data)``: says ``message`` on stderr and appends ``{"event", "message",
    **data}`` to ``out/log.jsonl`` (``out`` None: nothing written); ``records`` keeps them in order."""

    def __init__(self, out: Path | None):
        self.out = out
        self.records: list[dict] = []

    def __call__(self, message: str, event: str = "note", **data) -> None:
        tqdm.write(message, file=sys.stderr)
        rec = {"event": event, "message": message, **data}
        self.records.append(rec)
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
            with open(self.out / "log.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")

    def messages(self, *events: str) -> list[str]:
        """The messages of the records of ``events``, in order."""
        return [r["message"] for r in self.records if r["event"] in events]


def silent(message: str, event: str = "note", **data) -> None:
    """A reporter that says nothing (evaluation of a trained model: its data were reported when it trained)."""


__all__ = ["Notes", "silent"]
