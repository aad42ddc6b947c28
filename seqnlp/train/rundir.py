"""Run directories: the resolved config, JSON written atomically, and the result record of a run.

A run directory (``output_dir``) holds ``config.yaml``, ``log.jsonl``, ``checkpoints/``, ``metrics.json`` (the
test split), ``metrics_<split>.json`` (``seqnlp evaluate``) and ``result.json`` (metrics, the exact command,
commit, wall time, machine). Library code writes only there; a copy of the record goes elsewhere only to a
path given on the command line (``--record PATH``).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from ..config import ConfigError, save_config
from . import checkpoint as ck

_started_at_commit: dict[Path, str] = {}  # output_dir -> the commit when its run started (prepare_run)


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


def write_json(path: str | Path, data) -> Path:
    """``data`` as indented JSON, written to a temporary file and renamed (never a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def portable(data, root: str | Path | None = None):
    """``data`` (a record: dicts, lists, strings) with paths inside ``root`` (default: the working directory, the
    repository when commands run from it) written relative to it, so that a record names no machine's folders."""
    prefix = str(Path(root) if root is not None else Path.cwd()).rstrip("/") + "/"
    if prefix == "/":
        return data
    if isinstance(data, str):
        return data.replace(prefix, "")
    if isinstance(data, dict):
        return {k: portable(v, prefix) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [portable(v, prefix) for v in data]
    return data


def write_record(path: str | Path, data) -> Path:
    """A results record: :func:`write_json` of :func:`portable` ``data``."""
    return write_json(path, portable(data))


def command_line() -> str:
    """The command as a user would type it again: ``python recipes/x.py ...`` or ``seqnlp train ...``."""
    argv0 = sys.argv[0]
    head = ["seqnlp"] if argv0.endswith("seqnlp") else (["python", argv0] if argv0.endswith(".py") else [argv0])
    return " ".join(head + sys.argv[1:])


def check_output_dir(output_dir: str | Path) -> Path:
    """``output_dir`` as a Path; a ConfigError if it is empty, or a file, or lies under a file."""
    if not str(output_dir).strip():
        raise ConfigError("output_dir is empty: set output_dir=DIR (the run directory)")
    out = Path(output_dir)
    for p in (out, *out.parents):
        if p.exists() and not p.is_dir():
            what = "is a file" if p == out else f"lies under {p}, which is a file"
            raise ConfigError(f"output_dir {out} {what}, not a directory: choose another output_dir")
    return out


def prepare_run(cfg) -> Path:
    """Create ``cfg.output_dir`` and write the resolved config into it. An ``output_dir`` that is a file (or lies
    under one), or that cannot be created, is a :class:`~seqnlp.config.ConfigError` naming it."""
    out = check_output_dir(cfg.output_dir)
    _started_at_commit[out.resolve()] = git_commit()  # the code that trains, not what the tree holds at the end
    try:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
    except OSError as e:
        raise ConfigError(f"output_dir {out} cannot be written: {e.strerror or e}") from None
    return out


def record_result(task: str, config_path: str | None, output_dir: Path, metrics: dict, wall: float,
                  extra: dict | None = None) -> dict:
    """``output_dir/result.json``: metrics, the exact command, commit (at the start of the run, when
    :func:`prepare_run` made ``output_dir``), wall seconds, machine."""
    rec = {
        "task": task,
        "config": config_path,
        "command": command_line(),
        "commit": _started_at_commit.get(Path(output_dir).resolve()) or git_commit(),
        "wall_seconds": round(wall, 1),
        "machine": machine(),
        "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "metrics": metrics,
        **(extra or {}),
    }
    rec = portable(rec)
    write_json(Path(output_dir) / "result.json", rec)
    return rec


def run_dir(model: str | Path) -> Path:
    """The run directory of a model path: the folder holding ``checkpoints/``, or the checkpoint itself."""
    ckpt = ck.resolve(model)
    return ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt


def one_line(text: str) -> str:
    """Text as one line of a file: line breaks of any kind (\\r, \\u2028, ...) become spaces."""
    return " ".join(str(text).splitlines())


__all__ = ["check_output_dir", "command_line", "git_commit", "machine", "one_line", "prepare_run", "record_result",
           "run_dir", "write_json"]
