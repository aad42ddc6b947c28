"""Data: loading (HF hub ids, local files, CoNLL-U, parallel text), tokenizers and batching."""

import importlib

_WHERE = {  # re-exported name -> defining submodule; imported on first use, so that seqnlp.data.errors and
    # seqnlp.data.readers load without torch or datasets
    "Batch": "batching", "BatchIterator": "batching", "TokenBucketSampler": "batching", "lengths_to_mask": "batching",
    "pad": "batching", "DataError": "errors", "DataSpec": "loading", "data_root": "loading", "load_splits": "loading",
    "open_text": "readers", "read_conll_columns": "readers", "read_conllu": "readers", "read_dailydialog": "readers",
    "read_lines": "readers", "read_parallel": "readers", "read_rt_polarity": "readers", "write_conllu": "readers",
    "Tokenizer": "tokenizers",
}  # fmt: skip


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"seqnlp.data.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'seqnlp.data' has no attribute {name!r}")


__all__ = [
    "DataError",
    "DataSpec",
    "data_root",
    "load_splits",
    "open_text",
    "read_lines",
    "read_parallel",
    "read_conllu",
    "write_conllu",
    "read_conll_columns",
    "read_dailydialog",
    "read_rt_polarity",
    "Tokenizer",
    "TokenBucketSampler",
    "BatchIterator",
    "Batch",
    "pad",
    "lengths_to_mask",
]
