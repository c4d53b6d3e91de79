"""Where the camera of a rendered training sequence stands (the ranges it is drawn from, each sequence's camera, its
angles) and how the body is dressed, for ``rendered_training.py`` (pure functions: they render and detect nothing).

Camera axes: x right, y down, z forward, metres; a camera moves along its own optical axis by changing ``t[2]``
(``x_cam = R x + t``), which keeps its rotation, focal length and principal point. Colours are BGR 0-255.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from raster import REGIONS, recolour  # benchmarks/raster.py, beside this script
from rendered_views import VIEW, camera_pitch_deg, make_view, parse_range

from mocli.data.cameras import Camera, ViewRange, horizontal_basis, up_vector, world_to_camera
from mocli.errors import InputError

# the cameras drawn for training: wider than the benchmark's (``rendered_views.VIEW``) in every range
TRAIN_VIEW = replace(VIEW, pitch_deg=(-20.0, 60.0), roll_deg=15.0, distance_m=(2.5, 8.0), fov_deg=(30.0, 90.0),
                     aim_offset_m=(-0.5, 0.7))  # fmt: skip
PAD_M = 0.2  # the drawn body reaches this far beyond its joints (hands, feet, hair)
# MediaPipe misses small bodies: the sequences it missed in files made without a minimum were the far and wide-angle
# cameras, and it found the person in 59-63 % of their frames against 82-89 % with this one (the generator's summary)
MIN_BODY_PX = 150.0
NEAR_BODY_M = 0.5  # a camera brought nearer keeps every joint at least this far in front of it


def fit_in_image(camera: Camera, joints_cam: np.ndarray, pad_m: float = PAD_M) -> Camera:
    """``camera`` moved back along its optical axis, as little as needed (not at all when it already does), so that
    every point of ``joints_cam`` widened by ``pad_m`` projects inside the image.

    A point (x, y, z) fits when ``f (x + pad) / (z + d) <= w - cx`` and ``f (pad - x) / (z + d) <= cx`` (alike for
    y with h, cy), so ``d`` is the largest of ``f (x + pad) / (w - cx) - z``, ... and 0. Moving back along the
    optical axis adds ``d`` to every depth: the camera keeps its rotation, focal and principal point.

    Args:
        camera: the drawn camera; joints_cam: (T,J,3) metres in it (z > 0), NaN frames ignored; pad_m: metres.
    """
    pts = np.asarray(joints_cam, np.float64).reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(-1)]
    if not len(pts):
        return camera
    (w, h), (cx, cy), f = camera.image_size, camera.centre, camera.focal
    x, y, z = pts.T
    need = np.concatenate([f * (x + pad_m) / (w - cx), f * (pad_m - x) / cx,
                           f * (y + pad_m) / (h - cy), f * (pad_m - y) / cy]) - np.tile(z, 4)  # fmt: skip
    d = max(float(need.max()), 0.0)
    return camera if d == 0.0 else replace(camera, t=camera.t + np.array([0.0, 0.0, d]))


def body_size_px(camera: Camera, joints_cam: np.ndarray) -> float:
    """How big the body looks: the longer side of its projected joints' box, pixels, median over the frames (NaN
    frames ignored; 0 when none is left). joints_cam: (T,J,3) metres in the camera, z > 0."""
    j = np.asarray(joints_cam, np.float64)
    j = j[np.isfinite(j).all((-1, -2))]
    if not len(j):
        return 0.0
    px = camera.focal * j[..., :2] / j[..., 2:3]  # the principal point does not change a box's sides
    return float(np.median((px.max(1) - px.min(1)).max(-1)))


def bring_closer(camera: Camera, joints_cam: np.ndarray, min_px: float, pad_m: float = PAD_M) -> Camera:
    """``camera`` moved forward along its optical axis (keeping rotation, focal and principal point) until the body
    is ``min_px`` big (``body_size_px``), never nearer than ``NEAR_BODY_M`` to any joint; then
    ``fit_in_image``, which may move it back again when a body that big would leave the image. A body already big
    enough (or ``min_px`` <= 0) only gets ``fit_in_image``.

    Args:
        camera: the drawn camera; joints_cam: (T,J,3) metres in it (z > 0), NaN frames ignored; min_px: pixels.
    """
    j = np.asarray(joints_cam, np.float64)
    j = j[np.isfinite(j).all((-1, -2))]
    if not len(j) or body_size_px(camera, j) >= min_px:
        return fit_in_image(camera, j, pad_m)
    step = np.array([0.0, 0.0, 1.0])
    lo, hi = 0.0, max(float(j[..., 2].min()) - NEAR_BODY_M, 0.0)  # forward by lo: too small; by hi: the limit
    if body_size_px(camera, j - hi * step) >= min_px:
        for _ in range(60):  # the smallest move that is big enough (the size grows as the camera nears)
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if body_size_px(camera, j - mid * step) >= min_px else (mid, hi)
    closer = replace(camera, t=camera.t - hi * step)
    return fit_in_image(closer, j - hi * step, pad_m)


def random_outfit(colours: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(F,3) ``load_body("person")``'s colours (``raster.REGIONS``, BGR 0-255) dressed anew: shirt and trousers of
    any colour, dark shoes, the skin from light to dark (its base colour times 0.35 to 1.05); eyes and the rest kept.
    """
    shoes, trousers, shirt, skin = (np.array(REGIONS[i][1], np.float64) for i in (1, 2, 3, 4))
    return recolour(colours, ((shirt, rng.uniform(20, 235, 3)), (trousers, rng.uniform(20, 200, 3)),
                              (shoes, rng.uniform(15, 90, 3)), (skin, skin * rng.uniform(0.35, 1.05))))  # fmt: skip


