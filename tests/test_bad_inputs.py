"""Keep it fixed: every bad input and fault a new user (or an adversary) can bring, built small, run through the
command line, and checked for the exit code, one error line without a traceback, nothing half-written and nothing
complete lost. Everything here runs in-process on tiny files (a few seconds in all).
"""

from __future__ import annotations

import json
import os
import pickle
import signal
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import mocli
from mocli.cli.main import app
from mocli.models.checkpoint import build_checkpoint, save_checkpoint

runner = CliRunner()
T = 30  # frames of the keypoint inputs


# ------------------------------------------------------------------------------------------------ helpers


def run(*args: str, seconds: int = 20):
    """Invoke ``mocli`` in-process; a call that blocks (a pipe opened for reading) fails after ``seconds``."""

    def blocked(signum, frame):
        raise TimeoutError(f"mocli {' '.join(args)} blocked for {seconds} s")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(seconds)
    try:
        return runner.invoke(app, list(args))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def assert_one_line_error(result, needle: str, code: int = 1) -> None:
    assert not isinstance(result.exception, TimeoutError), result.exception
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert needle in lines[0], lines[0]
    assert "Traceback" not in result.output and "weights_only" not in result.output


def assert_nothing_half_written(root: Path) -> None:
    """No temporary file (``.name.part*``) anywhere, and no result folder without its summary."""
    leftovers = [p for p in root.rglob(".*.part*")]
    assert not leftovers, leftovers
    for joints in root.rglob("joints3d*.npz"):
        assert (joints.parent / "summary.json").is_file(), f"{joints.parent}: results without a summary"


def keypoints(edit: Callable[[np.ndarray, np.ndarray], None] | None = None) -> dict[str, np.ndarray]:
    """The arrays of a valid keypoints npz (T frames, one person standing still), changed by ``edit(kp, valid)``."""
    rng = np.random.default_rng(0)
    kp = np.zeros((T, 17, 3), np.float32)
    kp[..., :2] = rng.uniform(200, 600, size=(17, 2)) + rng.normal(0, 2, size=(T, 17, 2))
    kp[..., 2] = 0.9
    valid = np.ones(T, bool)
    if edit is not None:
        edit(kp, valid)
    return {"keypoints": kp, "image_size": np.array([1000, 800]), "fps": np.float64(25), "valid": valid}


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("model")
    model = mocli.create_model("dstformer-tiny", maxlen=27)
    return save_checkpoint(build_checkpoint(model, "dstformer-tiny", meta={"clip_len": 27}), folder / "tiny.pt")


def infer(src: Path | str, out: Path, model: Path | str, *extra: str):
    return run("infer", str(src), "--model", str(model), "--out", str(out), *extra)


def joints(out: Path, name: str) -> dict[str, np.ndarray]:
    with np.load(out / name / "joints3d.npz") as data:
        return {k: data[k] for k in data.files}


# ------------------------------------------------------------------------------------------------ keypoints


def test_one_nan_confidence_drops_one_joint_and_lifts_every_frame(tmp_path, tiny_model):
    src = write_npz(tmp_path / "a.npz", keypoints(lambda kp, valid: kp.__setitem__((5, 3, 2), np.nan)))
    result = infer(src, tmp_path / "out", tiny_model)
    assert result.exit_code == 0, result.output
    assert "1 keypoint confidence is NaN" in " ".join(result.stderr.split())
    data = joints(tmp_path / "out", "a")
    assert np.isfinite(data["joints3d"]).all() and data["missing_frames"].tolist() == []
    assert np.isnan(data["keypoints2d"][5, 3, :2]).all() and data["keypoints2d"][5, 3, 2] == 0
    assert_nothing_half_written(tmp_path)


@pytest.mark.parametrize("value", ["1.5", "-0.2", "most"])
def test_detector_3d_outside_auto_or_zero_to_one_is_one_line_and_writes_nothing(tmp_path, tiny_model, value):
    src = write_npz(tmp_path / "a.npz", keypoints(lambda kp, valid: None))
    result = infer(src, tmp_path / "out", tiny_model, "--detector-3d", value)
    assert_one_line_error(result, f"--detector-3d {value}: give 'auto' or the detector's weight from 0 to 1")
    assert not (tmp_path / "out" / "a").exists()


