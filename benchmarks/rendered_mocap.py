"""mocli's 3D joints vs MediaPipe's own metric 3D ("world landmarks"), with 3D ground truth, on rendered motion capture.

Real video has no 3D ground truth here, so real motion capture is turned into video and the real pipeline is run:

1. validation sequences of mocli HDF5 mocap files (``mocli prepare dataset bvh``), a seeded choice spread over the
   sources, the first ``--frames`` frames of each at about 30 fps;
2. one fixed virtual camera per sequence (``mocli.evaluation.mocap.sequence_camera``: yaw 0-360, pitch 0-20 deg,
   no roll, 3.5-5 m, fov 50-60 deg, 640x640 px); the ground truth is the mocap H36M-17 joints in that camera;
3. the open Anny body mesh fitted to the ground-truth joints of every frame (``mocli.mesh.meshes.fit_mesh``; its
   per-frame joint error is reported: the rendered body is the fit, not the mocap skeleton itself);
4. every frame drawn by a small painter's-algorithm rasteriser (numpy + OpenCV: perspective projection, back-face
   culling, triangles far to near, Lambert shading) of a clothed-looking body (skin, shirt, dark trousers, shoes)
   over a smooth random background, written as ``<out>/videos/<sequence>.mp4`` at the sequence's frame rate;
5. ``mocli infer``'s own steps on each video with the MediaPipe detector (``mocli.pipeline.load_sequences`` and
   ``run_pose3d``, the same options as the command; ``<out>/infer/<sequence>/joints3d.npz``);
6. both scored against the ground truth (root-relative, metres -> mm) on the frames where MediaPipe detected the
   person: PA-MPJPE (per-frame similarity Procrustes) for both; for mocli also MPJPE as output (it is metric, in
   camera axes) and after one least-squares scale per sequence; MediaPipe's world landmarks are in their own
   rotated frame, so only its PA-MPJPE is fair; bone-length CV and left/right asymmetry
   (``mocli.metrics.skeleton_plausibility``) of ground truth, mocli and MediaPipe; the detection rate (frames where
   MediaPipe found the person).

Caveats: the appearance is synthetic (no texture, hair or loose clothes); the ground truth is the mocap joints while
the pixels show the Anny fit (see the fit error column); MediaPipe's H36M-17 pelvis, spine, thorax and head are
derived from its 33 landmarks (``mocli.skeleton.to_h36m``), which differ from the mocap rig's definitions.

    python benchmarks/rendered_mocap.py --data bandai.h5 --data cmu_dance.h5 [--sequences 6] [--frames 150]
        [--model NAME|CKPT] [--bones fixed|free] [--out DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from mocli.data.cameras import Camera, ViewRange, project_perspective, world_to_camera
from mocli.errors import InputError, MocliError
from mocli.metrics import mpjpe, n_mpjpe, pa_mpjpe, skeleton_plausibility
from mocli.skeleton import to_h36m

VIEW = ViewRange(yaw_deg=(0.0, 360.0), pitch_deg=(0.0, 20.0), roll_deg=0.0, distance_m=(3.5, 5.0),
                 fov_deg=(50.0, 60.0), image_size=(640, 640))  # fmt: skip
LIGHT = np.array([-0.3, -0.5, -0.8])  # towards the light (camera axes): up-left in front of the body
AMBIENT = 0.35
NEAR_M = 0.05  # triangles with a vertex closer than this to the camera plane are dropped

# Body regions by each vertex's dominant Anny bone (first matching prefix), BGR base colours.
REGIONS = (
    ("eye", (40, 40, 40)),
    (("foot", "toe"), (35, 35, 40)),  # shoes
    (("pelvis", "upperleg", "lowerleg", "spine05", "root"), (90, 55, 40)),  # dark blue trousers
    (("spine", "clavicle", "shoulder", "upperarm"), (60, 70, 170)),  # red T-shirt
    (("neck", "head", "lowerarm", "wrist", "finger", "metacarpal"), (135, 165, 215)),  # skin
)
GREY = (185, 185, 185)


# --- rasteriser (pure numpy + OpenCV) -------------------------------------------------------------------------------


def face_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(V,3) vertices, (F,3) vertex indices -> (F,3) unit normals by the right-hand rule (v1 - v0) x (v2 - v0).

    With outward-wound faces (counter-clockwise seen from outside, as Anny's) they point out of the body.
    """
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    n = np.cross(b - a, c - a)
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


