"""Dialogue (many-to-many): the task module (see :mod:`seqnlp.tasks.base`).

The translation task's seq2seq model (:mod:`seqnlp.tasks.seq2seq`; one joint subword vocabulary, shared
embeddings) answering the last ``data.context_turns`` turns of a conversation, joined by a ``<sep>`` token
(:mod:`seqnlp.data.dialogue`). Data: DailyDialog (``$SEQNLP_DATA/dialogue/dailydialog``: one dialogue a line,
turns separated by ``__eou__``) or any Hub / local tabular dataset with a column holding the list of turns
(``data.format=auto``, ``data.columns.turns=dialog``).

A predict input is a context: a line of turns separated by ``__eou__`` (or, in Python, a list of turns); its
result is ``{"reply": str, "nbest": [{"text", "score"}]}`` (a context without a non-blank turn: ``""``).
``seqnlp chat`` talks to the model. Evaluation: perplexity per subword and per word over every reply of a split
(teacher forced) and, for each decoding in ``compare`` on ``decode_limit`` evenly spaced replies, sacreBLEU
against the reference reply, distinct-1/2 and the average reply length in words.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..config import ConfigError, to_dict
from ..data.batching import BatchIterator, TokenBucketSampler
from ..data.dialogue import TURN_MARK, DialogueStats, dialogue_turns, encode_contexts, encode_examples, make_examples
from ..data.dialogue import parse_turns as parse_input
from ..data.errors import DataError
from ..data.loading import DataSpec, load_splits
from ..data.seq2seq import Seq2SeqCollate, finish_splits, pair_lengths
from ..data.tokenizers import Tokenizer
from ..metrics import bleu_chrf, distinct_n
from ..search import SEARCH_METHODS, SearchConfig
from ..train import checkpoint as ck
from ..train.loop import TrainConfig
from .seq2seq import (
    Seq2Seq,
    Seq2SeqConfig,
    Seq2SeqPredictor,
    build_seq2seq,
    note_truncated,
    summed_loss,
    train_defaults,
    write_nbest,
)

TASK = "dialogue"
TOKENIZER = "tokenizer.json"

__all__ = ["TASK", "TOKENIZER", "TURN_MARK", "ChatSession", "Config", "DataConfig", "ModelConfig", "Responder",
           "build_model", "chat_session", "evaluate", "format_text", "load_data", "load_predictor", "parse_input",
           "perplexities", "reply_metrics", "reply_nll", "score_dialogues", "spaced", "summary"]


# ------------------------------------------------------------------------------------------------ configs
@dataclass
class DataConfig:
    name: str = "dialogue/dailydialog"  # local dir (under $SEQNLP_DATA) or a Hub id
    format: str = "dailydialog"  # dailydialog (dialogues_<split>.txt) | auto (Hub, jsonl/parquet: list column)
    subset: str | None = None  # Hub config
    splits: dict[str, str] = field(default_factory=dict)  # our split -> file / Hub split (empty: by name)
    columns: dict[str, str] = field(default_factory=dict)  # turns -> column holding the list of turns
    val_carve: int = 500  # dialogues carved out of train when the data has no validation split
    train_limit: int = 0  # use only the first N training dialogues (0: all)
    eval_limit: int = 0  # use only the first N validation/test dialogues (0: all)
    val_limit: int = 0  # validation loss during training on the first N validation dialogues (0: all)
    context_turns: int = 3  # k: the source is the last k turns before the reply
    tokenizer: str = "bpe"  # bpe | unigram (one vocabulary for contexts and replies)
    vocab_size: int = 8000
    min_freq: int = 2
    max_src_len: int = 100  # context subwords incl. separators and </s>; oldest turns dropped first (counted)
    max_tgt_len: int = 60  # training replies incl. </s>; longer are truncated (counted; never at evaluation)
    max_tokens: int = 3000  # padded tokens per training batch (max of both sides)
    max_sentences: int = 0  # examples per training batch (0: no cap)


ModelConfig = Seq2SeqConfig  # the model block (src_vocab = tgt_vocab and pad_id from the data)


def _model_defaults() -> ModelConfig:
    # contexts and replies share one vocabulary and its embeddings; the padded encoder is ~2x faster on CPU
    return ModelConfig(share_src_tgt_embeddings=True, packed=False)


def _search_defaults() -> SearchConfig:
    # replies do not scale with the context: every reply gets at most min_max_len subwords (ratio 0)
    return SearchConfig(method="sample", beam_size=5, no_repeat_ngram_size=3, top_p=0.9, temperature=1.0,
                        max_len_ratio=0.0, min_max_len=50, max_output_len=50)


@dataclass
class Config:
    task: str = TASK
    output_dir: str = "runs/dialogue"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=_model_defaults)
    search: SearchConfig = field(default_factory=_search_defaults)  # the default decoding (chat, predict)
    compare: list[str] = field(default_factory=lambda: ["greedy", "beam", "sample"])  # test decodings
    decode_limit: int = 0  # decode only N evenly spaced test examples (0: all); perplexity uses all
    samples: int = 10  # test exchanges shown in samples.test.md (and result.json)
    train: TrainConfig = field(
        default_factory=lambda: train_defaults(eval_metric="loss", eval_mode="min", patience=4, epochs=20))
    infer_precision: str = "fp32"  # fp32 | bf16 | fp16 | auto: evaluation and prediction (pick_dtype)
    init_from: str = ""  # start from a trained dialogue model's weights and tokenizer


def build_model(m: ModelConfig) -> Seq2Seq:
    """The one place where a model config becomes modules (:func:`~seqnlp.tasks.seq2seq.build_seq2seq`)."""
    return build_seq2seq(m)


def check_config(cfg: Config) -> None:
    """A :class:`ConfigError` for a ``compare`` list that is not a list of decodings, and -- naming the key and its
    allowed values -- for an option that cannot be right whatever the data (``data.format``, ``data.tokenizer``,
    ``model.attention``, ``train.*`` ...); :func:`load_data` calls it before reading anything."""
    from ..config import check_choice, check_fraction, check_run
    from ..data.loading import check_data_config
    from ..data.seq2seq import SUBWORD_KINDS
    from .translation import ATTENTIONS

    bad = [m for m in cfg.compare if m not in SEARCH_METHODS]
    if bad or not cfg.compare:
        raise ConfigError(f"compare must list decodings among {SEARCH_METHODS}, got {list(cfg.compare)}")
    check_data_config(cfg.data)
    check_fraction(cfg.data.val_carve, "data.val_carve", whole=True)
    check_choice(cfg.data.tokenizer, SUBWORD_KINDS, "data.tokenizer")
    check_choice(cfg.model.attention, ATTENTIONS, "model.attention")
    check_choice(cfg.search.method, SEARCH_METHODS, "search.method")
    check_run(cfg)
    if cfg.data.context_turns < 1:
        raise ConfigError(f"data.context_turns must be >= 1, got {cfg.data.context_turns}")


# ------------------------------------------------------------------------------------------------ data
def load_data(cfg: Config) -> dict[str, list[list[str]]]:
    """``{"train", "validation", "test"}`` lists of dialogues (lists of turns; test falls back to validation).

    Raises:
        DataError: no train split, or a dialogue that is not a list of strings (row named).
    """
    check_config(cfg)
    d = cfg.data
    spec = DataSpec(d.name, format=d.format, subset=d.subset, splits=dict(d.splits), columns=dict(d.columns),
                    carve={"validation": d.val_carve})
    splits = {s: [dialogue_turns(e, i, f"{d.name}[{s}]") for i, e in enumerate(rows)]
              for s, rows in load_splits(spec).items()}
    return finish_splits(splits, d.name, d.train_limit, d.eval_limit)


# ------------------------------------------------------------------------------------------------ metrics
def reply_nll(model: Seq2Seq, pairs: Sequence[tuple[list[int], list[int]]], tok: Tokenizer, max_tokens: int,
              device: torch.device, progress: bool = False) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of the replies incl. ``</s>``, teacher forced, and their count."""
    sampler = TokenBucketSampler(pair_lengths(pairs), max_tokens, shuffle=False)
    return summed_loss(model, BatchIterator(pairs, sampler, Seq2SeqCollate.of(tok)), device, progress, "perplexity")


