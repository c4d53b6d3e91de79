"""Limb depths from bone lengths and image lengths (``mocli.limb_depth.limb_depths``), by hand; and that infer's
lift and the evaluations' windows apply the same function."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from mocli.evaluation.runner import RunOptions, predict_windows
from mocli.lift import LiftOptions, lift_keypoints
from mocli.limb_depth import LIMB_BONES, limb_depths, parse_limb_depth


def _legs(thigh_dz: float = 0.1) -> np.ndarray:
    """(3,17,3) all joints at the origin but the legs, both alike: hips 0.1 to the side in the image plane, shins
    0.4 straight down, thighs (0.5, 0, 0), (0.5, 0, 0) and (0.3, 0, ``thigh_dz``) in the three frames. The median
    thigh length is 0.5; in frame 2 the thigh is 0.3 long in the image, so it must reach 0.4 in depth (3-4-5)."""
    x = np.zeros((3, 17, 3))
    for hip, knee, ankle, side in ((1, 2, 3, -1.0), (4, 5, 6, 1.0)):
        x[:, hip] = [0.1 * side, 0.0, 0.0]
        x[:, knee] = x[:, hip] + [[0.5, 0, 0], [0.5, 0, 0], [0.3, 0, thigh_dz]]
        x[:, ankle] = x[:, knee] + [0.0, 0.4, 0.0]
    return x


def test_a_flat_thigh_gets_the_depth_its_length_calls_for_blended_by_its_angle():
    """Frame 2's thigh: |dz| = sqrt(0.5^2 - 0.3^2) = 0.4, cosine to the camera's axis 0.4 / 0.5 = 0.8, so the weight
    is 0.5 * 0.8 = 0.4 and the new dz is 0.4 * 0.4 + 0.6 * 0.1 = 0.22; the knee and the ankle below it move by
    0.12 in depth. Bones in the image plane (hips, shins, frames 0-1) have nothing to add; x and y never change."""
    x = _legs()
    out = limb_depths(x, 0.5)
    expected = x.copy()
    expected[2, [2, 3, 5, 6], 2] = 0.22
    np.testing.assert_allclose(out, expected, atol=1e-12)
    np.testing.assert_array_equal(out[..., :2], x[..., :2])


def test_the_sign_is_the_lifters_and_full_strength_reaches_the_length():
    """A thigh pointing away from the camera (dz -0.1) gets -0.22; at strength 1 the weight is the cosine 0.8:
    0.8 * 0.4 + 0.2 * 0.1 = 0.34."""
    np.testing.assert_allclose(limb_depths(_legs(-0.1), 0.5)[2, 2, 2], -0.22, atol=1e-12)
    np.testing.assert_allclose(limb_depths(_legs(0.1), 1.0)[2, 2, 2], 0.34, atol=1e-12)


def test_strength_zero_or_a_bone_longer_in_the_image_than_its_length_changes_nothing():
    x = _legs()
    np.testing.assert_array_equal(limb_depths(x, 0.0), x)
    x[1, 2, 0] = x[1, 1, 0] + 0.7  # frame 1's thigh 0.7 in the image, longer than the median 0.5: no depth from it
    x[1, 3, 0] = x[1, 2, 0]
    out = limb_depths(x, 0.5)
    np.testing.assert_array_equal(out[1], x[1])


def test_lengths_are_shared_left_and_right_and_counted_on_seen_frames_only():
    """The left thigh 0.7 long in frames 0-1 makes the pair's median (0.5 + 0.7) / 2 = 0.6; frame 2's right thigh
    then reaches sqrt(0.36 - 0.09) in depth. Counting frames 0 and 2 only ('seen') gives the medians of those."""
    x = _legs()
    x[:2, 5, 0] = x[:2, 4, 0] + 0.7
    x[:2, 6, 0] = x[:2, 5, 0]
    size = np.sqrt(0.6**2 - 0.3**2)
    weight = 0.5 * size / 0.6
    np.testing.assert_allclose(limb_depths(x, 0.5)[2, 2, 2], weight * size + (1 - weight) * 0.1, atol=1e-12)
    seen = np.array([True, False, True])
    right = np.median([0.5, np.hypot(0.3, 0.1)])  # frames 0 and 2 of the right thigh
    left = np.median([0.7, np.hypot(0.3, 0.1)])
    length = (right + left) / 2
    size = np.sqrt(length**2 - 0.3**2)
    weight = 0.5 * size / length
    np.testing.assert_allclose(limb_depths(x, 0.5, seen=seen)[2, 2, 2], weight * size + (1 - weight) * 0.1, atol=1e-12)


def test_the_spine_and_head_keep_their_depths():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.3, (20, 17, 3))
    out = limb_depths(x, 1.0)
    assert set(LIMB_BONES) == {1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16}
    np.testing.assert_array_equal(out[:, [0, 7, 8, 9, 10]], x[:, [0, 7, 8, 9, 10]])
    np.testing.assert_array_equal(out[..., :2], x[..., :2])
    assert not np.allclose(out[:, 13, 2], x[:, 13, 2])


def test_bones_already_as_long_as_their_median_in_3d_are_left_as_they_are():
    """A rigid body (every bone the same length in every frame, left equal to right) seen without depth error: the
    image length and the length agree, so the depth found is the depth given."""
    rng = np.random.default_rng(1)
    parents = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
    lengths = np.array([0, 0.12, 0.45, 0.42, 0.12, 0.45, 0.42, 0.2, 0.25, 0.1, 0.12, 0.15, 0.3, 0.25, 0.15, 0.3, 0.25])
    x = np.zeros((30, 17, 3))
    for c in range(1, 17):
        d = rng.normal(size=(30, 3))
        x[:, c] = x[:, parents[c]] + lengths[c] * d / np.linalg.norm(d, axis=-1, keepdims=True)
    np.testing.assert_allclose(limb_depths(x, 0.5), x, atol=1e-7)


@pytest.mark.parametrize("strength", [-0.1, 1.5, float("nan")])
def test_bad_strength_and_shapes_are_errors(strength):
    with pytest.raises(ValueError, match="strength must be within 0-1"):
        limb_depths(_legs(), strength)
    with pytest.raises(ValueError, match=r"expected \(T,17,3\) joints"):
        limb_depths(np.zeros((3, 16, 3)), 0.5)


def test_parse_limb_depth_takes_0_to_1_and_refuses_the_rest_in_one_line():
    assert parse_limb_depth("0.5") == 0.5 and parse_limb_depth(0) == 0.0 and parse_limb_depth(1.0) == 1.0
    for bad in ("1.5", -0.2, "most", float("nan"), None):
        with pytest.raises(ValueError, match=f"--limb-depth {bad}: give a strength from 0 to 1"):
            parse_limb_depth(bad)


def _tilted(x: torch.Tensor) -> torch.Tensor:
    """A lifter whose depth is 0.3 x plus a little y: flat, so limb depths change it."""
    return torch.cat([x[..., :2], 0.3 * x[..., :1] + 0.1 * x[..., 1:2]], dim=-1)


def test_the_evaluations_windows_get_limb_depths_window_by_window():
    rng = np.random.default_rng(2)
    inputs = np.concatenate([rng.uniform(-1, 1, (3, 9, 17, 2)), np.ones((3, 9, 17, 1))], -1).astype(np.float32)
    opts = RunOptions(clip_len=9, flip=False)
    plain = predict_windows(_tilted, inputs, opts)
    out = predict_windows(_tilted, inputs, replace(opts, limb_depth=0.5))
    np.testing.assert_allclose(out, np.stack([limb_depths(w, 0.5) for w in plain]), atol=1e-12)


def test_infer_lift_applies_limb_depths_before_the_metric_scale():
    """One window, every frame with the person: the lift with limb depths is ``limb_depths`` of the lift without,
    up to the window's metric scale (taken from the body's 3D size, which the new depths change)."""
    rng = np.random.default_rng(3)
    kp = np.concatenate(
        [rng.uniform(100, 500, (1, 17, 2)) + rng.normal(0, 5, (20, 17, 2)), np.full((20, 17, 1), 0.9)], -1
    )
    base = LiftOptions(clip_len=27, bones="free", flip=False, upright=False, max_fps=0, limb_depth=0.0)
    plain = lift_keypoints(_tilted, kp, base)
    out = lift_keypoints(_tilted, kp, replace(base, limb_depth=0.5))
    expected = limb_depths(plain.astype(np.float64), 0.5)
    scale = np.linalg.norm(out) / np.linalg.norm(expected)
    np.testing.assert_allclose(out, scale * expected, atol=1e-5)
    assert not np.allclose(out, plain, atol=1e-3) and 0.5 < scale < 2.0
