"""MotionBERT noise model, masks and synthetic confidence: rates, statistics and a hand-computed confidence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mocli.config import DataConfig
from mocli.data import clips
from mocli.data.clips import LiftClipDataset
from mocli.data.noise import (
    NOISE_FILE,
    OCCLUSION_PARTS,
    SWAP_PAIRS,
    DetectorErrors,
    DetectorFaults,
    add_detection_noise,
    apply_detector_errors,
    apply_keep_mask,
    interpolate_keyframes,
    load_noise_model,
    sample_detector_errors,
    sample_displacement,
    sample_keep_mask,
    synthetic_confidence,
)
from mocli.data.sources import sources_from_arrays
from mocli.lift import _window_input


def test_shipped_noise_model_is_attributed_and_complete():
    raw = json.loads(NOISE_FILE.read_text())
    assert "MotionBERT (Apache-2.0)" in raw["attribution"]
    model = load_noise_model()
    assert model.mean.shape == model.std.shape == (17, 2) and model.weight.shape == (17,)
    assert model.num_keyframes == 27 and model.jitter_std == 0.002 and model.uniform_range == pytest.approx(0.06)
    assert (model.std > 0).all() and ((model.weight > 0.5) & (model.weight <= 1)).all()


def test_masks_hit_5_percent_of_joints_and_10_percent_of_frames():
    rng = np.random.default_rng(0)
    keeps = np.stack([sample_keep_mask(rng, 243, 17, 0.05, 0.10) for _ in range(200)])  # (N, T, J)
    dropped_frames = ~keeps.any(axis=-1)
    assert dropped_frames.mean() == pytest.approx(0.10, abs=0.01)
    kept_frames = keeps[~dropped_frames]
    assert 1 - kept_frames.mean() == pytest.approx(0.05, abs=0.003)
    kp = rng.normal(size=(243, 17, 3))
    masked = apply_keep_mask(kp, keeps[0])
    assert (masked[~keeps[0]] == 0).all() and (masked[keeps[0]] == kp[keeps[0]]).all()


def test_dataset_samples_zero_masked_entries_at_the_expected_rates():
    t = np.linspace(0, 2 * np.pi, 200)[:, None, None]
    clip = np.random.default_rng(1).normal(size=(1, 17, 3)) * 0.3 + np.concatenate(
        [np.sin(t), np.ones_like(t), np.cos(t)], -1
    )
    data = LiftClipDataset(sources_from_arrays([clip.astype(np.float32)]), DataConfig(clip_len=50, stride=1), seed=3)
    inputs = np.stack([data[(0, i)]["input"].numpy() for i in range(len(data))])  # (N, 50, 17, 3)
    zero = (inputs == 0).all(axis=-1)
    frames = zero.all(axis=-1)
    assert frames.mean() == pytest.approx(0.10, abs=0.02)
    assert zero[~frames].mean() == pytest.approx(0.05, abs=0.01)


def test_interpolate_keyframes_is_linear_between_end_keys():
    keys = np.array([[0.0], [10.0], [20.0]])
    np.testing.assert_allclose(interpolate_keyframes(keys, 5)[:, 0], [0, 5, 10, 15, 20])
    np.testing.assert_allclose(interpolate_keyframes(keys, 3), keys)


def test_noise_statistics_match_the_mixture():
    model = load_noise_model()
    rng = np.random.default_rng(4)
    # with T == K keyframes the interpolation is the identity: displacement = keyframe draw + jitter
    delta = np.stack([sample_displacement(rng, model.num_keyframes, model) for _ in range(1500)]).reshape(-1, 17, 2)
    w = model.weight[:, None]
    mean = w * model.mean
    second = w * (model.std**2 + model.mean**2) + (1 - w) * model.uniform_range**2 / 12 + model.jitter_std**2
    np.testing.assert_allclose(delta.mean(axis=0), mean, atol=4e-4)
    np.testing.assert_allclose(delta.var(axis=0), second - mean**2, rtol=0.1)
    noisy = add_detection_noise(rng, np.zeros((243, 17, 2)), model)
    assert noisy.shape == (243, 17, 3) and 0 <= noisy[..., 2].min() and noisy[..., 2].max() <= 1
    assert 0.3 < noisy[..., 2].mean() < 0.95  # plausible detector confidences


def test_synthetic_confidence_formula_by_hand():
    a, b, m = 0.028, 1.1, -0.0046
    d = np.array([0.0, 0.01, 0.5, 1.0])
    conf = synthetic_confidence(d, a, b, m, 0.0, np.random.default_rng(0))
    expected_001 = a / (0.01 + a) + b * 0.01 + m  # 0.736842... + 0.011 - 0.0046 = 0.743242...
    expected_05 = a / 0.528 + 0.55 + m  # 0.053030... + 0.55 - 0.0046 = 0.598430...
    np.testing.assert_allclose(conf, [1 + m, expected_001, expected_05, 1.0])  # d = 1 gives 1.0257: clipped to 1
    assert expected_001 == pytest.approx(0.7432421, abs=1e-6)
    low = synthetic_confidence(np.array([0.05]), a, b, -2.0, 0.0)
    assert low[0] == 0.0  # clipped at 0
    spread = synthetic_confidence(np.full(20000, 0.01), a, b, m, 0.1, np.random.default_rng(1))
    assert spread.mean() == pytest.approx(expected_001, abs=0.01)


# --- a detector's failures ---------------------------------------------------------------------------------------


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of the runs of True in a (T,) bool array."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def test_occlusions_drop_whole_runs_of_one_joint_or_one_part():
    faults = DetectorFaults(occlusion_rate=1.0, occlusion_frames=(6, 6), occlusion_limb_prob=0.5)
    parts = {frozenset(p) for p in OCCLUSION_PARTS}
    seen_single = seen_part = 0
    for seed in range(300):
        errors = sample_detector_errors(np.random.default_rng(seed), 100, faults)
        assert not errors.source.any(axis=None) or (errors.source == np.arange(17)).all()
        assert (errors.jitter == 0).all() and (errors.conf_scale == 1).all()
        runs = [(j, r) for j in range(17) for r in _runs(errors.occluded[:, j])]
        if len({r for _, r in runs}) != 1:  # look at clips with exactly one occlusion
            continue
        (start, stop), joints = runs[0][1], frozenset(j for j, _ in runs)
        assert stop - start == 6 or stop == 100  # 6 frames, unless cut by the clip's end
        assert len(joints) == 1 or joints in parts
        seen_single += len(joints) == 1
        seen_part += len(joints) > 1
    assert seen_single > 20 and seen_part > 20


def test_occlusion_rate_is_per_100_frames():
    faults = DetectorFaults(occlusion_rate=2.0, occlusion_frames=(5, 5), occlusion_limb_prob=0.0)
    rng = np.random.default_rng(1)
    lost = np.mean([sample_detector_errors(rng, 100, faults).occluded.sum() for _ in range(2000)])
    assert lost == pytest.approx(2 * 4.9, rel=0.04)  # 2 events of 5 frames (4.9 with the ones cut at the end)


def test_swapped_frames_are_swapped_and_nothing_else_changes():
    faults = DetectorFaults(swap_rate=3.0, swap_frames=(2, 8))
    errors = sample_detector_errors(np.random.default_rng(4), 200, faults)
    kp = np.random.default_rng(5).normal(size=(200, 17, 3))
    out = apply_detector_errors(kp, errors)
    moved = errors.source != np.arange(17)
    assert moved.any() and not errors.occluded.any()
    np.testing.assert_array_equal(out[~moved], kp[~moved])
    for pairs in SWAP_PAIRS:
        swapped = moved[:, pairs[0][0]]
        for a, b in pairs:  # a swap exchanges all pairs of the arms (or legs) together
            np.testing.assert_array_equal(moved[:, a], swapped)
            np.testing.assert_array_equal(out[swapped, a], kp[swapped, b])
            np.testing.assert_array_equal(out[swapped, b], kp[swapped, a])


def test_hand_made_errors_apply_exactly():
    source = np.tile(np.arange(17), (4, 1))
    source[1, [11, 14]] = 14, 11  # frame 1: left and right shoulders read from each other
    jitter = np.zeros((4, 17, 2))
    jitter[2, 5] = [0.1, -0.2]
    conf_scale = np.ones((4, 17))
    conf_scale[2, 5] = 0.25
    errors = DetectorErrors(np.zeros((4, 17), bool), source, jitter, conf_scale)
    kp = np.random.default_rng(0).uniform(0.2, 0.8, size=(4, 17, 3))
    out = apply_detector_errors(kp, errors)
    expected = kp.copy()
    expected[1, 11], expected[1, 14] = kp[1, 14], kp[1, 11]
    expected[2, 5] = [kp[2, 5, 0] + 0.1, kp[2, 5, 1] - 0.2, kp[2, 5, 2] * 0.25]
    np.testing.assert_array_equal(out, expected)


def test_jitter_bursts_shake_one_joint_with_low_confidence():
    faults = DetectorFaults(jitter_rate=3.0, jitter_frames=(4, 10), jitter_std=0.05)
    rng = np.random.default_rng(6)
    shakes = []
    for _ in range(200):
        errors = sample_detector_errors(rng, 100, faults)
        hit = errors.conf_scale < 1
        np.testing.assert_array_equal((errors.jitter != 0).all(axis=-1), hit)
        assert ((errors.conf_scale[hit] >= 0.1**3) & (errors.conf_scale[hit] <= 0.5)).all()
        shakes.append(errors.jitter[hit])
    assert np.concatenate(shakes).std() == pytest.approx(0.05, rel=0.1)


def test_dataset_drops_exactly_the_occluded_entries_as_inference_gives_missing_joints(monkeypatch):
    drawn = []

    def recording_errors(*args, **kwargs):
        drawn.append(sample_detector_errors(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(clips, "sample_detector_errors", recording_errors)
    t = np.linspace(0, 2 * np.pi, 120)[:, None, None]
    walk = np.random.default_rng(1).normal(size=(1, 17, 3)) * 0.3 + np.concatenate([t, np.ones_like(t), 0 * t], -1)
    sources = sources_from_arrays([walk.astype(np.float32)])
    cfg = DataConfig(clip_len=60, stride=20, mask_joint_ratio=0.0, mask_frame_ratio=0.0, occlusion_rate=3.0)
    data = LiftClipDataset(sources, cfg, seed=3)
    # what inference feeds the model for a keypoint missing from a video (NaN pixels, confidence 0)
    video = np.concatenate([np.random.default_rng(2).uniform(100, 900, (60, 17, 2)), np.ones((60, 17, 1))], -1)
    video[10:20, 13] = [np.nan, np.nan, 0.0]
    missing_at_inference = _window_input(video, np.arange(60), 0.0)[10:20, 13]
    dropped = 0
    for i in range(len(data)):
        x = data[(0, i)]["input"].numpy()
        occluded = drawn[-1].occluded
        np.testing.assert_array_equal(x[occluded], np.broadcast_to(missing_at_inference[0], (occluded.sum(), 3)))
        assert (x[~occluded][:, 2] > 0).all()  # MotionBERT's synthetic confidence is never 0 here
        dropped += occluded.sum()
    assert len(drawn) == len(data) and dropped > 0
    np.testing.assert_array_equal(missing_at_inference, 0.0)
    drawn.clear()
    LiftClipDataset(sources, cfg, seed=3, train=False)[(0, 0)]
    assert drawn == []  # never in validation
