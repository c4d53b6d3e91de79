"""``preview.mp4``: each input frame with its 2D skeleton, beside a panel with the 3D skeleton (OpenCV only).

The video is decoded and encoded one frame at a time, so memory stays flat in the video's length. Inputs without a
video (keypoint files) get a blank canvas of the image size. Frames taller than ``max_height`` are scaled down.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mocli.results import MotionResult
from mocli.skeleton import H36M_17
from mocli.utils.io import atomic_path
from mocli.video import probe_video, read_frames

__all__ = [
    "PreviewStyle",
    "PERSON_COLOURS",
    "panel_width",
    "project_3d",
    "draw_skeleton_2d",
    "person_colours",
    "scene_joints",
    "render_preview",
    "render_people",
]

log = logging.getLogger(__name__)

# BGR colours by side of the body: left blue, right orange, centre light grey.
LEFT, RIGHT, CENTRE = (255, 140, 30), (30, 120, 255), (210, 210, 210)
BACKGROUND, GRID = (32, 32, 32), (80, 80, 80)
# BGR colour of each person when several are drawn (cycled): orange, sky blue, green, magenta, yellow, red, cyan.
PERSON_COLOURS = [(0, 140, 255), (235, 170, 60), (60, 200, 60), (200, 60, 220), (40, 220, 240), (50, 50, 230),
                  (220, 220, 40)]  # fmt: skip
SIDE_BY_SIDE_M = 1.0  # spacing of people without a trajectory in the 3D scene


@dataclass(frozen=True)
class PreviewStyle:
    """Look of the preview.

    Attributes:
        min_confidence: 2D joints below this confidence (or NaN) are not drawn.
        max_height: frames taller than this (pixels) are scaled down, for speed and file size.
        yaw_deg: turn of the 3D view about the vertical (0 = seen from the camera; 3/4 view by default).
        pitch_deg: how far the 3D view looks down on the person.
        fallback_fps: frame rate when the result has none.
    """

    min_confidence: float = 0.3
    max_height: int = 720
    yaw_deg: float = 40.0
    pitch_deg: float = 15.0
    fallback_fps: float = 30.0


def _joint_colours() -> list[tuple[int, int, int]]:
    return [LEFT if n.startswith("left") else RIGHT if n.startswith("right") else CENTRE for n in H36M_17.joint_names]


def panel_width(height: int) -> int:
    """Width in pixels of the 3D panel beside a frame of ``height`` pixels: square, rounded up to even."""
    return height + height % 2


# ------------------------------------------------------------------------------------------------ 3D panel


def _view_rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """(3, 3) world (Y up) -> view (x right, y up, z towards the viewer): turn about y, then tilt about x."""
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    turn = np.array([[np.cos(yaw), 0, -np.sin(yaw)], [0, 1, 0], [np.sin(yaw), 0, np.cos(yaw)]])
    tilt = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
    return tilt @ turn


@dataclass(frozen=True)
class PanelView:
    """Orthographic view of a whole sequence: fixed scale and floor, so the skeleton does not jump between frames."""

    rotation: np.ndarray  # (3, 3) world (Y up) -> view
    scale: float  # pixels per metre
    centre: tuple[float, float]  # pixel position of the root
    floor: float  # metres, world y of the floor (the lowest joint of the sequence)


def _make_view(joints3d: np.ndarray, size: int, style: PreviewStyle) -> PanelView:
    """A view that fits every frame of (T, 17, 3) metres (camera axes) into a ``size`` x ``size`` panel."""
    world = joints3d * np.array([1.0, -1.0, -1.0])  # Y up
    finite = world[np.isfinite(world).all(axis=(1, 2))]
    radius = float(np.abs(finite).max()) if len(finite) else 1.0
    floor = float(finite[..., 1].min()) if len(finite) else -1.0
    top = float(finite[..., 1].max()) if len(finite) else 1.0
    scale = 0.38 * size / max(radius, 0.5)
    centre = (size / 2, size / 2 + scale * (top + floor) / 2)  # the body's mid-height at the panel's middle
    return PanelView(_view_rotation(style.yaw_deg, style.pitch_deg), scale, centre, floor)


def project_3d(points: np.ndarray, view: PanelView) -> tuple[np.ndarray, np.ndarray]:
    """Orthographic projection into the panel.

    Args:
        points: (..., 3) metres, Y-up world axes.
    Returns:
        ((..., 2) pixel x, y; (...,) depth, larger = nearer the viewer).
    """
    v = points @ view.rotation.T
    px = np.stack([view.centre[0] + view.scale * v[..., 0], view.centre[1] - view.scale * v[..., 1]], axis=-1)
    return px, v[..., 2]


def _floor_image(size: int, view: PanelView) -> np.ndarray:
    """The empty panel: background and a 2 m x 2 m floor grid (0.25 m squares) under the person."""
    panel = np.full((size, size, 3), BACKGROUND, np.uint8)
    ticks = np.linspace(-1.0, 1.0, 9)
    for t in ticks:
        for a, b in (((t, -1.0), (t, 1.0)), ((-1.0, t), (1.0, t))):
            ends = np.array([[a[0], view.floor, a[1]], [b[0], view.floor, b[1]]])
            (p, q), _ = project_3d(ends, view)
            cv2.line(panel, _pt(p), _pt(q), GRID, 1, cv2.LINE_AA)
    return panel


def _draw_panel(base: np.ndarray, joints: np.ndarray, view: PanelView, thickness: int) -> np.ndarray:
    """A copy of ``base`` with the (17, 3) metres camera-axes skeleton drawn, far bones first; NaN: a note."""
    panel = base.copy()
    if not np.isfinite(joints).all():
        cv2.putText(panel, "no person", (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, CENTRE, 1, cv2.LINE_AA)
        return panel
    px, depth = project_3d(joints * np.array([1.0, -1.0, -1.0]), view)
    colours = _joint_colours()
    bones = sorted(H36M_17.bones, key=lambda pc: depth[pc[0]] + depth[pc[1]])
    for p, c in bones:
        cv2.line(panel, _pt(px[p]), _pt(px[c]), colours[c], thickness, cv2.LINE_AA)
    for j in np.argsort(depth):
        cv2.circle(panel, _pt(px[j]), thickness + 1, colours[j], -1, cv2.LINE_AA)
    return panel


def _draw_3d_people(panel, people: list[np.ndarray], colours: list[list], view: PanelView, thickness: int) -> None:
    """Draw (17, 3) camera-axes skeletons (finite ones only) on ``panel`` in place, far bones of everyone first."""
    segments = []  # (depth, kind, person, a, b)
    projected = []
    for k, joints in enumerate(people):
        if not np.isfinite(joints).all():
            projected.append(None)
            continue
        px, depth = project_3d(joints * np.array([1.0, -1.0, -1.0]), view)
        projected.append(px)
        segments += [(depth[p] + depth[c], 0, k, p, c) for p, c in H36M_17.bones]
        segments += [(2 * depth[j], 1, k, j, j) for j in range(len(joints))]
    for _, kind, k, a, b in sorted(segments, key=lambda s: (s[0], s[1])):
        px = projected[k]
        if kind == 0:
            cv2.line(panel, _pt(px[a]), _pt(px[b]), colours[k][b], thickness, cv2.LINE_AA)
        else:
            cv2.circle(panel, _pt(px[a]), thickness + 1, colours[k][a], -1, cv2.LINE_AA)


# ------------------------------------------------------------------------------------------------ 2D overlay


def _pt(xy: np.ndarray) -> tuple[int, int]:
    return int(round(float(xy[0]))), int(round(float(xy[1])))


def draw_skeleton_2d(
    frame: np.ndarray, keypoints: np.ndarray, min_confidence: float, thickness: int, colours: list | None = None
) -> None:
    """Draw (17, 3) pixels + confidence on ``frame`` (BGR, in place); low-confidence or NaN joints are skipped.

    ``colours``: (17,) BGR per joint (a bone takes its child's); default: left blue, right orange, centre grey.
    """
    ok = np.isfinite(keypoints).all(axis=-1) & (np.nan_to_num(keypoints[:, 2]) >= min_confidence)
    colours = colours or _joint_colours()
    for p, c in H36M_17.bones:
        if ok[p] and ok[c]:
            cv2.line(frame, _pt(keypoints[p]), _pt(keypoints[c]), colours[c], thickness, cv2.LINE_AA)
    for j in np.flatnonzero(ok):
        cv2.circle(frame, _pt(keypoints[j]), thickness + 1, colours[j], -1, cv2.LINE_AA)


# ------------------------------------------------------------------------------------------------ video


def _frame_size(result: MotionResult, video: Path | None) -> tuple[int, int]:
    """(w, h) of the input frames: the video's, else the result's image size, else the keypoints' extent."""
    if video is not None:
        info = probe_video(video)  # InputError for a missing or unreadable video, before anything is written
        return info.width, info.height
    w, h = (int(v) for v in result.image_size)
    if w > 0 and h > 0:
        return w, h
    xy = result.keypoints2d[..., :2]
    extent = np.nanmax(xy, axis=(0, 1)) if np.isfinite(xy).any() else np.array([640.0, 480.0])
    return int(extent[0]) + 20, int(extent[1]) + 20


def _input_frames(video: Path | None, size: tuple[int, int], num_frames: int) -> Iterator[np.ndarray]:
    """BGR frames: the first ``num_frames`` of the video, then blank canvases of ``size`` (w, h) for ever."""
    blank = np.zeros((size[1], size[0], 3), np.uint8)
    frames = read_frames(video, max_frames=num_frames) if video is not None else iter(())
    for frame in itertools.chain(frames, itertools.repeat(None)):
        yield blank.copy() if frame is None else frame


def _even(n: int) -> int:
    return max(2, n - n % 2)


def render_preview(
    result: MotionResult, path: str | Path, video: str | Path | None = None, style: PreviewStyle | None = None
) -> Path:
    """Write the preview video (mp4v, the result's fps, atomic).

    Args:
        result: one person's motion; its T frames are rendered (the first T frames of ``video``).
        path: output file, e.g. ``preview.mp4``.
        video: the input video, or None to draw the 2D skeleton on a blank canvas of ``result.image_size``.
        style: drawing options.
    Returns:
        ``path``. The output is ``(w' + panel_width(h'))`` x ``h'`` pixels, where (w', h') is the frame size after
        scaling to ``style.max_height`` (and rounding down to even sizes).
    """
    style = style or PreviewStyle()
    video = Path(video) if video is not None else None
    width, height = _frame_size(result, video)
    factor = min(1.0, style.max_height / height)
    out_w, out_h = _even(round(width * factor)), _even(round(height * factor))
    size = panel_width(out_h)
    view = _make_view(result.joints3d, size, style)
    base = _floor_image(size, view)
    thickness = max(1, round(out_h / 240))
    keypoints = result.keypoints2d.astype(np.float64) * np.array([out_w / width, out_h / height, 1.0])
    fps = result.fps if result.fps > 0 else style.fallback_fps

    def compose(t: int, frame: np.ndarray) -> np.ndarray:
        draw_skeleton_2d(frame, keypoints[t], style.min_confidence, thickness)
        return np.hstack([frame, _draw_panel(base, result.joints3d[t], view, thickness)])

    return _write_preview(path, video, (out_w, out_h), size, fps, result.num_frames, compose)


def _write_preview(
    path: str | Path,
    video: Path | None,
    frame_size: tuple[int, int],
    panel: int,
    fps: float,
    num_frames: int,
    compose: Callable[[int, np.ndarray], np.ndarray],
) -> Path:
    """Write ``num_frames`` frames of ``compose(t, frame)`` (the input frame, or a blank canvas, at ``frame_size``
    (w, h) with the ``panel`` pixels wide 3D panel beside it) to ``path`` (mp4v, atomic); returns ``path``."""
    out_w, out_h = frame_size
    frames = _input_frames(video, frame_size, num_frames)
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (out_w + panel, out_h))
        if not writer.isOpened():
            raise OSError(f"{path}: OpenCV cannot open an mp4v video writer")
        try:
            for t in range(num_frames):
                frame = next(frames)
                if frame.shape[:2] != (out_h, out_w):
                    frame = cv2.resize(frame, (out_w, out_h), interpolation=cv2.INTER_AREA)
                writer.write(compose(t, frame))
        finally:
            writer.release()
    return Path(path)


