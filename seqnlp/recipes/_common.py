"""What every recipe shares: its command line, run directories, metrics and result records.

A recipe module defines a config dataclass (with a ``task`` field, an ``output_dir`` and a
``train: TrainConfig``), and functions ``train(cfg, config_path)``, ``evaluate(model_dir, args)``
and ``predict(model_dir, args)``; :func:`recipe_main` gives it the command line
``--config FILE [key.sub=value ...] [--mode train|evaluate|predict]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..config import ConfigError, from_dict, load_config, save_config, to_dict
from ..train.checkpoint import CheckpointError, read_config, resolve


def git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def write_json(path: str | Path, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def command_line() -> str:
    """The command as a user would type it again: ``python recipes/x.py ...`` or ``seqnlp train ...``."""
    argv0 = sys.argv[0]
    head = ["seqnlp"] if argv0.endswith("seqnlp") else (["python", argv0] if argv0.endswith(".py") else [argv0])
    return " ".join(head + sys.argv[1:])


def record_result(task: str, config_path: str | None, output_dir: Path, metrics: dict, wall: float,
                  extra: dict | None = None) -> dict:
    """``output_dir/result.json``: metrics, the exact command, commit, wall seconds, machine."""
    rec = {
        "task": task,
        "config": config_path,
        "command": command_line(),
        "commit": git_commit(),
        "wall_seconds": round(wall, 1),
        "machine": machine(),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "metrics": metrics,
        **(extra or {}),
    }
    write_json(output_dir / "result.json", rec)
    return rec


def save_result_copy(rec: dict, task: str, name: str) -> Path:
    """Keep a full run's result as ``results/<task>/<name>.json`` (relative to the cwd)."""
    path = Path("results") / task / f"{name}.json"
    write_json(path, rec)
    return path


def recipe_main(argv: list[str] | None, *, task: str, schema: type, description: str,
                train: Callable, evaluate: Callable, predict: Callable,
                extra_modes: dict[str, Callable] | None = None,
                add_args: Callable[[argparse.ArgumentParser], None] | None = None) -> int:
    """Parse the recipe command line and run the chosen mode. Returns an exit status."""
    modes = ["train", "evaluate", "predict", *(extra_modes or {})]
    defaults = OmegaConf.to_yaml(OmegaConf.structured(schema))
    p = argparse.ArgumentParser(
        prog=f"recipes/{task}.py",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="config keys and their defaults (override any with key.sub=value):\n\n"
        + "\n".join("  " + line for line in defaults.splitlines()),
    )
    p.add_argument("--config", help=f"YAML config (recipes/configs/{task}/*.yaml)")
    p.add_argument("--mode", choices=modes, default="train",
                   help="train (default): train then evaluate on the test split; evaluate: score a "
                   "trained model; predict: run a trained model on raw input")
    p.add_argument("--model", help="trained model: a run directory or checkpoint (evaluate/predict; "
                   "default: the config's output_dir)")
    p.add_argument("--split", default="test", help="split to evaluate (evaluate mode)")
    p.add_argument("--input", default="-", help="input file for predict (default: stdin)")
    p.add_argument("--output", default="-", help="output file for predict (default: stdout)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    if add_args is not None:
        add_args(p)
    p.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. train.lr=1e-3 model.hidden=512")
    args = p.parse_args(argv)
    try:
        if args.mode == "train":
            cfg = load_config(schema, args.config, args.overrides)
            if args.print_config:
                print(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
                return 0
            train(cfg, args.config)
            return 0
        model_dir = args.model
        if model_dir is None:
            cfg = load_config(schema, args.config, args.overrides)
            model_dir = cfg.output_dir
        fn = {"evaluate": evaluate, "predict": predict, **(extra_modes or {})}[args.mode]
        fn(model_dir, args)
        return 0
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def prepare_run(cfg, config_path: str | None) -> Path:
    """Create ``cfg.output_dir`` and write the resolved config into it."""
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    return out


def config_name(config_path: str | None) -> str:
    return Path(config_path).stem if config_path else "default"


__all__ = ["recipe_main", "record_result", "save_result_copy", "write_json", "prepare_run", "config_name",
           "git_commit", "machine", "to_dict"]


def stored_config(model_dir, overrides: list[str] | None, task: str, config_cls: type) -> tuple[Path, object]:
    """The checkpoint of ``model_dir`` and its stored ``config_cls`` config with command-line overrides
    (``search.beam_size=10``) applied. A checkpoint of another task is refused by name."""
    ckpt = resolve(model_dir)
    stored = read_config(ckpt)
    if stored.get("task") != task:
        raise CheckpointError(f"{ckpt} is a {stored.get('task')!r} model, not a {task} model")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(from_dict(config_cls, stored["config"])),
                                 OmegaConf.from_dotlist(list(overrides or [])))
        return ckpt, OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise ConfigError(f"bad override: {e}") from None


def one_line(text: str) -> str:
    """A hypothesis as one line of a file: line breaks of any kind (\\r, \\u2028, ...) become spaces."""
    return " ".join(text.splitlines())
