"""Training losses: known answers."""

from __future__ import annotations

import pytest
import torch

from mocli.losses import LiftLossWeights, lift_loss, loss_2d_weighted, loss_mpjpe, loss_n_mpjpe, loss_velocity


def _poses(seed: int = 0, shape=(2, 5, 17, 3)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_mpjpe_of_a_3_4_0_shift_is_5():
    gt = _poses()
    assert float(loss_mpjpe(gt + torch.tensor([3.0, 4.0, 0.0]), gt)) == pytest.approx(5.0)
    assert float(loss_mpjpe(gt, gt)) == 0.0


def test_n_mpjpe_of_twice_the_target_is_0():
    gt = _poses(1)
    assert float(loss_n_mpjpe(2 * gt, gt)) == pytest.approx(0.0, abs=1e-5)
    assert float(loss_n_mpjpe(gt + 1.0, gt)) > 0.1


def test_velocity_loss_of_a_constant_offset_is_0():
    gt = _poses(2)
    assert float(loss_velocity(gt + torch.tensor([0.3, -2.0, 1.0]), gt)) == pytest.approx(0.0, abs=1e-6)
    drift = torch.arange(5.0).view(1, 5, 1, 1) * torch.tensor([3.0, 4.0, 0.0])  # moves 5 units per frame
    assert float(loss_velocity(gt + drift, gt)) == pytest.approx(5.0, rel=1e-5)


def test_confidence_weighted_2d_loss_by_hand():
    target = torch.zeros(1, 1, 3, 3)
    pred = torch.tensor([[[[3.0, 4.0, 9.0], [0.0, 1.0, -7.0], [6.0, 8.0, 0.0]]]])  # z is ignored (orthographic)
    conf = torch.tensor([[[0.5, 1.0, 0.0]]])
    # mean(0.5 * 5, 1.0 * 1, 0.0 * 10) = 3.5 / 3
    assert float(loss_2d_weighted(pred, target, conf)) == pytest.approx(3.5 / 3)


def test_lift_loss_combines_3d_and_2d_samples():
    gt = _poses(3, (2, 4, 17, 3))
    pred = (gt + 0.1 * _poses(4, (2, 4, 17, 3))).requires_grad_()
    conf = torch.rand(2, 4, 17, generator=torch.Generator().manual_seed(5))
    has_3d = torch.tensor([1.0, 0.0])
    total, terms = lift_loss(pred, gt, conf, has_3d, LiftLossWeights())
    expected = (
        loss_mpjpe(pred[:1], gt[:1])
        + 0.5 * loss_n_mpjpe(pred[:1], gt[:1])
        + 20 * loss_velocity(pred[:1], gt[:1])
        + loss_2d_weighted(pred[1:], gt[1:], conf[1:])
    )
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert set(terms) == {"mpjpe", "n_mpjpe", "velocity", "proj_2d"}
    total.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    only_2d, terms_2d = lift_loss(pred, gt, conf, torch.zeros(2), LiftLossWeights())
    assert float(terms_2d["mpjpe"]) == 0.0 and only_2d.item() == pytest.approx(loss_2d_weighted(pred, gt, conf).item())
