"""Augmentations of 3D training motion: body proportions, tilts and speed by hand; their place in LiftClipDataset."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mocli.bones import bone_lengths
from mocli.config import DataConfig, RunConfig, apply_dict, load_preset
from mocli.data.augment import (
    BONE_GROUPS,
    LegBend,
    TiltRamp,
    bend_legs,
    bend_trunk,
    change_speed,
    check_config,
    ramp_tilt,
    rotate_about,
    rotation_about_axis,
    sample_body_factors,
    sample_leg_bend,
    sample_target_fps,
    sample_tilt,
    sample_tilt_ramp,
    scale_body,
)
from mocli.data.cameras import up_vector
from mocli.data.clips import LiftClipDataset
from mocli.data.sources import sources_from_arrays
from mocli.errors import MocliError
from mocli.skeleton import H36M_17, Skeleton

CHAIN = Skeleton(name="chain", joint_names=("root", "mid", "tip"), parents=(-1, 0, 1))


def _chain(num_frames: int = 4) -> np.ndarray:
    """(T, 3, 3) a chain root -> mid (1 m) -> tip (2 m) turning about z; the root walks along x (0, 1, 2, ...)."""
    out = np.zeros((num_frames, 3, 3))
    for t in range(num_frames):
        a = t * np.pi / 6
        d1, d2 = np.array([np.sin(a), np.cos(a), 0.0]), np.array([0.0, 0.0, 1.0])
        out[t, 0] = [t, 0.0, 0.0]
        out[t, 1] = out[t, 0] + 1.0 * d1
        out[t, 2] = out[t, 1] + 2.0 * d2
    return out


def _walk(num_frames: int = 60, seed: int = 0, swing_m: float = 0.15) -> np.ndarray:
    """(T, 17, 3) world joints in metres, y up: a crude body swinging its limbs while walking along x."""
    rng = np.random.default_rng(seed)
    heights = np.array([0.9, 0.9, 0.5, 0.1, 0.9, 0.5, 0.1, 1.15, 1.4, 1.5, 1.7, 1.4, 1.15, 0.9, 1.4, 1.15, 0.9])
    side = np.array([0, -1, -1, -1, 1, 1, 1, 0, 0, 0, 0, 1.2, 1.3, 1.3, -1.2, -1.3, -1.3]) * 0.15
    pose = np.stack([np.zeros(17), heights, side], axis=-1)
    t = np.arange(num_frames)[:, None] / 30.0
    swing = swing_m * np.sin(2 * np.pi * 1.2 * t + rng.uniform(0, 2 * np.pi, size=17)) * (heights < 1.6)
    return pose[None] + np.stack([swing + 0.8 * t, np.zeros_like(swing), np.zeros_like(swing)], axis=-1)


# --- body proportions -------------------------------------------------------------------------------------------


def test_a_chain_scaled_by_known_factors_by_hand():
    chain = _chain()
    out = scale_body(chain, np.array([1.0, 2.0, 0.5]), skeleton=CHAIN)  # mid bone 1 -> 2 m, tip bone 2 -> 1 m
    np.testing.assert_array_equal(out[:, 0], chain[:, 0])  # the root stays
    np.testing.assert_allclose(out[0, 1], [0.0, 2.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(out[0, 2], [0.0, 2.0, 1.0], atol=1e-12)
    half = np.sqrt(3) / 2  # frame 2: the first bone at 60 degrees from y
    np.testing.assert_allclose(out[2, 1], [2.0 + 2 * half, 2 * 0.5, 0.0], atol=1e-12)
    np.testing.assert_allclose(out[2, 2], [2.0 + 2 * half, 1.0, 1.0], atol=1e-12)


def test_root_trajectory_scales_about_its_mean():
    chain = _chain()  # root x = 0, 1, 2, 3 (mean 1.5)
    out = scale_body(chain, np.ones(3), root_scale=2.0, skeleton=CHAIN)
    np.testing.assert_allclose(out[:, 0, 0], [-1.5, 0.5, 2.5, 4.5], atol=1e-12)
    np.testing.assert_allclose(out - out[:, :1], chain - chain[:, :1], atol=1e-12)  # the pose itself is kept


def test_bones_become_rigid_with_median_lengths_and_keep_their_directions():
    chain = _chain(5)
    stretch = np.array([1.0, 1.2, 0.8, 1.1, 0.9])  # a non-rigid input: the first bone 0.8-1.2 m, median 1
    chain[:, 1:] = chain[:, :1] + (chain[:, 1:] - chain[:, :1]) * stretch[:, None, None]
    out = scale_body(chain, np.array([1.0, 1.5, 1.0]), skeleton=CHAIN)
    lengths = bone_lengths(out, CHAIN)
    np.testing.assert_allclose(lengths[:, 0], 1.5, atol=1e-12)  # median 1.0 x 1.5 in every frame
    np.testing.assert_allclose(lengths[:, 1], 2.0 * np.median(stretch), atol=1e-12)
    for p, c in CHAIN.bones:
        before, after = chain[:, c] - chain[:, p], out[:, c] - out[:, p]
        np.testing.assert_allclose(
            after / np.linalg.norm(after, axis=-1, keepdims=True),
            before / np.linalg.norm(before, axis=-1, keepdims=True),
            atol=1e-12,
        )


def test_identity_factors_are_an_exact_no_op():
    walk = _walk()
    walk[:, 7] += 0.01 * np.sin(np.arange(len(walk)))[:, None]  # even a non-rigid spine stays as it is
    out = scale_body(walk, np.ones(17))
    np.testing.assert_array_equal(out, walk)
    assert out is not walk


def test_body_factors_by_hand_and_within_their_ranges():
    rng = np.random.default_rng(0)
    fixed = sample_body_factors(rng, (1.1, 1.1), (1.0, 1.0), 0.0)
    np.testing.assert_allclose(fixed.bones, [1.0] + [1.1] * 16)
    assert fixed.root == pytest.approx(1.1)
    for _ in range(200):
        f = sample_body_factors(rng, (0.85, 1.15), (0.9, 1.1), 0.03)
        assert f.bones[0] == 1.0 and ((f.bones[1:] >= 0.85 * 0.9 * 0.985) & (f.bones[1:] <= 1.15 * 1.1 * 1.015)).all()
        for a, b in H36M_17.flip_pairs:  # left and right differ by at most 3 %
            assert abs(f.bones[a] / f.bones[b] - 1) <= 0.03 / (1 - 0.015) + 1e-12
        for members in BONE_GROUPS.values():  # one factor per group (up to the asymmetry)
            assert np.ptp(f.bones[list(members)]) <= 0.03 * 1.15 * 1.1
        assert f.root == pytest.approx(np.mean(f.bones[[2, 3, 5, 6]]))


def test_a_scaled_body_has_rigid_bones_of_the_median_lengths_times_the_factors():
    walk = _walk()  # its limbs swing by moving joints, so its bones are not rigid
    f = sample_body_factors(np.random.default_rng(3), (0.85, 1.15), (0.9, 1.1), 0.03)
    out = scale_body(walk, f.bones, f.root)
    lengths = bone_lengths(out)
    np.testing.assert_allclose(lengths, np.broadcast_to(lengths[:1], lengths.shape), atol=1e-12)
    np.testing.assert_allclose(lengths[0], np.median(bone_lengths(walk), axis=0) * f.bones[1:], atol=1e-12)


# --- tilts --------------------------------------------------------------------------------------------------------


def test_a_vertical_body_rotated_90_degrees_about_x_lies_along_z():
    R = rotation_about_axis(np.array([1.0, 0.0, 0.0]), np.pi / 2)
    np.testing.assert_allclose(R @ [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], atol=1e-12)
    body = _walk(1, swing_m=0.0)  # standing: pelvis at 0.9 m, head top at 1.7 m, on the y axis
    lying = rotate_about(body, R, body[0, 0])
    np.testing.assert_allclose(lying[0, 10] - lying[0, 0], [0.0, 0.0, 0.8], atol=1e-12)  # head 0.8 m along +z
    np.testing.assert_allclose(lying[0, 0], body[0, 0])  # the pivot stays


def test_a_tilt_keeps_bone_lengths_and_shape_and_tilts_by_its_angle():
    rng = np.random.default_rng(5)
    walk = _walk()
    up = up_vector("y")
    for _ in range(20):
        R = sample_tilt(rng, up, (30.0, 90.0))
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)
        angle = np.degrees(np.arccos(np.clip((R @ up) @ up, -1, 1)))
        assert 30.0 - 1e-9 <= angle <= 90.0 + 1e-9  # about a horizontal axis: up turns by the whole angle
        out = rotate_about(walk, R, walk[:, 0].mean(axis=0))
        np.testing.assert_allclose(bone_lengths(out), bone_lengths(walk), atol=1e-12)
        pairwise = np.linalg.norm(walk[:, None, :] - walk[None, :, :], axis=-1)  # distances between all frames
        np.testing.assert_allclose(np.linalg.norm(out[:, None, :] - out[None, :, :], axis=-1), pairwise, atol=1e-12)


def _trunk_angle_deg(joints: np.ndarray) -> np.ndarray:
    """(T,) angle between each frame's pelvis -> head direction and the y axis, degrees."""
    trunk = joints[:, 10] - joints[:, 0]
    return np.degrees(np.arccos(trunk[:, 1] / np.linalg.norm(trunk, axis=-1)))