def words(text: str) -> list[str]:
    """Whitespace words (DailyDialog is tokenised: punctuation marks are words)."""
    return text.split()


def perplexities(nll: float, n_subwords: int, targets: Sequence[str]) -> dict:
    """Perplexity per subword (incl. ``</s>``) and per word (each reply's words + 1 for its end)."""
    n_words = sum(len(words(t)) + 1 for t in targets)
    return {"subword": round(math.exp(min(nll / max(n_subwords, 1), 700.0)), 3),
            "word": round(math.exp(min(nll / max(n_words, 1), 700.0)), 3),
            "subwords": n_subwords, "words": n_words}


def reply_metrics(hyps: Sequence[str], refs: Sequence[str]) -> dict:
    """sacreBLEU against the reference replies, distinct-1/2 over all replies' words, average length in words."""
    toks = [words(h) for h in hyps]
    quiet = logging.getLogger("sacrebleu")  # DailyDialog is tokenised (replies and references alike): no warning
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        sc = bleu_chrf(hyps, refs)
    finally:
        quiet.setLevel(level)
    avg = sum(map(len, toks)) / max(len(toks), 1)
    return {"bleu": sc["bleu"], "distinct_1": round(distinct_n(toks, 1), 4),
            "distinct_2": round(distinct_n(toks, 2), 4), "avg_length": round(avg, 2),
            "empty_replies": sum(not t for t in toks), "signature": sc["signature"]}


