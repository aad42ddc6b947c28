"""Dialogue contexts: examples of (last k turns, next turn) and their encoding as seq2seq sources.

Every turn after the first of a dialogue is one example::

    source = turn[i-k] <sep> ... <sep> turn[i-1] </s>        target = turn[i]

``<sep>`` is a special token inserted by code (text that reads ``<sep>`` stays text). A context longer than
``max_src_len`` subwords loses its oldest turns first (a newest turn that alone is too long keeps its last
subwords); empty turns in a context are kept as empty segments (the speakers still alternate), an empty
target is skipped. Every such case is counted in a :class:`DialogueStats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..config import ConfigError
from .errors import DataError
from .seq2seq import counts_message
from .tokenizers import Tokenizer

SEP = "<sep>"  # turn separator (a special token of the tokenizer)
TURN_MARK = "__eou__"  # turn separator of an input line (DailyDialog's end-of-utterance mark)

__all__ = ["SEP", "TURN_MARK", "DialogueStats", "dialogue_turns", "encode_contexts", "encode_examples",
           "join_context", "make_examples", "parse_turns"]


def parse_turns(line: str) -> list[str]:
    """An input line as turns: separated by ``__eou__`` (a trailing mark is optional); ``""`` is ``[""]``."""
    turns = [t.strip() for t in line.split(TURN_MARK)]
    if len(turns) > 1 and not turns[-1]:
        turns.pop()
    return turns


def dialogue_turns(example: dict, row: int, where: str) -> list[str]:
    """The ``turns`` of a loaded row, stripped.

    Raises:
        DataError: the row holds no list of strings (the row and ``where`` named).
    """
    turns = example.get("turns")
    if isinstance(turns, str) or not isinstance(turns, (list, tuple)) or not all(isinstance(t, str) for t in turns):
        raise DataError(f"row {row + 1}: expected a list of turns (strings), got {type(turns).__name__} "
                        f"(set data.columns.turns to the column holding them)", where, field="turns")
    return [t.strip() for t in turns]


@dataclass
class DialogueStats:
    """What building and encoding examples did: counts to log and store."""

    examples: int = 0  # replies looked at (every turn after the first)
    kept: int = 0
    skipped_empty_target: int = 0  # empty replies (skipped)
    empty_context_turns: int = 0  # empty turns inside kept contexts (kept as empty segments)
    contexts_truncated: int = 0  # contexts longer than max_src_len ...
    turns_dropped: int = 0  # ... lost this many oldest turns ...
    tokens_cut: int = 0  # ... and this many subwords of a newest turn that alone was too long
    targets_truncated: int = 0  # training replies cut to max_tgt_len

    def message(self, what: str) -> str:
        return counts_message(what, self.kept, self.examples, [
            (self.skipped_empty_target, "skipped (empty reply)"),
            (self.empty_context_turns, "empty context turns kept"),
            (self.contexts_truncated, f"contexts truncated from the oldest turn ({self.turns_dropped} turns "
                                      f"dropped, {self.tokens_cut} subwords cut)"),
            (self.targets_truncated, "replies truncated")])


def make_examples(dialogues: Sequence[Sequence[str]], k: int,
                  stats: DialogueStats | None = None) -> tuple[list[dict], DialogueStats]:
    """``{"context": [last k turns], "target": next turn}`` for every turn after the first of each dialogue.

    Empty replies are skipped; empty turns inside a context are kept and counted.
    """
    if k < 1:
        raise ConfigError(f"data.context_turns must be >= 1, got {k}")
    stats = stats or DialogueStats()
    out = []
    for turns in dialogues:
        for i in range(1, len(turns)):
            stats.examples += 1
            if not turns[i].strip():
                stats.skipped_empty_target += 1
                continue
            context = list(turns[max(0, i - k) : i])
            stats.empty_context_turns += sum(not t.strip() for t in context)
            out.append({"context": context, "target": turns[i]})
            stats.kept += 1
    return out, stats


def join_context(turn_ids: Sequence[list[int]], max_len: int, sep: int, eos: int,
                 stats: DialogueStats | None = None) -> list[int]:
    """``t1 <sep> t2 <sep> ... tn </s>`` in at most ``max_len`` ids, dropping the oldest turns first.

    When the newest turn alone does not fit, its last ``max_len - 1`` ids are kept. An empty context
    (no turns) is ``[</s>]``. Truncation is counted in ``stats``.
    """
    if max_len < 2:
        raise ValueError(f"max_len must be >= 2 (one token and </s>), got {max_len}")
    turns = list(turn_ids)
    size = sum(len(t) for t in turns) + max(len(turns) - 1, 0) + 1  # separators and </s>
    dropped = 0
    while size > max_len and len(turns) > 1:
        size -= len(turns[0]) + 1
        turns.pop(0)
        dropped += 1
    cut = 0
    if turns and size > max_len:
        cut = len(turns[0]) - (max_len - 1)
        turns[0] = turns[0][cut:]
    if stats is not None and (dropped or cut):
        stats.contexts_truncated += 1
        stats.turns_dropped += dropped
        stats.tokens_cut += cut
    ids: list[int] = []
    for j, t in enumerate(turns):
        if j:
            ids.append(sep)
        ids.extend(t)
    return ids + [eos]


def _turn_ids(tok: Tokenizer, texts: Sequence[str]) -> dict[str, list[int]]:
    """Ids of every distinct turn text, encoded in one batch call."""
    unique = list(dict.fromkeys(texts))
    return dict(zip(unique, tok.encode_batch(unique)))


def encode_contexts(tok: Tokenizer, contexts: Sequence[Sequence[str]], max_len: int,
                    stats: DialogueStats | None = None) -> tuple[list[list[int]], DialogueStats]:
    """Source ids of each context (see :func:`join_context`); truncation counted in the returned stats."""
    stats = stats or DialogueStats()
    sep = tok.token_to_id(SEP)
    if sep is None:
        raise DataError(f"the tokenizer has no {SEP!r} token (train it with extra_specials=[{SEP!r}])")
    ids = _turn_ids(tok, [t for c in contexts for t in c])
    return [join_context([ids[t] for t in c], max_len, sep, tok.eos_id, stats) for c in contexts], stats


def encode_examples(tok: Tokenizer, examples: Sequence[dict], max_src_len: int, max_tgt_len: int | None,
                    stats: DialogueStats) -> list[tuple[list[int], list[int]]]:
    """``(source ids ending in </s>, bare target ids)`` pairs; targets cut to ``max_tgt_len - 1`` (None: never)."""
    srcs, _ = encode_contexts(tok, [e["context"] for e in examples], max_src_len, stats)
    tgt_ids = _turn_ids(tok, [e["target"] for e in examples])
    pairs = []
    for s, e in zip(srcs, examples):
        t = tgt_ids[e["target"]]
        if max_tgt_len is not None and len(t) > max_tgt_len - 1:
            stats.targets_truncated += 1
            t = t[: max_tgt_len - 1]
        pairs.append((s, t))
    return pairs
