"""mocli's 3D joints vs MediaPipe's own metric 3D ("world landmarks"), with 3D ground truth, on rendered motion capture.

Real video has no 3D ground truth here, so real motion capture is turned into video and the real pipeline is run:

1. sequences of mocli HDF5 mocap files (``mocli prepare dataset bvh|amc``), a seeded choice, the first ``--frames``
   frames of each at about 30 fps: ``--pick val`` (default) the validation split, spread over the sources;
   ``--pick held-out`` the people and motions that training leaves out (``mocli.data.holdout``: HDM05 actors mm, tr,
   motions lieDownFloor, throwBasketball; ReActIdle person 012), whatever their split, spread over the groups
   'hdm05 person', 'hdm05 motion lieDownFloor', 'hdm05 motion throwBasketball' and 'reactidle person', with a
   summary per group;
2. one fixed virtual camera per sequence (``mocli.evaluation.mocap.sequence_camera``: yaw 0-360, pitch 0-20 deg,
   no roll, 3.5-5 m, fov 50-60 deg, 640x640 px; ``--pitch``, ``--distance`` and ``--fov`` change the ranges, e.g.
   ``--pitch 35,60`` for a high camera; the same seed draws the same point of any range, so two runs that differ
   only in a range see each sequence from the same direction otherwise); the ground truth is the mocap H36M-17
   joints in that camera;
3. the open Anny body mesh fitted to the ground-truth joints of every frame (``mocli.mesh.meshes.fit_mesh``; its
   per-frame joint error is reported: the rendered body is the fit, not the mocap skeleton itself);
4. every frame drawn by a small painter's-algorithm rasteriser (numpy + OpenCV: perspective projection, back-face
   culling, triangles far to near, Lambert shading) of a clothed-looking body (skin, shirt, dark trousers, shoes)
   over a smooth random background, written as ``<out>/videos/<sequence>.mp4`` at the sequence's frame rate;
5. ``mocli infer``'s own steps on each video with the MediaPipe detector (``mocli.pipeline.load_people`` and
   ``run_pose3d``, the same options as the command, MediaPipe's own 3D averaged in with infer's ``--detector-3d``
   weight; ``<out>/infer/<sequence>/joints3d.npz``); with a weight above 0, the lifter alone as well ("PA lifter",
   "limbs lifter"), and with ``--sweep W1,W2,...`` every one of those weights (a table per group and overall;
   besides infer's 'auto' and 0-1, 'auto@S' is auto with half the weight at a flip spread of S metres);
6. both scored against the ground truth (root-relative, metres -> mm) on the frames where MediaPipe detected the
   person: PA-MPJPE (per-frame similarity Procrustes) for both; for mocli also MPJPE as output (it is metric, in
   camera axes) and after one least-squares scale per sequence; MediaPipe's world landmarks are in their own
   rotated frame, so only its PA-MPJPE is fair; bone-length CV and left/right asymmetry
   (``mocli.metrics.skeleton_plausibility``) of ground truth, mocli and MediaPipe; the detection rate (frames where
   MediaPipe found the person).

With ``--out DIR`` each sequence's Anny fit error and MediaPipe's 2D are kept beside its video in ``DIR/cache``
(``rendered_cache.py``); a later run with ``--out DIR --reuse`` and the same data, pick, seed, frames, cameras,
look and fit takes them from there and only lifts and scores, so that two lifters or two sets of infer options are
compared on the very same videos and detections in a fraction of the time.

Caveats: the appearance is synthetic (no texture, hair or loose clothes); the ground truth is the mocap joints while
the pixels show the Anny fit (see the fit error column); MediaPipe's H36M-17 pelvis, spine, thorax and head are
derived from its 33 landmarks (``mocli.skeleton.to_h36m``), which differ from the mocap rig's definitions.

    python benchmarks/rendered_mocap.py --data bandai.h5 --data cmu_dance.h5 [--pick val|held-out] [--sequences 6]
        [--frames 150] [--pitch LO,HI] [--distance LO,HI] [--fov LO,HI] [--model NAME|CKPT] [--bones fixed|free]
        [--no-upright] [--detector-3d W] [--limb-depth W] [--sweep W1,W2,...] [--out DIR] [--json FILE]
    python benchmarks/rendered_mocap.py --data hdm05.h5 --data reactidle.h5 --pick held-out --pitch 35,60
    python benchmarks/rendered_mocap.py --data bandai.h5 --data cmu_dance.h5 --data reactidle.h5 --data hdm05.h5 \
        --sequences 12 --sweep 0,0.2,0.3,0.4,0.5,1      # weights of MediaPipe's 3D in mocli's (--detector-3d)
    python benchmarks/rendered_mocap.py ... --sweep auto@0.04,auto@0.06,auto@0.08,auto@0.1,auto@0.13  # auto's scale
    python benchmarks/rendered_mocap.py ... --out ho0 && python benchmarks/rendered_mocap.py ... --out ho0 --reuse \
        --model other.pt      # a second lifter on the first run's videos and 2D
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from raster import make_background, region_colours, render_mesh  # benchmarks/raster.py, beside this script
from rendered_cache import load_entry, render_key, save_entry
from rendered_infer import Pipeline, detect_person, load_pipeline, parse_weight, run_infer, weight_label
from rendered_scores import print_report, print_sweep, score_sequence, summarise, summarise_sweep
from rendered_views import VIEW, camera_pitch_deg, describe_view, make_view

from mocli.data.cameras import Camera, ViewRange, project_perspective, world_to_camera
from mocli.data.holdout import held_out_reason
from mocli.data.transforms import root_relative
from mocli.errors import InputError, MocliError

PICKS = ("val", "held-out")


# --- sequences (pure) ------------------------------------------------------------------------------------------------


def held_out_group(seq) -> str | None:
    """The group of a held-out sequence (``mocli.data.holdout``): '<source> person', or '<source> motion <action>'
    for a held-out motion class (e.g. 'hdm05 person', 'hdm05 motion lieDownFloor', 'reactidle person'); None for a
    sequence that training may use."""
    reason = held_out_reason(seq.source, seq.name, seq.subject, seq.action)
    if reason is None:
        return None
    return f"{seq.source} motion {seq.action}" if reason == "motion" else f"{seq.source} {reason}"


def pick_sequences(
    sequences: list, count: int, frames: int, seed: int, group: Callable[[Any], str] | None = None
) -> list:
    """``count`` sequences spread over groups (``group(seq)`` -> name; default: the source): each group's list
    shuffled with ``default_rng(seed)``, then taken in turn (groups sorted by name); sequences with at least
    ``frames`` frames first."""
    key = group or (lambda s: s.source)
    rng = np.random.default_rng(seed)
    by_group: dict[str, list] = {}
    for s in sequences:
        by_group.setdefault(key(s), []).append(s)
    queues = []
    for name in sorted(by_group):
        items = by_group[name]
        order = rng.permutation(len(items))
        long = [items[i] for i in order if items[i].num_frames >= frames]
        queues.append(long + [items[i] for i in order if items[i].num_frames < frames])
    chosen: list = []
    while len(chosen) < count and any(queues):
        for q in queues:
            if q and len(chosen) < count:
                chosen.append(q.pop(0))
    return chosen


def pick_held_out(sequences: list, count: int, frames: int, seed: int) -> list:
    """``count`` held-out sequences (whatever their split), spread over ``held_out_group`` as ``pick_sequences``."""
    held = [s for s in sequences if held_out_group(s) is not None]
    return pick_sequences(held, count, frames, seed, group=held_out_group)


# --- stages (data, fitting, rendering, inference) --------------------------------------------------------------------


@dataclass
class RenderedSequence:
    """One sequence made into a video: ground-truth camera joints (T,17,3) metres, camera, fit error (T,) mm."""

    name: str
    source: str
    fps: float
    gt_cam: np.ndarray
    camera: Camera
    fit_error_mm: np.ndarray
    video: Path
    seconds: dict


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "sequence"


def camera_truth(seq, seed: int, view: ViewRange = VIEW, camera: Camera | None = None) -> tuple[Camera, np.ndarray]:
    """A sequence's camera (drawn from ``view`` with ``seed``, unless ``camera`` is given) and its ground truth in
    that camera, (T,17,3) metres."""
    from mocli.evaluation.mocap import sequence_camera

    if camera is None:
        camera = sequence_camera(seq, seed, view)
    return camera, world_to_camera(seq.joints, camera.R, camera.t)


def render_sequence(
    seq,
    body,
    colours: np.ndarray,
    out: Path,
    seed: int,
    fit_options,
    view: ViewRange = VIEW,
    camera: Camera | None = None,
):
    """Camera (drawn from ``view``, unless ``camera`` is given), Anny fit and video of one MocapSequence (already cut
    to its frames)."""
    from mocli.mesh.meshes import fit_mesh
    from mocli.utils.io import atomic_path

    camera, gt_cam = camera_truth(seq, seed, view, camera)
    t0 = time.perf_counter()
    mesh = fit_mesh(body, root_relative(gt_cam), "anny", fit_options)
    t1 = time.perf_counter()
    verts = mesh.vertices.astype(np.float64) + gt_cam[:, :1]  # pelvis-relative -> camera frame
    w, h = camera.image_size
    background = make_background(w, h, np.random.default_rng([seed, zlib.crc32(seq.name.encode())]))
    video = out / "videos" / f"{_file_name(seq.name)}.mp4"
    video.parent.mkdir(parents=True, exist_ok=True)
    faces = np.asarray(body.faces)
    with atomic_path(video) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(seq.fps), (w, h))
        if not writer.isOpened():
            raise MocliError(f"{video}: OpenCV cannot write mp4 videos here")
        try:
            for v in verts:
                image = background if not np.isfinite(v).all() else render_mesh(
                    v, faces, colours, camera.focal, camera.centre, background)  # fmt: skip
                writer.write(image)
        finally:
            writer.release()
    t2 = time.perf_counter()
    seconds = {"fit": t1 - t0, "render": t2 - t1}
    return RenderedSequence(seq.name, seq.source, seq.fps, gt_cam, camera, mesh.error_mm, video, seconds)


def load_body(look: str = "person") -> tuple[Any, np.ndarray]:
    """The Anny body model (``mocli.mesh.anny.AnnyBody``) and its (F,3) base colours (``raster.region_colours``)."""
    from mocli.mesh.anny import AnnyBody

    body = AnnyBody()
    dominant = body.model.vertex_bone_indices.gather(1, body.model.vertex_bone_weights.argmax(1, keepdim=True))
    return body, region_colours(body.bone_labels, dominant[:, 0].numpy(), np.asarray(body.faces), look)


def reuse_rendered(seq, seed: int, view: ViewRange, video: Path, fit_error_mm: np.ndarray) -> RenderedSequence:
    """A sequence rendered before (its video at ``video``, its fit error from the cache): camera and ground truth
    drawn again as ``render_sequence`` draws them (``camera_truth``), nothing fitted or drawn."""
    camera, gt_cam = camera_truth(seq, seed, view)
    return RenderedSequence(seq.name, seq.source, seq.fps, gt_cam, camera, fit_error_mm, video,
                            {"fit": 0.0, "render": 0.0})  # fmt: skip


def rendered_and_detected(seq, args, body: Callable[[], tuple], out: Path, view: ViewRange, pipe: Pipeline):
    """One sequence's video and MediaPipe's person on it: from ``<out>/cache`` when ``args.reuse`` and an entry
    matches (``rendered_cache``), else fitted, drawn (``body()``: ``load_body``'s model and colours) and detected,
    and the entry written. With ``args.mediapipe_model`` 'heavy' the 2D comes from ``<out>/cache-heavy`` instead,
    and a video drawn for a full run is detected again rather than drawn again.

    Returns (RenderedSequence, KeypointSequence or None, detection seconds, reused)."""
    from mocli.mesh.fit import FitOptions

    stem = _file_name(seq.name)
    video = out / "videos" / f"{stem}.mp4"
    usable = args.reuse and video.is_file()
    full_key = render_key(seq, args.seed, view, args.look, args.fit_iterations)
    heavy = args.mediapipe_model == "heavy"  # its 2D is cached apart, beside the same videos
    cache, key = (out / "cache-heavy", render_key(seq, args.seed, view, args.look, args.fit_iterations,
                  "mediapipe-heavy")) if heavy else (out / "cache", full_key)  # fmt: skip
    entry = load_entry(cache, stem, key) if usable else None
    if entry is not None:
        return reuse_rendered(seq, args.seed, view, video, entry[0]), entry[1], 0.0, True
    drawn = load_entry(out / "cache", stem, full_key) if usable and heavy else None  # a full run's video
    if drawn is not None:
        rendered = reuse_rendered(seq, args.seed, view, video, drawn[0])
    else:
        model, colours = body()
        fit = FitOptions(iterations=args.fit_iterations)
        rendered = render_sequence(seq, model, colours, out, args.seed, fit, view)
    t0 = time.perf_counter()
    found = detect_person(rendered.video, pipe.options)
    save_entry(cache, stem, key, rendered.fit_error_mm, found)
    return rendered, found, time.perf_counter() - t0, False


def run_info(args: argparse.Namespace, view: ViewRange, weights: Path, detector_3d: float | str) -> dict:
    """The choices of a run, for the JSON file: data, pick, frames, seed, look, model, bones, camera ranges, fit."""
    return {"data": [str(p) for p in args.data], "pick": args.pick, "frames": args.frames, "seed": args.seed,
            "look": args.look, "model": str(weights), "bones": args.bones, "upright": args.upright,
            "detector_3d": detector_3d, "limb_depth": args.limb_depth, "stride": args.stride,
            "view": dict(view.__dict__),
            "fit_iterations": args.fit_iterations, "mediapipe_model": args.mediapipe_model}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, action="append", required=True, help="mocli HDF5 mocap file (repeatable)")
    ap.add_argument("--pick", choices=PICKS, default="val",
                    help="val: the validation split, spread over the sources; held-out: the sequences of "
                         "mocli.data.holdout whatever their split, spread over source and reason")  # fmt: skip
    ap.add_argument("--sequences", type=int, default=6, help="sequences to render")
    ap.add_argument("--frames", type=int, default=150, help="frames per sequence, from the start")
    ap.add_argument("--seed", type=int, default=0, help="sequence choice, cameras and backgrounds")
    ap.add_argument("--pitch", help=f"camera elevation LO,HI, degrees, positive looking down "
                    f"(default {VIEW.pitch_deg[0]:g},{VIEW.pitch_deg[1]:g})")  # fmt: skip
    ap.add_argument("--distance", help=f"camera distance LO,HI, metres "
                    f"(default {VIEW.distance_m[0]:g},{VIEW.distance_m[1]:g})")  # fmt: skip
    ap.add_argument("--fov", help=f"horizontal field of view LO,HI, degrees "
                    f"(default {VIEW.fov_deg[0]:g},{VIEW.fov_deg[1]:g})")  # fmt: skip
    ap.add_argument("--model", help="lifter weights name or checkpoint (default: infer's, dstformer-small.video)")
    ap.add_argument("--look", choices=("person", "grey"), default="person", help="body colours")
    ap.add_argument("--fit-iterations", type=int, default=200, help="L-BFGS iterations of the Anny pose fit")
    ap.add_argument("--bones", choices=("fixed", "free"), default="fixed", help="as infer's --bones")
    ap.add_argument("--upright", action=argparse.BooleanOptionalAction, default=True, help="as infer's --upright")
    ap.add_argument(
        "--detector-3d",
        help="as infer's --detector-3d (default: infer's); above 0 the "
        "lifter alone is scored as well (PA lifter, limbs lifter)",
    )
    ap.add_argument("--limb-depth", type=float, default=0.0, help="as infer's --limb-depth (default 0: off)")
    ap.add_argument(
        "--sweep",
        help="W1,W2,...: also score these weights of MediaPipe's 3D (--detector-3d) on the same videos; auto@S: "
        "auto with half the weight at a flip spread of S metres",
    )
    ap.add_argument("--stride", type=int, help="frames between the lifter's window starts (default infer's: 2/3 of "
                    "a clip, 54 of 81)")  # fmt: skip
    ap.add_argument("--mediapipe-model", choices=("full", "heavy"), default="full",
                    help="as infer's --mediapipe-model; heavy's 2D is cached apart (<out>/cache-heavy), and with "
                         "--reuse the videos of a full run are detected again, not drawn again")  # fmt: skip
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, help="folder for videos and infer outputs (default: a temporary folder)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--reuse", action="store_true",
                    help="take each sequence's video and MediaPipe's 2D from an earlier run's --out (its cache/) when "
                         "they match, and score this run's lifter and options on them")  # fmt: skip
    args = ap.parse_args(argv)
    try:
        return _run(args)
    except MocliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from mocli.evaluation.mocap import load_mocap_sequences
    from mocli.limb_depth import parse_limb_depth
    from mocli.utils.io import atomic_path

    if args.sequences < 1 or args.frames < 3:
        raise MocliError("--sequences must be >= 1 and --frames >= 3")
    if args.reuse and args.out is None:
        raise MocliError("--reuse needs --out DIR: the folder of an earlier run's videos and cache")
    try:
        limb_depth = parse_limb_depth(args.limb_depth)
    except ValueError as e:
        raise MocliError(str(e)) from None
    missing = [str(p) for p in args.data if not p.is_file()]
    if missing:
        raise MocliError(f"no such file: {', '.join(missing)}")
    view = make_view(args.pitch, args.distance, args.fov)
    t0 = time.perf_counter()
    if args.pick == "val":
        group = None
        chosen = pick_sequences(load_mocap_sequences(args.data, split="val", fps=30), args.sequences, args.frames,
                                args.seed)  # fmt: skip
    else:
        group = held_out_group
        chosen = pick_held_out(load_mocap_sequences(args.data, split=None, fps=30), args.sequences, args.frames,
                               args.seed)  # fmt: skip
        if not chosen:
            names = ", ".join(str(p) for p in args.data)
            raise InputError(f"{names}: no held-out sequence (mocli.data.holdout: HDM05 actors mm, tr, motions "
                             "lieDownFloor, throwBasketball; ReActIdle person 012)")  # fmt: skip
    out = args.out or Path(tempfile.mkdtemp(prefix="mocli_rendered_"))
    chosen = [replace(s, joints=s.joints[: args.frames]) for s in chosen]
    body = functools.cache(lambda: load_body(args.look))  # loaded when a sequence must be drawn
    detector_3d = None if args.detector_3d is None else parse_weight(args.detector_3d, "--detector-3d")
    sweep = [parse_weight(w) for w in args.sweep.split(",")] if args.sweep else []
    pipe = load_pipeline(args.model, args.device, args.seed, args.bones, args.upright, detector_3d, limb_depth,
                         args.stride, args.mediapipe_model)  # fmt: skip
    setup = time.perf_counter() - t0
    print(f"{len(chosen)} sequences, model {pipe.weights.name}, outputs in {out} (setup {setup:.1f} s)", flush=True)
    print(f"pick {args.pick}, seed {args.seed}, cameras: {describe_view(view)}", flush=True)
    rows = []
    reused = 0
    for seq in chosen:
        rendered, found, detect_s, was_reused = rendered_and_detected(seq, args, body, out, view, pipe)
        reused += was_reused
        res = run_infer(found, out / "infer" / rendered.video.stem, pipe, len(rendered.gt_cam), sweep)
        n = min(len(res.joints3d), len(rendered.gt_cam))  # a decoder may drop a trailing frame
        cam = rendered.camera
        gt_px = project_perspective(rendered.gt_cam[:n], cam.focal, cam.centre)
        row = {"name": seq.name, "source": seq.source, "num_frames": int(len(rendered.gt_cam)),
               "video": str(rendered.video), "fit_error_mm": float(np.nanmean(rendered.fit_error_mm))}  # fmt: skip
        if group is not None:
            row.update(group=group(seq), subject=seq.subject, action=seq.action)
        if seq.frame == "world":
            row["camera_pitch_deg"] = round(camera_pitch_deg(cam.R, seq.up_axis), 2)
        lifter = None if res.lifter is None else res.lifter[:n]
        row.update(score_sequence(rendered.gt_cam[:n], res.joints3d[:n], res.mediapipe[:n], res.detected[:n],
                                  res.keypoints2d[:n], gt_px, lifter))  # fmt: skip
        if sweep:  # the same frames as the row's: the same masks, and the swept joints miss the same frames
            row["sweep"] = {}
            for w, joints in res.swept.items():
                s = score_sequence(rendered.gt_cam[:n], joints[:n], res.mediapipe[:n], res.detected[:n],
                                   res.keypoints2d[:n], gt_px, lifter)  # fmt: skip
                row["sweep"][weight_label(w)] = {k: s[k] for k in ("frames", "mocli_pa_mpjpe_mm", "mocli_limbs_pa_mm")}
        row["detection_rate"] = float(res.detected[:n].sum() / len(rendered.gt_cam))
        row["seconds"] = {**{k: round(v, 2) for k, v in rendered.seconds.items()}, "detect": round(detect_s, 2),
                          "infer": round(res.seconds, 2)}  # fmt: skip
        rows.append(row)
        s = row["seconds"]
        made = f"fit {s['fit']:.1f} s, render {s['render']:.1f} s, detect {s['detect']:.1f} s"
        how = "reused" if was_reused else made
        print(f"  {seq.name}: {row['num_frames']} frames, {how}, infer {s['infer']:.1f} s, "
              f"detected {100 * row['detection_rate']:.0f} %", flush=True)  # fmt: skip
    overall = summarise(rows)
    overall["seconds"] = {k: round(sum(r["seconds"][k] for r in rows), 2) for k in ("fit", "render", "detect", "infer")}
    overall["reused"] = reused
    groups = None
    if group is not None:
        names = sorted({r["group"] for r in rows})
        groups = {name: summarise([r for r in rows if r["group"] == name]) for name in names}
    print_report(rows, overall, groups)
    if sweep:
        overall["sweep"] = summarise_sweep(rows)
        for name in groups or {}:
            groups[name]["sweep"] = summarise_sweep([r for r in rows if r["group"] == name])
        print_sweep(overall, groups)
    print(f"\ntimings (s, all sequences): {overall['seconds']}; setup {setup:.1f}; reused {reused} of {len(rows)}")
    if args.json:
        info = run_info(args, view, pipe.weights, pipe.options.lift.detector_3d)
        info["detector_3d_spread_m"] = pipe.options.lift.detector_3d_spread_m  # auto's half-weight spread
        result = {"info": info, "overall": overall, **({"groups": groups} if groups else {}), "sequences": rows}
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
