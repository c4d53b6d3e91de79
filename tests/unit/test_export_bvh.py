"""BVH export: Euler and swing maths, and round trips through mocli's BVH reader and forward kinematics."""

from __future__ import annotations

import numpy as np
import pytest

from mocli.data.bvh import euler_to_matrix, forward_kinematics, read_bvh
from mocli.export.bvh import (
    body_frame,
    camera_to_y_up,
    joints_to_bvh_motion,
    matrix_to_euler,
    swing_rotation,
    write_bvh,
)
from mocli.results import MotionResult
from mocli.skeleton import H36M_17

NAMES, PARENTS = H36M_17.joint_names, H36M_17.parents

# A standing body (metres, Y up, facing +Z), deliberately not the exporter's T-pose: hips a little low, shoulders
# drooping, nose forward, arms down.
REST = {
    "right_hip": (-0.13, -0.02, 0.0), "right_knee": (0.0, -0.44, 0.02), "right_ankle": (0.0, -0.44, -0.03),
    "left_hip": (0.13, -0.02, 0.0), "left_knee": (0.0, -0.44, 0.02), "left_ankle": (0.0, -0.44, -0.03),
    "spine": (0.0, 0.23, 0.02), "thorax": (0.0, 0.25, 0.0), "neck": (0.0, 0.11, 0.08), "head": (0.0, 0.12, -0.02),
    "left_shoulder": (0.15, -0.03, 0.0), "left_elbow": (0.02, -0.28, 0.0), "left_wrist": (0.0, -0.25, 0.05),
    "right_shoulder": (-0.15, -0.03, 0.0), "right_elbow": (-0.02, -0.28, 0.0), "right_wrist": (0.0, -0.25, 0.05),
}  # fmt: skip


def random_rotations(rng: np.random.Generator, shape: tuple[int, ...], max_angle: float = np.pi) -> np.ndarray:
    """(*shape, 3, 3) rotations about random axes by angles up to ``max_angle`` radians."""
    axis = rng.normal(size=shape + (3,))
    return swing_rotation(np.broadcast_to([0.0, 0.0, 1.0], axis.shape), axis) @ _about_z(
        rng.uniform(-max_angle, max_angle, size=shape)
    )


def _about_z(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([c, -s, zero], -1), np.stack([s, c, zero], -1), np.stack([zero, zero, one], -1)], -2)


def posed_joints(num_frames: int, seed: int = 0, length_jitter: float = 0.0) -> np.ndarray:
    """(T, 17, 3) metres, camera axes: the REST body under random joint rotations (FK), root at the origin.

    ``length_jitter`` scales every bone by (1 + U(-j, j)) per frame: bone lengths vary, directions stay those of FK.
    """
    rng = np.random.default_rng(seed)
    offsets = np.array([(0.0, 0.0, 0.0)] + [REST[n] for n in NAMES[1:]])
    local = random_rotations(rng, (num_frames, 17), max_angle=1.2)
    scale = 1 + rng.uniform(-length_jitter, length_jitter, size=(num_frames, 17))
    glob = np.empty_like(local)
    pos = np.zeros((num_frames, 17, 3))
    for j, p in enumerate(PARENTS):
        if p < 0:
            glob[:, j] = local[:, j]
            continue
        glob[:, j] = glob[:, p] @ local[:, j]
        pos[:, j] = pos[:, p] + np.einsum("tab,b->ta", glob[:, p], offsets[j]) * scale[:, j, None]
    return camera_to_y_up(pos)  # its own inverse: Y-up -> camera axes


def _result(joints3d: np.ndarray, fps: float = 25.0, root: np.ndarray | None = None) -> MotionResult:
    num_frames = len(joints3d)
    missing = np.flatnonzero(~np.isfinite(joints3d).all(axis=(1, 2)))
    kp = np.zeros((num_frames, 17, 3), np.float32)
    return MotionResult(joints3d.astype(np.float64), kp, fps, (160, 120), missing, root=root)


def _read_back(path) -> tuple[np.ndarray, object]:
    """(T, 17, 3) H36M joints of a written BVH by FK (file units and axes), and the parsed file."""
    bvh = read_bvh(path)
    pos = forward_kinematics(bvh)
    return pos[:, [bvh.index(n) for n in NAMES]], bvh


def _bone_directions(joints: np.ndarray) -> np.ndarray:
    bones = joints[:, 1:] - joints[:, [p for p in PARENTS[1:]]]
    return bones / np.linalg.norm(bones, axis=-1, keepdims=True)


# ------------------------------------------------------------------------------------------------ maths


@pytest.mark.parametrize("order", ["ZXY", "XYZ", "YZX", "XZY", "ZYX", "YXZ"])
def test_euler_round_trip_for_random_rotations(order):
    rng = np.random.default_rng(1)
    rot = random_rotations(rng, (500,))
    back = euler_to_matrix(matrix_to_euler(rot, order), order)
    np.testing.assert_allclose(back, rot, atol=1e-9)


