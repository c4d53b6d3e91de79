"""Known-answer tests for mocli.keypoints.tracking and the assembly of sequences from detections."""

from __future__ import annotations

import numpy as np
import pytest

from mocli.errors import InputError
from mocli.keypoints.base import Detection, box_from_keypoints
from mocli.keypoints.sequence import build_sequences
from mocli.keypoints.tracking import (
    Track,
    fill_gaps,
    iou_matrix,
    keypoint_similarity,
    parse_person,
    select_tracks,
    stack_track,
    track_detections,
)

# A COCO-17 stick figure, 1 unit = 100 px at scale 1 (x right, y down), centred on the pelvis.
_TEMPLATE = np.array(
    [
        [0, -1.6], [-0.1, -1.7], [0.1, -1.7], [-0.2, -1.65], [0.2, -1.65],  # nose, eyes, ears
        [-0.4, -1.3], [0.4, -1.3], [-0.5, -0.8], [0.5, -0.8], [-0.55, -0.3], [0.55, -0.3],  # arms
        [-0.2, 0.0], [0.2, 0.0], [-0.22, 0.8], [0.22, 0.8], [-0.25, 1.6], [0.25, 1.6],  # legs
    ]
)  # fmt: skip


def person(cx: float, cy: float, scale: float = 1.0, conf: float = 0.9) -> Detection:
    """A synthetic COCO-17 detection centred at (cx, cy) pixels."""
    kp = np.concatenate([_TEMPLATE * 100 * scale + [cx, cy], np.full((17, 1), conf)], axis=1)
    return Detection(kp, box_from_keypoints(kp), score=conf)


def test_iou_matrix_known_values():
    a = np.array([[0, 0, 10, 10]], dtype=float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [np.nan] * 4])
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0, 0.0]])


def test_keypoint_similarity_is_one_for_identical_poses_and_decays():
    a = person(100, 300).keypoints[None]
    same = keypoint_similarity(a, a, np.array([200.0]))
    shifted = keypoint_similarity(a, person(120, 300).keypoints[None], np.array([200.0]))
    # d = 20 px for every joint, sigma = 0.1 * 200 = 20 px -> exp(-1/2)
    np.testing.assert_allclose(same, [[1.0]])
    np.testing.assert_allclose(shifted, [[np.exp(-0.5)]], rtol=1e-6)


def test_two_people_crossing_keep_their_identities():
    # A walks right, B walks left at the same height; they overlap at frame 10; detection order alternates.
    a = [person(100 + 20 * t, 300, scale=1.0) for t in range(21)]
    b = [person(500 - 20 * t, 300, scale=0.8) for t in range(21)]
    per_frame = [[a[t], b[t]] if t % 2 == 0 else [b[t], a[t]] for t in range(21)]
    tracks = track_detections(per_frame)
    assert [t.track_id for t in tracks] == [1, 2]
    assert all(d is a[i] for i, d in enumerate(tracks[0].detections))
    assert all(d is b[i] for i, d in enumerate(tracks[1].detections))


def test_track_survives_a_short_gap_and_new_person_gets_new_id():
    a = [person(100 + 10 * t, 300) for t in range(12)]
    per_frame = [[a[t]] if t not in (4, 5, 6) else [] for t in range(12)]
    per_frame[8] = per_frame[8] + [person(900, 300)]  # a newcomer far away
    tracks = track_detections(per_frame)
    assert tracks[0].frames == [0, 1, 2, 3, 7, 8, 9, 10, 11]
    assert tracks[1].frames == [8]


