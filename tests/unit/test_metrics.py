"""Known-answer tests for mocli.metrics (numpy and torch paths)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mocli.metrics import (
    acceleration_error,
    mpjpe,
    mpve,
    n_mpjpe,
    pa_mpjpe,
    procrustes_align,
    skeleton_plausibility,
    velocity_error,
)


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _rotation(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """Rodrigues: 3x3 rotation about ``axis`` by ``angle_rad`` (column-vector convention)."""
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + math.sin(angle_rad) * kx + (1.0 - math.cos(angle_rad)) * (kx @ kx)


def _random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniformly random rotation matrices (n, 3, 3) from unit quaternions."""
    q = rng.normal(size=(n, 4))
    w, x, y, z = (q / np.linalg.norm(q, axis=1, keepdims=True)).T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        axis=1,
    )


# ----------------------------------------------------------------------------------------------------------------------
# MPJPE / MPVE
# ----------------------------------------------------------------------------------------------------------------------


def test_mpjpe_identical_is_zero() -> None:
    gt = _rng().normal(size=(8, 17, 3))
    assert mpjpe(gt, gt.copy()) == 0.0


def test_mpjpe_translation_345_is_exactly_5() -> None:
    gt = _rng(1).integers(-500, 500, size=(6, 17, 3)).astype(np.float64)
    pred = gt + np.array([3.0, 4.0, 0.0])
    out = mpjpe(pred, gt)
    assert isinstance(out, float)
    assert out == 5.0
    assert mpjpe(pred.astype(np.float32), gt.astype(np.float32)) == 5.0


def test_mpjpe_hand_computed_mixed_errors() -> None:
    gt = np.zeros((2, 3))
    pred = np.array([[1.0, 2.0, 2.0], [0.0, 0.0, 0.0]])  # errors 3 and 0
    assert mpjpe(pred, gt) == pytest.approx(1.5)


def test_mpjpe_leading_dims() -> None:
    rng = _rng(2)
    pred, gt = rng.normal(size=(2, 3, 5, 17, 3)), rng.normal(size=(2, 3, 5, 17, 3))
    per_seq = [mpjpe(pred[b, c], gt[b, c]) for b in range(2) for c in range(3)]  # (T, J, 3) inputs
    assert mpjpe(pred, gt) == pytest.approx(np.mean(per_seq), abs=1e-12)  # (B, C, T, J, 3)
    assert mpjpe(pred[0], gt[0]) == pytest.approx(np.mean(per_seq[:3]), abs=1e-12)  # (B, T, J, 3)
    single = np.linalg.norm(pred[0, 0, 0] - gt[0, 0, 0], axis=-1).mean()
    assert mpjpe(pred[0, 0, 0], gt[0, 0, 0]) == pytest.approx(single, abs=1e-12)  # (J, 3)


def test_mpjpe_torch_matches_numpy() -> None:
    rng = _rng(3)
    pred, gt = rng.normal(size=(4, 17, 3)), rng.normal(size=(4, 17, 3))
    ref = mpjpe(pred, gt)
    out = mpjpe(torch.from_numpy(pred), torch.from_numpy(gt))
    assert isinstance(out, torch.Tensor) and out.ndim == 0 and out.dtype == torch.float64
    assert out.item() == pytest.approx(ref, abs=1e-12)
    out32 = mpjpe(torch.from_numpy(pred).float(), torch.from_numpy(gt).float())
    assert out32.dtype == torch.float32
    assert out32.item() == pytest.approx(ref, rel=1e-5)
    # A numpy argument next to a tensor takes the tensor's dtype and device.
    mixed = mpjpe(torch.from_numpy(pred).float(), gt)
    assert isinstance(mixed, torch.Tensor) and mixed.dtype == torch.float32
    assert mixed.item() == pytest.approx(ref, rel=1e-5)


