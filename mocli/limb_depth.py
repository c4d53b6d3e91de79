"""Limb depth from the image: each limb bone's depth set by its length and its length in the image.

A lifter sees the image coordinates of every joint well and their depths poorly, and its depths come out too flat
(it moves less in depth than people do: model card, "Where the error lies"). A limb is rigid, so over a sequence
it has one length L, and a bone whose image-plane components are (dx, dy) must reach

    |dz| = sqrt(max(L^2 - dx^2 - dy^2, 0))

in depth (Taylor's reconstruction from known lengths, under weak perspective: x, y and z in one unit). The image
fixes the magnitude; the lifter keeps what the image cannot tell, the sign (towards or away from the camera). The
magnitude is unstable where a bone lies nearly in the image plane (small errors in dx, dy or L change it most,
and the sign is least sure), so the new depth is blended with the lifter's own with the weight

    a = strength * |dz| / L        (the cosine of the bone's angle to the camera's axis)

and the pose is rebuilt outwards from the root with every bone's x and y unchanged. L is the median of the
lifter's own bone length over the frames, the same for left and right. Only the limbs (thighs, shins, upper arms,
forearms) and the girdles (pelvis to hip, thorax to shoulder) are changed: the spine and head chains of H36M-17
are not rigid bones (a bending spine, a turning head).

Off by default (``mocli infer --limb-depth``, 0). A strength of 0.5 and these bones were the best on the validation
split of the training sources (``mocli eval mocap --cameras standard --no-noise --limb-depth``). With exact 2D it
lowers the error on people, motions and cameras that training never saw; with MediaPipe's 2D on rendered video it
does not (the model card, "Limb depths", has both).
"""

from __future__ import annotations

import numpy as np

from mocli.bones import median_bone_lengths
from mocli.skeleton import H36M_17

__all__ = ["LIMB_BONES", "limb_depths", "parse_limb_depth"]

# H36M-17 joints that end a rigid bone, each bone indexed by its child joint: hips (from the pelvis), knees, ankles,
# shoulders (from the thorax), elbows, wrists
LIMB_BONES = (1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16)


def parse_limb_depth(value: float | str) -> float:
    """``--limb-depth``: a strength from 0 to 1 (a number or its text); ValueError with a one-line message otherwise."""
    try:
        strength = float(value)
    except (TypeError, ValueError):
        strength = float("nan")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"--limb-depth {value}: give a strength from 0 to 1 (0: the lifter's own depths)")
    return strength


def limb_depths(
    joints: np.ndarray,
    strength: float,
    seen: np.ndarray | None = None,
    bones: tuple[int, ...] = LIMB_BONES,
) -> np.ndarray:
    """Depth of each limb bone from its length and its image-plane length (see the module docstring).

    Args:
        joints: (T,17,3) H36M-17 positions in camera axes (x, y in the image plane, z depth) in one unit for all
            three (the lifter's normalised output, or metres), root-relative or not.
        strength: 0-1, the blend weight of a bone pointing straight at the camera (0 returns the input).
        seen: (T,) frames whose lengths count for L (default: all); the others are changed as well.
        bones: the child joints of the bones to change.
    Returns:
        (T,17,3) array of the input's float dtype: x and y as given, depths rebuilt from the root outwards.
    """
    joints = np.asarray(joints)
    if joints.ndim != 3 or joints.shape[1:] != (H36M_17.num_joints, 3):
        raise ValueError(f"expected (T,17,3) joints, got {joints.shape}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be within 0-1, got {strength}")
    if strength == 0.0 or not len(joints):
        return joints.copy()
    counted = joints if seen is None else joints[seen]
    if not len(counted):
        return joints.copy()
    lengths = median_bone_lengths(counted, symmetric=True)
    parents = np.array(H36M_17.parents)
    bone = joints - joints[:, np.maximum(parents, 0)]  # (T,17,3); the root's own "bone" is zero
    out = joints.astype(np.result_type(joints.dtype, np.float32), copy=True)
    changed = np.zeros(H36M_17.num_joints, bool)
    changed[list(bones)] = True
    for c in range(1, H36M_17.num_joints):  # H36M-17 lists every parent before its children
        p = parents[c]
        moved = out[:, p, 2] - joints[:, p, 2]  # the parent's change of depth, carried down the chain
        if changed[c] and np.isfinite(lengths[c]) and lengths[c] > 0:
            dz = bone[:, c, 2]
            size = np.sqrt(np.maximum(lengths[c] ** 2 - (bone[:, c, :2] ** 2).sum(-1), 0.0))
            weight = strength * np.minimum(size / lengths[c], 1.0)
            moved = moved + weight * (np.sign(dz) * size - dz)
        out[:, c, 2] = joints[:, c, 2] + moved
    return out
