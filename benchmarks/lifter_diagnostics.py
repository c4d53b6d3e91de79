"""Where a lifter's error lies on motion capture: per axis (x, y, depth), per joint and in motion, against the truth.

``mocli eval mocap`` gives MPJPE; this splits it. For a sample of sequences (the validation split unless
``--split``) seen through the same seeded virtual cameras as ``eval mocap`` (clean 2D, flip test-time
augmentation), in mm at the root depth, root-relative:

- mean absolute error per camera axis (x right, y down, depth forward); "copy 2D" is the error of echoing the input
  x, y with zero relative depth, the floor any lifter should beat;
- spread of the joints over time per axis (std, mm): a lifter that stays near an average pose shows a depth spread
  far below the truth's;
- PA-MPJPE per joint (mm): which joints carry the error;
- the skeleton properties of ``mocli.metrics.skeleton_plausibility`` (bone-length CV, left/right asymmetry,
  acceleration, speed) for the prediction and for the ground truth.

``--split`` scores another split (HDM05 has train and test: its training actors against its held-out ones) and
``--action`` keeps the sequences whose action contains a word (``--action squat``).

    python benchmarks/lifter_diagnostics.py --data bandai.h5 --data cmu_dance.h5 --data reactidle.h5 \\
        --model weights/dstformer-small.mocap.pt [--sequences 40] [--split val] [--action WORD] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from compare_mediapipe import print_plausibility  # noqa: E402

from mocli.api import load_lifter, model_clip_len  # noqa: E402
from mocli.evaluation.mocap import (  # noqa: E402
    MocapOptions,
    MocapWindows,
    build_windows,
    load_mocap_sequences,
    sequence_camera,
)
from mocli.evaluation.runner import RunOptions, gather_frames, predict_windows  # noqa: E402
from mocli.metrics import procrustes_align  # noqa: E402
from mocli.metrics import skeleton_plausibility as plausibility  # noqa: E402
from mocli.skeleton import H36M_17  # noqa: E402

AXES = ("x", "y", "depth")


def root_relative_mm(values: np.ndarray, windows: MocapWindows) -> np.ndarray:
    """(N,L,17,3) normalised window values -> (T,17,3) mm, root-relative, frame t from the window that scores it."""
    scale = 1000.0 * windows.factors[..., None, None]
    return gather_frames(list((values - values[:, :, :1]) * scale), windows.plan)


def axis_summary(pred: np.ndarray, truth: np.ndarray) -> dict[str, dict[str, float]]:
    """Per-axis mean |error| and spread over time (mm) of (T,17,3) root-relative joints, for one sequence."""
    err = np.abs(pred - truth).mean((0, 1))
    return {
        "abs_error_mm": dict(zip(AXES, err.tolist(), strict=True)),
        "spread_mm": dict(zip(AXES, pred.std(0).mean(0).tolist(), strict=True)),
        "truth_spread_mm": dict(zip(AXES, truth.std(0).mean(0).tolist(), strict=True)),
    }


def joint_pa_errors(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(T,17,3) prediction and truth -> (17,) mean distance per joint after each frame's similarity Procrustes
    alignment of the prediction onto the truth (the per-joint split of PA-MPJPE), in their units."""
    aligned = procrustes_align(np.asarray(pred, np.float64), np.asarray(truth, np.float64))
    return np.linalg.norm(aligned - truth, axis=-1).mean(axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, action="append", required=True, help="mocli HDF5 file")
    ap.add_argument("--model", default="dstformer-small.mocap", help="lifter checkpoint or weights name")
    ap.add_argument("--sequences", type=int, default=40, help="sequences sampled (0: all)")
    ap.add_argument("--split", default="val", help="split scored: val, train or test")
    ap.add_argument("--action", default="", help="only sequences whose action contains this word")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    model = load_lifter(args.model)
    opts = MocapOptions(clip_len=model_clip_len(model), seed=args.seed)
    run = RunOptions(clip_len=opts.clip_len, flip=True, batch_size=8)
    seqs = [s for s in load_mocap_sequences(args.data, split=args.split) if args.action in s.action]
    if not seqs:
        sys.exit(f"no {args.split} sequence with an action containing {args.action!r}")
    if 0 < args.sequences < len(seqs):
        pick = np.random.default_rng(args.seed).choice(len(seqs), args.sequences, replace=False)
        seqs = [seqs[i] for i in sorted(pick)]
    rows: dict[str, list] = {"pred": [], "truth": [], "copy2d": [], "axes": [], "joints": [], "frames": []}
    for seq in seqs:
        windows = build_windows(seq, sequence_camera(seq, opts.seed, opts.view), opts, None)
        pred = root_relative_mm(predict_windows(model, windows.inputs, run), windows)
        truth = root_relative_mm(windows.targets, windows)
        echo = windows.inputs.copy()
        echo[..., 2] = 0.0  # the input's x, y with zero relative depth
        copy2d = root_relative_mm(echo, windows)
        rows["pred"].append(plausibility(pred / 1000))
        rows["truth"].append(plausibility(truth / 1000))
        rows["copy2d"].append(np.abs(copy2d - truth).mean((0, 1)))
        rows["axes"].append(axis_summary(pred, truth))
        rows["joints"].append(joint_pa_errors(pred, truth))
        rows["frames"].append(len(truth))

    w = np.asarray(rows["frames"], float) / sum(rows["frames"])

    def mean_of(items, key=None, sub=None):
        vals = [it[key][sub] if sub else (it[key] if key else it) for it in items]
        return np.tensordot(w, np.asarray(vals, float), axes=1)

    result = {
        "model": str(args.model),
        "sequences": len(seqs),
        "frames": int(sum(rows["frames"])),
        "abs_error_mm": {a: float(mean_of(rows["axes"], "abs_error_mm", a)) for a in AXES},
        "copy2d_abs_error_mm": dict(zip(AXES, mean_of(rows["copy2d"]).tolist(), strict=True)),
        "spread_mm": {a: float(mean_of(rows["axes"], "spread_mm", a)) for a in AXES},
        "truth_spread_mm": {a: float(mean_of(rows["axes"], "truth_spread_mm", a)) for a in AXES},
        "joint_pa_mpjpe_mm": dict(zip(H36M_17.joint_names, mean_of(rows["joints"]).tolist(), strict=True)),
        "prediction": {k: float(mean_of(rows["pred"], k)) for k in rows["pred"][0]},
        "truth": {k: float(mean_of(rows["truth"], k)) for k in rows["truth"][0]},
    }
    what = f"{args.split} sequences" + (f" of actions with {args.action!r}" if args.action else "")
    print(f"{args.model}: {result['sequences']} {what}, {result['frames']} frames (clean 2D, flip TTA)")
    print(f"{'mm':24} {'x':>8} {'y':>8} {'depth':>8}")
    for label, key in (("abs error", "abs_error_mm"), ("abs error, copy 2D", "copy2d_abs_error_mm"),
                       ("spread, prediction", "spread_mm"), ("spread, truth", "truth_spread_mm")):  # fmt: skip
        print(f"{label:24} " + " ".join(f"{result[key][a]:>8.1f}" for a in AXES))
    print()
    print("PA-MPJPE per joint (mm)")
    for name, value in result["joint_pa_mpjpe_mm"].items():
        print(f"  {name:16} {value:8.1f}")
    print()
    print_plausibility({k: result[k] for k in ("prediction", "truth")}, width=12)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