def test_mpve_equals_mpjpe_on_vertices() -> None:
    rng = _rng(4)
    pred, gt = rng.normal(size=(3, 6890, 3)), rng.normal(size=(3, 6890, 3))
    assert mpve(pred, gt) == mpjpe(pred, gt)
    assert mpve(gt + np.array([0.0, 3.0, 4.0]), gt) == pytest.approx(5.0, abs=1e-12)


@pytest.mark.parametrize("fn", [mpjpe, mpve, pa_mpjpe, n_mpjpe, velocity_error, acceleration_error, procrustes_align])
def test_shape_mismatch_raises_with_shapes(fn) -> None:
    with pytest.raises(ValueError, match=r"\(4, 17, 3\).*\(4, 16, 3\)"):
        fn(np.zeros((4, 17, 3)), np.zeros((4, 16, 3)))
    with pytest.raises(ValueError, match=r"\(4, 17, 3\).*\(5, 17, 3\)"):
        fn(torch.zeros(4, 17, 3), torch.zeros(5, 17, 3))


# ----------------------------------------------------------------------------------------------------------------------
# PA-MPJPE / Procrustes
# ----------------------------------------------------------------------------------------------------------------------


def test_pa_mpjpe_removes_known_similarity() -> None:
    gt = _rng(5).normal(size=(17, 3)) * 300.0
    rot = _rotation(np.array([1.0, 2.0, 3.0]), math.radians(30.0))
    pred = 2.5 * gt @ rot.T + np.array([10.0, -20.0, 30.0])
    assert mpjpe(pred, gt) > 100.0
    assert pa_mpjpe(pred, gt) < 1e-9
    aligned = procrustes_align(pred, gt)
    assert isinstance(aligned, np.ndarray) and aligned.shape == gt.shape and aligned.dtype == np.float64
    np.testing.assert_allclose(aligned, gt, atol=1e-9)
    # float32 numpy in: aligned in float64 internally, returned as float32.
    aligned32 = procrustes_align(pred.astype(np.float32), gt.astype(np.float32))
    assert aligned32.dtype == np.float32
    np.testing.assert_allclose(aligned32, gt, atol=1e-3)


def test_pa_mpjpe_inside_bf16_autocast_with_bf16_poses() -> None:
    """A validation pass under CPU bf16 autocast hands bf16 poses to PA-MPJPE: the alignment runs in float32 (an SVD
    has no bf16 kernel; this raised NotImplementedError) and removes a known similarity up to bf16 rounding."""
    gt = _rng(6).normal(size=(4, 17, 3)) * 0.3
    rot = _rotation(np.array([0.0, 1.0, 0.0]), math.radians(40.0))
    pred = 1.7 * gt @ rot.T + np.array([0.1, -0.2, 0.3])
    p, g = torch.tensor(pred).bfloat16(), torch.tensor(gt).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        err = pa_mpjpe(p, g)
        aligned = procrustes_align(p, g)
    assert aligned.dtype == torch.float32
    assert float(err) < 5e-3  # metres: bf16 keeps about 3 significant digits of poses of ~0.5 m
    np.testing.assert_allclose(aligned.numpy(), g.float().numpy(), atol=5e-3)


def test_pa_mpjpe_per_pose_transforms_batched() -> None:
    """Each pose gets its own rotation/scale/translation; all must be undone independently."""
    rng = _rng(6)
    gt = rng.normal(size=(3, 4, 17, 3))
    rots = _random_rotations(12, rng).reshape(3, 4, 3, 3)
    scales = rng.uniform(0.2, 5.0, size=(3, 4, 1, 1))
    shifts = rng.normal(size=(3, 4, 1, 3)) * 10.0
    pred = scales * np.einsum("btjc,btdc->btjd", gt, rots) + shifts
    assert pa_mpjpe(pred, gt) < 1e-9
    np.testing.assert_allclose(procrustes_align(pred, gt), gt, atol=1e-9)


