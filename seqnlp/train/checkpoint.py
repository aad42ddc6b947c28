"""Checkpoint directories: plain data and tensors only, written atomically.

A checkpoint is a directory::

    config.json        task name, model arguments, the resolved recipe config (plain JSON)
    model.safetensors  weights (safetensors: no pickle, shared/tied tensors handled)
    *.json             tokenizer file(s), label lists — whatever the recipe adds
    train_state.pt     optimizer, scheduler, step, epoch, RNG states, sampler position;
                       loaded with ``torch.load(weights_only=True)``: nothing is unpickled

It is written under a temporary name, flushed, then renamed; ``latest`` and ``best`` are
symbolic links replaced atomically, so they never point at a partial directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
TRAIN_STATE = "train_state.pt"
FILES = "files"  # config.json key: {file name: {"sha256", "bytes"}} of the checkpoint's extra files
LATEST = "latest"
BEST = "best"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, truncated, corrupted or unsafe."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    for p in path.iterdir():
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(path)


def weights_for_saving(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The state dict as CPU tensors that each own their storage; tied (shared) weights appear once, under
    their first name (``load_model`` accepts any one name of a tied group).

    ``safetensors.torch.save_model`` refuses tensors that are views into part of a larger storage, which is
    how cuDNN keeps an RNN's weights on CUDA (one flat buffer): copying each distinct tensor avoids that.
    """
    out: dict[str, torch.Tensor] = {}
    seen: set[tuple] = set()
    for name, t in model.state_dict().items():
        key = (t.device, t.data_ptr(), t.dtype, tuple(t.shape), t.stride())
        if t.numel() and key in seen:
            continue
        seen.add(key)
        out[name] = t.detach().to("cpu", copy=True).contiguous()
    return out


def save_checkpoint(
    ckpt_root: Path,
    name: str,
    model: torch.nn.Module,
    config: dict,
    train_state: dict | None = None,
    extra_files: dict[str, Any] | None = None,
) -> Path:
    """Write ``ckpt_root/name`` atomically and return it.

    ``extra_files`` maps a file name to a callable ``f(path)`` that writes it (tokenizers) or
    to plain JSON data.
    """
    ckpt_root.mkdir(parents=True, exist_ok=True)
    final = ckpt_root / name
    tmp = ckpt_root / f".{name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_file(weights_for_saving(model), str(tmp / WEIGHTS), metadata={"format": "pt"})
    for fname, what in (extra_files or {}).items():
        if callable(what):
            what(tmp / fname)
        else:
            (tmp / fname).write_text(json.dumps(what, indent=2))
    if extra_files:  # the files that belong to these weights, checked on loading (tokenizers, vocabularies)
        config = {**config, FILES: digests(tmp, list(extra_files))}
    (tmp / CONFIG).write_text(json.dumps(config, indent=2, default=str))
    if train_state is not None:
        torch.save(train_state, tmp / TRAIN_STATE)
    _fsync_tree(tmp)
    if final.exists():
        old = ckpt_root / f".{name}.old-{os.getpid()}"
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _fsync_dir(ckpt_root)
    return final


