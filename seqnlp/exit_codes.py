"""The exit status of every seqnlp command (a module of its own so that ``seqnlp --help`` needs no torch)."""

import sys

EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CODES = f"""exit status:
  {EXIT_OK}  success
  {EXIT_DATA}  data or checkpoint error: a missing or broken model, unreadable input, bad data (the message names it)
  {EXIT_USAGE}  usage or config error: a bad option, an unknown config key or a bad value
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C): training saved a checkpoint to resume from and wrote no final metrics"""
MODES = {
    "evaluate": "score a trained model on a split of its data (writes metrics_<split>.json in the run directory; "
                "for a Hub model id owner/name, in evaluations/owner__name/ under the current directory)",
    "predict": "run a trained model on input lines from a file or stdin",
    "ensemble": "score several trained models of one task together on a split (writes "
                "metrics_ensemble_<split>.json where evaluate writes metrics_<split>.json)",
    "chat": "talk to a trained dialogue model in the terminal",
}


def guarded(command, *args, **kwargs) -> int:
    """Run ``command(*args, **kwargs)`` as an entry point: its return value (None: 0) is the exit status; a data,
    checkpoint or lock error is one ``error:`` line and 1, a usage or config error one line and 2, argparse's
    ``--help`` / usage exits their own status, Ctrl-C 130. Every ``seqnlp`` command goes through it."""
    from .config import ConfigError
    from .data.errors import DataError
    from .train.checkpoint import CheckpointError
    from .train.lock import RunLocked

    try:
        status = command(*args, **kwargs)
        return EXIT_OK if status is None else int(status)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return int(e.code or 0) if not isinstance(e.code, str) else EXIT_USAGE
    except (DataError, CheckpointError, RunLocked) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_DATA
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
