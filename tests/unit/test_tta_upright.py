"""Upright-rolling TTA (mocli.models.tta): which windows count as lying, the roll, and the 3D rolled back."""

import math

import numpy as np
import pytest
import torch

from mocli.models.tta import body_roll, box_centre, roll_image_plane, upright
from mocli.predict import Runtime, run_batches

# A standing body in normalised image coordinates (y down): pelvis at the origin, head up (negative y).
STANDING = np.array([
    [0.00, 0.00], [-0.05, 0.00], [-0.05, 0.22], [-0.05, 0.45],  # pelvis, right hip, knee, ankle
    [0.05, 0.00], [0.05, 0.22], [0.05, 0.45],  # left hip, knee, ankle
    [0.00, -0.15], [0.00, -0.30], [0.00, -0.35], [0.00, -0.42],  # spine, thorax, neck, head
    [0.08, -0.28], [0.10, -0.14], [0.11, 0.00],  # left shoulder, elbow, wrist
    [-0.08, -0.28], [-0.10, -0.14], [-0.11, 0.00],  # right shoulder, elbow, wrist
], dtype=np.float32)  # fmt: skip


def turned(points: np.ndarray, degrees: float) -> np.ndarray:
    """Points (J,2) turned clockwise on screen (y down) about the origin by ``degrees``: +90 lays a standing body
    down with its head to the right (up (0,-1) -> right (1,0))."""
    a = math.radians(degrees)
    x = points[:, 0] * math.cos(a) - points[:, 1] * math.sin(a)
    y = points[:, 0] * math.sin(a) + points[:, 1] * math.cos(a)
    return np.stack([x, y], -1).astype(np.float32)


def window(points: np.ndarray, frames: int = 6, conf: float = 1.0) -> torch.Tensor:
    """(1,T,17,3) a still window of one pose with a confidence channel."""
    xyc = np.concatenate([points, np.full((17, 1), conf, np.float32)], -1)
    return torch.from_numpy(np.repeat(xyc[None, None], frames, axis=1).copy())


def echo(x: torch.Tensor) -> torch.Tensor:
    """A lifter that keeps x, y and takes depth from y: not roll-equivariant, so the roll shows in its depth."""
    return torch.stack([x[..., 0], x[..., 1], x[..., 1] * 2.0], -1)


@pytest.mark.parametrize("degrees", [90.0, -90.0, 70.0, -120.0])
def test_a_lying_body_is_rolled_upright(degrees):
    x = window(turned(STANDING, degrees) + np.float32([0.3, -0.1]))  # turned about its pelvis, then moved
    angle = body_roll(x)
    assert angle.shape == (1,)
    assert float(angle[0]) == pytest.approx(math.radians(degrees), abs=1e-5)
    centre = x[:, :, 0, :2].mean(1)
    up = roll_image_plane(x, angle, centre)
    np.testing.assert_allclose(up[0, 0, :, :2].numpy(), STANDING + np.float32([0.3, -0.1]), atol=1e-5)
    torch.testing.assert_close(up[..., 2], x[..., 2])  # confidence untouched


@pytest.mark.parametrize("degrees", [0.0, 30.0, -40.0])
def test_upright_and_leaning_bodies_are_left_alone(degrees):
    assert float(body_roll(window(turned(STANDING, degrees)))[0]) == 0.0


def test_bent_over_and_sitting_bodies_are_left_alone():
    bent = STANDING.copy()
    upper = [7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
    bent[upper] = turned(STANDING[upper], 90.0)  # torso level, legs upright
    sitting = STANDING.copy()
    legs = [1, 2, 3, 4, 5, 6]
    sitting[legs] = turned(STANDING[legs], -90.0)  # legs level, torso upright
    assert float(body_roll(window(bent))[0]) == 0.0
    assert float(body_roll(window(sitting))[0]) == 0.0


def test_unseen_ankles_give_no_roll():
    x = window(turned(STANDING, 90.0))
    x[..., [3, 6], 2] = 0.0  # both ankles missing: the legs' direction is unknown
    assert float(body_roll(x)[0]) == 0.0


def test_roll_round_trip():
    p = torch.randn(3, 5, 17, 4)
    a = torch.tensor([0.3, -2.0, 0.0])
    c = torch.randn(3, 2)
    torch.testing.assert_close(roll_image_plane(roll_image_plane(p, a, c), -a, c), p, atol=1e-5, rtol=0)


# STANDING's box is x -0.11..0.11, y -0.42..0.45; turned by +90 degrees it lies over x -0.45..0.42, y -0.11..0.11,
# centre (-0.015, 0). Rolled upright about that centre it is STANDING moved by (-0.015, -0.015).
ROLLED_UP = STANDING + np.float32([-0.015, -0.015])


def test_box_centre_of_the_seen_joints():
    x = window(turned(STANDING, 90.0))
    torch.testing.assert_close(box_centre(x), torch.tensor([[-0.015, 0.0]]), atol=1e-6, rtol=0)
    x[:, 2:, 3, :2] = 5.0  # the right ankle far away in later frames, but not seen there
    x[:, 2:, 3, 2] = 0.0
    torch.testing.assert_close(box_centre(x), torch.tensor([[-0.015, 0.0]]), atol=1e-6, rtol=0)
    x[..., 2] = 0.0
    assert torch.equal(box_centre(x), torch.zeros(1, 2))


def test_upright_lifts_the_rolled_body_and_rolls_the_3d_back():
    lying = turned(STANDING, 90.0)
    out = upright(echo, window(lying))
    # x, y back where the input had them; depth from the upright body's y (the model saw it standing)
    np.testing.assert_allclose(out[0, 0, :, :2].numpy(), lying, atol=1e-5)
    np.testing.assert_allclose(out[0, 0, :, 2].numpy(), ROLLED_UP[:, 1] * 2.0, atol=1e-5)


def test_upright_leaves_standing_windows_of_a_mixed_batch_as_they_are():
    x = torch.cat([window(STANDING), window(turned(STANDING, 90.0))])
    out = upright(echo, x)
    assert torch.equal(out[0], echo(x)[0])
    assert not torch.allclose(out[1, ..., 2], echo(x)[1, ..., 2])


def test_run_batches_applies_upright_after_flip():
    x = window(turned(STANDING, 90.0)).numpy()
    both = run_batches(echo, x, Runtime(batch_size=4, flip=True, upright=True))
    # echo is flip-equivariant, so flip averaging changes nothing and the answer is upright's
    np.testing.assert_allclose(both[0, 0, :, 2], ROLLED_UP[:, 1] * 2.0, atol=1e-5)
    plain = run_batches(echo, x, Runtime(batch_size=4, flip=True))
    np.testing.assert_allclose(plain[0, 0, :, 2], x[0, 0, :, 1] * 2.0, atol=1e-6)
