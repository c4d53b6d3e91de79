"""Camera-space trajectories: where each person's pelvis is, in metres, from 2D keypoints and the lifted pose.

Pure numpy, no I/O. The camera is a pinhole at the origin looking down +z (x right, y down, z forward, metres), with
focal length ``f`` pixels and principal point at the image centre. A person's joints in the camera frame are
``joints3d[t] + root[t]`` (the lifted pose is root-relative, in metres, camera axes); ``solve_root`` finds the
``root[t]`` that makes them project onto the 2D keypoints:

1. Linear least squares. For joint j with pose ``(X, Y, Z)`` and normalised image point ``(x, y) = ((u - cx) / f,
   (v - cy) / f)``, the projection equations ``x (Z + tz) = X + tx`` and ``y (Z + tz) = Y + ty`` are linear in
   ``t = (tx, ty, tz)``; each joint is weighted by its 2D confidence.
2. A few Gauss-Newton steps on the confidence-weighted reprojection error in pixels.

Depth comes from the size of the body: the lifted pose is metric (mocli's lifter scales it to an average adult),
so a person drawn twice as small is twice as far. ``body_scale`` rescales the skeleton when the person's real size
is known (e.g. 1.1 for someone 10 % taller than average); depth scales with it. Frames with fewer than
``min_joints`` confident joints, or without the person, are NaN. ``smooth_trajectory`` then smooths over time.

All people of a video share the camera, so their trajectories are in the same frame: their relative positions and
distances can be compared directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocli.data.cameras import focal_from_fov, project_perspective

__all__ = [
    "DEFAULT_FOV_DEG",
    "Camera",
    "make_camera",
    "project",
    "solve_root",
    "smooth_trajectory",
    "estimate_trajectory",
]

# Horizontal field of view assumed when neither --focal nor --fov is given: a typical phone or action-camera main
# lens (about 26-28 mm equivalent) sees 60-70 degrees across; 60 puts people slightly nearer than a wider guess.
DEFAULT_FOV_DEG = 60.0


@dataclass(frozen=True)
class Camera:
    """Pinhole camera: focal length and principal point in pixels.

    Attributes:
        focal_px: focal length in pixels (the same along x and y).
        cx, cy: principal point in pixels (the image centre).
        source: where the focal length came from: "focal" (--focal), "fov" (--fov) or "default".
        fov_deg: horizontal field of view in degrees implied by ``focal_px`` and the image width.
    """

    focal_px: float
    cx: float
    cy: float
    source: str = "default"
    fov_deg: float = DEFAULT_FOV_DEG


def make_camera(image_size: tuple[int, int], focal: float | None = None, fov: float | None = None) -> Camera:
    """The camera of a video: focal length from ``focal`` (pixels), else ``fov`` (degrees, horizontal), else
    ``DEFAULT_FOV_DEG``; principal point at the image centre.

    Args:
        image_size: (w, h) pixels.
    Raises:
        ValueError: both ``focal`` and ``fov`` given, a non-positive focal length, a field of view outside (0, 180),
            or an empty image size.
    """
    w, h = (float(v) for v in image_size)
    if not (w > 0 and h > 0):
        raise ValueError(f"image size must be positive, got {image_size}")
    if focal is not None and fov is not None:
        raise ValueError("give a focal length or a field of view, not both")
    if focal is not None:
        if not focal > 0:
            raise ValueError(f"focal length must be positive, got {focal}")
        fov_deg = float(np.degrees(2 * np.arctan(w / 2 / focal)))
        return Camera(float(focal), w / 2, h / 2, "focal", fov_deg)
    source, fov_deg = ("fov", float(fov)) if fov is not None else ("default", DEFAULT_FOV_DEG)
    if not 0 < fov_deg < 180:
        raise ValueError(f"field of view must be in (0, 180) degrees, got {fov_deg}")
    return Camera(float(focal_from_fov(fov_deg, w)), w / 2, h / 2, source, fov_deg)


def project(points: np.ndarray, camera: Camera) -> np.ndarray:
    """(..., 3) metres, camera frame -> (..., 2) pixels (``mocli.data.cameras.project_perspective``)."""
    return project_perspective(points, camera.focal_px, np.array([camera.cx, camera.cy]))


def _linear_root(joints: np.ndarray, xy: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(T, J, 3) pose, (T, J, 2) normalised image points, (T, J) weights -> (T, 3) least-squares translation."""
    zeros, ones = np.zeros_like(xy[..., 0]), np.ones_like(xy[..., 0])
    # rows per joint: [1, 0, -x] t = x Z - X ;  [0, 1, -y] t = y Z - Y
    a = np.stack(
        [np.stack([ones, zeros, -xy[..., 0]], -1), np.stack([zeros, ones, -xy[..., 1]], -1)], axis=-2
    )  # (T, J, 2, 3)
    b = np.stack([xy[..., 0] * joints[..., 2] - joints[..., 0], xy[..., 1] * joints[..., 2] - joints[..., 1]], -1)
    wa = a * w[..., None, None]
    ata = np.einsum("tjki,tjkl->til", wa, a)
    atb = np.einsum("tjki,tjk->ti", wa, b)
    return np.linalg.solve(ata + 1e-9 * np.eye(3), atb[..., None])[..., 0]


