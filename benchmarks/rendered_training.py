"""Training data from rendered motion capture: mocap truth in the camera paired with the detector's own 2D.

A lifter trained on mocap sees 2D made by projecting the joints (with synthetic detector noise); at inference it sees
MediaPipe's keypoints, which differ in their own ways (where its hips, shoulders and head are, what it does with
crossed limbs, foreshortening and fast motion). This script makes the pairs with the machinery of
``rendered_mocap.py`` (``raster.py``), so that the lifter can learn the detector's real errors:

1. the training sequences of mocli HDF5 mocap files (``mocli prepare dataset bvh|amc``): split ``train`` in their
   file and not held out (``mocli.data.holdout``, as the pretraining with ``data.holdout = true`` leaves them out);
   a seeded choice of ``--sequences`` spread over the input files (longest first within a file, as
   ``rendered_mocap.pick_sequences``), each at about 30 fps (``mocli.evaluation.mocap.subsample_sequence``) and cut
   to ``--frames`` frames: its first (``--start first``) or a window starting at a frame drawn uniformly with
   ``--seed`` and the name (``--start random``: long recordings, ReActIdle's minutes and CMU's dances, give a
   different stretch of motion to each file instead of the same first seconds);
2. one random camera per sequence (``mocli.evaluation.mocap.sequence_camera``, seeded by ``--seed`` and the name),
   by default over the ranges of the pretraining preset ``pretrain_dstformer-small_generalise`` (yaw 0-360, pitch
   -20 to 60 deg, roll up to 15 deg, aim point 0.5 m below to 0.7 m above the mean pelvis) where a render can show
   them (2.5-8 m, fov 30-90 deg; 640x640 px as ``rendered_mocap.py``); the camera then comes nearer along its
   optical axis while the body is smaller than ``--min-body`` pixels (``training_views.bring_closer``: MediaPipe
   hardly finds smaller ones, ``MIN_BODY_PX``) and backs off until every joint of every frame, padded by ``--pad``
   metres for hands, feet and hair, is inside the image;
3. the Anny body fitted to the joints and drawn over a random background (``rendered_mocap.render_sequence``) in
   an outfit and skin tone of its own (``training_views.random_outfit``; ``--look person``: the benchmark's person);
4. ``mocli infer``'s detection step on the video (``rendered_infer.detect_person``: ``mocli.pipeline.load_people``
   with the MediaPipe detector, H36M-17 pixels + confidence), nothing else;
5. one sequence per rendered video in ``--out`` (a mocli HDF5 file, ``mocli.data.h5``, written under a temporary
   name and renamed at the end), split ``train``, source ``rendered-<source>``:
   ``joints3d`` (T,17,3) float32 metres, the mocap joints in the camera (frame ``camera``: x right, y down,
   z forward); ``keypoints2d`` (T,17,3) float32, the detector's x, y pixels + confidence, all zeros (confidence 0)
   where it found nobody (interpolated frames included), never NaN; attributes ``fps``, ``subject``, ``action``,
   ``image_size`` (w, h), ``focal_px``, ``principal_x_px``, ``principal_y_px`` (the renderer's pinhole: projecting
   ``joints3d`` with them gives the pixels the body was drawn at), and provenance: ``original_file``,
   ``original_sequence``, ``original_fps``, ``original_first_frame`` (native rate), ``camera_yaw_deg``,
   ``camera_pitch_deg``, ``camera_roll_deg``, ``camera_distance_m`` (camera centre to the mean pelvis),
   ``camera_fov_deg``, ``body_px``, ``detection_rate``, ``fit_error_mm``.

Caveats: the appearance is synthetic (plain coloured clothes, no texture, hair or loose clothes, a smooth
background, no floor or shadows), and what the lifter learns from these pairs is MediaPipe's behaviour on such
renders, which is not all of its behaviour on real video; the pixels show the Anny fit of the joints, not the
mocap skeleton (``fit_error_mm``); the truth keeps the rig's own trunk and head joints while MediaPipe's are derived
from its landmarks (that offset is part of what is learnt); cameras below the pelvis may stand below the (absent)
floor.

    OMP_NUM_THREADS=1 python benchmarks/rendered_training.py --data bandai.h5 --data hdm05.h5 --sequences 200
        [--frames 243] [--seed 0] [--pitch LO,HI] [--distance LO,HI] [--fov LO,HI] [--roll DEG] [--aim LO,HI]
        [--pad M] [--min-body PX] [--look outfits|person] [--start first|random] [--keep-videos DIR]
        --out rendered_train.h5
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from detector_pairs import detector_keypoints, unswap_sides  # benchmarks/detector_pairs.py, beside this script
from rendered_infer import detect_person, detection_options
from rendered_mocap import load_body, pick_sequences, render_sequence
from rendered_views import describe_view
from training_views import (
    MIN_BODY_PX,
    PAD_M,
    TRAIN_VIEW,
    body_size_px,
    camera_angles,
    make_training_view,
    random_outfit,
    training_camera,
)

from mocli.data.cameras import Camera, ViewRange, project_perspective
from mocli.data.holdout import is_held_out
from mocli.errors import InputError, MocliError

FPS = 30.0  # the rate sequences are rendered at (about: every k-th frame of the native rate)
MIN_FRAMES = 3
KIND = "rendered"


# --- sequences (metadata only) ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """A training sequence of an input file: ``num_frames`` at about ``FPS`` (its native ``fps`` subsampled)."""

    path: Path
    name: str
    source: str
    subject: str
    action: str
    fps: float
    num_frames: int


def frame_step(fps: float, rate: float = FPS) -> int:
    """k of ``subsample_sequence`` to about ``rate``: every k-th frame of ``fps``, k = round(fps / rate) >= 1."""
    return max(int(round(fps / rate)), 1)


def frames_at(num_frames: int, fps: float, rate: float = FPS) -> int:
    """Frames left of ``num_frames`` at ``fps`` after ``subsample_sequence`` to about ``rate`` (``frame_step``)."""
    return len(range(0, num_frames, frame_step(fps, rate)))


def training_candidates(paths: list[Path], min_frames: int = MIN_FRAMES) -> list[Candidate]:
    """The sequences the pretraining (``data.holdout = true``) uses from mocli HDF5 files: split ``train``, a
    ``joints3d`` array, not held out (``mocli.data.holdout.is_held_out`` on the same attributes as
    ``mocli.data.sources.load_sources``), at least ``min_frames`` frames at ``FPS`` (a sequence shorter than the
    training clip gives no clip). Nothing but metadata is read.

    Raises:
        InputError: an unreadable file.
    """
    from mocli.data.h5 import open_dataset

    out = []
    for path in paths:
        with open_dataset(path) as ds:
            try:
                for ref in ds.sequences("train"):
                    attrs = ref.attrs
                    source = str(attrs.get("source") or ds.source)
                    subject, action = str(attrs.get("subject", "")), str(attrs.get("action", ""))
                    if "joints3d" not in ref.array_names or is_held_out(source, ref.name, subject, action):
                        continue
                    frames = frames_at(ref.num_frames, ref.fps)
                    if frames >= max(min_frames, MIN_FRAMES):
                        out.append(Candidate(Path(path), ref.name, source or Path(path).stem, subject, action,
                                             ref.fps, frames))  # fmt: skip
            except (OSError, KeyError, ValueError) as e:
                raise InputError(f"{path}: cannot read sequences ({e})") from None
    return out


def pick_training(candidates: list[Candidate], count: int, frames: int, seed: int) -> list[Candidate]:
    """``count`` candidates spread over the input files (``rendered_mocap.pick_sequences`` grouped by file: each
    file's shuffled with ``seed``, those with at least ``frames`` frames first, files taken in turn)."""
    return pick_sequences(candidates, count, frames, seed, group=lambda c: str(c.path))


def output_names(chosen: list[Candidate]) -> list[str]:
    """One unique sequence name per candidate: '<source>:<name>', '~2', '~3' appended to repeats."""
    seen: Counter[str] = Counter()
    names = []
    for c in chosen:
        base = f"{c.source}:{c.name}"
        seen[base] += 1
        names.append(base if seen[base] == 1 else f"{base}~{seen[base]}")
    return names


def window_start(c: Candidate, frames: int, seed: int, name: str, how: str = "first") -> int:
    """The first frame (at about ``FPS``) of the ``frames`` rendered of a candidate: 0 for ``how`` 'first'; for
    'random', uniform over 0..num_frames - frames (0 when shorter) from a Generator seeded by ``(seed,
    crc32(name), 2)``."""
    if how == "first":
        return 0
    if how != "random":
        raise InputError(f"--start {how!r}: give first or random")
    rng = np.random.default_rng([seed, zlib.crc32(name.encode()), 2])
    return int(rng.integers(0, max(c.num_frames - frames, 0) + 1))


def load_candidate(c: Candidate, name: str, frames: int, start: int = 0):
    """The candidate's world joints as a ``MocapSequence`` named ``name``, at about ``FPS``, ``frames`` from frame
    ``start`` (at that rate).

    Raises:
        InputError: joints not in a world frame (no camera can be placed) or not finite.
    """
    from mocli.data.h5 import open_dataset
    from mocli.evaluation.mocap import MocapSequence, subsample_sequence

    with open_dataset(c.path) as ds:
        s = ds[c.name].load()
    if s.frame != "world":
        raise InputError(f"{c.path.name}:{c.name}: joints3d in the {s.frame!r} frame, not a world frame")
    joints = np.asarray(s.joints3d, np.float64)
    seq = MocapSequence(name, c.source, c.action or "-", float(s.fps), joints, up_axis=s.up_axis or "y",
                        subject=c.subject)  # fmt: skip
    seq = subsample_sequence(seq, FPS)
    seq = replace(seq, joints=seq.joints[start : start + frames])
    if not len(seq.joints):
        raise InputError(f"{c.path.name}:{c.name}: no frame from frame {start}")
    if not np.isfinite(seq.joints).all():
        raise InputError(f"{c.path.name}:{c.name}: joints3d holds NaN or infinite values")
    return seq


# --- pairs -----------------------------------------------------------------------------------------------------------


def paired_sequence(name: str, c: Candidate, seq, gt_cam: np.ndarray, keypoints: np.ndarray, detected: np.ndarray,
                    camera: Camera, fit_error_mm: float, swapped: dict[str, float] | None = None,
                    first_frame: int = 0, detector: str = "mediapipe"):  # fmt: skip
    """The ``mocli.data.h5.Sequence`` written for one rendered sequence.

    Args:
        name: the output name; c: where it came from; seq: the rendered ``MocapSequence`` (world joints, fps).
        gt_cam: (n,17,3) metres, camera frame; keypoints: (n,17,3) pixels + confidence; detected: (n,) bool.
        camera: the renderer's camera; fit_error_mm: the Anny fit's mean joint error.
        swapped: per limb pair, the share of detected frames whose sides were exchanged (``unswap_sides``).
        first_frame: the original's frame (native rate) the rendered frames start at.
        detector: the 2D's detector, the sequence's 'detector' attribute (mediapipe, mediapipe-heavy).
    """
    from mocli.data.h5 import Sequence

    angles = camera_angles(camera, np.nanmean(seq.joints[:, 0], axis=0), seq.up_axis)
    extra = {
        "focal_px": float(camera.focal),
        "principal_x_px": float(camera.centre[0]),
        "principal_y_px": float(camera.centre[1]),
        "original_file": c.path.name,
        "original_sequence": c.name,
        "original_fps": float(c.fps),
        "original_first_frame": int(first_frame),
        **{f"camera_{k}": round(v, 4) for k, v in angles.items()},
        "body_px": round(body_size_px(camera, gt_cam), 1),
        "detection_rate": float(detected.mean()) if len(detected) else 0.0,
        "detector": detector,
        "fit_error_mm": round(float(fit_error_mm), 2),
        **{f"sides_swapped_{k}": round(float(v), 4) for k, v in (swapped or {}).items()},
    }
    return Sequence(name=name, fps=float(seq.fps), keypoints2d=keypoints.astype(np.float32),
                    joints3d=gt_cam.astype(np.float32), frame="camera", up_axis=None, split="train",
                    source=f"rendered-{c.source}", subject=c.subject, action=c.action,
                    image_size=tuple(int(v) for v in camera.image_size), extra=extra)  # fmt: skip


@dataclass
class Setup:
    """What every sequence shares: the body model and its (F,3) colours, the fit's options, the camera ranges, the
    seed, the frames per sequence, the detection step (``detect(video)`` -> KeypointSequence or None), the folder
    videos are rendered in and whether they are kept there, the padding of the joints in the image (metres), and
    whether the detector's left/right mix-ups are put right (``unswap_sides``), the smallest body in pixels
    (``bring_closer``; 0: as drawn), whether each sequence gets its own ``random_outfit`` and where the frames start
    (``window_start``: 'first' or 'random'), and the name the sequences give the detector."""

    body: object
    colours: np.ndarray
    fit_options: object
    view: ViewRange
    seed: int
    frames: int
    detect: Callable[[Path], object]
    work: Path
    keep_videos: bool = False
    pad_m: float = PAD_M
    unswap: bool = True
    min_body_px: float = 0.0
    outfits: bool = False
    start: str = "first"
    detector: str = "mediapipe"  # the sequences' 'detector' attribute: mediapipe, or mediapipe-heavy (its heavy model)


@dataclass
class Made:
    """One rendered sequence: what is written, and its frames, detection rate and seconds (fit, render, detect)."""

    sequence: object
    frames: int
    detection_rate: float
    seconds: dict[str, float]


def make_pair(c: Candidate, name: str, setup: Setup) -> Made:
    """Load, place a camera, render and detect one candidate; the video is deleted unless kept."""
    start = window_start(c, setup.frames, setup.seed, name, setup.start)
    seq = load_candidate(c, name, setup.frames, start)
    camera = training_camera(seq, setup.seed, setup.view, setup.pad_m, setup.min_body_px)
    colours = setup.colours
    if setup.outfits:
        colours = random_outfit(colours, np.random.default_rng([setup.seed, zlib.crc32(name.encode()), 1]))
    rendered = render_sequence(seq, setup.body, colours, setup.work, setup.seed, setup.fit_options, setup.view,
                               camera)  # fmt: skip
    t0 = time.perf_counter()
    try:
        found = setup.detect(rendered.video)
    finally:
        if not setup.keep_videos:
            rendered.video.unlink(missing_ok=True)
    seconds = {**rendered.seconds, "detect": time.perf_counter() - t0}
    keypoints, detected = detector_keypoints(found, len(rendered.gt_cam))
    n = len(keypoints)
    swapped = None
    if setup.unswap:
        truth_px = project_perspective(rendered.gt_cam[:n], camera.focal, camera.centre)
        keypoints, frames = unswap_sides(keypoints, truth_px)
        swapped = {k: float(v[detected].mean()) if detected.any() else 0.0 for k, v in frames.items()}
    fit_error = np.nanmean(rendered.fit_error_mm) if np.isfinite(rendered.fit_error_mm).any() else np.nan
    pair = paired_sequence(name, c, seq, rendered.gt_cam[:n], keypoints, detected, camera, fit_error, swapped,
                           start * frame_step(c.fps), setup.detector)  # fmt: skip
    return Made(pair, n, pair.extra["detection_rate"], seconds)


# --- command ---------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, action="append", required=True, help="mocli HDF5 mocap file (repeatable)")
    ap.add_argument("--sequences", type=int, required=True, help="sequences to render, spread over the files")
    ap.add_argument("--frames", type=int, default=243, help="at most this many frames per sequence (see --start)")
    ap.add_argument("--start", choices=("first", "random"), default="first", help="render each sequence's first "
                    "frames, or a window starting at a random frame (seeded by --seed and the name)")  # fmt: skip
    ap.add_argument("--min-frames", type=int, default=81, help="leave out sequences shorter than this at ~30 fps "
                    "(default 81: the shipped recipe's clip; shorter ones give no training clip)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=0, help="sequence choice, cameras and backgrounds")
    v = TRAIN_VIEW
    ap.add_argument("--pitch", help=f"camera elevation LO,HI, degrees, positive looking down; a negative LO needs "
                    f"'=': --pitch=-10,30 (default {v.pitch_deg[0]:g},{v.pitch_deg[1]:g})")  # fmt: skip
    ap.add_argument("--distance", help=f"camera distance LO,HI, metres, before backing off to fit the body in "
                    f"(default {v.distance_m[0]:g},{v.distance_m[1]:g})")  # fmt: skip
    ap.add_argument(
        "--fov", help=f"horizontal field of view LO,HI, degrees (default {v.fov_deg[0]:g},{v.fov_deg[1]:g})"
    )
    ap.add_argument(
        "--roll", type=float, help=f"camera roll up to this many degrees either way (default {v.roll_deg:g})"
    )
    ap.add_argument("--aim", help=f"aim point LO,HI metres above the mean pelvis (--aim=-0.5,0.7) "
                    f"(default {v.aim_offset_m[0]:g},{v.aim_offset_m[1]:g})")  # fmt: skip
    ap.add_argument("--pad", type=float, default=PAD_M, help="metres around every joint kept inside the image")
    ap.add_argument("--min-body", type=float, default=MIN_BODY_PX, metavar="PX",
                    help=f"bring the camera nearer until the body is this many pixels big (its joints' box, the longer "
                    f"side, median over frames; 0: as drawn; default {MIN_BODY_PX:g}, see MIN_BODY_PX)")  # fmt: skip
    ap.add_argument("--look", choices=("outfits", "person"), default="outfits", help="a random outfit and skin "
                    "tone per sequence (random_outfit), or rendered_mocap.py's own person for all")  # fmt: skip
    ap.add_argument("--fit-iterations", type=int, default=200, help="L-BFGS iterations of the Anny pose fit")
    ap.add_argument("--device", default="auto", help="the detector's and the fit's device")
    ap.add_argument("--mediapipe-model", choices=("full", "heavy"), default="full",
                    help="MediaPipe's landmark model (infer's --mediapipe-model); heavy: the sequences' detector "
                         "attribute is mediapipe-heavy")  # fmt: skip
    ap.add_argument("--keep-swaps", action="store_true", help="keep the detector's left/right mix-ups as detected "
                    "(default: put right against the truth, see unswap_sides)")  # fmt: skip
    ap.add_argument("--keep-videos", type=Path, metavar="DIR", help="keep the rendered videos (DIR/videos/*.mp4)")
    ap.add_argument("--out", type=Path, required=True, help="the HDF5 file to write (X.h5)")
    args = ap.parse_args(argv)
    try:
        return _run(args)
    except MocliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from mocli.data.h5 import DatasetWriter
    from mocli.mesh.fit import FitOptions

    if args.sequences < 1 or args.frames < MIN_FRAMES:
        raise InputError(f"--sequences must be >= 1 and --frames >= {MIN_FRAMES}")
    if not args.pad >= 0:
        raise InputError(f"--pad {args.pad:g}: metres must be >= 0")
    if not 0 <= args.min_body < 640:
        raise InputError(f"--min-body {args.min_body:g}: pixels must lie in [0, 640)")
    if args.out.suffix != ".h5":
        raise InputError(f"--out {args.out}: give a file name ending in .h5")
    missing = [str(p) for p in args.data if not p.is_file()]
    if missing:
        raise InputError(f"no such file: {', '.join(missing)}")
    view = make_training_view(args.pitch, args.distance, args.fov, args.roll, args.aim)
    t0 = time.perf_counter()
    candidates = training_candidates(args.data, args.min_frames)
    if not candidates:
        names = ", ".join(str(p) for p in args.data)
        raise InputError(f"{names}: no training sequence (split train, joints3d, not held out by mocli.data.holdout)")
    chosen = pick_training(candidates, args.sequences, args.frames, args.seed)
    body, colours = load_body("person")
    options = detection_options(args.device, args.mediapipe_model)
    where = "the first" if args.start == "first" else "a random"
    print(f"{len(chosen)} of {len(candidates)} training sequences, seed {args.seed}, up to {args.frames} frames at "
          f"~{FPS:g} fps from {where} frame (setup {time.perf_counter() - t0:.1f} s)", flush=True)  # fmt: skip
    print(f"cameras: {describe_view(view)}, aim {view.aim_offset_m[0]:g} to {view.aim_offset_m[1]:g} m, "
          f"body padded {args.pad:g} m, at least {args.min_body:g} px; look: {args.look}", flush=True)  # fmt: skip
    made: list[Made] = []
    failed: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="mocli_rendered_training_") as tmp, \
            DatasetWriter(args.out, kind=KIND, source="rendered") as writer:  # fmt: skip
        setup = Setup(body, colours, FitOptions(iterations=args.fit_iterations), view, args.seed, args.frames,
                      lambda video: detect_person(video, options), args.keep_videos or Path(tmp),
                      args.keep_videos is not None, args.pad, not args.keep_swaps, args.min_body,
                      args.look == "outfits", args.start,
                      "mediapipe" if args.mediapipe_model == "full" else "mediapipe-heavy")  # fmt: skip
        for c, name in zip(chosen, output_names(chosen), strict=True):
            try:
                m = make_pair(c, name, setup)
                writer.add(m.sequence)
            except Exception as e:  # noqa: BLE001 - one bad sequence must not end a long run; reported below
                failed.append((name, f"{type(e).__name__}: {e}".splitlines()[0]))
                print(f"  {name}: failed ({failed[-1][1]})", flush=True)
                continue
            made.append(m)
            s = m.seconds
            ex = m.sequence.extra
            sides = "".join(f", {k[len('sides_swapped_'):]} swapped {100 * v:.0f} %" for k, v in ex.items()
                            if k.startswith("sides_swapped_"))  # fmt: skip
            cam = f"pitch {ex['camera_pitch_deg']:.0f} deg, {ex['camera_distance_m']:.1f} m"
            cam += f", fov {ex['camera_fov_deg']:.0f} deg, body {ex['body_px']:.0f} px"
            print(f"  {name}: {m.frames} frames from {ex['original_first_frame']}, {cam}, "
                  f"detected {100 * m.detection_rate:.0f} %{sides}, fit {s['fit']:.1f} s, "
                  f"render {s['render']:.1f} s, detect {s['detect']:.1f} s, {sum(s.values()):.1f} s",
                  flush=True)  # fmt: skip
        if not made:
            raise MocliError(f"every sequence failed; {args.out} not written")
    frames = sum(m.frames for m in made)
    rate = sum(m.detection_rate * m.frames for m in made) / max(frames, 1)
    total = {k: sum(m.seconds[k] for m in made) for k in ("fit", "render", "detect")}
    print(f"\nwrote {args.out}: {len(made)} sequences, {frames} frames, detected {100 * rate:.1f} % of frames; "
          f"{sum(total.values()) / len(made):.1f} s per sequence (fit {total['fit']:.0f} s, render "
          f"{total['render']:.0f} s, detect {total['detect']:.0f} s in all)")  # fmt: skip
    if failed:
        print(f"{len(failed)} failed and skipped:")
        for name, why in failed:
            print(f"  {name}: {why}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
