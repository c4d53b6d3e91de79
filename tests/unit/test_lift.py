from __future__ import annotations

import numpy as np
import pytest
import torch

from mocli import create_model
from mocli.bones import median_bone_lengths
from mocli.lift import CANONICAL_BODY_SIZE_M, LiftOptions, body_size, lift_keypoints, lift_phases, merge_phases
from mocli.skeleton import H36M_17


def _identity_model(x: torch.Tensor) -> torch.Tensor:
    """A 'lifter' that returns its normalised 2D with zero depth: flip-equivariant and exactly predictable."""
    return torch.cat([x[..., :2], torch.zeros_like(x[..., :1])], dim=-1)


def _walking_skeleton(T: int) -> np.ndarray:
    """(T,17,3) pixels + conf: a fixed planar skeleton translating across the image."""
    rng = np.random.default_rng(0)
    base = rng.uniform(-80, 80, size=(17, 2))
    kp = np.zeros((T, 17, 3))
    kp[..., :2] = base + np.stack([np.linspace(100, 900, T), np.full(T, 400)], -1)[:, None]
    kp[..., 2] = 0.9
    return kp


@pytest.mark.parametrize("T", [5, 27, 100])
def test_lift_is_root_relative_metric_and_exact_across_windows(T):
    kp = _walking_skeleton(T)
    out = lift_keypoints(_identity_model, kp, LiftOptions(clip_len=27, stride=18, bones="free"))
    assert out.shape == (T, 17, 3) and out.dtype == np.float32
    expected = kp[..., :2] - kp[:, :1, :2]
    expected = (
        expected
        * CANONICAL_BODY_SIZE_M
        / body_size(np.concatenate([expected, np.zeros((T, 17, 1))], -1))[:, None, None]
    )
    np.testing.assert_allclose(out[..., :2], expected, atol=1e-5)
    np.testing.assert_allclose(body_size(out), CANONICAL_BODY_SIZE_M, rtol=1e-5)
    assert np.all(out[:, 0] == 0) and np.all(out[..., 2] == 0)


def test_missing_frames_do_not_break_neighbours():
    kp = _walking_skeleton(60)
    kp[20:25] = np.nan  # the person is lost for five frames
    out = lift_keypoints(_identity_model, kp, LiftOptions(clip_len=27, stride=9))
    good = np.r_[0:20, 25:60]
    np.testing.assert_allclose(body_size(out[good]), CANONICAL_BODY_SIZE_M, rtol=1e-4)
    assert np.isfinite(out).all()


@pytest.mark.parametrize("seen", [5, 10, 13])
def test_a_person_seen_in_part_of_a_window_keeps_their_size(seen):
    """The window's metric scale comes from the frames with the person: the frames without anyone (an all-zero
    input, lifted to a collapsed pose) do not shrink the median and blow the person up (they did, when the person
    was absent from at least half of the window)."""
    kp = _walking_skeleton(27)
    kp[seen:] = np.nan  # the person leaves after ``seen`` frames of a single 27-frame window
    out = lift_keypoints(_identity_model, kp, LiftOptions(clip_len=27, flip=False, bones="free"))
    np.testing.assert_allclose(body_size(out[:seen]), CANONICAL_BODY_SIZE_M, rtol=1e-5)


def test_flip_and_batching_do_not_change_a_real_model_much():
    model = create_model("dstformer-tiny", maxlen=27).eval()
    kp = _walking_skeleton(70)
    a = lift_keypoints(model, kp, LiftOptions(clip_len=27, batch_size=1, flip=False))
    b = lift_keypoints(model, kp, LiftOptions(clip_len=27, batch_size=8, flip=False))
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert lift_keypoints(model, kp, LiftOptions(clip_len=27)).shape == (70, 17, 3)


def test_fixed_bones_take_the_symmetric_median_of_the_seen_frames():
    kp = _walking_skeleton(60)  # rigid but left/right asymmetric
    kp[:, 13, :2] += np.linspace(0, 60, 60)[:, None]  # the left wrist drifts: the left forearm changes length
    kp[40:45] = np.nan  # missing frames: lifted from zeros, so they must not count in the median
    free = lift_keypoints(_identity_model, kp, LiftOptions(clip_len=27, bones="free"))
    fixed = lift_keypoints(_identity_model, kp, LiftOptions(clip_len=27))
    seen = np.r_[0:40, 45:60]
    expected = median_bone_lengths(free[seen], symmetric=True)
    for p, c in H36M_17.bones:
        np.testing.assert_allclose(np.linalg.norm(fixed[seen, c] - fixed[seen, p], axis=-1), expected[c], rtol=1e-5)
        d_free, d_fixed = free[seen, c] - free[seen, p], fixed[seen, c] - fixed[seen, p]
        cos = (d_free * d_fixed).sum(-1) / np.linalg.norm(d_free, axis=-1) / np.linalg.norm(d_fixed, axis=-1)
        np.testing.assert_allclose(cos, 1.0, atol=1e-5)  # directions are the lifter's
    left, right = H36M_17.index("left_wrist"), H36M_17.index("right_wrist")
    assert expected[left] == expected[right]
    assert not np.isclose(median_bone_lengths(free[seen])[left], median_bone_lengths(free)[left])  # NaN frames mattered
    np.testing.assert_array_equal(fixed[:, 0], 0)
    with pytest.raises(ValueError, match="bones"):
        lift_keypoints(_identity_model, kp, LiftOptions(clip_len=27, bones="rigid"))


