"""Translation: a BiLSTM encoder and an attention LSTM decoder on subwords, scored with sacreBLEU.

Data: Multi30k (raw gzipped text under ``$SEQNLP_DATA/translation/multi30k``) or any Hub dataset with
one column per language (``bentrevett/multi30k``) or a WMT/IWSLT-style ``translation`` dict column
(``data.name=wmt/wmt16 data.subset=de-en``). Subwords: byte-level BPE or Unigram from ``tokenizers``,
joint or separate vocabularies, trained on the training split. Model: :func:`seqnlp.tasks.seq2seq.build_seq2seq`
(Bahdanau or Luong attention, optional input feeding, bridge, tied output layer, label smoothing).
Search: :mod:`seqnlp.search` through :mod:`seqnlp.recipes._seq2seq` (greedy, batched beam, sampling).
Evaluation: cased detokenised sacreBLEU and chrF with their signatures; hypotheses written to a file;
an attention heatmap of a few test sentences.

    python recipes/translation.py --config recipes/configs/translation/multi30k_de_en.yaml
    python recipes/translation.py --mode evaluate --model runs/multi30k_de_en [search.beam_size=10]
    echo "Ein Hund rennt." | python recipes/translation.py --mode predict --model runs/multi30k_de_en
    python recipes/translation.py --mode attention --model runs/multi30k_de_en --input sents.txt --output att.png
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import ConfigError, from_dict, to_dict
from ..data.batching import BatchIterator, TokenBucketSampler
from ..data.errors import DataError
from ..data.loading import DataSpec, load_splits
from ..data.readers import open_text
from ..tasks.seq2seq import Seq2Seq, build_seq2seq
from ..train.checkpoint import CheckpointError, load_train_state, load_weights, read_config, resolve
from ..train.device import autocast, pick_device, pick_dtype, seed_everything, set_threads
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
from ._seq2seq import (
    EncodeStats,
    SearchConfig,
    Seq2SeqCollate,
    decode_texts,
    encode_pairs,
    encode_sources,
    load_tokenizers,
    score,
    tokenizer_files,
    train_tokenizers,
)

TASK = "translation"


# ------------------------------------------------------------------------------------------- config
@dataclass
class DataConfig:
    name: str = "translation/multi30k"  # local dir (under $SEQNLP_DATA) or a Hub id
    format: str = "parallel"  # parallel ({split}.{lang}[.gz] files) | auto (Hub, tabular files)
    subset: str | None = None  # Hub config, e.g. de-en
    src_lang: str = "de"
    tgt_lang: str = "en"
    splits: dict[str, str] = field(default_factory=dict)  # our split -> file prefix / Hub split
    columns: dict[str, str] = field(default_factory=dict)  # source/target -> column (e.g. translation.de)
    val_carve: int = 1000  # carve a validation set out of train when the data has none
    train_limit: int = 0  # use only the first N training pairs (0: all)
    eval_limit: int = 0  # use only the first N validation/test pairs (0: all)
    tokenizer: str = "bpe"  # bpe | unigram
    vocab_size: int = 8000
    joint_vocab: bool = True
    min_freq: int = 2
    max_src_len: int = 100  # subword tokens incl. </s>; longer sources are truncated (counted)
    max_tgt_len: int = 100  # training targets incl. </s>; longer are truncated (counted)
    max_tokens: int = 2000  # padded tokens per training batch (max of both sides)
    max_sentences: int = 0  # sentences per training batch (0: no cap)


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
    share_src_tgt_embeddings: bool = False  # needs data.joint_vocab
    label_smoothing: float = 0.1


def _train_defaults() -> TrainConfig:
    return TrainConfig(optimizer="adam", lr=1e-3, eval_metric="bleu", eval_mode="max", scheduler="plateau",
                       plateau_factor=0.5, plateau_patience=1, patience=6, epochs=30, clip_grad_norm=1.0)


@dataclass
class Config:
    task: str = TASK
    output_dir: str = "runs/translation"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    search: SearchConfig = field(default_factory=SearchConfig)  # test evaluation, predict
    train: TrainConfig = field(default_factory=_train_defaults)
    val_search: str = "greedy"  # search during training's validation (BLEU): greedy | beam
    # After training, pick search.beam_size x search.length_penalty by validation BLEU over these grids (an empty
    # grid keeps search.*'s value) and decode test with the choice; every grid point goes into metrics.json.
    tune_beam_sizes: list[int] = field(default_factory=list)
    tune_length_penalties: list[float] = field(default_factory=list)
    decode_precision: str = "fp32"  # test/predict decoding: fp32 | bf16 (autocast; CPUs with AMX, CUDA)
    attention_plot: int = 3  # heatmap of the first N test sentences (0: none)
    # Stop after this much CPU time of training steps (process time, all threads; evaluation excluded), 0: off.
    # Unlike train.max_minutes (wall time) it does not shrink when other jobs share the machine's cores.
    cpu_minutes: float = 0.0
    init_from: str = ""  # start from a trained model's weights and tokenizers
    record: bool = False  # copy result.json to results/translation/<config>.json


# ------------------------------------------------------------------------------------------- model
def model_args(m: ModelConfig, src_vocab: int, tgt_vocab: int, pad_id: int) -> dict:
    """Plain constructor arguments of the model (stored in the checkpoint as ``model_args``)."""
    return dict(src_vocab=src_vocab, tgt_vocab=tgt_vocab, emb_size=m.emb_size, hidden_size=m.hidden_size,
                enc_layers=m.enc_layers, dec_layers=m.dec_layers, attention=m.attention,
                attention_size=m.attention_size, input_feeding=m.input_feeding, dropout=m.dropout,
                emb_dropout=m.emb_dropout, tie_embeddings=m.tie_embeddings,
                share_src_tgt_embeddings=m.share_src_tgt_embeddings, label_smoothing=m.label_smoothing,
                pad_id=pad_id)


def build_model(args: dict) -> Seq2Seq:
    """The one place where model arguments become modules."""
    return build_seq2seq(**args)


# ------------------------------------------------------------------------------------------- data
def load_data(d: DataConfig) -> dict[str, list[dict]]:
    """``{"train", "validation", "test"}`` lists of ``{"source", "target"}`` (test falls back to validation)."""
    spec = DataSpec(d.name, format=d.format, subset=d.subset, splits=dict(d.splits), columns=dict(d.columns),
                    src_lang=d.src_lang, tgt_lang=d.tgt_lang, carve={"validation": d.val_carve})
    splits = load_splits(spec)
    if "train" not in splits:
        raise DataError(f"no train split (found {sorted(splits)})", d.name)
    if "test" not in splits:
        print(f"note: {d.name} has no test split; the validation split is used as test", file=sys.stderr)
        splits["test"] = splits["validation"]
    if d.train_limit:
        splits["train"] = splits["train"][: d.train_limit]
    if d.eval_limit:
        for s in ("validation", "test"):
            splits[s] = splits[s][: d.eval_limit]
    return splits


def _report(stats: EncodeStats, what: str) -> None:
    print(stats.message(what), file=sys.stderr)


# ------------------------------------------------------------------------------------------- predictor
class Translator:
    """A trained model with its tokenizers: ``translate(["Ein Hund läuft."]) -> ["A dog runs."]``.

    Returned by ``seqnlp.load(run_dir)``. Sources longer than ``max_src_len`` subwords are truncated (the
    number is kept in ``last_stats``); empty sources give empty translations.
    """

    def __init__(self, model: Seq2Seq, src_tok, tgt_tok, search: SearchConfig, max_src_len: int,
                 device: torch.device, amp_dtype: torch.dtype | None = None):
        self.model, self.src_tok, self.tgt_tok = model.eval(), src_tok, tgt_tok
        self.search, self.max_src_len, self.device = search, max_src_len, device
        self.amp_dtype = amp_dtype  # autocast dtype of decoding (the training precision), None: fp32
        self.last_stats = EncodeStats()

    def translate_nbest(self, sentences: list[str], search: SearchConfig | None = None,
                        progress: bool = False) -> list[list[tuple[str, float]]]:
        srcs, self.last_stats = encode_sources(self.src_tok, sentences, self.max_src_len)
        with autocast(self.device, self.amp_dtype):
            out = decode_texts(self.model, self.tgt_tok, srcs, search or self.search, device=self.device,
                               progress=progress, desc="translate")
        return out.nbest

    def translate(self, sentences: list[str], search: SearchConfig | None = None,
                  progress: bool = False) -> list[str]:
        return [n[0][0] for n in self.translate_nbest(sentences, search, progress)]

    predict = translate

    @torch.no_grad()
    def attention(self, sentences: list[str]) -> list[tuple[list[str], list[str], torch.Tensor]]:
        """Greedy translations with their attention: ``(source pieces, target pieces, weights (T, S))``."""
        greedy = SearchConfig(**{**to_dict(self.search), "method": "greedy", "n_best": 1})
        srcs, _ = encode_sources(self.src_tok, sentences, self.max_src_len)
        hyp_ids = [self.tgt_tok.encode(h) for h in self.translate(sentences, greedy)]
        collate = Seq2SeqCollate(self.tgt_tok.pad_id, self.tgt_tok.bos_id, self.tgt_tok.eos_id)
        batch = collate(list(zip(srcs, hyp_ids))).to(self.device)
        _, w = self.model(batch)
        out = []
        for i, (s, h) in enumerate(zip(srcs, hyp_ids)):
            src_pieces = [piece_text(self.src_tok, t) for t in s]
            tgt_pieces = [piece_text(self.tgt_tok, t) for t in h] + ["</s>"]
            out.append((src_pieces, tgt_pieces, w[i, : len(h) + 1, : len(s)].float().cpu()))
        return out


def load_predictor(ckpt_dir, device: str = "cpu") -> Translator:
    ckpt = resolve(ckpt_dir)
    stored = read_config(ckpt)
    cfg = from_dict(Config, stored["config"])
    return _load(ckpt, cfg, pick_device(device))


def _load(ckpt: Path, cfg: Config, device: torch.device) -> Translator:
    set_threads(cfg.train.threads)
    stored = read_config(ckpt)
    model = build_model(stored["model_args"])
    load_weights(model, ckpt)
    src_tok, tgt_tok = load_tokenizers(ckpt)
    return Translator(model.to(device), src_tok, tgt_tok, cfg.search, cfg.data.max_src_len, device,
                      pick_dtype(cfg.decode_precision, device))


def _byte_level_table() -> dict[str, int]:
    """Byte-level BPE's printable stand-ins -> the bytes they stand for (GPT-2's ``bytes_to_unicode``)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    cs, n = list(bs), 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