@pytest.mark.parametrize("order", ["ZXY", "XYZ", "XZY"])
@pytest.mark.parametrize("middle", [90.0, -90.0])
def test_euler_at_gimbal_lock(order, middle):
    angles = np.array([[30.0, middle, -50.0], [-120.0, middle, 10.0]])
    rot = euler_to_matrix(angles, order)
    out = matrix_to_euler(rot, order)
    np.testing.assert_allclose(out[:, 1], middle, atol=1e-6)
    np.testing.assert_allclose(out[:, 2], 0.0, atol=1e-9)
    np.testing.assert_allclose(euler_to_matrix(out, order), rot, atol=1e-7)


def test_euler_known_answer():
    np.testing.assert_allclose(matrix_to_euler(euler_to_matrix(np.array([10.0, 20.0, 30.0]), "ZXY")), [10, 20, 30])
    with pytest.raises(ValueError, match="three distinct"):
        matrix_to_euler(np.eye(3), "ZXZ")


def test_swing_rotation_takes_a_to_b_minimally():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(200, 3)), rng.normal(size=(200, 3))
    rot = swing_rotation(a, b)
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    np.testing.assert_allclose(np.einsum("nab,nb->na", rot, unit(a)), unit(b), atol=1e-12)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, 1, 2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-12)
    # the axis is perpendicular to both: a x b is left unchanged
    axis = np.cross(a, b)
    np.testing.assert_allclose(np.einsum("nab,nb->na", rot, axis), axis, atol=1e-10)
    # opposite directions: a half turn; zero target: identity
    flip = swing_rotation(np.array([0.0, 1.0, 0.0]), np.array([0.0, -2.0, 0.0]))
    np.testing.assert_allclose(flip @ [0, 1, 0], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(swing_rotation(np.array([1.0, 0, 0]), np.zeros(3)), np.eye(3))


def test_body_frame_is_a_rotation_ignoring_lengths():
    frame = body_frame(np.array([2.0, 0.1, 0]), np.array([-1.0, 0.1, 0]), np.array([0.1, 1.0, 0.2]))
    np.testing.assert_allclose(frame.T @ frame, np.eye(3), atol=1e-12)
    assert np.linalg.det(frame) == pytest.approx(1.0)
    rest = body_frame(np.array([1.0, 0, 0]), np.array([-1.0, 0, 0]), np.array([0.0, 1.0, 0]))
    np.testing.assert_allclose(rest, np.eye(3))  # x left, y up, z forward


# ------------------------------------------------------------------------------------------------ files


def test_constant_bone_lengths_round_trip_to_the_input_positions(tmp_path):
    joints = posed_joints(40, seed=3)
    path = write_bvh(_result(joints), tmp_path / "motion.bvh")
    got, bvh = _read_back(path)
    assert bvh.num_frames == 40 and bvh.frame_time == pytest.approx(1 / 25) and bvh.fps == 25.0
    assert bvh.joints[0].name == "pelvis" and bvh.joints[0].channels[:3] == ("Xposition", "Yposition", "Zposition")
    assert all(j.channels == ("Zrotation", "Xrotation", "Yrotation") for j in bvh.joints[1:] if not j.is_end_site)
    assert [j.name for j in bvh.joints if not j.is_end_site] == list(NAMES)
    assert sum(j.is_end_site for j in bvh.joints) == 5  # wrists, ankles, head
    expected = camera_to_y_up(joints - joints[:, :1]) * 100  # Y up, centimetres
    np.testing.assert_allclose(got - got[:, :1], expected, atol=1e-2)  # 1e-4 m


def test_metres_option_and_rest_offsets_are_median_bone_lengths(tmp_path):
    joints = posed_joints(10, seed=4)
    got, bvh = _read_back(write_bvh(_result(joints), tmp_path / "m.bvh", units="m"))
    np.testing.assert_allclose(got - got[:, :1], camera_to_y_up(joints - joints[:, :1]), atol=1e-4)
    lengths = np.linalg.norm([REST[n] for n in NAMES[1:]], axis=-1)
    offsets = bvh.offsets[[bvh.index(n) for n in NAMES[1:]]]
    np.testing.assert_allclose(np.linalg.norm(offsets, axis=-1), lengths, atol=1e-6)


def test_varying_bone_lengths_keep_every_bone_direction(tmp_path):
    joints = posed_joints(60, seed=5, length_jitter=0.15)
    got, _ = _read_back(write_bvh(_result(joints), tmp_path / "motion.bvh"))
    cos = np.sum(_bone_directions(got) * _bone_directions(camera_to_y_up(joints)), axis=-1)
    assert np.arccos(np.clip(cos, -1, 1)).max() < 1e-3


def test_rest_pose_is_upright_facing_forward(tmp_path):
    motion = joints_to_bvh_motion(posed_joints(5, seed=6), fps=30)
    off = dict(zip(NAMES, motion.offsets, strict=True))
    assert off["left_hip"][0] > 0 > off["right_hip"][0]  # left is +X
    assert off["spine"][1] > 0 and off["left_knee"][1] < 0 and off["left_elbow"][0] > 0 > off["right_elbow"][0]
    assert off["neck"][1] > 0 and off["left_shoulder"][0] > 0 > off["right_shoulder"][0]
    assert motion.end_sites[NAMES.index("left_ankle")][2] > 0  # feet point forward (+Z)


def test_missing_frames_hold_the_previous_valid_frame(tmp_path):
    joints = posed_joints(8, seed=7)
    joints[[0, 3, 4]] = np.nan
    got, _ = _read_back(write_bvh(_result(joints), tmp_path / "motion.bvh"))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[0], got[1], atol=1e-9)
    np.testing.assert_allclose(got[3], got[2], atol=1e-9)
    np.testing.assert_allclose(got[4], got[2], atol=1e-9)