def test_missing_joints_reach_the_model_as_masked_joints():
    """A missing keypoint (NaN, or confidence at or below min_conf) is (0, 0, 0) in the model's input: exactly the
    masked joints of the lift pretext, whatever its pixel values; the box is made from the others."""
    kp = _walking_skeleton(27)
    kp[3, 5] = np.nan
    kp[4, 6, 2] = 0.0
    kp[5, 7, :2] = [5000.0, -5000.0]  # wild coordinates, but not confident
    kp[5, 7, 2] = 0.05
    seen = []

    def recording_model(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.clone())
        return _identity_model(x)

    lift_keypoints(recording_model, kp, LiftOptions(clip_len=27, flip=False, min_conf=0.1))
    x = seen[0][0].numpy()
    for t, j in ((3, 5), (4, 6), (5, 7)):
        assert np.all(x[t, j] == 0.0)
    good = np.ones((27, 17), bool)
    good[3, 5] = good[4, 6] = good[5, 7] = False
    lo, hi = kp[good][:, :2].min(0), kp[good][:, :2].max(0)
    centre, scale = (lo + hi) / 2, 2.0 / (hi - lo).max()
    np.testing.assert_allclose(x[good][:, :2], (kp[good][:, :2] - centre) * scale, atol=1e-5)
    np.testing.assert_allclose(x[good][:, 2], 0.9, atol=1e-6)


@pytest.mark.parametrize(("fps", "max_fps", "k"), [(None, 60, 1), (30, 60, 1), (60, 60, 1), (100, 60, 2),
                                                   (120, 60, 2), (240, 60, 4), (120, 40, 3), (120, 0, 1)])  # fmt: skip
def test_lift_phases_keep_each_phase_at_or_below_the_highest_rate(fps, max_fps, k):
    assert lift_phases(fps, max_fps) == k


@pytest.mark.parametrize("k", [2, 3, 4])
def test_merge_phases_cancels_per_phase_offsets_and_keeps_linear_motion(k):
    T = 23
    motion = np.linspace(0.0, 2.2, T)[:, None] * np.array([1.0, -0.5, 0.25])  # (T,3) linear in time
    offsets = [0.03, -0.02, 0.05, -0.04][:k]  # each phase lifted with its own small error
    merged = merge_phases([motion[p::k] + offsets[p] for p in range(k)])
    half = (k + (k % 2 == 0)) // 2  # the kernel's reach: the ends see held edges
    assert merged.shape == motion.shape and merged.dtype == np.float32
    np.testing.assert_allclose(merged[half : T - half], motion[half : T - half] + np.mean(offsets), atol=1e-6)
    np.testing.assert_array_equal(merge_phases([motion.astype(np.float32)]), motion.astype(np.float32))


def test_a_fast_input_is_lifted_as_interleaved_phases():
    """At 120 frames/s with the default highest rate of 60, frames 0, 2, 4, ... and 1, 3, 5, ... are lifted as two
    sequences and merged: the same as lifting each phase on its own and merging."""
    kp = _walking_skeleton(70)
    kp[1::2, 5, :2] += 6.0  # a joint of the odd frames differs, so the phases give different poses
    opts = LiftOptions(clip_len=27, bones="free")
    fast = lift_keypoints(_identity_model, kp, opts, fps=120.0)
    phases = [lift_keypoints(_identity_model, kp[p::2], opts, fps=60.0) for p in range(2)]
    np.testing.assert_allclose(fast, merge_phases(phases), atol=1e-6)
    assert not np.allclose(fast, lift_keypoints(_identity_model, kp, opts, fps=60.0), atol=1e-4)
    np.testing.assert_array_equal(lift_keypoints(_identity_model, kp, opts, fps=60.0),
                                  lift_keypoints(_identity_model, kp, opts))  # fmt: skip
