"""Char-level generator (one-to-many): learn a text character by character, then write more of it.

Training reads the text as one stream, ``data.batch_size`` parallel rows of it, ``data.bptt`` characters
at a time (truncated back-propagation through time): the recurrent state is carried from one batch to
the next (detached) and saved in the checkpoints, so a resumed run continues exactly. Three models of
the lecture on the same task (``model.cell``): ``window`` (an MLP over the l previous characters, the
one-to-one baseline), ``rnn`` (the simple Elman network), ``lstm`` (and ``gru``); ``model.param_budget``
sizes any of them to the same number of parameters. With ``data.condition_column`` (e.g. a label of a
tabular/Hub dataset) every document is its own sequence and its condition initialises the state, so the
model generates "in the style of" a condition.

    python recipes/char_generator.py --config recipes/configs/char_generator/tinyshakespeare.yaml
    python recipes/char_generator.py --mode predict --model runs/char_tinyshakespeare \\
        --prompt "ROMEO:" --chars 500 --temperature 0.8 --top-k 0 --top-p 0.95 --seed 1
    python recipes/char_generator.py --mode gates --model runs/char_tinyshakespeare \\
        --text "$(head -c 400 some.txt)" --units auto --output gates.png        # or gates.html
    python recipes/char_generator.py --mode evaluate --model runs/char_tinyshakespeare --split validation

Data: a plain text file read whole (``data.name``: a path under ``$SEQNLP_DATA``, absolute or relative;
the last ``data.validation_fraction`` of it is the validation text, as char-rnn and nanoGPT do), or a
tabular file / Hub dataset whose ``data.text_column`` is joined into one stream. ``metrics.json`` holds
``val_loss`` (nats per character), ``bits_per_char``, the parameter count and the training speed in
characters per second; the run directory also gets a seeded sample and, for an LSTM, a picture of its
gates and cell state (``gates.png``, ``gates.html``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..config import from_dict, to_dict
from ..data.batching import BatchIterator, TokenBucketSampler
from ..data.errors import DataError
from ..data.stream import StreamBatches
from ..data.tokenizers import Tokenizer
from ..gates import lstm_activations, pick_units, render_html, render_png
from ..metrics import bits_per_char
from ..nn.embeddings import Embeddings
from ..nn.weight_drop import WeightDropGRU, WeightDropLSTM, WeightDropRNN
from ..nn.window import WindowEncoder
from ..tasks.lm import CausalWindow, LanguageModel, generate, stream_loss
from ..train import checkpoint as ck
from ..train.device import pick_device, seed_everything, set_threads
from ..train.loop import TrainConfig, Trainer
from ._char_data import (
    DOCUMENTS,
    STREAM,
    CharCodec,
    CharData,
    collate_pieces,
    document_pieces,
    documents_loss,
    load_data,
)
from ._common import config_name, prepare_run, recipe_main, record_result, save_result_copy, write_json

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
    param_budget: int = 0  # > 0: choose `hidden` so the model has about this many parameters


@dataclass
class SampleConfig:
    """The sample and gate picture written at the end of training."""

    prompt: str = ""  # empty: a newline (stream) / the start of a document
    chars: int = 600
    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 1
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
    init_from: str = ""  # start from the weights of a trained checkpoint with the same model_args
    record: bool = False  # also copy the result to results/char_generator/<config-name>.json


# ------------------------------------------------------------------------------------------------ model
def model_args_from(cfg: ModelConfig, vocab_size: int, num_conditions: int) -> dict:
    """The plain data a checkpoint needs to rebuild the model; resolves ``param_budget`` into ``hidden``."""
    if cfg.cell not in CELLS:
        raise ValueError(f"model.cell must be one of {CELLS}, got {cfg.cell!r}")
    args = {"vocab_size": vocab_size, "cell": cfg.cell, "embed_dim": cfg.embed_dim, "hidden": cfg.hidden,
            "layers": cfg.layers, "window": cfg.window, "activation": cfg.activation, "dropout": cfg.dropout,
            "embed_dropout": cfg.embed_dropout, "weight_drop": cfg.weight_drop, "tie_embeddings": cfg.tie_embeddings,
            "num_conditions": num_conditions}
    if cfg.param_budget > 0:
        args["hidden"] = hidden_for_budget(args, cfg.param_budget)
    return args


def count_parameters(model_args: dict) -> int:
    """Parameters of the model ``model_args`` describe (built on the meta device: no memory, no time)."""
    with torch.device("meta"):
        model = build_model(**model_args)
    return sum(p.numel() for p in model.parameters())


def hidden_for_budget(model_args: dict, budget: int, multiple: int = 8) -> int:
    """The ``hidden`` (a multiple of ``multiple``) whose parameter count is closest to ``budget``."""
    def count(h: int) -> int:
        return count_parameters({**model_args, "hidden": h})

    lo, hi = 1, 1
    while count(hi * multiple) < budget and hi < 1 << 14:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid * multiple) < budget else (lo, mid)
    return min((lo * multiple, hi * multiple), key=lambda h: abs(count(h) - budget))


def build_model(vocab_size: int, cell: str, embed_dim: int, hidden: int, layers: int, window: int,
                activation: str, dropout: float, embed_dropout: float, tie_embeddings: bool,
                num_conditions: int, weight_drop: float = 0.0) -> LanguageModel:
    """The one place where model arguments become modules."""
    embed = Embeddings(vocab_size, embed_dim, padding_idx=0, dropout=embed_dropout)
    if cell == "window":
        encoder = CausalWindow(WindowEncoder(embed_dim, window_left=window - 1, window_right=0, hidden_size=hidden,
                                             num_layers=layers, dropout=dropout, activation=activation))
    else:
        rnn = {"lstm": WeightDropLSTM, "gru": WeightDropGRU, "rnn": WeightDropRNN}[cell]
        encoder = rnn(embed_dim, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0,
                      weight_drop=weight_drop)
    return LanguageModel(embed, encoder, vocab_size, dropout=dropout if cell != "window" else 0.0,
                         tie_embeddings=tie_embeddings, num_conditions=num_conditions)


# ------------------------------------------------------------------------------------------- predictor
class CharGenerator:
    """A trained generator with its characters: ``generate("ROMEO:", max_chars=200, seed=1)``.

    ``predict(prompts)`` returns one continuation per prompt; ``gates(text)`` the explicit LSTM's
    activations over a text (per layer ``{"forget", "input", "output", "cell", ...}`` each (T, H)).
    """

    def __init__(self, model: LanguageModel, codec: CharCodec, mode: str, conditions: list[str],
                 device: torch.device, config: Config | None = None):
        self.model = model.eval()
        self.codec = codec
        self.mode = mode
        self.conditions = list(conditions)
        self.device = device
        self.config = config

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

    def predict(self, prompts: Sequence[str], **kwargs) -> list[str]:
        """One continuation per prompt (``kwargs`` as in :meth:`generate`)."""
        return [self.generate(p, **kwargs)[0] for p in prompts]

    def loss(self, text: str) -> float:
        """Nats per character of ``text`` (read as one row, from the initial state)."""
        ids = torch.tensor(self.codec.encode(text))
        nll, _ = stream_loss(self.model, ids, 1, 256, self.device)
        return nll

    def gates(self, text: str, condition: str | None = None, context: str = "") -> list[dict[str, torch.Tensor]]:
        """The explicit-gates LSTM (weights of the trained fused one) over ``text``: per layer, (T, H) each.

        Step t is the state after reading character t (so it is what predicts character t + 1). The
        ``context`` is read first (and not returned), so that the picture starts from a warmed-up state."""
        if not isinstance(self.model.rnn, nn.LSTM):
            raise ValueError(f"gates need an LSTM model, this one is {type(self.model.rnn).__name__}")
        ids = torch.tensor(self.codec.encode_strict(context + text, what="text"), device=self.device)
        state = self.model.init_state(1, self._cond(condition, 1))
        acts = lstm_activations(self.model.embed, self.model.rnn, ids, state)
        return [{k: v[len(context) :] for k, v in layer.items()} for layer in acts]


def load_predictor(ckpt_dir: str | Path, device: str = "cpu") -> CharGenerator:
    ckpt = ck.resolve(ckpt_dir)
    stored = ck.read_config(ckpt)
    cfg = from_dict(Config, stored["config"])
    codec = CharCodec(Tokenizer.load(ckpt / TOKENIZER_FILE))
    model = build_model(**stored["model_args"])
    ck.load_weights(model, ckpt)
    dev = pick_device(device)
    return CharGenerator(model.to(dev), codec, stored["mode"], stored.get("conditions", []), dev, cfg)


# ------------------------------------------------------------------------------------------- evaluation
def split_loss(model: LanguageModel, data: CharData, split: str, codec: CharCodec, cfg: DataConfig,
               device: torch.device, progress: bool = False) -> dict:
    """``{"loss": nats/char, "bits_per_char", "chars"}`` of one split."""
    if data.mode == STREAM:
        ids = torch.tensor(codec.encode(data.texts[split]))
        nll, n = stream_loss(model, ids, min(cfg.eval_rows, max(1, len(ids) // 2)), max(cfg.bptt, 256), device,
                             progress, desc=split)
    else:
        pieces = document_pieces(data.docs[split], codec, data.conditions, cfg.bptt)
        nll, n = documents_loss(model, pieces, cfg.batch_size * cfg.bptt, device)
    return {"loss": nll, "bits_per_char": bits_per_char(nll), "chars": n}


def write_pictures(predictor: CharGenerator, text: str, units: list[int], out: Path, title: str,
                   context: str = "") -> dict:
    """``gates.png`` and ``gates.html`` of the last LSTM layer over ``text`` (after reading ``context``)."""
    acts = predictor.gates(text, context=context)[-1]
    units = units or pick_units(acts, 4)
    png = render_png(text, acts, units, out / "gates.png", title=title)
    render_html(text, acts, units, out / "gates.html", title=title)
    return {"units": units, "png": str(png.path), "html": str(out / "gates.html")}


# ------------------------------------------------------------------------------------------------ train
def train(cfg: Config, config_path: str | None = None) -> dict:
    t_start = time.time()
    out = prepare_run(cfg, config_path)
    set_threads(cfg.train.threads)
    seed_everything(cfg.train.seed)  # the initial weights too
    dcfg = cfg.data
    data = load_data(dcfg)
    codec = CharCodec.train(data.training_text(), dcfg.min_char_freq)
    model_args = model_args_from(cfg.model, codec.size, len(data.conditions))
    model = build_model(**model_args)
    if cfg.init_from:
        ck.load_weights(model, ck.resolve(cfg.init_from))
    n_params = sum(p.numel() for p in model.parameters())
    device = pick_device(cfg.train.device)

    if data.mode == STREAM:
        train_ids = torch.tensor(codec.encode(data.texts["train"]))
        batches = StreamBatches(train_ids, dcfg.batch_size, dcfg.bptt, shuffle=True, seed=cfg.train.seed)
        size = f"{len(train_ids)} training characters in {dcfg.batch_size} rows"
    else:
        pieces = document_pieces(data.docs["train"], codec, data.conditions, dcfg.bptt)
        sampler = TokenBucketSampler([len(p["ids"]) for p in pieces], max_tokens=dcfg.batch_size * dcfg.bptt,
                                     seed=cfg.train.seed)
        batches = BatchIterator(pieces, sampler, collate_pieces)
        size = f"{len(data.docs['train'])} training documents ({len(pieces)} pieces), {len(data.conditions)} conditions"
    print(f"{TASK}: {size}, {codec.size} symbols, {cfg.model.cell} hidden={model_args['hidden']}, "
          f"{n_params / 1e6:.3f}M parameters", file=sys.stderr)

    def evaluate(m: LanguageModel) -> dict:
        r = split_loss(m, data, "validation", codec, dcfg, device)
        return {"loss": r["loss"], "bits_per_char": r["bits_per_char"]}

    ckpt_config = {"task": TASK, "config": to_dict(cfg), "model_args": model_args, "mode": data.mode,
                   "conditions": data.conditions}
    trainer = Trainer(model, batches, cfg.train, out, evaluate, ckpt_config, {TOKENIZER_FILE: codec.tok.save})
    summary = trainer.fit()

    best = ck.resolve(out / "checkpoints")
    ck.load_weights(model, best)
    model.to(device).eval()
    val = split_loss(model, data, "validation", codec, dcfg, device, cfg.train.progress)
    metrics = {"val_loss": val["loss"], "bits_per_char": val["bits_per_char"], "val_chars": val["chars"]}
    if "test" in data.splits():
        test = split_loss(model, data, "test", codec, dcfg, device, cfg.train.progress)
        metrics.update({"test_loss": test["loss"], "test_bits_per_char": test["bits_per_char"]})
    trained_chars = trainer.model.trained_tokens
    metrics.update({
        "cell": cfg.model.cell, "hidden": model_args["hidden"], "parameters": n_params,
        "train_chars": trained_chars, "train_seconds": summary["train_seconds"],
        "train_chars_per_s": trained_chars / summary["train_seconds"] if summary["train_seconds"] else None,
        "train": summary, "best_checkpoint": best.name,
    })

    predictor = CharGenerator(model, codec, data.mode, data.conditions, device, cfg)
    s = cfg.sample
    sample = predictor.generate(s.prompt, s.chars, s.temperature, s.top_k, s.top_p, s.seed, s.condition or None)[0]
    (out / "sample.txt").write_text(s.prompt + sample, encoding="utf-8")
    if cfg.model.cell == "lstm" and s.gates_chars > 0:
        val_text = data.texts["validation"] if data.mode == STREAM else data.docs["validation"][0][0]
        val_text = "".join(c for c in val_text if c in codec.vocab)
        warm = min(200, len(val_text) // 2) if data.mode == STREAM else 0  # start from a warmed-up state
        metrics["gates"] = write_pictures(predictor, val_text[warm : warm + s.gates_chars], list(s.gates_units),
                                          out, f"{config_name(config_path)}: last LSTM layer over validation "
                                          f"characters {warm}-{warm + s.gates_chars}", context=val_text[:warm])
    write_json(out / "metrics.json", metrics)
    rec = record_result(TASK, config_path, out, metrics, time.time() - t_start,
                        extra={"sample": {"prompt": s.prompt, "seed": s.seed, "temperature": s.temperature,
                                          "text": sample}})
    if cfg.record:
        save_result_copy(rec, TASK, config_name(config_path))
    print(json.dumps({k: v for k, v in metrics.items() if k != "train"}, indent=2, default=str))
    return metrics


# ------------------------------------------------------------------------------------ evaluate / predict
def _run_dir(model_dir: str | Path) -> Path:
    ckpt = ck.resolve(model_dir)
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt


def evaluate(model_dir: str | Path, args) -> dict:
    """Nats and bits per character of a trained model on ``args.split`` of its own data
    (``test`` falls back to ``validation`` when the data has no test split); writes ``metrics_<split>.json``."""
    predictor = load_predictor(model_dir, device="auto")
    cfg = predictor.config
    data = load_data(cfg.data)
    split = args.split
    if split == "test" and "test" not in data.splits():
        print("no test split: evaluating on validation", file=sys.stderr)
        split = "validation"
    if split not in data.splits():
        raise SystemExit(f"error: no split {split!r} (found {data.splits()})")
    r = split_loss(predictor.model, data, split, predictor.codec, cfg.data, predictor.device, progress=True)
    metrics = {f"{'val' if split == 'validation' else split}_loss": r["loss"], "bits_per_char": r["bits_per_char"],
               "chars": r["chars"], "split": split}
    path = _run_dir(model_dir) / f"metrics_{split}.json"
    write_json(path, metrics)
    print(json.dumps(metrics, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return metrics


def _read_input(args) -> str | None:
    if args.input != "-":
        return Path(args.input).read_text(encoding="utf-8")
    if not sys.stdin.isatty():
        return sys.stdin.read()
    return None


def predict(model_dir: str | Path, args) -> list[str]:
    """Stream a sampled continuation of ``--prompt`` (or of each line of ``--input``) to the output."""
    predictor = load_predictor(model_dir, device=args.device)
    prompts = [args.prompt] if args.prompt is not None else None
    if prompts is None:
        text = _read_input(args)
        prompts = [line for line in text.splitlines() if line] if text else [""]
    seed = args.seed if args.seed is not None else int(torch.randint(0, 2**31 - 1, (1,)))
    if args.seed is None:
        print(f"(seed {seed}: pass --seed {seed} to get this text again)", file=sys.stderr)
    for prompt in prompts:
        predictor.prompt_ids(prompt)  # characters outside the vocabulary: a DataError before any output
    to_file = args.output != "-"
    sink = open(args.output, "w", encoding="utf-8") if to_file else sys.stdout
    results = []
    try:
        for k, prompt in enumerate(prompts):
            sink.write(prompt)
            sink.flush()

            def show(piece: str) -> None:
                sink.write(piece)
                sink.flush()

            text = predictor.generate(prompt, args.chars, args.temperature, args.top_k, args.top_p, seed + k,
                                      args.condition, on_text=show)[0]
            sink.write("\n")
            results.append(text)
    finally:
        if to_file:
            sink.close()
    return results


def gates(model_dir: str | Path, args) -> dict:
    """Draw the forget/input/output gates and cell state of chosen units over a text (PNG or HTML)."""
    predictor = load_predictor(model_dir, device="cpu")
    text = args.text if args.text is not None else _read_input(args)
    if not text:
        raise SystemExit("error: give the text to look at with --text or --input FILE")
    if not isinstance(predictor.model.rnn, nn.LSTM):
        raise SystemExit(f"error: gates need an LSTM model; this one's cell is {type(predictor.model.rnn).__name__}")
    acts = predictor.gates(text, args.condition, context=args.context or "")
    layer = args.layer if args.layer >= 0 else len(acts) + args.layer
    if not 0 <= layer < len(acts):
        raise SystemExit(f"error: --layer {args.layer}: the model has {len(acts)} layers")
    hidden = acts[layer]["cell"].size(1)
    units = pick_units(acts[layer], 4) if args.units == "auto" else [int(u) for u in args.units.split(",")]
    if any(not 0 <= u < hidden for u in units):
        raise SystemExit(f"error: units must be in [0, {hidden}), got {units}")
    path = Path("gates.png" if args.output == "-" else args.output)
    render = render_html if path.suffix.lower() in (".html", ".htm") else render_png
    pic = render(text, acts[layer], units, path, title=f"layer {layer}, units {units}")
    print(f"wrote {path} (layer {layer}, units {units})", file=sys.stderr)
    return {"path": str(pic.path), "units": units, "layer": layer}


def _add_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("predict (sampling) and gates")
    g.add_argument("--prompt", help="text to continue (predict; default: each line of --input, or a newline)")
    g.add_argument("--chars", type=int, default=500, help="characters to sample per prompt (default 500)")
    g.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default 1.0)")
    g.add_argument("--top-k", type=int, default=0, help="sample among the k most likely characters (0: all)")
    g.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1.0: off)")
    g.add_argument("--seed", type=int, help="random seed: the same seed gives the same text (default: random)")
    g.add_argument("--condition", help="conditioned models: generate in the style of this condition")
    g.add_argument("--device", default="cpu", help="predict: cpu | cuda | auto (default cpu)")
    g.add_argument("--text", help="gates: the text to run the LSTM over (else --input)")
    g.add_argument("--context", help="gates: text read first to warm up the state (not drawn)")
    g.add_argument("--units", default="auto", help="gates: comma-separated unit indices, or auto (the 4 busiest)")
    g.add_argument("--layer", type=int, default=-1, help="gates: LSTM layer (default -1: the last)")


def main(argv: list[str] | None = None) -> int:
    try:
        return recipe_main(argv, task=TASK, schema=Config, description=__doc__, train=train, evaluate=evaluate,
                           predict=predict, extra_modes={"gates": gates}, add_args=_add_args)
    except (DataError, ck.CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


__all__ = ["Config", "DataConfig", "ModelConfig", "SampleConfig", "CharCodec", "CharData", "CharGenerator",
           "build_model", "count_parameters", "hidden_for_budget", "load_data", "train", "evaluate", "predict",
           "gates", "load_predictor", "main"]
