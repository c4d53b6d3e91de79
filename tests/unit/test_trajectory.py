"""Known-answer tests for mocli.trajectory: synthetic people projected by a known camera come back at their places."""

from __future__ import annotations

import numpy as np
import pytest

from mocli.trajectory import (
    DEFAULT_FOV_DEG,
    estimate_trajectory,
    make_camera,
    project,
    smooth_trajectory,
    solve_root,
)

# An H36M-17 body in metres, root-relative, camera axes (y down), facing the camera; 1.7 m tall.
BODY = np.array(
    [
        [0, 0, 0], [-0.12, 0.02, 0], [-0.13, 0.45, 0.03], [-0.13, 0.88, 0.0],  # pelvis, right leg
        [0.12, 0.02, 0], [0.13, 0.45, 0.03], [0.13, 0.88, 0.0],  # left leg
        [0, -0.24, 0.01], [0, -0.5, 0.0], [0, -0.6, -0.02], [0, -0.8, 0.0],  # spine, thorax, neck, head
        [0.18, -0.5, 0], [0.22, -0.24, 0.08], [0.24, -0.02, 0.15],  # left arm
        [-0.18, -0.5, 0], [-0.22, -0.24, 0.08], [-0.24, -0.02, 0.15],  # right arm
    ]
)  # fmt: skip
IMAGE = (1280, 720)


