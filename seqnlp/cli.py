"""``seqnlp`` command line: dispatches to the task's recipe.

    seqnlp train --config recipes/configs/sentiment/sst2.yaml [key.sub=value ...]
    seqnlp evaluate --model runs/sst2 [--split test]
    seqnlp predict --model runs/sst2 [--input FILE] [--output FILE]
    seqnlp chat --model runs/dailydialog
"""

from __future__ import annotations

import argparse
import importlib
import sys

from omegaconf import OmegaConf

# task name (the `task` key of a config / checkpoint) → recipe module
TASKS = {
    "sentiment": "seqnlp.recipes.sentiment",
    "pos_tagging": "seqnlp.recipes.pos_tagging",
    "translation": "seqnlp.recipes.translation",
    "dialogue": "seqnlp.recipes.dialogue",
    "char_generator": "seqnlp.recipes.char_generator",
}


def recipe_module(task: str):
    if task not in TASKS:
        raise SystemExit(f"error: unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    return importlib.import_module(TASKS[task])


def _task_of_config(path: str) -> str:
    try:
        task = OmegaConf.load(path).get("task")
    except FileNotFoundError:
        raise SystemExit(f"error: config file not found: {path}") from None
    if not task:
        raise SystemExit(f"error: {path} has no `task:` key (one of {', '.join(TASKS)})")
    return str(task)


def _task_of_model(path: str) -> str:
    from .train.checkpoint import CheckpointError, read_config, resolve

    try:
        return read_config(resolve(path))["task"]
    except (CheckpointError, KeyError) as e:
        raise SystemExit(f"error: {e}") from None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(
        prog="seqnlp",
        description="Recurrent networks for sequence tasks on text. Each command dispatches to the "
        "recipe of the task named in the config (train) or in the trained model (evaluate, predict, chat).",
        epilog="Run `seqnlp COMMAND --help`, or `python recipes/<task>.py --help` for a recipe's config keys.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    t = sub.add_parser("train", help="train a model from a recipe config", add_help=False)
    t.add_argument("--config", required=True)
    for name, text in (("evaluate", "score a trained model on a split (writes metrics.json)"),
                       ("predict", "run a trained model on raw input from a file or stdin"),
                       ("chat", "talk to a trained dialogue model in the terminal")):
        s = sub.add_parser(name, help=text, add_help=False)
        s.add_argument("--model", required=True)
    sub.add_parser("tasks", help="list the tasks and their recipe modules")
    if not argv or argv[0] in ("-h", "--help"):
        p.print_help()
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "tasks":
        for k, v in TASKS.items():
            print(f"{k:16s} {v}")
        return 0
    if cmd not in ("train", "evaluate", "predict", "chat"):
        p.print_help(sys.stderr)
        return 2
    known, _ = sub.choices[cmd].parse_known_args(rest)
    if "-h" in rest or "--help" in rest:
        if cmd == "train" and getattr(known, "config", None):
            task = _task_of_config(known.config)
            return recipe_module(task).main(["--help"])
        print(f"usage: seqnlp {cmd} {'--config FILE [key=value ...]' if cmd == 'train' else '--model DIR'} "
              "[recipe options]\n\nThe recipe's own --help lists its options: python recipes/<task>.py --help")
        return 0
    if cmd == "train":
        if not getattr(known, "config", None):
            raise SystemExit("error: seqnlp train needs --config FILE")
        task = _task_of_config(known.config)
        return recipe_module(task).main(["--mode", "train", *rest])
    if not getattr(known, "model", None):
        raise SystemExit(f"error: seqnlp {cmd} needs --model DIR")
    task = _task_of_model(known.model)
    return recipe_module(task).main(["--mode", cmd, *rest])


if __name__ == "__main__":
    raise SystemExit(main())
