"""PA-MPJPE of the 12 limb joints: blind to the trunk a rig chooses, equal to PA-MPJPE on those joints alone."""

from __future__ import annotations

import numpy as np
import pytest

from mocli.evaluation.pose_errors import frame_errors
from mocli.metrics import pa_mpjpe
from mocli.skeleton import H36M_17, H36M_LIMBS

TRUNK = [i for i in range(17) if i not in H36M_LIMBS]


def _rotation_z(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])


def test_limb_joints_are_hips_knees_ankles_shoulders_elbows_wrists() -> None:
    names = [H36M_17.joint_names[i] for i in H36M_LIMBS]
    for part in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist"):
        assert f"left_{part}" in names and f"right_{part}" in names
    assert len(names) == 12
    assert [H36M_17.joint_names[i] for i in TRUNK] == ["pelvis", "spine", "thorax", "neck", "head"]


def test_moving_the_trunk_changes_pa_mpjpe_but_not_the_limb_error() -> None:
    rng = np.random.default_rng(3)
    gt = rng.normal(0.0, 300.0, (5, 17, 3))  # mm
    pred = 1.3 * gt @ _rotation_z(40).T + 50.0  # a similarity copy: every PA error is 0
    pred[:, TRUNK] += rng.normal(0.0, 80.0, (5, len(TRUNK), 3))  # another rig's pelvis, spine, thorax, neck, head
    errors = frame_errors(pred, gt, keys=("pa_mpjpe", "pa_limbs"))
    assert errors["pa_limbs"] == pytest.approx(np.zeros(5), abs=1e-6)
    assert (errors["pa_mpjpe"] > 10.0).all()


def test_limb_error_equals_pa_mpjpe_of_the_limb_joints() -> None:
    rng = np.random.default_rng(4)
    gt = rng.normal(0.0, 300.0, (7, 17, 3))
    pred = gt + rng.normal(0.0, 40.0, gt.shape)
    per_frame = frame_errors(pred, gt, keys=("pa_limbs",))["pa_limbs"]
    assert per_frame.shape == (7,)
    assert per_frame.mean() == pytest.approx(pa_mpjpe(pred[:, H36M_LIMBS], gt[:, H36M_LIMBS]))
    assert per_frame[2] == pytest.approx(pa_mpjpe(pred[2:3, H36M_LIMBS], gt[2:3, H36M_LIMBS]))


def test_limb_error_needs_h36m_17() -> None:
    poses = np.zeros((2, 15, 3))
    with pytest.raises(ValueError, match="H36M-17"):
        frame_errors(poses, poses, keys=("pa_limbs",))
