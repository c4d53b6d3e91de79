"""benchmarks/rendered_mocap.py: the rasteriser, the scoring, the sequence choice and the cameras on hand-made
cases (no MediaPipe, no Anny)."""

from __future__ import annotations

import importlib
import re
import sys
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mocli.data.cameras import up_vector
from mocli.data.h5 import Sequence, write_dataset
from mocli.evaluation.mocap import MocapSequence, load_mocap_sequences, sequence_camera

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))  # as when the script runs: it imports its sibling modules by name
raster = importlib.import_module("raster")
scores = importlib.import_module("rendered_scores")
rm = importlib.import_module("rendered_mocap")
rv = importlib.import_module("rendered_views")
ri = importlib.import_module("rendered_infer")

FOCAL, CENTRE, SIZE = 100.0, np.array([50.0, 50.0]), 100
BG = np.full((SIZE, SIZE, 3), 7, np.uint8)
TOWARDS_CAMERA = np.array([0.0, 0.0, -1.0])


def _quad(half: float, z: float) -> tuple[np.ndarray, np.ndarray]:
    """A square facing the camera (normals towards -z), centred on the optical axis: 4 vertices, 2 triangles."""
    verts = np.array([[-half, -half, z], [-half, half, z], [half, half, z], [half, -half, z]])
    return verts, np.array([[0, 1, 2], [0, 2, 3]])


def _render(verts, faces, colours, **kw):
    kw = {"light_dir": TOWARDS_CAMERA, "ambient": 0.5, **kw}
    return raster.render_mesh(verts, faces, np.asarray(colours, float), FOCAL, CENTRE, BG, **kw)


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
    shaded = raster.lambert(normals, colours, light, ambient=0.25)
    np.testing.assert_allclose(shaded[:, 0], [200 * (0.25 + 0.75 * 0.5), 200 * 0.25, 200 * 0.25])
    np.testing.assert_allclose(raster.lambert(normals[:1], colours[:1], TOWARDS_CAMERA * 3, 0.25), [[200.0] * 3])


def test_face_normals_unit_right_hand_rule():
    verts, faces = _quad(0.5, 2.0)
    np.testing.assert_allclose(raster.face_normals(verts, faces), [[0, 0, -1], [0, 0, -1]])


def test_region_colours_by_dominant_bone():
    labels = ["root", "upperleg01.L", "head", "foot.R", "spine02", "lowerarm01.R", "mystery"]
    vertex_bones = np.arange(len(labels))
    faces = np.stack([vertex_bones, vertex_bones, vertex_bones], axis=1)
    colours = raster.region_colours(labels, vertex_bones, faces, "person")
    trousers, skin, shoes, shirt = (dict((p if isinstance(p, str) else p[0], c) for p, c in raster.REGIONS)[k]
                                    for k in ("pelvis", "neck", "foot", "spine"))  # fmt: skip
    np.testing.assert_array_equal(colours, [trousers, trousers, skin, shoes, shirt, skin, raster.GREY])
    np.testing.assert_array_equal(raster.region_colours(labels, vertex_bones, faces, "grey"), [raster.GREY] * 7)


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


def test_limb_scores_ignore_mediapipes_trunk():
    gt = _gt()
    mp = gt - gt[:, :1]
    mp[:, [0, 7, 8]] += np.array([0.0, 0.05, -0.07])  # mid-hip pelvis, other spine and thorax: a convention
    r = scores.score_sequence(gt, gt.copy(), mp, np.ones(len(gt), bool))
    assert r["mediapipe_limbs_pa_mm"] == pytest.approx(0.0, abs=1e-6)
    assert r["mediapipe_pa_mpjpe_mm"] > 1.0


