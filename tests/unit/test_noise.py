"""MotionBERT noise model, masks and synthetic confidence: rates, statistics and a hand-computed confidence."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mocli.config import DataConfig
from mocli.data.clips import LiftClipDataset, sources_from_arrays
from mocli.data.noise import (
    NOISE_FILE,
    add_detection_noise,
    apply_keep_mask,
    interpolate_keyframes,
    load_noise_model,
    sample_displacement,
    sample_keep_mask,
    synthetic_confidence,
)


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