_BYTE_OF = _byte_level_table()


def piece_text(tok, i: int) -> str:
    """A readable label for subword ``i``: its text, spaces shown as ``▁``, partial UTF-8 and control characters
    as ``\\xNN`` escapes."""
    piece = tok.id_to_token(i) or "?"
    if piece.startswith("<") and piece.endswith(">"):
        return piece
    if all(ch in _BYTE_OF for ch in piece):
        piece = bytes(_BYTE_OF[ch] for ch in piece).decode("utf-8", errors="backslashreplace")
    return "".join(("▁" if ch == " " else ch) if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in piece)


def plot_attention(items: list[tuple[list[str], list[str], torch.Tensor]], path: str | Path) -> Path:
    """Attention heatmaps (target rows × source columns), one panel per sentence, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(items)
    widths = [max(4.0, 0.35 * len(s) + 1.5) for s, _, _ in items]
    heights = [max(3.0, 0.3 * len(t) + 1.5) for _, t, _ in items]
    fig, axes = plt.subplots(n, 1, figsize=(max(widths), sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (src, tgt, w) in zip(axes[:, 0], items):
        ax.imshow(w.numpy(), cmap="viridis", aspect="auto", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(src)), src, rotation=90, fontsize=8)
        ax.set_yticks(range(len(tgt)), tgt, fontsize=8)
        ax.set_xlabel("source subwords")
        ax.set_ylabel("output subwords")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # glyphs the font lacks (CJK, emoji) are drawn as boxes, not errors
        warnings.simplefilter("ignore", UserWarning)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ------------------------------------------------------------------------------------------- training
class CPUBudgetTrainer(Trainer):
    """:class:`Trainer` that also stops after ``cpu_minutes`` of CPU time spent in training steps.

    ``time.process_time()`` (CPU seconds of this process, all threads) is summed around each step, kept in the
    checkpoint's training state (exact resume) and logged with the end record. With one torch thread a CPU
    minute is a minute of one core, whatever else runs on the machine.
    """

    def __init__(self, *args, cpu_minutes: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.cpu_minutes = cpu_minutes
        self.train_cpu_seconds = 0.0

    def _train_step(self, batch):
        c0 = time.process_time()
        out = super()._train_step(batch)
        self.train_cpu_seconds += time.process_time() - c0
        return out

    def _done(self) -> str | None:
        reason = super()._done()
        if reason is None and self.cpu_minutes and self.train_cpu_seconds >= self.cpu_minutes * 60:
            return "cpu_minutes"
        return reason

    def _train_state(self) -> dict:
        return {**super()._train_state(), "train_cpu_seconds": self.train_cpu_seconds}

    def maybe_resume(self) -> bool:
        resumed = super().maybe_resume()
        if resumed:
            self.train_cpu_seconds = float(load_train_state(self.ckpt_root / "latest").get("train_cpu_seconds", 0.0))
        return resumed

    def log(self, record: dict) -> None:
        if record.get("event") == "end":
            record = {**record, "train_cpu_seconds": self.train_cpu_seconds}
        super().log(record)


def _val_loss(model: Seq2Seq, batches: BatchIterator, device: torch.device) -> float:
    total, n = 0.0, 0
    for batch in batches:
        loss, k = model.loss(batch.to(device))
        total += float(loss) * k
        n += k
    return total / max(n, 1)


def train(cfg: Config, config_path: str | None) -> dict:
    """Train, keep the checkpoint with the best validation BLEU, evaluate it on test; returns the metrics."""
    t_start = time.time()
    out = prepare_run(cfg, config_path)
    set_threads(cfg.train.threads)
    seed_everything(cfg.train.seed)  # before any model or data randomness
    d = cfg.data
    splits = load_data(d)
    if cfg.model.share_src_tgt_embeddings and not d.joint_vocab:
        raise ConfigError("model.share_src_tgt_embeddings=true needs data.joint_vocab=true")
    if cfg.init_from:
        src_tok, tgt_tok = load_tokenizers(resolve(cfg.init_from))
    else:
        try:
            src_tok, tgt_tok = train_tokenizers(d.tokenizer, d.vocab_size, d.joint_vocab,
                                                [e["source"] for e in splits["train"]],
                                                [e["target"] for e in splits["train"]], d.min_freq)
        except ValueError as e:
            raise ConfigError(f"data.tokenizer / data.vocab_size: {e}") from None
    train_pairs, st = encode_pairs(src_tok, tgt_tok, splits["train"], max_src_len=d.max_src_len,
                                   max_tgt_len=d.max_tgt_len, skip_empty=True, where=f"{d.name}[train]")
    _report(st, "train")
    val_pairs, vst = encode_pairs(src_tok, tgt_tok, splits["validation"], max_src_len=d.max_src_len,
                                  max_tgt_len=d.max_tgt_len,
                                  skip_empty=False, where=f"{d.name}[validation]")
    _report(vst, "validation")
    collate = Seq2SeqCollate(tgt_tok.pad_id, tgt_tok.bos_id, tgt_tok.eos_id)
    sampler = TokenBucketSampler([max(len(s), len(t) + 1) for s, t in train_pairs], max_tokens=d.max_tokens,
                                 max_sentences=d.max_sentences or None, seed=cfg.train.seed)
    batches = BatchIterator(train_pairs, sampler, collate)
    val_batches = BatchIterator(val_pairs, TokenBucketSampler([len(s) for s, _ in val_pairs], d.max_tokens * 2,
                                                              shuffle=False), collate)
    args = model_args(cfg.model, src_tok.vocab_size, tgt_tok.vocab_size, tgt_tok.pad_id)
    model = build_model(args)
    if cfg.init_from:
        load_weights(model, resolve(cfg.init_from))
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f}M parameters; vocab {src_tok.vocab_size}/{tgt_tok.vocab_size}; "
          f"{len(train_pairs)} training pairs, {len(sampler)} batches an epoch", file=sys.stderr)

    val_srcs = [s for s, _ in val_pairs]
    val_refs = [e["target"] for e in splits["validation"]]
    val_search = SearchConfig(**{**to_dict(cfg.search), "method": cfg.val_search, "n_best": 1})
    eval_seconds = [0.0]

    def evaluate_fn(m: Seq2Seq) -> dict:
        t0 = time.time()
        device = next(m.parameters()).device
        loss = _val_loss(m, val_batches, device)
        hyps = decode_texts(m, tgt_tok, val_srcs, val_search, device=device, progress=cfg.train.progress,
                            desc="validate").best
        sc = score(hyps, val_refs)
        eval_seconds[0] += time.time() - t0
        return {"loss": loss, "ppl": math.exp(min(loss, 50)), "bleu": sc["bleu"], "chrf": sc["chrf"]}

    ckpt_config = {"task": TASK, "config": to_dict(cfg), "model_args": args,
                   "src_vocab_size": src_tok.vocab_size, "tgt_vocab_size": tgt_tok.vocab_size}
    trainer = CPUBudgetTrainer(model, batches, cfg.train, out, evaluate_fn, ckpt_config,
                               tokenizer_files(src_tok, tgt_tok), cpu_minutes=cfg.cpu_minutes)
    summary = trainer.fit()

    best = resolve(out / "checkpoints")
    translator = _load(best, cfg, trainer.device)
    search, tuning = tune_search(translator, splits["validation"], cfg)
    metrics = evaluate_split(translator, splits["test"], out / "hyps.test.txt", progress=cfg.train.progress,
                             search=search)
    if tuning:
        metrics["search_tuning"] = tuning
    metrics.update({
        "val_bleu_best": summary["best"], "steps": summary["steps"], "stop_reason": summary["reason"],
        "train_minutes": round(summary["train_seconds"] / 60, 2), "eval_minutes": round(eval_seconds[0] / 60, 2),
        "train_cpu_minutes": round(trainer.train_cpu_seconds / 60, 2), "threads": torch.get_num_threads(),
        "epochs": round(summary["steps"] / max(len(sampler), 1), 2), "parameters": n_params,
        "train_skipped_empty": st.skipped_empty, "train_src_truncated": st.src_truncated,
        "train_tgt_truncated": st.tgt_truncated, "checkpoint": best.name,
    })
    write_json(out / "metrics.json", metrics)
    if cfg.attention_plot:
        sents = [e["source"] for e in splits["test"][: cfg.attention_plot]]
        plot_attention(translator.attention(sents), out / "attention.png")
    rec = record_result(TASK, config_path, out, metrics, time.time() - t_start)
    if cfg.record:
        save_result_copy(rec, TASK, config_name(config_path))
    print(f"test: BLEU {metrics['bleu']} chrF {metrics['chrf']} ({metrics['signature']})")
    return metrics


def tune_search(translator: Translator, examples: list[dict], cfg: Config) -> tuple[SearchConfig, dict | None]:
    """The beam size and length penalty with the best BLEU on ``examples`` (validation) over the config's
    grids; ``(cfg.search, None)`` when both grids are empty. Ties keep the earlier grid point."""
    if not (cfg.tune_beam_sizes or cfg.tune_length_penalties) or cfg.search.method != "beam":
        return cfg.search, None
    grid = []
    for beam in cfg.tune_beam_sizes or [cfg.search.beam_size]:
        for lp in cfg.tune_length_penalties or [cfg.search.length_penalty]:
            s = SearchConfig(**{**to_dict(cfg.search), "beam_size": int(beam), "length_penalty": float(lp)})
            sc = evaluate_split(translator, examples, None, progress=False, search=s)
            grid.append({"beam_size": s.beam_size, "length_penalty": s.length_penalty, "bleu": sc["bleu"],
                         "chrf": sc["chrf"]})
            print(f"validation, beam {s.beam_size}, length penalty {s.length_penalty}: BLEU {sc['bleu']}",
                  file=sys.stderr)
    best = max(grid, key=lambda g: g["bleu"])  # max keeps the first of equal scores
    chosen = SearchConfig(**{**to_dict(cfg.search), "beam_size": best["beam_size"],
                             "length_penalty": best["length_penalty"]})
    return chosen, {"split": "validation", "grid": grid, "chosen": {k: best[k] for k in ("beam_size",
                                                                                          "length_penalty")}}


def evaluate_split(translator: Translator, examples: list[dict], hyps_path: Path | None,
                   progress: bool = True, search: SearchConfig | None = None) -> dict:
    """Translate ``examples``' sources, score against their targets, write the hypotheses (one a line)."""
    hyps = translator.translate([e["source"] for e in examples], search, progress=progress)
    st = translator.last_stats
    if st.src_truncated or st.empty_sources:
        _report(st, "evaluation")
    sc = score(hyps, [e["target"] for e in examples])
    if hyps_path is not None:
        Path(hyps_path).write_text("".join(one_line(h) + "\n" for h in hyps), newline="\n")
    s = search or translator.search
    sc.update({"search": s.method, "beam_size": s.beam_size if s.method == "beam" else 1,
               "length_penalty": s.length_penalty, "sentences": len(hyps),
               "src_truncated": st.src_truncated, "empty_sources": st.empty_sources})
    return sc


