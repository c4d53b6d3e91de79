"""benchmarks/rendered_mocap.py: the rasteriser and the scoring on hand-made cases (no MediaPipe, no Anny)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_benchmark():
    if "rendered_mocap" in sys.modules:
        return sys.modules["rendered_mocap"]
    spec = importlib.util.spec_from_file_location("rendered_mocap", REPO / "benchmarks" / "rendered_mocap.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["rendered_mocap"] = module
    spec.loader.exec_module(module)
    return module


rm = _load_benchmark()

FOCAL, CENTRE, SIZE = 100.0, np.array([50.0, 50.0]), 100
BG = np.full((SIZE, SIZE, 3), 7, np.uint8)
TOWARDS_CAMERA = np.array([0.0, 0.0, -1.0])


def _quad(half: float, z: float) -> tuple[np.ndarray, np.ndarray]:
    """A square facing the camera (normals towards -z), centred on the optical axis: 4 vertices, 2 triangles."""
    verts = np.array([[-half, -half, z], [-half, half, z], [half, half, z], [half, -half, z]])
    return verts, np.array([[0, 1, 2], [0, 2, 3]])


def _render(verts, faces, colours, **kw):
    kw = {"light_dir": TOWARDS_CAMERA, "ambient": 0.5, **kw}
    return rm.render_mesh(verts, faces, np.asarray(colours, float), FOCAL, CENTRE, BG, **kw)


def test_front_facing_square_fills_its_projection():
    verts, faces = _quad(0.5, 2.0)  # x, y in [-0.5, 0.5] m at 2 m -> pixels 25..75
    image = _render(verts, faces, [[10, 200, 30]] * 2)
    assert (image[26:75, 26:75] == [10, 200, 30]).all()  # facing the light: the full colour
    outside = np.ones((SIZE, SIZE), bool)
    outside[24:77, 24:77] = False
    assert (image[outside] == 7).all()
    assert 49**2 <= (image[..., 1] == 200).sum() <= 52**2
    assert (BG == 7).all()  # the background is not drawn into


def test_back_facing_and_behind_camera_faces_are_culled():
    verts, faces = _quad(0.5, 2.0)
    assert (_render(verts, faces[:, ::-1], [[255, 255, 255]] * 2) == BG).all()  # reversed winding: back face
    behind, faces = _quad(0.5, -2.0)
    assert (_render(behind, faces[:, ::-1], [[255, 255, 255]] * 2) == BG).all()


def test_nearer_quad_wins_whatever_the_face_order():
    near, near_faces = _quad(0.5, 2.0)  # pixels 25..75
    far, far_faces = _quad(1.6, 4.0)  # pixels 10..90
    verts = np.concatenate([near, far])
    faces = np.concatenate([near_faces, far_faces + 4])  # the near quad comes first
    image = _render(verts, faces, [[0, 0, 255]] * 2 + [[0, 255, 0]] * 2)
    assert (image[50, 50] == [0, 0, 255]).all()
    assert (image[15, 15] == [0, 255, 0]).all() and (image[50, 85] == [0, 255, 0]).all()


def test_lambert_known_values():
    normals = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    colours = np.full((3, 3), 200.0)
    light = np.array([0.0, -np.sin(np.radians(60)), -0.5])  # 60 degrees from the first normal, 90 from the second
    shaded = rm.lambert(normals, colours, light, ambient=0.25)
    np.testing.assert_allclose(shaded[:, 0], [200 * (0.25 + 0.75 * 0.5), 200 * 0.25, 200 * 0.25])
    np.testing.assert_allclose(rm.lambert(normals[:1], colours[:1], TOWARDS_CAMERA * 3, 0.25), [[200.0] * 3])


def test_face_normals_unit_right_hand_rule():
    verts, faces = _quad(0.5, 2.0)
    np.testing.assert_allclose(rm.face_normals(verts, faces), [[0, 0, -1], [0, 0, -1]])


def test_region_colours_by_dominant_bone():
    labels = ["root", "upperleg01.L", "head", "foot.R", "spine02", "lowerarm01.R", "mystery"]
    vertex_bones = np.arange(len(labels))
    faces = np.stack([vertex_bones, vertex_bones, vertex_bones], axis=1)
    colours = rm.region_colours(labels, vertex_bones, faces, "person")
    trousers, skin, shoes, shirt = (dict((p if isinstance(p, str) else p[0], c) for p, c in rm.REGIONS)[k]
                                    for k in ("pelvis", "neck", "foot", "spine"))  # fmt: skip
    np.testing.assert_array_equal(colours, [trousers, trousers, skin, shoes, shirt, skin, rm.GREY])
    np.testing.assert_array_equal(rm.region_colours(labels, vertex_bones, faces, "grey"), [rm.GREY] * 7)


def _rotation(axis: int, deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    i, j = [k for k in range(3) if k != axis]
    R = np.eye(3)
    R[i, i], R[i, j], R[j, i], R[j, j] = c, -s, s, c
    return R


def _gt(T: int = 6) -> np.ndarray:
    """(T,17,3) one rigid skeleton, turning about the vertical, 4 m in front of the camera."""
    rng = np.random.default_rng(0)
    skeleton = rng.normal(0, 0.3, (17, 3))
    skeleton -= skeleton[:1]
    return np.stack([skeleton @ _rotation(1, 10 * t).T for t in range(T)]) + np.array([0.2, -0.1, 4.0])


def test_score_similar_copies_have_zero_pa_and_known_mpjpe():
    gt = _gt()
    rel = gt - gt[:, :1]
    ours = 2.0 * rel  # twice the size, same axes
    mp = 0.9 * rel @ _rotation(0, 90).T  # MediaPipe's own rotated frame, other scale
    r = rm.score_sequence(gt, ours, mp, np.ones(len(gt), bool))
    assert r["frames"] == 6 and r["detection_rate"] == 1.0
    assert r["mocli_pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    assert r["mediapipe_pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    assert r["mocli_scaled_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6) and r["mocli_scale"] == pytest.approx(0.5)
    # |2 x - x| = |x|: the mean joint distance from the pelvis, in mm
    assert r["mocli_mpjpe_mm"] == pytest.approx(1000 * np.linalg.norm(rel, axis=-1).mean())
    assert r["plausibility"]["gt"]["bone_length_cv_pct"] == pytest.approx(0.0, abs=1e-9)


def test_score_shift_mask_and_missing_frames():
    gt = _gt()
    rel = gt - gt[:, :1]
    ours = rel + np.array([0.003, 0.004, 0.0])  # every joint 5 mm off; root-relative: the pelvis error is removed
    ours[:, 0] = 0.0
    mp = rel.copy()
    mp[2] = np.nan  # MediaPipe frame missing
    detected = np.array([False, True, True, True, True, True])
    gt_px = np.random.default_rng(1).uniform(0, 640, (6, 17, 2))
    keypoints = np.concatenate([gt_px + [3.0, -4.0], np.ones((6, 17, 1))], axis=-1)  # 5 px off, confidence 1
    keypoints[3] = np.nan  # the detector's frame 3 was interpolated away: not scored
    r = rm.score_sequence(gt, ours, mp, detected, keypoints, gt_px)
    assert r["frames"] == 3 and r["detection_rate"] == pytest.approx(5 / 6)
    assert r["mocli_mpjpe_mm"] == pytest.approx(5.0 * 16 / 17)
    assert r["keypoints_2d_px"] == pytest.approx(5.0)
    assert rm.score_sequence(gt, ours, mp, detected)["keypoints_2d_px"] is None
    empty = rm.score_sequence(gt, ours, mp, np.zeros(6, bool))
    assert empty["frames"] == 0 and empty["mocli_pa_mpjpe_mm"] is None
    with pytest.raises(ValueError):
        rm.score_sequence(gt, ours[:3], mp, detected)


def test_summarise_weights_frames_and_sequences():
    plaus = {w: {"bone_length_cv_pct": 1.0, "asymmetry_pct": 2.0, "speed_mm_per_frame": 3.0} for w in ("gt", "mocli")}
    plaus["mediapipe"] = {**plaus["gt"], "speed_mm_per_frame": None}  # no consecutive frames scored
    base = {"mediapipe_pa_mpjpe_mm": 50.0, "mocli_mpjpe_mm": 0.0, "mocli_scaled_mpjpe_mm": 0.0, "plausibility": plaus}
    rows = [
        {**base, "frames": 30, "num_frames": 40, "detection_rate": 0.75, "mocli_pa_mpjpe_mm": 10.0, "fit_error_mm": 5},
        {**base, "frames": 10, "num_frames": 10, "detection_rate": 1.0, "mocli_pa_mpjpe_mm": 50.0, "fit_error_mm": 10},
    ]
    out = rm.summarise(rows)
    assert out["frames"] == 40 and out["rendered_frames"] == 50
    assert out["mocli_pa_mpjpe_mm"] == pytest.approx((30 * 10 + 10 * 50) / 40)
    assert out["detection_rate"] == pytest.approx(40 / 50)
    assert out["fit_error_mm"] == pytest.approx((40 * 5 + 10 * 10) / 50)
    assert out["plausibility"]["mocli"]["asymmetry_pct"] == pytest.approx(2.0)
    assert out["plausibility"]["mediapipe"]["speed_mm_per_frame"] is None
    assert out["keypoints_2d_px"] is None  # not given for every sequence
    rows[0]["keypoints_2d_px"], rows[1]["keypoints_2d_px"] = 2.0, 6.0
    assert rm.summarise(rows)["keypoints_2d_px"] == pytest.approx((30 * 2 + 10 * 6) / 40)


def test_mean_speed_over_consecutive_scored_pairs():
    joints = np.zeros((5, 17, 3))
    joints[:, 1:, 0] = np.array([0.0, 1.0, 2.0, 12.0, 13.0])[:, None]  # mm; the jump 2 -> 12 is not a scored pair
    scored = np.array([True, True, True, False, True])
    assert rm.mean_speed(joints, scored) == pytest.approx(16 / 17)
    assert rm.mean_speed(joints, np.array([True, False, True, False, True])) is None


def test_score_reports_a_frozen_lifter_by_its_speed():
    gt = _gt()
    frozen = np.repeat((gt - gt[:, :1])[:1], len(gt), axis=0)  # the first pose, held
    r = rm.score_sequence(gt, frozen, gt, np.ones(len(gt), bool))
    assert r["plausibility"]["mocli"]["speed_mm_per_frame"] == 0.0
    assert r["plausibility"]["gt"]["speed_mm_per_frame"] > 10.0


def test_pick_sequences_spreads_over_sources_and_is_seeded():
    seqs = [SimpleNamespace(name=f"a{i}", source="a", num_frames=200) for i in range(5)]
    seqs += [SimpleNamespace(name="b0", source="b", num_frames=200), SimpleNamespace(name="a_short", source="a",
                                                                                     num_frames=10)]  # fmt: skip
    picked = rm.pick_sequences(seqs, 3, 150, seed=1)
    assert [s.source for s in picked] == ["a", "b", "a"]
    assert [s.name for s in picked] == [s.name for s in rm.pick_sequences(seqs, 3, 150, seed=1)]
    assert "a_short" not in [s.name for s in rm.pick_sequences(seqs, 6, 150, seed=2)]
    assert len(rm.pick_sequences(seqs, 10, 150, seed=0)) == 7