def test_a_ramp_lays_a_standing_body_down_by_hand():
    body = np.repeat(_walk(1, swing_m=0.0), 11, axis=0)  # standing still for 11 frames
    ramp = TiltRamp(axis=np.array([1.0, 0.0, 0.0]), angles_deg=(0.0, 90.0), frames=(2.0, 8.0))
    out = ramp_tilt(body, ramp, body[0, 0])
    u = np.clip((np.arange(11) - 2.0) / 6.0, 0, 1)
    np.testing.assert_allclose(_trunk_angle_deg(out), 90.0 * (3 * u**2 - 2 * u**3), atol=1e-6)
    np.testing.assert_allclose(out[:3], body[:3], atol=1e-12)  # held before frame 2
    np.testing.assert_allclose(out[8:, 10] - out[8:, 0], np.tile([0.0, 0.0, 0.8], (3, 1)), atol=1e-12)  # lying on +z
    np.testing.assert_allclose(_trunk_angle_deg(out)[5], 45.0, atol=1e-6)  # half way at the middle frame
    np.testing.assert_allclose(bone_lengths(out), bone_lengths(body), atol=1e-12)
    np.testing.assert_allclose(out[:, 0], body[:, 0], atol=1e-12)  # the pivot (the pelvis here) stays


def test_a_ramp_with_equal_angles_is_the_static_tilt_and_samples_stay_in_range():
    walk, up = _walk(), up_vector("y")
    rng = np.random.default_rng(9)
    pivot = walk[:, 0].mean(axis=0)
    for _ in range(20):
        ramp = sample_tilt_ramp(rng, up, (0.0, 90.0), len(walk))
        assert abs(ramp.axis @ up) < 1e-12 and np.linalg.norm(ramp.axis) == pytest.approx(1.0)
        assert all(0.0 <= a <= 90.0 for a in ramp.angles_deg)
        assert 0.0 <= ramp.frames[0] <= ramp.frames[1] <= len(walk) - 1
        np.testing.assert_allclose(bone_lengths(ramp_tilt(walk, ramp, pivot)), bone_lengths(walk), atol=1e-12)
        still = TiltRamp(ramp.axis, (ramp.angles_deg[0], ramp.angles_deg[0]), ramp.frames)
        R = rotation_about_axis(ramp.axis, np.radians(ramp.angles_deg[0]))
        np.testing.assert_allclose(ramp_tilt(walk, still, pivot), rotate_about(walk, R, pivot), atol=1e-12)


