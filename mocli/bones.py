"""Bone lengths of H36M-17 (or any ``Skeleton``) poses: per frame, one per bone over a sequence, and a pose rebuilt
with given lengths along its own bone directions. Used for infer's ``--bones fixed``, the BVH rest pose, body-proportion
augmentation and ``metrics.skeleton_plausibility``. Pure NumPy; lengths in the joints' own units.
"""

from __future__ import annotations

import numpy as np

from mocli.skeleton import H36M_17, Skeleton

__all__ = ["bone_lengths", "median_bone_lengths", "set_bone_lengths"]


def _root_outward(parents: tuple[int, ...]) -> list[int]:
    """Joint indices ordered so that every parent comes before its children (roots first)."""
    order, placed = [], set()
    while len(order) < len(parents):
        ready = [j for j, p in enumerate(parents) if j not in placed and (p < 0 or p in placed)]
        if not ready:
            raise ValueError("the skeleton's parents contain a cycle")
        order += ready
        placed.update(ready)
    return order


def bone_lengths(joints: np.ndarray, skeleton: Skeleton = H36M_17) -> np.ndarray:
    """(...,J,3) joints -> (...,B) float64 lengths of the bones ``skeleton.bones`` (child - parent), input units."""
    joints = np.asarray(joints, dtype=np.float64)
    return np.stack([np.linalg.norm(joints[..., c, :] - joints[..., p, :], axis=-1) for p, c in skeleton.bones], -1)


def median_bone_lengths(joints: np.ndarray, skeleton: Skeleton = H36M_17, symmetric: bool = False) -> np.ndarray:
    """Each bone's median length over a sequence, indexed by its child joint.

    Args:
        joints: (T,J,3) positions in any length unit; frames with a NaN joint are ignored for the bones they touch.
        symmetric: average the medians of left/right bone pairs (the skeleton's flip pairs), so both sides of the
            body get one length.
    Returns:
        (J,) lengths in the joints' units; 0 for roots, NaN for a bone never seen.
    """
    per_frame = bone_lengths(joints, skeleton)
    lengths = np.zeros(skeleton.num_joints)
    for i, (_, c) in enumerate(skeleton.bones):
        seg = per_frame[:, i][np.isfinite(per_frame[:, i])]
        lengths[c] = np.median(seg) if len(seg) else np.nan
    if symmetric:
        for a, b in skeleton.flip_pairs:
            if skeleton.parents[a] >= 0 and skeleton.parents[b] >= 0:
                lengths[a] = lengths[b] = (lengths[a] + lengths[b]) / 2
    return lengths


def set_bone_lengths(joints: np.ndarray, lengths: np.ndarray, skeleton: Skeleton = H36M_17) -> np.ndarray:
    """Rebuild a pose outwards from its roots with given bone lengths, keeping every bone's direction.

    Args:
        joints: (...,J,3) positions; roots stay where they are.
        lengths: (J,) length of the bone ending at each joint, in the joints' units (roots ignored).
    Returns:
        (...,J,3) float array; a bone of zero length in the input keeps zero length (no direction to scale).
    """
    joints = np.asarray(joints)
    out = joints.astype(np.result_type(joints.dtype, np.float32), copy=True)
    for c in _root_outward(skeleton.parents):
        p = skeleton.parents[c]
        if p < 0:
            continue
        bone = joints[..., c, :] - joints[..., p, :]
        norm = np.linalg.norm(bone, axis=-1, keepdims=True)
        direction = np.divide(bone, norm, out=np.zeros_like(bone), where=norm > 1e-12)
        out[..., c, :] = out[..., p, :] + direction * lengths[c]
    return out
