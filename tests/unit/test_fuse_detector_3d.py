"""The lifted joints averaged with a detector's own 3D pose (``mocli.lift.fuse_detector_3d``), and the weight
that grows with the lifter's flip spread (``--detector-3d auto``: ``detector_3d_weights``), by hand."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from mocli.data.transforms import crop_scale
from mocli.lift import (
    CANONICAL_BODY_SIZE_M,
    DETECTOR_3D_SMOOTH_S,
    DETECTOR_3D_SPREAD_M,
    LiftOptions,
    body_size,
    detector_3d_weights,
    fuse_detector_3d,
    lift_keypoints,
    lift_sequence,
    mixes_detector_3d,
    parse_detector_3d,
)


def _poses(T: int, seed: int) -> np.ndarray:
    """(T,17,3) root-relative poses, metres: random joints about a metre across, pelvis at 0."""
    rng = np.random.default_rng(seed)
    p = rng.normal(0.0, 0.3, size=(T, 17, 3))
    return p - p[:, :1]


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """(3,3) rotation about ``axis`` by ``angle`` radians (Rodrigues), applied to row vectors as x @ R.T."""
    k = axis / np.linalg.norm(axis)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * K + (1 - np.cos(angle)) * K @ K


def _kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(17,3) ``src`` moved onto ``dst`` by the least-squares rotation, scale and translation (written out here, not
    mocli's): centre both, R from the SVD of the cross-covariance with det +1, s = tr(S D) / |src_c|^2."""
    a, b = src - src.mean(0), dst - dst.mean(0)
    u, s, vt = np.linalg.svd(a.T @ b)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    scale = np.trace(np.diag(s) @ d) / (a**2).sum()
    return scale * a @ (u @ d @ vt) + dst.mean(0)


def test_weight_zero_keeps_the_lifted_joints():
    lifted, det = _poses(6, 0), _poses(6, 1)
    np.testing.assert_array_equal(fuse_detector_3d(lifted, det, 0.0), lifted.astype(np.float32))


def test_a_moved_scaled_copy_of_the_lifted_pose_changes_nothing_at_any_weight():
    """The detector's frame, scale and position are not the lifter's: a copy rotated by 70 degrees, scaled by 1.3
    and shifted by a metre is the same pose, so any mix of the two is the lifted pose itself."""
    lifted = _poses(5, 2)
    R = _rotation(np.array([0.3, 1.0, -0.2]), np.radians(70))
    det = 1.3 * lifted @ R.T + np.array([1.0, -0.5, 2.0])
    for w in (0.3, 0.5, 1.0):
        np.testing.assert_allclose(fuse_detector_3d(lifted, det, w), lifted, atol=1e-5)


def test_the_mix_is_the_weighted_mean_with_the_aligned_detector_pose_made_root_relative():
    lifted, det = _poses(4, 3), 2.0 * _poses(4, 4) + 5.0
    w = 0.4
    expected = np.stack([(1 - w) * a + w * _kabsch(b, a) for a, b in zip(lifted, det, strict=True)])
    expected -= expected[:, :1]
    out = fuse_detector_3d(lifted, det, w)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert out.dtype == np.float32 and np.all(out[:, 0] == 0)


def test_frames_where_either_pose_is_missing_stay_the_lifters():
    lifted, det = _poses(6, 5), _poses(6, 6)
    det[1] = np.nan  # the detector lost the person
    det[3, 7] = np.nan  # one joint missing: the frame is not used
    lifted[4] = np.nan  # no lifted pose
    out = fuse_detector_3d(lifted, det, 0.5)
    np.testing.assert_array_equal(out[[1, 3]], lifted[[1, 3]].astype(np.float32))
    assert np.isnan(out[4]).all()
    assert not np.allclose(out[[0, 2, 5]], lifted[[0, 2, 5]], atol=1e-3)


@pytest.mark.parametrize("weight", [-0.1, 1.5])
def test_a_weight_outside_zero_to_one_is_refused(weight):
    with pytest.raises(ValueError, match="0-1"):
        fuse_detector_3d(_poses(2, 0), _poses(2, 1), weight)


def test_smoothing_removes_a_one_frame_jump_of_the_detector_and_keeps_a_steady_pose():
    """A still person, the detector's pose steady but for one frame thrown 40 cm off: with smoothing (a 5-frame
    median, then a local linear Gaussian fit) every frame of the mix is the steady pose aligned; without, the jump
    frame is not."""
    lifted = np.repeat(_poses(1, 9), 12, axis=0)
    steady = 0.9 * _poses(1, 10)[0] @ _rotation(np.array([0.0, 1.0, 0.0]), np.radians(30)).T
    det = np.repeat(steady[None], 12, axis=0)
    det[6, 13:] += np.array([0.4, 0.0, 0.0])  # the left arm, one frame
    expected = _kabsch(steady, lifted[0])
    expected -= expected[:1]
    smoothed = fuse_detector_3d(lifted, det, 1.0, smooth_frames=2.0)
    np.testing.assert_allclose(smoothed, np.repeat(expected[None], 12, axis=0), atol=1e-5)
    raw = fuse_detector_3d(lifted, det, 1.0)
    np.testing.assert_allclose(np.delete(raw, 6, axis=0), np.repeat(expected[None], 11, axis=0), atol=1e-5)
    assert np.abs(raw[6] - expected).max() > 0.1


