"""The char generator task (one-to-many): a character-level language model that continues a prompt.

One of three models of the lecture (``model.cell``): ``window`` (an MLP over the l previous characters, the
one-to-one baseline), ``rnn`` (the simple Elman network), ``lstm`` (and ``gru``). With a condition column in
the data every document is its own sequence and its condition initialises the state, so the model writes "in
the style of" a condition.

    gen = seqnlp.load("runs/char_tinyshakespeare", overrides=["sample.chars=200"])
    gen.predict(["ROMEO:", ""])      # [{"prompt": "ROMEO:", "text": "..."}, {"prompt": "", "text": "..."}]
    seqnlp predict --model RUN sample.chars=200 sample.temperature=0.7 sample.seed=3 < prompts.txt
    seqnlp gates --model RUN --text "First Citizen:" --units auto --output gates.png   # or gates.html

The sampling settings are the run config's ``sample`` block; the k-th prompt of one call is sampled with
``sample.seed + k``, so the same call gives the same text every time on one machine.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from ..config import ConfigError
from ..data.chars import (
    DOCUMENTS,
    STREAM,
    CharCodec,
    CharData,
    document_pieces,
    load_char_data,
    piece_batches,
    read_text_file,
)
from ..data.errors import DataError
from ..data.tokenizers import Tokenizer
from ..metrics import bits_per_char
from ..nn.embeddings import Embeddings
from ..nn.weight_drop import WeightDropGRU, WeightDropLSTM, WeightDropRNN
from ..nn.window import WindowEncoder
from ..train import checkpoint as ck
from ..train.device import autocast, pick_dtype
from ..train.loop import TrainConfig
from ..viz.gates import pick_units, render_html, render_png
from .base import Mode, as_inputs
from .lm import CausalWindow, LanguageModel, batches_loss, generate, lstm_activations, stream_loss

TASK = "char_generator"
TOKENIZER_FILE = "tokenizer.json"
CELLS = ("lstm", "gru", "rnn", "window")


# ------------------------------------------------------------------------------------------------ configs
@dataclass
class DataConfig:
    # a text file (under $SEQNLP_DATA, absolute or relative), a tabular file or directory, or a Hub id
    name: str = "char/tinyshakespeare/input.txt"
    format: str = "auto"  # auto: a .txt/suffix-less file is read whole; csv | tsv | jsonl | parquet | ... | txt
    subset: str | None = None  # Hub config name
    splits: dict[str, str] = field(default_factory=dict)  # our split -> file glob / Hub split (tabular/Hub data)
    text_column: str = "text"  # tabular/Hub data: the column holding the text
    condition_column: str = ""  # tabular/Hub data: a column (e.g. label) whose value initialises the state
    separator: str = "\n"  # joins the documents of tabular/Hub data into one stream
    validation_fraction: float = 0.1  # validation when the data has none: a text file's tail / random documents
    max_chars: int = 0  # use only the first N characters of the text (0: all); documents: of every split
    min_char_freq: int = 1  # rarer training characters become <unk>
    batch_size: int = 64  # parallel rows of the stream (documents: batch budget = batch_size * bptt chars)
    bptt: int = 128  # characters per training window (documents: longer documents are cut into such pieces)
    eval_rows: int = 8  # the validation/test text is read as this many rows, state carried through each


@dataclass
class ModelConfig:
    """The model's options and sizes: the builder's input and a checkpoint's ``model`` block."""

    cell: str = "lstm"  # lstm | gru | rnn (the simple Elman network) | window (MLP over the l previous chars)
    embed_dim: int = 64
    hidden: int = 512  # recurrent state size, or the window MLP's width
    layers: int = 2  # recurrent layers, or the window MLP's hidden layers
    window: int = 16  # window: l, the number of previous characters the MLP sees
    activation: str = "tanh"  # window MLP: tanh | relu | gelu | sigmoid
    dropout: float = 0.25  # between recurrent layers and before the output layer (window: on every MLP input)
    embed_dropout: float = 0.0
    weight_drop: float = 0.0  # DropConnect on the recurrent weights W_hh (AWD-LSTM's weight-dropped LSTM)
    tie_embeddings: bool = False  # share input and output character tables (+ a projection if hidden != embed_dim)
    param_budget: int = 0  # > 0: training chooses `hidden` so the model has about this many parameters
    vocab_size: int = 0  # from the data: characters + specials (set by training)
    num_conditions: int = 0  # from the data: conditions of a conditioned model (set by training)