def test_the_dataset_ramps_only_when_asked():
    sources = sources_from_arrays([np.repeat(_walk(1, swing_m=0.0), 40, axis=0)])
    ramps = LiftClipDataset(sources, _preset_data(**{**OFF, "tilt_prob": 1.0, "tilt_ramp_prob": 1.0}), seed=1)
    still = LiftClipDataset(sources, _preset_data(**{**OFF, "tilt_prob": 1.0}), seed=1)
    spread = []
    for ds in (ramps, still):
        rng = np.random.default_rng(3)
        spread.append(np.ptp(_trunk_angle_deg(ds._augment_3d(rng, sources[0], sources[0].joints3d[:30]))))
    assert spread[1] < 1e-9  # a static tilt keeps a standing body's direction
    assert spread[0] > 1.0  # a ramp turns it (by |a1 - a0| between the two frames, here more than a degree)


# --- speed --------------------------------------------------------------------------------------------------------


def test_linear_motion_resampled_at_known_factors():
    seq = np.arange(20.0)[:, None, None] * np.array([1.0, 0.0, 0.0])  # x = frame index
    np.testing.assert_allclose(change_speed(seq, 3, 5, 2.0)[:, 0, 0], [3, 5, 7, 9, 11])  # 15 fps from 30: faster
    np.testing.assert_allclose(change_speed(seq, 3, 5, 0.5)[:, 0, 0], [3, 3.5, 4, 4.5, 5])  # 60 fps: slower
    np.testing.assert_allclose(change_speed(seq, 2, 4, 1.25)[:, 0, 0], [2, 3.25, 4.5, 5.75])
    np.testing.assert_allclose(change_speed(seq, 15, 5, 2.0)[:, 0, 0], [11, 13, 15, 17, 19])  # moved back to fit
    np.testing.assert_allclose(change_speed(seq[:6], 0, 5, 2.0)[:, 0, 0], [0, 2, 4, 5, 5])  # too short: held
    np.testing.assert_array_equal(change_speed(seq, 4, 6, 1.0), seq[4:10])


