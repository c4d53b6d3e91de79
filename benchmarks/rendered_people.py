"""Several people in one video, with ground truth: mocli's multi-person pipeline on rendered motion capture.

Real video has no ground truth for who is who or where people stand, so scenes are made from real motion capture,
with the machinery of ``rendered_mocap.py`` (``raster.py``, ``rendered_scores.py``):

1. ``--people`` K sequences per scene (``--scenes`` scenes) of mocli HDF5 mocap files, a seeded choice as
   ``rendered_mocap.py --pick`` (default ``held-out``: ``mocli.data.holdout``), the first ``--frames`` at ~30 fps;
2. one world (``people_scene.py``): people side by side, neighbours ``--spacing`` metres apart, at different depths
   (``--depth``), each facing the camera within +-60 deg; unless ``--no-cross``, the first person walks from the
   leftmost to the rightmost place 0.7 m in front of the others, passing in front of them (their mocap motion plus
   that lateral walk); one camera ``--camera-height`` above the floor, tilted down ``--pitch`` deg, ``--fov``
   horizontal field of view, ``--size`` pixels;
3. each person's Anny mesh fitted to their joints (``mocli.mesh.meshes.fit_mesh``), every body drawn in one
   painter's-algorithm pass (occlusion), each in their own clothes (``<out>/videos/<scene>.mp4``); ground truth:
   each person's H36M-17 joints in the camera frame, metres;
4. ``mocli infer``'s own steps on the video (``mocli.infer_setup.load_setup`` + ``mocli.infer_run.run_input``:
   ``--person all``, ``--detector mediapipe-multi``, ``--fov`` the true one), every ``detect`` call timed (the
   detector is wrapped while the run lasts); the result folder is read back (``joints3d_p*.npz``, summary.json);
   also the detector alone on a video of one person of the scene alone (same camera and background; ``--no-solo``:
   not), for frames/s with 1 person; ``--detection-confidence`` sets another person-detector threshold than
   mocli's default;
5. scores: detector frames/s per number of people found in the frame; tracks matched to people per frame by 2D
   distance (``people_scores.match_tracks``: Hungarian on the mean distance of the 17 joints to the person's
   projected ones, within ``GATE`` x the person's 2D box diagonal; the raw detections alike): per person the
   frames in view (every joint inside the image), the detection rate (a raw detection matched) and the output rate
   (a track matched); identity switches, people split over several tracks, tracks that were several people; per
   person PA-MPJPE, MPJPE (root-relative, mm) and MediaPipe's PA-MPJPE (``rendered_scores.score_sequence``) on
   the frames a track is matched; trajectories (``root``): pelvis error (mm) as output and after one scale per
   video (depth is known up to the body's size), the error of the distances between people and their depth order.

Caveats: as ``rendered_mocap.py`` (synthetic look, ground truth is the mocap skeleton, the pixels show the Anny fit);
the bodies may pass through one another (nothing keeps them apart); the crossing walk slides the mocap motion.

    OMP_NUM_THREADS=1 python benchmarks/rendered_people.py --data hdm05.h5 --data reactidle.h5 [--people 3]
        [--frames 120] [--scenes 1] [--seed 0] [--pick held-out|val] [--no-cross] [--no-solo]
        [--detection-confidence X] [--detector-3d W] [--out DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from people_scene import plan_scene, render_alone, render_scene, scene_camera, scene_joints
from people_scores import fps_by_count, gather, identity_counts, match_tracks, pool_scenes, score_trajectories
from rendered_mocap import load_body, pick_held_out, pick_sequences
from rendered_scores import cell, score_sequence
from rendered_views import parse_range

from mocli.data.cameras import project_perspective
from mocli.errors import InputError, MocliError
from mocli.skeleton import to_h36m

DETECTOR = "mediapipe-multi"
GATE = 0.25  # a track or detection can be a person when its joints are (on average) within this x the person's
# 2D box diagonal
KEYS = ("joints3d", "keypoints2d", "root", "mediapipe")  # read_result's arrays


class TimedDetector:
    """A detector that times each ``detect`` call and keeps each frame's detections as (D,17,2) H36M-17 pixels in
    ``found`` (the detector's skeleton converted by ``mocli.skeleton.to_h36m``); the rest is the wrapped
    detector's."""

    def __init__(self, inner) -> None:
        self.inner, self.seconds, self.found = inner, [], []

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def detect(self, frame):
        t0 = time.perf_counter()
        found = self.inner.detect(frame)
        self.seconds.append(time.perf_counter() - t0)
        poses = [to_h36m(np.asarray(d.keypoints, np.float64), self.inner.skeleton)[:, :2] for d in found]
        self.found.append(np.stack(poses) if poses else np.zeros((0, 17, 2)))
        return found

    def close(self) -> None:
        self.inner.close()


def make_detector(options=None, detection_confidence: float | None = None):
    """mocli's ``mediapipe-multi`` detector (``options``: ``DetectorOptions``), or one with another person-detector
    threshold than its default (not inside ``timed_detectors`` without a threshold: that would wrap itself)."""
    from mocli.keypoints import DetectorOptions, create_detector
    from mocli.keypoints.mediapipe_multi import MediaPipeMultiDetector

    options = options or DetectorOptions()
    if detection_confidence is None:
        return create_detector(DETECTOR, options)
    return MediaPipeMultiDetector(options.max_people, min_detection_confidence=detection_confidence)


@contextlib.contextmanager
def timed_detectors(name: str, made: list[TimedDetector], make=None):
    """While open, detector ``name`` of mocli's registry comes wrapped in a ``TimedDetector`` (appended to
    ``made``); ``make(options)`` builds it instead of the registry's factory when given."""
    from mocli.keypoints import registry

    original = registry.DETECTORS[name]

    def factory(options):
        made.append(TimedDetector((make or original)(options)))
        return made[-1]

    registry.DETECTORS[name] = factory
    try:
        yield
    finally:
        registry.DETECTORS[name] = original


def detect_alone(video: Path, detector) -> TimedDetector:
    """``detector`` run over every frame of ``video`` (timed; model loading not counted), then closed."""
    from mocli.keypoints import detect_video

    timed = TimedDetector(detector)
    try:
        detect_video(video, timed)
    finally:
        timed.close()
    return timed


def read_result(folder: Path) -> tuple[dict, list[int], dict[str, np.ndarray]]:
    """A result folder of ``mocli infer``: summary.json, the track ids, and per array name (N,T,...) stacked over
    tracks (joints3d, keypoints2d, root, and mediapipe: world landmarks as H36M-17, NaN when absent)."""
    from mocli.results import load_joints_npz

    summary = json.loads((folder / "summary.json").read_text())
    ids, arrays = [], {k: [] for k in KEYS}
    for entry in summary["results"]:
        data = load_joints_npz(folder / entry["file"])
        ids.append(int(entry["person"]))
        for key in ("joints3d", "keypoints2d", "root"):
            arrays[key].append(data[key].astype(np.float64))
        world = data.get("world_landmarks33")
        mp = to_h36m(world.astype(np.float64), "mediapipe", conf=False) if world is not None else None
        arrays["mediapipe"].append(mp if mp is not None else np.full_like(arrays["joints3d"][-1], np.nan))
    return summary, ids, {k: np.stack(v) for k, v in arrays.items()}


def gates(gt_px: np.ndarray) -> np.ndarray:
    """(G,T,17,2) projected joints -> (G,T) matching gate, pixels: ``GATE`` x the 2D box diagonal."""
    span = np.nanmax(gt_px, axis=2) - np.nanmin(gt_px, axis=2)
    return GATE * np.linalg.norm(span, axis=-1)


def score_scene(gt_cam, camera, ids, arrays, found: list[np.ndarray]) -> tuple[list[dict], dict]:
    """Per-person rows and the scene's identity and trajectory scores.

    Args:
        gt_cam: (G,T,17,3) ground truth, metres, camera frame; camera: the scene's ``Camera``.
        ids, arrays: ``read_result``'s track ids and (N,T',...) arrays.
        found: per frame the detector's raw detections, (D,17,2) pixels (``TimedDetector.found``).
    """
    n = min(gt_cam.shape[1], arrays["joints3d"].shape[1])
    gt = gt_cam[:, :n]
    gt_px = project_perspective(gt, camera.focal, camera.centre)  # (G,n,17,2)
    gate = gates(gt_px)
    w, h = camera.image_size
    in_view = ((gt_px >= 0) & (gt_px < [w, h])).all((2, 3)) & (gt[..., 2] > 0).all(-1)  # (G,n) every joint in
    matched = match_tracks(arrays["keypoints2d"][:, :n, :, :2], gt_px, gate)
    most = max((len(f) for f in found[:n]), default=0)
    raw = np.full((most, n, 17, 2), np.nan)
    for t, poses in enumerate(found[:n]):
        raw[: len(poses), t] = poses
    raw_rate = (match_tracks(raw, gt_px, gate) >= 0).mean(0)
    per = {k: gather(v[:, :n], matched) for k, v in arrays.items()}
    rows = []
    for g in range(len(gt)):
        output = np.isfinite(per["joints3d"][g]).all((1, 2))
        row = score_sequence(gt[g], per["joints3d"][g], per["mediapipe"][g], output, per["keypoints2d"][g], gt_px[g])
        row.pop("plausibility")
        tracks = sorted({ids[i] for i in matched[:, g] if i >= 0})
        trajectory = score_trajectories(per["root"][g : g + 1], gt[g : g + 1, :, 0])
        row.update(num_frames=n, in_view_pct=100 * float(in_view[g].mean()), detected_pct=100 * float(raw_rate[g]),
                   output_pct=100 * float(output.mean()), tracks=tracks, trajectory=trajectory)  # fmt: skip
        rows.append(row)
    identity = identity_counts(matched, ids)
    identity.update(tracks=len(ids), people=len(gt))
    return rows, {"identity": identity, "trajectory": score_trajectories(per["root"], gt[:, :, 0])}


def print_scene(label: str, rows: list[dict], scene: dict, fps: dict) -> None:
    print(f"\n{label}")
    for name, table in fps.items():
        parts = [f"{k} people {v['fps']:.1f} fps ({v['frames']} frames)" for k, v in table.items()]
        print(f"  detector frames/s, {name}: " + " | ".join(parts))
    print(f"  {'person':26} {'tracks':>8} {'view %':>6} {'det %':>6} {'out %':>6} {'IDsw':>4} {'2D px':>6} "
          f"{'PA mm':>6} {'MPJPE':>6} {'MP PA':>6} {'fit mm':>6} {'root mm':>7} {'depth mm':>8}")  # fmt: skip
    for g, r in enumerate(rows):
        tr = r["trajectory"]
        print(f"  {r['name'][:26]:26} {','.join(map(str, r['tracks'])) or '-':>8} {r['in_view_pct']:>6.1f} "
              f"{r['detected_pct']:>6.1f} "
              f"{r['output_pct']:>6.1f} {scene['identity']['id_switches'][g]:>4} {cell(r['keypoints_2d_px']):>6} "
              f"{cell(r['mocli_pa_mpjpe_mm']):>6} {cell(r['mocli_mpjpe_mm']):>6} {cell(r['mediapipe_pa_mpjpe_mm']):>6} "
              f"{cell(r['fit_error_mm']):>6} {cell(tr['root_error_mm'], 0):>7} "
              f"{cell(tr['depth_error_mm'], 0):>8}")  # fmt: skip
    i, tr = scene["identity"], scene["trajectory"]
    print(f"  identity: {i['people']} people, {i['tracks']} tracks; switches {sum(i['id_switches'])}, people split "
          f"over tracks {i['fragmented_people']}, tracks of several people {i['impure_tracks'] or '-'}, tracks of "
          f"nobody {i['unmatched_tracks'] or '-'}")  # fmt: skip
    print(f"  trajectory ({tr['frames']} person-frames): root {cell(tr['root_error_mm'], 0)} mm (depth "
          f"{cell(tr['depth_error_mm'], 0)} mm), scale {cell(tr['scale'], 3)} -> "
          f"{cell(tr['scaled_root_error_mm'], 0)} mm; "
          f"distance between people {cell(tr['distance_error_mm'], 0)} mm, scaled "
          f"{cell(tr['scaled_distance_error_mm'], 0)} mm ({tr['pair_frames']} pair-frames); depth order right "
          f"{cell(tr['depth_order_pct'])} % ({tr['depth_order_frames']} pair-frames apart > 0.2 m)")  # fmt: skip


def print_overall(o: dict) -> None:
    tr = o["trajectory"]
    print(f"\nall scenes: {o['people']} people, {o['tracks']} tracks")
    for name, table in o["detector_fps"].items():
        parts = [f"{k} people {v['fps']:.1f} fps ({v['frames']} frames)" for k, v in table.items()]
        print(f"  detector frames/s, {name}: " + " | ".join(parts))
    print(f"  in view {cell(o['in_view_pct'])} %, detected {cell(o['detected_pct'])} %, "
          f"output {cell(o['output_pct'])} %; "
          f"2D {cell(o['keypoints_2d_px'])} px, PA-MPJPE {cell(o['mocli_pa_mpjpe_mm'])} mm, MPJPE "
          f"{cell(o['mocli_mpjpe_mm'])} mm (MediaPipe PA {cell(o['mediapipe_pa_mpjpe_mm'])} mm)")  # fmt: skip
    print(f"  identity: switches {o['id_switches']}, people split over tracks {o['fragmented_people']}, tracks of "
          f"several people {o['impure_tracks']}, tracks of nobody {o['unmatched_tracks']}")  # fmt: skip
    print(f"  trajectory: root {cell(tr['root_error_mm'], 0)} mm (depth {cell(tr['depth_error_mm'], 0)} mm), "
          f"per-scene scale -> {cell(tr['scaled_root_error_mm'], 0)} mm; distance between people "
          f"{cell(tr['distance_error_mm'], 0)} mm, scaled {cell(tr['scaled_distance_error_mm'], 0)} mm; "
          f"depth order right {cell(tr['depth_order_pct'])} %")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, action="append", required=True, help="mocli HDF5 mocap file (repeatable)")
    ap.add_argument("--pick", choices=("held-out", "val"), default="held-out", help="as rendered_mocap.py's")
    ap.add_argument("--people", type=int, default=3, help="people per scene")
    ap.add_argument("--scenes", type=int, default=1)
    ap.add_argument("--frames", type=int, default=120, help="frames per scene, from the start of each sequence")
    ap.add_argument("--seed", type=int, default=0, help="sequence choice, placement, backgrounds")
    ap.add_argument("--size", default="1280x720", help="video size WxH, pixels")
    ap.add_argument("--fov", type=float, default=60.0, help="horizontal field of view, degrees (given to infer)")
    ap.add_argument("--pitch", type=float, default=10.0, help="camera tilt down, degrees")
    ap.add_argument("--camera-height", type=float, default=1.6, help="metres above the floor")
    ap.add_argument("--spacing", default="1.3,1.8", help="LO,HI metres between neighbours")
    ap.add_argument("--depth", default="4,5.5", help="LO,HI metres from the camera")
    ap.add_argument("--no-cross", action="store_true", help="nobody walks across the scene")
    ap.add_argument("--no-solo", action="store_true", help="no one-person video for the detector's speed")
    ap.add_argument("--detection-confidence", type=float, help="person-detector threshold (default: mocli's)")
    ap.add_argument("--fit-iterations", type=int, default=200, help="L-BFGS iterations of the Anny pose fit")
    ap.add_argument("--model", help="lifter weights name or checkpoint (default: infer's, dstformer-small.video)")
    ap.add_argument(
        "--detector-3d", help="as infer's: auto or a weight 0-1 of MediaPipe's 3D mixed in (0: off; default: infer's)"
    )
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, help="folder for videos and infer outputs (default: a temporary folder)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    try:
        return _run(args)
    except MocliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--size {text!r}: expected WxH, e.g. 1280x720") from None
    if w < 64 or h < 64:
        raise InputError(f"--size {text!r}: at least 64x64 pixels")
    return w, h


