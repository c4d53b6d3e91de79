"""`mocli infer` end to end on prepared keypoints and on the real example video, with a tiny model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import mocli
from mocli.cli.main import app
from mocli.errors import MocliError
from mocli.keypoints import KeypointSequence, save_keypoints_npz
from mocli.models.checkpoint import build_checkpoint, save_checkpoint
from mocli.pipeline import InferInput, parse_shard, select_shard
from mocli.results import load_joints_npz

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tiny_model(tmp_path) -> Path:
    model = mocli.create_model("dstformer-tiny", maxlen=27)
    return save_checkpoint(build_checkpoint(model, "dstformer-tiny", meta={"clip_len": 27}), tmp_path / "tiny.pt")


def _keypoints_npz(path: Path, T: int = 50, missing=(10, 11, 12)) -> Path:
    rng = np.random.default_rng(0)
    kp = np.zeros((T, 17, 3), np.float32)
    kp[..., :2] = rng.uniform(200, 600, size=(17, 2)) + rng.normal(0, 2, size=(T, 17, 2))
    kp[..., 2] = 0.9
    valid = np.ones(T, bool)
    for t in missing:
        kp[t] = np.nan
        kp[t, :, 2] = 0
        valid[t] = False
    seq = KeypointSequence(kp, (1000, 800), 25.0, valid, np.zeros(T, bool), source="test")
    return save_keypoints_npz(seq, path)


def test_infer_keypoints_npz_writes_metric_joints_and_summary_last(tmp_path, tiny_model):
    src = _keypoints_npz(tmp_path / "walk.npz")
    out = tmp_path / "res"
    result = runner.invoke(app, ["infer", str(src), "--model", str(tiny_model), "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = load_joints_npz(out / "walk" / "joints3d.npz")
    assert data["joints3d"].shape == (50, 17, 3) and float(data["fps"]) == 25.0
    assert data["missing_frames"].tolist() == [10, 11, 12]
    assert np.isnan(data["joints3d"][10:13]).all() and np.isfinite(data["joints3d"][13:]).all()
    np.testing.assert_array_equal(data["joints3d"][13:, 0], 0)  # root-relative
    summary = json.loads((out / "walk" / "summary.json").read_text())
    assert summary["results"][0]["frames_without_person"] == 3 and summary["task"] == "pose3d"
    assert sorted(p.name for p in out.iterdir()) == ["walk"]  # no lock, no work folder left
    # complete results are skipped; --overwrite recomputes
    mtime = (out / "walk" / "joints3d.npz").stat().st_mtime_ns
    again = runner.invoke(app, ["infer", str(src), "--model", str(tiny_model), "--out", str(out)])
    assert again.exit_code == 0 and "skipped 1" in again.output
    assert (out / "walk" / "joints3d.npz").stat().st_mtime_ns == mtime
    forced = runner.invoke(app, ["infer", str(src), "--model", str(tiny_model), "--out", str(out), "--overwrite"])
    assert forced.exit_code == 0 and (out / "walk" / "joints3d.npz").stat().st_mtime_ns != mtime


def test_batch_goes_on_past_a_bad_file_and_exits_1(tmp_path, tiny_model):
    good = _keypoints_npz(tmp_path / "good.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    out = tmp_path / "res"
    result = runner.invoke(app, ["infer", str(bad), str(good), "--model", str(tiny_model), "--out", str(out)])
    assert result.exit_code == 1
    assert "bad.npz" in result.output and "Traceback" not in result.output
    assert (out / "good" / "summary.json").exists() and not (out / "bad" / "summary.json").exists()


def test_bad_outputs_and_inputs_are_one_line_errors(tmp_path, tiny_model):
    src = _keypoints_npz(tmp_path / "a.npz")
    (tmp_path / "file").write_text("x")
    r = runner.invoke(app, ["infer", str(src), "--model", str(tiny_model), "--out", str(tmp_path / "file")])
    assert r.exit_code == 1 and "is a file" in r.output
    (tmp_path / "empty").mkdir()
    r = runner.invoke(app, ["infer", str(tmp_path / "empty"), "--model", str(tiny_model)])
    assert r.exit_code == 1 and "no inputs in this folder" in r.output
    r = runner.invoke(app, ["infer", str(src), "--model", str(tmp_path / "missing.pt")])
    assert r.exit_code == 1 and "does not exist" in r.output


def test_a_result_being_written_by_another_process_is_skipped_not_failed(tmp_path, tiny_model):
    src = _keypoints_npz(tmp_path / "a.npz")
    other = _keypoints_npz(tmp_path / "b.npz")
    out = tmp_path / "res"
    out.mkdir()
    (out / ".a.mocli.lock").write_text(json.dumps({"pid": os.getppid(), "host": os.uname().nodename}))
    r = runner.invoke(app, ["infer", str(src), str(other), "--model", str(tiny_model), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "being written by another mocli process" in r.output and "error" not in r.output
    assert "skipped 1 input(s) being written by another mocli process" in r.output
    assert not (out / "a").exists() and (out / "b" / "summary.json").is_file()
    # a lock left by a dead process is taken over
    (out / ".a.mocli.lock").write_text(json.dumps({"pid": 2**22 + 12345, "host": os.uname().nodename}))
    r = runner.invoke(app, ["infer", str(src), "--model", str(tiny_model), "--out", str(out)])
    assert r.exit_code == 0, r.output


def test_shards_partition_the_inputs(monkeypatch):
    items = [InferInput(Path(f"v{i}.mp4"), "video") for i in range(7)]
    parts = [select_shard(items, parse_shard(f"{k}/3")) for k in range(3)]
    assert sorted(i.path.name for p in parts for i in p) == sorted(i.path.name for i in items)
    assert [len(p) for p in parts] == [3, 2, 2]
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert parse_shard(None) == (1, 2)


def test_infer_real_video(tmp_path, tiny_model):
    video = REPO / "examples" / "sports2d_demo.mp4"
    out = tmp_path / "res"
    r = runner.invoke(
        app, ["-q", "infer", str(video), "--model", str(tiny_model), "--out", str(out), "--max-frames", "20"]
    )
    assert r.exit_code == 0, r.output
    data = load_joints_npz(out / "sports2d_demo" / "joints3d.npz")
    assert data["joints3d"].shape == (20, 17, 3) and tuple(data["image_size"]) == (1768, 994)
    assert "world_landmarks33" in data  # MediaPipe's own metric 3D, kept as a baseline
    summary = json.loads((out / "sports2d_demo" / "summary.json").read_text())
    assert summary["detector"] == "mediapipe-multi" and summary["mediapipe_model"] == "full"


def test_infer_heavy_model_not_installed_is_one_line_error(tmp_path, tiny_model, monkeypatch):
    """--mediapipe-model heavy without the heavy file: a clear error naming the install commands, exit 1, no
    result folder, and MediaPipe never gets to download anything."""
    from mocli.keypoints import mediapipe_models

    monkeypatch.setattr(mediapipe_models, "landmark_folder", lambda: tmp_path / "empty")
    video = REPO / "examples" / "sports2d_demo.mp4"
    out = tmp_path / "res"
    args = ["-q", "infer", str(video), "--model", str(tiny_model), "--out", str(out), "--max-frames", "5"]
    r = runner.invoke(app, [*args, "--mediapipe-model", "heavy"])
    assert r.exit_code == 1
    assert "heavy pose model is not installed" in r.output and "mocli prepare mediapipe-heavy" in r.output
    assert "Traceback" not in r.output and not (out / "sports2d_demo" / "summary.json").exists()
    with pytest.raises(MocliError, match="mediapipe_model='huge': expected one of full, heavy"):
        mocli.infer(video, out=tmp_path / "o", model=tiny_model, mediapipe_model="huge")