# ------------------------------------------------------------------------------------------------ several people


def person_colours(index: int) -> list[tuple[int, int, int]]:
    """(17,) BGR joint colours of person ``index`` (0-based) among several: the person's colour from
    ``PERSON_COLOURS`` on their right side and centre, a lighter tint of it on their left side."""
    base = np.array(PERSON_COLOURS[index % len(PERSON_COLOURS)], np.float64)
    light = tuple(int(round(v)) for v in base + 0.45 * (255 - base))
    dark = tuple(int(v) for v in base)
    return [light if n.startswith("left") else dark for n in H36M_17.joint_names]


def scene_joints(results: list[MotionResult], world: bool = True) -> list[np.ndarray]:
    """Each person's (T, 17, 3) joints placed in one 3D scene, metres, camera axes.

    With ``world`` each person whose result has a trajectory stands at it (``joints3d + root``: the camera frame);
    people without one (or all, without ``world``) stand side by side, ``SIDE_BY_SIDE_M`` apart along x, centred,
    at the mean depth of the placed people (or at the origin).
    """
    placed = [world and r.root is not None and np.isfinite(r.root).any() for r in results]
    depths = [np.nanmean(r.root[:, 2]) for r, ok in zip(results, placed, strict=True) if ok]
    depth = float(np.mean(depths)) if depths else 0.0
    loose = [k for k, ok in enumerate(placed) if not ok]
    out = []
    for k, (r, ok) in enumerate(zip(results, placed, strict=True)):
        if ok:
            out.append(r.joints3d.astype(np.float64) + r.root[:, None, :])
        else:
            x = (loose.index(k) - (len(loose) - 1) / 2) * SIDE_BY_SIDE_M
            out.append(r.joints3d.astype(np.float64) + np.array([x, 0.0, depth]))
    return out


