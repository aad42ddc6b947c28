"""The command line every recipe shares: ``--config FILE [key.sub=value ...]``, then train and test.

    python recipes/<task>.py --config recipes/configs/<task>/<preset>.yaml [key.sub=value ...] [--record PATH]
    python recipes/<task>.py --mode predict --model RUN ...     # any runner command (seqnlp.runner)

A recipe module defines ``train(cfg, config_path) -> metrics`` (the training script, top to bottom) and
``main = recipe_main_for(...)``; seeding, threads, the config, ``--help`` (every key with its default), exit
codes and ``--record`` are handled here once.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

from omegaconf import OmegaConf

from ..config import ConfigError, load_config, read_yaml_layers
from ..exit_codes import EXIT_CODES, MODES, guarded
from ..runner import main as runner_main
from ..tasks import get_task
from ..train.device import seed_everything, set_threads
from ..train.lock import RunLock
from ..train.rundir import check_output_dir


def time_note(cfg) -> str | None:
    """What bounds a run's training time, said at its start (``train.max_minutes``, ``cpu_minutes``)."""
    t = cfg.train
    parts = []
    if t.max_minutes:
        parts.append(f"{t.max_minutes:g} minutes of training (train.max_minutes)")
    if getattr(cfg, "cpu_minutes", 0):
        parts.append(f"{cfg.cpu_minutes:g} CPU-minutes of training steps (cpu_minutes)")
    if t.max_steps:
        parts.append(f"{t.max_steps} steps (train.max_steps)")
    if not parts:
        return f"training runs up to {t.epochs} epochs (train.epochs), early stopping after {t.patience} " \
               f"evaluations without improvement" if t.patience else f"training runs {t.epochs} epochs"
    return "training stops after " + " or ".join(parts) + ", plus evaluation"


def recipe_main(argv: list[str] | None, *, task: str, schema: type, description: str,
                train: Callable) -> int:
    """Parse a recipe's command line and train, or hand a runner command (``--mode predict``) to the runner."""
    argv = list(sys.argv[1:] if argv is None else argv)
    defaults = OmegaConf.to_yaml(OmegaConf.structured(schema))
    p = argparse.ArgumentParser(
        prog=f"recipes/{task}.py", description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EXIT_CODES + "\n\nconfig keys and their defaults (override any with key.sub=value):\n\n"
        + "\n".join("  " + line for line in defaults.splitlines()))
    p.add_argument("--config", help=f"YAML config (recipes/configs/{task}/*.yaml)")
    p.add_argument("--mode", default="train", help=f"train (default: train, then score the test split), or a "
                   f"runner command on a trained model: {', '.join(MODES)} (and the task's own; see seqnlp --help)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--record", default="", help="also copy the run's result record (result.json) to this path, "
                   f"e.g. results/{task}/NAME.json")
    p.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. train.lr=1e-3 model.hidden_size=512")
    return guarded(_run, p, argv, task, schema, train)


def _run(p: argparse.ArgumentParser, argv: list[str], task: str, schema: type, train: Callable) -> int | None:
    pre = argparse.ArgumentParser(add_help=False)  # only what decides between training and a runner command
    pre.add_argument("--mode", default="train")
    pre.add_argument("--config")
    first, passed = pre.parse_known_args(argv)
    if first.mode != "train":  # everything else goes to the runner as given, in order
        if "--model" not in passed and not any(a.startswith("--model=") for a in passed):
            overrides = [o for o in passed if "=" in o and not o.startswith("-")]
            passed = ["--model", load_config(schema, first.config, overrides).output_dir, *passed]
        return runner_main(first.mode, passed, prog=f"recipes/{task}.py --mode {first.mode}", task=task)
    known, rest = p.parse_known_args(argv)
    if rest:
        p.error(f"unrecognized arguments: {' '.join(rest)}")
    other = read_yaml_layers(known.config).get("task") if known.config else None
    cfg = load_config(schema, known.config, known.overrides) if other in (None, task) else None
    if cfg is None or cfg.task != task:
        other = other if cfg is None else cfg.task
        raise ConfigError(f"{known.config} is a config for task {other!r}, not {task!r}: run it with "
                          f"`seqnlp train --config {known.config}` (or recipes/{other}.py)")
    if known.print_config:
        print(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
        return None
    set_threads(cfg.train.threads)
    seed_everything(cfg.train.seed)  # before any data or model randomness, for every task
    note = time_note(cfg)
    if note:
        print(f"{task}: {note}", file=sys.stderr)
    check_output_dir(cfg.output_dir)  # a file there: say so before the lock makes the directory
    check = getattr(get_task(task).api, "check_config", None)
    if check is not None:  # bad enumerated values: before any directory, lock or data
        check(cfg)
    if cfg.train.restart:
        fresh_start(Path(cfg.output_dir))
    try:
        with RunLock(cfg.output_dir):
            train(cfg, known.config)
    except KeyboardInterrupt:  # the trainer saved a checkpoint and said how to resume
        print("no final metrics written (the run did not finish)", file=sys.stderr)
        raise
    if known.record:
        dest = Path(known.record)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(cfg.output_dir) / "result.json", dest)
        print(f"recorded {dest}", file=sys.stderr)
    return None


def fresh_start(out: Path) -> None:
    """``train.restart=true``: keep an existing run directory as ``OUT.previous-TIME`` and start an empty one."""
    if out.is_dir() and any(out.iterdir()):
        with RunLock(out):  # never move a directory another run is writing
            pass
        dest = out.with_name(f"{out.name}.previous-{time.strftime('%Y%m%d-%H%M%S')}")
        os.replace(out, dest)
        print(f"train.restart: the previous run in {out} is kept as {dest}; starting afresh", file=sys.stderr)


def config_name(config_path: str | None) -> str:
    return Path(config_path).stem if config_path else "default"


__all__ = ["config_name", "recipe_main", "time_note"]