def _gauss_newton(joints: np.ndarray, uv: np.ndarray, w: np.ndarray, t: np.ndarray, camera: Camera, steps: int):
    """Refine (T, 3) translations on the weighted pixel reprojection error of (T, J, 3) joints vs (T, J, 2) pixels."""
    f = camera.focal_px
    for _ in range(steps):
        p = joints + t[:, None, :]
        z = np.maximum(p[..., 2], 1e-3)
        r = np.stack([f * p[..., 0] / z + camera.cx, f * p[..., 1] / z + camera.cy], -1) - uv  # (T, J, 2)
        jac = np.zeros((*r.shape, 3))  # d r / d t
        jac[..., 0, 0] = f / z
        jac[..., 1, 1] = f / z
        jac[..., 0, 2] = -f * p[..., 0] / z**2
        jac[..., 1, 2] = -f * p[..., 1] / z**2
        wj = jac * w[..., None, None]
        jtj = np.einsum("tjki,tjkl->til", wj, jac)
        jtr = np.einsum("tjki,tjk->ti", wj, r)
        t = t - np.linalg.solve(jtj + 1e-9 * np.eye(3), jtr[..., None])[..., 0]
    return t


def solve_root(
    keypoints2d: np.ndarray,
    joints3d: np.ndarray,
    camera: Camera,
    *,
    body_scale: float = 1.0,
    min_conf: float = 0.3,
    min_joints: int = 6,
    gauss_newton_steps: int = 3,
) -> np.ndarray:
    """Per-frame pelvis translation that makes the lifted pose reproject onto the 2D keypoints.

    Args:
        keypoints2d: (T, J, 3) pixels + confidence; NaN or confidence below ``min_conf`` = not used.
        joints3d: (T, J, 3) metres, root-relative, camera axes (x right, y down, z forward); NaN where missing.
        camera: the video's camera (``make_camera``).
        body_scale: the person's size relative to the lifted skeleton (depth scales with it).
        min_conf: joints at or below this confidence are ignored.
        min_joints: frames with fewer usable joints are NaN.
        gauss_newton_steps: refinement steps after the linear solution (0: linear only).
    Returns:
        (T, 3) float64 metres, camera frame: the pelvis position; NaN where it cannot be solved or lands behind
        the camera.
    """
    kp = np.asarray(keypoints2d, np.float64)
    joints = np.asarray(joints3d, np.float64) * body_scale
    if kp.ndim != 3 or kp.shape[-1] != 3 or joints.shape != (*kp.shape[:2], 3):
        raise ValueError(f"keypoints2d (T, J, 3) and joints3d (T, J, 3) must match, got {kp.shape} and {joints.shape}")
    usable = np.isfinite(kp).all(-1) & np.isfinite(joints).all(-1) & (np.nan_to_num(kp[..., 2]) > min_conf)
    w = np.where(usable, np.nan_to_num(kp[..., 2]), 0.0)
    uv = np.where(usable[..., None], kp[..., :2], 0.0)
    joints = np.where(usable[..., None], joints, 0.0)
    xy = (uv - np.array([camera.cx, camera.cy])) / camera.focal_px
    ok = usable.sum(-1) >= max(min_joints, 2)
    root = np.full((len(kp), 3), np.nan)
    if ok.any():
        t = _linear_root(joints[ok], xy[ok], w[ok])
        if gauss_newton_steps > 0:
            t = _gauss_newton(joints[ok], uv[ok], w[ok], t, camera, gauss_newton_steps)
        root[ok] = t
    in_front = root[:, 2] > 0.05
    root[~in_front] = np.nan
    return root