def walk(num_frames: int, start, end, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(T, 17, 3) root-relative poses (the body swaying its arms) and (T, 3) pelvis positions from start to end."""
    rng = np.random.default_rng(seed)
    phase = np.linspace(0, 4 * np.pi, num_frames)
    joints = np.repeat(BODY[None], num_frames, axis=0)
    joints[:, [12, 13], 2] += 0.1 * np.sin(phase)[:, None]
    joints[:, [15, 16], 2] -= 0.1 * np.sin(phase)[:, None]
    joints += rng.normal(0, 0.003, joints.shape) * (np.arange(17) > 0)[None, :, None]
    root = np.linspace(np.asarray(start, float), np.asarray(end, float), num_frames)
    return joints, root


def observe(joints, root, camera, noise_px: float = 0.0, seed: int = 1) -> np.ndarray:
    """(T, 17, 3) pixels + confidence 0.9 of the posed body seen by ``camera``, with Gaussian pixel noise."""
    uv = project(joints + root[:, None], camera)
    uv = uv + np.random.default_rng(seed).normal(0, noise_px, uv.shape)
    return np.concatenate([uv, np.full((*uv.shape[:2], 1), 0.9)], axis=-1)


def test_focal_and_fov_known_values():
    cam = make_camera(IMAGE)
    assert cam.source == "default" and cam.fov_deg == DEFAULT_FOV_DEG
    assert cam.focal_px == pytest.approx(640 / np.tan(np.radians(30)))  # 1108.5 px
    assert (cam.cx, cam.cy) == (640.0, 360.0)
    by_focal = make_camera(IMAGE, focal=640.0)
    assert by_focal.source == "focal" and by_focal.fov_deg == pytest.approx(90.0)
    assert make_camera(IMAGE, fov=90).focal_px == pytest.approx(640.0)
    for bad in ({"focal": 0.0}, {"fov": 180.0}, {"focal": 500.0, "fov": 60.0}):
        with pytest.raises(ValueError):
            make_camera(IMAGE, **bad)


def test_exact_projection_gives_the_trajectory_back():
    cam = make_camera(IMAGE, focal=1000.0)
    joints, root = walk(40, (-1.0, 0.3, 6.0), (1.2, 0.2, 3.5))
    got = solve_root(observe(joints, root, cam), joints, cam)
    np.testing.assert_allclose(got, root, atol=1e-6)
    linear = solve_root(observe(joints, root, cam), joints, cam, gauss_newton_steps=0)
    np.testing.assert_allclose(linear, root, atol=1e-6)  # exact data: the linear solution is already exact


def test_noisy_keypoints_give_the_trajectory_within_a_few_centimetres():
    cam = make_camera(IMAGE)  # 60 degrees
    joints, root = walk(90, (-1.5, 0.4, 7.0), (1.5, 0.3, 4.0))
    kp = observe(joints, root, cam, noise_px=2.0)
    got = estimate_trajectory(kp, joints, cam, fps=30.0)
    err = np.linalg.norm(got - root, axis=-1)
    assert err[5:-5].mean() < 0.03 and err.max() < 0.08  # metres
    raw = solve_root(kp, joints, cam)
    assert np.linalg.norm(raw - root, axis=-1).mean() > err[5:-5].mean()  # smoothing helps


def test_two_people_keep_their_order_and_distance():
    cam = make_camera(IMAGE, fov=70)
    near_j, near_root = walk(30, (-0.8, 0.3, 3.0), (-0.2, 0.3, 3.0), seed=2)
    far_j, far_root = walk(30, (1.0, 0.1, 8.0), (1.0, 0.1, 6.5), seed=3)
    near = estimate_trajectory(observe(near_j, near_root, cam, 1.0, seed=4), near_j, cam)
    far = estimate_trajectory(observe(far_j, far_root, cam, 1.0, seed=5), far_j, cam)
    assert (far[:, 2] > near[:, 2] + 2.5).all()
    dist, true = np.linalg.norm(far - near, axis=-1), np.linalg.norm(far_root - near_root, axis=-1)
    np.testing.assert_allclose(dist, true, atol=0.15)


def test_body_scale_scales_depth():
    cam = make_camera(IMAGE, focal=1000.0)
    joints, root = walk(5, (0.0, 0.2, 5.0), (0.0, 0.2, 5.0))
    kp = observe(joints, root, cam)
    np.testing.assert_allclose(solve_root(kp, joints, cam, body_scale=1.1), root * 1.1, atol=1e-6)


def test_missing_and_unconfident_frames_are_nan_and_inner_gaps_are_filled():
    cam = make_camera(IMAGE, focal=1000.0)
    joints, root = walk(12, (0.0, 0.2, 4.0), (1.1, 0.2, 4.0))
    kp = observe(joints, root, cam)
    kp[3, :, :2] = np.nan  # detector missed the person, but the lifter has a pose (interpolated frame)
    kp[5, :, 2] = 0.1  # every joint unconfident
    joints = joints.copy()
    joints[10:] = np.nan  # person gone
    raw = solve_root(kp, joints, cam)
    assert np.isnan(raw[[3, 5, 10, 11]]).all() and np.isfinite(raw[[0, 1, 2, 4, 6, 7, 8, 9]]).all()
    got = estimate_trajectory(kp, joints, cam, smooth_s=0)
    np.testing.assert_allclose(got[:10], root[:10], atol=1e-5)  # frames 3 and 5 interpolated (linear walk)
    assert np.isnan(got[10:]).all()


def test_smoothing_removes_an_outlier_and_keeps_a_line():
    line = np.stack([np.linspace(0, 1, 30), np.zeros(30), np.full(30, 4.0)], -1)
    spiky = line.copy()
    spiky[15] += [0.0, 0.0, 3.0]
    spiky[[0, 29]] = np.nan
    out = smooth_trajectory(spiky, sigma_frames=1.5)
    assert np.isnan(out[[0, 29]]).all()
    np.testing.assert_allclose(out[6:24], line[6:24], atol=1e-9)  # the median removes the spike; a line stays


@pytest.mark.parametrize("T", [1, 2, 6, 13, 14])
def test_smoothing_keeps_a_line_shorter_than_its_kernel(T):
    """A sequence shorter than the Gaussian window (13 frames at sigma 2) keeps its length, and a line stays a line
    (the local linear fit is exact on lines)."""
    line = np.stack([np.linspace(0, 0.1 * T, T), np.full(T, -0.5), np.full(T, 4.0)], -1)
    out = smooth_trajectory(line, sigma_frames=2.0)
    assert out.shape == (T, 3)
    np.testing.assert_allclose(out, line, atol=1e-9)
