"""Benchmark of ``mocli prepare video``: decoding and detection speed, and memory against video length.

Measures, on the example video (1768x994, 30 fps, 230 frames) and on a copy 10x longer (its frames written 10 times
into a temporary video):

- decode only: frames/s of ``mocli.video.read_frames``;
- decode + detect: frames/s of ``mocli.keypoints.extract_keypoints`` with MediaPipe (tracking and H36M conversion
  included);
- peak RSS of each run, each in its own process: it must stay flat when the video is 10x longer.

Usage::

    python benchmarks/bench_prepare.py [--video examples/sports2d_demo.mp4] [--repeat 10] [--skip-long-detect]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_worker(mode: str, video: Path) -> dict:
    """Time one mode on one video in this process; peak RSS in MiB (ru_maxrss is KiB on Linux)."""
    from mocli.video import read_frames

    start = time.perf_counter()
    if mode == "decode":
        frames = sum(1 for _ in read_frames(video))
    else:
        from mocli.keypoints import create_detector, extract_keypoints

        detector = create_detector("mediapipe")
        start = time.perf_counter()
        (seq,) = extract_keypoints(video, detector)
        frames = seq.num_frames
        detector.close()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"mode": mode, "frames": frames, "seconds": seconds, "fps": frames / seconds, "peak_rss_mib": peak}


def measure(mode: str, video: Path) -> dict:
    """Run ``mode`` on ``video`` in a fresh Python so that peak RSS is its own."""
    cmd = [sys.executable, __file__, "--worker", mode, "--video", str(video)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return json.loads(out.strip().splitlines()[-1])


def write_repeated(video: Path, repeat: int, out: Path) -> int:
    """Write every frame of ``video`` ``repeat`` times over (in order) into ``out``; returns the frame count."""
    import cv2

    from mocli.video import probe_video, read_frames

    info = probe_video(video)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), info.fps, info.image_size)
    count = 0
    for _ in range(repeat):
        for frame in read_frames(video):
            writer.write(frame)
            count += 1
    writer.release()
    return count


def _fourcc(video: Path) -> str:
    import cv2

    cap = cv2.VideoCapture(str(video))
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    cap.release()
    return "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", type=Path, default=ROOT / "examples" / "sports2d_demo.mp4")
    parser.add_argument("--repeat", type=int, default=10, help="length factor of the long video")
    parser.add_argument("--skip-long-detect", action="store_true", help="no detection on the long video")
    parser.add_argument("--worker", choices=["decode", "detect"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_worker(args.worker, args.video)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        long_video = Path(tmp) / f"x{args.repeat}.mp4"
        start = time.perf_counter()
        n = write_repeated(args.video, args.repeat, long_video)
        print(
            f"wrote {n} frames ({args.repeat}x) in {time.perf_counter() - start:.1f} s; source codec "
            f"{_fourcc(args.video)}, long copy {_fourcc(long_video)} (codecs decode at different speeds)"
        )
        runs = [("decode", args.video, "1x"), ("decode", long_video, f"{args.repeat}x"), ("detect", args.video, "1x")]
        if not args.skip_long_detect:
            runs.append(("detect", long_video, f"{args.repeat}x"))
        print(f"{'mode':<8} {'length':>6} {'frames':>7} {'seconds':>8} {'frames/s':>9} {'peak RSS MiB':>13}")
        for mode, video, label in runs:
            r = measure(mode, video)
            row = f"{mode:<8} {label:>6} {r['frames']:>7} {r['seconds']:>8.1f} {r['fps']:>9.1f}"
            print(f"{row} {r['peak_rss_mib']:>13.0f}", flush=True)


if __name__ == "__main__":
    main()