def training_camera(seq, seed: int, view: ViewRange, pad_m: float = PAD_M, min_px: float = 0.0) -> Camera:
    """The sequence's camera: ``sequence_camera(seq, seed, view)``, then ``bring_closer`` to ``min_px`` (0: as
    drawn) and ``fit_in_image`` of its joints."""
    from mocli.evaluation.mocap import sequence_camera

    camera = sequence_camera(seq, seed, view)
    return bring_closer(camera, world_to_camera(seq.joints, camera.R, camera.t), min_px, pad_m)


def camera_angles(camera: Camera, target: np.ndarray, up_axis: str) -> dict[str, float]:
    """Where a camera stands, as ``mocli.data.cameras.sample_camera`` draws it: yaw (degrees in [0, 360), the
    direction from the target to the camera about the up axis), pitch (degrees, positive looking down), roll
    (degrees about the optical axis), distance (metres, camera centre to ``target``, a (3,) world point), horizontal
    fov (degrees, from the focal length and the image width)."""
    up = up_vector(up_axis)
    h0, h1 = horizontal_basis(up)
    forward = camera.R[2]
    yaw = np.degrees(np.arctan2(-forward @ h1, -forward @ h0)) % 360.0
    x0 = np.cross(-up, forward)
    norm = np.linalg.norm(x0)
    x0 = x0 / norm if norm > 1e-8 else horizontal_basis(up)[0]  # looking straight down or up: as look_at
    y0 = np.cross(forward, x0)
    roll = np.degrees(np.arctan2(camera.R[0] @ y0, camera.R[0] @ x0))
    fov = np.degrees(2.0 * np.arctan(0.5 * camera.image_size[0] / camera.focal))
    return {"yaw_deg": float(yaw), "pitch_deg": camera_pitch_deg(camera.R, up_axis), "roll_deg": float(roll),
            "distance_m": float(np.linalg.norm(camera.position - target)), "fov_deg": float(fov)}  # fmt: skip


def make_training_view(
    pitch: str | None = None,
    distance: str | None = None,
    fov: str | None = None,
    roll: float | None = None,
    aim: str | None = None,
) -> ViewRange:
    """``TRAIN_VIEW`` with the given ranges ('LO,HI' text, as ``rendered_views.make_view``; roll: degrees in
    [0, 90], the camera rolls uniformly in [-roll, roll]; aim: metres, the aim point's height above the mean pelvis).

    Raises:
        InputError: malformed or out-of-range values.
    """
    view = make_view(pitch, distance, fov, base=TRAIN_VIEW)
    if roll is not None:
        if not 0.0 <= roll <= 90.0:
            raise InputError(f"--roll {roll:g}: degrees must lie in [0, 90]")
        view = replace(view, roll_deg=float(roll))
    if aim is not None:
        view = replace(view, aim_offset_m=parse_range(aim, "--aim"))
    return view
