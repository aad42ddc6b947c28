"""Rows of a ``datasets.Dataset`` (Hub, tabular files, ``save_to_disk`` directories) as examples with our field
names (:func:`to_examples`), for :func:`seqnlp.data.loading.load_splits`."""

from __future__ import annotations

from typing import Any

from seqnlp.data.errors import DataError

__all__ = ["FIELDS", "to_examples"]

FIELDS = ("text", "label", "tokens", "tags", "source", "target", "turns")
# Fields an example cannot do without; `label`/`tags` may be None (e.g. GLUE's unlabelled test sets).
_REQUIRED_FIELDS = ("text", "tokens", "source", "target", "turns")
_STRING_FIELDS = ("text", "source", "target")
# When DataSpec.columns is empty: our field <- the first of these columns that the dataset has.
_COLUMN_GUESSES = {
    "text": ("text", "sentence", "review", "content", "document"),
    "label": ("label", "labels"),
    "tokens": ("tokens", "words"),
    "tags": ("tags", "upos", "pos_tags", "ner_tags"),
    "source": ("source",),
    "target": ("target",),
    "turns": ("turns", "dialog", "dialogue", "utterances"),
}


def to_examples(ds, spec: Any, where: str) -> list[dict]:
    """A ``datasets.Dataset`` as a list of dicts with our field names: ``spec.columns`` (our field -> column;
    ``translation.de`` picks a key of a dict column) or, when empty, the usual column names (and ``spec.src_lang``
    / ``spec.tgt_lang`` columns); ClassLabel ids become their names (-1, GLUE's "no label", None). ``where``
    names the source in a :class:`DataError`."""
    from datasets import ClassLabel

    available = list(ds.column_names)
    mapping = dict(spec.columns) or _guess_columns(available, spec, where)
    values: dict[str, list] = {}
    for ours, column in mapping.items():
        top, _, key = (column, "", "") if column in available else column.partition(".")
        if top not in available:
            raise DataError(f"column {column!r} not found; available columns: {available}", where, field=ours)
        column_values = ds.select_columns([top]).to_dict()[top]
        if key:
            column_values = _dict_key(column_values, top, key, where, ours)
        feature = ds.features[top]
        if isinstance(feature, ClassLabel):
            column_values = [_label_name(v, feature, where, ours) for v in column_values]
        elif isinstance(getattr(feature, "feature", None), ClassLabel):  # List/Sequence of ClassLabel
            inner = feature.feature
            column_values = [
                None if vs is None else [_label_name(v, inner, where, ours) for v in vs] for vs in column_values
            ]
        if ours in _STRING_FIELDS:
            column_values = [v if v is None or isinstance(v, str) else str(v) for v in column_values]
        if ours in _REQUIRED_FIELDS and None in column_values:
            row = column_values.index(None)
            raise DataError(f"row {row + 1} has no value in column {column!r}", where, field=ours)
        values[ours] = column_values
    if ds.num_rows == 0:
        raise DataError("no examples (empty split)", where)
    names = list(values)
    return [dict(zip(names, row)) for row in zip(*(values[n] for n in names))]


def _guess_columns(available: list[str], spec: Any, where: str) -> dict[str, str]:
    mapping = {}
    for ours, guesses in _COLUMN_GUESSES.items():
        column = next((c for c in guesses if c in available), None)
        if column is not None:
            mapping[ours] = column
    if spec.src_lang and spec.tgt_lang:
        for ours, lang in (("source", spec.src_lang), ("target", spec.tgt_lang)):
            if lang in available:
                mapping[ours] = lang
            elif "translation" in available:
                mapping[ours] = f"translation.{lang}"
    if not mapping:
        raise DataError(
            f"none of the usual column names found; available columns: {available}: set DataSpec.columns "
            f"(our fields: {FIELDS})",
            where,
        )
    return mapping


def _dict_key(values: list, column: str, key: str, where: str, ours: str) -> list:
    out = []
    for row, value in enumerate(values, start=1):
        if not isinstance(value, dict) or key not in value:
            keys = sorted(value) if isinstance(value, dict) else f"a {type(value).__name__}, not a dict"
            raise DataError(f"row {row}: column {column!r} has no key {key!r} ({keys})", where, field=ours)
        out.append(value[key])
    return out


def _label_name(value, feature, where: str, ours: str) -> str | None:
    if value is None or value == -1:  # -1: GLUE's "no label" (unlabelled test sets)
        return None
    if not 0 <= value < feature.num_classes:
        raise DataError(f"label id {value} out of range for ClassLabel {feature.names}", where, field=ours)
    return feature.names[value]