def test_target_rates_are_log_uniform():
    rng = np.random.default_rng(0)
    fps = np.array([sample_target_fps(rng, (15.0, 60.0)) for _ in range(4000)])
    assert fps.min() >= 15.0 and fps.max() <= 60.0
    assert np.median(fps) == pytest.approx(30.0, rel=0.05)  # as many clips faster as slower than 30 fps
    assert np.mean(fps < 20.0) == pytest.approx(np.log(20 / 15) / np.log(4), abs=0.03)


# --- in the dataset -------------------------------------------------------------------------------------------------


def _preset_data(**changes) -> DataConfig:
    cfg = apply_dict(RunConfig(), load_preset("pretrain_dstformer-small_generalise")).data
    return dataclasses.replace(cfg, clip_len=30, stride=15, **changes)


OFF = dict(body_scale=(1.0, 1.0), bone_scale=(1.0, 1.0), bone_asymmetry=0.0, bend_prob=0.0, trunk_prob=0.0,
           tilt_prob=0.0, speed_fps=(0.0, 0.0), occlusion_rate=0.0, swap_rate=0.0, jitter_rate=0.0)  # fmt: skip


def test_augmentations_touch_training_only_and_are_deterministic():
    sources = sources_from_arrays([_walk(90, 0), _walk(70, 1)])
    on, off = _preset_data(), _preset_data(**OFF)
    val_on, val_off = (LiftClipDataset(sources, c, seed=2, train=False) for c in (on, off))
    train_on, train_off = (LiftClipDataset(sources, c, seed=2, train=True) for c in (on, off))
    differs = 0
    for i in range(len(val_on)):
        for k in ("input", "target", "factor"):
            np.testing.assert_array_equal(val_on[(1, i)][k].numpy(), val_off[(1, i)][k].numpy())
            np.testing.assert_array_equal(train_on[(1, i)][k].numpy(), train_on[(1, i)][k].numpy())
        differs += not np.array_equal(train_on[(1, i)]["target"].numpy(), train_off[(1, i)]["target"].numpy())
        assert not np.array_equal(train_on[(1, i)]["target"].numpy(), train_on[(2, i)]["target"].numpy())
    assert differs == len(val_on)


