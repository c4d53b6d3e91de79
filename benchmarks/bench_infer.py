"""End-to-end real-time factor of ``mocli infer`` (pose3d) on a video, split by stage, and peak memory.

Real-time factor = seconds of video / seconds of processing (>= 1 means real time). Stages are timed in one pass
the way the pipeline runs them: decode (OpenCV), detect (the 2D detector, per frame), lift (windows + flip TTA
through the model, and MediaPipe's 3D averaged in as ``--detector-3d``), export (joints3d.npz).

    python benchmarks/bench_infer.py                                  # example video, shipped weights, CPU
    python benchmarks/bench_infer.py clip.mp4 --model my.pt --device cuda --no-flip
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video", nargs="?", type=Path, default=REPO / "examples" / "sports2d_demo.mp4")
    ap.add_argument("--model", default=None, help="weights name or checkpoint (default: infer's)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto", help="auto (as mocli infer), fp32 or bf16")
    ap.add_argument("--no-flip", action="store_true")
    ap.add_argument(
        "--detector-3d", help="as infer's: auto or a weight 0-1 of MediaPipe's 3D mixed in (0: off; default: infer's)"
    )
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))

    import torch

    from mocli.api import load_lifter, model_clip_len
    from mocli.keypoints import create_detector
    from mocli.keypoints.sequence import build_sequences
    from mocli.lift import LiftOptions
    from mocli.models.registry import DEFAULT_VIDEO_WEIGHTS, default_weights, resolve_weights
    from mocli.pipeline import run_pose3d
    from mocli.results import write_joints_npz
    from mocli.utils.device import resolve_precision
    from mocli.utils.native_logs import native_stderr_muted
    from mocli.video import probe_video, read_frames

    info = probe_video(args.video)
    weights = resolve_weights(args.model) if args.model else default_weights(DEFAULT_VIDEO_WEIGHTS)  # as infer
    model = load_lifter(weights, device=args.device)  # as mocli infer (an STMO runs many-to-one)
    clip = model_clip_len(model)
    detector = create_detector("mediapipe")
    t = {"decode": 0.0, "detect": 0.0, "lift": 0.0, "export": 0.0}
    per_frame = []
    frames = read_frames(args.video)
    while True:
        t0 = time.perf_counter()
        frame = next(frames, None)
        t1 = time.perf_counter()
        t["decode"] += t1 - t0
        if frame is None:
            break
        with native_stderr_muted():  # as detect_video does for MediaPipe
            per_frame.append(detector.detect(frame))
        t["detect"] += time.perf_counter() - t1
    seq = build_sequences(per_frame, skeleton=detector.skeleton, image_size=info.image_size, fps=info.fps,
                          source="mediapipe", video=str(args.video), person="largest", max_gap=10,
                          multi_person=False)[0]  # fmt: skip
    t0 = time.perf_counter()
    precision = resolve_precision(torch.device(args.device), args.precision)
    opts = LiftOptions(clip_len=clip, flip=not args.no_flip, precision=precision)
    if args.detector_3d is not None:
        opts.detector_3d = args.detector_3d
    result = run_pose3d(seq, model, opts, args.device)  # as mocli infer, with MediaPipe's 3D averaged in
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    t1 = time.perf_counter()
    t["lift"] = t1 - t0
    with tempfile.TemporaryDirectory() as tmp:
        write_joints_npz(result, Path(tmp) / "joints3d.npz")
    t["export"] = time.perf_counter() - t1
    total = sum(t.values())
    seconds = len(per_frame) / info.fps
    threads = torch.get_num_threads()
    print(f"video: {args.video.name}, {len(per_frame)} frames, {seconds:.2f} s at {info.fps:g} fps; "
          f"model {weights.name} (clip {clip}), {args.device} {precision}, torch threads {threads}")  # fmt: skip
    for stage, sec in t.items():
        print(f"  {stage:7} {sec:7.2f} s  {len(per_frame) / sec if sec else float('inf'):8.1f} frames/s")
    print(f"  total   {total:7.2f} s  {len(per_frame) / total:8.1f} frames/s   real-time factor {seconds / total:.2f}")
    print(f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
