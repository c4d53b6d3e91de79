"""benchmarks/rendered_people.py: scene placement, drawing several bodies, who-is-who counting and trajectory
scores on hand-made cases (no MediaPipe, no Anny, no video)."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mocli.data.cameras import Camera, project_perspective

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))  # as when the script runs: it imports its sibling modules by name
scene = importlib.import_module("people_scene")
scores = importlib.import_module("people_scores")
rp = importlib.import_module("rendered_people")


# --- placement -------------------------------------------------------------------------------------------------------


def test_plan_scene_rows_people_at_the_spacing_and_strata():
    people = scene.plan_scene(3, seed=4, spacing=(2.0, 2.0), depth=(5.0, 8.0), cross=False)
    assert [p.x_start for p in people] == pytest.approx([-2.0, 0.0, 2.0])
    assert not any(p.crosses for p in people)
    depths = sorted(p.depth for p in people)
    assert 5.0 < depths[0] and depths[-1] < 8.0
    assert np.diff(depths).min() >= 0.4 * 3.0 / 3 - 1e-9  # one per 1 m stratum, within its middle 60 %
    assert all(abs(p.yaw_deg) <= 60.0 for p in people)
    assert people == scene.plan_scene(3, seed=4, spacing=(2.0, 2.0), depth=(5.0, 8.0), cross=False)
    assert people != scene.plan_scene(3, seed=5, spacing=(2.0, 2.0), depth=(5.0, 8.0), cross=False)


def test_plan_scene_crossing_person_walks_the_row_in_front():
    plain = scene.plan_scene(3, seed=1, cross=False)
    people = scene.plan_scene(3, seed=1)
    assert people[1:] == plain[1:]
    walker = people[0]
    assert walker.crosses and (walker.x_start, walker.x_end) == (plain[0].x_start, plain[2].x_start)
    assert walker.depth == pytest.approx(min(p.depth for p in plain) - scene.CROSS_AHEAD_M)
    assert not scene.plan_scene(1, seed=1)[0].crosses
    with pytest.raises(ValueError):
        scene.plan_scene(0, seed=1)


def _skeleton_z_up(facing_deg: float) -> np.ndarray:
    """(2,17,3) a standing person in a z-up world, facing ``facing_deg`` from +x, pelvis at (3, 4, 1.0) then 0.5 m
    further along x; ankles 0.1 m above the floor; the head 0.6 m above the pelvis; the nose 0.1 m in front."""
    a = np.radians(facing_deg)
    forward, right = np.array([np.cos(a), np.sin(a), 0.0]), np.array([np.sin(a), -np.cos(a), 0.0])
    pelvis = np.array([3.0, 4.0, 1.0])
    j = np.tile(pelvis, (17, 1))
    j[1], j[4] = pelvis + 0.1 * right, pelvis - 0.1 * right  # right, left hip
    j[3], j[6] = j[1] - [0, 0, 0.9], j[4] - [0, 0, 0.9]  # ankles at z = 0.1
    j[10] = pelvis + [0, 0, 0.6]  # head
    j[9] = pelvis + [0, 0, 0.5] + 0.1 * forward  # "neck/nose", in front
    return np.stack([j, j + [0.5, 0.0, 0.0]])


def _handedness(j: np.ndarray) -> float:
    """Sign of the volume spanned by (right hip - left hip, head - pelvis, nose - pelvis) in the first frame."""
    return float(np.sign(np.linalg.det(np.stack([j[0, 1] - j[0, 4], j[0, 10] - j[0, 0], j[0, 9] - j[0, 0]]))))


@pytest.mark.parametrize("yaw", [0.0, 90.0, -45.0])
def test_place_person_faces_the_camera_at_its_place(yaw):
    joints = _skeleton_z_up(facing_deg=30.0)
    level = scene.level_frame(joints, "z")
    assert level[..., 1].max() == pytest.approx(0.0)  # the ankles on the floor plane
    assert level[:, 0, [0, 2]].mean(0) == pytest.approx([0.0, 0.0])  # the clip's mean pelvis over the origin
    placed = scene.place_person(level, scene.Placement(1.0, 2.0, 5.0, yaw), camera_height=1.6)
    assert placed[:, 0].mean(0) == pytest.approx([1.5, 0.7, 5.0])  # the mean pelvis at the mean place
    assert placed[:, 0, 1] == pytest.approx([0.7, 0.7])  # pelvis 0.9 m above the floor, floor 1.6 m below
    hips = placed[0, 1] - placed[0, 4]
    a = np.pi + np.radians(yaw)  # yaw 0: right hip towards -x, i.e. facing the camera (-z)
    assert hips == pytest.approx([0.2 * np.cos(a), 0.0, 0.2 * np.sin(a)], abs=1e-9)
    assert _handedness(placed) == _handedness(joints)  # a rotation, not a mirror
    # x moves linearly from x_start to x_end around the clip's own motion (here 0.5 m along the turned +x)
    step = placed[1, 0] - placed[0, 0]
    assert np.linalg.norm(step[[0, 2]] - [1.0, 0.0]) == pytest.approx(0.5)


def test_level_frame_same_person_in_y_up_world_is_a_turn_of_z_up():
    z_up = _skeleton_z_up(facing_deg=0.0)
    y_up = z_up[..., [1, 2, 0]]  # (x, y, z) -> (y, z, x): a cyclic permutation, a proper rotation, up = y
    a, b = scene.level_frame(z_up, "z"), scene.level_frame(y_up, "y")
    assert a[..., 1] == pytest.approx(b[..., 1])  # heights agree
    pa = scene.place_person(a, scene.Placement(0, 0, 5, 0), 1.6)
    pb = scene.place_person(b, scene.Placement(0, 0, 5, 0), 1.6)
    assert pa[0] == pytest.approx(pb[0])  # facing the camera fixes the turn: the same first frame


def test_scene_camera_pitch_puts_the_tilted_axis_at_the_centre():
    cam = scene.scene_camera(200, 100, 90.0, 0.0)
    assert cam.focal == pytest.approx(100.0) and cam.R == pytest.approx(np.eye(3))
    tilted = scene.scene_camera(200, 100, 90.0, 10.0)
    below = np.array([0.0, 5 * np.tan(np.radians(10.0)), 5.0])  # 10 deg below the horizon, level frame (y down)
    assert project_perspective(below @ tilted.R.T, tilted.focal, tilted.centre) == pytest.approx([100.0, 50.0])


# --- drawing ---------------------------------------------------------------------------------------------------------


def test_person_colours_change_only_the_clothes():
    shirt, trousers, skin = (60, 70, 170), (90, 55, 40), (135, 165, 215)
    colours = np.array([shirt, trousers, skin], np.float64)
    assert scene.person_colours(colours, 0) == pytest.approx(colours)
    second = scene.person_colours(colours, 1)
    assert second == pytest.approx(np.array([scene.CLOTHES[1][0], scene.CLOTHES[1][1], skin], np.float64))
    assert scene.person_colours(colours, len(scene.CLOTHES) + 1) == pytest.approx(second)


def _quad(cx: float, half: float, z: float) -> np.ndarray:
    return np.array([[cx - half, -half, z], [cx - half, half, z], [cx + half, half, z], [cx + half, -half, z]])


def test_scene_frame_nearer_body_hides_the_farther_one():
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    cam = Camera(R=np.eye(3), t=np.zeros(3), focal=100.0, centre=np.array([50.0, 50.0]), image_size=(100, 100))
    bg = np.zeros((100, 100, 3), np.uint8)
    near, far = _quad(0.0, 0.3, 2.0), _quad(0.2, 1.0, 4.0)  # near: pixels 35..65; far: 30..80 x, 25..75 y
    red, green = np.full((2, 3), [0.0, 0.0, 250.0]), np.full((2, 3), [0.0, 250.0, 0.0])
    for order in ([far, near], [near, far]):  # whatever the order of the people, depth decides
        cols = [green, red] if order[0] is far else [red, green]
        image = scene.scene_frame(order, faces, cols, cam, bg)
        assert image[50, 50, 2] > 100 and image[50, 50, 1] == 0  # the near (red) one in front
        assert image[50, 75, 1] > 100  # the far (green) one beside it
    gone = scene.scene_frame([near, np.full_like(far, np.nan)], faces, [red, green], cam, bg)
    assert gone[50, 75].sum() == 0 and gone[50, 50, 2] > 100  # a body without a pose is left out


# --- who is who ------------------------------------------------------------------------------------------------------


def _crossing(t: int = 10) -> np.ndarray:
    """Two people crossing, (2,T,3,2) pixels: 3 joints (pelvis, head 200 px above, a foot 200 px below), A's pelvis
    from x=0 to 900, B's from 900 to 0, at y = 300."""
    x = np.linspace(0.0, 900.0, t)
    pelvis = np.stack([np.stack([x, np.full(t, 300.0)], -1), np.stack([x[::-1], np.full(t, 300.0)], -1)])
    return pelvis[:, :, None] + np.array([[0.0, 0.0], [0.0, -200.0], [0.0, 200.0]])


