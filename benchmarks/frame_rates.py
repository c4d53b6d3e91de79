"""How the input's frame rate affects the lifter: held-out people at 24 to 120 frames/s.

Video comes at 24, 25, 30, 50, 60 and (phones' slow motion, sports cameras) 100-240 frames/s, and ``mocli infer``
lifts it at its own rate, while the lifter saw clips played at 15-60 frames/s in training (``data.speed_fps`` of the
generalisation preset). HDM05 is recorded at 120 frames/s, so its held-out actors (``mocli eval generalisation``'s
``people`` group, the benchmark's seeded cameras) can be seen at 120 / k for every k: 120, 60, 40, 30 and 24
frames/s.

Unlike ``eval generalisation`` (windows scored one by one) this runs ``mocli infer``'s own lifting
(``mocli.lift.lift_keypoints``: the whole sequence in blended windows, flip test-time augmentation, scaled to an
average body, one length per bone) on the 2D joints projected through each sequence's seeded camera (clean,
pixels), so ``--max-fps`` (infer's ``--max-lift-fps``) is measured as a user gets it: an input faster than F
frames/s is lifted as k = ceil(R / F) interleaved sequences (frames p, p+k, ...), merged back. Scored per frame,
root-relative, in mm: PA-MPJPE; MPJPE after one least-squares scale per sequence (the lifted size is an average
body's); acceleration error (mm/frame², at the input's rate, so it compares settings at one rate, not rates).

    python benchmarks/frame_rates.py --data hdm05.h5 [--model M] [--fps 24,30,40,60,120] [--max-fps 60] [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mocli.api import load_lifter  # noqa: E402
from mocli.data.cameras import project_perspective, world_to_camera  # noqa: E402
from mocli.data.holdout import held_out_reason  # noqa: E402
from mocli.evaluation.generalisation import STANDARD_VIEW  # noqa: E402
from mocli.evaluation.mocap import MocapSequence, load_mocap_sequences, sequence_camera, subsample_sequence  # noqa: E402
from mocli.evaluation.runner import model_clip_len  # noqa: E402
from mocli.lift import LiftOptions, lift_keypoints, lift_phases  # noqa: E402
from mocli.metrics import acceleration_error, pa_mpjpe  # noqa: E402
from mocli.models.registry import default_weights, resolve_weights  # noqa: E402


def lift_sequence(model, seq: MocapSequence, seed: int, options: LiftOptions) -> tuple[np.ndarray, np.ndarray]:
    """(pred, truth) (T,17,3) metres, root-relative, camera axes: ``seq`` seen by its seeded camera, lifted by
    ``mocli infer``'s lifting at the sequence's frame rate."""
    camera = sequence_camera(seq, seed, STANDARD_VIEW)
    cam = world_to_camera(seq.joints, camera.R, camera.t)
    px = project_perspective(cam, camera.focal, camera.centre)
    keypoints = np.concatenate([px, np.ones(px.shape[:-1] + (1,))], axis=-1).astype(np.float32)
    pred = lift_keypoints(model, keypoints, options, fps=seq.fps).astype(np.float64)
    return pred, cam - cam[:, :1]


def scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Sums over frames (mm): PA-MPJPE, MPJPE after one least-squares scale, and the acceleration error's."""
    scale = float((pred * truth).sum() / max((pred * pred).sum(), 1e-12))
    pred_s = pred * scale
    per_frame = np.linalg.norm(pred_s - truth, axis=-1).mean(-1)
    accel = acceleration_error(pred_s * 1000, truth * 1000) if len(pred) > 2 else 0.0
    return {
        "pa_mpjpe": float(pa_mpjpe(pred * 1000, truth * 1000)) * len(pred),
        "mpjpe_scaled": float(per_frame.sum() * 1000),
        "accel": float(accel) * max(len(pred) - 2, 0),
        "frames": len(pred),
        "accel_frames": max(len(pred) - 2, 0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, action="append", required=True, help="hdm05.h5 (mocli prepare dataset amc)")
    ap.add_argument("--model", default=None, help="weights name or checkpoint (default: the shipped lifter)")
    ap.add_argument("--fps", default="24,30,40,60,120", help="rates to score, each 120 / k for HDM05")
    ap.add_argument(
        "--max-fps",
        type=float,
        default=LiftOptions.max_fps,
        help="lift faster inputs as interleaved sequences at <= F (0: never; infer's --max-lift-fps)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    path = resolve_weights(args.model) if args.model else default_weights()
    model = load_lifter(path, device="cpu")
    options = LiftOptions(clip_len=model_clip_len(model), max_fps=args.max_fps)
    people = [s for s in load_mocap_sequences(args.data, split=None)
              if held_out_reason(s.source, s.name, s.subject, s.action) == "person"]  # fmt: skip
    if not people:
        sys.exit("no held-out HDM05 actors (mm, tr) in the data: pass hdm05.h5")
    print(f"{path.name}: {len(people)} held-out sequences, max lift rate {args.max_fps:g} frames/s", flush=True)
    rows = []
    for fps in [float(f) for f in args.fps.split(",")]:
        total: dict[str, float] = {}
        for seq in people:
            for key, value in scores(*lift_sequence(model, subsample_sequence(seq, fps), args.seed, options)).items():
                total[key] = total.get(key, 0.0) + value
        row = {
            "fps": fps, "phases": lift_phases(fps, args.max_fps), "frames": int(total["frames"]),
            "pa_mpjpe": total["pa_mpjpe"] / total["frames"], "mpjpe_scaled": total["mpjpe_scaled"] / total["frames"],
            "accel": total["accel"] / max(total["accel_frames"], 1),
        }  # fmt: skip
        rows.append(row)
        print(
            f"{fps:6g} fps  phases {row['phases']}  frames {row['frames']:6d}  PA-MPJPE {row['pa_mpjpe']:6.1f}  "
            f"MPJPE (scaled) {row['mpjpe_scaled']:6.1f}  accel {row['accel']:5.2f} mm/frame^2",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps({"model": str(path), "max_fps": args.max_fps, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
