"""Dialogue: the translation recipe's seq2seq model answering the last k turns of a conversation.

Data: DailyDialog (``$SEQNLP_DATA/dialogue/dailydialog``: one dialogue a line, turns separated by ``__eou__``)
or any Hub / local tabular dataset with a column holding the list of turns (``data.format=auto``,
``data.columns.turns=dialog``). Every turn after the first of a dialogue is one example:

    source = turn[i-k] <sep> ... <sep> turn[i-1] </s>        target = turn[i]

``<sep>`` is a special token inserted by code (text that reads ``<sep>`` stays text). A context longer than
``data.max_src_len`` subwords loses its oldest turns first (a newest turn that alone is too long keeps its
last subwords); empty turns in a context are kept as empty segments (the speakers still alternate), an empty
target is skipped. Every such case is counted and logged (:class:`DialogueStats`).

Model and search are shared with translation: :func:`seqnlp.tasks.seq2seq.build_seq2seq` (one joint subword
vocabulary, tied embeddings) and :mod:`seqnlp.search` through :mod:`seqnlp.recipes._seq2seq` -- greedy, beam
search with n-gram repeat blocking, sampling with temperature / top-k / top-p, n-best lists.

``train`` keeps the checkpoint with the lowest validation loss, then scores it on the test split:
``metrics.json`` holds the perplexity per subword and per word (whole test split, teacher forced) and, for
each decoding in ``compare`` (greedy, beam, sample; on ``decode_limit`` evenly spaced test examples), sacreBLEU
against the reference reply, distinct-1/2 and the average reply length in words; ``samples.test.md`` shows
test exchanges decoded every way.

    python recipes/dialogue.py --config recipes/configs/dialogue/dailydialog.yaml
    python recipes/dialogue.py --mode evaluate --model runs/dailydialog [search.top_p=0.8]
    echo "Hi , how are you ? __eou__ Fine , thanks . And you ?" | seqnlp predict --model runs/dailydialog
    seqnlp chat --model runs/dailydialog [search.method=beam]      # /reset, /history, /quit
    printf 'Hello !\\nWhere are you going ?\\n/reset\\nHi .\\n' | seqnlp chat --model runs/dailydialog
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..config import ConfigError, from_dict, to_dict
from ..data.batching import BatchIterator, TokenBucketSampler
from ..data.errors import DataError
from ..data.loading import DataSpec, load_splits
from ..data.readers import open_text
from ..data.tokenizers import Tokenizer
from ..metrics import distinct_n
from ..tasks.seq2seq import Seq2Seq, build_seq2seq
from ..train.checkpoint import CheckpointError, load_weights, read_config, resolve
from ..train.device import pick_device, seed_everything, set_threads
from ..train.loop import TrainConfig, Trainer
from ._common import (
    config_name,
    one_line,
    prepare_run,
    recipe_main,
    record_result,
    save_result_copy,
    stored_config,
    write_json,
)
from ._seq2seq import SEARCH_METHODS, SearchConfig, Seq2SeqCollate, decode_texts, score, train_tokenizers

TASK = "dialogue"
SEP = "<sep>"  # turn separator (a special token of the tokenizer)
TOKENIZER = "tokenizer.json"
TURN_MARK = "__eou__"  # turn separator of predict's input lines (DailyDialog's end-of-utterance mark)


# ------------------------------------------------------------------------------------------- config
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


@dataclass
class ModelConfig:
    emb_size: int = 256
    hidden_size: int = 256
    enc_layers: int = 1
    dec_layers: int = 1
    attention: str = "bahdanau"  # bahdanau | luong_general | luong_dot | none
    attention_size: int = 0  # Bahdanau's hidden size (0: hidden_size)
    input_feeding: bool = False
    dropout: float = 0.3
    emb_dropout: float = 0.3
    tie_embeddings: bool = True  # decoder embeddings = output layer
    share_src_tgt_embeddings: bool = True  # contexts and replies share one vocabulary
    label_smoothing: float = 0.1
    packed: bool = False  # encoder over a PackedSequence (True) or the padded batch (False: ~2x faster on CPU)


def _search_defaults() -> SearchConfig:
    # replies do not scale with the context: every reply gets at most min_max_len subwords (ratio 0)
    return SearchConfig(method="sample", beam_size=5, no_repeat_ngram_size=3, top_p=0.9, temperature=1.0,
                        max_len_ratio=0.0, min_max_len=50, max_output_len=50)


def _train_defaults() -> TrainConfig:
    return TrainConfig(optimizer="adam", lr=1e-3, eval_metric="loss", eval_mode="min", scheduler="plateau",
                       plateau_factor=0.5, plateau_patience=1, patience=4, epochs=20, clip_grad_norm=1.0)


@dataclass
class Config:
    task: str = TASK
    output_dir: str = "runs/dialogue"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    search: SearchConfig = field(default_factory=_search_defaults)  # the default decoding (chat, predict)
    compare: list[str] = field(default_factory=lambda: ["greedy", "beam", "sample"])  # test decodings
    decode_limit: int = 0  # decode only N evenly spaced test examples (0: all); perplexity uses all
    samples: int = 10  # test exchanges shown in samples.test.md (and result.json)
    train: TrainConfig = field(default_factory=_train_defaults)
    init_from: str = ""  # start from a trained dialogue model's weights and tokenizer
    record: bool = False  # copy result.json to results/dialogue/<config>.json


# ------------------------------------------------------------------------------------------- model
def model_args(m: ModelConfig, vocab: int, pad_id: int) -> dict:
    """Plain constructor arguments of the model (stored in the checkpoint as ``model_args``)."""
    return dict(src_vocab=vocab, tgt_vocab=vocab, emb_size=m.emb_size, hidden_size=m.hidden_size,
                enc_layers=m.enc_layers, dec_layers=m.dec_layers, attention=m.attention,
                attention_size=m.attention_size, input_feeding=m.input_feeding, dropout=m.dropout,
                emb_dropout=m.emb_dropout, tie_embeddings=m.tie_embeddings,
                share_src_tgt_embeddings=m.share_src_tgt_embeddings, label_smoothing=m.label_smoothing,
                pad_id=pad_id, packed=m.packed)


def build_model(args: dict) -> Seq2Seq:
    """The one place where model arguments become modules (the translation recipe's seq2seq model).

    ``packed=False`` runs the encoder over the padded batch (:func:`seqnlp.nn.padded_rnn.run_padded`: the
    same outputs, no final cell state, so the bridge builds the decoder's c from the final h).
    """
    args = dict(args)
    packed = args.pop("packed", True)
    model = build_seq2seq(**args)
    model.encoder.packed = packed  # TODO(shared): a `packed` argument of build_seq2seq
    return model


# ------------------------------------------------------------------------------------------- data
def load_data(d: DataConfig) -> dict[str, list[list[str]]]:
    """``{"train", "validation", "test"}`` lists of dialogues (lists of turns; test falls back to validation).

    Raises:
        DataError: no train split, or a dialogue that is not a list of strings (row named).
    """
    spec = DataSpec(d.name, format=d.format, subset=d.subset, splits=dict(d.splits), columns=dict(d.columns),
                    carve={"validation": d.val_carve})
    raw = load_splits(spec)
    if "train" not in raw:
        raise DataError(f"no train split (found {sorted(raw)})", d.name)
    splits = {s: [_turns(e, i, f"{d.name}[{s}]") for i, e in enumerate(rows)] for s, rows in raw.items()}
    if "test" not in splits:
        print(f"note: {d.name} has no test split; the validation split is used as test", file=sys.stderr)
        splits["test"] = splits["validation"]
    if d.train_limit:
        splits["train"] = splits["train"][: d.train_limit]
    if d.eval_limit:
        for s in ("validation", "test"):
            splits[s] = splits[s][: d.eval_limit]
    return splits


def _turns(example: dict, row: int, where: str) -> list[str]:
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
        parts = [f"{what}: {self.kept}/{self.examples} examples"]
        if self.skipped_empty_target:
            parts.append(f"{self.skipped_empty_target} skipped (empty reply)")
        if self.empty_context_turns:
            parts.append(f"{self.empty_context_turns} empty context turns kept")
        if self.contexts_truncated:
            parts.append(f"{self.contexts_truncated} contexts truncated from the oldest turn "
                         f"({self.turns_dropped} turns dropped, {self.tokens_cut} subwords cut)")
        if self.targets_truncated:
            parts.append(f"{self.targets_truncated} replies truncated")
        return ", ".join(parts)


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


def _report(stats: DialogueStats, what: str) -> None:
    print(stats.message(what), file=sys.stderr)


# ------------------------------------------------------------------------------------------- metrics
@torch.no_grad()
def reply_nll(model: Seq2Seq, pairs: Sequence[tuple[list[int], list[int]]], pad_id: int, bos: int, eos: int,
              max_tokens: int, device: torch.device, progress: bool = False) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of the replies incl. ``</s>``, teacher forced, and their token count."""
    was_training = model.training
    model.eval()
    sampler = TokenBucketSampler([max(len(s), len(t) + 1) for s, t in pairs], max_tokens, shuffle=False)
    total, n = 0.0, 0
    for batch in tqdm(BatchIterator(pairs, sampler, Seq2SeqCollate(pad_id, bos, eos)), total=len(sampler),
                      desc="perplexity", disable=not progress, leave=False, dynamic_ncols=True):
        loss, k = model.loss(batch.to(device))
        total += float(loss) * k
        n += k
    model.train(was_training)
    return total, n


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
        sc = score(hyps, refs)
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


# ------------------------------------------------------------------------------------------- predictor
class Responder:
    """A trained dialogue model with its tokenizer: ``respond([["Hi !", "Hello ."]]) -> ["How are you ?"]``.

    Returned by ``seqnlp.load(run_dir)``. A context is a list of turns, oldest first (a plain string is one
    turn); only its last ``context_turns`` turns are used, and those are truncated from the oldest turn to
    ``max_src_len`` subwords (counted in ``last_stats``).
    """

    def __init__(self, model: Seq2Seq, tok: Tokenizer, search: SearchConfig, context_turns: int, max_src_len: int,
                 device: torch.device):
        self.model, self.tok, self.search = model.eval(), tok, search
        self.context_turns, self.max_src_len, self.device = context_turns, max_src_len, device
        self.last_stats = DialogueStats()

    def _contexts(self, contexts: Sequence[str | Sequence[str]]) -> list[list[str]]:
        out = []
        for c in contexts:
            turns = [c] if isinstance(c, str) else list(c)
            out.append([str(t).strip() for t in turns][-self.context_turns :])
        return out

    def respond_nbest(self, contexts: Sequence[str | Sequence[str]], search: SearchConfig | None = None,
                      progress: bool = False) -> list[list[tuple[str, float]]]:
        """Up to ``search.n_best`` ``(reply, score)`` per context (scores are ``nan`` for greedy/sampling)."""
        srcs, self.last_stats = encode_contexts(self.tok, self._contexts(contexts), self.max_src_len)
        nbest = decode_texts(self.model, self.tok, srcs, search or self.search, device=self.device,
                             progress=progress, desc="respond").nbest
        return [[(h.strip(), s) for h, s in n] for n in nbest]

    def respond(self, contexts: Sequence[str | Sequence[str]], search: SearchConfig | None = None,
                progress: bool = False) -> list[str]:
        return [n[0][0] for n in self.respond_nbest(contexts, search, progress)]

    predict = respond

    def chat(self) -> ChatSession:
        return ChatSession(self)


class ChatSession:
    """A conversation with a :class:`Responder`: keeps the history, ``reset()`` forgets it."""

    def __init__(self, responder: Responder, max_history: int = 200):
        self.responder = responder
        self.max_history = max(max_history, responder.context_turns)
        self.history: list[str] = []

    def say(self, text: str) -> str:
        """Add the user's turn, answer it, and add the answer to the history."""
        self.history.append(text.strip())
        reply = self.responder.respond([self.history])[0]
        self.history.append(reply)
        del self.history[: -self.max_history]
        return reply

    def reset(self) -> None:
        self.history.clear()


def load_predictor(ckpt_dir, device: str = "cpu") -> Responder:
    ckpt = resolve(ckpt_dir)
    cfg = from_dict(Config, read_config(ckpt)["config"])
    return _load(ckpt, cfg, pick_device(device))


def _load(ckpt: Path, cfg: Config, device: torch.device) -> Responder:
    stored = read_config(ckpt)
    model = build_model(stored["model_args"])
    load_weights(model, ckpt)
    tok = Tokenizer.load(ckpt / TOKENIZER)
    return Responder(model.to(device), tok, cfg.search, cfg.data.context_turns, cfg.data.max_src_len, device)


# ------------------------------------------------------------------------------------------- training
def train(cfg: Config, config_path: str | None) -> dict:
    """Train, keep the checkpoint with the best validation loss, evaluate it on test; returns the metrics."""
    t_start = time.time()
    _check_search(cfg)
    out = prepare_run(cfg, config_path)
    set_threads(cfg.train.threads)
    seed_everything(cfg.train.seed)  # before any model or data randomness
    d = cfg.data
    splits = load_data(d)
    train_ex, st = make_examples(splits["train"], d.context_turns)
    val_ex, vst = make_examples(splits["validation"][: d.val_limit or None], d.context_turns)
    if not train_ex:
        raise DataError("no training examples (dialogues of one turn only, or empty replies?)", d.name)
    if not val_ex:
        raise DataError("no validation examples", d.name)
    if cfg.init_from:
        tok = Tokenizer.load(resolve(cfg.init_from) / TOKENIZER)
    else:
        turns = list(dict.fromkeys(t for dlg in splits["train"] for t in dlg if t))
        tok, _ = train_tokenizers(d.tokenizer, d.vocab_size, True, turns, [], d.min_freq, extra_specials=[SEP])
    train_pairs = encode_examples(tok, train_ex, d.max_src_len, d.max_tgt_len, st)
    _report(st, "train")
    val_pairs = encode_examples(tok, val_ex, d.max_src_len, None, vst)
    _report(vst, "validation")
    collate = Seq2SeqCollate(tok.pad_id, tok.bos_id, tok.eos_id)
    sampler = TokenBucketSampler([max(len(s), len(t) + 1) for s, t in train_pairs], max_tokens=d.max_tokens,
                                 max_sentences=d.max_sentences or None, seed=cfg.train.seed)
    batches = BatchIterator(train_pairs, sampler, collate)
    args = model_args(cfg.model, tok.vocab_size, tok.pad_id)
    model = build_model(args)
    if cfg.init_from:
        load_weights(model, resolve(cfg.init_from))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters; vocab {tok.vocab_size}; {len(train_pairs)} training "
          f"examples, {len(sampler)} batches an epoch", file=sys.stderr)

    val_targets = [e["target"] for e in val_ex]
    eval_seconds = [0.0]

    def evaluate_fn(m: Seq2Seq) -> dict:
        t0 = time.time()
        nll, n = reply_nll(m, val_pairs, tok.pad_id, tok.bos_id, tok.eos_id, d.max_tokens * 2,
                           next(m.parameters()).device)
        ppl = perplexities(nll, n, val_targets)
        eval_seconds[0] += time.time() - t0
        return {"loss": nll / max(n, 1), "ppl": ppl["subword"], "word_ppl": ppl["word"]}

    ckpt_config = {"task": TASK, "config": to_dict(cfg), "model_args": args, "vocab_size": tok.vocab_size}
    trainer = Trainer(model, batches, cfg.train, out, evaluate_fn, ckpt_config, {TOKENIZER: tok.save})
    summary = trainer.fit()

    best = resolve(out / "checkpoints")
    responder = _load(best, cfg, trainer.device)
    metrics, samples = evaluate_split(responder, splits["test"], cfg, out, "test", progress=cfg.train.progress)
    metrics.update({
        "val_loss_best": summary["best"], "steps": summary["steps"], "stop_reason": summary["reason"],
        "train_minutes": round(summary["train_seconds"] / 60, 2), "eval_minutes": round(eval_seconds[0] / 60, 2),
        "epochs": round(summary["steps"] / max(len(sampler), 1), 2), "parameters": n_params,
        "train_examples": len(train_pairs), "train_stats": to_dict(st), "checkpoint": best.name,
    })
    write_json(out / "metrics.json", metrics)
    rec = record_result(TASK, config_path, out, metrics, time.time() - t_start, extra={"samples": samples})
    if cfg.record:
        save_result_copy(rec, TASK, config_name(config_path))
    print(_summary(metrics))
    return metrics


def _check_search(cfg: Config) -> None:
    bad = [m for m in cfg.compare if m not in SEARCH_METHODS]
    if bad or not cfg.compare:
        raise ConfigError(f"compare must list decodings among {SEARCH_METHODS}, got {list(cfg.compare)}")


def _summary(metrics: dict) -> str:
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


def evaluate_split(responder: Responder, dialogues: list[list[str]], cfg: Config, out_dir: Path | None, split: str,
                   progress: bool = True) -> tuple[dict, list[dict]]:
    """Perplexity on every reply of ``dialogues``; decode ``cfg.decode_limit`` of them with each of
    ``cfg.compare``; write ``replies.<split>.<method>.txt`` and ``samples.<split>.md`` into ``out_dir``.

    Returns ``(metrics, samples)``.
    """
    _check_search(cfg)
    tok, d = responder.tok, cfg.data
    examples, st = make_examples(dialogues, d.context_turns)
    if not examples:
        raise DataError(f"no {split} examples to evaluate", d.name)
    pairs = encode_examples(tok, examples, d.max_src_len, None, st)
    if st.contexts_truncated or st.skipped_empty_target:
        _report(st, split)
    nll, n = reply_nll(responder.model, pairs, tok.pad_id, tok.bos_id, tok.eos_id, d.max_tokens * 2,
                       responder.device, progress)
    metrics: dict = {"split": split, "examples": len(examples), "context_turns": d.context_turns,
                     "perplexity": perplexities(nll, n, [e["target"] for e in examples])}
    chosen = spaced(len(examples), cfg.decode_limit)
    srcs = [pairs[i][0] for i in chosen]
    refs = [examples[i]["target"] for i in chosen]
    replies: dict[str, list[str]] = {}
    for method in cfg.compare:
        search = SearchConfig(**{**to_dict(cfg.search), "method": method, "n_best": 1})
        t0 = time.time()
        replies[method] = [r.strip() for r in decode_texts(responder.model, tok, srcs, search, device=responder.device,
                                                           progress=progress, desc=method).best]
        metrics[method] = {**reply_metrics(replies[method], refs), "decode_seconds": round(time.time() - t0, 1),
                           **_search_summary(search)}
        if out_dir is not None:
            Path(out_dir, f"replies.{split}.{method}.txt").write_text(
                "".join(one_line(r) + "\n" for r in replies[method]), newline="\n")
    default = cfg.search.method
    metrics.update({"compare": list(cfg.compare), "default": default, "decoded": len(chosen),
                    "test_stats": to_dict(st)})
    if default in replies:
        metrics.update({k: metrics[default][k] for k in ("bleu", "distinct_1", "distinct_2", "avg_length")})
    if default in replies and "greedy" in replies and metrics["greedy"]["distinct_2"] > 0:
        metrics["distinct_2_vs_greedy"] = round(metrics[default]["distinct_2"] / metrics["greedy"]["distinct_2"], 2)
    samples = [{"context": examples[chosen[j]]["context"], "reference": refs[j],
                **{m: replies[m][j] for m in cfg.compare}} for j in spaced(len(chosen), cfg.samples)]
    if out_dir is not None and samples:
        Path(out_dir, f"samples.{split}.md").write_text(samples_markdown(samples, cfg.compare), newline="\n")
    return metrics, samples


def _search_summary(s: SearchConfig) -> dict:
    if s.method == "beam":
        return {"beam_size": s.beam_size, "no_repeat_ngram_size": s.no_repeat_ngram_size,
                "length_penalty": s.length_penalty}
    if s.method == "sample":
        return {"temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p, "seed": s.seed}
    return {}


def samples_markdown(samples: list[dict], methods: Sequence[str]) -> str:
    """Test exchanges as Markdown: the context turns, the reference reply and each decoding's reply."""
    blocks = []
    for i, s in enumerate(samples, 1):
        lines = [f"**{i}.**", ""]
        lines += [f"> {one_line(t) or '(empty turn)'}  " for t in s["context"]]
        lines += ["", f"- reference: {one_line(s['reference'])}"]
        lines += [f"- {m}: {one_line(s[m]) or '(empty reply)'}" for m in methods]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"



# ------------------------------------------------------------------------------------------- evaluate / predict / chat

def evaluate(model_dir, args) -> dict:
    """Score a trained model on ``--split`` (default test): prints and writes ``eval_<split>.json``."""
    ckpt, cfg = stored_config(model_dir, args.overrides, TASK, Config)
    responder = _load(ckpt, cfg, pick_device(cfg.train.device))
    splits = load_data(cfg.data)
    if args.split not in splits:
        raise DataError(f"no split {args.split!r} (have {sorted(splits)})", cfg.data.name)
    where = Path(model_dir) if Path(model_dir).is_dir() else ckpt
    metrics, _ = evaluate_split(responder, splits[args.split], cfg, where, args.split)
    write_json(where / f"eval_{args.split}.json", metrics)
    print(_summary(metrics))
    return metrics


def _read_lines(path: str) -> list[str]:
    if path == "-":
        return [line.rstrip("\r\n") for line in sys.stdin]
    return list(open_text(path))


def parse_context(line: str) -> list[str]:
    """A predict input line: turns separated by ``__eou__`` (a trailing mark is optional)."""
    turns = [t.strip() for t in line.split(TURN_MARK)]
    if len(turns) > 1 and not turns[-1]:
        turns.pop()
    return turns


def predict(model_dir, args) -> None:
    """Answer each line of ``--input`` (default stdin): a context of turns separated by ``__eou__``.

    Writes one reply a line to ``--output``; with ``search.n_best=N`` (N > 1) lines ``i ||| reply ||| score``.
    """
    ckpt, cfg = stored_config(model_dir, args.overrides, TASK, Config)
    responder = _load(ckpt, cfg, pick_device(cfg.train.device))
    contexts = [parse_context(line) for line in _read_lines(args.input)]
    nbest = responder.respond_nbest(contexts, progress=args.output != "-")
    st = responder.last_stats
    if st.contexts_truncated:
        print(f"note: {st.contexts_truncated} of {len(contexts)} contexts were longer than data.max_src_len="
              f"{cfg.data.max_src_len} subwords and lost {st.turns_dropped} oldest turns, {st.tokens_cut} "
              f"subwords", file=sys.stderr)
    if cfg.search.n_best > 1:
        text = "".join(f"{i} ||| {one_line(h)} ||| {s:.4f}\n" for i, n in enumerate(nbest) for h, s in n)
    else:
        text = "".join(one_line(n[0][0]) + "\n" for n in nbest)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, newline="\n")


CHAT_HELP = """commands: /reset  forget the conversation    /history  show it    /quit  leave (or Ctrl-D)
a line starting with // says that line without its first /"""


def chat(model_dir, args) -> None:
    """Talk to the model in the terminal; turns come from stdin (or ``--input``), one a line.

    At a terminal each reply is printed as ``bot> reply``; with piped input (a script) only the reply, one a
    line, so a scripted session's output is easy to read back. ``/reset``, ``/history``, ``/help`` and
    ``/quit`` are commands; blank lines are ignored. Notes go to stderr.
    """
    ckpt, cfg = stored_config(model_dir, args.overrides, TASK, Config)
    session = ChatSession(_load(ckpt, cfg, pick_device(cfg.train.device)))
    stream = iter(sys.stdin if args.input == "-" else open_text(args.input))
    tty = args.input == "-" and sys.stdin.isatty()
    if tty:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
        s = cfg.search
        how = f"beam {s.beam_size}" if s.method == "beam" else s.method + (
            f" (temperature {s.temperature}, top-k {s.top_k}, top-p {s.top_p})" if s.method == "sample" else "")
        print(f"chatting with {ckpt} ({how}; the last {cfg.data.context_turns} turns are its context)\n"
              f"{CHAT_HELP}", file=sys.stderr)
    while True:
        if tty:
            try:
                line = input("you> ")
            except EOFError:
                print(file=sys.stderr)
                break
        else:
            line = next(stream, None)
            if line is None:
                break
        line = line.rstrip("\r\n").strip()
        if not line:
            continue
        if line.startswith("/") and not line.startswith("//"):
            cmd = line.split()[0].lower()
            if cmd in ("/quit", "/exit", "/q"):
                break
            if cmd in ("/reset", "/new"):
                session.reset()
                print("(conversation reset)", file=sys.stderr)
            elif cmd == "/history":
                print("\n".join(f"{'you' if i % 2 == 0 else 'bot'}: {t}" for i, t in enumerate(session.history))
                      or "(no history)", file=sys.stderr)
            else:
                print(("" if cmd == "/help" else f"unknown command {cmd}\n") + CHAT_HELP, file=sys.stderr)
            continue
        reply = session.say(line[1:] if line.startswith("//") else line)
        print(f"bot> {reply}" if tty else reply, flush=True)


def main(argv: list[str] | None = None) -> int:
    try:
        return recipe_main(argv, task=TASK, schema=Config, description=__doc__, train=train, evaluate=evaluate,
                           predict=predict, extra_modes={"chat": chat})
    except (DataError, CheckpointError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