# ------------------------------------------------------------------------------------------- evaluate / predict

def evaluate(model_dir, args) -> dict:
    """Score a trained model on ``--split`` (default test): prints and writes ``eval_<split>.json``."""
    ckpt, cfg = stored_config(model_dir, args.overrides, TASK, Config)
    translator = _load(ckpt, cfg, pick_device(cfg.train.device))
    splits = load_data(cfg.data)
    if args.split not in splits:
        raise DataError(f"no split {args.split!r} (have {sorted(splits)})", cfg.data.name)
    where = Path(model_dir) if Path(model_dir).is_dir() else ckpt
    hyps_path = Path(args.output) if args.output != "-" else where / f"hyps.{args.split}.txt"
    t0 = time.time()
    metrics = evaluate_split(translator, splits[args.split], hyps_path)
    metrics["decode_seconds"] = round(time.time() - t0, 2)
    write_json(where / f"eval_{args.split}.json", metrics)
    print(f"{args.split}: BLEU {metrics['bleu']} chrF {metrics['chrf']}\n{metrics['signature']}\n"
          f"hypotheses: {hyps_path}")
    return metrics



def _read_input(path: str) -> list[str]:
    if path == "-":
        return [line.rstrip("\r\n") for line in sys.stdin]
    return list(open_text(path))


