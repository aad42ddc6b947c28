import subprocess
import sys

from seqnlp.cli import TASKS, main


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for cmd in ("train", "evaluate", "predict", "chat"):
        assert cmd in out


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "seqnlp.cli", "tasks"], capture_output=True, text=True, check=True)
    assert all(t in out.stdout for t in TASKS)


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit, match="no checkpoint found"):
        main(["evaluate", "--model", str(tmp_path)])