def digests(folder: Path, names: list[str]) -> dict[str, dict]:
    """``{name: {"sha256": hex, "bytes": size}}`` of files in ``folder``."""
    out = {}
    for name in names:
        data = (Path(folder) / name).read_bytes()
        out[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    return out


def verify_files(ckpt: Path, recorded: dict | None) -> None:
    """Each file recorded in a checkpoint's config.json is there and unchanged (a tokenizer copied from another
    run would silently map words to the wrong rows); checkpoints written before the record are not checked."""
    for name, want in (recorded or {}).items():
        f = Path(ckpt) / name
        if not f.is_file():
            raise CheckpointError(f"missing {f} (the checkpoint's config.json lists it)")
        got = digests(Path(ckpt), [name])[name]
        if got != want:
            raise CheckpointError(f"{f} does not belong to these weights: its sha256 {got['sha256'][:12]}... "
                                  f"({got['bytes']} bytes) differs from the {want['sha256'][:12]}... "
                                  f"({want['bytes']} bytes) recorded when the checkpoint was written; put back "
                                  "the file it was trained with")


def clean_stale(ckpt_root: Path) -> list[Path]:
    """Remove the temporary directories a crashed save left (``.step_*.tmp-PID``, ``.*.old-PID``, ``.*.lnk-PID``);
    call only while holding the run directory's lock. Returns what was removed."""
    removed = []
    if not Path(ckpt_root).is_dir():
        return removed
    for p in Path(ckpt_root).glob(".*"):
        if any(tag in p.name for tag in (".tmp-", ".old-", ".lnk-")):
            if p.is_symlink() or p.is_file():
                p.unlink()
            else:
                shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def point(ckpt_root: Path, link: str, target: str) -> None:
    """Atomically make ``ckpt_root/link`` a symlink to ``target`` (a sibling directory)."""
    tmp = ckpt_root / f".{link}.lnk-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, ckpt_root / link)
    _fsync_dir(ckpt_root)


def resolve(path: str | Path) -> Path:
    """A checkpoint directory from a checkpoint dir, a ``checkpoints/`` dir or a run dir."""
    p = Path(path)
    for cand in (p, p / BEST, p / LATEST, p / "checkpoints" / BEST, p / "checkpoints" / LATEST):
        if (cand / CONFIG).is_file():
            return cand.resolve()
    raise CheckpointError(f"no checkpoint found at {p} (looked for {CONFIG} in it, in best/, latest/ "
                          f"and checkpoints/best|latest/)")


def read_config(ckpt: Path) -> dict:
    f = Path(ckpt) / CONFIG
    try:
        return json.loads(f.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"missing {f}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"corrupted {f}: {e}") from None


def load_weights(model: torch.nn.Module, ckpt: Path, strict: bool = True) -> None:
    """Copy the checkpoint's weights into ``model`` (in place, so cuDNN's flat RNN buffers stay valid).

    A tied (shared) weight needs only one of its names in the file (see :func:`weights_for_saving`)."""
    f = Path(ckpt) / WEIGHTS
    if not f.is_file():
        raise CheckpointError(f"missing weights file {f}")
    try:
        state = load_file(str(f), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"cannot read weights {f} (truncated or corrupted?): {e}") from None
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise CheckpointError(f"weights {f} do not fit the model: {e}") from None
    groups: dict[tuple, list[str]] = {}
    for name, t in model.state_dict().items():
        if t.numel():
            groups.setdefault((t.device, t.data_ptr(), t.dtype, tuple(t.shape), t.stride()), []).append(name)
    loaded_via_tie = {name for names in groups.values() if len(names) > 1 and any(n in state for n in names)
                      for name in names}
    missing = [m for m in missing if m not in loaded_via_tie]
    if strict and (missing or unexpected):
        raise CheckpointError(f"weights {f} do not fit the model: missing {sorted(missing)}, "
                              f"unexpected {sorted(unexpected)}")


def load_train_state(ckpt: Path) -> dict:
    """Load ``train_state.pt`` with ``weights_only=True``: a pickle that would run code fails."""
    f = Path(ckpt) / TRAIN_STATE
    if not f.is_file():
        raise CheckpointError(f"missing training state {f}")
    try:
        return torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for unsafe globals, RuntimeError for truncation
        raise CheckpointError(f"refusing or unable to load {f}: {type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}") from None


def prune(ckpt_root: Path, keep: int, protect: set[str]) -> None:
    """Delete the oldest ``step_*`` checkpoints beyond ``keep``, never those in ``protect``."""
    steps = sorted(p for p in ckpt_root.glob("step_*") if p.is_dir())
    for p in steps[: max(0, len(steps) - keep)]:
        if p.name not in protect:
            shutil.rmtree(p, ignore_errors=True)


# ------------------------------------------------------------------------------------- the config.json schema
FORMAT_VERSION = 2
_V1_DROPPED = ("record", "record_name")  # run-config keys of format 1 that no longer exist


def checkpoint_config(task: str, model: Any, run_config: Any, **data: Any) -> dict:
    """``config.json`` of every task's checkpoints (format 2), each value stored once::

        {"format_version": 2, "task": "sentiment",
         "model": {...},    # the task's ModelConfig: the builder's input (vocabulary sizes included)
         "data": {...},     # facts of the data the model was trained on (labels, tags, tokenizer files, ...)
         "config": {...}}   # the resolved run config, less its model block (that is "model")

    ``model`` and ``run_config`` are dataclass instances (or plain dicts).
    """
    import dataclasses

    def plain(x):
        return json.loads(json.dumps(dataclasses.asdict(x) if dataclasses.is_dataclass(x) else x, default=str))

    run = plain(run_config)
    run.pop("model", None)
    return {"format_version": FORMAT_VERSION, "task": task, "model": plain(model), "data": plain(data),
            "config": run}


class Stored:
    """A checkpoint's ``config.json`` read as format 2 (format-1 files, written before the task API, are
    upgraded on reading: ``model`` = their run config's model block updated by ``model_args``)."""

    def __init__(self, data: dict, path: Path):
        self.path = path
        self.format_version = int(data.get("format_version", FORMAT_VERSION))
        self.task: str = data["task"]
        self.model: dict = dict(data.get("model") or {})
        self.data: dict = dict(data.get("data") or {})
        self.config: dict = dict(data.get("config") or {})
        self.files: dict = dict(data.get(FILES) or {})
        self.export: dict | None = data.get("export")  # an export directory's block (seqnlp export), else None

    def run_config(self, schema: type, overrides: list[str] | tuple[str, ...] = ()):
        """The run config as ``schema`` (the model block from ``model``) with dotted ``overrides`` applied."""
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException

        from ..config import ConfigError

        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise ConfigError(f"overrides must look like key.sub=value, got: {bad}")
        try:
            base = OmegaConf.structured(schema)
            stored = OmegaConf.merge(base, {**self.config, "model": self.model})
        except OmegaConfBaseException as e:
            raise CheckpointError(f"{self.path / CONFIG} does not fit this version's {self.task} config: {e}") from None
        try:
            return OmegaConf.to_object(OmegaConf.merge(stored, OmegaConf.from_dotlist(list(overrides))))
        except OmegaConfBaseException as e:
            raise ConfigError(f"bad override: {e}") from None

    def model_config(self, schema: type):
        """The ``model`` block as the task's ModelConfig dataclass."""
        from ..config import ConfigError, from_dict

        try:
            return from_dict(schema, self.model)
        except ConfigError as e:
            raise CheckpointError(f"{self.path / CONFIG}: model block: {e}") from None


def read_stored(ckpt: Path) -> Stored:
    """:func:`read_config` as a :class:`Stored`; an unknown ``format_version`` is a clear error."""
    data = read_config(ckpt)
    f = Path(ckpt) / CONFIG
    if not isinstance(data, dict) or "task" not in data:
        raise CheckpointError(f"{f} is not a seqnlp checkpoint config (no 'task' key)")
    version = data.get("format_version", 1)
    if version == 1:
        data = upgrade_v1(data)
    elif version != FORMAT_VERSION:
        raise CheckpointError(f"{f} has format_version {version!r}; this seqnlp reads format_version "
                              f"{FORMAT_VERSION} (and 1, the checkpoints written before it): upgrade seqnlp")
    return Stored(data, Path(ckpt))


def upgrade_v1(data: dict) -> dict:
    """A format-1 ``config.json`` (``config`` + ``model_args`` + facts at the top level) as format 2."""
    config = dict(data.get("config") or {})
    model = {**(config.pop("model", None) or {}), **(data.get("model_args") or {})}
    for k in _V1_DROPPED:
        config.pop(k, None)
    facts = {k: v for k, v in data.items() if k not in ("task", "config", "model_args", "format_version")}
    return {"format_version": 1, "task": data["task"], "model": model, "data": facts, "config": config}
