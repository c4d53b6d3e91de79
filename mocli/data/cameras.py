"""Virtual cameras: world <-> camera transforms, pinhole and scaled-orthographic projection, random views.

Conventions (OpenCV): camera x points right in the image, y down, z forward (depth > 0 in front of the camera).
A camera maps world points X (metres) to camera points ``Xc = R @ X + t``; its centre in the world is ``-R^T t``.
``R`` is a proper rotation, so a projected skeleton is never mirrored (left stays left).

Pure numpy; randomness only through a ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Camera",
    "ViewRange",
    "up_vector",
    "horizontal_basis",
    "look_at",
    "world_to_camera",
    "camera_to_world",
    "project_perspective",
    "project_orthographic",
    "focal_from_fov",
    "sample_camera",
    "identity_camera",
    "image_25d",
]


@dataclass(frozen=True)
class Camera:
    """A calibrated camera.

    Attributes:
        R: (3, 3) world -> camera rotation (rows: camera x right, y down, z forward, in world coordinates).
        t: (3,) translation in metres: ``Xc = R @ X + t``.
        focal: focal length in pixels (square pixels).
        centre: (2,) principal point in pixels.
        image_size: (w, h) pixels.
    """

    R: np.ndarray
    t: np.ndarray
    focal: float
    centre: np.ndarray
    image_size: tuple[int, int]

    @property
    def position(self) -> np.ndarray:
        """(3,) camera centre in world coordinates, metres."""
        return -self.R.T @ self.t


@dataclass(frozen=True)
class ViewRange:
    """Where random virtual cameras may stand (see ``sample_camera``).

    yaw_deg: azimuth range around the subject's up axis (default: all directions).
    pitch_deg: elevation range; positive = camera above the target, looking down.
    roll_deg: roll about the optical axis, uniform in [-roll_deg, roll_deg].
    distance_m: camera-to-target distance range in metres.
    fov_deg: horizontal field of view range (sets the focal length from the image width).
    image_size: (w, h) pixels of the virtual image.
    min_depth_m: every point of the clip stays at least this far in front of the camera (the camera backs off).
    aim_offset_m: range of the aim point's height above the clip's mean pelvis, metres, along the up axis
        (e.g. (-0.5, 0.7): from about knee to head height). The camera keeps its pitch and distance relative to
        the aim point, so it stands higher or lower and sees the body off its optical axis, as a camera on a
        tripod does. (0, 0): aim at the pelvis (no draw is made, so the other draws are those of older versions).
    """

    yaw_deg: tuple[float, float] = (0.0, 360.0)
    pitch_deg: tuple[float, float] = (-15.0, 30.0)
    roll_deg: float = 10.0
    distance_m: tuple[float, float] = (3.0, 8.0)
    fov_deg: tuple[float, float] = (35.0, 75.0)
    image_size: tuple[int, int] = (1000, 1000)
    min_depth_m: float = 1.0
    aim_offset_m: tuple[float, float] = (0.0, 0.0)


def up_vector(up_axis: str) -> np.ndarray:
    """(3,) unit world up vector from an axis name: 'y', '+y', '-z', 'z', ..."""
    axis = up_axis.strip().lower()
    sign = -1.0 if axis.startswith("-") else 1.0
    name = axis.lstrip("+-")
    if name not in ("x", "y", "z"):
        raise ValueError(f"unknown up axis {up_axis!r}; expected x, y or z with an optional sign")
    vec = np.zeros(3)
    vec["xyz".index(name)] = sign
    return vec


def horizontal_basis(up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors spanning the plane perpendicular to ``up`` (a right-handed triple h0, h1, up)."""
    helper = np.array([0.0, 0.0, 1.0]) if abs(up[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    h0 = helper - up * (helper @ up)
    h0 /= np.linalg.norm(h0)
    return h0, np.cross(up, h0)


def look_at(position: np.ndarray, target: np.ndarray, up: np.ndarray, roll_rad: float = 0.0) -> np.ndarray:
    """(3, 3) world -> camera rotation of a camera at ``position`` looking at ``target`` with image-up along ``up``.

    Args:
        position, target: (3,) metres, world frame.
        up: (3,) world up vector (image y points along -up before roll).
        roll_rad: rotation of the camera about its optical axis, radians.
    """
    z = target - position
    z = z / np.linalg.norm(z)
    x = np.cross(-up, z)
    norm = np.linalg.norm(x)
    if norm < 1e-8:  # looking straight up or down: any horizontal right vector will do
        x = horizontal_basis(up)[0]
    else:
        x = x / norm
    y = np.cross(z, x)
    c, s = np.cos(roll_rad), np.sin(roll_rad)
    x, y = c * x + s * y, -s * x + c * y
    return np.stack([x, y, z])


def world_to_camera(points: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(..., 3) world points (metres) -> (..., 3) camera points: ``R @ X + t``."""
    return points @ R.T + t


def camera_to_world(points: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(..., 3) camera points (metres) -> (..., 3) world points: ``R^T (Xc - t)``."""
    return (points - t) @ R


def project_perspective(points_cam: np.ndarray, focal: float, centre: np.ndarray) -> np.ndarray:
    """Pinhole projection. (..., 3) camera points (metres, z > 0) -> (..., 2) pixels: ``f * (x, y) / z + c``."""
    return focal * points_cam[..., :2] / points_cam[..., 2:3] + centre


def project_orthographic(points_cam: np.ndarray, focal: float, centre: np.ndarray, depth: float) -> np.ndarray:
    """Scaled orthographic projection at a reference depth (metres): ``f * (x, y) / depth + c``, (..., 2) pixels.

    Equals the pinhole projection for points at ``depth``, and approaches it for far subjects.
    """
    return focal * points_cam[..., :2] / depth + centre


def focal_from_fov(fov_deg: float, width: int) -> float:
    """Focal length in pixels for a horizontal field of view (degrees) and an image width (pixels)."""
    return 0.5 * width / np.tan(np.radians(fov_deg) / 2)


def sample_camera(rng: np.random.Generator, points: np.ndarray, up_axis: str, view: ViewRange) -> Camera:
    """A random camera looking at the mean root position of a clip (raised by a random aim offset when asked).

    Args:
        rng: the random generator (the only source of randomness). Draws, in order: yaw, pitch, roll, distance,
            field of view, then the aim offset only when ``view.aim_offset_m`` is not (0, 0).
        points: (T, J, 3) world joints in metres; joint 0 (pelvis) is the target.
        up_axis: the world's up axis ('y', 'z', '-y', ...).
        view: ranges of yaw, pitch, roll, distance, field of view and aim offset.
    Returns:
        A Camera; if any point of the clip would be closer than ``view.min_depth_m``, the camera backs off along its
        optical axis until none is.
    """
    up = up_vector(up_axis)
    target = points[:, 0].mean(axis=0)
    yaw = np.radians(rng.uniform(*view.yaw_deg))
    pitch = np.radians(rng.uniform(*view.pitch_deg))
    roll = np.radians(rng.uniform(-view.roll_deg, view.roll_deg))
    distance = rng.uniform(*view.distance_m)
    fov = rng.uniform(*view.fov_deg)
    if tuple(view.aim_offset_m) != (0.0, 0.0):
        target = target + rng.uniform(*view.aim_offset_m) * up
    h0, h1 = horizontal_basis(up)
    direction = np.cos(pitch) * (np.cos(yaw) * h0 + np.sin(yaw) * h1) + np.sin(pitch) * up
    position = target + distance * direction
    R = look_at(position, target, up, roll)
    t = -R @ position
    min_depth = (points.reshape(-1, 3) @ R[2] + t[2]).min()
    if min_depth < view.min_depth_m:
        t = t + np.array([0.0, 0.0, view.min_depth_m - min_depth])
    w, h = view.image_size
    return Camera(R=R, t=t, focal=focal_from_fov(fov, w), centre=np.array([w / 2, h / 2]), image_size=(w, h))


def identity_camera(view: ViewRange) -> Camera:
    """A camera at the world origin looking along +z (for joints already in a camera frame), mid-range focal."""
    w, h = view.image_size
    focal = focal_from_fov(float(np.mean(view.fov_deg)), w)
    return Camera(R=np.eye(3), t=np.zeros(3), focal=focal, centre=np.array([w / 2, h / 2]), image_size=(w, h))


def image_25d(points_cam: np.ndarray, camera: Camera, orthographic: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """MotionBERT's 2.5D label of a clip: image x, y plus depth, all in pixels.

    Depth is measured from the first frame's root (joint 0) and converted to pixels with the pixel size at the root's
    depth of the same frame, so ``label * metres_per_px[t]`` is metric (up to perspective effects within the body).

    Args:
        points_cam: (T, J, 3) camera-frame joints, metres, z > 0.
        camera: gives the focal length (pixels) and principal point.
        orthographic: scaled orthographic projection at the clip's mean root depth instead of the pinhole.
    Returns:
        label (T, J, 3) pixels, and metres_per_px (T,) at the root depth of each frame.
    """
    z_root = points_cam[:, 0, 2]
    if orthographic:
        ref = float(z_root.mean())
        xy = project_orthographic(points_cam, camera.focal, camera.centre, ref)
        metres_per_px = np.full(len(z_root), ref / camera.focal)
    else:
        xy = project_perspective(points_cam, camera.focal, camera.centre)
        metres_per_px = z_root / camera.focal
    depth = (points_cam[..., 2] - z_root[0]) / metres_per_px[:, None]
    return np.concatenate([xy, depth[..., None]], axis=-1), metres_per_px