def _scene_view(people: list[np.ndarray], size: int, style: PreviewStyle) -> tuple[PanelView, np.ndarray]:
    """A view fitting every person of the scene over the whole sequence, and the scene centre (3,) camera axes
    (mean pelvis x, z over people and frames; y = 0) that is drawn at the panel's centre."""
    pelvis = np.concatenate([p[:, 0] for p in people])
    pelvis = pelvis[np.isfinite(pelvis).all(-1)]
    centre = np.array([pelvis[:, 0].mean(), 0.0, pelvis[:, 2].mean()]) if len(pelvis) else np.zeros(3)
    return _make_view(np.concatenate(people, axis=0) - centre, size, style), centre


def _scene_floor(size: int, view: PanelView, people: list[np.ndarray]) -> np.ndarray:
    """The empty panel with a floor grid (0.5 m squares) covering every person's ground positions, at least 2 m."""
    panel = np.full((size, size, 3), BACKGROUND, np.uint8)
    pelvis = np.concatenate([p[:, 0] for p in people])
    pelvis = pelvis[np.isfinite(pelvis).all(-1)]
    half = max(1.0, float(np.abs(pelvis[:, [0, 2]]).max()) + 0.5) if len(pelvis) else 1.0
    half = np.ceil(half * 2) / 2
    for t in np.arange(-half, half + 1e-9, 0.5):
        for a, b in (((t, -half), (t, half)), ((-half, t), (half, t))):
            (p, q), _ = project_3d(np.array([[a[0], view.floor, a[1]], [b[0], view.floor, b[1]]]), view)
            cv2.line(panel, _pt(p), _pt(q), GRID, 1, cv2.LINE_AA)
    return panel


