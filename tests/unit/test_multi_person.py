"""Several people: identity switches on synthetic crossings, flicker removal, duplicate poses, the main subject."""

from __future__ import annotations

import numpy as np
import pytest

from mocli.keypoints.base import Detection, box_from_keypoints
from mocli.keypoints.linking import link_people
from mocli.keypoints.mediapipe_multi import suppress_duplicates
from mocli.keypoints.sequence import build_sequences
from mocli.keypoints.tracking import select_tracks, track_detections
from tests.unit.test_keypoints_tracking import person  # the synthetic COCO-17 detection


def identity_switches(tracks, truth: dict[int, list]) -> int:
    """Times a true person's detections change track id between consecutive frames where they were detected."""
    owner = {id(d): t.track_id for t in tracks for d in t.detections}
    switches = 0
    for dets in truth.values():
        ids = [owner[id(d)] for d in dets if d is not None and id(d) in owner]
        switches += sum(a != b for a, b in zip(ids, ids[1:], strict=False))
    return switches


def crossing(num_frames: int = 40, hidden=range(17, 23), jitter_px: float = 0.0, seed: int = 0):
    """A walks right in front, B walks left behind (smaller) at about the same height; B is hidden behind A while
    they overlap. Constant velocities, detection order shuffled."""
    rng = np.random.default_rng(seed)
    truth: dict[int, list] = {0: [], 1: []}
    per_frame = []
    for t in range(num_frames):
        a = person(100 + 20 * t, 300 + rng.normal(0, jitter_px), scale=1.0)
        b = person(900 - 20 * t, 280 + rng.normal(0, jitter_px), scale=0.8)
        if jitter_px:
            for d in (a, b):
                d.keypoints[:, :2] += rng.normal(0, jitter_px, (17, 2))
                d.box = box_from_keypoints(d.keypoints)
        frame = [a] + ([] if t in hidden else [b])
        rng.shuffle(frame)
        truth[0].append(a)
        truth[1].append(None if t in hidden else b)
        per_frame.append(frame)
    return per_frame, truth


def test_clean_crossing_with_occlusion_has_no_identity_switch():
    per_frame, truth = crossing()
    tracks = track_detections(per_frame)
    assert len(tracks) == 2
    assert identity_switches(tracks, truth) == 0


def test_noisy_crossing_has_no_identity_switch():
    for seed in range(5):
        per_frame, truth = crossing(jitter_px=6.0, seed=seed)
        tracks = track_detections(per_frame)
        assert identity_switches(tracks, truth) == 0 and len(tracks) == 2, seed


def test_switch_counter_counts_a_swap():
    per_frame, truth = crossing(hidden=())
    tracks = track_detections(per_frame)
    a, b = tracks[0], tracks[1]
    a.detections[30:], b.detections[30:] = b.detections[30:], a.detections[30:]  # swap identities after frame 30
    assert identity_switches(tracks, truth) == 2


def test_link_people_drops_flickers_and_numbers_by_first_appearance():
    per_frame, _ = crossing(num_frames=20, hidden=())
    per_frame[3] = per_frame[3] + [person(600, 900)]  # a one-frame false positive
    for t in range(5, 20):  # a third person who appears at frame 5
        per_frame[t] = per_frame[t] + [person(1500, 300)]
    linked, tracks = link_people(per_frame, min_frames=5)
    assert [t.track_id for t in tracks] == [1, 2, 3]
    assert [t.frames[0] for t in tracks] == [0, 0, 5] and [t.num_frames for t in tracks] == [20, 20, 15]
    assert sum(len(f) for f in linked) == 55 and all(d.track_id in (1, 2, 3) for f in linked for d in f)
    assert per_frame[3][-1].track_id is None  # the input is not modified
    # nothing long enough: the longest track is kept
    _, only = link_people([[person(100, 100)], [person(102, 100)], [person(900, 100)]], min_frames=5)
    assert [(t.track_id, t.num_frames) for t in only] == [(1, 2)]


def test_main_subject_is_most_frames_times_size_and_ids_come_from_the_linker():
    per_frame, _ = crossing(num_frames=20, hidden=range(8, 12))  # A: 20 frames at scale 1; B: 16 at 0.8
    linked, tracks = link_people(per_frame)
    assert select_tracks(tracks, "largest")[0].frames == list(range(20))
    seqs = build_sequences(linked, skeleton="coco", image_size=(1000, 600), fps=25.0, source="t", person="all")
    assert [s.track_id for s in seqs] == [1, 2]
    b = min(seqs, key=lambda s: s.valid.sum())
    assert b.valid.sum() == 16 and b.interpolated[8:12].all() and b.interpolated.sum() == 4


