"""Smoke tests of ``mocli prepare video`` and ``mocli prepare keypoints`` through the real CLI (CliRunner).

MediaPipe runs on the first frames of the real example video (1768x994, 30 fps, one person).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mocli.cli.main import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sports2d_demo.mp4"
needs_mediapipe = pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None, reason="needs mediapipe")

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["--quiet", *args], catch_exceptions=False)


@pytest.mark.parametrize("command", ["video", "keypoints"])
def test_help(command):
    result = runner.invoke(app, ["prepare", command, "--help"])
    assert result.exit_code == 0 and "Examples" in result.output


@needs_mediapipe
@pytest.mark.parametrize("detector", ["mediapipe-multi", "mediapipe"])  # the default, and the legacy solution
def test_video_to_keypoints_npz(tmp_path, detector):
    result = invoke("prepare", "video", str(EXAMPLE), "--out", str(tmp_path), "--max-frames", "60", "-d", detector)
    assert result.exit_code == 0, result.output
    with np.load(tmp_path / "sports2d_demo.npz", allow_pickle=False) as npz:
        data = dict(npz)
    kp, valid = data["keypoints"], data["valid"]
    assert kp.shape == (60, 17, 3) and kp.dtype == np.float32
    assert data["image_size"].tolist() == [1768, 994] and float(data["fps"]) == 30.0
    assert str(data["source"]) == detector and int(data["track_id"]) == 1
    # MediaPipe misses only the first few frames of this video (the legacy solution 3, mediapipe-multi about 8)
    assert valid.mean() >= (0.9 if detector == "mediapipe" else 0.85)
    assert data["landmarks33"].shape == (60, 33, 3) and data["world_landmarks33"].shape == (60, 33, 3)
    world = data["world_landmarks33"][valid]
    np.testing.assert_allclose((world[:, 23] + world[:, 24]) / 2, 0, atol=0.02)  # hip-centred metres
    ok = valid | data["interpolated"]
    np.testing.assert_allclose(kp[ok, 0, :2], (kp[ok, 1, :2] + kp[ok, 4, :2]) / 2, atol=1e-3)  # pelvis = mean hips
    assert np.isnan(kp[~ok, :, :2]).all() and (kp[~ok, :, 2] == 0).all()  # missing frames explicit
    assert ((kp[valid, :, 0] > -200) & (kp[valid, :, 0] < 1968)).mean() > 0.95  # pixels of the 1768-wide image


@needs_mediapipe
def test_batch_with_a_bad_file_fails_but_writes_the_good_one(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    out = tmp_path / "out"
    result = invoke("prepare", "video", str(EXAMPLE), str(bad), "--out", str(out), "--max-frames", "10")
    assert result.exit_code == 1
    assert "broken.mp4" in result.output and "cannot open as a video" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["sports2d_demo.npz"]  # nothing partial for the bad file
    # Existing outputs are skipped, so a re-run only retries the failure.
    before = (out / "sports2d_demo.npz").stat().st_mtime_ns
    again = invoke("prepare", "video", str(EXAMPLE), "--out", str(out), "--max-frames", "10")
    assert again.exit_code == 0 and (out / "sports2d_demo.npz").stat().st_mtime_ns == before


def test_single_bad_input_is_one_line_and_exit_1(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    result = invoke("prepare", "video", str(text), "--out", str(tmp_path / "x.npz"))
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "unsupported extension '.txt'" in lines[0]
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.skipif(importlib.util.find_spec("ultralytics") is not None, reason="ultralytics is installed")
def test_missing_yolo_says_how_to_install(tmp_path):
    result = invoke("prepare", "video", str(EXAMPLE), "--out", str(tmp_path), "--detector", "yolo")
    assert result.exit_code == 1 and 'pip install "mocli[yolo]"' in result.output
    assert not any(tmp_path.iterdir())


def test_import_alphapose_with_video_for_size(tmp_path):
    entries = [
        {"image_id": f"{f}.jpg", "category_id": 1, "keypoints": [float(f)] * 51, "score": 2.0,
         "box": [0, 0, 10, 20], "idx": idx}
        for f in range(3) for idx in (1, 2) if not (idx == 2 and f == 1)
    ]  # fmt: skip
    path = tmp_path / "alphapose-results.json"
    path.write_text(json.dumps(entries))
    result = invoke("prepare", "keypoints", str(path), "--format", "alphapose", "--video", str(EXAMPLE), "-p", "all")
    assert result.exit_code == 0, result.output
    two = np.load(tmp_path / "alphapose-results_p2.npz")
    assert two["keypoints"].shape == (230, 17, 3)  # padded to the video's 230 frames
    assert two["valid"][:4].tolist() == [True, False, True, False]
    assert two["image_size"].tolist() == [1768, 994] and float(two["fps"]) == 30.0
    assert (tmp_path / "alphapose-results_p1.npz").exists()


def test_existing_outputs_for_all_match_only_this_stem(tmp_path):
    from mocli.cli.prepare_video import _existing

    for name in ("clip_p1.npz", "clip_p12.npz", "clip_pose_p1.npz", "clip.npz"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in _existing(tmp_path / "clip.npz", "all")] == ["clip_p1.npz", "clip_p12.npz"]
    assert _existing(tmp_path / "clip.npz", "largest") == [tmp_path / "clip.npz"]
    assert _existing(tmp_path / "other.npz", "largest") == []
