from __future__ import annotations

import numpy as np
import pytest

from mocli.windows import assign_frames, blend_weights, merge_windows, plan_windows


def test_plan_windows_covers_every_frame_and_ends_at_the_last():
    assert plan_windows(10, 4) == [(0, 4), (4, 8), (6, 10)]
    assert plan_windows(10, 4, stride=2) == [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert plan_windows(3, 243) == [(0, 3)]
    assert plan_windows(486, 243) == [(0, 243), (243, 486)]
    for T in range(1, 60):
        wins = plan_windows(T, 8, 5)
        covered = np.zeros(T, bool)
        for s, e in wins:
            assert e - s == min(8, T)
            covered[s:e] = True
        assert covered.all() and wins[-1][1] == T
    with pytest.raises(ValueError):
        plan_windows(10, 4, stride=5)


def test_merge_is_exact_for_consistent_windows_and_continuous_otherwise():
    T = 50
    truth = np.sin(np.arange(T) / 5.0)[:, None]
    wins = plan_windows(T, 16, 10)
    merged = merge_windows([truth[s:e] for s, e in wins], wins, T, ramp=4)
    np.testing.assert_allclose(merged, truth)
    # windows that disagree by a constant offset: the merge moves between them without a jump
    outs = [truth[s:e] + (0.5 if i % 2 else 0.0) for i, (s, e) in enumerate(wins)]
    merged = merge_windows(outs, wins, T, ramp=6)
    assert np.abs(np.diff(merged[:, 0]) - np.diff(truth[:, 0])).max() < 0.5 / 3
    np.testing.assert_allclose(merged[:10], truth[:10])  # covered by the first window only


def test_blend_weights_shape():
    w = blend_weights(10, 3)
    assert w[3:7].tolist() == [1, 1, 1, 1] and 0 < w[0] < w[1] < w[2] < 1
    np.testing.assert_allclose(w, w[::-1])


def test_assign_frames_scores_each_frame_once():
    for T, L, S in [(10, 4, 4), (100, 27, 9), (5, 27, 9), (243 * 3 + 7, 243, 243)]:
        wins = plan_windows(T, L, S)
        picks = assign_frames(wins, T)
        frames = np.concatenate([np.arange(s, e)[p] for (s, e), p in zip(wins, picks, strict=True)])
        assert sorted(frames.tolist()) == list(range(T))