def test_nan_frames_marked_valid_are_missing_not_made_up(tmp_path, tiny_model):
    src = write_npz(
        tmp_path / "a.npz", keypoints(lambda kp, valid: kp.__setitem__((slice(3, 5), slice(None), 0), np.nan))
    )
    result = infer(src, tmp_path / "out", tiny_model)
    assert result.exit_code == 0, result.output
    data = joints(tmp_path / "out", "a")
    assert data["missing_frames"].tolist() == [3, 4]
    assert np.isnan(data["joints3d"][3:5]).all() and np.isfinite(data["joints3d"][5:]).all()


@pytest.mark.parametrize(
    "name, edit",
    [
        ("all_nan", lambda kp, valid: kp.__setitem__((Ellipsis, slice(0, 2)), np.nan)),
        ("inf_conf", lambda kp, valid: kp.__setitem__((Ellipsis, 2), np.inf)),
    ],
)
def test_no_usable_keypoint_is_one_clear_error(tmp_path, tiny_model, name, edit):
    src = write_npz(tmp_path / f"{name}.npz", keypoints(edit))
    result = infer(src, tmp_path / "out", tiny_model)
    assert_one_line_error(result, f"{name}.npz: no frame has a usable keypoint")
    assert not (tmp_path / "out" / name / "summary.json").exists()
    assert_nothing_half_written(tmp_path)


def test_some_infinite_confidences_are_invalid_and_said_so(tmp_path, tiny_model):
    src = write_npz(tmp_path / "a.npz", keypoints(lambda kp, valid: kp.__setitem__((slice(0, 2), Ellipsis, 2), np.inf)))
    result = infer(src, tmp_path / "out", tiny_model)
    assert result.exit_code == 0, result.output
    assert "34 keypoint confidences are infinite, which is invalid" in " ".join(result.stderr.split())
    assert joints(tmp_path / "out", "a")["missing_frames"].tolist() == [0, 1]


@pytest.mark.parametrize(
    "arrays, needle",
    [
        ({"keypoints": np.zeros((4, 17, 3)), "fps": np.float64(30)}, "missing field 'image_size'"),
        ({**keypoints(), "keypoints": np.zeros((4, 26, 3))}, "'keypoints' must be (T, 17, 3)"),
        ({**keypoints(), "valid": np.ones(3, bool)}, "'valid' must be (30,)"),
    ],
    ids=["missing-key", "wrong-joints", "wrong-valid"],
)
def test_malformed_npz_is_one_line(tmp_path, tiny_model, arrays, needle):
    result = infer(write_npz(tmp_path / "k.npz", arrays), tmp_path / "out", tiny_model)
    assert_one_line_error(result, needle)
    assert_nothing_half_written(tmp_path)


class _Marker:
    """Unpickling this would create a file (it must never happen)."""

    def __init__(self, path: Path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_disguised_as_npz_is_not_run(tmp_path, tiny_model):
    marker = tmp_path / "ran"
    src = tmp_path / "k.npz"
    src.write_bytes(pickle.dumps({"keypoints": _Marker(marker)}))
    result = infer(src, tmp_path / "out", tiny_model)
    assert_one_line_error(result, "k.npz: not a keypoints npz")
    assert not marker.exists()


def test_malformed_keypoint_json_is_one_line(tmp_path, tiny_model):
    src = tmp_path / "alphapose-results.json"
    src.write_text('[{"image_id": "0.jpg", "keypoints": [1, 2')
    result = infer(src, tmp_path / "out", tiny_model, "--format", "alphapose")
    assert_one_line_error(result, "alphapose-results.json: not valid JSON")


# ------------------------------------------------------------------------------------------------ videos and files


def test_fifo_named_mp4_is_refused_at_once(tmp_path, tiny_model):
    fifo = tmp_path / "x.mp4"
    os.mkfifo(fifo)
    assert_one_line_error(infer(fifo, tmp_path / "out", tiny_model), "x.mp4: not a regular file")
    assert_one_line_error(run("prepare", "video", str(fifo), "--out", str(tmp_path / "kp")), "not a regular file")


def _video(path: Path, fps: float, frames: int = 4) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 48))
    for t in range(frames):
        writer.write(np.full((48, 64, 3), 40 * t, np.uint8))
    writer.release()
    return path


