"""Data: loading (HF hub ids, local files, CoNLL-U, parallel text), tokenizers and batching."""

from seqnlp.data.batching import Batch, BatchIterator, TokenBucketSampler, lengths_to_mask, pad
from seqnlp.data.errors import DataError
from seqnlp.data.loading import DataSpec, data_root, load_splits
from seqnlp.data.readers import (
    open_text,
    read_conll_columns,
    read_conllu,
    read_dailydialog,
    read_lines,
    read_parallel,
    read_rt_polarity,
    write_conllu,
)
from seqnlp.data.tokenizers import Tokenizer

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