def predict(model_dir, args) -> None:
    """Translate ``--input`` (a file, default stdin), one sentence a line, to ``--output`` (default stdout).

    With ``search.n_best=N`` (N > 1) each line is ``i ||| translation ||| score`` (N lines per input).
    """
    ckpt, cfg = stored_config(model_dir, args.overrides, TASK, Config)
    translator = _load(ckpt, cfg, pick_device(cfg.train.device))
    lines = _read_input(args.input)
    nbest = translator.translate_nbest(lines, progress=args.output != "-")
    st = translator.last_stats
    if st.src_truncated:
        print(f"note: {st.src_truncated} of {st.examples} inputs were longer than data.max_src_len="
              f"{cfg.data.max_src_len} subwords and were truncated", file=sys.stderr)
    if cfg.search.n_best > 1:
        text = "".join(f"{i} ||| {one_line(h)} ||| {s:.4f}\n" for i, n in enumerate(nbest) for h, s in n)
    else:
        text = "".join(one_line(n[0][0]) + "\n" for n in nbest)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, newline="\n")


def attention(model_dir, args) -> None:
    """Heatmap of the attention of the model's greedy translations of ``--input`` lines (PNG to ``--output``)."""
    ckpt, cfg = stored_config(model_dir, args.overrides, TASK, Config)
    translator = _load(ckpt, cfg, pick_device(cfg.train.device))
    lines = [s for s in _read_input(args.input) if s.strip()][: args.max_sentences]
    if not lines:
        raise DataError("no non-empty sentences to plot", args.input)
    path = args.output if args.output != "-" else "attention.png"
    print(f"wrote {plot_attention(translator.attention(lines), path)}")


def _add_args(p) -> None:
    p.add_argument("--max-sentences", type=int, default=4, help="attention mode: sentences to plot")


def main(argv: list[str] | None = None) -> int:
    try:
        return recipe_main(argv, task=TASK, schema=Config, description=__doc__, train=train, evaluate=evaluate,
                           predict=predict, extra_modes={"attention": attention}, add_args=_add_args)
    except (DataError, CheckpointError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
