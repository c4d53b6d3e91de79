"""Known answers for the One-Euro smoothing of tracked keypoints (mocli.keypoints.smoothing)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mocli.keypoints.base import Detection, box_from_keypoints
from mocli.keypoints.smoothing import IMAGE_FILTER, OneEuro, alpha, object_scale, one_euro, smooth_tracks

FPS = 30.0


def _alpha(cutoff: float) -> float:
    """The exponential smoother's weight, written out: 1 / (1 + tau / te), tau = 1 / (2 pi cutoff), te = 1 / 30."""
    return 1.0 / (1.0 + (1.0 / (2 * math.pi * cutoff)) / (1.0 / FPS))


def test_alpha_matches_mediapipes_comments():
    # pose_landmark_filtering.pbtxt: min_cutoff 0.05 "results into ~0.01 alpha" when static; d_cutoff 1.0 "~0.17".
    assert alpha(0.05, FPS) == pytest.approx(0.010363, abs=1e-6)
    assert alpha(1.0, FPS) == pytest.approx(0.173171, abs=1e-6)


def test_constant_signal_stays_exact():
    values = np.full((50, 3, 2), 123.456)
    out = one_euro(values, np.ones(50, bool), FPS, scale=np.full(50, 80.0))
    assert np.array_equal(out, values)


def test_step_is_followed_within_two_frames():
    x = np.where(np.arange(20) >= 5, 50.0, 0.0)[:, None]
    out = one_euro(x, np.ones(20, bool), FPS, scale=np.full(20, 100.0))[:, 0]
    assert np.array_equal(out[:5], np.zeros(5))
    # frame 5 by hand: speed 50 px / 100 px x 30 /s = 15 /s, smoothed 0.17316 x 15; cutoff 0.05 + 80 x that
    speed = _alpha(1.0) * 15.0
    first = 50.0 * _alpha(0.05 + 80 * speed)
    assert out[5] == pytest.approx(first, abs=1e-9) and out[5] == pytest.approx(48.877, abs=1e-3)
    speed *= 1 - _alpha(1.0)  # frame 6: no new motion, the speed estimate decays
    assert out[6] == pytest.approx(first + _alpha(0.05 + 80 * speed) * (50.0 - first), abs=1e-9)
    assert abs(out[7] - 50.0) < 0.05 and abs(out[-1] - 50.0) < 1e-3


def test_ramp_lag_is_bounded_and_reaches_the_closed_form():
    v, scale = 5.0, 100.0  # px per frame, px
    x = (v * np.arange(120))[:, None]
    lag = x[:, 0] - one_euro(x, np.ones(120, bool), FPS, scale=np.full(120, scale))[:, 0]
    # steady state: speed = v fps / scale, a = alpha(min_cutoff + beta speed), lag = v (1 - a) / a
    a = _alpha(0.05 + 80 * v * FPS / scale)
    assert lag[-1] == pytest.approx(v * (1 - a) / a, abs=1e-6) and lag[-1] == pytest.approx(0.1989, abs=1e-4)
    assert lag.max() < v / 5 and lag.min() >= 0.0


def test_jitter_of_a_still_landmark_is_cut_to_a_fifth():
    noise = np.tile([1.0, -1.0], 30)[:, None]  # +-1 px alternating jitter on a still landmark, person 200 px
    out = one_euro(noise, np.ones(60, bool), FPS, scale=np.full(60, 200.0))
    assert np.abs(out[30:]).max() < 0.2 and np.abs(out[30:]).min() > 0.19


def test_gaps_restart_the_filter_and_are_left_alone():
    x = np.array([0.0, 0.0, 0.0, np.nan, 40.0, 40.0, 10.0])[:, None]
    valid = np.array([1, 1, 1, 0, 1, 1, 1], bool)
    out = one_euro(x, valid, FPS, scale=np.full(7, 100.0))[:, 0]
    assert np.isnan(out[3])
    assert out[4] == 40.0 and out[5] == 40.0  # restarted at the new value, not pulled towards the old one
    assert out[6] != 10.0
    # an invalid frame with a value restarts the filter too, and is returned as it is
    y = one_euro(np.array([[0.0], [7.0], [30.0]]), np.array([1, 0, 1], bool), FPS, scale=np.full(3, 100.0))
    assert y[:, 0].tolist() == [0.0, 7.0, 30.0]


