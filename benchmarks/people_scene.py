"""Scenes of several people for ``rendered_people.py``: mocap sequences placed side by side in one world, seen by
one camera, and drawn together (``raster.render_mesh`` on all bodies at once, so nearer bodies hide farther ones).

Frames (metres): a sequence's mocap world (any up axis) is turned into the *level frame* of a camera standing at
the origin and looking horizontally: x right, y down, z forward, the floor at ``y = camera_height``. The scene
camera is that camera tilted down by ``pitch`` (``scene_camera``); its frame is the one mocli's trajectories use
(x right, y down, z forward).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from raster import REGIONS, make_background, recolour, render_mesh

from mocli.data.cameras import Camera, focal_from_fov, horizontal_basis, up_vector, world_to_camera
from mocli.data.transforms import root_relative
from mocli.errors import MocliError

RIGHT_HIP, LEFT_HIP = 1, 4  # H36M-17
CROSS_AHEAD_M = 0.7  # the person who walks across the scene is this much nearer than the nearest other one
# (shirt, trousers) BGR per person; the first is raster.REGIONS' own clothes
CLOTHES = (((60, 70, 170), (90, 55, 40)), ((60, 150, 60), (130, 150, 160)), ((40, 190, 220), (35, 35, 35)),
           ((170, 90, 40), (50, 80, 120)), ((150, 60, 150), (120, 120, 120)))  # fmt: skip


@dataclass(frozen=True)
class Placement:
    """Where one person stands: lateral position x (m; from ``x_start`` to ``x_end`` over the clip, equal unless
    the person crosses the scene), depth (m, level frame), and the yaw offset (deg) from facing the camera."""

    x_start: float
    x_end: float
    depth: float
    yaw_deg: float

    @property
    def crosses(self) -> bool:
        return self.x_start != self.x_end


def plan_scene(
    count: int,
    seed: int,
    spacing: tuple[float, float] = (1.3, 1.8),
    depth: tuple[float, float] = (4.0, 5.5),
    yaw_deg: float = 60.0,
    cross: bool = True,
) -> list[Placement]:
    """``count`` people side by side, left to right, neighbours ``spacing`` metres apart (drawn), the row centred
    on the optical axis; depths drawn one per stratum of ``depth`` (so they differ by at least 0.4 stratum), in a
    random order; yaw offsets uniform in +-``yaw_deg``. With ``cross`` (and ``count`` >= 2) the first person walks
    from the leftmost to the rightmost place, ``CROSS_AHEAD_M`` nearer than everyone else, passing in front of them.
    """
    if count < 1:
        raise ValueError(f"a scene needs at least one person, got {count}")
    rng = np.random.default_rng([seed, 17])
    gaps = rng.uniform(*spacing, size=count - 1)
    xs = np.concatenate([[0.0], np.cumsum(gaps)])
    xs -= xs[-1] / 2
    strata = (rng.permutation(count) + rng.uniform(0.2, 0.8, size=count)) / count
    depths = depth[0] + (depth[1] - depth[0]) * strata
    yaws = rng.uniform(-yaw_deg, yaw_deg, size=count)
    people = [Placement(float(x), float(x), float(z), float(a)) for x, z, a in zip(xs, depths, yaws, strict=True)]
    if cross and count >= 2:
        people[0] = Placement(float(xs[0]), float(xs[-1]), float(depths.min() - CROSS_AHEAD_M), float(yaws[0]))
    return people


def level_frame(joints: np.ndarray, up_axis: str) -> np.ndarray:
    """(T,J,3) mocap world joints (metres, ``up_axis`` up) -> the level frame (x right, y down, z forward) with the
    clip's mean pelvis over the origin and its lowest joint on the floor plane y = 0 (a proper rotation: a body is
    never mirrored)."""
    up = up_vector(up_axis)
    h0, h1 = horizontal_basis(up)  # (h0, h1, up) right-handed, so rows (h0, -up, h1) are a rotation
    level = np.asarray(joints, np.float64) @ np.stack([h0, -up, h1]).T
    centre = np.nanmean(level[:, 0], axis=0)
    return level - np.array([centre[0], np.nanmax(level[..., 1]), centre[2]])


def place_person(level: np.ndarray, placement: Placement, camera_height: float) -> np.ndarray:
    """(T,J,3) ``level_frame`` joints -> (T,J,3) level-camera frame: turned about the vertical so that at frame 0
    the hips point right-to-left in the image (the person faces the camera) turned further by ``yaw_deg``, then
    moved to the placement (x linear in time from ``x_start`` to ``x_end``) with the floor ``camera_height`` below
    the camera."""
    hips = level[0, RIGHT_HIP] - level[0, LEFT_HIP]
    angle = np.arctan2(hips[2], hips[0]) - (np.pi + np.radians(placement.yaw_deg))
    c, s = np.cos(angle), np.sin(angle)
    turn = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # (x, z) angle theta -> theta - angle
    x = np.linspace(placement.x_start, placement.x_end, len(level))
    offset = np.stack([x, np.full_like(x, camera_height), np.full_like(x, placement.depth)], -1)
    return level @ turn.T + offset[:, None, :]


def scene_camera(width: int, height: int, fov_deg: float, pitch_deg: float) -> Camera:
    """The scene camera at the level frame's origin, tilted down by ``pitch_deg``: ``Xc = R @ X_level``."""
    p = np.radians(pitch_deg)
    R = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(p), -np.sin(p)], [0.0, np.sin(p), np.cos(p)]])
    focal = focal_from_fov(fov_deg, width)
    return Camera(R=R, t=np.zeros(3), focal=focal, centre=np.array([width / 2, height / 2]), image_size=(width, height))


