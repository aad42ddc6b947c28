"""Sharing trained models on the Hugging Face Hub: load by hub id, push a checkpoint with its model card.

    seqnlp.load("user/name")                  # or "user/name@revision"; --model user/name in every command
    seqnlp push --model runs/sst2 --repo-id user/sst2-bilstm [--private] [--revision BRANCH]
    seqnlp push --model runs/sst2 --repo-id user/sst2-bilstm --local-dir hub/sst2   # only write the folder

A model on the Hub is the same checkpoint as on disk -- ``model.safetensors``, ``config.json`` (format 2) and
the tokenizer / vocabulary files that config.json lists under ``files`` (their sha256 is checked on loading) --
plus ``README.md``, the model card generated from the checkpoint and its run (:mod:`seqnlp.card`). Training
state (``train_state.pt``) is never uploaded, and nothing is ever unpickled.

Downloads go through ``huggingface_hub.snapshot_download``: its cache (``HF_HUB_CACHE``, ``HF_HOME``), its
``HF_TOKEN`` and ``HF_HUB_OFFLINE``. An existing local path always wins over a hub id of the same spelling.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from .config import ConfigError
from .exit_codes import EXIT_CODES, guarded
from .train import checkpoint as ck

# owner/name, optionally @revision (a branch, tag or commit; may contain "/", e.g. refs/pr/1)
HUB_ID = re.compile(r"(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[^\s@]+))?")
CARD = "README.md"
# a folder a previous `seqnlp push --local-dir` wrote may hold these (and config.json's `files`) only
_LAYOUT = (ck.CONFIG, ck.WEIGHTS, CARD, ".gitattributes")


# ------------------------------------------------------------------------------------------------ ids, cache
def parse_hub_id(model: str) -> tuple[str, str | None] | None:
    """``(repo_id, revision)`` of ``"owner/name"`` or ``"owner/name@revision"``; None for anything else."""
    m = HUB_ID.fullmatch(model.strip()) if isinstance(model, str) else None
    return (m["repo"], m["revision"]) if m else None


def cache_dir() -> Path:
    """The Hub cache folder ``snapshot_download`` uses: ``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
    huggingface_hub's default (``~/.cache/huggingface/hub``). Read when called, so that it is the folder
    named in the errors and the one searched."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(getattr(constants, "HF_HUB_CACHE", None) or constants.HUGGINGFACE_HUB_CACHE)


def offline() -> bool:
    """``HF_HUB_OFFLINE`` is set (read when called, as huggingface_hub reads it when imported)."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE") or bool(
        constants.HF_HUB_OFFLINE)


def hub_id(model: str | Path) -> tuple[str, str | None] | None:
    """``(repo_id, revision)`` when ``model`` names a Hub model (one that :func:`local_path` downloads into the
    Hub cache): a hub id that is not an existing local path. None for a local path, which always wins."""
    if isinstance(model, Path) or Path(model).exists():
        return None
    return parse_hub_id(str(model))


# ------------------------------------------------------------------------------------------------ loading
def local_path(model: str | Path) -> Path:
    """The local folder of ``model``: a path that exists is used as it is (it always wins); a string that looks
    like a hub id (``owner/name`` or ``owner/name@revision``) is downloaded into the Hub cache -- its
    ``config.json`` first, then only the checkpoint files that config lists -- and the snapshot folder returned;
    anything else is returned as a path (and :func:`~seqnlp.train.checkpoint.resolve` says it is missing).

    Every failure is a :class:`~seqnlp.train.checkpoint.CheckpointError` naming the id: offline and not cached
    (naming the cache folder), no such repo or revision, a gated repo, a repo that is not a seqnlp model."""
    hub = hub_id(model)
    if hub is None:
        return Path(model)
    repo_id, revision = hub
    folder = _download(repo_id, revision, [ck.CONFIG])
    data = _seqnlp_config(folder, repo_id, revision)
    listed = [name for name in (data.get(ck.FILES) or {}) if isinstance(name, str)]
    patterns = [ck.CONFIG, ck.WEIGHTS, CARD, *listed] if listed else [ck.CONFIG, ck.WEIGHTS, CARD, "*.json", "*.txt"]
    return _download(repo_id, revision, patterns)


def _errors():
    """huggingface_hub's error classes (``huggingface_hub.errors`` since 0.24, ``huggingface_hub.utils`` before)."""
    try:
        from huggingface_hub import errors
    except ImportError:  # pragma: no cover - huggingface_hub < 0.24
        from huggingface_hub import utils as errors
    return errors


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("seqnlp")
    except PackageNotFoundError:
        return "unknown"


def _where(repo_id: str, revision: str | None) -> str:
    return f"{repo_id}@{revision}" if revision else repo_id