def test_preset_values_pass_the_checks_and_bad_values_are_one_line_errors():
    check_config(_preset_data())
    for key, value in (("body_scale", (1.2, 0.8)), ("speed_fps", (0.0, 30.0)), ("tilt_prob", 1.5),
                       ("tilt_ramp_prob", -0.5), ("bend_prob", -0.1),
                       ("trunk_prob", 1.1), ("trunk_deg", (60.0, 10.0)),
                       ("occlusion_frames", (0, 4)), ("bone_asymmetry", 2.5), ("jitter_std", -0.1)):  # fmt: skip
        with pytest.raises(MocliError, match=f"data.{key}"):
            LiftClipDataset(sources_from_arrays([_walk(40)]), _preset_data(**{key: value}))


def _standing() -> np.ndarray:
    """(1, 17, 3) a body standing straight in a right-handed y-up frame: left along +x, so it faces +z."""
    pose = np.zeros((17, 3))
    pose[[0, 7, 8, 9, 10]] = [[0, 1.0, 0], [0, 1.25, 0], [0, 1.5, 0], [0, 1.6, 0], [0, 1.75, 0]]
    for hip, knee, ankle, x in ((1, 2, 3, -0.1), (4, 5, 6, 0.1)):
        pose[[hip, knee, ankle]] = [[x, 1.0, 0], [x, 0.55, 0], [x, 0.1, 0]]
    pose[[11, 12, 13]] = [[0.2, 1.5, 0], [0.2, 1.2, 0], [0.2, 0.95, 0]]
    pose[[14, 15, 16]] = [[-0.2, 1.5, 0], [-0.2, 1.2, 0], [-0.2, 0.95, 0]]
    return pose[None]