@dataclass
class SampleConfig:
    """Sampling: ``seqnlp predict``'s settings, and the sample and gate picture written after training."""

    prompt: str = ""  # the training run's sample; empty: a newline (stream) / the start of a document
    chars: int = 600  # characters sampled per prompt
    temperature: float = 0.8
    top_k: int = 0  # sample among the k most likely characters (0: all)
    top_p: float = 1.0  # nucleus sampling mass (1.0: off)
    seed: int = 1  # the k-th prompt of a call uses seed + k: the same text every time on one machine
    condition: str = ""  # conditioned models: default the first condition
    gates_chars: int = 400  # LSTM: draw gates over this many validation characters (0: no picture)
    gates_units: list[int] = field(default_factory=list)  # empty: the 4 busiest units of the last layer


@dataclass
class Config:
    task: str = TASK
    output_dir: str = "runs/char_generator"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=50, lr=2e-3, optimizer="adamw", weight_decay=0.01, scheduler="cosine", clip_grad_norm=1.0,
        eval_every=500, log_every=50))
    sample: SampleConfig = field(default_factory=SampleConfig)
    init_from: str = ""  # start from the weights of a trained checkpoint with the same model config
    infer_precision: str = "fp32"  # evaluation and prediction: fp32 | bf16 | fp16 | auto


# ------------------------------------------------------------------------------------------------ model
def build_model(m: ModelConfig) -> LanguageModel:
    """The one place where a model config becomes modules."""
    if m.cell not in CELLS:
        raise ConfigError(f"model.cell must be one of {CELLS}, got {m.cell!r}")
    embed = Embeddings(m.vocab_size, m.embed_dim, padding_idx=0, dropout=m.embed_dropout)
    if m.cell == "window":
        encoder = CausalWindow(WindowEncoder(m.embed_dim, window_left=m.window - 1, window_right=0,
                                             hidden_size=m.hidden, num_layers=m.layers, dropout=m.dropout,
                                             activation=m.activation))
    else:
        rnn = {"lstm": WeightDropLSTM, "gru": WeightDropGRU, "rnn": WeightDropRNN}[m.cell]
        encoder = rnn(m.embed_dim, m.hidden, m.layers, batch_first=True, dropout=m.dropout if m.layers > 1 else 0.0,
                      weight_drop=m.weight_drop)
    return LanguageModel(embed, encoder, m.vocab_size, dropout=m.dropout if m.cell != "window" else 0.0,
                         tie_embeddings=m.tie_embeddings, num_conditions=m.num_conditions)


def count_parameters(m: ModelConfig) -> int:
    """Parameters of the model ``m`` describes (built on the meta device: no memory, no time)."""
    with torch.device("meta"):
        model = build_model(m)
    return sum(p.numel() for p in model.parameters())


def hidden_for_budget(m: ModelConfig, budget: int, multiple: int = 8) -> int:
    """The ``hidden`` (a multiple of ``multiple``) whose parameter count is closest to ``budget``."""
    def count(h: int) -> int:
        return count_parameters(replace(m, hidden=h))

    lo, hi = 1, 1
    while count(hi * multiple) < budget and hi < 1 << 14:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid * multiple) < budget else (lo, mid)
    return min((lo * multiple, hi * multiple), key=lambda h: abs(count(h) - budget))


def sized(m: ModelConfig, vocab_size: int, num_conditions: int) -> ModelConfig:
    """``m`` with the data's sizes, and ``param_budget`` (when > 0) resolved into ``hidden``."""
    m = replace(m, vocab_size=vocab_size, num_conditions=num_conditions)
    return replace(m, hidden=hidden_for_budget(m, m.param_budget)) if m.param_budget > 0 else m


