"""Where weights are found: the user weights folder, names, run folders, and folders that cannot be read."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import mocli
from mocli.cli.main import app
from mocli.errors import MocliError
from mocli.models.checkpoint import build_checkpoint, save_checkpoint
from mocli.models.registry import find_weights, resolve_weights, user_weights_dir

runner = CliRunner()


def _unreadable(monkeypatch, folder: Path) -> None:
    """Make listing ``folder`` fail as it does without read permission (tests may run as root, who can read all)."""
    iterdir = Path.iterdir

    def refuse(self):
        if self == folder:
            raise PermissionError(13, "Permission denied", str(self))
        return iterdir(self)

    monkeypatch.setattr(Path, "iterdir", refuse)


def test_user_weights_found_by_name(tmp_path):
    folder = user_weights_dir()  # $MOCLI_HOME/weights, isolated per test by conftest
    path = save_checkpoint(build_checkpoint(mocli.create_model("dstformer-tiny"), "dstformer-tiny"), folder / "t.pt")
    assert find_weights()["t"] == ("user", path)
    assert resolve_weights("t") == path


def test_unreadable_user_weights_folder_is_one_line_naming_it(tmp_path, monkeypatch):
    folder = user_weights_dir()
    folder.mkdir(parents=True)
    _unreadable(monkeypatch, folder)
    with pytest.raises(MocliError, match=f"{folder}: cannot read this weights folder \\(Permission denied\\)"):
        find_weights()
    result = runner.invoke(app, ["weights", "list"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and f"{folder}: cannot read this weights folder" in result.output
    assert "MOCLI_HOME" in result.output


def test_pipe_given_as_checkpoint_is_refused(tmp_path):
    fifo = tmp_path / "m.pt"
    os.mkfifo(fifo)
    with pytest.raises(MocliError, match="m.pt: not a regular file"):
        mocli.load_model(fifo)
