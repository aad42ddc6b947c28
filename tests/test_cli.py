import subprocess
import sys

from seqnlp.cli import main
from seqnlp.runner import EXIT_DATA, EXIT_USAGE
from seqnlp.tasks import TASKS


def test_help_lists_commands_and_exit_codes(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("train", "evaluate", "predict", "ensemble", "chat", "tasks", "gates", "attention"):
        assert f"\n  {cmd}" in out
    assert "exit status" in out


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "seqnlp.cli", "tasks"], capture_output=True, text=True, check=True)
    assert all(t in out.stdout for t in TASKS)


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path)]) == EXIT_DATA
    assert "no checkpoint found" in capsys.readouterr().err


def test_usage_errors(tmp_path, capsys):
    assert main(["no-such-command"]) == EXIT_USAGE
    assert main(["train"]) == EXIT_USAGE
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == EXIT_USAGE
    cfg = tmp_path / "notask.yaml"
    cfg.write_text("output_dir: x\n")
    assert main(["train", "--config", str(cfg)]) == EXIT_USAGE
    cfg.write_text("task: no_such_task\n")
    assert main(["train", "--config", str(cfg)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "missing.yaml" in err and "no `task:` key" in err and "unknown task 'no_such_task'" in err
