"""Training losses: known answers."""

from __future__ import annotations

import pytest
import torch

from mocli.config import LossConfig, RunConfig
from mocli.errors import MocliError
from mocli.losses import (
    LiftLossWeights,
    lift_loss,
    loss_2d_weighted,
    loss_bone_length,
    loss_mpjpe,
    loss_n_mpjpe,
    loss_velocity,
)
from mocli.training.runs import check_common


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


def test_bone_length_loss_of_a_pose_flattened_to_its_image():
    """One frame: every joint at the origin but the right knee at (0.3, 0, 0.4) from the hip at (0.1, 0, 0), so the
    thigh is 0.5 long; flattening the depth (z = 0) makes it 0.3, one bone of 16 off by 0.2: loss 0.2 / 16. Moving
    the whole pose, or flipping the depth's sign, keeps every length: loss 0."""
    target = torch.zeros(1, 17, 3)
    target[0, 1] = torch.tensor([0.1, 0.0, 0.0])
    target[0, 2] = target[0, 1] + torch.tensor([0.3, 0.0, 0.4])
    target[0, 3] = target[0, 2]
    flat = target.clone()
    flat[..., 2] = 0.0
    assert float(loss_bone_length(flat, target)) == pytest.approx(0.2 / 16)
    mirrored = target * torch.tensor([1.0, 1.0, -1.0])
    assert float(loss_bone_length(mirrored + 3.0, target)) == pytest.approx(0.0, abs=1e-6)


def test_lift_loss_adds_the_bone_length_term_of_3d_samples_only_when_weighted():
    gt = _poses(8, (2, 4, 17, 3))
    pred = gt + 0.1 * _poses(9, (2, 4, 17, 3))
    conf, has_3d = torch.ones(2, 4, 17), torch.tensor([1.0, 0.0])
    base, terms = lift_loss(pred, gt, conf, has_3d, LiftLossWeights())
    total, with_bones = lift_loss(pred, gt, conf, has_3d, LiftLossWeights(bone_length=2.0))
    assert "bone_length" not in terms
    assert float(with_bones["bone_length"]) == pytest.approx(float(loss_bone_length(pred[:1], gt[:1])))
    assert total.item() == pytest.approx(base.item() + 2.0 * float(with_bones["bone_length"]), rel=1e-6)
    _, only_2d = lift_loss(pred, gt, conf, torch.zeros(2), LiftLossWeights(bone_length=2.0))
    assert float(only_2d["bone_length"]) == 0.0
    with pytest.raises(MocliError, match="loss.bone_length must be >= 0"):
        check_common(RunConfig(loss=LossConfig(bone_length=-1.0)), 1)


def test_bounded_n_mpjpe_equals_the_unbounded_within_its_bounds():
    gt = _poses(6)
    pred = 1.5 * gt + 0.2 * _poses(7)  # least-squares scales about 2/3, inside [1/2, 2]
    assert float(loss_n_mpjpe(pred, gt, 2.0)) == pytest.approx(float(loss_n_mpjpe(pred, gt)), rel=1e-6)


def test_bounded_n_mpjpe_scores_a_shrunken_prediction_at_the_bound():
    gt = _poses(8)
    mean_norm = float(torch.linalg.vector_norm(gt, dim=-1).mean())
    # 0.1 * gt needs a scale of 10: unbounded it scores 0; bounded at 2 it is 0.2 * gt, 0.8 of the target's norm away.
    assert float(loss_n_mpjpe(0.1 * gt, gt)) == pytest.approx(0.0, abs=1e-5)
    assert float(loss_n_mpjpe(0.1 * gt, gt, 2.0)) == pytest.approx(0.8 * mean_norm, rel=1e-5)
    # 10 * gt needs 0.1: bounded at 2 it is scored as 5 * gt, four norms away.
    assert float(loss_n_mpjpe(10 * gt, gt, 2.0)) == pytest.approx(4.0 * mean_norm, rel=1e-5)


def _n_mpjpe_grad(size: float, max_scale: float) -> torch.Tensor:
    gt = _poses(9)
    pred = (size * (gt + 0.5 * _poses(10))).requires_grad_()  # a noisy prediction, of a given size
    loss_n_mpjpe(pred, gt, max_scale).backward()
    return pred.grad


def test_unbounded_n_mpjpe_gradient_grows_as_the_prediction_shrinks_and_the_bounded_does_not():
    big, small = _n_mpjpe_grad(1.0, 0.0).norm(), _n_mpjpe_grad(0.01, 0.0).norm()
    assert float(small / big) == pytest.approx(100.0, rel=0.05)  # 1 / |pred|: the collapse of docs/pretrain.md
    big, small = _n_mpjpe_grad(1.0, 2.0), _n_mpjpe_grad(0.01, 2.0)
    assert float(small.norm()) < 3.0 * float(big.norm())
    # and a step against the bounded gradient moves a shrunken prediction towards the target
    assert float((-small * _poses(9)).sum()) > 0.0


def test_lift_loss_passes_the_bound_and_bad_bounds_are_one_line_errors():
    gt = _poses(11, (1, 4, 17, 3))
    pred = 0.1 * gt
    ones, has_3d = torch.ones(1, 4, 17), torch.ones(1)
    _, free = lift_loss(pred, gt, ones, has_3d, LiftLossWeights())
    _, bounded = lift_loss(pred, gt, ones, has_3d, LiftLossWeights(n_mpjpe_max_scale=2.0))
    assert float(free["n_mpjpe"]) == pytest.approx(0.0, abs=1e-5)
    assert float(bounded["n_mpjpe"]) == pytest.approx(float(loss_mpjpe(0.2 * gt, gt)), rel=1e-5)
    for bad in (0.5, 1.0, -2.0, float("nan")):
        with pytest.raises(ValueError, match="max_scale"):
            loss_n_mpjpe(pred, gt, bad)
    for bad in (0.5, 1.0, -2.0, float("nan")):
        with pytest.raises(MocliError, match="loss.n_mpjpe_max_scale"):
            check_common(RunConfig(loss=LossConfig(n_mpjpe_max_scale=bad)), 1)
    check_common(RunConfig(loss=LossConfig(n_mpjpe_max_scale=2.0)), 1)