def scene_joints(sequences: list, placements: list[Placement], camera: Camera, camera_height: float) -> np.ndarray:
    """(K,T,17,3) every person's H36M-17 joints in the scene camera's frame, metres (sequences cut to T frames)."""
    placed = [place_person(level_frame(s.joints, s.up_axis), p, camera_height)
              for s, p in zip(sequences, placements, strict=True)]  # fmt: skip
    return world_to_camera(np.stack(placed), camera.R, camera.t)


def person_colours(colours: np.ndarray, index: int) -> np.ndarray:
    """(F,3) ``raster.region_colours`` with the shirt and trousers of person ``index`` (``CLOTHES``, cycled)."""
    shirt, trousers = CLOTHES[index % len(CLOTHES)]
    return recolour(colours, ((REGIONS[3][1], shirt), (REGIONS[2][1], trousers)))


def scene_frame(verts: list[np.ndarray], faces: np.ndarray, colours: list[np.ndarray], camera: Camera,
                background: np.ndarray) -> np.ndarray:  # fmt: skip
    """One image of several bodies: (V,3) camera-frame vertices each (a non-finite body is left out), one shared
    (F,3) face list, (F,3) colours each; all faces go to one painter's-algorithm pass."""
    keep = [i for i, v in enumerate(verts) if np.isfinite(v).all()]
    if not keep:
        return background.copy()
    n = len(verts[0])
    all_verts = np.concatenate([verts[i] for i in keep])
    all_faces = np.concatenate([faces + j * n for j in range(len(keep))])
    all_colours = np.concatenate([colours[i] for i in keep])
    return render_mesh(all_verts, all_faces, all_colours, camera.focal, camera.centre, background)


@dataclass
class RenderedScene:
    """A scene made into a video: ground truth (K,T,17,3) metres in the camera frame, per-person Anny vertices
    (K,T,V,3) in the camera frame (for the one-person video), fit error (K,T) mm, wall times."""

    gt_cam: np.ndarray
    verts: np.ndarray
    fit_error_mm: np.ndarray
    video: Path
    seconds: dict


def fit_people(body, gt_cam: np.ndarray, fit_options) -> tuple[np.ndarray, np.ndarray]:
    """The Anny body fitted to each person (``mocli.mesh.meshes.fit_mesh``, as ``rendered_mocap.py``): (K,T,V,3)
    vertices in the camera frame, (K,T) fit error in mm."""
    from mocli.mesh.meshes import fit_mesh

    verts, errors = [], []
    for person in gt_cam:
        mesh = fit_mesh(body, root_relative(person), "anny", fit_options)
        verts.append(mesh.vertices.astype(np.float64) + person[:, :1])
        errors.append(mesh.error_mm)
    return np.stack(verts), np.stack(errors)


def write_video(path: Path, frames, fps: float, size: tuple[int, int]) -> Path:
    """Write an iterable of (H,W,3) uint8 BGR images to ``path`` (mp4), atomically."""
    from mocli.utils.io import atomic_path

    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), size)
        if not writer.isOpened():
            raise MocliError(f"{path}: OpenCV cannot write mp4 videos here")
        try:
            for image in frames:
                writer.write(image)
        finally:
            writer.release()
    return path


def render_scene(gt_cam, body, colours, camera, fps, video: Path, seed: int, fit_options, people=None):
    """Fit every person, then draw them together (``people``: indices to draw, default all) into ``video``."""
    t0 = time.perf_counter()
    verts, errors = fit_people(body, gt_cam, fit_options)
    t1 = time.perf_counter()
    w, h = camera.image_size
    background = make_background(w, h, np.random.default_rng([seed, zlib.crc32(video.stem.encode())]))
    faces = np.asarray(body.faces)
    dressed = [person_colours(colours, k) for k in range(len(gt_cam))]
    frames = (scene_frame(list(verts[:, t]), faces, dressed, camera, background) for t in range(verts.shape[1]))
    write_video(video, frames, fps, (w, h))
    return RenderedScene(gt_cam, verts, errors, video, {"fit": t1 - t0, "render": time.perf_counter() - t1})


def render_alone(scene: RenderedScene, person: int, body, colours, camera, fps, video: Path, seed: int) -> Path:
    """The video of one person of a rendered scene alone (same fit, camera and background)."""
    w, h = camera.image_size
    background = make_background(w, h, np.random.default_rng([seed, zlib.crc32(scene.video.stem.encode())]))
    faces, dressed = np.asarray(body.faces), [person_colours(colours, person)]
    frames = (scene_frame([v], faces, dressed, camera, background) for v in scene.verts[person])
    return write_video(video, frames, fps, (w, h))
