"""Skeleton definitions as data, and conversions of other keypoint layouts to mocli's internal H36M-17.

Every array of keypoints in mocli is (..., J, C) with the joint axis second to last. H36M-17 is the internal order
everywhere; other layouts (COCO-17, Halpe-26, MediaPipe-33, OpenPose BODY-25, Kinect v2's 25 joints) are converted
on the way in by ``to_h36m``, which carries the confidence channel in the same joint order as the coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Skeleton",
    "H36M_17",
    "COCO_17",
    "HALPE_26",
    "MEDIAPIPE_33",
    "OPENPOSE_25",
    "KINECT_25",
    "SKELETONS",
    "get_skeleton",
    "to_h36m",
    "derive_trunk",
    "flip_keypoints",
]


@dataclass(frozen=True)
class Skeleton:
    """A named joint layout: joint names, parent indices (-1 for a root) and left/right flip pairs."""

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    flip_pairs: tuple[tuple[int, int], ...] = field(default=())

    def __post_init__(self) -> None:
        if len(self.parents) != len(self.joint_names):
            raise ValueError(f"{self.name}: {len(self.parents)} parents for {len(self.joint_names)} joints")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def index(self, joint_name: str) -> int:
        return self.joint_names.index(joint_name)

    @property
    def bones(self) -> list[tuple[int, int]]:
        """(parent, child) index pairs, for drawing and bone-length checks."""
        return [(p, j) for j, p in enumerate(self.parents) if p >= 0]

    @property
    def flip_permutation(self) -> np.ndarray:
        """(J,) int index array that swaps left and right joints (an involution)."""
        perm = np.arange(self.num_joints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm


H36M_17 = Skeleton(
    name="h36m",
    joint_names=(
        "pelvis",
        "right_hip",
        "right_knee",
        "right_ankle",
        "left_hip",
        "left_knee",
        "left_ankle",
        "spine",
        "thorax",
        "neck",
        "head",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
    ),  # fmt: skip
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    flip_pairs=((1, 4), (2, 5), (3, 6), (11, 14), (12, 15), (13, 16)),
)

H36M_LIMBS = (1, 2, 3, 4, 5, 6, 11, 12, 13, 14, 15, 16)
"""The 12 limb joints of H36M-17 (hips, knees, ankles, shoulders, elbows, wrists). Every rig and detector places
them alike; the trunk joints (pelvis, spine, thorax), neck and head are conventions that differ between rigs."""

COCO_17 = Skeleton(
    name="coco",
    joint_names=(
        "nose",
        "left_eye",
        "right_eye",
        "left_ear",
        "right_ear",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
    ),  # fmt: skip
    parents=(-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
)

HALPE_26 = Skeleton(
    name="halpe",
    joint_names=COCO_17.joint_names
    + (
        "head",
        "neck",
        "hip",
        "left_big_toe",
        "right_big_toe",
        "left_small_toe",
        "right_small_toe",
        "left_heel",
        "right_heel",
    ),  # fmt: skip
    parents=(18, 0, 0, 1, 2, 18, 18, 5, 6, 7, 8, 19, 19, 11, 12, 13, 14, 18, 19, -1, 15, 16, 15, 16, 15, 16),
    flip_pairs=COCO_17.flip_pairs + ((20, 21), (22, 23), (24, 25)),
)

MEDIAPIPE_33 = Skeleton(
    name="mediapipe",
    joint_names=(
        "nose",
        "left_eye_inner",
        "left_eye",
        "left_eye_outer",
        "right_eye_inner",
        "right_eye",
        "right_eye_outer",
        "left_ear",
        "right_ear",
        "mouth_left",
        "mouth_right",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
        "left_pinky",
        "right_pinky",
        "left_index",
        "right_index",
        "left_thumb",
        "right_thumb",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "left_ankle",
        "right_ankle",
        "left_heel",
        "right_heel",
        "left_foot_index",
        "right_foot_index",
    ),  # fmt: skip
    parents=(
        -1,
        0,
        1,
        2,
        0,
        4,
        5,
        3,
        6,
        0,
        0,
        0,
        0,
        11,
        12,
        13,
        14,
        15,
        16,
        15,
        16,
        15,
        16,
        11,
        12,
        23,
        24,
        25,
        26,
        27,
        28,
        27,
        28,
    ),  # fmt: skip
    flip_pairs=(
        (1, 4),
        (2, 5),
        (3, 6),
        (7, 8),
        (9, 10),
        (11, 12),
        (13, 14),
        (15, 16),
        (17, 18),
        (19, 20),
        (21, 22),
        (23, 24),
        (25, 26),
        (27, 28),
        (29, 30),
        (31, 32),
    ),  # fmt: skip
)

OPENPOSE_25 = Skeleton(
    name="openpose",
    joint_names=(
        "nose",
        "neck",
        "right_shoulder",
        "right_elbow",
        "right_wrist",
        "left_shoulder",
        "left_elbow",
        "left_wrist",
        "mid_hip",
        "right_hip",
        "right_knee",
        "right_ankle",
        "left_hip",
        "left_knee",
        "left_ankle",
        "right_eye",
        "left_eye",
        "right_ear",
        "left_ear",
        "left_big_toe",
        "left_small_toe",
        "left_heel",
        "right_big_toe",
        "right_small_toe",
        "right_heel",
    ),  # fmt: skip
    parents=(1, 8, 1, 2, 3, 1, 5, 6, -1, 8, 9, 10, 8, 12, 13, 0, 0, 15, 16, 14, 14, 14, 11, 11, 11),
    flip_pairs=((2, 5), (3, 6), (4, 7), (9, 12), (10, 13), (11, 14), (15, 16), (17, 18), (19, 22), (20, 23), (21, 24)),
)

# Kinect v2 body joints in the SDK's JointType order (NTU RGB+D's .skeleton files); the thumb hangs off the wrist and
# the hand tip off the hand, as in the SDK's bone list.
KINECT_25 = Skeleton(
    name="kinect_v2",
    joint_names=(
        "spine_base", "spine_mid", "neck", "head", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
        "right_shoulder", "right_elbow", "right_wrist", "right_hand", "left_hip", "left_knee", "left_ankle",
        "left_foot", "right_hip", "right_knee", "right_ankle", "right_foot", "spine_shoulder", "left_hand_tip",
        "left_thumb", "right_hand_tip", "right_thumb",
    ),
    parents=(-1, 0, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 7, 6, 11, 10),
    flip_pairs=((4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17), (14, 18), (15, 19), (21, 23), (22, 24)),
)  # fmt: skip

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (H36M_17, COCO_17, HALPE_26, MEDIAPIPE_33, OPENPOSE_25, KINECT_25)}


def get_skeleton(name: str) -> Skeleton:
    try:
        return SKELETONS[name]
    except KeyError:
        raise ValueError(f"unknown skeleton {name!r}; known: {', '.join(SKELETONS)}") from None


# Each H36M-17 joint as the mean of one or more source joints (by name). Derived joints (pelvis, spine, thorax,
# head) average their sources; their confidence is the minimum of the sources' confidences.
_H36M_FROM: dict[str, list[list[str]]] = {
    "coco": [
        ["left_hip", "right_hip"], ["right_hip"], ["right_knee"], ["right_ankle"],
        ["left_hip"], ["left_knee"], ["left_ankle"],
        ["left_hip", "right_hip", "left_shoulder", "right_shoulder"],  # spine = mean(pelvis, thorax)
        ["left_shoulder", "right_shoulder"], ["nose"], ["left_eye", "right_eye"],
        ["left_shoulder"], ["left_elbow"], ["left_wrist"], ["right_shoulder"], ["right_elbow"], ["right_wrist"],
    ],
    "halpe": [
        ["hip"], ["right_hip"], ["right_knee"], ["right_ankle"],
        ["left_hip"], ["left_knee"], ["left_ankle"],
        ["neck", "hip"], ["neck"], ["nose"], ["head"],
        ["left_shoulder"], ["left_elbow"], ["left_wrist"], ["right_shoulder"], ["right_elbow"], ["right_wrist"],
    ],
    "mediapipe": [
        ["left_hip", "right_hip"], ["right_hip"], ["right_knee"], ["right_ankle"],
        ["left_hip"], ["left_knee"], ["left_ankle"],
        ["left_hip", "right_hip", "left_shoulder", "right_shoulder"],
        ["left_shoulder", "right_shoulder"], ["nose"], ["left_eye", "right_eye"],
        ["left_shoulder"], ["left_elbow"], ["left_wrist"], ["right_shoulder"], ["right_elbow"], ["right_wrist"],
    ],
    "openpose": [
        ["mid_hip"], ["right_hip"], ["right_knee"], ["right_ankle"],
        ["left_hip"], ["left_knee"], ["left_ankle"],
        ["neck", "mid_hip"], ["neck"], ["nose"], ["left_eye", "right_eye"],
        ["left_shoulder"], ["left_elbow"], ["left_wrist"], ["right_shoulder"], ["right_elbow"], ["right_wrist"],
    ],
    "kinect_v2": [  # one Kinect joint each: pelvis = SpineBase, spine = SpineMid, thorax = SpineShoulder, neck = Neck
        ["spine_base"], ["right_hip"], ["right_knee"], ["right_ankle"],
        ["left_hip"], ["left_knee"], ["left_ankle"],
        ["spine_mid"], ["spine_shoulder"], ["neck"], ["head"],
        ["left_shoulder"], ["left_elbow"], ["left_wrist"], ["right_shoulder"], ["right_elbow"], ["right_wrist"],
    ],
}  # fmt: skip


def to_h36m(keypoints: np.ndarray, source: str | Skeleton, conf: bool = True) -> np.ndarray:
    """Convert keypoints of another layout to H36M-17.

    Args:
        keypoints: (..., J_src, C): 2 or 3 coordinates (pixels, normalised or metres), followed by one
            confidence channel when ``conf`` is true (e.g. (T,J,3) = x, y, confidence).
        source: name of a skeleton in ``SKELETONS`` or a Skeleton.
        conf: whether the last channel is a confidence in [0, 1].

    Returns:
        (..., 17, C) in the same units. Coordinates of derived joints (pelvis, spine, thorax, head) are means of
        their sources; the confidence of a derived joint is the minimum of its sources' confidences, in H36M order
        like the coordinates.
    """
    skel = get_skeleton(source) if isinstance(source, str) else source
    keypoints = np.asarray(keypoints)
    if skel.name == "h36m":
        return keypoints.copy()
    if keypoints.shape[-2] != skel.num_joints:
        raise ValueError(f"expected {skel.num_joints} {skel.name} joints on axis -2, got shape {keypoints.shape}")
    ncoord = keypoints.shape[-1] - 1 if conf else keypoints.shape[-1]
    out_shape = keypoints.shape[:-2] + (H36M_17.num_joints, keypoints.shape[-1])
    out = np.empty(out_shape, dtype=np.result_type(keypoints.dtype, np.float32))
    # Gather each joint's own sources, so a missing (NaN) source joint only affects the joints derived from it.
    for i, names in enumerate(_H36M_FROM[skel.name]):
        src = keypoints[..., [skel.index(n) for n in names], :]
        out[..., i, :ncoord] = src[..., :ncoord].mean(axis=-2)
        if conf:
            out[..., i, ncoord] = src[..., ncoord].min(axis=-1)
    return out


def derive_trunk(joints: np.ndarray) -> np.ndarray:
    """H36M-17 joints with the trunk derived the way ``to_h36m`` derives it from a detector's joints.

    Pelvis = the middle of the hips, thorax = the middle of the shoulders, spine = the middle of those two; the other
    14 joints are kept. Mocap rigs put their pelvis, spine and thorax elsewhere (the back of the pelvis, the base of
    the neck), which a detector's 2D never shows.

    Args:
        joints: (..., 17, C) coordinates in any units (C >= 2; no confidence channel).
    Returns:
        A float copy of the same shape.
    """
    out = np.array(joints, dtype=np.result_type(np.asarray(joints).dtype, np.float32))
    if out.ndim < 2 or out.shape[-2] != H36M_17.num_joints:
        raise ValueError(f"expected (..., {H36M_17.num_joints}, C) joints, got shape {out.shape}")
    out[..., 0, :] = (out[..., 1, :] + out[..., 4, :]) / 2
    out[..., 8, :] = (out[..., 11, :] + out[..., 14, :]) / 2
    out[..., 7, :] = (out[..., 0, :] + out[..., 8, :]) / 2
    return out


def flip_keypoints(keypoints, skeleton: Skeleton = H36M_17, centre: float = 0.0):
    """Mirror keypoints horizontally: x -> 2*centre - x, and left/right joints swapped.

    Args:
        keypoints: numpy array or torch tensor (..., J, C) with x in channel 0; normalised coordinates are
            mirrored about ``centre`` = 0. Other channels (y, z, confidence) are only permuted.
    Returns:
        A new array/tensor of the same type and shape; flipping twice gives the input back.
    """
    out = keypoints[..., skeleton.flip_permutation, :]  # advanced indexing copies, for numpy and torch alike
    out[..., 0] = 2 * centre - out[..., 0]
    return out