def test_nan_element_restarts_only_that_element():
    x = np.array([[0.0, 0.0], [np.nan, 10.0], [20.0, 20.0]])
    out = one_euro(x, np.ones(3, bool), FPS, scale=np.full(3, 100.0))
    assert np.isnan(out[1, 0]) and out[2, 0] == 20.0  # restarted after its NaN
    assert 10.0 < out[2, 1] < 20.0  # the other element kept filtering


def test_speed_is_measured_in_object_sizes():
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(0, 3, (40, 4, 2)), axis=0)
    scale = np.full(40, 150.0)
    small = one_euro(x, np.ones(40, bool), FPS, scale=scale)
    big = one_euro(4 * x, np.ones(40, bool), FPS, scale=4 * scale)
    np.testing.assert_allclose(big, 4 * small, rtol=1e-12, atol=1e-9)
    unscaled = one_euro(x, np.ones(40, bool), FPS, OneEuro(0.05, 80.0 / 150.0), scale=None)
    np.testing.assert_allclose(unscaled, small, rtol=1e-12, atol=1e-9)


def test_object_scale_is_mean_of_box_sides():
    kp = np.array([[[10, 20, 0.9], [110, 70, 0.1], [np.nan, np.nan, 0.0]], [[np.nan] * 3] * 3])
    np.testing.assert_allclose(object_scale(kp), [75.0, np.nan])


def _det(x: float, track_id: int, conf: float = 0.7) -> Detection:
    kp = np.array([[x, 100.0, conf], [x + 100.0, 300.0, conf]], np.float32)
    return Detection(kp, box_from_keypoints(kp), conf, track_id=track_id, extras={"world_landmarks33": kp * 0.01})


def test_smooth_tracks_filters_each_person_alone_and_keeps_confidences():
    xs1 = [0.0, 10.0, 20.0, 30.0, 40.0]
    xs2 = [500.0, 480.0, None, 470.0, 465.0]  # person 2 is missed in frame 2
    per_frame = [[_det(a, 1, 0.6 + 0.05 * t)] + ([_det(b, 2)] if b is not None else []) for t, (a, b) in
                 enumerate(zip(xs1, xs2, strict=True))]  # fmt: skip
    before = [[d.keypoints.copy() for d in f] for f in per_frame]
    out = smooth_tracks(per_frame, FPS)
    for f, frame in enumerate(out):
        for d, det in enumerate(frame):
            np.testing.assert_array_equal(det.keypoints[:, 2], per_frame[f][d].keypoints[:, 2])  # confidences
            np.testing.assert_array_equal(det.box, per_frame[f][d].box)
            assert det.track_id == per_frame[f][d].track_id
            np.testing.assert_array_equal(per_frame[f][d].keypoints, before[f][d])  # the input is unchanged
    kp1 = np.stack([f[0].keypoints for f in per_frame]).astype(np.float64)
    expected = one_euro(kp1[..., :2], np.ones(5, bool), FPS, IMAGE_FILTER, scale=object_scale(kp1))
    np.testing.assert_allclose(np.stack([f[0].keypoints[:, :2] for f in out]), expected, rtol=1e-6)
    assert out[3][1].keypoints[0, 0] == 470.0  # person 2 restarts after the miss
    assert out[4][1].keypoints[0, 0] != 465.0 and out[1][1].keypoints[0, 0] != 480.0
    assert not np.array_equal(out[4][1].extras["world_landmarks33"], per_frame[4][1].extras["world_landmarks33"])
    with pytest.raises(ValueError, match="track id"):
        smooth_tracks([[Detection(np.zeros((2, 3)), np.zeros(4), 1.0)]], FPS)