@pytest.mark.parametrize("fps", [None, 60.0])
def test_lift_keypoints_mixes_the_detector_pose_in_before_fixing_bones(fps):
    """Through lift_keypoints: the mix of fuse_detector_3d with the lifted joints (bones free), smoothed over
    DETECTOR_3D_SMOOTH_S seconds at the input's rate (30 frames/s when unknown); weight 0 ignores the pose."""

    def flat(x: torch.Tensor) -> torch.Tensor:  # 2D in, zero depth out
        return torch.cat([x[..., :2], torch.zeros_like(x[..., :1])], dim=-1)

    rng = np.random.default_rng(7)
    kp = np.concatenate([rng.uniform(100, 500, size=(30, 17, 2)), np.full((30, 17, 1), 0.9)], -1)
    opts = LiftOptions(clip_len=27, stride=18, bones="free", flip=False, upright=False, max_fps=0, detector_3d=0.0)
    lifted = lift_keypoints(flat, kp, opts, fps=fps)
    other = _poses(30, 8)  # the "detector" pose: another body shape, in its own frame
    det = 0.8 * other @ _rotation(np.array([1.0, 0.0, 0.0]), np.radians(40)).T
    with_det = LiftOptions(clip_len=27, stride=18, bones="free", flip=False, upright=False, max_fps=0, detector_3d=0.3)
    out = lift_keypoints(flat, kp, with_det, fps=fps, detector_3d=det)
    sigma = DETECTOR_3D_SMOOTH_S * (fps or 30.0)
    np.testing.assert_array_equal(out, fuse_detector_3d(lifted, det, 0.3, smooth_frames=sigma))
    assert not np.allclose(out, fuse_detector_3d(lifted, det, 0.3), atol=1e-3)
    np.testing.assert_array_equal(lift_keypoints(flat, kp, opts, fps=fps, detector_3d=det), lifted)


def test_one_weight_per_frame_mixes_each_frame_with_its_own():
    lifted, det = _poses(3, 11), 1.5 * _poses(3, 12)
    out = fuse_detector_3d(lifted, det, np.array([0.0, 0.5, 1.0]))
    for t, w in enumerate((0.0, 0.5, 1.0)):
        np.testing.assert_allclose(out[t], fuse_detector_3d(lifted[t : t + 1], det[t : t + 1], w)[0], atol=1e-6)
    with pytest.raises(ValueError, match="0-1"):
        fuse_detector_3d(lifted, det, np.array([0.2, 1.1, 0.3]))


def test_auto_weights_are_the_running_mean_spread_squared_over_itself_plus_half_weight_spread_squared():
    """s = 6 cm: a spread of 6 cm gives 0.5, 12 cm 0.8 (0.0144 / 0.018), 3 cm 0.2 (0.0009 / 0.0045); the running
    mean skips frames without a person (NaN) and is shorter at the ends."""
    assert DETECTOR_3D_SPREAD_M == 0.06
    spread = np.array([0.06, 0.06, np.nan, 0.0, 0.12])
    np.testing.assert_allclose(detector_3d_weights(spread, 1), [0.5, 0.5, 0.0, 0.0, 0.8])
    # window of 3: (0.06, 0.06) (0.06, 0.06) (0.06, 0.0) (0.0, 0.12) (0.0, 0.12)
    np.testing.assert_allclose(detector_3d_weights(spread, 3), [0.5, 0.5, 0.2, 0.5, 0.5])
    np.testing.assert_array_equal(detector_3d_weights(np.full(4, np.nan), 3), np.zeros(4))
    np.testing.assert_allclose(detector_3d_weights(spread, 1, scale_m=0.12), [0.2, 0.2, 0.0, 0.0, 0.5])
    for bad in (0.0, -0.06, np.nan):
        with pytest.raises(ValueError, match="half-weight spread"):
            detector_3d_weights(spread, 1, scale_m=bad)


@pytest.mark.parametrize("value, parsed", [("auto", "auto"), (" AUTO", "auto"), ("0.3", 0.3), (0.0, 0.0), (1, 1.0)])
def test_detector_3d_is_auto_or_a_weight_from_zero_to_one(value, parsed):
    assert parse_detector_3d(value) == parsed
    assert mixes_detector_3d(value) == (parsed != 0.0)


@pytest.mark.parametrize("value", ["1.5", -0.1, "half", float("nan"), None])
def test_any_other_detector_3d_is_refused_in_one_line(value):
    with pytest.raises(ValueError, match="--detector-3d .*: give 'auto' or the detector's weight from 0 to 1"):
        parse_detector_3d(value)