def _run(args: argparse.Namespace) -> int:
    from mocli.evaluation.mocap import load_mocap_sequences
    from mocli.infer_run import run_input
    from mocli.infer_setup import load_setup
    from mocli.mesh.fit import FitOptions
    from mocli.pipeline import InferInput
    from mocli.utils.io import atomic_path

    if args.people < 1 or args.scenes < 1 or args.frames < 3:
        raise InputError("--people and --scenes must be >= 1, --frames >= 3")
    if args.detection_confidence is not None and not 0 < args.detection_confidence < 1:
        raise InputError(f"--detection-confidence {args.detection_confidence}: must lie in (0, 1)")
    if not 0 < args.fov < 180:
        raise InputError(f"--fov {args.fov}: degrees must lie in (0, 180)")
    size, spacing, depth = _size(args.size), parse_range(args.spacing, "--spacing"), parse_range(args.depth, "--depth")
    if depth[0] <= 1.0:
        raise InputError(f"--depth {args.depth}: people must stand more than 1 m from the camera")
    missing = [str(p) for p in args.data if not p.is_file()]
    if missing:
        raise InputError(f"no such file: {', '.join(missing)}")
    t0 = time.perf_counter()
    count = args.people * args.scenes
    if args.pick == "val":
        chosen = pick_sequences(load_mocap_sequences(args.data, "val", fps=30), count, args.frames, args.seed)
    else:
        chosen = pick_held_out(load_mocap_sequences(args.data, None, fps=30), count, args.frames, args.seed)
    if len(chosen) < count:
        raise InputError(f"{len(chosen)} {args.pick} sequences in the data, {count} needed")
    out = args.out or Path(tempfile.mkdtemp(prefix="mocli_people_"))
    body, colours = load_body("person")
    mix = {} if args.detector_3d is None else {"detector_3d": args.detector_3d}  # None: infer's default
    setup = load_setup(model=args.model, detector=DETECTOR, person="all", device=args.device, seed=args.seed,
                       fov=args.fov, **mix)  # fmt: skip
    camera = scene_camera(*size, args.fov, args.pitch)
    print(f"{args.scenes} scene(s) of {args.people} people, {args.frames} frames, {size[0]}x{size[1]} px, fov "
          f"{args.fov:g} deg; outputs in {out} (setup {time.perf_counter() - t0:.1f} s)", flush=True)  # fmt: skip
    conf = args.detection_confidence
    make = None if conf is None else (lambda o: make_detector(o, conf))  # None: the registry's own factory
    scenes, timings = [], []
    for s in range(args.scenes):
        seqs = chosen[s * args.people : (s + 1) * args.people]
        frames = min(args.frames, *(q.num_frames for q in seqs))
        seqs = [replace(q, joints=q.joints[:frames]) for q in seqs]
        placements = plan_scene(args.people, args.seed + s, spacing, depth, cross=not args.no_cross)
        gt_cam = scene_joints(seqs, placements, camera, args.camera_height)
        video = out / "videos" / f"scene{s}.mp4"
        fps = float(seqs[0].fps)
        rendered = render_scene(gt_cam, body, colours, camera, fps, video, args.seed, FitOptions(args.fit_iterations))
        made: list[TimedDetector] = []
        t1 = time.perf_counter()
        with timed_detectors(DETECTOR, made, make):
            result = run_input(InferInput(video, "video"), out / "infer" / video.stem, setup, overwrite=True)
        rendered.seconds["infer"] = time.perf_counter() - t1
        if not made:  # infer stopped before it made a detector
            raise MocliError(f"infer on {video}: {result.status} {result.message or ''}".strip())
        if result.status == "written":
            summary, ids, arrays = read_result(result.out_dir)
        elif any(len(h) for h in made[0].found):  # anything but finding nobody is the pipeline failing
            raise MocliError(f"infer on {video}: {result.status} {result.message or ''}".strip())
        else:
            summary, ids, arrays = {}, [], {k: np.full((0, frames, 17, 3), np.nan) for k in KEYS}
            arrays["root"] = np.full((0, frames, 3), np.nan)
        rows, scores = score_scene(gt_cam, camera, ids, arrays, made[0].found)
        timed = {"scene": ([len(h) for h in made[0].found], made[0].seconds)}
        if not args.no_solo:
            alone = args.people - 1  # not the one who walks across
            solo = render_alone(rendered, alone, body, colours, camera, fps, out / "videos" / f"scene{s}_alone.mp4",
                                args.seed)  # fmt: skip
            alone_run = detect_alone(solo, make_detector(None, args.detection_confidence))
            timed["one person alone"] = ([len(h) for h in alone_run.found], alone_run.seconds)
        timings.append(timed)
        fps_tables = {name: fps_by_count(*run) for name, run in timed.items()}
        for g, (row, q, p) in enumerate(zip(rows, seqs, placements, strict=True)):
            heights = np.ptp(project_perspective(gt_cam[g], camera.focal, camera.centre)[..., 1], axis=1)
            row.update(name=q.name, source=q.source, action=q.action, fit_error_mm=float(np.nanmean(
                rendered.fit_error_mm[g])), placement=p.__dict__, crosses=p.crosses,
                height_px=[round(float(heights.min())), round(float(heights.max()))])  # fmt: skip
        scene = {"video": str(video), "frames": frames, "fps": fps, "camera_summary": summary.get("camera"),
                 "people_found": summary.get("people"), **scores, "detector_fps": fps_tables, "people": rows,
                 "seconds": {k: round(v, 2) for k, v in rendered.seconds.items()}}  # fmt: skip
        scenes.append(scene)
        print_scene(f"scene {s} ({frames} frames; fit {rendered.seconds['fit']:.0f} s, render "
                    f"{rendered.seconds['render']:.0f} s, infer {rendered.seconds['infer']:.0f} s)", rows, scores,
                    fps_tables)  # fmt: skip
    overall = pool_scenes(scenes, timings)
    if len(scenes) > 1:
        print_overall(overall)
    if args.json:
        info = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
        info["data"] = [str(p) for p in args.data]
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps({"info": info, "overall": overall, "scenes": scenes}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