def test_procrustes_batched_matches_per_frame_loop() -> None:
    rng = _rng(7)
    pred, gt = rng.normal(size=(2, 5, 17, 3)), rng.normal(size=(2, 5, 17, 3))
    batched = procrustes_align(pred, gt)
    looped = np.stack([np.stack([procrustes_align(pred[b, t], gt[b, t]) for t in range(5)]) for b in range(2)])
    np.testing.assert_allclose(batched, looped, atol=1e-12)
    per_frame = [np.linalg.norm(looped[b, t] - gt[b, t], axis=-1).mean() for b in range(2) for t in range(5)]
    assert pa_mpjpe(pred, gt) == pytest.approx(np.mean(per_frame), abs=1e-12)


def _mirrored_cross_case() -> tuple[np.ndarray, float]:
    """Six joints at (+-3,0,0), (0,+-2,0), (0,0,+-1) and their mirror image in x.

    Hand derivation (row vectors, centred): X^T X = diag(18, 8, 2), Y = X M with M = diag(-1, 1, 1), so
    H = X^T Y = diag(-18, 8, 2) with singular values (18, 8, 2). The best *proper* rotation flips the axis of the
    smallest singular value: R = diag(-1, 1, -1), and s = (18 + 8 - 2) / (18 + 8 + 2) = 6/7. The residual per joint is
    X diag(1 - s, s - 1, -1 - s): errors 3/7 (x joints), 2/7 (y joints), 13/7 (z joints), mean = 36/42 = 6/7.
    """
    x = np.array([[3, 0, 0], [-3, 0, 0], [0, 2, 0], [0, -2, 0], [0, 0, 1], [0, 0, -1]], dtype=np.float64)
    return x, 6.0 / 7.0


def test_pa_mpjpe_reflection_not_allowed_hand_computed() -> None:
    x, expected = _mirrored_cross_case()
    mirrored = x * np.array([-1.0, 1.0, 1.0])
    assert pa_mpjpe(mirrored, x) == pytest.approx(expected, abs=1e-12)
    # PA-MPJPE is invariant to a similarity transform of pred and a rigid motion of gt.
    rng = _rng(8)
    r1, r2 = _random_rotations(2, rng)
    gt = x @ r1.T + rng.normal(size=3)
    pred = 0.37 * mirrored @ r2.T + rng.normal(size=3)
    assert pa_mpjpe(pred, gt) == pytest.approx(expected, abs=1e-9)
    # Same in torch.
    assert pa_mpjpe(torch.from_numpy(pred), torch.from_numpy(gt)).item() == pytest.approx(expected, abs=1e-9)


