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


def test_infer_lifts_with_the_video_lifter_and_eval_with_the_mocap_one():
    """`mocli infer` without --model loads dstformer-small.video (trained on a detector's 2D as well); `mocli eval`
    loads dstformer-small.mocap (exact and synthetic 2D); both are shipped, and they are different weights."""
    import torch

    from mocli.cli.eval import load_lifter_info
    from mocli.infer_setup import load_setup
    from mocli.models.registry import shipped_weights_dir

    shipped = shipped_weights_dir()
    setup = load_setup(device="cpu")
    assert Path(setup.model_info["path"]) == shipped / "dstformer-small.video.pt"
    _, info = load_lifter_info(None, "cpu")
    assert Path(info["path"]) == shipped / "dstformer-small.mocap.pt"
    video, mocap = (
        dict(mocli.load_model(n).named_parameters()) for n in ("dstformer-small.video", "dstformer-small.mocap")
    )
    assert video.keys() == mocap.keys()
    assert any(not torch.equal(video[k], mocap[k]) for k in video)
