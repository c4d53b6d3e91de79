"""Where a detector puts a joint is not where a mocap rig does: joint definitions shifted along the bones.

A 2D detector marks the hip on the outline of the thigh, the ankle above the shoe, the head at the face; a mocap
rig puts its hip at the centre of the femoral head, its head at the top of the skull. The lifter is trained on the
rig's joints projected to 2D, and at inference gets the detector's: each joint off by a few centimetres, the same
way in every frame, turning with its bone. Training clips can show the lifter such offsets on the input only (the
3D target stays the rig's joints), so that it learns to lift any consistent definition to the rig's:

    shifted_j = x_j + a_j * unit(x_j - x_parent(j)) + b_j * unit(x_child(j) - x_j)

with a_j, b_j ~ N(0, std) metres drawn once per clip, the same for the left and right joint of a pair (a detector
defines both sides alike), b_j = 0 for the ends of chains (ankles, wrists, head), and the trunk (pelvis, spine,
thorax) derived afterwards from the shifted hips and shoulders, as ``mocli.skeleton.derive_trunk`` does.

Pure numpy; H36M-17 joints.
"""

from __future__ import annotations

import numpy as np

from mocli.skeleton import H36M_17, derive_trunk

__all__ = ["SHIFTED_JOINTS", "sample_joint_shifts", "shift_joints"]

# Joints whose definition moves (the trunk follows the hips and shoulders), with their child along the chain
# (-1: the end of a chain); pairs of left/right joints share one draw.
SHIFTED_JOINTS = {1: 2, 2: 3, 3: -1, 4: 5, 5: 6, 6: -1, 9: 10, 10: -1, 11: 12, 12: 13, 13: -1, 14: 15, 15: 16, 16: -1}
_MIRROR = {b: a for a, b in H36M_17.flip_pairs}  # the second joint of each left/right pair -> the first


def sample_joint_shifts(rng: np.random.Generator, std_m: float) -> np.ndarray:
    """(17, 2) metres: for each joint its shift along the bone from its parent and along the bone to its child;
    zero for the trunk, for the child direction of chain ends; the two joints of a left/right pair share a draw."""
    shifts = np.zeros((H36M_17.num_joints, 2))
    for j, child in SHIFTED_JOINTS.items():
        if j in _MIRROR:
            continue
        shifts[j] = rng.normal(0.0, std_m, 2)
        if child < 0:
            shifts[j, 1] = 0.0
    for left, right in _MIRROR.items():
        shifts[left] = shifts[right]
    return shifts


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.divide(v, n, out=np.zeros_like(v), where=n > 1e-9)


def shift_joints(joints: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """(T,17,3) metres -> the same joints with shifted definitions (module docstring); ``shifts`` (17, 2) metres
    from ``sample_joint_shifts``. Zero shifts give the joints with their trunk derived from hips and shoulders."""
    joints = np.asarray(joints, np.float64)
    out = joints.copy()
    parents = H36M_17.parents
    for j, child in SHIFTED_JOINTS.items():
        out[:, j] += shifts[j, 0] * _unit(joints[:, j] - joints[:, parents[j]])
        if child >= 0:
            out[:, j] += shifts[j, 1] * _unit(joints[:, child] - joints[:, j])
    return derive_trunk(out)