# ------------------------------------------------------------------------------------------------ data
ACTIVATIONS = ("tanh", "relu", "gelu", "sigmoid")  # the window MLP's (seqnlp.nn.window.WindowEncoder)


def check_config(cfg: Config) -> None:
    """A :class:`ConfigError` naming the key and its allowed values for an option that cannot be right whatever the
    data (``data.format``, ``data.validation_fraction``, ``model.cell``, ``model.activation``, ``train.*`` ...);
    :func:`load_data` calls it before reading anything."""
    from ..config import check_choice, check_fraction, check_run
    from ..data.loading import check_data_config

    check_data_config(cfg.data)
    check_fraction(cfg.data.validation_fraction, "data.validation_fraction", whole=True)
    check_choice(cfg.model.cell, CELLS, "model.cell")
    check_choice(cfg.model.activation, ACTIVATIONS, "model.activation")
    check_run(cfg)


def load_data(cfg: Config) -> CharData:
    """The text of every split (see :func:`seqnlp.data.chars.load_char_data`)."""
    check_config(cfg)
    d = cfg.data
    return load_char_data(d.name, format=d.format, subset=d.subset, splits=d.splits, text_column=d.text_column,
                          condition_column=d.condition_column, separator=d.separator,
                          validation_fraction=d.validation_fraction, max_chars=d.max_chars)


