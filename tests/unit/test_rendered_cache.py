"""benchmarks/rendered_cache.py and rendered_mocap.py --reuse: a sequence's fit error and MediaPipe's 2D kept beside
its video come back unchanged, only for the same sequence, seed, cameras, look and fit, and a reused run lifts
them without drawing or detecting again (no MediaPipe, no Anny)."""

from __future__ import annotations

import importlib
import sys
from argparse import Namespace
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mocli.evaluation.mocap import MocapSequence
from mocli.keypoints.sequence import KeypointSequence

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))  # as when the script runs: it imports its sibling modules by name
cache = importlib.import_module("rendered_cache")
rm = importlib.import_module("rendered_mocap")
rv = importlib.import_module("rendered_views")

T = 6


def _joints(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(0.0, 0.3, (T, 17, 3)) + [0.0, 1.0, 0.0]).astype(np.float64)


def _sequence(name: str = "HDM_tr_kick_001") -> MocapSequence:
    return MocapSequence(name, "hdm05", "kick", 30.0, _joints(), subject="tr")


def _found() -> KeypointSequence:
    """MediaPipe's person: frames 2 and 3 missed (NaN, confidence 0), frame 4 interpolated, world landmarks."""
    rng = np.random.default_rng(1)
    kp = np.concatenate([rng.uniform(0, 640, (T, 17, 2)), rng.uniform(0.2, 1.0, (T, 17, 1))], -1).astype(np.float32)
    kp[2:4, :, :2], kp[2:4, :, 2] = np.nan, 0.0
    valid = np.array([True, True, False, False, False, True])
    interpolated = np.array([False, False, False, False, True, False])
    world = rng.normal(0.0, 0.4, (T, 33, 3)).astype(np.float32)
    world[2:4] = np.nan
    return KeypointSequence(kp, (640, 640), 30.0, valid, interpolated, source="mediapipe", video="v.mp4",
                            extras={"world_landmarks33": world})  # fmt: skip


def _key(seq=None, seed=0, view=rv.VIEW, look="person", fit=200) -> str:
    return cache.render_key(seq or _sequence(), seed, view, look, fit)


def test_entry_round_trip_keeps_missing_frames_and_world_landmarks(tmp_path):
    found, fit_error = _found(), np.array([3.0, 4.5, np.nan, 5.0, 6.0, 7.25])
    cache.save_entry(tmp_path, "s", _key(), fit_error, found)
    loaded_error, loaded = cache.load_entry(tmp_path, "s", _key())
    np.testing.assert_array_equal(loaded_error, fit_error)
    np.testing.assert_array_equal(loaded.keypoints, found.keypoints)  # NaN where missed, equal elsewhere
    assert loaded.valid.tolist() == found.valid.tolist()
    assert loaded.interpolated.tolist() == found.interpolated.tolist()
    assert loaded.image_size == (640, 640) and loaded.fps == 30.0 and loaded.source == "mediapipe"
    np.testing.assert_array_equal(loaded.extras["world_landmarks33"], found.extras["world_landmarks33"])


def test_nobody_found_is_kept_as_such_and_replaces_an_old_detection(tmp_path):
    cache.save_entry(tmp_path, "s", _key(), np.ones(T), _found())
    cache.save_entry(tmp_path, "s", _key(), np.ones(T), None)
    error, found = cache.load_entry(tmp_path, "s", _key())
    assert found is None and error.tolist() == [1.0] * T
    assert not (tmp_path / "s.keypoints.npz").exists()


def test_another_key_or_a_missing_file_is_no_entry(tmp_path):
    cache.save_entry(tmp_path, "s", _key(), np.ones(T), _found())
    moved = replace(_sequence(), joints=_joints() + [0.0, 0.0, 0.001])  # 1 mm: other data, other video
    others = [_key(seed=1), _key(view=rv.make_view(pitch="35,60")), _key(look="grey"), _key(fit=100), _key(moved),
              _key(_sequence("HDM_tr_kick_002")), _key(replace(_sequence(), fps=60.0))]  # fmt: skip
    assert len(set(others) | {_key()}) == len(others) + 1
    assert all(cache.load_entry(tmp_path, "s", k) is None for k in others)
    assert cache.load_entry(tmp_path, "t", _key()) is None  # no entry of that name
    (tmp_path / "s.keypoints.npz").unlink()
    assert cache.load_entry(tmp_path, "s", _key()) is None  # its detection is gone
    (tmp_path / "s.npz").write_bytes(b"not an npz")
    assert cache.load_entry(tmp_path, "s", _key()) is None


def _args(reuse: bool, seed: int = 0) -> Namespace:
    return Namespace(seed=seed, look="person", fit_iterations=200, reuse=reuse, mediapipe_model="full")


def test_a_reused_sequence_is_neither_drawn_nor_detected_again(tmp_path, monkeypatch):
    calls = {"render": 0, "detect": 0}
    fit_error = np.arange(T, dtype=np.float64)

    def fake_render(seq, body, colours, out, seed, fit_options, view):
        calls["render"] += 1
        video = out / "videos" / f"{rm._file_name(seq.name)}.mp4"
        video.parent.mkdir(parents=True, exist_ok=True)
        video.write_bytes(b"video")
        cam = rm.reuse_rendered(seq, seed, view, video, fit_error)  # the same camera and truth as drawing gives
        return replace(cam, seconds={"fit": 1.0, "render": 2.0})

    def fake_detect(video, options):
        calls["detect"] += 1
        return _found()

    monkeypatch.setattr(rm, "render_sequence", fake_render)
    monkeypatch.setattr(rm, "detect_person", fake_detect)
    body = lambda: (SimpleNamespace(), np.zeros((1, 3)))  # noqa: E731
    pipe = SimpleNamespace(options=None)
    seq, out = _sequence(), tmp_path / "out"
    first, found1, _, reused1 = rm.rendered_and_detected(seq, _args(False), body, out, rv.VIEW, pipe)
    second, found2, _, reused2 = rm.rendered_and_detected(seq, _args(True), body, out, rv.VIEW, pipe)
    assert (reused1, reused2) == (False, True) and calls == {"render": 1, "detect": 1}
    np.testing.assert_array_equal(second.gt_cam, first.gt_cam)
    np.testing.assert_array_equal(second.fit_error_mm, fit_error)
    np.testing.assert_array_equal(found2.keypoints, found1.keypoints)
    assert second.video == first.video
    _, _, _, reused3 = rm.rendered_and_detected(seq, _args(True, seed=1), body, out, rv.VIEW, pipe)
    assert not reused3 and calls == {"render": 2, "detect": 2}  # another seed: other cameras, drawn again
    (out / "videos" / f"{rm._file_name(seq.name)}.mp4").unlink()
    _, _, _, reused4 = rm.rendered_and_detected(seq, _args(True, seed=1), body, out, rv.VIEW, pipe)
    assert not reused4 and calls == {"render": 3, "detect": 3}  # the video is gone


def test_reuse_without_out_is_one_line_error(tmp_path, capsys):
    bandai = tmp_path / "bandai.h5"
    bandai.write_bytes(b"")
    assert rm.main(["--data", str(bandai), "--reuse"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0] == "error: --reuse needs --out DIR: the folder of an earlier run's videos and cache"


@pytest.mark.parametrize("name", ["a b/c", "HDM_tr_kick_001"])
def test_keys_are_text_that_names_the_sequence(name):
    key = _key(_sequence(name))
    assert name in key and '"seed": 0' in key and '"look": "person"' in key
