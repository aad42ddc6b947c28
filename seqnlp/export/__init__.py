"""``seqnlp export``: a trained model of any task as ONNX graphs that onnxruntime runs.

    seqnlp export --model RUN --format onnx --output DIR [--quantize int8]
    seqnlp predict --model DIR < inputs.txt            # the same outputs and command line as with RUN
    seqnlp.load(DIR).predict([...])                    # the task's own predictor, on onnxruntime sessions

The export directory holds ``config.json`` -- the checkpoint's (format 2: task, model, data, config, files) plus
an ``export`` block ``{"format": "onnx", "quantize": null | "int8", "graphs": {name: {"file", "inputs",
"outputs", "sha256"}}, "seqnlp_version", "opset"}`` -- the tokenizer / vocabulary files the checkpoint lists
(copied with their sha256), and the graphs (:mod:`seqnlp.export.onnx_graphs`): the classifier and the tagger as
one graph each, seq2seq models as an encoder graph and a one-step decoder graph (so greedy search, batched beam
search and sampling drive onnxruntime sessions), the char generator as its step graph. ``--quantize int8``
applies onnxruntime's dynamic quantization (int8 weights, activations quantized per call) to every graph.

Each fp32 graph is checked against eager torch on a batch of other sizes than the one it was traced with
(``--no-check`` skips that). Loading verifies every graph's sha256 (:mod:`seqnlp.export.runtime`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from ..exit_codes import EXIT_CODES, EXIT_OK, guarded

FORMATS = ("onnx",)
QUANTIZE = ("int8",)
CHECK_TOLERANCE = 1e-3  # max |onnxruntime - torch| of an fp32 graph on the check batch

__all__ = ["FORMATS", "QUANTIZE", "export", "main"]

DESCRIPTION = """Export a trained model (run or checkpoint directory) of any task as ONNX graphs for onnxruntime.

The output directory can then be used wherever a run directory can for inference: `seqnlp predict --model DIR`,
`seqnlp evaluate --model DIR`, `seqnlp serve --model DIR`, `seqnlp.load(DIR)`; the outputs are those of the torch
model (fp32: within 1e-4) and the command line is the same. It holds config.json (the checkpoint's config plus an
"export" block naming each graph, its inputs and outputs and its sha256), the tokenizer/vocabulary files, and the
graphs: sentiment classifier.onnx; pos_tagging tagger.onnx (features, BiLSTM, CRF Viterbi or softmax); translation
and dialogue encoder.onnx + decoder.onnx (one step: greedy, beam search and sampling drive it); char_generator
lm.onnx (the step, any number of tokens) [+ init.onnx for conditioned models]. Needs `pip install 'seqnlp[onnx]'`.

examples:
  seqnlp export --model runs/pos_ewt --format onnx --output exports/pos_ewt
  seqnlp export --model runs/multi30k --format onnx --output exports/multi30k_int8 --quantize int8
  seqnlp predict --model exports/pos_ewt --input sentences.txt"""


def _sha256(path: Path) -> str:
    from .runtime import sha256

    return sha256(path)


def _files(ckpt: Path, stored) -> dict:
    """The checkpoint's extra files with their digests (``files`` of its config.json; every file but the weights,
    the training state and config.json for checkpoints written before that record)."""
    from ..train import checkpoint as ck

    if stored.files:
        return dict(stored.files)
    names = sorted(p.name for p in Path(ckpt).iterdir()
                   if p.is_file() and p.name not in (ck.CONFIG, ck.WEIGHTS, ck.TRAIN_STATE))
    return ck.digests(Path(ckpt), names)


def _compare(spec, check, threads: int) -> tuple[float, int]:
    """``(max |onnxruntime - torch| of the float outputs, integer outputs that differ)`` of ``spec``'s graph (as
    written at ``spec.path``) on ``check``'s example inputs."""
    import torch

    from .runtime import OrtGraph

    graph = OrtGraph(spec.path, threads)
    args = tuple(check.example[n] for n in spec.inputs)
    with torch.no_grad():
        ref = spec.module(*args)
    ref = ref if isinstance(ref, tuple) else (ref,)
    got = graph(**check.example)
    worst, mismatches = 0.0, 0
    for name, r in zip(spec.outputs, ref):
        g = got[name]
        if g.shape != r.shape:
            raise RuntimeError(f"graph {spec.name}: output {name} has shape {tuple(g.shape)}, torch {tuple(r.shape)}")
        if r.dtype.is_floating_point:
            worst = max(worst, float((g.float() - r.float()).abs().max()) if r.numel() else 0.0)
        else:
            mismatches += int((g.to(r.dtype) != r).sum())
    return worst, mismatches


