"""The one runner for trained models of every task: evaluate, predict, ensemble, chat and task modes.

    seqnlp evaluate --model RUN [--split test] [key.sub=value ...]     # writes RUN/metrics_<split>.json
    seqnlp evaluate --model owner/name          # a Hub model: writes ./evaluations/owner__name/metrics_test.json
    seqnlp predict  --model RUN [--input FILE|-] [--output FILE|-] [--format text|jsonl] [key.sub=value ...]
    seqnlp ensemble --model RUN --ensemble RUN2,RUN3 [--split test] [--record PATH]
    seqnlp chat     --model RUN                                        # dialogue models

``RUN`` is a run directory, a checkpoint directory or a Hub id (``owner/name[@revision]``, :mod:`seqnlp.hub`;
its metrics go to ``evaluations/`` under the current directory, not into the Hub cache). ``key.sub=value``
overrides the model's stored run config (``search.beam_size=10``, ``sample.temperature=0.7``, ``data.name=...``
for evaluating on other data).
``predict`` writes exactly one output per input line, in order (a blank line gives an empty result); ``text``
is one line per result, ``jsonl`` one JSON object ``{"input": line, ...result}``.

In Python the same predictor is :func:`seqnlp.load` ``(path).predict(list_of_strings)``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .config import ConfigError
from .data.errors import DataError
from .data.readers import open_text
from .exit_codes import EXIT_CODES, EXIT_DATA, EXIT_OK, EXIT_USAGE, MODES, guarded
from .hub import hub_id, local_path
from .tasks import TASKS, Mode, get_task
from .train import checkpoint as ck
from .train.rundir import one_line, record_result, run_dir, write_json


# ------------------------------------------------------------------------------------------------ loading
def load(path: str | Path, device: str = "auto", overrides: list[str] | tuple[str, ...] = (), *,
         task: str | None = None, precision: str | None = None, threads: int = 0, stored: ck.Stored | None = None):
    """The predictor of a trained model (run directory or checkpoint directory) of any task.

    ``overrides`` are dotted keys of the stored run config; ``precision`` overrides its ``infer_precision``;
    ``threads`` > 0 fixes torch's threads (else the run's ``train.threads``); ``stored``: the checkpoint's
    config.json already read (by the command line), so that it is parsed once."""
    from .train.device import pick_device, set_threads

    ckpt = ck.resolve(local_path(path)) if stored is None else stored.path  # a local path, else a hub id
    stored = stored or ck.read_stored(ckpt)
    if stored.task not in TASKS:
        raise ck.CheckpointError(f"{ckpt}: unknown task {stored.task!r} (this seqnlp knows {', '.join(TASKS)})")
    if task is not None and stored.task != task:
        raise ck.CheckpointError(f"{ckpt} is a {stored.task!r} model, not a {task!r} model: use "
                                 f"`seqnlp ... --model {path}` or recipes/{stored.task}.py")
    ck.verify_files(ckpt, stored.files)  # a tokenizer that does not belong to the weights is refused
    api = get_task(stored.task).api
    if stored.format_version == 1 and hasattr(api, "upgrade_v1"):
        api.upgrade_v1(stored)
    overrides = list(overrides) + ([f"infer_precision={precision}"] if precision else [])
    cfg = stored.run_config(api.Config, overrides)
    set_threads(threads or cfg.train.threads)
    if stored.export is not None:  # a `seqnlp export` directory: the task's predictor on onnxruntime sessions
        from .export.runtime import load_predictor as load_exported

        return load_exported(ckpt, stored, cfg, threads or cfg.train.threads)
    return api.load_predictor(ckpt, stored, cfg, pick_device(device))


def task_of(predictor) -> str:
    return predictor.config.task


# ------------------------------------------------------------------------------------------------ input / output
def read_lines(path: str) -> list[str]:
    """The lines of ``path`` (``-``: stdin), line terminators removed; a final newline adds no line."""
    if path == "-":
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode("utf-8")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            raise DataError(f"not valid UTF-8 (byte {e.start})", "<stdin>", line) from None
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return [x[:-1] if x.endswith("\r") else x for x in lines]
    if not Path(path).is_file():
        raise DataError("no such file", path)
    return list(open_text(path))


def _open_output(path: str):
    if path == "-":
        return sys.stdout
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return open(path, "w", encoding="utf-8", newline="\n")
    except OSError as e:
        raise DataError(f"cannot write: {e.strerror}", path) from None


def write_results(sink, lines: list, results: list[dict], fmt: str, api, predictor=None) -> None:
    """One output per input: ``text`` (the task's :func:`format_text`, one line), ``jsonl``, or one of the task's
    ``OUTPUT_FORMATS`` (``writer(sink, inputs, results, predictor)``)."""
    formats = getattr(api, "OUTPUT_FORMATS", {})
    if fmt in formats:
        formats[fmt](sink, lines, results, predictor)
        return
    for line, r in zip(lines, results):
        if fmt == "jsonl":
            sink.write(json.dumps({"input": line, **r}, ensure_ascii=False) + "\n")
        else:
            sink.write(one_line(api.format_text(r)) + "\n")


def predict(predictor, args) -> list[dict]:
    api = get_task(task_of(predictor)).api
    custom = getattr(api, "read_inputs", None)
    inputs = custom(args.input) if custom is not None and args.input != "-" else None
    if inputs is None:
        lines = read_lines(args.input)
        parse = getattr(api, "parse_input", None)
        inputs = [parse(x) for x in lines] if parse else lines
    else:
        lines = inputs
    t0 = time.perf_counter()
    results = predictor.predict(inputs, progress=sys.stderr.isatty())  # progress bars on stderr
    if len(results) != len(inputs):  # the contract every task keeps; a broken one must not misalign output
        raise RuntimeError(f"{task_of(predictor)} predictor returned {len(results)} results for {len(inputs)} inputs")
    sink = _open_output(args.output)
    try:
        write_results(sink, lines, results, args.format, api, predictor)
    finally:
        if sink is not sys.stdout:
            sink.close()
    if args.output != "-":
        print(f"{len(results)} results in {time.perf_counter() - t0:.1f} s -> {args.output}", file=sys.stderr)
    return results


EVALUATIONS = Path("evaluations")


def output_dir(model: str | Path, checkpoint: str | Path) -> Path:
    """Where ``evaluate`` and ``ensemble`` write their metrics for ``--model model``: its run directory; for a Hub
    model ``evaluations/<owner>__<name>/`` (``.../<owner>__<name>@<revision>/`` for a revision, ``/`` in it as
    ``__``) under the current directory, never the download in the Hub cache (not the user's folder, and its
    files are links into blobs that revisions share)."""
    hub = hub_id(model)
    if hub is None:
        return run_dir(checkpoint)
    repo_id, revision = hub
    return EVALUATIONS / (repo_id.replace("/", "__") + (f"@{revision.replace('/', '__')}" if revision else ""))


def evaluate(predictor, args) -> dict:
    api = get_task(task_of(predictor)).api
    t0 = time.perf_counter()
    metrics = api.evaluate(predictor, args.split)
    metrics.setdefault("split", args.split)
    metrics["eval_seconds"] = round(time.perf_counter() - t0, 2)
    metrics["checkpoint"] = str(predictor.checkpoint)
    path = write_json(output_dir(args.model, predictor.checkpoint) / f"metrics_{args.split}.json", metrics)
    summary = getattr(api, "summary", None)
    print(summary(metrics) if summary else json.dumps({k: v for k, v in metrics.items()
                                                       if isinstance(v, (int, float, str))}, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return metrics


def ensemble(predictor, args) -> dict:
    api = get_task(task_of(predictor)).api
    if not hasattr(api, "ensemble"):
        raise ConfigError(f"the {task_of(predictor)} task has no ensemble mode")
    others = [d for d in (args.ensemble or "").split(",") if d]
    if not others:
        raise ConfigError("seqnlp ensemble needs --ensemble RUN[,RUN...] besides --model")
    t0 = time.time()
    members = [predictor] + [load(d, args.device, args.overrides, task=task_of(predictor), threads=args.threads)
                             for d in others]
    metrics = api.ensemble(members, args.split)
    metrics.update(split=args.split, members_paths=[str(args.model), *others])
    path = write_json(output_dir(args.model, predictor.checkpoint) / f"metrics_ensemble_{args.split}.json", metrics)
    if args.record:
        record(args.record, task_of(predictor), metrics, time.time() - t0, extra={"ensemble": [args.model, *others]})
    summary = getattr(api, "summary", None)
    print(summary(metrics) if summary else json.dumps({k: v for k, v in metrics.items()
                                                       if isinstance(v, (int, float, str))}, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return metrics


def record(path: str | Path, task: str, metrics: dict, wall: float, config: str | None = None,
           extra: dict | None = None) -> dict:
    """A result record (metrics, command, commit, wall time, machine) at ``path``, a path the user named."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        rec = record_result(task, config, Path(tmp), metrics, wall, extra)
    write_json(path, rec)
    print(f"recorded {path}", file=sys.stderr)
    return rec


CHAT_HELP = """commands: /reset  forget the conversation    /history  show it    /quit  leave (or Ctrl-D)
a line starting with // says that line without its first /"""


def chat(predictor, args) -> None:
    """Talk to the model; turns come from stdin (or ``--input``), one a line.

    At a terminal each reply is printed as ``bot> reply``; with piped input only the reply, one a line.
    ``/reset``, ``/history``, ``/help`` and ``/quit`` are commands; blank lines are ignored. Notes go to stderr.
    """
    api = get_task(task_of(predictor)).api
    if not hasattr(api, "chat_session"):
        raise ConfigError(f"task {task_of(predictor)} has no chat mode (seqnlp chat talks to dialogue models)")
    session = api.chat_session(predictor)
    stream = iter(sys.stdin if args.input == "-" else open_text(args.input))
    tty = args.input == "-" and sys.stdin.isatty()
    if tty:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
        print(f"{getattr(session, 'banner', 'chatting')}\n{CHAT_HELP}", file=sys.stderr)
    while True:
        if tty:
            try:
                line = input("you> ")
            except EOFError:
                print(file=sys.stderr)
                break
        else:
            line = next(stream, None)
            if line is None:
                break
        line = line.rstrip("\r\n").strip()
        if not line:
            continue
        if line.startswith("/") and not line.startswith("//"):
            cmd = line.split()[0].lower()
            if cmd in ("/quit", "/exit", "/q"):
                break
            if cmd in ("/reset", "/new"):
                session.reset()
                print("(conversation reset)", file=sys.stderr)
            elif cmd == "/history":
                print("\n".join(f"{'you' if i % 2 == 0 else 'bot'}: {t}" for i, t in enumerate(session.history))
                      or "(no history)", file=sys.stderr)
            else:
                print(("" if cmd == "/help" else f"unknown command {cmd}\n") + CHAT_HELP, file=sys.stderr)
            continue
        reply = session.say(line[1:] if line.startswith("//") else line)
        print(f"bot> {reply}" if tty else reply, flush=True)


# ------------------------------------------------------------------------------------------------ command line
def parser(mode: str, api: Any = None, prog: str | None = None) -> argparse.ArgumentParser:
    """The command line of ``mode`` (with the task's own options when ``api``, its task module, is known)."""
    extra: Mode | None = getattr(api, "EXTRA_MODES", {}).get(mode) if api is not None else None
    p = argparse.ArgumentParser(prog=prog or f"seqnlp {mode}", description=MODES.get(mode) or (extra and extra.help),
                                epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a run directory, checkpoint directory or Hub id "
                   "(owner/name[@revision])")
    p.add_argument("--device", default="auto", help="auto (cuda, then mps, then cpu; default) | cpu | cuda | cuda:1")
    p.add_argument("--precision", default=None, help="fp32 | bf16 | fp16 | auto (default: the model's "
                   "infer_precision; bf16 where the device has it, else fp32 with a note)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: the run's train.threads)")
    if mode in ("evaluate", "ensemble"):
        p.add_argument("--split", default="test", help="split of the model's own data config (default test)")
    if mode == "ensemble":
        p.add_argument("--ensemble", default="", help="more trained models of the same task, comma-separated")
        p.add_argument("--record", default="", help="also write the result record to this path")
    if mode in ("predict", "chat") or extra is not None:
        p.add_argument("--input", default="-", help="input file, one input a line (default -: stdin)")
        p.add_argument("--output", default="-", help="output file (default -: stdout)")
    if mode == "predict":
        formats = ["text", "jsonl", *getattr(api, "OUTPUT_FORMATS", {})]
        p.add_argument("--format", choices=formats, default="text",
                       help="text: one line per input; jsonl: {\"input\": ..., result} per input")
    if extra is not None:
        extra.add_args(p)
    p.add_argument("overrides", nargs="*", help="dotted overrides of the stored config, e.g. search.beam_size=10")
    return p


def _stored(argv: list[str]) -> ck.Stored | None:
    """The checkpoint config of the ``--model`` in ``argv``, read once (None when no --model is given)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--model")
    known, _ = pre.parse_known_args(argv)
    return ck.read_stored(ck.resolve(local_path(known.model))) if known.model else None


def main(mode: str, argv: list[str], prog: str | None = None, task: str | None = None) -> int:
    """Run ``mode`` on ``argv``; returns the exit status (see :data:`EXIT_CODES`); errors are one line on stderr."""
    return guarded(_main, mode, argv, prog, task)


def _main(mode: str, argv: list[str], prog: str | None, task: str | None) -> None:
    stored = _stored(argv)
    api = get_task(stored.task).api if stored is not None and stored.task in TASKS else None
    args = parser(mode, api, prog).parse_args(argv)
    pred = load(args.model, args.device, args.overrides, precision=args.precision, threads=args.threads,
                stored=stored, task=task)
    if mode in MODES:
        {"evaluate": evaluate, "predict": predict, "ensemble": ensemble, "chat": chat}[mode](pred, args)
        return
    modes = getattr(api, "EXTRA_MODES", {})
    if mode not in modes:
        raise ConfigError(f"no command {mode!r} for a {task_of(pred)} model (its commands: "
                          f"{', '.join([*MODES, *modes])})")
    modes[mode].run(pred, args)


__all__ = ["EXIT_CODES", "EXIT_DATA", "EXIT_OK", "EXIT_USAGE", "MODES", "chat", "ensemble", "evaluate", "load",
           "main", "parser", "predict", "read_lines", "record", "write_results"]