def test_identity_switch_when_tracks_swap_at_a_crossing():
    gt = _crossing()
    tracks = gt.copy()
    tracks[:, 5:] = gt[::-1, 5:]  # after the crossing each track follows the other person
    matched = scores.match_tracks(tracks + 3.0, gt, np.full((2, 10), 50.0))
    assert matched[:5].tolist() == [[0, 1]] * 5 and matched[5:].tolist() == [[1, 0]] * 5
    counts = scores.identity_counts(matched, [7, 9])
    assert counts["id_switches"] == [1, 1] and counts["tracks_per_person"] == [2, 2]
    assert counts["fragmented_people"] == 2 and counts["impure_tracks"] == [7, 9] and counts["unmatched_tracks"] == []


def test_identity_kept_through_crossing_and_fragments_counted():
    gt = _crossing()
    right = scores.identity_counts(scores.match_tracks(gt + 2.0, gt, np.full((2, 10), 50.0)), [1, 2])
    assert right["id_switches"] == [0, 0] and right["fragmented_people"] == 0 and right["impure_tracks"] == []
    # person A: track 0 on frames 0-3, lost on 4-5, then a new track 1 on 6-9; a far-away track 2 is nobody
    tracks = np.full((3, 10, 3, 2), np.nan)
    tracks[0, :4], tracks[1, 6:], tracks[2] = gt[0, :4], gt[0, 6:], 2000.0
    matched = scores.match_tracks(tracks, gt[:1], np.full((1, 10), 50.0))
    assert matched[:, 0].tolist() == [0, 0, 0, 0, -1, -1, 1, 1, 1, 1]
    counts = scores.identity_counts(matched, [4, 5, 6])
    assert counts["id_switches"] == [1] and counts["fragmented_people"] == 1 and counts["unmatched_tracks"] == [6]