@pytest.mark.parametrize("fps", [0.002, 10000.0])
def test_nonsense_frame_rate_is_never_silently_stored(tmp_path, tiny_model, fps):
    src = _video(tmp_path / "odd.mp4", fps)
    result = infer(src, tmp_path / "out", tiny_model)
    assert_one_line_error(result, "odd.mp4: the container reports")
    assert not list((tmp_path / "out").rglob("joints3d.npz"))


@pytest.mark.parametrize(
    "name, content, needle",
    [
        ("notes.mp4", b"this is not a video\n", "cannot open as a video"),
        ("empty.mp4", b"", "empty.mp4"),
        ("photo.png", b"\x89PNG\r\n\x1a\n", "unsupported extension '.png'"),
    ],
)
def test_corrupt_empty_and_image_inputs(tmp_path, tiny_model, name, content, needle):
    src = tmp_path / name
    src.write_bytes(content)
    assert_one_line_error(infer(src, tmp_path / "out", tiny_model), needle)
    assert_nothing_half_written(tmp_path)


def test_unwritable_output_is_one_line(tmp_path, tiny_model):
    src = write_npz(tmp_path / "a.npz", keypoints())
    result = infer(src, "/proc/self/mocli-out", tiny_model)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1


# ------------------------------------------------------------------------------------------------ checkpoints


def _checkpoints(folder: Path, marker: Path) -> dict[str, tuple[Path, str]]:
    good = save_checkpoint(build_checkpoint(mocli.create_model("dstformer-tiny"), "dstformer-tiny"), folder / "g.pt")
    data = good.read_bytes()
    (folder / "cut.pt").write_bytes(data[: len(data) // 2])
    torch.save({"format": "mocli-checkpoint", "model": _Marker(marker)}, folder / "evil.pt")
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, folder / "other.pt")
    deep = build_checkpoint(mocli.create_model("dstformer-tiny"), "dstformer-tiny")
    deep["arch"]["config"]["depth"] = 3
    torch.save(deep, folder / "deep.pt")
    return {
        "truncated": (folder / "cut.pt", "cut.pt: is a truncated or damaged torch file"),
        "malicious": (folder / "evil.pt", "evil.pt: holds pickled Python code (io.open), which mocli never runs"),
        "not-motionbert": (folder / "other.pt", "other.pt: not a mocli checkpoint (a dict with keys 'model'"),
        "wrong-architecture": (folder / "deep.pt", "deep.pt: weights do not fit the architecture; missing: levels.2"),
    }


@pytest.mark.parametrize("case", ["truncated", "malicious", "not-motionbert", "wrong-architecture"])
def test_bad_checkpoints_are_one_line_and_never_run(tmp_path, tiny_model, case):
    marker = tmp_path / "ran"
    path, needle = _checkpoints(tmp_path, marker)[case]
    src = write_npz(tmp_path / "a.npz", keypoints())
    out = tmp_path / "out"
    assert infer(src, out, tiny_model).exit_code == 0  # a complete result ...
    before = (out / "a" / "joints3d.npz").read_bytes()
    assert_one_line_error(infer(src, out, path, "--overwrite"), needle)
    assert (out / "a" / "joints3d.npz").read_bytes() == before  # ... is not lost when the next model is bad
    assert (out / "a" / "summary.json").is_file()
    assert not marker.exists()


def test_run_folder_is_accepted_as_model(tmp_path, tiny_model):
    run_dir = tmp_path / "runs" / "pretrain" / "tiny"
    run_dir.mkdir(parents=True)
    (run_dir / "model.pt").write_bytes(tiny_model.read_bytes())
    src = write_npz(tmp_path / "a.npz", keypoints())
    result = infer(src, tmp_path / "out", run_dir)
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "a" / "summary.json").read_text())["model"]["path"] == str(
        run_dir / "model.pt"
    )


def test_unreadable_user_weights_folder_is_one_line(tmp_path, monkeypatch):
    from mocli.models.registry import user_weights_dir

    folder = user_weights_dir()
    folder.mkdir(parents=True)
    listdir = Path.iterdir

    def refuse(self):  # what a folder without read permission does (tests may run as root, who reads all)
        if self == folder:
            raise PermissionError(13, "Permission denied", str(self))
        return listdir(self)

    monkeypatch.setattr(Path, "iterdir", refuse)
    assert_one_line_error(run("weights", "list"), f"{folder}: cannot read this weights folder (Permission denied)")