def spaced(n_items: int, limit: int) -> list[int]:
    """``limit`` indices spread evenly over ``range(n_items)`` (all of them when ``limit`` is 0 or larger)."""
    if not limit or limit >= n_items:
        return list(range(n_items))
    return [i * n_items // limit for i in range(limit)]


# ------------------------------------------------------------------------------------------------ predictor
class Responder(Seq2SeqPredictor):
    """A trained dialogue model: ``predict([["Hi !", "Hello ."]])[0]["reply"] -> "How are you ?"``.

    A context is a list of turns, oldest first, or a string of turns separated by ``__eou__``; only its last
    ``data.context_turns`` turns are used, truncated from the oldest turn to ``data.max_src_len`` subwords
    (counted in ``last_stats``).
    """

    result_key = "reply"
    strip = True
    desc = "respond"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.context_turns = self.config.data.context_turns
        self.max_src_len = self.config.data.max_src_len
        self.last_stats = DialogueStats()

    def encode(self, inputs: list) -> tuple[list[list[int]], list[bool]]:
        contexts = [[t.strip() for t in (parse_input(c) if isinstance(c, str) else c)][-self.context_turns:]
                    for c in inputs]
        srcs, self.last_stats = encode_contexts(self.tok, contexts, self.max_src_len)
        note_truncated(self.last_stats.contexts_truncated, len(inputs),
                       f"were longer than data.max_src_len={self.max_src_len} subwords and lost "
                       f"{self.last_stats.turns_dropped} oldest turns, {self.last_stats.tokens_cut} subwords")
        return srcs, [not any(c) for c in contexts]

    @property
    def tok(self) -> Tokenizer:
        return self.src_tok


def load_predictor(ckpt: Path, stored: ck.Stored, cfg: Config, device: torch.device) -> Responder:
    tok = Tokenizer.load(Path(ckpt) / TOKENIZER)
    return Responder.load(Path(ckpt), stored, cfg, device, tok, tok)


def format_text(result: dict) -> str:
    return result["reply"]


OUTPUT_FORMATS = {"nbest": write_nbest}


class ChatSession:
    """A conversation with a :class:`Responder`: ``say(turn) -> reply`` keeps the ``history``, ``reset()``
    forgets it; ``banner`` says what the model is (printed when a chat starts at a terminal)."""

    def __init__(self, responder: Responder, max_history: int = 200):
        self.responder = responder
        self.max_history = max(max_history, responder.context_turns)
        self.history: list[str] = []
        self.banner = (f"chatting with {responder.checkpoint} ({responder.search.describe()}; the last "
                       f"{responder.context_turns} turns are its context)")

    def say(self, text: str) -> str:
        """Add the user's turn, answer it, and add the answer to the history."""
        self.history.append(text.strip())
        reply = self.responder.predict([list(self.history)])[0]["reply"]
        self.history.append(reply)
        del self.history[: -self.max_history]
        return reply

    def reset(self) -> None:
        self.history.clear()


def chat_session(predictor: Responder) -> ChatSession:
    return ChatSession(predictor)


# ------------------------------------------------------------------------------------------------ evaluation
def _search_summary(s: SearchConfig) -> dict:
    if s.method == "beam":
        return {"beam_size": s.beam_size, "no_repeat_ngram_size": s.no_repeat_ngram_size,
                "length_penalty": s.length_penalty}
    if s.method == "sample":
        return {"temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p, "seed": s.seed}
    return {}


def score_dialogues(responder: Responder, dialogues: list[list[str]], split: str,
                    progress: bool = False) -> tuple[dict, dict[str, list[str]], list[dict]]:
    """Perplexity on every reply of ``dialogues``; ``decode_limit`` of them decoded with each of ``compare``
    (the predictor's config). Returns ``(metrics, replies per decoding, samples)``: ``samples`` are
    ``config.samples`` evenly spaced exchanges (context, reference, each decoding's reply)."""
    cfg = responder.config
    check_config(cfg)
    tok, d = responder.tok, cfg.data
    examples, st = make_examples(dialogues, d.context_turns)
    if not examples:
        raise DataError(f"no {split} examples to evaluate", d.name)
    pairs = encode_examples(tok, examples, d.max_src_len, None, st)
    if st.contexts_truncated or st.skipped_empty_target:
        print(st.message(split), file=sys.stderr)
    nll, n = reply_nll(responder.model, pairs, tok, d.max_tokens * 2, responder.device, progress)
    metrics: dict = {"split": split, "examples": len(examples), "context_turns": d.context_turns,
                     "perplexity": perplexities(nll, n, [e["target"] for e in examples])}
    chosen = spaced(len(examples), cfg.decode_limit)
    srcs = [pairs[i][0] for i in chosen]
    refs = [examples[i]["target"] for i in chosen]
    replies: dict[str, list[str]] = {}
    for method in cfg.compare:
        search = replace(cfg.search, method=method, n_best=1)
        t0 = time.time()
        replies[method] = [n[0][0] for n in responder.decode(srcs, search, progress)]
        metrics[method] = {**reply_metrics(replies[method], refs), "decode_seconds": round(time.time() - t0, 1),
                           **_search_summary(search)}
    default = cfg.search.method
    metrics.update({"compare": list(cfg.compare), "default": default, "decoded": len(chosen),
                    "test_stats": to_dict(st)})
    if default in replies:
        metrics.update({k: metrics[default][k] for k in ("bleu", "distinct_1", "distinct_2", "avg_length")})
    if default in replies and "greedy" in replies and metrics["greedy"]["distinct_2"] > 0:
        metrics["distinct_2_vs_greedy"] = round(metrics[default]["distinct_2"] / metrics["greedy"]["distinct_2"], 2)
    samples = [{"context": examples[chosen[j]]["context"], "reference": refs[j],
                **{m: replies[m][j] for m in cfg.compare}} for j in spaced(len(chosen), cfg.samples)]
    return metrics, replies, samples


def evaluate(predictor: Responder, split: str) -> dict:
    """Perplexity and each ``compare`` decoding's reply metrics on ``split`` of the predictor's data config."""
    splits = load_data(predictor.config)
    if split not in splits:
        raise DataError(f"no split {split!r} (have {sorted(splits)})", predictor.config.data.name)
    return score_dialogues(predictor, splits[split], split, progress=True)[0]


def summary(metrics: dict) -> str:
    p = metrics["perplexity"]
    lines = [f"{metrics['split']}: perplexity {p['word']} per word, {p['subword']} per subword "
             f"({metrics['examples']} replies)"]
    for m in metrics["compare"]:
        r = metrics[m]
        lines.append(f"  {m:7s} BLEU {r['bleu']:5.2f}  distinct-1 {r['distinct_1']:.4f}  distinct-2 "
                     f"{r['distinct_2']:.4f}  length {r['avg_length']:.1f}" + ("  (default)" if m == metrics["default"]
                                                                               else ""))
    if metrics.get("distinct_2_vs_greedy") is not None:
        lines.append(f"  default/greedy distinct-2: {metrics['distinct_2_vs_greedy']:.2f}x "
                     f"on {metrics['decoded']} decoded replies")
    return "\n".join(lines)
