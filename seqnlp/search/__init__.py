"""Decoding: greedy search, beam search and sampling for any model with the ``start``/``step``/``reorder``
protocol (:mod:`.methods`), and :class:`SearchConfig` with batched decoding of many sources in input order
(:mod:`.generate`)."""

from .beam import BeamSearch, beam_search
from .generate import SEARCH_METHODS, Decoded, SearchConfig, decode_texts, generate
from .methods import Decodable, batch_size_of, filter_logits, greedy, max_lengths, sample

__all__ = [
    "SEARCH_METHODS", "BeamSearch", "Decodable", "Decoded", "SearchConfig", "batch_size_of", "beam_search",
    "decode_texts", "filter_logits", "generate", "greedy", "max_lengths", "sample",
]  # fmt: skip