def _quantize(src: Path, dst: Path) -> None:
    """onnxruntime's dynamic quantization: 8-bit weights (MatMul, LSTM, embedding tables), activations quantized
    per call. Unsigned weights (U8U8): onnxruntime warns that signed weights (U8S8, fastest with VNNI) can
    saturate on AVX2/AVX-512 CPUs without VNNI, and our machines differ from run to run."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process (shape inference; no gain measured on these graphs)
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QUInt8)
    finally:
        root.setLevel(level)


def export(model_path: str | Path, output_dir: str | Path, quantize: str | None = None, *, check: bool = True,
           threads: int = 0, log=print) -> Path:
    """Export the model at ``model_path`` (run or checkpoint directory) to ``output_dir`` (replaced atomically when
    it is an earlier export; any other existing, non-empty directory is refused). Returns ``output_dir``."""
    from .. import __version__
    from ..config import ConfigError
    from ..runner import load
    from ..tasks import get_task
    from ..train import checkpoint as ck

    if quantize not in (None, *QUANTIZE):
        raise ConfigError(f"--quantize must be one of {QUANTIZE}, got {quantize!r}")
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"seqnlp export needs onnx and onnxruntime ({e}): pip install 'seqnlp[onnx]'") from None
    from . import onnx_graphs as og

    out = Path(output_dir)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not _is_export(out))):
        raise ConfigError(f"--output {out} exists and is not a seqnlp export: choose another directory or remove it")
    predictor = load(model_path, "cpu", precision="fp32", threads=threads)  # resolves run dirs (and hub ids)
    ckpt = Path(predictor.checkpoint)
    stored = ck.read_stored(ckpt)
    if stored.export is not None:
        raise ConfigError(f"{ckpt} is already an export (give the run or checkpoint directory it came from)")
    api = get_task(stored.task).api
    if stored.format_version == 1 and hasattr(api, "upgrade_v1"):
        api.upgrade_v1(stored)
    if not hasattr(predictor, "model"):
        raise ck.CheckpointError(f"{ckpt} is not a model that predicts (an LM-pretraining checkpoint?): export "
                                 "the run directory")
    try:
        specs = og.graphs_of(stored.task, predictor)
        checks = {s.name: s for s in og.graphs_of(stored.task, predictor, batch=4, steps=9)} if check else {}
    except ValueError as e:
        raise ConfigError(str(e)) from None
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        graphs, checked = {}, {}
        for spec in specs:
            spec.path = tmp / f"{spec.name}.onnx"
            og.export_graph(spec, spec.path)
            if check:
                diff, mismatches = _compare(spec, checks[spec.name], threads)
                if mismatches or diff > CHECK_TOLERANCE:
                    raise ck.CheckpointError(f"{ckpt}: graph {spec.name} does not reproduce torch (max |difference| "
                                             f"{diff:.2e}, {mismatches} integer outputs differ): please report this")
                log(f"{spec.name}.onnx: onnxruntime matches torch (max |difference| {diff:.1e})")
                checked[spec.name] = {"max_abs_difference": diff}
            if quantize == "int8":
                fp32 = spec.path.with_suffix(".fp32.onnx")
                spec.path.rename(fp32)
                _quantize(fp32, spec.path)
                fp32.unlink()
                if check:  # what quantisation changes, for the record (quality: benchmarks/inference.py)
                    diff, mismatches = _compare(spec, checks[spec.name], threads)
                    checked[spec.name].update(int8_max_abs_difference=diff, int8_integer_mismatches=mismatches)
            graphs[spec.name] = {"file": spec.path.name, **spec.describe(), "sha256": _sha256(spec.path),
                                 "bytes": spec.path.stat().st_size}
        files = _files(ckpt, stored)
        for name in files:
            shutil.copy2(Path(ckpt) / name, tmp / name)
        config = {"format_version": ck.FORMAT_VERSION, "task": stored.task, "model": stored.model, "data": stored.data,
                  "config": {**stored.config, "infer_precision": "fp32"},  # the graphs' own precision
                  ck.FILES: files,
                  "export": {"format": "onnx", "quantize": quantize, "graphs": graphs, "opset": og.OPSET,
                             "seqnlp_version": __version__, "source": str(ckpt),
                             "checked": {"graphs": checked, "against": "eager torch fp32",
                                         "batch": "4 rows of lengths 9, 7, 5, 1 (random inputs)"} if check else None}}
        (tmp / ck.CONFIG).write_text(json.dumps(config, indent=2, default=str))
        from .runtime import load_predictor  # the directory loads as it will be used (digests, sessions)

        load_predictor(tmp, ck.read_stored(tmp), predictor.config, threads)
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    size = sum(g["bytes"] for g in graphs.values())
    log(f"exported {stored.task} model {ckpt} -> {out} ({', '.join(graphs)}; {size / 1e6:.2f} MB of graphs"
        f"{', int8' if quantize else ''})")
    return out


def _is_export(path: Path) -> bool:
    try:
        return "export" in json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="seqnlp export", description=DESCRIPTION, epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a run directory or checkpoint directory (a hub id where "
                   "seqnlp.load takes one)")
    p.add_argument("--format", choices=FORMATS, default="onnx", help="onnx (the one format; default)")
    p.add_argument("--output", required=True, help="the export directory to write (an earlier export there is "
                   "replaced; any other non-empty directory is refused)")
    p.add_argument("--quantize", choices=QUANTIZE, default=None,
                   help="int8: onnxruntime dynamic quantization (int8 weights; smaller, usually faster on CPUs)")
    p.add_argument("--threads", type=int, default=0, help="threads for torch and the check (default: the run's)")
    p.add_argument("--no-check", action="store_true", help="skip checking each fp32 graph against eager torch")
    return p


def _main(argv: list[str] | None) -> int:
    args = parser().parse_args(argv)
    export(args.model, args.output, args.quantize, check=not args.no_check, threads=args.threads,
           log=lambda msg: print(msg, file=sys.stderr))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``seqnlp export``; returns the exit status (0 ok, 1 checkpoint or data error, 2 usage or config error)."""
    return guarded(_main, argv)