# ------------------------------------------------------------------------------------------------ mocap files


def _bvh(values: str, frames: int = 3) -> str:
    return (
        "HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0 0\n  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation "
        "Yrotation\n  End Site\n  {\n    OFFSET 0 10 0\n  }\n}\nMOTION\n"
        f"Frames: {frames}\nFrame Time: 0.0333333\n" + "".join(f"{values}\n" for _ in range(frames))
    )


def test_bvh_of_infinite_values_is_refused_and_writes_nothing(tmp_path):
    src = tmp_path / "inf.bvh"
    src.write_text(_bvh("inf inf inf inf inf inf"))
    out = tmp_path / "inf.h5"
    result = run("prepare", "dataset", "bvh", str(src), "--out", str(out), "--units", "cm")
    assert result.exit_code == 1, result.output
    assert "inf.bvh: line 14 (frame 1): Hips Xposition is inf" in " ".join(result.output.split())
    assert "Traceback" not in result.output and not out.exists()
    assert_nothing_half_written(tmp_path)


# ------------------------------------------------------------------------------------------------ command line


def test_eval_mocap_checks_the_action_model_before_the_lifter_runs(tmp_path, tiny_model, monkeypatch):
    from mocli.data import h5
    from tests.smoke.test_train import synthetic_motion

    data = tmp_path / "m.h5"
    h5.write_dataset(data, [h5.Sequence(name="w", fps=30.0, joints3d=synthetic_motion(40, 1), split="val")], kind="t")

    def lifter_ran(*args, **kwargs):
        raise AssertionError("the lifter evaluation ran before the action model was checked")

    monkeypatch.setattr("mocli.evaluation.mocap.score_mocap", lifter_ran)
    result = run("eval", "mocap", "--data", str(data), "--model", str(tiny_model), "--action-model", str(tiny_model))
    assert_one_line_error(result, "tiny.pt has no action head")


def test_global_option_after_the_command_is_one_line_exit_2(tmp_path):
    result = run("infer", "x.mp4", "--device", "cuda")
    assert_one_line_error(result, "--device is a global option: give it before the command", code=2)


def test_folder_of_keypoint_npz_is_inferred(tmp_path, tiny_model):
    folder = tmp_path / "kp"
    folder.mkdir()
    write_npz(folder / "a.npz", keypoints())
    write_npz(folder / "b.npz", keypoints())
    result = infer(folder, tmp_path / "out", tiny_model)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "a" / "summary.json").is_file() and (tmp_path / "out" / "b" / "summary.json").is_file()


# ------------------------------------------------------------------------------------------------ result folders


def test_input_being_written_by_another_process_is_skipped_not_failed(tmp_path, tiny_model):
    src = write_npz(tmp_path / "a.npz", keypoints())
    out = tmp_path / "out"
    out.mkdir()
    # a live lock of another mocli process (this test's parent process is alive) on the same result folder
    (out / ".a.mocli.lock").write_text(json.dumps({"pid": os.getppid(), "host": os.uname().nodename}))
    result = infer(src, out, tiny_model)
    assert result.exit_code == 0, result.output
    assert "being written by another mocli process" in " ".join(result.output.split())
    assert not (out / "a").exists()
    assert_nothing_half_written(tmp_path)


def test_overwrite_replaces_the_whole_folder_and_a_failed_one_keeps_the_old(tmp_path, tiny_model, monkeypatch):
    import errno

    from mocli import infer_run

    src = write_npz(tmp_path / "a.npz", keypoints())
    out = tmp_path / "out"
    assert infer(src, out, tiny_model, "--bvh").exit_code == 0
    assert (out / "a" / "motion.bvh").is_file()
    assert infer(src, out, tiny_model, "--overwrite").exit_code == 0
    assert not (out / "a" / "motion.bvh").exists(), "a file of the earlier run was left in the new result"
    before = {p.name: p.read_bytes() for p in (out / "a").iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(infer_run, "write_summary", disk_full)  # the last write of the new result fails
    result = infer(src, out, tiny_model, "--overwrite", "--bvh")
    assert_one_line_error(result, "No space left on device")
    assert {p.name: p.read_bytes() for p in (out / "a").iterdir()} == before  # the complete result, untouched
    assert_nothing_half_written(tmp_path)
    assert sorted(p.name for p in out.iterdir()) == ["a"]
