"""The one exception type for bad input data.

Everything wrong with a data file (missing, empty, undecodable, malformed, missing columns) is reported
as a :class:`DataError` that names where the problem is, in the form editors and terminals link to::

    data/train.conllu:17: field 'upos': empty tag

so that users never see a bare ``KeyError``/``UnicodeDecodeError``/``IndexError`` from deep inside a reader.
"""

from __future__ import annotations

import os

__all__ = ["DataError"]


class DataError(ValueError):
    """Bad input data.

    Args:
        reason: what is wrong, in words (without the location).
        path: the file (or dataset id) the problem is in, if known.
        line: 1-based line number in ``path``, if known.
        field: the field/column concerned (e.g. ``'tags'``), if any.

    ``str(error)`` reads ``path:line: field 'tags': reason``; the parts that are unknown are left out.
    """

    def __init__(
        self,
        reason: str,
        path: str | os.PathLike[str] | None = None,
        line: int | None = None,
        field: str | None = None,
    ):
        self.reason = reason
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.field = field
        super().__init__(self._format())

    def _format(self) -> str:
        parts = []
        if self.path is not None:
            parts.append(self.path if self.line is None else f"{self.path}:{self.line}")
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        parts.append(self.reason)
        return ": ".join(parts)

    def __reduce__(self):  # keep the attributes across pickling (e.g. datasets' worker processes)
        return (type(self), (self.reason, self.path, self.line, self.field))