def _static_keypoints(T: int, seed: int) -> np.ndarray:
    """(T,17,3) one pose held still, pixels + confidence 0.9."""
    rng = np.random.default_rng(seed)
    pose = np.concatenate([rng.uniform(100, 500, size=(17, 2)), np.full((17, 1), 0.9)], -1)
    return np.repeat(pose[None], T, axis=0)


def _auto(flip: bool) -> LiftOptions:
    return LiftOptions(clip_len=27, stride=18, bones="free", flip=flip, upright=False, max_fps=0, detector_3d="auto")


def test_auto_gives_a_lifter_that_agrees_with_its_mirror_image_no_detector_weight():
    """A lifter that mirrors exactly (2D in, zero depth out) has no flip spread: the weight is 0 everywhere and the
    result is the lifter's alone, with or without flip TTA."""

    def flat(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[..., :2], torch.zeros_like(x[..., :1])], dim=-1)

    kp, det = _static_keypoints(30, 13), _poses(30, 14)
    alone = lift_keypoints(flat, kp, LiftOptions(clip_len=27, stride=18, bones="free", upright=False, max_fps=0))
    for flip in (True, False):
        np.testing.assert_allclose(lift_keypoints(flat, kp, _auto(flip), fps=30.0, detector_3d=det), alone, atol=1e-6)


@pytest.mark.parametrize("flip, scale", [(True, DETECTOR_3D_SPREAD_M), (False, DETECTOR_3D_SPREAD_M), (True, 0.11)])
def test_auto_weight_from_the_flip_spread_of_a_lifter_that_does_not_mirror(flip, scale):
    """A lifter with depth z = c x (normalised x): its mirror image's lift, mirrored back, has z = -c x, so the
    spread of each joint is 2 c |x_j - x_root| in normalised units, times the window's metres scale (canonical body
    size over the body size of the lifted pose: the flip mean, flat, or without flip TTA the one pass, z = c x). A
    still pose gives one weight for every frame: u^2 / (u^2 + s^2) of the mean spread over joints (s: the options'
    detector_3d_spread_m), and the result is fuse_detector_3d with it."""
    c = 0.3

    def tilted(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[..., :2], c * x[..., :1]], dim=-1)

    kp = _static_keypoints(30, 15)
    det = 0.9 * _poses(30, 16) @ _rotation(np.array([0.0, 1.0, 0.0]), np.radians(25)).T
    norm = crop_scale(kp[:1])[0][0]  # (17,3) the still pose normalised
    pose = np.concatenate([norm[:, :2], np.zeros((17, 1)) if flip else c * norm[:, :1]], -1)
    metres = CANONICAL_BODY_SIZE_M / body_size(pose - pose[:1])
    u = np.mean(2 * c * np.abs(norm[:, 0] - norm[0, 0])) * metres
    weight = u**2 / (u**2 + scale**2)
    assert 0.05 < weight < 0.95  # a real mix, not one side alone
    auto = replace(_auto(flip), detector_3d_spread_m=scale)
    plain = LiftOptions(clip_len=27, stride=18, bones="free", flip=flip, upright=False, max_fps=0, detector_3d=0.0)
    lifted = lift_keypoints(tilted, kp, plain)
    expected = fuse_detector_3d(lifted, det, weight, smooth_frames=DETECTOR_3D_SMOOTH_S * 30.0)
    out = lift_keypoints(tilted, kp, auto, fps=30.0, detector_3d=det)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert not np.allclose(out, lifted, atol=1e-3)
    det[[3, 4]] = np.nan  # the detector lost the person: not mixed there, the weight is NaN
    used = lift_sequence(tilted, kp, auto, fps=30.0, detector_3d=det).detector_3d_weight
    assert used.shape == (30,) and used.dtype == np.float32 and np.isnan(used[[3, 4]]).all()
    np.testing.assert_allclose(np.delete(used, [3, 4]), weight, rtol=1e-5)


def test_lift_sequence_reports_a_fixed_weight_where_mixed_and_nan_without_a_detector_pose():
    def flat(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[..., :2], torch.zeros_like(x[..., :1])], dim=-1)

    kp, det = _static_keypoints(30, 17), _poses(30, 18)
    det[0] = np.nan
    opts = LiftOptions(clip_len=27, stride=18, bones="free", upright=False, max_fps=0, detector_3d=0.3)
    lifted = lift_sequence(flat, kp, opts, detector_3d=det)
    assert np.isnan(lifted.detector_3d_weight[0]) and (lifted.detector_3d_weight[1:] == np.float32(0.3)).all()
    np.testing.assert_array_equal(lifted.joints, lift_keypoints(flat, kp, opts, detector_3d=det))
    assert np.isnan(lift_sequence(flat, kp, opts).detector_3d_weight).all()
