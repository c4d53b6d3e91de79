"""mocli's 3D joints vs MediaPipe's own metric 3D ("world landmarks") on a real video, without ground truth.

Real video has no 3D ground truth here, so this compares properties every true 3D skeleton has:

- bone-length constancy: a person's bones do not change length; the coefficient of variation (std / mean over
  frames) of each of the 16 H36M bones, averaged (lower is better);
- left/right symmetry: |left - right| / mean for thigh, shin, upper arm and forearm, per frame (lower is better);
- jitter: mean acceleration of the root-relative joints in mm/frame^2 (lower is smoother; read it with the mean
  speed, which shows that the motion itself is kept).

The properties are ``mocli.metrics.skeleton_plausibility``. Both come from the same ``joints3d.npz`` of
``mocli infer`` (MediaPipe's landmarks are carried there as ``world_landmarks33``, mapped to H36M-17 here), on the
frames where both exist.

    python benchmarks/compare_mediapipe.py out/sports2d_demo/joints3d.npz [--json FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mocli.metrics import skeleton_plausibility as plausibility
from mocli.skeleton import to_h36m


def print_plausibility(rows: dict[str, dict[str, float | None]], note: str = "", width: int = 28) -> None:
    """One line per named result of ``plausibility`` ("-" for a value it has not: too few frames)."""
    print(f"{'':{width}} {'bone CV %':>10} {'asym %':>8} {'accel mm/f2':>12} {'speed mm/f':>11}   {note}".rstrip())
    keys_widths = (("bone_length_cv_pct", 10), ("asymmetry_pct", 8), ("accel_mm_per_frame2", 12),
                   ("speed_mm_per_frame", 11))  # fmt: skip
    for name, r in rows.items():
        cells = ("-" if r[k] is None else f"{r[k]:.2f}" for k, _ in keys_widths)
        print(f"{name:{width}} " + " ".join(f"{c:>{w}}" for c, (_, w) in zip(cells, keys_widths, strict=True)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("joints", type=Path, help="joints3d.npz written by mocli infer with the mediapipe detector")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    data = np.load(args.joints)
    if "world_landmarks33" not in data:
        raise SystemExit(f"{args.joints}: no world_landmarks33 (run infer with --detector mediapipe)")
    ours = data["joints3d"].astype(np.float64)
    mp = to_h36m(data["world_landmarks33"].astype(np.float64), "mediapipe", conf=False)
    both = np.isfinite(ours).all((1, 2)) & np.isfinite(mp).all((1, 2))
    rows = {"mocli": plausibility(ours[both]), "mediapipe world landmarks": plausibility(mp[both])}
    rows["frames"] = int(both.sum())
    print_plausibility({k: rows[k] for k in ("mocli", "mediapipe world landmarks")}, f"({both.sum()} frames)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