def render_people(
    results: list[MotionResult],
    path: str | Path,
    video: str | Path | None = None,
    style: PreviewStyle | None = None,
    *,
    world: bool = True,
    labels: list[str] | None = None,
) -> Path:
    """Write one preview video of several people of the same input (mp4v, atomic).

    Every person is drawn on the frames in their own colour (``person_colours``, in list order) and in one 3D scene
    beside them, placed at their trajectory (``scene_joints``); each is labelled on the frames (``labels``,
    default "1", "2", ...) above their head. Frame count, size and fps follow the first result, as in
    ``render_preview``.

    Args:
        results: the people's motions, all over the same T frames of one input.
        world: place people at their ``root`` trajectories (else side by side).
    Returns:
        ``path``.
    """
    if not results:
        raise ValueError("render_people needs at least one result")
    if any(r.num_frames != results[0].num_frames for r in results):
        raise ValueError("every person's result must have the same number of frames")
    style = style or PreviewStyle()
    labels = labels or [str(k + 1) for k in range(len(results))]
    first = results[0]
    video = Path(video) if video is not None else None
    width, height = _frame_size(first, video)
    factor = min(1.0, style.max_height / height)
    out_w, out_h = _even(round(width * factor)), _even(round(height * factor))
    size = panel_width(out_h)
    people = scene_joints(results, world)
    view, centre = _scene_view(people, size, style)
    people = [p - centre for p in people]
    base = _scene_floor(size, view, people)
    thickness = max(1, round(out_h / 240))
    colours = [person_colours(k) for k in range(len(results))]
    scale = np.array([out_w / width, out_h / height, 1.0])
    keypoints = [r.keypoints2d.astype(np.float64) * scale for r in results]
    fps = first.fps if first.fps > 0 else style.fallback_fps

    def compose(t: int, frame: np.ndarray) -> np.ndarray:
        for kp, col, label in zip(keypoints, colours, labels, strict=True):
            draw_skeleton_2d(frame, kp[t], style.min_confidence, thickness, col)
            head = kp[t, 10]
            if np.isfinite(head).all() and head[2] >= style.min_confidence:
                org = _pt(head[:2] - [4 * thickness, 6 * thickness])
                cv2.putText(frame, label, org, cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thickness, col[0], thickness)
        panel = base.copy()
        _draw_3d_people(panel, [p[t] for p in people], colours, view, thickness)
        return np.hstack([frame, panel])

    return _write_preview(path, video, (out_w, out_h), size, fps, first.num_frames, compose)