def test_match_tracks_uses_the_whole_body_and_the_gate():
    gt = np.zeros((2, 1, 3, 2))
    gt[0, 0] = [[0.0, 0.0], [0.0, -200.0], [0.0, 200.0]]  # A standing at x = 0
    gt[1, 0] = [[60.0, 0.0], [260.0, 0.0], [-140.0, 0.0]]  # B lying, pelvis 60 px to the right
    track = gt[:1].copy()
    track[0, 0, 0] = [50.0, 0.0]  # A's pose with its pelvis off by 50 px, 10 px from B's pelvis
    matched = scores.match_tracks(track, gt, np.full((2, 1), 100.0))
    assert matched.tolist() == [[0, -1]]  # mean joint distance: 16.7 px to A, far more to B
    track[0, 0, 1:] = np.nan  # only the pelvis known: then it is B's (10 px) rather than A's (50 px)
    assert scores.match_tracks(track, gt, np.full((2, 1), 100.0)).tolist() == [[-1, 0]]
    assert scores.match_tracks(track, gt, np.full((2, 1), 5.0)).tolist() == [[-1, -1]]  # beyond the gate
    values = np.array([[[1.0]]])  # (N=1,T=1,1)
    matched = np.array([[-1, 0]])
    assert scores.gather(values, matched)[:, 0, 0] == pytest.approx([np.nan, 1.0], nan_ok=True)
    assert (scores.match_tracks(np.zeros((0, 1, 3, 2)), gt, np.ones((2, 1))) == -1).all()


def test_fps_by_count_and_gates():
    table = scores.fps_by_count([1, 1, 3], [0.1, 0.1, 0.5])
    assert table == {1: {"frames": 2, "fps": pytest.approx(10.0)}, 3: {"frames": 1, "fps": pytest.approx(2.0)}}
    px = np.zeros((1, 1, 17, 2))
    px[0, 0, 1], px[0, 0, 2] = [300.0, 0.0], [0.0, 400.0]  # box 300 x 400: diagonal 500
    assert rp.gates(px).tolist() == [[pytest.approx(rp.GATE * 500.0)]]


# --- trajectories ----------------------------------------------------------------------------------------------------


def _two_people() -> np.ndarray:
    """(2,3,3) pelvis positions, metres: A at x=-1 z=4, B at x=+2 z=6 (distance sqrt(13)), 3 frames."""
    return np.stack([np.tile([-1.0, 0.5, 4.0], (3, 1)), np.tile([2.0, 0.5, 6.0], (3, 1))])