def lambert(normals: np.ndarray, colours: np.ndarray, light_dir: np.ndarray = LIGHT, ambient: float = AMBIENT):
    """Lambert shading: ``colour * (ambient + (1 - ambient) * max(0, n . l))``.

    Args:
        normals: (F,3) unit normals; colours: (F,3) base colours 0-255; light_dir: (3,) towards the light (any norm).
    Returns:
        (F,3) float shaded colours 0-255.
    """
    light = np.asarray(light_dir, np.float64) / np.linalg.norm(light_dir)
    diffuse = np.clip(normals @ light, 0.0, None)
    return np.asarray(colours, np.float64) * (ambient + (1.0 - ambient) * diffuse)[:, None]


def render_mesh(
    verts_cam: np.ndarray,
    faces: np.ndarray,
    colours: np.ndarray,
    focal: float,
    centre: np.ndarray,
    background: np.ndarray,
    light_dir: np.ndarray = LIGHT,
    ambient: float = AMBIENT,
) -> np.ndarray:
    """Draw a triangle mesh seen by a pinhole camera at the origin (painter's algorithm).

    Faces facing away from the camera (``n . centroid >= 0``) and faces with a vertex nearer than ``NEAR_M`` are
    dropped; the rest are shaded (``lambert``), sorted by centroid depth and filled far to near with
    ``cv2.fillConvexPoly`` at 1/16 pixel precision.

    Args:
        verts_cam: (V,3) metres, camera axes (x right, y down, z forward).
        faces: (F,3) vertex indices, outward-wound. colours: (F,3) base colours 0-255 (BGR for OpenCV video).
        focal: pixels; centre: (2,) principal point, pixels.
        background: (H,W,3) uint8 image drawn over (not modified).
    Returns:
        (H,W,3) uint8 image.
    """
    image = background.copy()
    tri = verts_cam[faces]  # (F,3,3)
    normals = face_normals(verts_cam, faces)
    centroid = tri.mean(axis=1)
    keep = ((normals * centroid).sum(-1) < 0) & (tri[..., 2].min(axis=1) > NEAR_M)
    if not keep.any():
        return image
    tri, normals, depth = tri[keep], normals[keep], centroid[keep, 2]
    shaded = np.clip(lambert(normals, np.asarray(colours)[keep], light_dir, ambient), 0, 255).round().astype(int)
    px = focal * tri[..., :2] / tri[..., 2:3] + np.asarray(centre)  # (F,3,2) pixels
    pts = np.round(px * 16).astype(np.int32)  # shift=4: 1/16 pixel
    for i in np.argsort(-depth, kind="stable"):  # far to near
        cv2.fillConvexPoly(image, pts[i], shaded[i].tolist(), lineType=cv2.LINE_8, shift=4)
    return image


