"""3D joints (H36M-17) to a BVH file: a rest skeleton plus per-frame joint rotations, for Blender and other tools.

Conventions of the written file:

- Axes: Y up, right-handed, the character faces +Z at rest (its left is +X). mocli's camera axes (x right, y down,
  z forward) map to BVH axes by a 180 degree turn about x: ``(x, y, z) -> (x, -y, -z)``; a person facing the camera
  faces +Z.
- Units: centimetres by default (``units="m"`` for metres).
- Channels: the root ``pelvis`` has ``Xposition Yposition Zposition Zrotation Xrotation Yrotation``, every other
  joint ``Zrotation Xrotation Yrotation``: Euler angles in degrees, intrinsic, ``R = Rz(z) @ Rx(x) @ Ry(y)`` (the
  reading of ``mocli.data.bvh`` and Blender's importer).
- Rest pose (all rotations zero): T-pose-like, legs down, spine and neck up, arms sideways. The pelvis' and thorax'
  children (hips + spine; shoulders + neck) keep the median arrangement seen in the sequence, expressed in a body
  frame (x: right-to-left, y: up, z: forward). Offsets are the median bone lengths over the sequence.
- Rotations: a joint with one child gets the smallest rotation (in its parent's frame) that points its rest bone at
  the observed child; the pelvis and thorax get the full rotation of their body frame (left-right axis + up
  direction). Leaves (wrists, ankles, head) keep zero rotations and carry a cosmetic end site (hands, feet, head top).
- Root position: the root trajectory when the result has one (camera at the origin), otherwise the pelvis is kept
  above x = z = 0 at the height that puts the lowest joint of each frame on the ground (y = 0).
- Frames without the person hold the previous valid frame (the first valid one before it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mocli.bones import median_bone_lengths
from mocli.results import MotionResult
from mocli.skeleton import H36M_17
from mocli.utils.io import atomic_path

__all__ = [
    "CHANNEL_ORDER",
    "BvhMotion",
    "camera_to_y_up",
    "swing_rotation",
    "body_frame",
    "matrix_to_euler",
    "joints_to_bvh_motion",
    "format_bvh",
    "write_bvh",
]

log = logging.getLogger(__name__)

CHANNEL_ORDER = "ZXY"  # rotation channels of every joint, in file order
UNIT_SCALE = {"cm": 100.0, "m": 1.0}  # from metres
_EPS = 1e-9

# Rest direction of the bone that ends at each joint (Y-up, facing +Z, left = +X). The children of the pelvis and
# the thorax (hips, spine; shoulders, neck) are replaced by the sequence's median arrangement.
_REST_DIRECTION: dict[str, tuple[float, float, float]] = {
    "right_hip": (-1, 0, 0),
    "right_knee": (0, -1, 0),
    "right_ankle": (0, -1, 0),
    "left_hip": (1, 0, 0),
    "left_knee": (0, -1, 0),
    "left_ankle": (0, -1, 0),
    "spine": (0, 1, 0),
    "thorax": (0, 1, 0),
    "neck": (0, 1, 0),
    "head": (0, 1, 0),
    "left_shoulder": (1, 0, 0),
    "left_elbow": (1, 0, 0),
    "left_wrist": (1, 0, 0),
    "right_shoulder": (-1, 0, 0),
    "right_elbow": (-1, 0, 0),
    "right_wrist": (-1, 0, 0),
}

# Joints with several children: (left child, right child, up child) that define their body frame.
_FRAME_CHILDREN: dict[str, tuple[str, str, str]] = {
    "pelvis": ("left_hip", "right_hip", "spine"),
    "thorax": ("left_shoulder", "right_shoulder", "neck"),
}

# Cosmetic end sites of the leaves: (direction at rest, length as a fraction of the leaf's own bone).
_END_SITES: dict[str, tuple[tuple[float, float, float], float]] = {
    "right_ankle": ((0, 0, 1), 0.5),  # foot, pointing forward
    "left_ankle": ((0, 0, 1), 0.5),
    "head": ((0, 1, 0), 0.5),
    "left_wrist": ((1, 0, 0), 0.35),  # hand
    "right_wrist": ((-1, 0, 0), 0.35),
}


@dataclass(frozen=True)
class BvhMotion:
    """Everything a BVH file holds, before formatting.

    Attributes:
        joint_names: (J,) names, parents before children (H36M-17 order).
        parents: (J,) parent indices, -1 for the root.
        offsets: (J, 3) rest offsets in ``units``, in the parent's frame (the root's is zero).
        end_sites: joint index -> (3,) end site offset in ``units``.
        root_positions: (T, 3) root position per frame in ``units``, BVH axes.
        rotations: (T, J, 3, 3) local rotation of every joint (the root's is global).
        fps: frames per second.
        units: "cm" or "m".
    """

    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    end_sites: dict[int, np.ndarray]
    root_positions: np.ndarray
    rotations: np.ndarray
    fps: float
    units: str

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])


# ------------------------------------------------------------------------------------------------ rotation maths


def camera_to_y_up(points: np.ndarray) -> np.ndarray:
    """Camera axes (x right, y down, z forward) to Y-up BVH axes: (..., 3) -> (..., 3) as (x, -y, -z), same units."""
    return np.asarray(points) * np.array([1.0, -1.0, -1.0])


def _normalise(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), _EPS)


def _axis_angle_matrix(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues: (..., 3) unit axes and (...,) angles in radians -> (..., 3, 3) rotation matrices."""
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)
    s, c = np.sin(angle)[..., None, None], np.cos(angle)[..., None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def swing_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction ``a`` to direction ``b``.

    Args:
        a, b: (..., 3) vectors (any length; normalised here). Where ``b`` is (near) zero the result is the identity.
    Returns:
        (..., 3, 3) rotation matrices R with ``R @ a_hat = b_hat``. Opposite directions turn by pi about an axis
        perpendicular to ``a``.
    """
    a, b = np.broadcast_arrays(np.asarray(a, np.float64), np.asarray(b, np.float64))
    degenerate = np.linalg.norm(b, axis=-1) < _EPS
    a, b = _normalise(a), _normalise(b)
    cross = np.cross(a, b)
    sin, cos = np.linalg.norm(cross, axis=-1), np.sum(a * b, axis=-1)
    axis = cross / np.maximum(sin, _EPS)[..., None]
    opposite = (sin < 1e-7) & (cos < 0)
    if opposite.any():  # any axis perpendicular to a: cross with the basis vector least aligned with it
        helper = np.eye(3)[np.argmin(np.abs(a), axis=-1)]
        axis = np.where(opposite[..., None], _normalise(np.cross(a, helper)), axis)
    rot = _axis_angle_matrix(axis, np.arctan2(sin, cos))
    return np.where(degenerate[..., None, None], np.eye(3), rot)


def body_frame(left: np.ndarray, right: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Orthonormal frame from a left-right pair of directions and an up direction.

    Args:
        left, right, up: (..., 3) vectors from the joint to its left child, right child and up child.
    Returns:
        (..., 3, 3) rotation whose columns are x = right-to-left (unit directions, so bone lengths do not tilt it),
        y = up made perpendicular to x, z = x cross y (forward).
    """
    x = _normalise(_normalise(left) - _normalise(right))
    up = _normalise(up)
    y = _normalise(up - np.sum(up * x, axis=-1, keepdims=True) * x)
    return np.stack([x, y, np.cross(x, y)], axis=-1)


def _is_even(order: tuple[int, int, int]) -> bool:
    return order in ((0, 1, 2), (1, 2, 0), (2, 0, 1))


def matrix_to_euler(rot: np.ndarray, order: str = CHANNEL_ORDER) -> np.ndarray:
    """Rotation matrices to intrinsic Euler angles, the inverse of ``mocli.data.bvh.euler_to_matrix``.

    Args:
        rot: (..., 3, 3) rotation matrices.
        order: three distinct axis letters, e.g. "ZXY": ``R = R_Z(a0) @ R_X(a1) @ R_Y(a2)``.
    Returns:
        (..., 3) angles in degrees; a0, a2 in (-180, 180], a1 in [-90, 90]. At gimbal lock (a1 = +-90) a2 = 0.
    """
    i, j, k = ("XYZ".index(c) for c in order.upper())
    if len({i, j, k}) != 3:
        raise ValueError(f"Euler order {order!r}: expected three distinct axes (Tait-Bryan), e.g. 'ZXY'")
    sign = 1.0 if _is_even((i, j, k)) else -1.0
    rot = np.asarray(rot, dtype=np.float64)
    sin_b = np.clip(sign * rot[..., i, k], -1.0, 1.0)
    a1 = np.arcsin(sin_b)
    a0 = np.arctan2(-sign * rot[..., j, k], rot[..., k, k])
    a2 = np.arctan2(-sign * rot[..., i, j], rot[..., i, i])
    locked = np.abs(sin_b) > 1 - 1e-9
    if locked.any():  # a0 and a2 turn about the same axis: put it all in a0
        a0 = np.where(locked, np.arctan2(sign * rot[..., k, j], rot[..., j, j]), a0)
        a2 = np.where(locked, 0.0, a2)
    return np.degrees(np.stack([a0, a1, a2], axis=-1))


# ------------------------------------------------------------------------------------------------ joints -> motion


def _hold_missing(joints: np.ndarray) -> np.ndarray:
    """(T, J, 3) with non-finite frames replaced by the previous valid frame (leading ones by the first valid)."""
    valid = np.isfinite(joints).all(axis=(1, 2))
    if not valid.any():
        raise ValueError("no frame with finite joints to export")
    last = np.maximum.accumulate(np.where(valid, np.arange(len(joints)), -1))
    last[last < 0] = np.flatnonzero(valid)[0]
    return joints[last]


def _children(parents: tuple[int, ...]) -> list[list[int]]:
    return [[c for c, p in enumerate(parents) if p == j] for j in range(len(parents))]


def _rest_offsets(joints: np.ndarray) -> np.ndarray:
    """(J, 3) rest offsets in the joints' units: median bone length along the rest direction of each bone.

    Args:
        joints: (T, J, 3) finite H36M-17 positions, Y-up.
    """
    names, parents = H36M_17.joint_names, H36M_17.parents
    lengths = median_bone_lengths(joints)
    offsets = np.zeros((len(names), 3))
    for c, p in enumerate(parents):
        if p >= 0:
            offsets[c] = np.asarray(_REST_DIRECTION[names[c]], np.float64) * lengths[c]
    for joint, kids in _FRAME_CHILDREN.items():
        j = names.index(joint)
        idx = [names.index(n) for n in kids]
        vecs = [joints[:, c] - joints[:, j] for c in idx]
        frame = body_frame(*vecs)  # (T, 3, 3)
        for c, v in zip(idx, vecs, strict=True):
            local = np.einsum("tba,tb->ta", frame, _normalise(v))  # frame^T @ direction
            offsets[c] = _normalise(np.median(local, axis=0)) * np.linalg.norm(offsets[c])
    return offsets


def _end_sites(offsets: np.ndarray) -> dict[int, np.ndarray]:
    names = H36M_17.joint_names
    return {
        names.index(n): np.asarray(d, np.float64) * frac * np.linalg.norm(offsets[names.index(n)])
        for n, (d, frac) in _END_SITES.items()
    }


def _fit_rotations(joints: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """(T, J, 3) Y-up positions and (J, 3) rest offsets -> (T, J, 3, 3) local rotations (see module docstring)."""
    names, parents = H36M_17.joint_names, H36M_17.parents
    num_frames, num_joints = joints.shape[:2]
    local = np.broadcast_to(np.eye(3), (num_frames, num_joints, 3, 3)).copy()
    glob = local.copy()
    for j, kids in enumerate(_children(parents)):
        parent_rot = glob[:, parents[j]] if parents[j] >= 0 else np.broadcast_to(np.eye(3), (num_frames, 3, 3))
        if names[j] in _FRAME_CHILDREN:
            idx = [names.index(n) for n in _FRAME_CHILDREN[names[j]]]
            observed = body_frame(*(joints[:, c] - joints[:, j] for c in idx))
            rest = body_frame(*(offsets[c] for c in idx))
            glob[:, j] = observed @ rest.T
            local[:, j] = np.swapaxes(parent_rot, -1, -2) @ glob[:, j]
        elif len(kids) == 1:
            direction = np.einsum("tba,tb->ta", parent_rot, joints[:, kids[0]] - joints[:, j])  # parent^T @ d
            local[:, j] = swing_rotation(offsets[kids[0]], direction)
            glob[:, j] = parent_rot @ local[:, j]
        elif kids:
            raise ValueError(f"joint {names[j]!r} has several children but no body frame")
        else:
            glob[:, j] = parent_rot
    return local


def _ground_height(joints: np.ndarray) -> np.ndarray:
    """(T,) root height that puts the lowest joint of each frame (root-relative, Y-up) on y = 0."""
    rel = joints - joints[:, :1]
    return -rel[..., 1].min(axis=1)


def joints_to_bvh_motion(
    joints3d: np.ndarray, fps: float, root: np.ndarray | None = None, units: str = "cm"
) -> BvhMotion:
    """Fit a BVH skeleton and motion to H36M-17 joints.

    Args:
        joints3d: (T, 17, 3) metres, camera axes (x right, y down, z forward), NaN in frames without the person.
        fps: frames per second (> 0).
        root: (T, 3) metres, camera axes: root trajectory, or None to keep the pelvis over the origin (grounded).
        units: "cm" or "m" for the file.
    Returns:
        BvhMotion in BVH axes (Y up) and ``units``.
    """
    joints3d = np.asarray(joints3d, dtype=np.float64)
    if joints3d.ndim != 3 or joints3d.shape[1:] != (H36M_17.num_joints, 3):
        raise ValueError(f"joints3d: expected (T, 17, 3), got {joints3d.shape}")
    if units not in UNIT_SCALE:
        raise ValueError(f"units {units!r}: expected one of {', '.join(UNIT_SCALE)}")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    joints = camera_to_y_up(_hold_missing(joints3d)) * UNIT_SCALE[units]
    offsets = _rest_offsets(joints)
    if root is not None and np.isfinite(root).any():
        root_pos = camera_to_y_up(_hold_missing(np.asarray(root, np.float64)[:, None]))[:, 0] * UNIT_SCALE[units]
    else:
        root_pos = np.zeros((len(joints), 3))
        root_pos[:, 1] = _ground_height(joints)
    return BvhMotion(
        joint_names=H36M_17.joint_names,
        parents=H36M_17.parents,
        offsets=offsets,
        end_sites=_end_sites(offsets),
        root_positions=root_pos,
        rotations=_fit_rotations(joints, offsets),
        fps=float(fps),
        units=units,
    )


# ------------------------------------------------------------------------------------------------ file


def _fmt(values: np.ndarray) -> str:
    return " ".join(f"{v:.6f}" for v in values)


def _hierarchy_lines(motion: BvhMotion, j: int, depth: int, kids: list[list[int]]) -> list[str]:
    pad, inner = "  " * depth, "  " * (depth + 1)
    rot = " ".join(f"{axis}rotation" for axis in CHANNEL_ORDER)
    if motion.parents[j] < 0:
        head, channels = f"ROOT {motion.joint_names[j]}", f"CHANNELS 6 Xposition Yposition Zposition {rot}"
    else:
        head, channels = f"JOINT {motion.joint_names[j]}", f"CHANNELS 3 {rot}"
    lines = [pad + head, pad + "{", f"{inner}OFFSET {_fmt(motion.offsets[j])}", inner + channels]
    for c in kids[j]:
        lines += _hierarchy_lines(motion, c, depth + 1, kids)
    if j in motion.end_sites:
        lines += [f"{inner}End Site", inner + "{", f"{inner}  OFFSET {_fmt(motion.end_sites[j])}", inner + "}"]
    return lines + [pad + "}"]


def _depth_first(parents: tuple[int, ...], kids: list[list[int]]) -> list[int]:
    order, stack = [], [j for j, p in enumerate(parents) if p < 0][::-1]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(kids[j][::-1])
    return order


def format_bvh(motion: BvhMotion) -> str:
    """The text of a BVH file: HIERARCHY (joints depth first) and MOTION (one line per frame)."""
    kids = _children(motion.parents)
    roots = [j for j, p in enumerate(motion.parents) if p < 0]
    lines = ["HIERARCHY"]
    for r in roots:
        lines += _hierarchy_lines(motion, r, 0, kids)
    angles = matrix_to_euler(motion.rotations, CHANNEL_ORDER)  # (T, J, 3) degrees
    columns = [motion.root_positions] + [angles[:, j] for j in _depth_first(motion.parents, kids)]
    values = np.concatenate(columns, axis=1)  # (T, 3 + 3J)
    lines += ["MOTION", f"Frames: {motion.num_frames}", f"Frame Time: {1.0 / motion.fps:.8f}"]
    lines += [_fmt(row) for row in values]
    return "\n".join(lines) + "\n"


def write_bvh(result: MotionResult, path: str | Path, units: str = "cm") -> Path:
    """``motion.bvh`` for one person (atomic write). See the module docstring for axes, units and channels."""
    fps = result.fps
    if not fps > 0:
        log.warning("%s: unknown frame rate; writing 30 fps", path)
        fps = 30.0
    motion = joints_to_bvh_motion(result.joints3d, fps, root=result.root, units=units)
    with atomic_path(path) as tmp:
        tmp.write_text(format_bvh(motion))
    return Path(path)
