"""2D detector speed and agreement: the single-person ``mediapipe`` backend against ``mediapipe-multi``.

    OMP_NUM_THREADS=1 python benchmarks/bench_detect.py [VIDEO] [--frames N] [--detection-confidence X]
        [--mediapipe-model full|heavy]

Prints, for each backend, frames/s over the whole video and per number of people found in the frame (each frame's
``detect`` call timed), then the 2D agreement of the two on the frames where both see the same person (the
multi-person detection whose box overlaps the single-person one most, IoU >= 0.5): mean pixel distance over the 33
landmarks visible (> 0.5) in both, its median, and PCK (share of those landmarks within 5 % / 10 % of the
single-person box diagonal); and, as a proxy for accuracy without ground truth, how steady each is (median landmark
acceleration over the matched frames), for the image and the world (metric, hip-centred) landmarks.
``mediapipe-multi`` is compared raw and as ``extract_people`` delivers it: linked into people and smoothed per track.
Also the tracks ``mediapipe-multi`` + mocli's tracker make of the video.
"""

from __future__ import annotations

import argparse
import inspect
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from mocli.keypoints.base import Detection
from mocli.keypoints.extract import MAX_LINK_GAP_S, MIN_TRACK_FRAMES
from mocli.keypoints.linking import link_people
from mocli.keypoints.mediapipe_multi import MediaPipeMultiDetector
from mocli.keypoints.registry import DetectorOptions, create_detector
from mocli.keypoints.smoothing import smooth_tracks
from mocli.keypoints.tracking import iou_matrix
from mocli.utils.native_logs import native_stderr_muted
from mocli.video import probe_video, read_frames

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sports2d_demo.mp4"


def run(
    name: str, video: Path, frames: int | None, detection_confidence: float | None = None, **options
) -> tuple[list[list[Detection]], list[float]]:
    """Per-frame detections and seconds per ``detect`` call (model loading not counted)."""
    if detection_confidence is None:
        detector = create_detector(name, DetectorOptions(**options))
    else:  # mediapipe-multi with another person-detector threshold than its default
        detector = MediaPipeMultiDetector(options.get("max_people", 6), min_detection_confidence=detection_confidence,
                                          model=options.get("mediapipe_model", "full"))  # fmt: skip
    per_frame, seconds = [], []
    with native_stderr_muted():
        for frame in read_frames(video, max_frames=frames):
            t0 = time.perf_counter()
            per_frame.append(detector.detect(frame))
            seconds.append(time.perf_counter() - t0)
        detector.close()
    return per_frame, seconds


def report_speed(label: str, per_frame: list[list[Detection]], seconds: list[float]) -> None:
    by_count: dict[int, list[float]] = defaultdict(list)
    for dets, s in zip(per_frame, seconds, strict=True):
        by_count[len(dets)].append(s)
    parts = [f"{k} people: {len(v) / sum(v):5.1f} fps ({len(v)} frames)" for k, v in sorted(by_count.items())]
    print(f"{label:28s} all: {len(seconds) / sum(seconds):5.1f} fps | " + " | ".join(parts))


def _match(ref: Detection, dets: list[Detection]) -> Detection | None:
    iou = iou_matrix(ref.box[None], np.stack([d.box for d in dets]))[0]
    return dets[int(iou.argmax())] if iou.max() >= 0.5 else None


