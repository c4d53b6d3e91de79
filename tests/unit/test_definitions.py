"""Joint definitions shifted along the bones (``mocli.data.definitions``) by hand, and their place in the dataset."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mocli.config import DataConfig, RunConfig, apply_dict, load_preset
from mocli.data.clips import LiftClipDataset
from mocli.data.definitions import SHIFTED_JOINTS, sample_joint_shifts, shift_joints
from mocli.data.sources import sources_from_arrays
from mocli.errors import MocliError
from mocli.skeleton import derive_trunk


def _body(num_frames: int = 3) -> np.ndarray:
    """(T,17,3) metres, y up: a standing body with its trunk derived from the hips and shoulders, walking along x."""
    heights = np.array([0.9, 0.9, 0.5, 0.1, 0.9, 0.5, 0.1, 1.15, 1.4, 1.5, 1.7, 1.4, 1.15, 0.9, 1.4, 1.15, 0.9])
    side = np.array([0, -1, -1, -1, 1, 1, 1, 0, 0, 0, 0, 1.2, 1.3, 1.3, -1.2, -1.3, -1.3]) * 0.15
    pose = np.stack([np.zeros(17), heights, side], axis=-1)
    walk = pose[None] + np.arange(num_frames)[:, None, None] * np.array([0.1, 0.0, 0.0])
    return derive_trunk(walk)


def test_no_shift_keeps_a_body_whose_trunk_is_derived():
    body = _body()
    np.testing.assert_allclose(shift_joints(body, np.zeros((17, 2))), body, atol=1e-12)


def test_a_shift_moves_a_joint_along_the_bones_and_the_trunk_follows():
    """Right hip at (0, 0.9, -0.15) from the pelvis at (0, 0.9, 0): the bone from the parent points along -z, the
    bone to the knee (0, 0.5, -0.15) along -y. Shifts of 2 cm and 3 cm move it to (0, 0.87, -0.17); the left hip
    shares the draw (its bones point along +z and -y): (0, 0.87, 0.17); the pelvis, their middle, to (0, 0.87, 0)
    and the spine halfway to the thorax, which stays."""
    body = _body(1)
    shifts = np.zeros((17, 2))
    shifts[1] = shifts[4] = [0.02, 0.03]
    out = shift_joints(body, shifts)[0]
    np.testing.assert_allclose(out[1], [0.0, 0.87, -0.17], atol=1e-12)
    np.testing.assert_allclose(out[4], [0.0, 0.87, 0.17], atol=1e-12)
    np.testing.assert_allclose(out[0], [0.0, 0.87, 0.0], atol=1e-12)
    np.testing.assert_allclose(out[8], body[0, 8], atol=1e-12)
    np.testing.assert_allclose(out[7], (out[0] + out[8]) / 2, atol=1e-12)
    unshifted = [j for j in range(17) if j not in (0, 1, 4, 7)]
    np.testing.assert_allclose(out[unshifted], body[0, unshifted], atol=1e-12)


def test_the_shift_turns_with_the_body():
    rng = np.random.default_rng(1)
    body = _body(4) + rng.normal(0, 0.02, size=(4, 17, 3))
    shifts = sample_joint_shifts(rng, 0.05)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    R = q * np.sign(np.linalg.det(q))
    np.testing.assert_allclose(shift_joints(body @ R.T, shifts), shift_joints(body, shifts) @ R.T, atol=1e-12)


def test_draws_are_shared_by_left_and_right_zero_for_the_trunk_and_along_one_bone_at_chain_ends():
    rng = np.random.default_rng(2)
    draws = np.stack([sample_joint_shifts(rng, 0.04) for _ in range(3000)])
    for left, right in ((4, 1), (5, 2), (6, 3), (14, 11), (15, 12), (16, 13)):
        np.testing.assert_array_equal(draws[:, left], draws[:, right])
    assert not draws[:, [0, 7, 8]].any()
    ends = [j for j, child in SHIFTED_JOINTS.items() if child < 0]
    assert not draws[:, ends, 1].any()
    assert draws[:, 1].std() == pytest.approx(0.04, rel=0.05) and abs(draws[:, 1].mean()) < 0.003


def _data(**changes) -> DataConfig:
    cfg = apply_dict(RunConfig(), load_preset("pretrain_dstformer-small_generalise")).data
    off = dict(body_scale=(1.0, 1.0), bone_scale=(1.0, 1.0), bone_asymmetry=0.0, bend_prob=0.0, trunk_prob=0.0,
               tilt_prob=0.0, speed_fps=(0.0, 0.0), occlusion_rate=0.0, swap_rate=0.0, jitter_rate=0.0,
               noise=False, flip_prob=0.0, mask_joint_ratio=0.0, mask_frame_ratio=0.0)  # fmt: skip
    return dataclasses.replace(cfg, clip_len=20, stride=20, **{**off, **changes})


def test_the_dataset_shifts_the_input_only_and_only_in_training():
    """Without noise, masks or flips the input is the target's x, y (before the root is subtracted); with
    shift_prob 1 the input moves by the shifted joints' projection while the target stays; a shift of 0 m or
    validation clips change nothing."""
    sources = sources_from_arrays([_body(40) + np.linspace(0, 0.3, 40)[:, None, None] * np.array([0.0, 0.0, 1.0])])
    plain = LiftClipDataset(sources, _data(), seed=3)[(0, 0)]
    xy = plain["input"][..., :2].numpy()
    np.testing.assert_allclose(xy - xy[:, :1], plain["target"][..., :2].numpy(), atol=1e-6)  # target root-relative
    shifted = LiftClipDataset(sources, _data(shift_prob=1.0, shift_m=0.05), seed=3)[(0, 0)]
    np.testing.assert_array_equal(shifted["target"].numpy(), plain["target"].numpy())
    moved = np.abs(shifted["input"][..., :2].numpy() - plain["input"][..., :2].numpy()).max(axis=(0, 2))
    assert (moved[[1, 2, 3, 9, 10, 11, 12, 13]] > 1e-3).all()
    zero = LiftClipDataset(sources, _data(shift_prob=1.0, shift_m=0.0), seed=3)[(0, 0)]
    np.testing.assert_allclose(zero["input"].numpy(), plain["input"].numpy(), atol=1e-6)
    val = LiftClipDataset(sources, _data(shift_prob=1.0, shift_m=0.05), seed=3, train=False)[(0, 0)]
    unshifted = LiftClipDataset(sources, _data(), seed=3, train=False)[(0, 0)]
    np.testing.assert_array_equal(val["input"].numpy(), unshifted["input"].numpy())


@pytest.mark.parametrize("key, value", [("shift_prob", 1.5), ("shift_m", -0.01)])
def test_bad_shift_settings_are_one_line_errors(key, value):
    with pytest.raises(MocliError, match=f"data.{key}"):
        LiftClipDataset(sources_from_arrays([_body(40)]), _data(**{key: value}))
