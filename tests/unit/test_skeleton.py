from __future__ import annotations

import numpy as np
import pytest
import torch

from mocli.bones import median_bone_lengths, set_bone_lengths
from mocli.skeleton import (
    COCO_17,
    H36M_17,
    HALPE_26,
    MEDIAPIPE_33,
    OPENPOSE_25,
    SKELETONS,
    derive_trunk,
    flip_keypoints,
    to_h36m,
)


@pytest.mark.parametrize("skel", SKELETONS.values(), ids=lambda s: s.name)
def test_skeletons_are_trees_with_symmetric_flip_pairs(skel):
    roots = [j for j, p in enumerate(skel.parents) if p < 0]
    assert len(roots) == 1
    for j in range(skel.num_joints):  # every joint reaches the root without cycles
        seen, k = set(), j
        while k >= 0:
            assert k not in seen
            seen.add(k)
            k = skel.parents[k]
    perm = skel.flip_permutation
    assert np.array_equal(perm[perm], np.arange(skel.num_joints))
    for a, b in skel.flip_pairs:  # pairs are named left/right of each other
        na, nb = skel.joint_names[a], skel.joint_names[b]
        assert na.replace("left", "X") == nb.replace("right", "X") or na.replace("right", "X") == nb.replace(
            "left", "X"
        )


def test_h36m_reference_facts():
    assert H36M_17.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
    left, right = [4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]
    assert list(H36M_17.flip_permutation[left]) == right


def test_coco_to_h36m_hand_computed_with_confidences_in_h36m_order():
    kp = np.zeros((17, 3))
    kp[:, 0] = np.arange(17) * 10.0  # x = 10 * coco index
    kp[:, 1] = 100.0
    kp[:, 2] = np.linspace(0.1, 0.9, 17)  # distinct confidence per coco joint
    out = to_h36m(kp[None], "coco")[0]
    c = kp[:, 2]
    assert out[0, 0] == pytest.approx((110 + 120) / 2) and out[0, 2] == pytest.approx(min(c[11], c[12]))  # pelvis
    assert out[8, 0] == pytest.approx((50 + 60) / 2) and out[8, 2] == pytest.approx(min(c[5], c[6]))  # thorax
    assert out[7, 0] == pytest.approx((115 + 55) / 2)  # spine = mean(pelvis, thorax)
    assert out[10, 0] == pytest.approx(15) and out[9, 0] == 0  # head = mean eyes, nose
    coco_for = {1: 12, 2: 14, 3: 16, 4: 11, 5: 13, 6: 15, 11: 5, 12: 7, 13: 9, 14: 6, 15: 8, 16: 10}
    for h, k in coco_for.items():
        assert out[h, 0] == kp[k, 0] and out[h, 2] == kp[k, 2], f"h36m {h} <- coco {k}"


def test_halpe_uses_its_own_hip_neck_head():
    kp = np.random.default_rng(0).uniform(size=(5, 26, 3))
    out = to_h36m(kp, HALPE_26)
    np.testing.assert_allclose(out[:, 0], kp[:, 19])  # pelvis = Hip
    np.testing.assert_allclose(out[:, 8], kp[:, 18])  # thorax = Neck
    np.testing.assert_allclose(out[:, 10], kp[:, 17])  # head = Head
    np.testing.assert_allclose(out[:, 7, :2], (kp[:, 18, :2] + kp[:, 19, :2]) / 2)
    np.testing.assert_allclose(out[:, 7, 2], np.minimum(kp[:, 18, 2], kp[:, 19, 2]))


@pytest.mark.parametrize(("skel", "hips"), [(MEDIAPIPE_33, (23, 24)), (OPENPOSE_25, (12, 9)), (COCO_17, (11, 12))])
def test_limbs_map_by_name(skel, hips):
    kp = np.random.default_rng(1).uniform(size=(3, skel.num_joints, 3))
    out = to_h36m(kp, skel)
    np.testing.assert_allclose(out[:, 4, :2], kp[:, hips[0], :2])  # left hip
    np.testing.assert_allclose(out[:, 1, :2], kp[:, hips[1], :2])  # right hip
    np.testing.assert_allclose(out[:, 13], kp[:, skel.index("left_wrist")])


def test_3d_without_confidence():
    j3d = np.random.default_rng(2).normal(size=(4, 33, 3))
    out = to_h36m(j3d, "mediapipe", conf=False)
    np.testing.assert_allclose(out[:, 0], (j3d[:, 23] + j3d[:, 24]) / 2)
    np.testing.assert_allclose(out[:, 16], j3d[:, 16])


def test_wrong_joint_count_is_an_error():
    with pytest.raises(ValueError, match="expected 17 coco joints"):
        to_h36m(np.zeros((2, 18, 3)), "coco")
    with pytest.raises(ValueError, match="unknown skeleton"):
        to_h36m(np.zeros((2, 17, 3)), "kinect")


