"""The result folder: written in a hidden sibling and swapped in whole; what a killed run leaves is tidied."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mocli.errors import InputError
from mocli.result_folder import OutputBusy, OutputLock, is_complete, lock_path, staged_result


def _result(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_a_new_result_appears_whole_and_replaces_the_earlier_one(tmp_path):
    out = _result(tmp_path / "walk", {"joints3d.npz": "old", "motion.bvh": "old", "summary.json": "{}"})
    with staged_result(out, overwrite=True) as work:
        assert work.parent == tmp_path and work.name.startswith(".walk.part-")
        assert lock_path(out).is_file() and (out / "motion.bvh").read_text() == "old"  # untouched while written
        (work / "joints3d.npz").write_text("new")
        (work / "summary.json").write_text("{}")
    assert sorted(p.name for p in out.iterdir()) == ["joints3d.npz", "summary.json"]
    assert (out / "joints3d.npz").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk"]


def test_a_failure_leaves_the_earlier_result_and_no_work_folder(tmp_path):
    out = _result(tmp_path / "walk", {"joints3d.npz": "old", "summary.json": "{}"})
    with pytest.raises(OSError), staged_result(out, overwrite=True) as work:
        (work / "joints3d.npz").write_text("new")
        raise OSError(28, "No space left on device")
    assert (out / "joints3d.npz").read_text() == "old" and is_complete(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk"]


def test_a_complete_result_is_kept_without_overwrite(tmp_path):
    out = _result(tmp_path / "walk", {"summary.json": "{}"})
    with staged_result(out) as work:
        assert work is None


def test_what_a_killed_run_left_is_tidied(tmp_path):
    # killed between the two renames of a swap: the earlier result is aside, the new one still a part folder
    _result(tmp_path / ".walk.old-abc", {"joints3d.npz": "old", "summary.json": "{}"})
    _result(tmp_path / ".walk.part-def", {"joints3d.npz": "half"})
    _result(tmp_path / ".walker.part-ghi", {"joints3d.npz": "another input's"})  # not walk's: kept
    out = tmp_path / "walk"
    with staged_result(out) as work:
        assert work is None  # the earlier complete result is back, so nothing to do
    assert (out / "joints3d.npz").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".walker.part-ghi", "walk"]


def test_a_folder_with_other_files_is_not_replaced(tmp_path):
    out = _result(tmp_path / "walk", {"joints3d.npz": "old", "thesis.tex": "mine"})
    with pytest.raises(InputError, match=r"holds files mocli did not write \(thesis.tex\)"):
        with staged_result(out, overwrite=True):
            pass
    assert (out / "thesis.tex").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="exists and is not a folder"), staged_result(tmp_path / "file"):
        pass


def test_the_lock_sits_beside_the_folder_and_a_live_one_means_busy(tmp_path):
    out = tmp_path / "walk"
    lock_path(out).parent.mkdir(exist_ok=True)
    lock_path(out).write_text(json.dumps({"pid": os.getppid(), "host": os.uname().nodename}))
    with pytest.raises(OutputBusy, match="being written by another mocli process"), OutputLock(out):
        pass
    lock_path(out).write_text(json.dumps({"pid": 2**22 + 12345, "host": os.uname().nodename}))  # dead: taken over
    with OutputLock(out):
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
    assert not lock_path(out).exists()