def smooth_trajectory(root: np.ndarray, sigma_frames: float = 2.0, median_frames: int = 5) -> np.ndarray:
    """Smooth a (T, 3) trajectory over time, keeping NaN where it is NaN.

    A running median over up to ``median_frames`` frames (a symmetric window of finite frames, shorter at the ends
    and next to gaps) removes single-frame outliers (a bad 2D pose); then a local linear fit with Gaussian weights
    of ``sigma_frames`` frames smooths the rest. Both use only the finite frames, and a straight, steady walk is
    left unchanged, at the ends of the sequence and next to missing frames too.

    Returns:
        (T, 3) float64 metres.
    """
    root = np.asarray(root, np.float64)
    finite = np.isfinite(root).all(-1)
    out = np.full_like(root, np.nan)
    if not finite.any():
        return out
    med = root.copy()
    for t in np.flatnonzero(finite):
        half = min(median_frames // 2, t, len(root) - 1 - t)
        while half > 0 and not finite[t - half : t + half + 1].all():
            half -= 1
        med[t] = np.median(root[t - half : t + half + 1], axis=0)
    if sigma_frames <= 0:
        out[finite] = med[finite]
        return out
    radius = int(np.ceil(3 * sigma_frames))
    d = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (d / sigma_frames) ** 2)

    def window_sum(x: np.ndarray, power: int) -> np.ndarray:  # sum over s of k(s - t) (s - t)^power x[s]
        # the centred part of the full convolution: np.convolve's "same" is as long as the kernel when the
        # sequence is shorter than it
        return np.convolve(x, k * (-d) ** power, mode="full")[radius : radius + len(x)]

    w = finite.astype(np.float64)
    s0, s1, s2 = window_sum(w, 0), window_sum(w, 1), window_sum(w, 2)
    det = s0 * s2 - s1**2
    for axis in range(3):
        y = np.where(finite, med[:, axis], 0.0)
        t0, t1 = window_sum(y, 0), window_sum(y, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            fit = np.where(det > 1e-9 * s0**2, (s2 * t0 - s1 * t1) / det, t0 / s0)
        out[finite, axis] = fit[finite]
    return out


def estimate_trajectory(
    keypoints2d: np.ndarray,
    joints3d: np.ndarray,
    camera: Camera,
    *,
    fps: float = 30.0,
    body_scale: float = 1.0,
    smooth_s: float = 0.07,
    min_conf: float = 0.3,
) -> np.ndarray:
    """``solve_root`` then ``smooth_trajectory`` with a Gaussian of ``smooth_s`` seconds (0: no smoothing).

    Args:
        keypoints2d: (T, 17, 3) pixels + confidence (the lifter's input).
        joints3d: (T, 17, 3) metres, root-relative, camera axes (the lifter's output).
        camera: ``make_camera(image_size, focal, fov)``; use the same one for every person of a video.
        fps: frames per second (sets the smoothing in frames; 30 if unknown or not positive).
    Returns:
        (T, 3) float32 metres: the pelvis in the camera frame (x right, y down, z forward); NaN where missing.
    """
    root = solve_root(keypoints2d, joints3d, camera, body_scale=body_scale, min_conf=min_conf)
    if smooth_s > 0:
        sigma = smooth_s * (fps if fps > 0 else 30.0)
        root = smooth_trajectory(root, sigma_frames=sigma)
    present = np.isfinite(np.asarray(joints3d)).all(axis=(1, 2))
    return _fill_inner_gaps(root, present).astype(np.float32)


def _fill_inner_gaps(root: np.ndarray, present: np.ndarray) -> np.ndarray:
    """(T, 3) with NaN frames where the person is ``present`` (T,) (e.g. interpolated 2D, too few confident joints)
    filled linearly between the nearest solved frames; leading and trailing ones, and absent frames, stay NaN."""
    solved = np.isfinite(root).all(-1)
    out = np.where(present[:, None], root, np.nan)
    if solved.sum() < 2:
        return out
    idx = np.flatnonzero(solved)
    todo = present & ~solved & (np.arange(len(root)) > idx[0]) & (np.arange(len(root)) < idx[-1])
    for axis in range(3):
        out[todo, axis] = np.interp(np.flatnonzero(todo), idx, root[idx, axis])
    return out