def test_trajectory_scores_with_a_known_scale():
    gt = _two_people()
    pred = gt / 1.25  # everyone 20 % nearer along their line of sight: one scale explains it
    s = scores.score_trajectories(pred, gt)
    assert s["scale"] == pytest.approx(1.25) and s["scaled_root_error_mm"] == pytest.approx(0.0, abs=1e-6)
    expected = 1000 * 0.2 * np.mean([np.linalg.norm(gt[0, 0]), np.linalg.norm(gt[1, 0])])
    assert s["root_error_mm"] == pytest.approx(expected)
    assert s["depth_error_mm"] == pytest.approx(1000 * 0.2 * 5.0)  # |z| 4 and 6 -> mean 0.2 * 5
    assert s["distance_error_mm"] == pytest.approx(1000 * 0.2 * np.sqrt(13.0))
    assert s["scaled_distance_error_mm"] == pytest.approx(0.0, abs=1e-6)
    assert s["depth_order_pct"] == 100.0 and s["pair_frames"] == 3 and s["depth_order_frames"] == 3


def test_trajectory_depth_order_and_missing_frames():
    gt = _two_people()
    pred = gt.copy()
    pred[0, :, 2], pred[1, :, 2] = 6.0, 4.0  # depths swapped
    pred[1, 2] = np.nan  # B missing in the last frame
    s = scores.score_trajectories(pred, gt)
    assert s["frames"] == 5 and s["pair_frames"] == 2 and s["depth_order_pct"] == 0.0
    assert s["depth_error_mm"] == pytest.approx(2000.0)
    near = gt.copy()
    near[1, :, 2] = 4.1  # true depths 0.1 m apart: order not scored
    assert scores.score_trajectories(near, near)["depth_order_frames"] == 0
    empty = scores.score_trajectories(np.full_like(gt, np.nan), gt)
    assert empty["frames"] == 0 and empty["root_error_mm"] is None and empty["depth_order_pct"] is None


# --- plumbing --------------------------------------------------------------------------------------------------------


class _FakeDetector:
    name, skeleton, multi_person = "fake", "mediapipe", True

    def detect(self, frame):
        kp = np.ones((33, 3), np.float32)
        kp[23, :2], kp[24, :2] = [10.0, 20.0], [30.0, 40.0]  # left, right hip
        return [SimpleNamespace(keypoints=kp)] * int(frame)

    def close(self):
        pass


def test_timed_detectors_wraps_the_registry_entry_and_restores_it(monkeypatch):
    from mocli.keypoints import create_detector, registry

    factory = lambda options: _FakeDetector()  # noqa: E731
    monkeypatch.setitem(registry.DETECTORS, "fake", factory)
    made = []
    with rp.timed_detectors("fake", made):
        det = create_detector("fake")
        assert det.multi_person and det.name == "fake"  # the wrapped detector's attributes
        assert len(det.detect(2)) == 2 and det.detect(0) == []
    assert registry.DETECTORS["fake"] is factory and made == [det]
    assert [f.shape for f in det.found] == [(2, 17, 2), (0, 17, 2)]
    assert det.found[0][0, 0] == pytest.approx([20.0, 30.0])  # the H36M pelvis: the mid-hip
    assert det.found[0][0, 1] == pytest.approx([30.0, 40.0])  # the right hip
    assert len(det.seconds) == 2


def test_read_result_stacks_tracks(tmp_path):
    from mocli.results import MotionResult, write_joints_npz

    entries = []
    for person in (1, 3):
        joints = np.full((4, 17, 3), float(person), np.float32)
        result = MotionResult(joints3d=joints, keypoints2d=np.zeros((4, 17, 3), np.float32), fps=30.0,
                              image_size=(64, 48), missing=np.zeros(0, np.int64), extras={},
                              root=np.full((4, 3), 10.0 * person, np.float32))  # fmt: skip
        write_joints_npz(result, tmp_path / f"joints3d_p{person}.npz")
        entries.append({"file": f"joints3d_p{person}.npz", "person": person})
    (tmp_path / "summary.json").write_text(json.dumps({"results": entries}))
    summary, ids, arrays = rp.read_result(tmp_path)
    assert ids == [1, 3] and arrays["joints3d"].shape == (2, 4, 17, 3)
    assert arrays["root"][:, 0, 0] == pytest.approx([10.0, 30.0]) and np.isnan(arrays["mediapipe"]).all()


def test_bad_options_are_one_line_errors(tmp_path, capsys):
    assert rp.main(["--data", str(tmp_path / "none.h5")]) == 1
    assert capsys.readouterr().err.strip().count("\n") == 0
    (tmp_path / "x.h5").write_bytes(b"")
    assert rp.main(["--data", str(tmp_path / "x.h5"), "--size", "big"]) == 1
    assert "--size" in capsys.readouterr().err
    assert rp.main(["--data", str(tmp_path / "x.h5"), "--depth", "0.5,2"]) == 1