def test_score_similar_copies_have_zero_pa_and_known_mpjpe():
    gt = _gt()
    rel = gt - gt[:, :1]
    ours = 2.0 * rel  # twice the size, same axes
    mp = 0.9 * rel @ _rotation(0, 90).T  # MediaPipe's own rotated frame, other scale
    r = scores.score_sequence(gt, ours, mp, np.ones(len(gt), bool))
    assert r["frames"] == 6 and r["detection_rate"] == 1.0
    assert r["mocli_pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    assert r["mediapipe_pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    assert r["mocli_limbs_pa_mm"] == pytest.approx(0.0, abs=1e-6)
    assert r["mediapipe_limbs_pa_mm"] == pytest.approx(0.0, abs=1e-6)
    assert r["mocli_scaled_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6) and r["mocli_scale"] == pytest.approx(0.5)
    # |2 x - x| = |x|: the mean joint distance from the pelvis, in mm
    assert r["mocli_mpjpe_mm"] == pytest.approx(1000 * np.linalg.norm(rel, axis=-1).mean())
    assert r["plausibility"]["gt"]["bone_length_cv_pct"] == pytest.approx(0.0, abs=1e-9)


def test_the_lifter_alone_is_scored_on_the_same_frames_when_given():
    """mocli's output (MediaPipe's 3D averaged in) and the lifter alone: the lifter's PA-MPJPE is taken on the frames
    scored for the others, and a frame the lifter lacks leaves every score."""
    gt = _gt()
    rel = gt - gt[:, :1]
    lifter = rel.copy()
    lifter[:, 1:] += np.array([0.0, 0.0, 0.005])
    lifter[4] = np.nan
    r = scores.score_sequence(gt, rel.copy(), rel.copy(), np.ones(len(gt), bool), lifter=lifter)
    assert r["frames"] == 5 and r["mocli_pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    shifted = rel[[0, 1, 2, 3, 5]].copy()
    shifted[:, 1:] += np.array([0.0, 0.0, 0.005])
    expected = scores.pa_mpjpe(shifted * 1000, rel[[0, 1, 2, 3, 5]] * 1000)
    assert r["lifter_pa_mpjpe_mm"] == pytest.approx(expected) and 0.5 < expected < 5.0
    assert "lifter_pa_mpjpe_mm" not in scores.score_sequence(gt, rel, rel, np.ones(len(gt), bool))


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
    r = scores.score_sequence(gt, ours, mp, detected, keypoints, gt_px)
    assert r["frames"] == 3 and r["detection_rate"] == pytest.approx(5 / 6)
    assert r["mocli_mpjpe_mm"] == pytest.approx(5.0 * 16 / 17)
    assert r["keypoints_2d_px"] == pytest.approx(5.0)
    assert scores.score_sequence(gt, ours, mp, detected)["keypoints_2d_px"] is None
    empty = scores.score_sequence(gt, ours, mp, np.zeros(6, bool))
    assert empty["frames"] == 0 and empty["mocli_pa_mpjpe_mm"] is None
    with pytest.raises(ValueError):
        scores.score_sequence(gt, ours[:3], mp, detected)


def test_summarise_weights_frames_and_sequences():
    plaus = {w: {"bone_length_cv_pct": 1.0, "asymmetry_pct": 2.0, "speed_mm_per_frame": 3.0} for w in ("gt", "mocli")}
    plaus["mediapipe"] = {**plaus["gt"], "speed_mm_per_frame": None}  # no consecutive frames scored
    base = {"mediapipe_pa_mpjpe_mm": 50.0, "mocli_mpjpe_mm": 0.0, "mocli_scaled_mpjpe_mm": 0.0, "plausibility": plaus}
    rows = [
        {**base, "frames": 30, "num_frames": 40, "detection_rate": 0.75, "mocli_pa_mpjpe_mm": 10.0, "fit_error_mm": 5},
        {**base, "frames": 10, "num_frames": 10, "detection_rate": 1.0, "mocli_pa_mpjpe_mm": 50.0, "fit_error_mm": 10},
    ]
    out = scores.summarise(rows)
    assert out["frames"] == 40 and out["rendered_frames"] == 50
    assert out["mocli_pa_mpjpe_mm"] == pytest.approx((30 * 10 + 10 * 50) / 40)
    assert out["detection_rate"] == pytest.approx(40 / 50)
    assert out["fit_error_mm"] == pytest.approx((40 * 5 + 10 * 10) / 50)
    assert out["plausibility"]["mocli"]["asymmetry_pct"] == pytest.approx(2.0)
    assert out["plausibility"]["mediapipe"]["speed_mm_per_frame"] is None
    assert out["keypoints_2d_px"] is None  # not given for every sequence
    rows[0]["keypoints_2d_px"], rows[1]["keypoints_2d_px"] = 2.0, 6.0
    assert scores.summarise(rows)["keypoints_2d_px"] == pytest.approx((30 * 2 + 10 * 6) / 40)


def test_mean_speed_over_consecutive_scored_pairs():
    joints = np.zeros((5, 17, 3))
    joints[:, 1:, 0] = np.array([0.0, 1.0, 2.0, 12.0, 13.0])[:, None]  # mm; the jump 2 -> 12 is not a scored pair
    scored = np.array([True, True, True, False, True])
    assert scores.mean_speed(joints, scored) == pytest.approx(16 / 17)
    assert scores.mean_speed(joints, np.array([True, False, True, False, True])) is None


def test_score_reports_a_frozen_lifter_by_its_speed():
    gt = _gt()
    frozen = np.repeat((gt - gt[:, :1])[:1], len(gt), axis=0)  # the first pose, held
    r = scores.score_sequence(gt, frozen, gt, np.ones(len(gt), bool))
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


def test_pick_sequences_val_order_is_unchanged():
    seqs = [SimpleNamespace(name=f"a{i}", source="a", num_frames=200) for i in range(5)]
    seqs += [SimpleNamespace(name="b0", source="b", num_frames=200), SimpleNamespace(name="a_short", source="a",
                                                                                     num_frames=10)]  # fmt: skip
    # the choice of the script before --pick existed, for these seeds
    assert [s.name for s in rm.pick_sequences(seqs, 3, 150, seed=1)] == ["a4", "b0", "a0"]
    assert [s.name for s in rm.pick_sequences(seqs, 10, 150, seed=2)] == ["a3", "b0", "a2", "a4", "a0", "a1", "a_short"]


# --- held-out choice -------------------------------------------------------------------------------------------------


def _standing(T: int, seed: int) -> np.ndarray:
    """(T,17,3) metres, y up: a body-sized skeleton, pelvis 1 m up, drifting forward."""
    rng = np.random.default_rng(seed)
    base = rng.uniform([-0.25, -0.9, -0.15], [0.25, 0.7, 0.15], (17, 3))
    base[0] = 0.0
    return (base + [0.0, 1.0, 0.0] + np.linspace(0, 0.5, T)[:, None, None] * [1.0, 0.0, 0.0]).astype(np.float32)


def _mocap_files(tmp_path: Path) -> list[Path]:
    """hdm05.h5 (120 fps), reactidle.h5 (24 fps) and bandai.h5 (30 fps): known splits, subjects and actions."""
    hdm = [  # name, subject, action, split, frames at 120 fps
        ("HDM_mm_jog_001", "mm", "jog", "train", 400),  # held-out person, 100 frames at 30 fps
        ("HDM_tr_kick_001", "tr", "kick", "val", 120),  # held-out person, 30 frames
        ("HDM_bd_lieDownFloor_001", "bd", "lieDownFloor", "train", 800),  # held-out motion, 200 frames
        ("HDM_mm_throwBasketball_001", "mm", "throwBasketball", "test", 200),  # motion first, 50 frames
        ("HDM_tr_lieDownFloor_002", "tr", "lieDownFloor", "val", 160),  # held-out motion, 40 frames
        ("HDM_bk_jog_001", "bk", "jog", "val", 400),  # a training actor and motion: never held out
    ]
    files = [tmp_path / f"{n}.h5" for n in ("hdm05", "reactidle", "bandai")]
    write_dataset(files[0], [Sequence(n, 120.0, joints3d=_standing(T, i), split=split, source="hdm05", subject=subj,
                                      action=act) for i, (n, subj, act, split, T) in enumerate(hdm)],
                  kind="amc", source="hdm05")  # fmt: skip
    write_dataset(files[1], [Sequence(n, 24.0, joints3d=_standing(240, 10 + i), split=split, source="reactidle",
                                      action=n[4:]) for i, (n, split) in enumerate([("012_acted", "val"),
                                                                                    ("011_acted", "train")])],
                  kind="bvh", source="reactidle")  # fmt: skip
    # HDM05's rules are per source: a Bandai sequence with a held-out subject and action name is not held out
    write_dataset(files[2], [Sequence("dataset-1_walk_001", 30.0, joints3d=_standing(60, 20), split="val",
                                      source="bandai", subject="mm", action="lieDownFloor")],
                  kind="bvh", source="bandai")  # fmt: skip
    return files


def test_held_out_groups_from_h5_attrs(tmp_path):
    seqs = load_mocap_sequences(_mocap_files(tmp_path), split=None, fps=30)
    assert {s.name: rm.held_out_group(s) for s in seqs} == {
        "HDM_mm_jog_001": "hdm05 person",
        "HDM_tr_kick_001": "hdm05 person",
        "HDM_bd_lieDownFloor_001": "hdm05 motion lieDownFloor",
        "HDM_mm_throwBasketball_001": "hdm05 motion throwBasketball",
        "HDM_tr_lieDownFloor_002": "hdm05 motion lieDownFloor",
        "HDM_bk_jog_001": None,
        "012_acted": "reactidle person",
        "011_acted": None,
        "dataset-1_walk_001": None,
    }


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_pick_held_out_spreads_over_groups_long_first_whatever_the_split(tmp_path, seed):
    seqs = load_mocap_sequences(_mocap_files(tmp_path), split=None, fps=30)
    # groups in name order (hdm05 motion lieDownFloor, hdm05 motion throwBasketball, hdm05 person, reactidle
    # person); in each, the only sequence of >= 100 frames comes first, so the order does not depend on the seed
    picked = rm.pick_held_out(seqs, 3, 100, seed)
    assert [s.name for s in picked] == ["HDM_bd_lieDownFloor_001", "HDM_mm_throwBasketball_001", "HDM_mm_jog_001"]
    every = rm.pick_held_out(seqs, 10, 100, seed)
    assert [s.name for s in every] == ["HDM_bd_lieDownFloor_001", "HDM_mm_throwBasketball_001", "HDM_mm_jog_001",
                                       "012_acted", "HDM_tr_lieDownFloor_002", "HDM_tr_kick_001"]  # fmt: skip
    assert [s.num_frames for s in every] == [200, 50, 100, 240, 40, 30]


def test_pick_val_takes_the_validation_split_only(tmp_path):
    seqs = load_mocap_sequences(_mocap_files(tmp_path), split="val", fps=30)
    picked = rm.pick_sequences(seqs, 10, 20, seed=0)
    assert sorted(s.name for s in picked) == ["012_acted", "HDM_bk_jog_001", "HDM_tr_kick_001",
                                              "HDM_tr_lieDownFloor_002", "dataset-1_walk_001"]  # fmt: skip
    assert [s.source for s in picked] == ["bandai", "hdm05", "reactidle", "hdm05", "hdm05"]


def test_no_held_out_sequence_is_one_line_error(tmp_path, capsys):
    bandai = _mocap_files(tmp_path)[2]
    assert rm.main(["--data", str(bandai), "--pick", "held-out", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no held-out sequence" in err[0]
    assert not (tmp_path / "out").exists()  # nothing was rendered


# --- cameras ---------------------------------------------------------------------------------------------------------


def test_make_view_ranges_and_errors():
    assert rv.make_view() == rv.VIEW
    high = rv.make_view(pitch="35,60")
    assert high.pitch_deg == (35.0, 60.0)
    assert (high.yaw_deg, high.distance_m, high.fov_deg, high.image_size) == (
        rv.VIEW.yaw_deg, rv.VIEW.distance_m, rv.VIEW.fov_deg, rv.VIEW.image_size)  # fmt: skip
    other = rv.make_view(pitch="-10, 5", distance="2,3.5", fov="70,70")
    assert (other.pitch_deg, other.distance_m, other.fov_deg) == ((-10.0, 5.0), (2.0, 3.5), (70.0, 70.0))
    bad = [("pitch", "60,35", "LO <= HI"), ("pitch", "35", "LO,HI (two numbers)"), ("pitch", "a,b", "two numbers"),
           ("pitch", "1,2,3", "two numbers"), ("pitch", "nan,5", "finite"), ("pitch", "-95,0", "[-90, 90]"),
           ("distance", "0,3", "> 0"), ("fov", "50,180", "(0, 180)")]  # fmt: skip
    for option, text, message in bad:
        with pytest.raises(rm.InputError, match=f"^--{option} '{re.escape(text)}': .*{re.escape(message)}"):
            rv.make_view(**{option: text})


def test_bad_camera_option_is_one_line_error(tmp_path, capsys):
    files = _mocap_files(tmp_path)
    assert rm.main(["--data", str(files[0]), "--pitch", "60,35"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --pitch '60,35': expected finite numbers with LO <= HI"]


def test_describe_view_of_the_default_and_high_cameras():
    assert rv.describe_view(rv.VIEW) == ("yaw 0-360 deg, pitch 0-20 deg, roll +-0 deg, distance 3.5-5 m, "
                                         "fov 50-60 deg, 640x640 px")  # fmt: skip
    assert "pitch 35-60 deg" in rv.describe_view(rv.make_view(pitch="35,60"))


@pytest.mark.parametrize("up_axis", ["y", "z"])
def test_camera_pitch_passes_through_to_the_sequence_camera(up_axis):
    joints = _standing(30, 0).astype(np.float64)
    if up_axis == "z":
        joints = joints[..., [0, 2, 1]] * [1.0, -1.0, 1.0]  # y up -> z up (right-handed)
    seq = MocapSequence("s", "x", "-", 30.0, joints, up_axis=up_axis)
    for pitch in (-30.0, 0.0, 40.0, 60.0):
        cam = sequence_camera(seq, 0, rv.make_view(pitch=f"{pitch},{pitch}"))
        assert rv.camera_pitch_deg(cam.R, up_axis) == pytest.approx(pitch, abs=1e-9)


def _yaw(R: np.ndarray) -> np.ndarray:
    """The optical axis projected on the ground (y-up world), unit length."""
    flat = R[2] - (R[2] @ up_vector("y")) * up_vector("y")
    return flat / np.linalg.norm(flat)


@pytest.mark.parametrize("seed", [0, 5])
def test_same_seed_same_point_of_any_pitch_range(seed):
    seq = MocapSequence("HDM_mm_jog_001", "hdm05", "jog", 30.0, _standing(30, 3).astype(np.float64))
    low = sequence_camera(seq, seed, rv.VIEW)
    high = sequence_camera(seq, seed, rv.make_view(pitch="35,60"))
    p_low, p_high = rv.camera_pitch_deg(low.R, "y"), rv.camera_pitch_deg(high.R, "y")
    assert 0.0 <= p_low <= 20.0 and p_high == pytest.approx(35.0 + 25.0 * p_low / 20.0)
    np.testing.assert_allclose(_yaw(high.R), _yaw(low.R), atol=1e-9)
    assert high.focal == low.focal


def _cube(half: float) -> tuple[np.ndarray, np.ndarray]:
    """A closed cube about the origin: 8 vertices, 12 outward-wound triangles."""
    verts = np.array([[x, y, z] for x in (-half, half) for y in (-half, half) for z in (-half, half)])
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])
    normals = raster.face_normals(verts, faces)
    assert (np.einsum("fk,fk->f", normals, verts[faces].mean(1)) > 0).all()  # outward
    return verts, faces


def test_render_sequence_uses_the_view_and_writes_every_frame(tmp_path, monkeypatch):
    import cv2

    import mocli.mesh.meshes

    T = 4
    verts, faces = _cube(0.3)

    def fake_fit(body, joints, kind, options):  # the Anny fit: a cube on the pelvis, 7 mm off
        assert joints.shape == (T, 17, 3) and np.allclose(joints[:, 0], 0.0)
        return SimpleNamespace(vertices=np.repeat(verts[None], T, axis=0), error_mm=np.full(T, 7.0))

    monkeypatch.setattr(mocli.mesh.meshes, "fit_mesh", fake_fit)
    seq = MocapSequence("HDM_tr_kick_001", "hdm05", "kick", 30.0, _standing(T, 4).astype(np.float64), subject="tr")
    colours = np.tile(np.array(raster.GREY, float), (len(faces), 1))
    view = rv.make_view(pitch="50,50", distance="4,4", fov="55,55")
    out = rm.render_sequence(seq, SimpleNamespace(faces=faces), colours, tmp_path, 0, None, view)
    assert rv.camera_pitch_deg(out.camera.R, "y") == pytest.approx(50.0)
    pelvis_depth = np.linalg.norm(out.gt_cam[:, 0], axis=-1).mean()
    assert pelvis_depth == pytest.approx(4.0, abs=0.3)  # the camera aims at the mean pelvis from 4 m
    np.testing.assert_allclose(out.gt_cam, seq.joints @ out.camera.R.T + out.camera.t)
    assert out.fit_error_mm.tolist() == [7.0] * T
    video = cv2.VideoCapture(str(out.video))
    frames = []
    while True:
        ok, image = video.read()
        if not ok:
            break
        frames.append(image)
    video.release()
    assert len(frames) == T and frames[0].shape == (640, 640, 3)
    centre = frames[0][300:340, 300:340].astype(float).mean(axis=(0, 1))  # the cube, grey-shaded, over the pelvis
    assert centre.std() < 8 and centre.mean() > 60  # grey, not the coloured background


def test_run_info_records_pick_and_cameras():
    args = Namespace(data=[Path("a.h5")], pick="held-out", frames=150, seed=0, look="person", bones="fixed",
                     upright=False, fit_iterations=200, limb_depth=0.5, stride=27,
                     mediapipe_model="heavy")  # fmt: skip
    info = rm.run_info(args, rv.make_view(pitch="35,60"), Path("w/dstformer-small.mocap.pt"), 0.25)
    assert info["pick"] == "held-out" and info["model"] == "w/dstformer-small.mocap.pt"
    assert info["mediapipe_model"] == "heavy"
    assert info["upright"] is False and info["detector_3d"] == 0.25
    assert info["limb_depth"] == 0.5 and info["stride"] == 27
    off = Namespace(**{**vars(args), "limb_depth": 0.0})
    assert rm.run_info(off, rv.make_view(), Path("w"), 0.0)["limb_depth"] == 0.0
    assert info["view"]["pitch_deg"] == (35.0, 60.0) and info["view"]["distance_m"] == (3.5, 5.0)
    assert info["view"]["roll_deg"] == 0.0 and info["view"]["image_size"] == (640, 640)


def test_print_report_shows_group_rows(capsys):
    plaus = {w: {"bone_length_cv_pct": 1.0, "asymmetry_pct": 2.0, "speed_mm_per_frame": 3.0}
             for w in ("gt", "mocli", "mediapipe")}  # fmt: skip
    base = {"mediapipe_pa_mpjpe_mm": 50.0, "mocli_mpjpe_mm": 0.0, "mocli_scaled_mpjpe_mm": 0.0, "plausibility": plaus,
            "fit_error_mm": 5.0, "mocli_scale": 1.0, "num_frames": 10, "detection_rate": 1.0}  # fmt: skip
    rows = [{**base, "name": "m1", "group": "hdm05 motion", "frames": 10, "mocli_pa_mpjpe_mm": 10.0},
            {**base, "name": "m2", "group": "hdm05 motion", "frames": 30, "mocli_pa_mpjpe_mm": 30.0},
            {**base, "name": "p1", "group": "hdm05 person", "frames": 10, "mocli_pa_mpjpe_mm": 70.0}]  # fmt: skip
    groups = {g: scores.summarise([r for r in rows if r["group"] == g]) for g in ("hdm05 motion", "hdm05 person")}
    scores.print_report(rows, scores.summarise(rows), groups)
    accuracy = capsys.readouterr().out.strip().split("\n\n")[0].splitlines()  # the first table
    cells = {line[:34].strip(): line[34:].split() for line in accuracy[1:]}  # frames, det %, fit, 2D, PA mocli, ...
    assert list(cells) == ["m1", "m2", "p1", "group hdm05 motion", "group hdm05 person", "overall"]
    assert cells["group hdm05 motion"][:5] == ["40", "100.0", "5.0", "-", "25.0"]  # (10 x 10 + 30 x 30) / 40
    assert cells["group hdm05 person"][4] == "70.0"
    assert cells["overall"][4] == "34.0"  # (100 + 900 + 700) / 50


def test_sweep_summaries_weigh_frames_and_weights_are_checked():
    rows = [
        {"sweep": {"0": {"frames": 10, "mocli_pa_mpjpe_mm": 50.0, "mocli_limbs_pa_mm": 60.0},
                   "0.5": {"frames": 10, "mocli_pa_mpjpe_mm": 40.0, "mocli_limbs_pa_mm": 45.0}}},
        {"sweep": {"0": {"frames": 30, "mocli_pa_mpjpe_mm": 70.0, "mocli_limbs_pa_mm": 80.0},
                   "0.5": {"frames": 30, "mocli_pa_mpjpe_mm": 60.0, "mocli_limbs_pa_mm": 61.0}}},
        {"sweep": {"0": {"frames": 0, "mocli_pa_mpjpe_mm": None, "mocli_limbs_pa_mm": None},
                   "0.5": {"frames": 0, "mocli_pa_mpjpe_mm": None, "mocli_limbs_pa_mm": None}}},
    ]  # fmt: skip
    out = scores.summarise_sweep(rows)
    assert out["0"] == {"mocli_pa_mpjpe_mm": pytest.approx(65.0), "mocli_limbs_pa_mm": pytest.approx(75.0)}
    assert out["0.5"] == {"mocli_pa_mpjpe_mm": pytest.approx(55.0), "mocli_limbs_pa_mm": pytest.approx(57.0)}
    assert ri.parse_weight("0.3") == 0.3 and ri.parse_weight("auto") == "auto"
    assert [ri.weight_label(ri.parse_weight(w)) for w in ("auto", "0.30", "1", "0")] == ["auto", "0.3", "1", "0"]
    with pytest.raises(ri.InputError, match="--detector-3d '2'"):
        ri.parse_weight("2", "--detector-3d")
    for bad in ("1.2", "-0.1", "half", "auto@0", "auto@-0.1", "auto@x", "0.3@0.08", "auto@nan"):
        with pytest.raises(ri.InputError, match="--sweep"):
            ri.parse_weight(bad)


def test_auto_at_a_spread_sets_the_lift_options_half_weight_spread():
    from mocli.lift import DETECTOR_3D_SPREAD_M, LiftOptions

    assert [ri.weight_label(ri.parse_weight(w)) for w in ("auto@0.080", "AUTO@.1")] == ["auto@0.08", "auto@0.1"]
    base = LiftOptions(detector_3d=0.0)
    assert ri.mix_options(base, ri.parse_weight("auto@0.08")) == LiftOptions(
        detector_3d="auto", detector_3d_spread_m=0.08
    )
    assert ri.mix_options(base, "auto") == LiftOptions(detector_3d="auto", detector_3d_spread_m=DETECTOR_3D_SPREAD_M)
    assert ri.mix_options(base, 0.3) == LiftOptions(detector_3d=0.3)


def test_stride_reaches_the_lift_options_and_is_checked(monkeypatch, tmp_path):
    import mocli.api

    weights = tmp_path / "some.pt"
    weights.write_bytes(b"")  # never read: the loader is replaced
    monkeypatch.setattr(mocli.api, "load_lifter", lambda weights, device: "lifter")
    monkeypatch.setattr(mocli.api, "model_clip_len", lambda lifter: 81)
    pipe = ri.load_pipeline(str(weights), device="cpu", stride=27)
    assert pipe.options.lift.stride == 27 and pipe.options.lift.clip_len == 81
    assert ri.load_pipeline(str(weights), device="cpu").options.lift.stride is None  # infer's default
    for bad in (0, 82):
        with pytest.raises(ri.InputError, match=f"--stride {bad}: give 1 to the model's clip length, 81 frames"):
            ri.load_pipeline(str(weights), device="cpu", stride=bad)


def test_the_lifters_own_auto_scale_reaches_the_lift_options(tmp_path):
    """Weights that store auto's half-weight spread (``mocli weights export --detector-3d-spread``): the benchmark
    lifts with it as infer does; 'auto' in a sweep keeps it, 'auto@S' replaces it."""
    import mocli
    from mocli.models.checkpoint import build_checkpoint, save_checkpoint, shipping_copy

    model = mocli.create_model("dstformer-tiny", maxlen=27)
    ckpt = shipping_copy(build_checkpoint(model, "dstformer-tiny", meta={"clip_len": 27}), detector_3d_spread_m=0.1)
    pipe = ri.load_pipeline(str(save_checkpoint(ckpt, tmp_path / "tiny.pt")), device="cpu")
    assert pipe.options.lift.detector_3d_spread_m == 0.1 and pipe.options.lift.clip_len == 27
    assert ri.mix_options(pipe.options.lift, "auto").detector_3d_spread_m == 0.1
    assert ri.mix_options(pipe.options.lift, ri.parse_weight("auto@0.2")).detector_3d_spread_m == 0.2


def test_heavy_2d_is_cached_apart_beside_the_same_videos(tmp_path, monkeypatch):
    """--mediapipe-model heavy with --reuse: a video drawn by a full run is detected again, not drawn again, and the
    heavy 2D is cached in cache-heavy/, so that neither run's 2D replaces the other's."""
    from mocli.keypoints import KeypointSequence

    T = 5
    seq = MocapSequence("HDM_tr_kick_001", "hdm05", "kick", 30.0, _standing(T, 4).astype(np.float64), subject="tr")
    calls = []

    def fake_render(seq, model, colours, out, seed, fit, view):
        calls.append("draw")
        camera, gt = rm.camera_truth(seq, seed, view)
        video = out / "videos" / f"{rm._file_name(seq.name)}.mp4"
        video.parent.mkdir(parents=True, exist_ok=True)
        video.write_bytes(b"video")
        return rm.RenderedSequence(seq.name, seq.source, seq.fps, gt, camera, np.full(T, 3.0), video, {})

    def fake_detect(video, options):
        model = options.detector_options.mediapipe_model
        calls.append(model)
        kp = np.full((T, 17, 3), 1.0 if model == "full" else 2.0, np.float32)
        return KeypointSequence(kp, (640, 640), 30.0, np.ones(T, bool), np.zeros(T, bool), source="mediapipe")

    monkeypatch.setattr(rm, "render_sequence", fake_render)
    monkeypatch.setattr(rm, "detect_person", fake_detect)
    body = lambda: (None, None)  # noqa: E731
    view = rv.make_view()

    def run(model: str, reuse: bool = True):
        args = Namespace(seed=0, look="person", fit_iterations=200, reuse=reuse, mediapipe_model=model)
        pipe = SimpleNamespace(options=ri.detection_options("cpu", model))
        rendered, found, _, reused = rm.rendered_and_detected(seq, args, body, tmp_path, view, pipe)
        return float(found.keypoints[0, 0, 0]), rendered.fit_error_mm.tolist(), reused

    assert run("full") == (1.0, [3.0] * T, False) and calls == ["draw", "full"]
    assert run("full") == (1.0, [3.0] * T, True) and calls == ["draw", "full"]
    assert run("heavy") == (2.0, [3.0] * T, False) and calls == ["draw", "full", "heavy"]  # detected, not drawn
    assert run("heavy") == (2.0, [3.0] * T, True) and run("full")[0] == 1.0  # each model's own 2D
    assert calls == ["draw", "full", "heavy"]
    assert sorted(p.name for p in (tmp_path / "cache-heavy").iterdir()) == [
        "HDM_tr_kick_001.keypoints.npz",
        "HDM_tr_kick_001.npz",
    ]
