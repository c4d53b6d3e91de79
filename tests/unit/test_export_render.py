"""Preview rendering on tiny synthetic videos, and ``mocli infer --render --bvh`` end to end with a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

import mocli
from mocli.cli.main import app
from mocli.data.bvh import read_bvh
from mocli.errors import InputError
from mocli.export.render import PreviewStyle, panel_width, render_preview
from mocli.keypoints import KeypointSequence, save_keypoints_npz
from mocli.models.checkpoint import build_checkpoint, save_checkpoint
from mocli.results import MotionResult

runner = CliRunner()

# H36M-17 standing pose, metres, camera axes (x right, y down, z forward), facing the camera.
STANDING = np.array([
    (0, 0, 0), (-0.13, 0, 0), (-0.13, 0.44, 0), (-0.13, 0.88, 0), (0.13, 0, 0), (0.13, 0.44, 0), (0.13, 0.88, 0),
    (0, -0.23, 0), (0, -0.48, 0), (0, -0.58, -0.08), (0, -0.7, 0), (0.15, -0.45, 0), (0.18, -0.18, 0),
    (0.2, 0.05, 0), (-0.15, -0.45, 0), (-0.18, -0.18, 0), (-0.2, 0.05, 0),
])  # fmt: skip


def _write_video(path: Path, num_frames: int = 12, size: tuple[int, int] = (160, 120), fps: float = 10.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for t in range(num_frames):
        frame = np.full((size[1], size[0], 3), 20 * t % 255, np.uint8)
        writer.write(frame)
    writer.release()
    return path


def _result(num_frames: int, size: tuple[int, int] = (160, 120), fps: float = 10.0) -> MotionResult:
    rng = np.random.default_rng(0)
    kp = np.ones((num_frames, 17, 3), np.float32)
    kp[..., 0] = rng.uniform(10, size[0] - 10, size=(num_frames, 17))
    kp[..., 1] = rng.uniform(10, size[1] - 10, size=(num_frames, 17))
    kp[1, 3, 2] = 0.1  # low confidence: skipped
    kp[2] = np.nan  # missing frame
    joints = STANDING + rng.normal(0, 0.02, size=(num_frames, 17, 3))  # metres, camera axes (y down)
    joints -= joints[:, :1]
    joints[2] = np.nan
    return MotionResult(joints.astype(np.float32), kp, fps, size, np.array([2]))


def _decode(path: Path) -> tuple[int, int, int]:
    """(frames, width, height) of a video, by decoding every frame."""
    cap = cv2.VideoCapture(str(path))
    count, shape = 0, (0, 0)
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        count, shape = count + 1, frame.shape[:2]
    cap.release()
    return count, shape[1], shape[0]


def test_preview_of_a_video_has_its_frames_beside_a_3d_panel(tmp_path):
    video = _write_video(tmp_path / "clip.mp4")
    out = render_preview(_result(12), tmp_path / "res" / "preview.mp4", video)
    assert _decode(out) == (12, 160 + panel_width(120), 120)
    assert panel_width(120) == 120 and [p.name for p in out.parent.iterdir()] == ["preview.mp4"]


def test_preview_renders_only_the_result_frames_and_blank_canvases_without_video(tmp_path):
    video = _write_video(tmp_path / "clip.mp4")
    assert _decode(render_preview(_result(5), tmp_path / "a.mp4", video)) == (5, 280, 120)  # --max-frames 5
    assert _decode(render_preview(_result(7, size=(200, 100)), tmp_path / "b.mp4")) == (7, 300, 100)


def test_tall_frames_are_scaled_down(tmp_path):
    from mocli.export.render import PreviewStyle

    out = render_preview(_result(3, size=(300, 200)), tmp_path / "p.mp4", style=PreviewStyle(max_height=100))
    assert _decode(out) == (3, 150 + 100, 100)


def test_a_missing_video_is_an_error_and_leaves_no_partial_file(tmp_path):
    (tmp_path / "res").mkdir()
    with pytest.raises(InputError):
        render_preview(_result(4), tmp_path / "res" / "preview.mp4", tmp_path / "nope.mp4")
    assert list((tmp_path / "res").iterdir()) == []


# ------------------------------------------------------------------------------------------------ CLI


@pytest.fixture
def tiny_model(tmp_path) -> Path:
    model = mocli.create_model("dstformer-tiny", maxlen=27)
    return save_checkpoint(build_checkpoint(model, "dstformer-tiny", meta={"clip_len": 27}), tmp_path / "tiny.pt")


def _keypoints_npz(path: Path, num_frames: int = 20) -> Path:
    rng = np.random.default_rng(0)
    kp = np.zeros((num_frames, 17, 3), np.float32)
    kp[..., :2] = rng.uniform(40, 200, size=(17, 2)) + rng.normal(0, 2, size=(num_frames, 17, 2))
    kp[..., 2] = 0.9
    kp[4] = np.nan
    kp[4, :, 2] = 0
    valid = np.ones(num_frames, bool)
    valid[4] = False
    seq = KeypointSequence(kp, (240, 180), 25.0, valid, np.zeros(num_frames, bool), source="test")
    return save_keypoints_npz(seq, path)


def test_infer_render_and_bvh_on_keypoints(tmp_path, tiny_model):
    src = _keypoints_npz(tmp_path / "walk.npz")
    out = tmp_path / "res"
    args = ["infer", str(src), "--model", str(tiny_model), "--out", str(out), "--render", "--bvh"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    folder = out / "walk"
    assert _decode(folder / "preview.mp4") == (20, 240 + 180, 180)
    bvh = read_bvh(folder / "motion.bvh")
    assert bvh.num_frames == 20 and bvh.fps == 25.0
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["files"] == ["joints3d.npz", "motion.bvh", "preview.mp4"]
    assert {"render", "export"} <= set(summary["timings_s"])
    last = max((folder / f).stat().st_mtime_ns for f in summary["files"])
    assert (folder / "summary.json").stat().st_mtime_ns >= last
    assert sorted(p.name for p in folder.iterdir()) == ["joints3d.npz", "motion.bvh", "preview.mp4", "summary.json"]


# ------------------------------------------------------------------------------------------------ several people


def test_people_colours_are_distinct_and_left_is_a_tint():
    from mocli.export.render import person_colours

    colours = [person_colours(k) for k in range(4)]
    right = [c[1] for c in colours]  # right_hip
    assert len(set(right)) == 4
    assert all(c[4] != c[1] and sum(c[4]) > sum(c[1]) for c in colours)  # left_hip lighter than right_hip
    assert person_colours(0) == person_colours(7)  # the palette cycles after 7 people


def test_scene_places_people_at_their_trajectories_or_side_by_side():
    from mocli.export.render import SIDE_BY_SIDE_M, scene_joints

    a, b, c = _result(4), _result(4), _result(4)
    a.root = np.tile([1.0, 0.5, 4.0], (4, 1))
    b.root = np.tile([-1.0, 0.5, 6.0], (4, 1))
    placed = scene_joints([a, b, c])
    np.testing.assert_allclose(placed[0][0, 0], [1.0, 0.5, 4.0], atol=1e-6)  # pelvis at its root
    np.testing.assert_allclose(placed[1][0, 0], [-1.0, 0.5, 6.0], atol=1e-6)
    np.testing.assert_allclose(placed[2][0, 0], [0.0, 0.0, 5.0], atol=1e-6)  # no root: at the mean depth
    loose = scene_joints([a, b], world=False)
    np.testing.assert_allclose(loose[0][0, 0], [-SIDE_BY_SIDE_M / 2, 0, 0], atol=1e-6)
    np.testing.assert_allclose(loose[1][0, 0], [SIDE_BY_SIDE_M / 2, 0, 0], atol=1e-6)


def test_render_people_draws_each_person_in_their_colour(tmp_path):
    from mocli.export.render import PERSON_COLOURS, render_people

    size = (320, 240)
    people = []
    for x in (-0.6, 0.6):  # two standing people 1.2 m apart, 4 m in front of a 60-degree camera
        joints = np.repeat(STANDING[None], 3, axis=0).astype(np.float32)
        root = np.tile([x, 0.0, 4.0], (3, 1))
        f = 160 / np.tan(np.radians(30))
        uv = f * (joints[..., :2] + root[:, None, :2]) / (joints[..., 2:] + 4.0) + [160, 120]
        kp = np.concatenate([uv, np.ones((3, 17, 1))], -1).astype(np.float32)
        people.append(MotionResult(joints, kp, 10.0, size, np.array([], int), root=root))
    out = render_people(people, tmp_path / "p.mp4", style=PreviewStyle(max_height=240))
    cap = cv2.VideoCapture(str(out))
    ok, frame = cap.read()
    cap.release()
    assert ok and frame.shape == (240, 320 + 240, 3)

    def near(img, colour):  # pixels within 40 of a BGR colour (mp4v blurs colours a little)
        return (np.abs(img.astype(int) - colour).sum(-1) < 40).sum()

    video, panel = frame[:, :320], frame[:, 320:]
    for k, colour in enumerate(PERSON_COLOURS[:2]):
        left_half, right_half = (video[:, :160], video[:, 160:]) if k == 0 else (video[:, 160:], video[:, :160])
        assert near(left_half, colour) > 20 and near(right_half, colour) < 5  # person k on their side only
        assert near(panel, colour) > 10  # and in the 3D scene
    # in the scene the first person stands left of the second (panel seen from the front-left, 40 deg yaw)
    xs = [np.flatnonzero((np.abs(panel.astype(int) - c).sum(-1) < 40).any(0)).mean() for c in PERSON_COLOURS[:2]]
    assert xs[0] < xs[1]
