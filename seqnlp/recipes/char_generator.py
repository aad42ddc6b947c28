"""Char-level generator (one-to-many): learn a text character by character, then write more of it.

Features:

* truncated back-propagation through time: the text is one stream, ``data.batch_size`` parallel rows of it,
  ``data.bptt`` characters at a time; the recurrent state is carried from one batch to the next (detached)
  and saved in the checkpoints, so a resumed run continues exactly;
* three models of the lecture on the same task (``model.cell``): ``window`` (an MLP over the l previous
  characters, the one-to-one baseline), ``rnn`` (the simple Elman network), ``lstm`` (and ``gru``);
  ``model.param_budget`` sizes any of them to the same number of parameters;
* conditioned generation: with ``data.condition_column`` (e.g. a label of a tabular/Hub dataset) every
  document is its own sequence and its condition initialises the state ("in the style of" a condition);
* after training: validation (and test) nats and bits per character, a seeded sample (``sample.txt``) and,
  for an LSTM, a picture of its gates and cell state (``gates.png``, ``gates.html``).

    python recipes/char_generator.py --config recipes/configs/char_generator/tinyshakespeare.yaml
    seqnlp predict --model runs/char_tinyshakespeare sample.chars=500 sample.temperature=0.8 \\
        sample.top_p=0.95 sample.seed=1 <<< "ROMEO:"
    seqnlp gates --model runs/char_tinyshakespeare --text "$(head -c 400 some.txt)" --units auto \\
        --output gates.png                                                      # or gates.html
    seqnlp evaluate --model runs/char_tinyshakespeare --split validation

Data: a plain text file read whole (``data.name``: a path under ``$SEQNLP_DATA``, absolute or relative;
the last ``data.validation_fraction`` of it is the validation text, as char-rnn and nanoGPT do), or a
tabular file / Hub dataset whose ``data.text_column`` is joined into one stream. ``metrics.json`` holds
``val_loss`` (nats per character), ``bits_per_char``, the parameter count and the training speed in
characters per second.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

from ..data.chars import STREAM, CharCodec, document_pieces, piece_batches
from ..data.stream import StreamBatches
from ..tasks.char_generator import (
    TASK,
    TOKENIZER_FILE,
    CharGenerator,
    Config,
    build_model,
    load_data,
    sized,
    split_loss,
)
from ..train import checkpoint as ck
from ..train.device import pick_device
from ..train.loop import Trainer
from ..train.rundir import prepare_run, record_result, write_json
from ..viz.gates import pick_units, render_html, render_png
from ._common import config_name, recipe_main


def write_pictures(predictor: CharGenerator, text: str, units: list[int], out: Path, title: str,
                   context: str = "") -> dict:
    """``gates.png`` and ``gates.html`` of the last LSTM layer over ``text`` (after reading ``context``)."""
    acts = predictor.gates(text, context=context)[-1]
    units = units or pick_units(acts, 4)
    png = render_png(text, acts, units, out / "gates.png", title=title)
    render_html(text, acts, units, out / "gates.html", title=title)
    return {"units": units, "png": str(png.path), "html": str(out / "gates.html")}


def train(cfg: Config, config_path: str | None = None) -> dict:
    t_start = time.time()
    out = prepare_run(cfg)
    dcfg = cfg.data

    # --- data and model (recipe_main seeded the RNGs: the initial weights follow from train.seed)
    data = load_data(cfg)
    codec = CharCodec.train(data.training_text(), dcfg.min_char_freq)
    mcfg = sized(cfg.model, codec.size, len(data.conditions))
    model = build_model(mcfg)
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
        batches = piece_batches(pieces, dcfg.batch_size * dcfg.bptt, seed=cfg.train.seed)
        size = f"{len(data.docs['train'])} training documents ({len(pieces)} pieces), {len(data.conditions)} conditions"
    print(f"{TASK}: {size}, {codec.size} symbols, {mcfg.cell} hidden={mcfg.hidden}, "
          f"{n_params / 1e6:.3f}M parameters", file=sys.stderr)

    # --- train, validating on the validation text
    def evaluate(m) -> dict:
        r = split_loss(m, data, "validation", codec, dcfg, device)
        return {"loss": r["loss"], "bits_per_char": r["bits_per_char"]}

    ckpt_config = ck.checkpoint_config(TASK, mcfg, cfg, mode=data.mode, conditions=data.conditions)
    trainer = Trainer(model, batches, cfg.train, out, evaluate, ckpt_config, {TOKENIZER_FILE: codec.tok.save})
    summary = trainer.fit()

    # --- the best checkpoint on validation and test
    best = ck.resolve(out / "checkpoints")
    ck.load_weights(model, best)
    predictor = CharGenerator(model.to(device), codec, data.mode, data.conditions, device, cfg, best)
    val = predictor.split_loss(data, "validation", cfg.train.progress)
    metrics = {"val_loss": val["loss"], "bits_per_char": val["bits_per_char"], "val_chars": val["chars"]}
    if "test" in data.splits():
        test = predictor.split_loss(data, "test", cfg.train.progress)
        metrics.update({"test_loss": test["loss"], "test_bits_per_char": test["bits_per_char"]})
    trained_chars = trainer.model.trained_tokens
    metrics.update({
        "cell": mcfg.cell, "hidden": mcfg.hidden, "parameters": n_params,
        "train_chars": trained_chars, "train_seconds": summary["train_seconds"],
        "train_chars_per_s": trained_chars / summary["train_seconds"] if summary["train_seconds"] else None,
        "train": summary, "best_checkpoint": best.name,
    })

    # --- a seeded sample, and the LSTM's gates over validation characters
    s = cfg.sample
    sample = predictor.generate(s.prompt, s.chars, s.temperature, s.top_k, s.top_p, s.seed, s.condition or None)[0]
    (out / "sample.txt").write_text(s.prompt + sample, encoding="utf-8")
    if mcfg.cell == "lstm" and s.gates_chars > 0:
        val_text = data.texts["validation"] if data.mode == STREAM else data.docs["validation"][0][0]
        val_text = "".join(c for c in val_text if c in codec.vocab)
        warm = min(200, len(val_text) // 2) if data.mode == STREAM else 0  # start from a warmed-up state
        metrics["gates"] = write_pictures(predictor, val_text[warm : warm + s.gates_chars], list(s.gates_units),
                                          out, f"{config_name(config_path)}: last LSTM layer over validation "
                                          f"characters {warm}-{warm + s.gates_chars}", context=val_text[:warm])
    write_json(out / "metrics.json", metrics)
    record_result(TASK, config_path, out, metrics, time.time() - t_start,
                  extra={"sample": {"prompt": s.prompt, "seed": s.seed, "temperature": s.temperature, "text": sample}})
    print(json.dumps({k: v for k, v in metrics.items() if k != "train"}, indent=2, default=str))
    return metrics


def main(argv: list[str] | None = None) -> int:
    return recipe_main(argv, task=TASK, schema=Config, description=__doc__, train=train)


__all__ = ["main", "train", "write_pictures"]