def make_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """(H,W,3) uint8 smooth random background: mid-grey, a vertical gradient and low-frequency coloured blobs."""
    grid = rng.normal(0.0, 1.0, (max(2, height // 80), max(2, width // 80), 3)).astype(np.float32)
    blobs = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    gradient = np.linspace(20.0, -20.0, height, dtype=np.float32)[:, None, None]
    return np.clip(125.0 + gradient + 15.0 * blobs, 0, 255).astype(np.uint8)


def region_colours(bone_labels: list[str], vertex_bones: np.ndarray, faces: np.ndarray, look: str) -> np.ndarray:
    """(F,3) base colours: by the dominant bone of each face's first vertex (``REGIONS``), or all ``GREY``.

    Args:
        bone_labels: the body model's bone names; vertex_bones: (V,) index of each vertex's dominant bone.
        faces: (F,3) vertex indices; look: 'person' or 'grey'.
    """
    if look == "grey":
        return np.tile(np.array(GREY, np.float64), (len(faces), 1))
    per_bone = np.tile(np.array(GREY, np.float64), (len(bone_labels), 1))
    for b, name in enumerate(bone_labels):
        for prefixes, colour in REGIONS:
            if name.startswith(prefixes):
                per_bone[b] = colour
                break
    return per_bone[vertex_bones[faces[:, 0]]]


# --- scoring (pure) --------------------------------------------------------------------------------------------------


PLAUSIBLE = ("bone_length_cv_pct", "asymmetry_pct", "speed_mm_per_frame")


def mean_speed(joints: np.ndarray, scored: np.ndarray) -> float | None:
    """Mean joint speed, mm/frame, of (T,17,3) root-relative mm over the consecutive frame pairs both ``scored``
    ((T,) bool); None without such a pair. A lifter that ignores the motion shows a speed far below the truth's."""
    pairs = scored[1:] & scored[:-1]
    if not pairs.any():
        return None
    return float(np.linalg.norm(np.diff(joints, axis=0)[pairs], axis=-1).mean())


def _plausible(joints: np.ndarray, scored: np.ndarray) -> dict[str, float | None]:
    """Bone-length CV and left/right asymmetry (%) of the scored frames of (T,17,3) root-relative mm
    (``mocli.metrics.skeleton_plausibility``), and their ``mean_speed``."""
    kept = skeleton_plausibility(joints[scored] / 1000.0)
    out = {k: kept[k] for k in PLAUSIBLE[:2]}
    return {**out, "speed_mm_per_frame": mean_speed(joints, scored)}


FRAME_METRICS = ("mocli_pa_mpjpe_mm", "mediapipe_pa_mpjpe_mm", "mocli_mpjpe_mm", "mocli_scaled_mpjpe_mm")


def _root_relative(joints: np.ndarray) -> np.ndarray:
    return joints - joints[:, :1]


def score_sequence(
    gt: np.ndarray,
    ours: np.ndarray,
    mediapipe: np.ndarray,
    detected: np.ndarray,
    keypoints2d: np.ndarray | None = None,
    gt_px: np.ndarray | None = None,
) -> dict:
    """Scores of one sequence on the frames where MediaPipe detected the person and every input is finite.

    Args:
        gt: (T,17,3) ground-truth joints, metres, camera frame (any root position).
        ours: (T,17,3) mocli joints, metres, camera axes (made root-relative here); NaN where missing.
        mediapipe: (T,17,3) MediaPipe world landmarks in H36M-17 order, metres, MediaPipe's own frame; NaN missing.
        detected: (T,) bool, MediaPipe found the person in that frame.
        keypoints2d, gt_px: optional (T,17,2+) mocli's input keypoints and the ground truth projected, pixels.
    Returns:
        frames, detection_rate (0-1); mocli_pa_mpjpe_mm, mediapipe_pa_mpjpe_mm (per-frame similarity Procrustes);
        mocli_mpjpe_mm (as output), mocli_scaled_mpjpe_mm (one least-squares scale for the sequence) and
        mocli_scale (that scale); keypoints_2d_px (mean 2D distance of the input keypoints to ``gt_px``, when
        given: the detector's share of the error); plausibility {'gt', 'mocli', 'mediapipe'} (bone CV, asymmetry %).
        Metric values are None when no frame is scored.
    """
    if not gt.shape == ours.shape == mediapipe.shape or gt.shape[1:] != (17, 3) or detected.shape != gt.shape[:1]:
        raise ValueError(f"shapes differ: gt {gt.shape}, mocli {ours.shape}, mediapipe {mediapipe.shape}, "
                         f"detected {detected.shape}")  # fmt: skip
    both = detected & np.isfinite(gt).all((1, 2)) & np.isfinite(ours).all((1, 2)) & np.isfinite(mediapipe).all((1, 2))
    if keypoints2d is not None and gt_px is not None:
        both &= np.isfinite(keypoints2d[..., :2]).all((1, 2))
    out: dict = {"frames": int(both.sum()), "detection_rate": float(detected.mean()) if len(detected) else 0.0}
    keys = FRAME_METRICS + ("mocli_scale", "keypoints_2d_px")
    if not both.any():
        return {**out, **dict.fromkeys(keys), "plausibility": {}}
    g_all, p_all, m_all = (_root_relative(x.astype(np.float64)) * 1000.0 for x in (gt, ours, mediapipe))
    g, p, m = g_all[both], p_all[both], m_all[both]
    flat_p, flat_g = p.reshape(1, -1, 3), g.reshape(1, -1, 3)  # one "pose" of all frames: one scale per sequence
    out.update(
        mocli_pa_mpjpe_mm=pa_mpjpe(p, g),
        mediapipe_pa_mpjpe_mm=pa_mpjpe(m, g),
        mocli_mpjpe_mm=mpjpe(p, g),
        mocli_scaled_mpjpe_mm=n_mpjpe(flat_p, flat_g),
        mocli_scale=float((flat_p * flat_g).sum() / max((flat_p**2).sum(), 1e-12)),
        plausibility={name: _plausible(x, both) for name, x in (("gt", g_all), ("mocli", p_all), ("mediapipe", m_all))},
        keypoints_2d_px=None if gt_px is None else mpjpe(keypoints2d[both, :, :2], gt_px[both, :, :2]),
    )
    return out


def summarise(rows: list[dict]) -> dict:
    """Overall figures of per-sequence rows (``score_sequence`` + 'num_frames', 'fit_error_mm').

    Frame metrics are means over all scored frames (weighted by each row's frames), the fit error over all rendered
    frames; the detection rate is detected / rendered frames over all sequences; bone CV and asymmetry are means
    over sequences (each sequence is one body).
    """
    scored = [r for r in rows if r["frames"]]
    total = sum(r["frames"] for r in scored)
    out: dict = {"sequences": len(rows), "frames": total, "rendered_frames": sum(r["num_frames"] for r in rows)}
    out["detection_rate"] = sum(r["detection_rate"] * r["num_frames"] for r in rows) / max(out["rendered_frames"], 1)
    for key in FRAME_METRICS + ("keypoints_2d_px",):
        values = [r.get(key) for r in scored]
        known = total and all(v is not None for v in values)
        out[key] = sum(v * r["frames"] for v, r in zip(values, scored, strict=True)) / total if known else None
    fit = [r for r in rows if r.get("fit_error_mm") is not None]
    n_fit = sum(r["num_frames"] for r in fit)
    out["fit_error_mm"] = sum(r["fit_error_mm"] * r["num_frames"] for r in fit) / n_fit if n_fit else None
    out["plausibility"] = {}
    for who in ("gt", "mocli", "mediapipe") if scored else ():
        for k in PLAUSIBLE:
            values = [r["plausibility"][who][k] for r in scored if r["plausibility"][who][k] is not None]
            out["plausibility"].setdefault(who, {})[k] = float(np.mean(values)) if values else None
    return out


# --- stages (data, fitting, rendering, inference) --------------------------------------------------------------------


def pick_sequences(sequences: list, count: int, frames: int, seed: int) -> list:
    """``count`` sequences spread over the sources: each source's list shuffled with ``default_rng(seed)``, then
    taken in turn (sources sorted by name); sequences with at least ``frames`` frames first."""
    rng = np.random.default_rng(seed)
    by_source: dict[str, list] = {}
    for s in sequences:
        by_source.setdefault(s.source, []).append(s)
    queues = []
    for source in sorted(by_source):
        items = by_source[source]
        order = rng.permutation(len(items))
        long = [items[i] for i in order if items[i].num_frames >= frames]
        queues.append(long + [items[i] for i in order if items[i].num_frames < frames])
    chosen: list = []
    while len(chosen) < count and any(queues):
        for q in queues:
            if q and len(chosen) < count:
                chosen.append(q.pop(0))
    return chosen


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


def render_sequence(seq, body, colours: np.ndarray, out: Path, seed: int, fit_options) -> RenderedSequence:
    """Camera, Anny fit and video of one MocapSequence (already cut to its frames)."""
    from mocli.evaluation.mocap import sequence_camera
    from mocli.mesh.meshes import fit_mesh
    from mocli.utils.io import atomic_path

    camera = sequence_camera(seq, seed, VIEW)
    gt_cam = world_to_camera(seq.joints, camera.R, camera.t)  # (T,17,3)
    t0 = time.perf_counter()
    mesh = fit_mesh(body, _root_relative(gt_cam), "anny", fit_options)
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


@dataclass
class Pipeline:
    """What ``mocli infer`` loads once: the lifter and its options (MediaPipe detector, flip TTA, fp32 on CPU)."""

    lifter: object
    options: object
    device: object
    weights: Path


def load_pipeline(model: str | None, device: str = "auto", seed: int = 0, bones: str = "fixed") -> Pipeline:
    """The lifter (``--model`` name or checkpoint, default the shipped one) and infer's default options."""
    from mocli.api import load_lifter, model_clip_len
    from mocli.keypoints import DetectorOptions
    from mocli.lift import LiftOptions
    from mocli.models.registry import default_weights, resolve_weights
    from mocli.pipeline import InferOptions
    from mocli.utils.device import resolve_device, resolve_precision
    from mocli.utils.seed import seed_everything

    dev = resolve_device(device)
    seed_everything(seed)
    weights = resolve_weights(model) if model else default_weights()
    lifter = load_lifter(weights, device=str(dev))
    lift = LiftOptions(clip_len=model_clip_len(lifter), precision=resolve_precision(dev, "auto"), bones=bones)
    options = InferOptions(detector="mediapipe", detector_options=DetectorOptions(device=device), lift=lift)
    return Pipeline(lifter, options, dev, weights)


@dataclass
class InferOutput:
    """What one video gives (T frames).

    joints3d: (T,17,3) mocli joints, metres, root-relative, camera axes, NaN where missing.
    mediapipe: (T,17,3) MediaPipe world landmarks in H36M-17 order, metres, its own frame, NaN where missing.
    keypoints2d: (T,17,3) mocli's input, pixels + confidence, NaN where missing.
    detected: (T,) bool, MediaPipe found the person (interpolated frames not counted). seconds: wall time.
    """

    joints3d: np.ndarray
    mediapipe: np.ndarray
    keypoints2d: np.ndarray
    detected: np.ndarray
    seconds: float


def run_infer(video: Path, out_dir: Path, pipe: Pipeline, num_frames: int) -> InferOutput:
    """``mocli infer``'s steps on one video of ``num_frames`` frames; writes ``out_dir/joints3d.npz`` as infer does.

    A video where MediaPipe finds nobody gives NaN everywhere and no detection.
    """
    from mocli.pipeline import InferInput, load_sequences, run_pose3d
    from mocli.results import write_joints_npz

    t0 = time.perf_counter()
    try:
        found = load_sequences(InferInput(video, "video"), pipe.options)
    except InputError:  # MediaPipe found nobody in any frame
        nothing = np.full((num_frames, 17, 3), np.nan)
        return InferOutput(nothing, nothing, nothing, np.zeros(num_frames, bool), time.perf_counter() - t0)
    seq = found[0][1]
    detected = np.asarray(seq.valid, bool)
    result = run_pose3d(seq, pipe.lifter, pipe.options.lift, pipe.device)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_joints_npz(result, out_dir / "joints3d.npz")
    ours = result.joints3d.astype(np.float64)
    world = seq.extras.get("world_landmarks33")
    mp = to_h36m(world.astype(np.float64), "mediapipe", conf=False) if world is not None else np.full_like(ours, np.nan)
    return InferOutput(ours, mp, seq.keypoints.astype(np.float64), detected, time.perf_counter() - t0)


# --- report -----------------------------------------------------------------------------------------------------------


def _f(value, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def print_report(rows: list[dict], overall: dict) -> None:
    """Two tables (accuracy, skeleton plausibility) per sequence and overall."""
    print(f"\n{'sequence':34} {'frames':>6} {'det %':>6} {'fit mm':>7} {'2D px':>6} {'PA mocli':>9} {'PA MP':>7} "
          f"{'MPJPE mocli':>11} {'scaled':>7} {'scale':>6}")  # fmt: skip
    for r in rows + [dict(overall, name="overall", mocli_scale=None)]:
        print(f"{r['name'][:34]:34} {r['frames']:>6} {100 * r['detection_rate']:>6.1f} {_f(r['fit_error_mm']):>7} "
              f"{_f(r.get('keypoints_2d_px')):>6} "
              f"{_f(r['mocli_pa_mpjpe_mm']):>9} {_f(r['mediapipe_pa_mpjpe_mm']):>7} {_f(r['mocli_mpjpe_mm']):>11} "
              f"{_f(r['mocli_scaled_mpjpe_mm']):>7} {_f(r['mocli_scale'], 2):>6}")  # fmt: skip
    print(f"\n{'bone CV % / asym % / speed mm/f':34} {'GT':>21} {'mocli':>21} {'MediaPipe':>21}")
    for r in rows + [dict(overall, name="overall (mean of sequences)")]:
        p = r["plausibility"]
        cells = [" / ".join(_f(p[w][k], 2) for k in PLAUSIBLE) if w in p else "-" for w in ("gt", "mocli", "mediapipe")]
        print(f"{r['name'][:34]:34} " + " ".join(f"{c:>21}" for c in cells))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, action="append", required=True, help="mocli HDF5 mocap file (repeatable)")
    ap.add_argument("--sequences", type=int, default=6, help="validation sequences to render")
    ap.add_argument("--frames", type=int, default=150, help="frames per sequence, from the start")
    ap.add_argument("--seed", type=int, default=0, help="sequence choice, cameras and backgrounds")
    ap.add_argument("--model", help="lifter weights name or checkpoint (default: the shipped one)")
    ap.add_argument("--look", choices=("person", "grey"), default="person", help="body colours")
    ap.add_argument("--fit-iterations", type=int, default=200, help="L-BFGS iterations of the Anny pose fit")
    ap.add_argument("--bones", choices=("fixed", "free"), default="fixed", help="as infer's --bones")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, help="folder for videos and infer outputs (default: a temporary folder)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    try:
        return _run(args)
    except MocliError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from mocli.evaluation.mocap import load_mocap_sequences
    from mocli.mesh.anny import AnnyBody
    from mocli.mesh.fit import FitOptions
    from mocli.utils.io import atomic_path

    if args.sequences < 1 or args.frames < 3:
        raise MocliError("--sequences must be >= 1 and --frames >= 3")
    missing = [str(p) for p in args.data if not p.is_file()]
    if missing:
        raise MocliError(f"no such file: {', '.join(missing)}")
    out = args.out or Path(tempfile.mkdtemp(prefix="mocli_rendered_"))
    t0 = time.perf_counter()
    chosen = pick_sequences(load_mocap_sequences(args.data, split="val", fps=30), args.sequences, args.frames,
                            args.seed)  # fmt: skip
    chosen = [replace(s, joints=s.joints[: args.frames]) for s in chosen]
    body = AnnyBody()
    dominant = body.model.vertex_bone_indices.gather(1, body.model.vertex_bone_weights.argmax(1, keepdim=True))
    colours = region_colours(body.bone_labels, dominant[:, 0].numpy(), np.asarray(body.faces), args.look)
    pipe = load_pipeline(args.model, args.device, args.seed, args.bones)
    setup = time.perf_counter() - t0
    print(f"{len(chosen)} sequences, model {pipe.weights.name}, outputs in {out} (setup {setup:.1f} s)", flush=True)
    fit_options = FitOptions(iterations=args.fit_iterations)
    rows = []
    for seq in chosen:
        rendered = render_sequence(seq, body, colours, out, args.seed, fit_options)
        res = run_infer(rendered.video, out / "infer" / rendered.video.stem, pipe, len(rendered.gt_cam))
        n = min(len(res.joints3d), len(rendered.gt_cam))  # a decoder may drop a trailing frame
        cam = rendered.camera
        gt_px = project_perspective(rendered.gt_cam[:n], cam.focal, cam.centre)
        row = {"name": seq.name, "source": seq.source, "num_frames": int(len(rendered.gt_cam)),
               "video": str(rendered.video), "fit_error_mm": float(np.nanmean(rendered.fit_error_mm))}  # fmt: skip
        row.update(score_sequence(rendered.gt_cam[:n], res.joints3d[:n], res.mediapipe[:n], res.detected[:n],
                                  res.keypoints2d[:n], gt_px))  # fmt: skip
        row["detection_rate"] = float(res.detected[:n].sum() / len(rendered.gt_cam))
        row["seconds"] = {**{k: round(v, 2) for k, v in rendered.seconds.items()}, "infer": round(res.seconds, 2)}
        rows.append(row)
        s = row["seconds"]
        print(f"  {seq.name}: {row['num_frames']} frames, fit {s['fit']:.1f} s, render {s['render']:.1f} s, "
              f"infer {s['infer']:.1f} s, detected {100 * row['detection_rate']:.0f} %", flush=True)  # fmt: skip
    overall = summarise(rows)
    overall["seconds"] = {k: round(sum(r["seconds"][k] for r in rows), 2) for k in ("fit", "render", "infer")}
    print_report(rows, overall)
    print(f"\ntimings (s, all sequences): {overall['seconds']}; setup {setup:.1f}")
    if args.json:
        info = {"data": [str(p) for p in args.data], "frames": args.frames, "seed": args.seed, "look": args.look,
                "model": str(pipe.weights), "bones": args.bones, "view": VIEW.__dict__,
                "fit_iterations": args.fit_iterations}  # fmt: skip
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps({"info": info, "overall": overall, "sequences": rows}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