def test_pa_mpjpe_reflection_matches_brute_force() -> None:
    """A mirrored non-symmetric pose: the SVD solution equals the best of many sampled proper rotations."""
    rng = _rng(9)
    gt = rng.normal(size=(6, 3)) * np.array([3.0, 2.0, 1.0])
    pred = 1.7 * gt * np.array([-1.0, 1.0, 1.0]) + np.array([5.0, 0.0, 0.0])
    value = pa_mpjpe(pred, gt)
    assert value > 0.05

    xc, yc = pred - pred.mean(0), gt - gt.mean(0)
    aligned = procrustes_align(pred, gt)
    svd_cost = np.sum((aligned - gt) ** 2)

    def best_cost(rots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xr = np.einsum("jc,ndc->njd", xc, rots)  # pred rotated by each candidate
        s = np.clip(np.einsum("njd,jd->n", xr, yc) / np.sum(xc**2), 0.0, None)  # s >= 0: -I would be a reflection
        res = s[:, None, None] * xr - yc
        return np.sum(res**2, axis=(1, 2)), np.linalg.norm(res, axis=-1).mean(-1)

    costs, errs = best_cost(_random_rotations(200_000, rng))
    assert costs.min() >= svd_cost - 1e-9  # no proper rotation beats the SVD solution
    assert costs.min() == pytest.approx(svd_cost, rel=0.05)  # and dense sampling gets close to it
    assert errs[np.argmin(costs)] == pytest.approx(value, rel=0.05)
    # If reflections were allowed (the rotation could be a mirror), the error would vanish.
    mirror = np.diag([-1.0, 1.0, 1.0])[None]
    assert best_cost(mirror)[1][0] == pytest.approx(0.0, abs=1e-12)


def test_pa_mpjpe_three_joint_mirror_is_a_rotation() -> None:
    """Three joints are coplanar; their mirror image is reachable by a proper rotation (flip the plane), so 0."""
    gt = np.array([[0.0, 0.0, 0.0], [1.0, 0.2, 0.3], [0.1, 2.0, -0.4]])
    pred = gt * np.array([-1.0, 1.0, 1.0])
    assert pa_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(procrustes_align(pred, gt), gt, atol=1e-9)


def test_pa_mpjpe_torch_matches_numpy_and_autograd() -> None:
    rng = _rng(10)
    pred, gt = rng.normal(size=(3, 17, 3)), rng.normal(size=(3, 17, 3))
    ref = pa_mpjpe(pred, gt)
    pred_t = torch.from_numpy(pred).requires_grad_(True)
    out = pa_mpjpe(pred_t, torch.from_numpy(gt))
    assert isinstance(out, torch.Tensor) and out.ndim == 0
    assert out.item() == pytest.approx(ref, abs=1e-12)
    out.backward()
    assert pred_t.grad is not None and torch.isfinite(pred_t.grad).all() and pred_t.grad.abs().sum() > 0
    aligned_t = procrustes_align(torch.from_numpy(pred).float(), torch.from_numpy(gt).float())
    assert isinstance(aligned_t, torch.Tensor) and aligned_t.dtype == torch.float32
    np.testing.assert_allclose(aligned_t.numpy(), procrustes_align(pred, gt), atol=1e-5)


def test_autograd_gradcheck() -> None:
    gen = torch.Generator().manual_seed(11)
    pred = torch.randn(4, 6, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    gt = torch.randn(4, 6, 3, dtype=torch.float64, generator=gen)
    assert torch.autograd.gradcheck(lambda p: mpjpe(p, gt), (pred,))
    assert torch.autograd.gradcheck(lambda p: pa_mpjpe(p, gt), (pred,))
    assert torch.autograd.gradcheck(lambda p: n_mpjpe(p, gt), (pred,))
    loss = mpjpe(pred, gt) + pa_mpjpe(pred, gt) + velocity_error(pred, gt) + acceleration_error(pred, gt)
    (grad,) = torch.autograd.grad(loss, pred)
    assert torch.isfinite(grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_metrics_stay_on_device() -> None:
    gen = torch.Generator().manual_seed(12)
    pred, gt = torch.randn(4, 8, 17, 3, generator=gen), torch.randn(4, 8, 17, 3, generator=gen)
    for fn in (mpjpe, pa_mpjpe, n_mpjpe, velocity_error, acceleration_error):
        out = fn(pred.cuda(), gt.cuda())
        assert out.device.type == "cuda"
        assert out.item() == pytest.approx(fn(pred.double().numpy(), gt.double().numpy()), rel=1e-4)


# ----------------------------------------------------------------------------------------------------------------------
# N-MPJPE
# ----------------------------------------------------------------------------------------------------------------------


def test_n_mpjpe_scaled_copy_is_zero() -> None:
    gt = _rng(13).normal(size=(5, 17, 3))
    assert n_mpjpe(2.0 * gt, gt) == pytest.approx(0.0, abs=1e-12)
    # The scale is optimised per pose.
    scales = np.array([0.5, 1.0, 2.0, 3.0, 7.0])[:, None, None]
    assert n_mpjpe(scales * gt, gt) == pytest.approx(0.0, abs=1e-12)
    assert mpjpe(scales * gt, gt) > 0.1


def test_n_mpjpe_hand_computed() -> None:
    # s = <pred, gt> / <pred, pred> = 2 / 4 = 0.5 -> scaled pred [[1,0,0],[0,0,0]] -> errors 0 and 1 -> mean 0.5.
    gt = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    pred = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert n_mpjpe(pred, gt) == pytest.approx(0.5, abs=1e-12)
    out = n_mpjpe(torch.from_numpy(pred), torch.from_numpy(gt))
    assert isinstance(out, torch.Tensor) and out.item() == pytest.approx(0.5, abs=1e-12)
    # No rotation or translation: a translated pose keeps an error.
    assert n_mpjpe(gt + 1.0, gt) > 0.1


# ----------------------------------------------------------------------------------------------------------------------
# Velocity and acceleration errors
# ----------------------------------------------------------------------------------------------------------------------


def test_velocity_error_known_answers() -> None:
    gt = _rng(14).normal(size=(10, 17, 3))
    assert velocity_error(gt + np.array([5.0, -2.0, 1.0]), gt) == pytest.approx(0.0, abs=1e-12)
    t = np.arange(10, dtype=np.float64)[:, None, None]
    v = np.array([1.0, 2.0, 2.0])  # |v| = 3 per frame
    assert velocity_error(gt + t * v, gt) == pytest.approx(3.0, abs=1e-12)
    out = velocity_error(torch.from_numpy(gt + t * v), torch.from_numpy(gt))
    assert isinstance(out, torch.Tensor) and out.item() == pytest.approx(3.0, abs=1e-12)


def test_velocity_error_time_axis() -> None:
    gt = _rng(15).normal(size=(2, 10, 17, 3))
    t = np.arange(10, dtype=np.float64)[None, :, None, None]
    pred = gt + t * np.array([0.0, 3.0, 4.0])
    assert velocity_error(pred, gt) == pytest.approx(5.0, abs=1e-12)  # default axis -3 is T in (B, T, J, 3)
    assert velocity_error(pred, gt, axis=1) == pytest.approx(5.0, abs=1e-12)
    # Differences along the batch axis instead: pred - gt is the same for both items, so the error is 0.
    assert velocity_error(pred, gt, axis=0) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="time axis"):
        velocity_error(pred, gt, axis=-2)
    with pytest.raises(ValueError, match="at least 2 frames"):
        velocity_error(gt[:, :1], gt[:, :1])


def test_acceleration_error_known_answers() -> None:
    gt = _rng(16).normal(size=(12, 17, 3))
    t = np.arange(12, dtype=np.float64)[:, None, None]
    assert acceleration_error(gt + t * np.array([1.0, 2.0, 2.0]), gt) == pytest.approx(0.0, abs=1e-12)
    a = np.array([2.0, 3.0, 6.0])  # |a| = 7 per frame^2
    pred = gt + 0.5 * a * t**2
    assert acceleration_error(pred, gt) == pytest.approx(7.0, abs=1e-9)
    out = acceleration_error(torch.from_numpy(pred), torch.from_numpy(gt))
    assert isinstance(out, torch.Tensor) and out.item() == pytest.approx(7.0, abs=1e-9)
    with pytest.raises(ValueError, match="at least 3 frames"):
        acceleration_error(gt[:2], gt[:2])


def test_acceleration_error_single_spike() -> None:
    # A unit jump of one joint in one frame shows up in three second differences with weights 1, -2, 1:
    # errors 1, 2, 1 among (T - 2) * J = 3 * 2 = 6 entries -> 4 / 6.
    gt = np.zeros((5, 2, 3))
    pred = gt.copy()
    pred[2, 0, 2] = 1.0
    assert acceleration_error(pred, gt) == pytest.approx(4.0 / 6.0, abs=1e-12)
    assert velocity_error(pred, gt) == pytest.approx(2.0 / 8.0, abs=1e-12)  # two unit jumps among 4 * 2 entries


def _symmetric_pose() -> np.ndarray:
    """(17,3) metres: left joints the mirror images (x -> -x) of the right ones, the trunk and head on x = 0."""
    pose = np.zeros((17, 3))
    pose[[7, 8, 9, 10], 1] = [0.25, 0.5, 0.6, 0.75]  # spine, thorax, nose, head up the y axis
    pose[1:4] = [[0.1, 0.0, 0.0], [0.1, -0.4, 0.05], [0.1, -0.8, 0.0]]  # right hip, knee, ankle
    pose[14:17] = [[0.2, 0.5, 0.0], [0.3, 0.25, 0.0], [0.3, 0.0, 0.1]]  # right shoulder, elbow, wrist
    pose[4:7] = pose[1:4] * [-1.0, 1.0, 1.0]
    pose[11:14] = pose[14:17] * [-1.0, 1.0, 1.0]
    return pose


def test_skeleton_plausibility_of_a_rigid_symmetric_skeleton_moving_as_a_whole_is_zero() -> None:
    t = np.arange(6, dtype=np.float64)[:, None, None]
    joints = _symmetric_pose() + t * np.array([0.1, 0.0, 0.02])  # the whole body walks; root-relative it is still
    assert skeleton_plausibility(joints) == pytest.approx(
        {"bone_length_cv_pct": 0.0, "asymmetry_pct": 0.0, "accel_mm_per_frame2": 0.0, "speed_mm_per_frame": 0.0},
        abs=1e-9,
    )
    # a left shin 1.5 times the right one in every frame: |0.6 - 0.4| / 0.5 = 40 % for the shin, 0 for the other
    # three limbs -> 10 %; bone lengths still constant
    pose = _symmetric_pose()
    pose[6] = pose[5] + 1.5 * (pose[3] - pose[2]) * [-1.0, 1.0, 1.0]
    r = skeleton_plausibility(np.repeat(pose[None], 4, axis=0))
    assert r["asymmetry_pct"] == pytest.approx(10.0) and r["bone_length_cv_pct"] == pytest.approx(0.0, abs=1e-9)


def test_skeleton_plausibility_of_a_forearm_that_changes_length_every_frame() -> None:
    pose = _symmetric_pose()
    forearm = pose[16] - pose[15]  # length L = 0.25 * sqrt(1.16) ~ 0.269 m
    length = np.linalg.norm(forearm)
    joints = np.repeat(pose[None], 8, axis=0)
    joints[1::2, 16] = pose[15] + 3.0 * forearm  # odd frames: the right forearm is 3 L long
    r = skeleton_plausibility(joints)
    # that bone's lengths L, 3L, ...: mean 2L, std L -> CV 0.5; the 15 other bones 0 -> 50 / 16 %
    assert r["bone_length_cv_pct"] == pytest.approx(50.0 / 16.0)
    # forearm asymmetry 0 on even frames and |L - 3L| / 2L = 1 on odd ones -> 0.5; one limb of four -> 12.5 %
    assert r["asymmetry_pct"] == pytest.approx(12.5)
    # one joint of 17 jumps 2L every frame, and its second difference is 2 * 2L: mm per frame (^2)
    assert r["speed_mm_per_frame"] == pytest.approx(2 * length * 1000 / 17)
    assert r["accel_mm_per_frame2"] == pytest.approx(4 * length * 1000 / 17)
    # two frames have a speed but no acceleration, one frame neither; lengths and symmetry need one frame
    two, one = skeleton_plausibility(joints[:2]), skeleton_plausibility(joints[:1])
    assert two["accel_mm_per_frame2"] is None and two["speed_mm_per_frame"] == pytest.approx(2 * length * 1000 / 17)
    assert one["speed_mm_per_frame"] is None and one["bone_length_cv_pct"] == 0.0 and one["asymmetry_pct"] == 0.0
    assert two["bone_length_cv_pct"] == pytest.approx(50.0 / 16.0) and two["asymmetry_pct"] == pytest.approx(12.5)
    with pytest.raises(ValueError, match="T>=1"):
        skeleton_plausibility(joints[:0])
