"""The exit status of every seqnlp command (a module of its own so that ``seqnlp --help`` needs no torch)."""

EXIT_OK, EXIT_DATA, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_CODES = f"""exit status:
  {EXIT_OK}  success
  {EXIT_DATA}  data or checkpoint error: a missing or broken model, unreadable input, bad data (the message names it)
  {EXIT_USAGE}  usage or config error: a bad option, an unknown config key or a bad value
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C): training saved a checkpoint to resume from and wrote no final metrics"""
MODES = {
    "evaluate": "score a trained model on a split of its data (writes metrics_<split>.json in the run directory)",
    "predict": "run a trained model on input lines from a file or stdin",
    "ensemble": "score several trained models of one task together on a split",
    "chat": "talk to a trained dialogue model in the terminal",
}