def test_fill_gaps_interpolates_a_short_gap_linearly():
    T = 10
    values = np.zeros((T, 2, 3))
    values[:, :, 0] = np.arange(T)[:, None] * 10.0  # x = 10 t
    values[:, :, 1] = 5.0
    values[:, 0, 2], values[:, 1, 2] = 0.9, 0.5
    valid = np.ones(T, bool)
    valid[3:6] = False
    values[3:6] = np.nan  # the gap: frames 3, 4, 5 between valid frames 2 and 6
    values[6, 0, 2] = 0.4
    filled, interpolated = fill_gaps(values, valid, max_gap=3)
    np.testing.assert_allclose(filled[3:6, :, 0], [[30, 30], [40, 40], [50, 50]])
    np.testing.assert_allclose(filled[3:6, :, 1], 5.0)
    np.testing.assert_allclose(filled[3:6, 0, 2], 0.2 * 0.4)  # 0.2 x min(0.9, 0.4)
    np.testing.assert_allclose(filled[3:6, 1, 2], 0.2 * 0.5)
    assert interpolated.tolist() == [False] * 3 + [True] * 3 + [False] * 4
    assert np.isnan(values[3:6]).all()  # input untouched


def test_fill_gaps_leaves_long_gaps_and_edges_missing():
    T = 12
    values = np.tile(np.array([1.0, 2.0, 0.8]), (T, 1, 1))
    valid = np.ones(T, bool)
    valid[[0, 1]] = False  # at the start: nothing to interpolate from
    valid[4:9] = False  # 5 frames > max_gap 4
    valid[11] = False  # at the end
    values[~valid] = [np.nan, np.nan, 0.0]
    filled, interpolated = fill_gaps(values, valid, max_gap=4)
    assert not interpolated.any()
    assert np.isnan(filled[~valid, :, :2]).all() and (filled[~valid, :, 2] == 0).all()


def test_largest_picks_greatest_area_times_frames():
    small_long = Track(1)
    big_short = Track(2)
    for t in range(10):
        small_long.add(t, Detection(np.zeros((17, 3)), [0, 0, 100, 100], 1.0))  # 1e4 px^2 x 10 frames
    for t in range(2):
        big_short.add(t, Detection(np.zeros((17, 3)), [0, 0, 200, 200], 1.0))  # 4e4 px^2 x 2 frames
    assert select_tracks([big_short, small_long], "largest") == [small_long]
    assert select_tracks([big_short, small_long], "all") == [small_long, big_short]
    assert select_tracks([big_short, small_long], 2) == [big_short]
    with pytest.raises(InputError, match=r"track id 7 \(track ids: 1, 2\)"):
        select_tracks([big_short, small_long], 7)


def test_parse_person():
    assert parse_person("largest") == "largest"
    assert parse_person("ALL") == "all"
    assert parse_person("3") == 3
    with pytest.raises(InputError, match="--person"):
        parse_person("tallest")


def test_stack_track_marks_missing_frames():
    track = Track(1)
    track.add(1, person(100, 100))
    stacked = stack_track(track, 3)
    assert stacked.valid.tolist() == [False, True, False]
    assert np.isnan(stacked.keypoints[[0, 2], :, :2]).all()
    assert (stacked.keypoints[[0, 2], :, 2] == 0).all()


def test_build_sequences_single_person_with_gap():
    dets = [person(100 + 10 * t, 300) for t in range(8)]
    per_frame = [[d] if t not in (3, 4) else [] for t, d in enumerate(dets)]
    (seq,) = build_sequences(
        per_frame, skeleton="coco", image_size=(640, 480), fps=25.0, source="test", multi_person=False, max_gap=2
    )
    assert seq.keypoints.shape == (8, 17, 3) and seq.keypoints.dtype == np.float32
    assert seq.valid.tolist() == [True] * 3 + [False] * 2 + [True] * 3
    assert seq.interpolated.tolist() == [False] * 3 + [True] * 2 + [False] * 3
    # pelvis = mean of the hips: x = cx, y = cy; frame 3 interpolated between frames 2 and 5 -> cx = 130
    np.testing.assert_allclose(seq.keypoints[:, 0, 0], 100 + 10 * np.arange(8), atol=1e-4)
    np.testing.assert_allclose(seq.keypoints[3, :, 2], 0.2 * 0.9, rtol=1e-6)
    assert seq.extras["keypoints_coco"].shape == (8, 17, 3)


def test_build_sequences_nobody_raises():
    with pytest.raises(InputError, match="no person"):
        build_sequences([[], []], skeleton="coco", image_size=(10, 10), fps=30.0, source="test")