def agreement(single: list[list[Detection]], multi: list[list[Detection]]) -> None:
    dists, diag_norm, frames = [], [], 0
    for ref_dets, dets in zip(single, multi, strict=True):
        if not ref_dets or not dets:
            continue
        ref = ref_dets[0]
        iou = iou_matrix(ref.box[None], np.stack([d.box for d in dets]))[0]
        if iou.max() < 0.5:
            continue
        other = dets[int(iou.argmax())]
        vis = (ref.keypoints[:, 2] > 0.5) & (other.keypoints[:, 2] > 0.5)
        d = np.linalg.norm(ref.keypoints[vis, :2] - other.keypoints[vis, :2], axis=-1)
        diag = float(np.hypot(ref.box[2] - ref.box[0], ref.box[3] - ref.box[1]))
        dists.append(d)
        diag_norm.append(d / diag)
        frames += 1
    single_frames = sum(bool(d) for d in single)
    pairs = [(r[0], _match(r[0], m)) for r, m in zip(single, multi, strict=True) if r and m]
    pairs = [(r, m) for r, m in pairs if m is not None]
    if len(pairs) > 2:  # steadiness, a proxy for accuracy without ground truth: landmark acceleration (px/frame^2)
        accel = [np.abs(np.diff(np.stack([p[k].keypoints[:, :2] for p in pairs]), 2, axis=0)) for k in (0, 1)]
        print(
            f"median landmark acceleration (consecutive matched frames): mediapipe {np.median(accel[0]):.2f} px, "
            f"mediapipe-multi {np.median(accel[1]):.2f} px"
        )
        world = [np.stack([p[k].extras["world_landmarks33"] for p in pairs]) for k in (0, 1)]
        world_accel = [1000 * np.median(np.abs(np.diff(w, 2, axis=0))) for w in world]
        world_dist = 1000 * np.median(np.linalg.norm(world[0] - world[1], axis=-1))
        print(
            f"world landmarks: median acceleration mediapipe {world_accel[0]:.1f} mm, mediapipe-multi "
            f"{world_accel[1]:.1f} mm; median distance {world_dist:.1f} mm"
        )
    print(f"same person in {frames} frames (single-person backend found someone in {single_frames})")
    if frames:
        d, n = np.concatenate(dists), np.concatenate(diag_norm)
        print(
            f"landmark distance: mean {d.mean():.1f} px, median {np.median(d):.1f} px over {len(d)} landmarks; "
            f"PCK@0.05 {100 * (n < 0.05).mean():.1f} %, PCK@0.1 {100 * (n < 0.1).mean():.1f} % (of box diagonal)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=EXAMPLE)
    parser.add_argument("--frames", type=int, default=None, help="only the first N frames")
    parser.add_argument(
        "--detection-confidence", type=float, default=None, help="mediapipe-multi's person-detector threshold"
    )
    parser.add_argument("--mediapipe-model", choices=("full", "heavy"), default="full", help="landmark model of both")
    args = parser.parse_args()
    fps = probe_video(args.video).fps
    model = args.mediapipe_model
    print(f"landmark model: {model}")
    default = inspect.signature(MediaPipeMultiDetector).parameters["min_detection_confidence"].default
    print(f"mediapipe-multi person-detector threshold: {args.detection_confidence or default}")
    single, t_single = run("mediapipe", args.video, args.frames, mediapipe_model=model)
    report_speed("mediapipe (single)", single, t_single)
    one, t_one = run("mediapipe-multi", args.video, args.frames, args.detection_confidence, max_people=1,
                     mediapipe_model=model)  # fmt: skip
    report_speed("mediapipe-multi max_people=1", one, t_one)
    multi, t_multi = run("mediapipe-multi", args.video, args.frames, args.detection_confidence,
                         mediapipe_model=model)  # fmt: skip
    report_speed("mediapipe-multi max_people=6", multi, t_multi)
    t0 = time.perf_counter()
    linked, tracks = link_people(multi, min_frames=MIN_TRACK_FRAMES, fps=fps, max_link_gap_s=MAX_LINK_GAP_S)
    smoothed = smooth_tracks(linked, fps)
    print(f"linking + smoothing: {1000 * (time.perf_counter() - t0) / max(len(multi), 1):.2f} ms per frame")
    for label, dets in (
        ("max 1 person, raw", one),
        ("max 6 people, raw", multi),
        ("max 6, linked + smoothed", smoothed),
    ):
        print(f"agreement, mediapipe-multi ({label}) vs mediapipe:")
        agreement(single, dets)
    rows = [f"{t.track_id}: frames {t.frames[0]}-{t.frames[-1]} ({t.num_frames} detected)" for t in tracks]
    print(f"tracks (min {MIN_TRACK_FRAMES} frames, joined across misses up to {MAX_LINK_GAP_S} s): " + "; ".join(rows))
    _, unjoined = link_people(multi, min_frames=MIN_TRACK_FRAMES, max_link_gap_s=0)
    print(f"without joining: {len(unjoined)} tracks")


if __name__ == "__main__":
    main()
