"""``seqnlp`` command line: ``train`` runs the recipe of the config's task; every other command runs a trained
model through :mod:`seqnlp.runner`. The tasks are those of the registry, :data:`seqnlp.tasks.TASKS`.

    seqnlp train --config recipes/configs/sentiment/sst2.yaml [key.sub=value ...] [--record PATH]
    seqnlp evaluate --model runs/sst2 [--split test]
    seqnlp predict --model runs/sst2 [--input FILE] [--output FILE] [--format text|jsonl]
    seqnlp ensemble --model runs/a --ensemble runs/b,runs/c
    seqnlp chat --model runs/dailydialog
    seqnlp tasks
"""

from __future__ import annotations

import os
import sys

# OpenMP threads that spin while waiting make torch 3-10x slower when the cores are shared with other processes
# (measured: 2 threads on 2 busy cores); passive waiting costs little on an idle machine. Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from .tasks import TASKS, get_task  # noqa: E402  (no torch import: the registry is plain data)

USAGE = """usage: seqnlp COMMAND [options]

Recurrent networks for sequence tasks on text.

commands:
  train      train a model from a recipe config: seqnlp train --config FILE [key.sub=value ...]
  evaluate   score a trained model on a split (writes metrics_<split>.json in its run directory; for a Hub
             model owner/name, in evaluations/owner__name/ here)
  predict    run a trained model on input lines from a file or stdin (text or jsonl output)
  ensemble   score several trained models of one task together
  chat       talk to a trained dialogue model in the terminal
  push       share a trained model on the Hugging Face Hub (or lay out its repo folder) with a model card
  serve      serve a trained model over HTTP (JSON API, OpenNMT-py's route, a page to try it)
  export     export a trained model as ONNX graphs for onnxruntime (--format onnx [--quantize int8])
  tasks      list the tasks
{extra}
Run `seqnlp COMMAND --help` for a command's options; `seqnlp train --config FILE --help` lists every key of
that task's config with its default.

{codes}"""


def _task_of_config(path: str) -> str:
    from .config import ConfigError, read_yaml_layers

    try:
        task = read_yaml_layers(path).get("task")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    if not task:
        raise ConfigError(f"{path} has no `task:` key (one of {', '.join(TASKS)})")
    get_task(str(task))
    return str(task)


def main(argv: list[str] | None = None) -> int:
    from .exit_codes import EXIT_CODES, EXIT_USAGE, MODES

    argv = list(sys.argv[1:] if argv is None else argv)
    extra = sorted({m for t in TASKS.values() for m in t.modes})
    usage = USAGE.format(extra="".join(f"  {m:10s} the {', '.join(t.name for t in TASKS.values() if m in t.modes)} "
                                       f"task's {m} command\n" for m in extra), codes=EXIT_CODES)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "tasks":
        for t in TASKS.values():
            print(f"{t.name:16s} {t.shape:28s} {t.description}")
        return 0
    if cmd == "train":
        from .config import ConfigError

        config = next((rest[i + 1] for i, a in enumerate(rest[:-1]) if a == "--config"), None)
        config = config or next((a.split("=", 1)[1] for a in rest if a.startswith("--config=")), None)
        if config is None:
            if "-h" in rest or "--help" in rest:
                print("usage: seqnlp train --config FILE [key.sub=value ...] [--record PATH]\n\n"
                      "`seqnlp train --config FILE --help` lists every key of that config's task.")
                return 0
            print("error: seqnlp train needs --config FILE (recipes/configs/<task>/<preset>.yaml)", file=sys.stderr)
            return EXIT_USAGE
        try:
            task = _task_of_config(config)
        except (ConfigError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_USAGE
        return get_task(task).recipe_main()(rest)
    if cmd == "push":
        from .hub import push_main

        return push_main(rest)
    if cmd == "serve":
        from .serve import main as serve_main

        return serve_main(rest)
    if cmd == "export":
        from .export import main as export_main

        return export_main(rest)
    if cmd in MODES or cmd in extra:
        from .runner import main as run  # torch is imported from here on

        return run(cmd, rest)
    print(f"error: unknown command {cmd!r}\n\n{usage}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