def test_flip_twice_is_identity_and_swaps_sides():
    x = np.random.default_rng(3).normal(size=(2, 4, 17, 3))
    f = flip_keypoints(x)
    np.testing.assert_array_equal(flip_keypoints(f), x)
    np.testing.assert_array_equal(f[..., 4, 0], -x[..., 1, 0])  # left hip <- mirrored right hip
    np.testing.assert_array_equal(f[..., 0, 1:], x[..., 0, 1:])  # y and confidence untouched
    t = torch.from_numpy(x)
    torch.testing.assert_close(flip_keypoints(t), torch.from_numpy(f))
    assert flip_keypoints(np.array([[[2.0, 0, 0]] * 17]), centre=1.0)[0, 0, 0] == 0.0


def test_a_missing_source_joint_only_affects_joints_derived_from_it():
    kp = np.random.default_rng(4).uniform(size=(2, 17, 3))
    kp[1, 9, :2] = np.nan  # coco left wrist lost in frame 1
    kp[1, 11, :2] = np.nan  # and the left hip
    out = to_h36m(kp, "coco")
    assert np.isfinite(out[0]).all()
    nan_joints = sorted(np.flatnonzero(np.isnan(out[1, :, 0])))
    assert nan_joints == [0, 4, 7, 13]  # pelvis, left hip, spine (from the hips), left wrist


def _stick_pose() -> np.ndarray:
    """(17,3) metres: an H36M-17 pose whose every bone is a distinct, hand-checkable vector."""
    pose = np.zeros((17, 3))
    for c, p in enumerate(H36M_17.parents):
        if p >= 0:
            pose[c] = pose[p] + np.array([0.01 * c, 0.1 + 0.01 * c, 0.02 * (c % 3)])
    return pose


def test_median_bone_lengths_hand_computed_with_symmetry_and_missing_frames():
    lw, le = H36M_17.index("left_wrist"), H36M_17.index("left_elbow")
    rw, re_ = H36M_17.index("right_wrist"), H36M_17.index("right_elbow")
    pose = _stick_pose()
    frames = np.repeat(pose[None], 4, axis=0)
    # left forearm pointing down with lengths 1, 2, 3 m (and a NaN frame); right forearm 4 m in every frame
    for t, length in enumerate([1.0, 2.0, 3.0, np.nan]):
        frames[t, lw] = frames[t, le] + [0.0, length, 0.0]
    frames[:, rw] = frames[:, re_] + [0.0, 0.0, 4.0]
    lengths = median_bone_lengths(frames)
    assert lengths[0] == 0 and lengths[lw] == pytest.approx(2.0) and lengths[rw] == pytest.approx(4.0)
    spine = H36M_17.index("spine")
    assert lengths[spine] == pytest.approx(np.linalg.norm([0.07, 0.17, 0.02]))
    sym = median_bone_lengths(frames, symmetric=True)
    assert sym[lw] == sym[rw] == pytest.approx(3.0)
    assert sym[spine] == pytest.approx(lengths[spine])  # unpaired bones keep their own median


def test_set_bone_lengths_keeps_roots_and_directions_and_round_trips():
    pose = _stick_pose()
    poses = np.stack([pose, pose * 2.0 + 1.0])  # the second frame is the first scaled about a shifted root
    target = np.where(np.array(H36M_17.parents) >= 0, 0.5, 0.0)
    out = set_bone_lengths(poses, target)
    np.testing.assert_allclose(out[:, 0], poses[:, 0])
    for p, c in H36M_17.bones:
        new, old = out[:, c] - out[:, p], poses[:, c] - poses[:, p]
        np.testing.assert_allclose(np.linalg.norm(new, axis=-1), 0.5)
        np.testing.assert_allclose(new / 0.5, old / np.linalg.norm(old, axis=-1, keepdims=True), atol=1e-12)
    np.testing.assert_allclose(out[0] - out[0, 0], out[1] - out[1, 0], atol=1e-12)  # same shape after fixing
    np.testing.assert_allclose(set_bone_lengths(pose, median_bone_lengths(pose[None])), pose, atol=1e-12)


def test_derive_trunk_by_hand_and_as_to_h36m_derives_it_from_coco():
    j = np.zeros((2, 17, 3))
    j[:, 1], j[:, 4] = (-0.1, 0.0, 0.0), (0.1, 0.0, 0.2)  # hips
    j[:, 11], j[:, 14] = (0.2, 0.5, 0.0), (-0.2, 0.7, 0.0)  # shoulders
    j[:, 0], j[:, 7], j[:, 8] = (9.0, 9.0, 9.0), (8.0, 8.0, 8.0), (7.0, 7.0, 7.0)  # a rig's own trunk
    out = derive_trunk(j)
    assert out[0, 0] == pytest.approx([0.0, 0.0, 0.1])
    assert out[0, 8] == pytest.approx([0.0, 0.6, 0.0])
    assert out[0, 7] == pytest.approx([0.0, 0.3, 0.05])
    assert j[0, 0] == pytest.approx([9.0, 9.0, 9.0])  # the input is not changed
    coco = np.random.default_rng(3).normal(size=(4, 17, 2))
    h36m = to_h36m(coco, "coco", conf=False)
    np.testing.assert_allclose(derive_trunk(h36m), h36m, atol=1e-12)
    with pytest.raises(ValueError, match="17"):
        derive_trunk(np.zeros((4, 16, 3)))
