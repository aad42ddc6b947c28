"""Translation (many-to-many): the task module (see :mod:`seqnlp.tasks.base`).

A BiLSTM encoder and an attention LSTM decoder on subwords (:mod:`seqnlp.tasks.seq2seq`), decoded by
:mod:`seqnlp.search` (greedy, batched beam search, sampling) and scored with cased, detokenised sacreBLEU and
chrF. Data: Multi30k (raw gzipped text under ``$SEQNLP_DATA/translation/multi30k``), any Hub dataset with one
column per language (``bentrevett/multi30k``) or a WMT/IWSLT-style ``translation`` dict column
(``data.name=wmt/wmt16 data.subset=de-en``).

A predict input is one sentence; its result is ``{"translation": str, "nbest": [{"text", "score"}]}`` (a
blank line: ``""`` and no hypotheses). ``--format nbest`` writes ``i ||| hypothesis ||| score`` lines
(``search.n_best=N``). ``seqnlp attention --model RUN --input sents.txt --output att.png`` draws the
attention of the greedy translations of a few sentences.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..config import ConfigError
from ..data.errors import DataError
from ..data.loading import DataSpec, load_splits
from ..data.seq2seq import EncodeStats, Seq2SeqCollate, encode_sources, finish_splits, load_tokenizers
from ..metrics import bleu_chrf
from ..runner import read_lines
from ..search import SearchConfig
from ..train import checkpoint as ck
from ..train.loop import TrainConfig
from ..viz.attention import piece_text, plot_attention
from .base import Mode
from .seq2seq import (
    Seq2Seq,
    Seq2SeqConfig,
    Seq2SeqPredictor,
    build_seq2seq,
    note_truncated,
    train_defaults,
    write_nbest,
)

TASK = "translation"


# ------------------------------------------------------------------------------------------------ configs
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


ModelConfig = Seq2SeqConfig  # the model block (src_vocab, tgt_vocab and pad_id from the data)


@dataclass
class Config:
    task: str = TASK
    output_dir: str = "runs/translation"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    search: SearchConfig = field(default_factory=SearchConfig)  # test evaluation, predict
    train: TrainConfig = field(
        default_factory=lambda: train_defaults(eval_metric="bleu", eval_mode="max", patience=6, epochs=30))
    val_search: str = "greedy"  # search during training's validation (BLEU): greedy | beam
    # After training, pick search.beam_size x search.length_penalty by validation BLEU over these grids (an empty
    # grid keeps search.*'s value) and decode test with the choice; every grid point goes into metrics.json.
    tune_beam_sizes: list[int] = field(default_factory=list)
    tune_length_penalties: list[float] = field(default_factory=list)
    infer_precision: str = "fp32"  # fp32 | bf16 | fp16 | auto: evaluation and prediction (pick_dtype)
    attention_plot: int = 3  # heatmap of the first N test sentences (0: none)
    # Stop after this much CPU time of training steps (process time, all threads; evaluation excluded), 0: off.
    # Unlike train.max_minutes (wall time) it does not shrink when other jobs share the machine's cores.
    cpu_minutes: float = 0.0
    init_from: str = ""  # start from a trained model's weights and tokenizers


def build_model(m: ModelConfig) -> Seq2Seq:
    """The one place where a model config becomes modules (:func:`~seqnlp.tasks.seq2seq.build_seq2seq`)."""
    return build_seq2seq(m)


# the decoder's attention (seqnlp.nn.attention.build_attention; none: the plain encoder-decoder)
ATTENTIONS = ("bahdanau", "luong_general", "luong_dot", "luong", "none")


def check_config(cfg: Config) -> None:
    """A :class:`ConfigError` for options that do not go together, and -- naming the key and its allowed values --
    for one that cannot be right whatever the data (``data.format``, ``data.tokenizer``, ``model.attention``,
    ``val_search``, ``train.*`` ...); :func:`load_data` calls it before reading anything."""
    from ..config import check_choice, check_fraction, check_run
    from ..data.loading import check_data_config
    from ..data.seq2seq import SUBWORD_KINDS
    from ..search import SEARCH_METHODS

    check_data_config(cfg.data)
    check_fraction(cfg.data.val_carve, "data.val_carve", whole=True)
    check_choice(cfg.data.tokenizer, SUBWORD_KINDS, "data.tokenizer")
    check_choice(cfg.model.attention, ATTENTIONS, "model.attention")
    check_choice(cfg.search.method, SEARCH_METHODS, "search.method")
    check_choice(cfg.val_search, SEARCH_METHODS, "val_search")
    check_run(cfg)
    if cfg.model.share_src_tgt_embeddings and not cfg.data.joint_vocab:
        raise ConfigError("model.share_src_tgt_embeddings=true needs data.joint_vocab=true")


def upgrade_v1(stored: ck.Stored) -> None:
    """Format-1 checkpoints named the inference precision ``decode_precision``."""
    if "decode_precision" in stored.config:
        stored.config["infer_precision"] = stored.config.pop("decode_precision")


# ------------------------------------------------------------------------------------------------ data
def load_data(cfg: Config) -> dict[str, list[dict]]:
    """``{"train", "validation", "test"}`` lists of ``{"source", "target"}`` (test falls back to validation)."""
    check_config(cfg)
    d = cfg.data
    spec = DataSpec(d.name, format=d.format, subset=d.subset, splits=dict(d.splits), columns=dict(d.columns),
                    src_lang=d.src_lang, tgt_lang=d.tgt_lang, carve={"validation": d.val_carve})
    return finish_splits(load_splits(spec), d.name, d.train_limit, d.eval_limit)


# ------------------------------------------------------------------------------------------------ predictor
class Translator(Seq2SeqPredictor):
    """A trained model with its tokenizers: ``predict(["Ein Hund läuft."])[0]["translation"] -> "A dog runs."``.

    Sources longer than ``data.max_src_len`` subwords are truncated (counted in ``last_stats``, said on
    stderr); blank sources give empty translations.
    """

    result_key = "translation"
    desc = "translate"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_src_len = self.config.data.max_src_len
        self.last_stats = EncodeStats()

    def encode(self, inputs: list) -> tuple[list[list[int]], list[bool]]:
        for i, x in enumerate(inputs):
            if not isinstance(x, str):
                raise TypeError(f"inputs[{i}]: a translation input is a string (a sentence), got {type(x).__name__}")
        srcs, self.last_stats = encode_sources(self.src_tok, inputs, self.max_src_len)
        note_truncated(self.last_stats.src_truncated, len(inputs),
                       f"were longer than data.max_src_len={self.max_src_len} subwords and were truncated")
        return srcs, [not x.strip() for x in inputs]

    def translate(self, sentences: list[str], search: SearchConfig | None = None,
                  progress: bool = False) -> list[str]:
        """The best translation of every sentence, empty and over-long ones included (what evaluation scores)."""
        srcs, self.last_stats = encode_sources(self.src_tok, sentences, self.max_src_len)
        return [n[0][0] for n in self.decode(srcs, search, progress)]

    @torch.no_grad()
    def attention(self, sentences: list[str]) -> list[tuple[list[str], list[str], torch.Tensor]]:
        """Greedy translations with their attention: ``(source pieces, target pieces, weights (T, S))``.

        Raises:
            ConfigError: the model has no attention (``model.attention=none``)."""
        if self.config.model.attention == "none":
            raise ConfigError("this model has no attention to draw (model.attention=none)")
        greedy = replace(self.search, method="greedy", n_best=1)
        srcs, _ = encode_sources(self.src_tok, sentences, self.max_src_len)
        hyp_ids = [self.tgt_tok.encode(h) for h in self.translate(sentences, greedy)]
        batch = Seq2SeqCollate.of(self.tgt_tok)(list(zip(srcs, hyp_ids))).to(self.device)
        _, w = self.model(batch)
        out = []
        for i, (s, h) in enumerate(zip(srcs, hyp_ids)):
            src_pieces = [piece_text(self.src_tok, t) for t in s]
            tgt_pieces = [piece_text(self.tgt_tok, t) for t in h] + ["</s>"]
            out.append((src_pieces, tgt_pieces, w[i, : len(h) + 1, : len(s)].float().cpu()))
        return out


def load_predictor(ckpt: Path, stored: ck.Stored, cfg: Config, device: torch.device) -> Translator:
    src_tok, tgt_tok = load_tokenizers(ckpt)
    return Translator.load(Path(ckpt), stored, cfg, device, src_tok, tgt_tok)


def format_text(result: dict) -> str:
    return result["translation"]


OUTPUT_FORMATS = {"nbest": write_nbest}


# ------------------------------------------------------------------------------------------------ evaluation
def evaluate_split(translator: Translator, examples: list[dict], search: SearchConfig | None = None,
                   progress: bool = False) -> tuple[dict, list[str]]:
    """Translate ``examples``' sources and score them against their targets: ``(metrics, hypotheses)``."""
    hyps = translator.translate([e["source"] for e in examples], search, progress=progress)
    st = translator.last_stats
    if st.src_truncated or st.empty_sources:
        print(st.message("evaluation"), file=sys.stderr)
    sc = bleu_chrf(hyps, [e["target"] for e in examples])
    s = search or translator.search
    sc.update({"search": s.method, "beam_size": s.beam_size if s.method == "beam" else 1,
               "length_penalty": s.length_penalty, "sentences": len(hyps),
               "src_truncated": st.src_truncated, "empty_sources": st.empty_sources})
    return sc, hyps