def _mp_pose(cx: float, cy: float, top: float, score: float) -> Detection:
    """A MediaPipe-layout (33 joints) pose with hips at (cx +- 20, cy) and joints from ``top`` down to cy + 200."""
    kp = np.zeros((33, 3), np.float32)
    kp[:, 0] = cx + np.linspace(-40, 40, 33)
    kp[:, 1] = np.linspace(top, cy + 200, 33)
    kp[:, 2] = 0.9
    kp[23, :2], kp[24, :2] = (cx - 20, cy), (cx + 20, cy)
    return Detection(kp, box_from_keypoints(kp), score)


def test_duplicate_poses_of_one_person_are_suppressed_and_neighbours_kept():
    full = _mp_pose(500, 500, top=200, score=0.9)
    legs_only = _mp_pose(505, 505, top=420, score=0.8)  # the same person's legs, found again
    neighbour = _mp_pose(620, 500, top=200, score=0.85)  # someone beside them, overlapping
    kept = suppress_duplicates([legs_only, neighbour, full])
    assert kept == [full, neighbour]


def test_pose_bundle_is_built_from_the_wheel_and_the_detector_runs():
    import io
    import json
    import zipfile

    import pytest

    pytest.importorskip("mediapipe")
    from mediapipe.tasks.python.metadata.metadata import MetadataDisplayer

    from mocli.keypoints.mediapipe_multi import MediaPipeMultiDetector, build_pose_bundle

    bundle = zipfile.ZipFile(io.BytesIO(build_pose_bundle()))
    assert sorted(bundle.namelist()) == ["pose_detector.tflite", "pose_landmarks_detector.tflite"]
    for name, (mean, std) in (("pose_detector", (127.5, 127.5)), ("pose_landmarks_detector", (0.0, 255.0))):
        meta = json.loads(MetadataDisplayer.with_model_buffer(bundle.read(f"{name}.tflite")).get_metadata_json())
        norm = meta["subgraph_metadata"][0]["input_tensor_metadata"][0]["process_units"][0]["options"]
        assert (norm["mean"], norm["std"]) == ([mean], [std])  # input scaled as the legacy graphs do
    detector = MediaPipeMultiDetector(num_poses=2)
    try:
        assert detector.detect(np.zeros((96, 128, 3), np.uint8)) == []  # nobody in a black frame
    finally:
        detector.close()


class _JitteryWalker:
    """One COCO-17 person standing still with +-1 px jitter; the frame index is the frame's brightness / 10."""

    name = "jittery"
    skeleton = "coco"
    multi_person = True

    def __init__(self, smooth: bool) -> None:
        self.smooth_tracks = smooth

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        t = int(round(frame_bgr.mean() / 10))
        det = person(200 + (1 if t % 2 else -1), 300)
        det.keypoints[:, 2] = 0.5 + 0.02 * t
        return [det]

    def close(self) -> None:
        pass


def test_extract_people_smooths_tracks_when_the_detector_asks(tmp_path):
    import cv2

    from mocli.keypoints.extract import extract_people
    from mocli.keypoints.smoothing import smooth_tracks

    path = tmp_path / "walk.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (96, 64))
    for t in range(20):
        writer.write(np.full((64, 96, 3), 10 * t, np.uint8))
    writer.release()
    raw = extract_people(path, _JitteryWalker(smooth=False), max_gap=0).sequences[0]
    smooth = extract_people(path, _JitteryWalker(smooth=True), max_gap=0).sequences[0]
    per_frame = [_JitteryWalker(False).detect(np.full((2, 2, 3), 10 * t, np.uint8)) for t in range(20)]
    linked, _ = link_people(per_frame, fps=25.0)
    expected = build_sequences(smooth_tracks(linked, 25.0), skeleton="coco", image_size=(96, 64), fps=25.0, source="t")
    np.testing.assert_allclose(smooth.keypoints, expected[0].keypoints, rtol=1e-6)  # parity with the two steps
    np.testing.assert_array_equal(smooth.keypoints[..., 2], raw.keypoints[..., 2])  # confidences untouched
    accel = [np.abs(np.diff(s.keypoints[:, :, 0], 2, axis=0)).mean() for s in (raw, smooth)]
    assert accel[0] == pytest.approx(4.0, abs=1e-4) and accel[1] < accel[0] / 3
