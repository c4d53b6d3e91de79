"""Rotation maths of the mesh head: known rotations, round trips, 6D <-> matrix, finite gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mocli.models.rotations import axis_angle_to_matrix, matrix_to_axis_angle, matrix_to_rot6d, rot6d_to_matrix


def random_axis_angles(n: int, seed: int, max_angle: float = math.pi - 1e-3) -> torch.Tensor:
    """(n, 3) float64 axis-angles with uniformly random axes and angles in [0, max_angle]."""
    rng = np.random.default_rng(seed)
    axes = rng.normal(size=(n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    return torch.from_numpy(axes * rng.uniform(0, max_angle, size=(n, 1)))


def test_quarter_turn_about_z_maps_x_to_y():
    R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    torch.testing.assert_close(
        R @ torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    )


def test_axis_angle_to_matrix_matches_scipy():
    aa = random_axis_angles(64, 0)
    expected = torch.from_numpy(Rotation.from_rotvec(aa.numpy()).as_matrix())
    torch.testing.assert_close(axis_angle_to_matrix(aa), expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("max_angle", [1e-9, 1e-4, 1.0, math.pi - 1e-3])
def test_axis_angle_round_trip(max_angle):
    aa = random_axis_angles(50, 1, max_angle).reshape(5, 10, 3)  # any leading dims
    back = matrix_to_axis_angle(axis_angle_to_matrix(aa))
    torch.testing.assert_close(back, aa, atol=1e-9, rtol=0)


def test_half_turn_round_trips_as_a_matrix():
    aa = torch.tensor([[math.pi, 0.0, 0.0], [0.0, math.pi / math.sqrt(2), math.pi / math.sqrt(2)]], dtype=torch.float64)
    R = axis_angle_to_matrix(aa)
    torch.testing.assert_close(axis_angle_to_matrix(matrix_to_axis_angle(R)), R, atol=1e-9, rtol=0)
    assert torch.allclose(matrix_to_axis_angle(R).norm(dim=-1), torch.full((2,), math.pi, dtype=torch.float64))


def test_rot6d_of_a_matrix_gives_the_matrix_back():
    R = torch.from_numpy(Rotation.random(32, random_state=2).as_matrix())
    six = R[..., :, :2].reshape(32, 6)  # the first two columns, row by row
    torch.testing.assert_close(matrix_to_rot6d(R), six)
    torch.testing.assert_close(rot6d_to_matrix(six), R, atol=1e-12, rtol=0)


def test_rot6d_of_any_six_numbers_is_a_rotation():
    R = rot6d_to_matrix(torch.randn(100, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64))
    torch.testing.assert_close(R.transpose(-1, -2) @ R, torch.eye(3, dtype=torch.float64).expand(100, 3, 3))
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(100, dtype=torch.float64))


def test_gradients_are_finite_at_the_identity_and_half_turns():
    aa = torch.zeros(3, 3, dtype=torch.float64)
    aa[1, 0] = math.pi
    aa.requires_grad_(True)
    axis_angle_to_matrix(aa).sum().backward()
    assert torch.isfinite(aa.grad).all()
    R = axis_angle_to_matrix(aa.detach()).requires_grad_(True)
    matrix_to_axis_angle(R).norm(dim=-1).sum().backward()
    assert torch.isfinite(R.grad).all()
