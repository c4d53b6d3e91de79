"""A pinhole camera from 3D-2D correspondences (DLT), for Human3.6M data that comes without calibration.

VideoPose3D's npz files hold world-frame 3D joints and per-camera 2D detections but no camera parameters. The
Human3.6M cameras are static per subject, so one camera per (subject, camera id) is fitted to all of its frames by
the direct linear transform (Hartley-normalised, least squares over tens of thousands of joints) and split into
intrinsics K, rotation R and translation t by an RQ decomposition. Lens distortion is ignored (as in VideoPose3D).
Pure numpy/scipy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import rq

__all__ = ["PinholeCamera", "fit_camera_dlt", "reprojection_error"]


@dataclass(frozen=True)
class PinholeCamera:
    """``pixels ~ K (R X + t)`` for world points X in metres.

    Attributes:
        K: (3, 3) intrinsics (fx, skew, cx / 0, fy, cy / 0, 0, 1), pixels.
        R: (3, 3) world -> camera rotation, det +1.
        t: (3,) metres.
    """

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray

    @property
    def focal(self) -> float:
        """Mean focal length in pixels."""
        return float((self.K[0, 0] + self.K[1, 1]) / 2)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world metres -> (..., 3) camera metres (x right, y down, z forward)."""
        return points @ self.R.T + self.t

    def project(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world metres -> (..., 2) pixels."""
        cam = self.to_camera(points) @ self.K.T
        return cam[..., :2] / cam[..., 2:3]


def _normaliser(points: np.ndarray) -> np.ndarray:
    """Hartley similarity (D+1, D+1) moving (N, D) points to zero mean and mean distance sqrt(D)."""
    dim = points.shape[1]
    mean = points.mean(axis=0)
    scale = np.sqrt(dim) / max(float(np.linalg.norm(points - mean, axis=1).mean()), 1e-12)
    T = np.eye(dim + 1)
    T[:dim, :dim] *= scale
    T[:dim, dim] = -scale * mean
    return T


def fit_camera_dlt(points: np.ndarray, pixels: np.ndarray) -> PinholeCamera:
    """The pinhole camera that best maps ``points`` onto ``pixels`` (linear least squares, then RQ).

    Args:
        points: (N, 3) world points, metres (N >= 6, not coplanar).
        pixels: (N, 2) their image positions, pixels.
    Returns:
        The camera, with positive focal lengths and the points in front of it.
    Raises:
        ValueError: too few or degenerate correspondences.
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    pixels = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    ok = np.isfinite(points).all(axis=1) & np.isfinite(pixels).all(axis=1)
    points, pixels = points[ok], pixels[ok]
    if len(points) < 6:
        raise ValueError(f"need at least 6 finite 3D-2D correspondences, got {len(points)}")
    Tx, Tu = _normaliser(points), _normaliser(pixels)
    X = np.c_[points, np.ones(len(points))] @ Tx.T  # (N, 4)
    u = (np.c_[pixels, np.ones(len(pixels))] @ Tu.T)[:, :2]  # (N, 2)
    zeros = np.zeros_like(X)
    A = np.concatenate([np.c_[X, zeros, -u[:, :1] * X], np.c_[zeros, X, -u[:, 1:] * X]])  # (2N, 12)
    _, s, vh = np.linalg.svd(A.T @ A)
    if s[-2] < 1e-12 * s[0]:
        raise ValueError("degenerate correspondences (coplanar or repeated points)")
    P = np.linalg.inv(Tu) @ vh[-1].reshape(3, 4) @ Tx
    if np.linalg.det(P[:, :3]) < 0:
        P = -P
    K, R = rq(P[:, :3])
    signs = np.diag(np.sign(np.diag(K)))  # K with a positive diagonal; R stays a proper rotation (signs^2 = I)
    K, R = K @ signs, signs @ R
    t = np.linalg.solve(K, P[:, 3])
    K = K / K[2, 2]
    camera = PinholeCamera(K=K, R=R, t=t)
    if np.median(camera.to_camera(points)[:, 2]) < 0:
        raise ValueError("the fitted camera sees the points behind it (inconsistent 3D and 2D)")
    return camera


def reprojection_error(camera: PinholeCamera, points: np.ndarray, pixels: np.ndarray) -> float:
    """Mean distance in pixels between ``camera.project(points)`` (..., 3) and ``pixels`` (..., 2)."""
    return float(np.nanmean(np.linalg.norm(camera.project(points) - pixels, axis=-1)))