def _download(repo_id: str, revision: str | None, patterns: list[str]) -> Path:
    """``snapshot_download`` of ``patterns`` (the one network boundary), its errors as CheckpointErrors."""
    import huggingface_hub

    errors = _errors()
    name, cache = _where(repo_id, revision), cache_dir()
    try:
        folder = huggingface_hub.snapshot_download(
            repo_id, revision=revision, allow_patterns=patterns, cache_dir=str(cache),
            local_files_only=offline(), library_name="seqnlp", library_version=_version())
    except errors.LocalEntryNotFoundError:
        why = ("the Hub is offline (HF_HUB_OFFLINE is set)" if offline() else "the Hub could not be reached")
        raise ck.CheckpointError(
            f"{name}: no such local path, and the Hugging Face Hub model {name} is not in the cache folder {cache} "
            f"while {why}: download it once online (unset HF_HUB_OFFLINE), or give a local run directory"
        ) from None
    except errors.GatedRepoError:
        raise ck.CheckpointError(f"the Hugging Face Hub model {name} is gated: accept its conditions on "
                                 f"https://huggingface.co/{repo_id} and set HF_TOKEN (or `hf auth login`)") from None
    except errors.RepositoryNotFoundError:
        raise ck.CheckpointError(f"{name}: no such local path, and no Hugging Face Hub model {repo_id} (or it is "
                                 "private: set HF_TOKEN, or `hf auth login`)") from None
    except errors.RevisionNotFoundError:
        raise ck.CheckpointError(f"the Hugging Face Hub model {repo_id} has no revision {revision!r} "
                                 "(a branch, tag or commit)") from None
    except errors.HFValidationError as e:
        raise ck.CheckpointError(f"{name}: no such local path, and not a valid Hub id: {e}") from None
    except errors.HfHubHTTPError as e:
        raise ck.CheckpointError(f"cannot download {name} from the Hugging Face Hub: "
                                 f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return Path(folder)


def _seqnlp_config(folder: Path, repo_id: str, revision: str | None) -> dict:
    """The downloaded ``config.json``, checked to be a seqnlp checkpoint config of a version this seqnlp reads."""
    name = _where(repo_id, revision)
    f = folder / ck.CONFIG
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ck.CheckpointError(f"the Hugging Face Hub repo {name} is not a seqnlp model (it has no "
                                 f"{ck.CONFIG})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ck.CheckpointError(f"the Hugging Face Hub repo {name} is not a seqnlp model "
                                 f"({ck.CONFIG} is not JSON: {e})") from None
    if not isinstance(data, dict) or "task" not in data or not ({"format_version", "model", "model_args"} & set(data)):
        raise ck.CheckpointError(f"the Hugging Face Hub repo {name} is not a seqnlp model (its {ck.CONFIG} has no "
                                 "seqnlp 'task' and 'format_version'): seqnlp loads the models `seqnlp push` "
                                 "uploads")
    version = data.get("format_version", 1)
    if version not in (1, ck.FORMAT_VERSION):
        raise ck.CheckpointError(f"the Hugging Face Hub model {name} has format_version {version!r}; this seqnlp "
                                 f"reads format_version {ck.FORMAT_VERSION} (and 1): upgrade seqnlp")
    return data


# ------------------------------------------------------------------------------------------------ pushing
def layout(model_dir: str | Path, folder: Path, repo_id: str, *, license: str = "mit",
           datasets: list[str] | None = None) -> Path:
    """Write the repo folder of the trained model ``model_dir`` (run or checkpoint directory) into ``folder``:
    ``model.safetensors``, ``config.json``, the files config.json lists (tokenizers, vocabularies) and
    ``README.md`` (the card). No training state. The checkpoint is verified first (its files' sha256)."""
    from .card import model_card
    from .tasks import TASKS
    from .train.rundir import run_dir

    ckpt = ck.resolve(local_path(model_dir))
    stored = ck.read_stored(ckpt)
    if stored.task not in TASKS:
        raise ck.CheckpointError(f"{ckpt}: unknown task {stored.task!r} (this seqnlp knows {', '.join(TASKS)})")
    ck.verify_files(ckpt, stored.files)
    if not (ckpt / ck.WEIGHTS).is_file():
        raise ck.CheckpointError(f"missing weights file {ckpt / ck.WEIGHTS}")
    names = list(stored.files) or sorted(  # checkpoints written before config.json listed its files
        p.name for p in ckpt.iterdir() if p.is_file() and p.suffix in (".json", ".txt") and p.name != ck.CONFIG)
    _prepare(folder)
    for name in (ck.WEIGHTS, ck.CONFIG, *names):
        shutil.copyfile(ckpt / name, folder / name)  # follows symlinks: plain files in the repo
    card = model_card(ckpt, run_dir(ckpt), repo_id=repo_id, license=license, datasets=datasets)
    (folder / CARD).write_text(card, encoding="utf-8")
    return folder


def _prepare(folder: Path) -> None:
    """``folder`` empty and ready: created, or emptied when it holds a previous push's files and nothing else."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--local-dir {folder} is a file, not a folder")
    entries = list(folder.iterdir()) if folder.is_dir() else []
    if entries:
        listed: set[str] = set()
        try:
            listed = set(json.loads((folder / ck.CONFIG).read_text()).get(ck.FILES) or {})
        except (OSError, ValueError, AttributeError):
            pass
        ours = set(_LAYOUT) | listed
        if not (folder / CARD).is_file() or "library_name: seqnlp" not in (folder / CARD).read_text(errors="replace") \
                or any(not p.is_file() or p.name not in ours for p in entries):
            raise ConfigError(f"--local-dir {folder} is not empty and not a folder `seqnlp push` wrote: choose a new "
                              "folder (or empty it)")
        for p in entries:
            p.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def push(model_dir: str | Path, repo_id: str, *, private: bool = False, revision: str | None = None,
         local_dir: str | Path | None = None, token: str | None = None, license: str = "mit",
         datasets: list[str] | None = None, commit_message: str | None = None) -> Path | str:
    """Share the trained model ``model_dir`` as the Hub repo ``repo_id``.

    With ``local_dir`` only the repo folder is written (returned as a Path); otherwise it is written to a
    temporary folder and uploaded with ``HfApi.create_repo(exist_ok=True)`` (+ ``create_branch`` for a
    ``revision``) and ``upload_folder``; returns the commit's URL. ``token``: else ``HF_TOKEN`` or the stored login."""
    if parse_hub_id(repo_id) is None or "@" in repo_id:
        raise ConfigError(f"--repo-id must look like owner/name, got {repo_id!r}")
    if local_dir is not None:
        return layout(model_dir, Path(local_dir), repo_id, license=license, datasets=datasets)
    with tempfile.TemporaryDirectory(prefix="seqnlp-push-") as tmp:
        folder = layout(model_dir, Path(tmp) / "repo", repo_id, license=license, datasets=datasets)
        return _upload(folder, repo_id, private=private, revision=revision, token=token,
                       commit_message=commit_message or f"seqnlp push of {Path(model_dir).name}")


def _upload(folder: Path, repo_id: str, *, private: bool, revision: str | None, token: str | None,
            commit_message: str) -> str:
    from huggingface_hub import HfApi

    errors = _errors()
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), revision=revision,
                                 commit_message=commit_message)
    except errors.HfHubHTTPError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ck.CheckpointError(f"cannot push to the Hugging Face Hub repo {repo_id}: {first} (a token with write "
                                 "access: HF_TOKEN or `hf auth login`)") from None
    except Exception as e:  # no network (OSError, httpx errors) or offline mode
        if isinstance(e, OSError) or type(e).__module__.split(".")[0] in ("httpx", "httpx2", "requests", "urllib3"):
            raise ck.CheckpointError(f"cannot reach the Hugging Face Hub to push {repo_id}: {e} (HF_HUB_OFFLINE "
                                     "set? use --local-dir DIR to write the folder only)") from None
        raise
    return str(getattr(info, "commit_url", None) or info)