def test_pool_scenes_weights_by_frames_and_sums_counts():
    def person(frames, detected, pa):
        return {"num_frames": 10, "frames": frames, "in_view_pct": 100.0, "detected_pct": detected,
                "output_pct": detected, "keypoints_2d_px": 1.0, "mocli_pa_mpjpe_mm": pa, "mocli_mpjpe_mm": pa,
                "mediapipe_pa_mpjpe_mm": None}  # fmt: skip

    def traj(frames, err, pairs, order):
        return {"frames": frames, "root_error_mm": err, "depth_error_mm": err, "scaled_root_error_mm": err,
                "pair_frames": pairs, "distance_error_mm": err, "scaled_distance_error_mm": err,
                "depth_order_frames": pairs, "depth_order_pct": order}  # fmt: skip

    ident = {"tracks": 2, "id_switches": [1, 0], "fragmented_people": 1, "impure_tracks": [2], "unmatched_tracks": []}
    scenes = [
        {"people": [person(10, 100.0, 50.0), person(0, 0.0, None)], "identity": ident,
         "trajectory": traj(10, 100, 0, None)},
        {"people": [person(30, 50.0, 90.0)], "identity": dict(ident, id_switches=[2], impure_tracks=[]),
         "trajectory": traj(30, 200, 4, 50.0)},
    ]  # fmt: skip
    timings = [{"scene": ([3, 3], [0.1, 0.1])}, {"scene": ([1], [0.05]), "alone": ([1], [0.025])}]
    o = scores.pool_scenes(scenes, timings)
    assert o["people"] == 3 and o["tracks"] == 4
    assert o["detected_pct"] == pytest.approx(50.0) and o["in_view_pct"] == 100.0  # (100 + 0 + 50) / 3
    assert o["mocli_pa_mpjpe_mm"] == pytest.approx((10 * 50 + 30 * 90) / 40) and o["mediapipe_pa_mpjpe_mm"] is None
    assert (o["id_switches"], o["fragmented_people"], o["impure_tracks"]) == (3, 2, 1)
    assert o["trajectory"]["root_error_mm"] == pytest.approx((10 * 100 + 30 * 200) / 40)
    assert o["trajectory"]["distance_error_mm"] == pytest.approx(200.0) and o["trajectory"]["depth_order_pct"] == 50.0
    assert o["detector_fps"]["scene"] == {1: {"frames": 1, "fps": pytest.approx(20.0)},
                                          3: {"frames": 2, "fps": pytest.approx(10.0)}}  # fmt: skip
    assert o["detector_fps"]["alone"] == {1: {"frames": 1, "fps": pytest.approx(40.0)}}


def test_score_scene_perfect_tracks_score_zero(monkeypatch):
    cam = scene.scene_camera(640, 360, 60.0, 5.0)
    rng = np.random.default_rng(0)
    body = rng.normal(0.0, 0.15, (1, 4, 17, 3)) * [1, 2, 0.5]  # within the image
    body -= body[:, :, :1]  # pelvis-relative
    gt = np.concatenate([body + [-1.0, 0.5, 5.0], body[:, ::-1] + [1.0, 0.5, 6.0]])  # (G=2,T=4,17,3)
    px = project_perspective(gt, cam.focal, cam.centre)
    order = [1, 0]  # the tracks come in another order than the people
    arrays = {"keypoints2d": np.concatenate([px, np.ones((2, 4, 17, 1))], -1)[order],
              "joints3d": (gt - gt[:, :, :1])[order], "root": gt[order, :, 0],
              "mediapipe": (gt - gt[:, :, :1])[order]}  # fmt: skip
    found = [px[:, t] for t in range(4)]
    rows, s = rp.score_scene(gt, cam, [5, 8], arrays, found)
    assert [r["tracks"] for r in rows] == [[8], [5]]
    assert [(r["detected_pct"], r["output_pct"], r["in_view_pct"]) for r in rows] == [(100.0, 100.0, 100.0)] * 2
    assert all(r["mocli_mpjpe_mm"] == pytest.approx(0.0, abs=1e-6) for r in rows)
    assert all(r["mocli_pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-3) for r in rows)
    assert s["identity"]["id_switches"] == [0, 0] and s["identity"]["tracks"] == 2
    t = s["trajectory"]
    assert t["root_error_mm"] == pytest.approx(0.0, abs=1e-6) and t["scale"] == pytest.approx(1.0)
    assert t["depth_order_pct"] == 100.0 and t["pair_frames"] == 4
