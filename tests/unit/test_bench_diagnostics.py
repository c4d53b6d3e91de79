"""benchmarks/rig_conventions.py and lifter_diagnostics.py: the body frame and per-joint errors, by hand."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from mocli.metrics import pa_mpjpe

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
rigs = importlib.import_module("rig_conventions")
diagnostics = importlib.import_module("lifter_diagnostics")


def _body() -> np.ndarray:
    """A standing H36M-17 body facing +z, y up, metres: left is +x."""
    j = np.zeros((17, 3))
    j[1], j[4] = (-0.1, -0.02, 0.0), (0.1, -0.02, 0.0)  # right, left hip
    j[2], j[5] = (-0.1, -0.45, 0.0), (0.1, -0.45, 0.0)
    j[3], j[6] = (-0.1, -0.85, 0.0), (0.1, -0.85, 0.0)
    j[7], j[8] = (0.0, 0.25, 0.0), (0.0, 0.5, 0.0)  # spine, thorax
    j[9], j[10] = (0.0, 0.6, 0.05), (0.0, 0.75, 0.0)  # neck/nose 5 cm forward of the thorax's vertical
    j[11], j[14] = (0.15, 0.48, -0.02), (-0.15, 0.48, -0.02)  # left, right shoulder
    j[12], j[15] = (0.4, 0.48, 0.0), (-0.4, 0.48, 0.0)
    j[13], j[16] = (0.6, 0.48, 0.0), (-0.6, 0.48, 0.0)
    return j


def _yaw(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]])


def test_offsets_in_the_body_frame_by_hand_and_the_same_however_the_body_turns():
    still = np.repeat(_body()[None], 3, axis=0)
    found = rigs.conventions(still)
    assert found["offsets"][9] == pytest.approx([0.0, 100.0, 50.0], abs=1e-9)  # neck: 10 cm up, 5 cm forward
    assert found["offsets"][11] == pytest.approx([150.0, -20.0, -20.0], abs=1e-9)  # left shoulder: left, down, back
    assert found["offsets"][4] == pytest.approx([100.0, -20.0, 0.0], abs=1e-9)  # left hip from the pelvis
    assert found["bones"][8] == pytest.approx(np.hypot(100.0, 50.0))  # thorax -> neck
    turned = np.stack([_body() @ _yaw(a).T + [1.0, 0.0, 3.0] for a in (0.0, 70.0, 200.0)])
    again = rigs.conventions(turned)
    assert again["offsets"] == pytest.approx(found["offsets"], abs=1e-9)
    assert again["bones"] == pytest.approx(found["bones"])


def test_per_joint_pa_errors_by_hand():
    truth = np.repeat(_body()[None], 2, axis=0)
    moved = 1.3 * truth @ _yaw(40.0).T + 0.5  # a similarity transform: no error after alignment
    assert diagnostics.joint_pa_errors(moved, truth) == pytest.approx(np.zeros(17), abs=1e-9)
    # parity with mocli.metrics.pa_mpjpe: the per-joint errors average to it; the moved joints carry the most
    rng = np.random.default_rng(0)
    pred = truth + 0.01 * rng.normal(size=truth.shape)
    pred[:, 13] += (0.0, 0.0, 0.15)
    err = diagnostics.joint_pa_errors(pred, truth)
    assert err.mean() == pytest.approx(pa_mpjpe(pred, truth), rel=1e-9)
    assert err.argmax() == 13