def test_bent_legs_by_hand_a_standing_body_sits_on_a_chair_or_kneels():
    standing = _standing()
    sitting = bend_legs(standing, LegBend(hip_deg=(90.0, 90.0), knee_deg=(90.0, 90.0)))
    for hip, knee, ankle in ((1, 2, 3), (4, 5, 6)):
        x = standing[0, hip, 0]
        np.testing.assert_allclose(sitting[0, knee], [x, 1.0, 0.45], atol=1e-12)  # thigh level, forward (+z)
        np.testing.assert_allclose(sitting[0, ankle], [x, 0.55, 0.45], atol=1e-12)  # shin hanging below the knee
    kneeling = bend_legs(standing, LegBend(hip_deg=(0.0, 0.0), knee_deg=(90.0, 90.0)))
    np.testing.assert_allclose(kneeling[0, 3], [-0.1, 0.55, -0.45], atol=1e-12)  # shin level, behind (-z)
    untouched = [0, 1, 4, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    np.testing.assert_array_equal(sitting[0, untouched], standing[0, untouched])
    np.testing.assert_array_equal(bend_legs(standing, LegBend((0.0, 0.0), (0.0, 0.0))), standing)


def test_bent_legs_cap_the_knee_and_keep_bones_rigid():
    folded = bend_legs(_standing(), LegBend(hip_deg=(30.0, -10.0), knee_deg=(170.0, 40.0)))
    thigh, shin = folded[0, 2] - folded[0, 1], folded[0, 3] - folded[0, 2]
    bend = np.degrees(np.arccos(thigh @ shin / np.linalg.norm(thigh) / np.linalg.norm(shin)))
    assert bend == pytest.approx(155.0)  # 170 asked, capped at MAX_KNEE_DEG
    walk = _walk(60, 3)
    bent = bend_legs(walk, LegBend(hip_deg=(50.0, 70.0), knee_deg=(80.0, 60.0)))
    np.testing.assert_allclose(bone_lengths(bent, H36M_17), bone_lengths(walk, H36M_17), rtol=1e-9)
    assert np.abs(bent - walk)[:, [3, 6]].max() > 0.3  # the ankles moved a lot


def test_leg_bend_draws_within_their_ranges():
    rng = np.random.default_rng(0)
    bends = [sample_leg_bend(rng, (-10.0, 90.0), (0.0, 110.0)) for _ in range(500)]
    hips, knees = np.array([b.hip_deg for b in bends]), np.array([b.knee_deg for b in bends])
    assert hips.min() >= -20.0 and hips.max() <= 100.0 and knees.min() >= 0.0 and knees.max() <= 120.0
    assert np.abs(hips[:, 0] - hips[:, 1]).max() <= 20.0
    assert (knees == 0.0).any()  # draws below 0 are clamped, not reflected
    same = sample_leg_bend(np.random.default_rng(1), (30.0, 30.0), (40.0, 40.0), side_deg=0.0)
    assert same == LegBend(hip_deg=(30.0, 30.0), knee_deg=(40.0, 40.0))


def test_bent_trunk_by_hand_a_standing_body_bows_and_leans_back():
    standing = _standing()
    bowed = bend_trunk(standing, 90.0)  # the trunk level, forward (+z); the arms hang along it
    np.testing.assert_allclose(bowed[0, 7], [0.0, 1.0, 0.25], atol=1e-12)
    np.testing.assert_allclose(bowed[0, 10], [0.0, 1.0, 0.75], atol=1e-12)
    np.testing.assert_allclose(bowed[0, 13], [0.2, 1.0, -0.05], atol=1e-12)  # left wrist: 0.5 up, 0.55 from pelvis
    leaning = bend_trunk(standing, -30.0)
    s, c = np.sin(np.radians(30.0)), np.cos(np.radians(30.0))
    np.testing.assert_allclose(leaning[0, 8], [0.0, 1.0 + 0.5 * c, -0.5 * s], atol=1e-12)  # thorax, behind (-z)
    np.testing.assert_array_equal(bowed[0, :7], standing[0, :7])  # pelvis and legs stay
    np.testing.assert_array_equal(bend_trunk(standing, 0.0), standing)


def test_bent_trunk_keeps_bones_rigid_and_moves_the_upper_body_only():
    walk = _walk(60, 4)
    bent = bend_trunk(walk, 55.0)
    np.testing.assert_allclose(bone_lengths(bent, H36M_17), bone_lengths(walk, H36M_17), rtol=1e-9)
    np.testing.assert_array_equal(bent[:, :7], walk[:, :7])
    assert np.abs(bent - walk)[:, 10].max() > 0.3  # the head moved a lot


ORTHO = "orthographic"


def test_bent_trunk_in_the_dataset_turns_the_spine_by_the_drawn_angle():
    sources = sources_from_arrays([_walk(60, 5)])
    straight, bent = (
        LiftClipDataset(
            sources, _preset_data(**{**OFF, "trunk_prob": 1.0, "trunk_deg": (deg, deg), "projection": ORTHO}), seed=3
        )
        for deg in (0.0, 40.0)
    )  # the same draws (cameras, flips) for both: only the angle differs; orthographic, so the target keeps angles
    for i in range(len(straight)):
        a, b = straight[(0, i)]["target"].numpy(), bent[(0, i)]["target"].numpy()
        unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
        np.testing.assert_allclose(unit(a[:, 2] - a[:, 0]), unit(b[:, 2] - b[:, 0]), atol=1e-5)  # thighs stay
        axis = unit(a[:, 4] - a[:, 1])
        flat = [unit(s - np.sum(s * axis, -1, keepdims=True) * axis) for s in (a[:, 7] - a[:, 0], b[:, 7] - b[:, 0])]
        angle = np.degrees(np.arccos(np.clip(np.sum(flat[0] * flat[1], -1), -1.0, 1.0)))
        np.testing.assert_allclose(angle, 40.0, atol=0.01)  # the spine turned about the hips' axis