def test_root_is_grounded_without_a_trajectory_and_follows_one_when_given(tmp_path):
    joints = posed_joints(12, seed=8)
    got, _ = _read_back(write_bvh(_result(joints), tmp_path / "a.bvh"))
    np.testing.assert_allclose(got[..., 1].min(axis=1), 0.0, atol=1e-2)  # lowest joint on the floor, each frame
    np.testing.assert_allclose(got[:, 0, [0, 2]], 0.0)
    root = np.stack([np.linspace(0, 1, 12), np.full(12, 0.2), np.full(12, 4.0)], axis=-1)  # camera axes, metres
    got, _ = _read_back(write_bvh(_result(joints, root=root), tmp_path / "b.bvh"))
    np.testing.assert_allclose(got[:, 0], camera_to_y_up(root) * 100, atol=1e-4)


def test_bad_inputs_are_refused_and_leave_no_file(tmp_path):
    with pytest.raises(ValueError, match="no frame"):
        write_bvh(_result(np.full((3, 17, 3), np.nan)), tmp_path / "x.bvh")
    with pytest.raises(ValueError, match=r"\(T, 17, 3\)"):
        joints_to_bvh_motion(np.zeros((3, 16, 3)), fps=30)
    with pytest.raises(ValueError, match="units"):
        joints_to_bvh_motion(posed_joints(2), fps=30, units="mm")
    assert list(tmp_path.iterdir()) == []


def test_real_mocap_round_trip(tmp_path, shared_dir):
    """Mocap mapped to H36M-17: bone lengths vary and the hips/shoulders move against the body frames."""
    from mocli.data.rigs import bvh_to_h36m

    sample = shared_dir / "data" / "mocap" / "sample" / "dataset-1_guide_sad_001.bvh"
    assert sample.is_file(), f"{sample} (a real mocap sample) is absent"
    joints = camera_to_y_up(np.asarray(bvh_to_h36m(read_bvh(sample)).joints, np.float64))  # metres, camera axes
    joints -= joints[:, :1]
    got, _ = _read_back(write_bvh(_result(joints), tmp_path / "motion.bvh", units="m"))
    expected = camera_to_y_up(joints)
    assert np.linalg.norm(got - got[:, :1] - expected, axis=-1).mean() < 0.005  # metres
    cos = np.sum(_bone_directions(got) * _bone_directions(expected), axis=-1)
    single_child = [c - 1 for c in range(1, 17) if PARENTS.count(PARENTS[c]) == 1]  # bones of one-child joints
    assert np.arccos(np.clip(cos[:, single_child], -1, 1)).max() < 1e-3


def test_a_walk_solved_from_2d_moves_the_bvh_root(tmp_path):
    """2D of a body walking towards the camera -> trajectory (mocli.trajectory) -> BVH -> root read back."""
    from mocli.trajectory import estimate_trajectory, make_camera, project

    joints = posed_joints(30, seed=3) * 0.5  # the posed body, small rotations only matter for the 2D
    joints -= joints[:, :1]
    root = np.linspace([-1.0, 0.4, 6.0], [0.5, 0.4, 3.0], 30)
    cam = make_camera((1280, 720))
    uv = project(joints + root[:, None], cam)
    kp = np.concatenate([uv, np.full((30, 17, 1), 0.9)], -1)
    solved = estimate_trajectory(kp, joints, cam, fps=25.0)
    np.testing.assert_allclose(solved, root, atol=0.01)
    got, _ = _read_back(write_bvh(_result(joints, root=solved), tmp_path / "walk.bvh"))
    np.testing.assert_allclose(got[:, 0], camera_to_y_up(solved) * 100, atol=1e-3)  # centimetres, Y up
    assert got[-1, 0, 2] - got[0, 0, 2] == pytest.approx(300.0, abs=2.0)  # 3 m nearer the camera: +Z in BVH