def evaluate(predictor: Translator, split: str) -> dict:
    """BLEU and chrF of the predictor's search on ``split`` of its data config."""
    splits = load_data(predictor.config)
    if split not in splits:
        raise DataError(f"no split {split!r} (have {sorted(splits)})", predictor.config.data.name)
    t0 = time.time()
    metrics, _ = evaluate_split(predictor, splits[split], progress=True)
    metrics["decode_seconds"] = round(time.time() - t0, 2)
    return metrics


def summary(metrics: dict) -> str:
    return f"{metrics.get('split', 'test')}: BLEU {metrics['bleu']} chrF {metrics['chrf']}\n{metrics['signature']}"


# ------------------------------------------------------------------------------------------------ attention mode
def _attention_args(p) -> None:
    p.add_argument("--max-sentences", type=int, default=4, help="sentences to plot (the first non-empty lines)")


def _attention_run(predictor: Translator, args) -> None:
    lines = [s for s in read_lines(args.input) if s.strip()][: args.max_sentences]
    if not lines:
        raise DataError("no non-empty sentences to plot", args.input)
    path = args.output if args.output != "-" else "attention.png"
    print(f"wrote {plot_attention(predictor.attention(lines), path)}")


EXTRA_MODES = {"attention": Mode("heatmaps of the attention of the greedy translations of --input lines (a PNG "
                                 "to --output, default attention.png)", _attention_args, _attention_run)}