def split_loss(model: LanguageModel, data: CharData, split: str, codec: CharCodec, d: DataConfig,
               device: torch.device, progress: bool = False) -> dict:
    """``{"loss": nats/char, "bits_per_char", "chars"}`` of one split."""
    if data.mode == STREAM:
        ids = torch.tensor(codec.encode(data.texts[split]))
        nll, n = stream_loss(model, ids, min(d.eval_rows, max(1, len(ids) // 2)), max(d.bptt, 256), device,
                             progress, desc=split)
    else:
        pieces = document_pieces(data.docs[split], codec, data.conditions, d.bptt)
        nll, n = batches_loss(model, piece_batches(pieces, d.batch_size * d.bptt, shuffle=False), device)
    return {"loss": nll, "bits_per_char": bits_per_char(nll), "chars": n}


# ------------------------------------------------------------------------------------------- predictor
class CharGenerator:
    """A trained generator with its characters: ``generate("ROMEO:", max_chars=200, seed=1)``.

    ``predict(prompts)`` returns one continuation per prompt with the ``sample`` settings of its config;
    ``gates(text)`` the explicit LSTM's activations over a text (per layer ``{"forget", "input", "output",
    "cell", ...}`` each (T, H)). Evaluation and sampling run in ``config.infer_precision``.
    """

    def __init__(self, model: LanguageModel, codec: CharCodec, mode: str, conditions: list[str],
                 device: torch.device, config: Config, checkpoint: Path | None = None):
        self.model = model.eval()
        self.codec = codec
        self.mode = mode
        self.conditions = list(conditions)
        self.device = device
        self.config = config
        self.checkpoint = checkpoint
        self.dtype = pick_dtype(config.infer_precision, device)

    def _cond(self, condition: str | None, n: int) -> torch.Tensor | None:
        if not self.conditions:
            if condition:
                raise DataError(f"this model has no conditions (got {condition!r})", field="condition")
            return None
        condition = condition or self.conditions[0]
        if condition not in self.conditions:
            raise DataError(f"unknown condition {condition!r}; the model knows {self.conditions}", field="condition")
        return torch.full((n,), self.conditions.index(condition), dtype=torch.long, device=self.device)

    def prompt_ids(self, prompt: str) -> list[int]:
        """Ids of a prompt; characters outside the vocabulary are a :class:`DataError` with a clear message."""
        ids = self.codec.encode_strict(prompt)
        if self.mode == DOCUMENTS:
            return [self.codec.tok.bos_id, *ids]
        return ids or self.codec.encode_strict("\n")

    def generate(self, prompt: str = "", max_chars: int = 500, temperature: float = 1.0, top_k: int = 0,
                 top_p: float = 1.0, seed: int | None = None, condition: str | None = None, n: int = 1,
                 on_text: Callable[[str], None] | None = None) -> list[str]:
        """``n`` continuations of ``prompt`` (without the prompt), sampled together.

        ``on_text`` receives the characters of the first continuation as they are sampled (for
        streaming them to a terminal). A fixed ``seed`` gives the same text every time on one machine.
        """
        ids = torch.tensor([self.prompt_ids(prompt)] * n, device=self.device)
        gen = None
        if seed is not None:
            gen = torch.Generator(device=self.device).manual_seed(seed)
        tok = self.codec.tok
        eos = tok.eos_id if self.mode == DOCUMENTS else None
        suppress = [tok.pad_id, tok.bos_id] + ([] if self.mode == DOCUMENTS else [tok.eos_id])
        rows: list[list[int]] = [[] for _ in range(n)]
        done = [False] * n
        with autocast(self.device, self.dtype):
            for tokens in generate(self.model, ids, max_chars, temperature=temperature, top_k=top_k, top_p=top_p,
                                   cond=self._cond(condition, n), eos=eos, generator=gen, suppress=suppress):
                for r, t in enumerate(tokens.tolist()):
                    if done[r]:
                        continue
                    if t == eos:
                        done[r] = True
                        continue
                    rows[r].append(t)
                    if r == 0 and on_text is not None:
                        on_text(self.codec.char(t))
        return [self.codec.decode(r) for r in rows]

    def predict(self, inputs, progress: bool = False) -> list[dict]:
        """``{"prompt", "text"}`` per prompt (a blank one: from a newline / the start of a document), sampled
        with ``config.sample``; the k-th prompt with seed ``sample.seed + k``."""
        prompts = as_inputs(inputs)
        for prompt in prompts:
            self.prompt_ids(prompt)  # characters outside the vocabulary: an error before any sampling
        s = self.config.sample
        return [{"prompt": p, "text": self.generate(p, s.chars, s.temperature, s.top_k, s.top_p, s.seed + k,
                                                    s.condition or None)[0]}
                for k, p in enumerate(tqdm(prompts, desc="sampling", disable=not progress or len(prompts) < 2,
                                           leave=False, dynamic_ncols=True))]

    def split_loss(self, data: CharData, split: str, progress: bool = False) -> dict:
        """``{"loss", "bits_per_char", "chars"}`` of ``split`` of ``data`` (read as the config's data says)."""
        with torch.no_grad(), autocast(self.device, self.dtype):
            return split_loss(self.model, data, split, self.codec, self.config.data, self.device, progress)

    def loss(self, text: str) -> float:
        """Nats per character of ``text`` (read as one row, from the initial state)."""
        ids = torch.tensor(self.codec.encode(text))
        with autocast(self.device, self.dtype):
            nll, _ = stream_loss(self.model, ids, 1, 256, self.device)
        return nll

    def gates(self, text: str, condition: str | None = None, context: str = "") -> list[dict[str, torch.Tensor]]:
        """The explicit-gates LSTM (weights of the trained fused one) over ``text``: per layer, (T, H) each.

        Step t is the state after reading character t (so it is what predicts character t + 1). The
        ``context`` is read first (and not returned), so that the picture starts from a warmed-up state."""
        if not isinstance(self.model.rnn, nn.LSTM):
            raise ConfigError(f"gates need an LSTM model; this one's cell is {type(self.model.rnn).__name__}")
        ids = torch.tensor(self.codec.encode_strict(context + text, what="text"), device=self.device)
        state = self.model.init_state(1, self._cond(condition, 1))
        acts = lstm_activations(self.model.embed, self.model.rnn, ids, state)
        return [{k: v[len(context) :] for k, v in layer.items()} for layer in acts]


def load_predictor(ckpt: Path, stored: ck.Stored, cfg: Config, device: torch.device) -> CharGenerator:
    if stored.data.get("mode") not in (STREAM, DOCUMENTS):
        raise ck.CheckpointError(f"{ckpt / ck.CONFIG}: data.mode must be {STREAM!r} or {DOCUMENTS!r}, "
                                 f"got {stored.data.get('mode')!r}")
    codec = CharCodec(Tokenizer.load(ckpt / TOKENIZER_FILE))
    model = build_model(stored.model_config(ModelConfig))
    ck.load_weights(model, ckpt)
    return CharGenerator(model.to(device), codec, stored.data["mode"], stored.data.get("conditions", []), device,
                         cfg, ckpt)


def format_text(result: dict) -> str:
    return result["prompt"] + result["text"]


# ------------------------------------------------------------------------------------------- evaluation
def evaluate(predictor: CharGenerator, split: str) -> dict:
    """Nats and bits per character on ``split`` of the predictor's data (``test`` falls back to
    ``validation`` when the data has no test split)."""
    data = load_data(predictor.config)
    if split == "test" and "test" not in data.splits():
        print("no test split: evaluating on validation", file=sys.stderr)
        split = "validation"
    if split not in data.splits():
        raise DataError(f"no split {split!r} (found {data.splits()})", predictor.config.data.name)
    r = predictor.split_loss(data, split, progress=sys.stderr.isatty())
    return {f"{'val' if split == 'validation' else split}_loss": r["loss"], "bits_per_char": r["bits_per_char"],
            "chars": r["chars"], "split": split}


# ------------------------------------------------------------------------------------------- gates mode
def _gates_add_args(p) -> None:
    g = p.add_argument_group("gates")
    g.add_argument("--text", help="the text to run the LSTM over (else --input)")
    g.add_argument("--context", default="", help="text read first to warm up the state (not drawn)")
    g.add_argument("--units", default="auto", help="comma-separated unit indices, or auto (the 4 busiest)")
    g.add_argument("--layer", type=int, default=-1, help="LSTM layer (default -1: the last)")
    g.add_argument("--condition", default="", help="conditioned models: the condition whose state starts the text")


def _gates_text(args) -> str:
    if args.text is not None:
        return args.text
    if args.input != "-":
        if not Path(args.input).is_file():
            raise DataError("no such file", args.input)
        return read_text_file(Path(args.input))
    return "" if sys.stdin.isatty() else sys.stdin.read()


def _units(spec: str, acts: dict[str, torch.Tensor]) -> list[int]:
    hidden = acts["cell"].size(1)
    if spec == "auto":
        return pick_units(acts, 4)
    try:
        units = [int(u) for u in spec.split(",") if u.strip()]
    except ValueError:
        raise ConfigError(f"--units must be auto or comma-separated integers, got {spec!r}") from None
    if not units or any(not 0 <= u < hidden for u in units):
        raise ConfigError(f"--units must be in [0, {hidden}), got {spec!r}")
    return units


def gates(predictor: CharGenerator, args) -> dict:
    """Draw the forget/input/output gates and cell state of chosen units over a text (PNG or HTML)."""
    text = _gates_text(args)
    if not text:
        raise ConfigError("give the text to look at with --text or --input FILE")
    acts = predictor.gates(text, args.condition or None, context=args.context or "")
    layer = args.layer if args.layer >= 0 else len(acts) + args.layer
    if not 0 <= layer < len(acts):
        raise ConfigError(f"--layer {args.layer}: the model has {len(acts)} layers")
    units = _units(args.units, acts[layer])
    path = Path("gates.png" if args.output == "-" else args.output)
    render = render_html if path.suffix.lower() in (".html", ".htm") else render_png
    pic = render(text, acts[layer], units, path, title=f"layer {layer}, units {units}")
    print(f"wrote {path} (layer {layer}, units {units})", file=sys.stderr)
    return {"path": str(pic.path), "units": units, "layer": layer}


EXTRA_MODES = {"gates": Mode("draw an LSTM's gates and cell state over a text (PNG or HTML)", _gates_add_args,
                             gates)}

__all__ = ["CELLS", "EXTRA_MODES", "TASK", "TOKENIZER_FILE", "CharGenerator", "Config", "DataConfig", "ModelConfig",
           "SampleConfig", "build_model", "count_parameters", "evaluate", "format_text", "gates", "hidden_for_budget",
           "load_data", "load_predictor", "sized", "split_loss"]