# ------------------------------------------------------------------------------------------------ command line
DESCRIPTION = """Share a trained model on the Hugging Face Hub, with a model card generated from its checkpoint
and run (metrics.json, result.json): the repo holds model.safetensors, config.json, the tokenizer and vocabulary
files config.json lists, and README.md -- never the training state (train_state.pt) or a pickle.

  seqnlp push --model runs/sst2 --repo-id user/sst2-bilstm                  # upload (HF_TOKEN or `hf auth login`)
  seqnlp push --model runs/sst2 --repo-id user/sst2-bilstm --local-dir hub/ # only write the folder, to review

Then anyone loads it with seqnlp.load("user/sst2-bilstm") or `seqnlp predict --model user/sst2-bilstm`
(`user/sst2-bilstm@BRANCH` for a --revision)."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="seqnlp push", description=DESCRIPTION, epilog=EXIT_CODES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the trained model: a run directory or checkpoint directory")
    p.add_argument("--repo-id", required=True, help="the Hub repo to create or update, owner/name")
    p.add_argument("--private", action="store_true", help="create the repo private (an existing repo keeps its "
                   "visibility)")
    p.add_argument("--revision", default=None, help="push to this branch (created from main when missing)")
    p.add_argument("--local-dir", default=None, help="only write the repo folder here (new or a previous push's); "
                   "nothing is uploaded")
    p.add_argument("--license", default="mit", help="the card's license (default mit; the data's licence may "
                   "restrict more)")
    p.add_argument("--dataset", action="append", default=None, metavar="ID",
                   help="the card's datasets: Hub dataset ids (repeatable; default: the run's data.name)")
    p.add_argument("--token", default=None, help="a Hub token with write access (default: HF_TOKEN or the login)")
    p.add_argument("--message", default=None, help="the commit message")
    return p


def push_main(argv: list[str] | None = None) -> int:
    """``seqnlp push``; returns the exit status (see :data:`~seqnlp.exit_codes.EXIT_CODES`)."""
    return guarded(_push_main, argv)


def _push_main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    out = push(args.model, args.repo_id, private=args.private, revision=args.revision,
               local_dir=args.local_dir, token=args.token, license=args.license, datasets=args.dataset,
               commit_message=args.message)
    if args.local_dir:
        print(f"wrote {out} (not uploaded): {', '.join(sorted(p.name for p in Path(out).iterdir()))}",
              file=sys.stderr)
    else:
        print(f"pushed {args.model} to https://huggingface.co/{args.repo_id}: {out}", file=sys.stderr)


__all__ = ["cache_dir", "layout", "local_path", "offline", "parse_hub_id", "push", "push_main"]
