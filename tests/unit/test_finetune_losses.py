"""Finetune losses and rules with known answers: supervised contrastive loss, nearest exemplar, mesh loss, and the
sampling helpers behind them (class-balanced batches, time resampling, the one-shot split)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mocli.config import MeshLossConfig
from mocli.data.finetune_data import (
    LabelledSequence,
    class_balanced_order,
    normalise_persons,
    oneshot_split,
    resample_indices,
    select_persons,
)
from mocli.finetune import nearest_exemplar
from mocli.losses import mesh_loss, supcon_loss
from mocli.models.rotations import axis_angle_to_matrix


def unit2d(degrees: list[float]) -> torch.Tensor:
    rad = torch.tensor(degrees, dtype=torch.float64) * math.pi / 180
    return torch.stack([torch.cos(rad), torch.sin(rad)], dim=-1)


def test_supcon_of_two_tight_pairs():
    emb = unit2d([0, 0, 90, 90])  # two classes, each pair identical, classes orthogonal
    loss = supcon_loss(emb, torch.tensor([0, 0, 1, 1]), temperature=0.1)
    # every anchor: log(e^10 / (e^10 + 2 e^0)) = -log(1 + 2 e^-10)
    assert float(loss) == pytest.approx(math.log(1 + 2 * math.exp(-10)), rel=1e-12)


def test_supcon_of_a_hand_made_example():
    degrees, labels, t = [0.0, 60.0, 180.0, 90.0], [0, 0, 1, 1], 0.5
    emb = unit2d(degrees)

    def sim(i: int, j: int) -> float:
        return math.cos(math.radians(degrees[i] - degrees[j])) / t

    expected = 0.0
    for i in range(4):  # the definition, anchor by anchor: one positive each here
        p = next(j for j in range(4) if j != i and labels[j] == labels[i])
        expected -= sim(i, p) - math.log(sum(math.exp(sim(i, a)) for a in range(4) if a != i))
    expected /= 4
    assert float(supcon_loss(emb, torch.tensor(labels), t)) == pytest.approx(expected, rel=1e-12)
    # anchors without a positive (labels 1 and 2 below) are left out of the mean
    only_pair = supcon_loss(emb, torch.tensor([0, 0, 1, 2]), t)
    first_two = [-(sim(i, 1 - i) - math.log(sum(math.exp(sim(i, a)) for a in range(4) if a != i))) for i in (0, 1)]
    assert float(only_pair) == pytest.approx(sum(first_two) / 2, rel=1e-12)


def test_nearest_exemplar_uses_cosine_similarity():
    exemplars = unit2d([0, 120, 240])
    labels = torch.tensor([3, 7, 9])
    queries = torch.cat([unit2d([10, 130, 250, -100]) * torch.tensor([[0.1], [5.0], [20.0], [1.0]]), torch.zeros(0, 2)])
    assert nearest_exemplar(queries, exemplars, labels).tolist() == [3, 7, 9, 9]


def test_mesh_loss_terms_have_known_values():
    B, T = 1, 2
    gt_joints = torch.randn(B, T, 17, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 100
    pred_joints = gt_joints + 50.0  # a whole-body shift: no root-relative error
    pred_joints[..., 1:, :] += torch.tensor([3.0, 4.0, 0.0], dtype=torch.float64)  # 16 of 17 joints off by 5 mm
    gt_rot = torch.eye(3, dtype=torch.float64).expand(B, T, 24, 3, 3)
    pred_rot = gt_rot.clone()
    pred_rot[:, :, 0] = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    gt_betas = torch.zeros(B, T, 10, dtype=torch.float64)
    pred_betas = gt_betas + 0.5
    weights = MeshLossConfig()
    total, terms = mesh_loss(pred_joints, gt_joints, pred_rot, gt_rot, pred_betas, gt_betas, weights)
    expected = {
        "mpjpe": 5.0 * 16 / 17,
        "velocity": 0.0,
        "pose": 4.0 / (24 * 9),  # |cos - 1| * 2 + |sin| * 2 in one of 24 matrices
        "shape": 0.5,
        "norm": math.sqrt((math.pi / 2) ** 2 + 10 * 0.25),  # |(axis-angle of 24 joints, betas)| per frame
    }
    for k, v in expected.items():
        assert float(terms[k]) == pytest.approx(v, abs=1e-5), k  # losses run in float32
    want = 0.5 * expected["mpjpe"] + 1000 * expected["pose"] + expected["shape"] + 20 * expected["norm"]
    assert float(total) == pytest.approx(want, rel=1e-6)
    zero, _ = mesh_loss(gt_joints, gt_joints, gt_rot, gt_rot, gt_betas, gt_betas, weights)
    assert float(zero) == pytest.approx(0.0, abs=1e-5)


def test_class_balanced_batches_hold_pairs_of_distinct_classes():
    labels = np.repeat(np.arange(10), [5, 3, 2, 7, 4, 2, 2, 6, 3, 2])  # 36 samples
    order = class_balanced_order(labels, seed=0, epoch=0, global_batch=8)
    assert len(order) == 5 * 8  # ceil(36 / 8) batches
    for batch in order.reshape(5, 8):
        pairs = labels[batch].reshape(4, 2)
        assert (pairs[:, 0] == pairs[:, 1]).all() and len(set(pairs[:, 0])) == 4
        assert len(set(batch.tolist())) == 8  # two different samples of each class
    assert np.array_equal(order, class_balanced_order(labels, 0, 0, 8))
    assert not np.array_equal(order, class_balanced_order(labels, 0, 1, 8))


def test_resample_indices_and_persons():
    assert resample_indices(10, 5).tolist() == [1, 3, 5, 7, 9]
    assert resample_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]
    rng = np.random.default_rng(0)
    idx = resample_indices(100, 10, rng)
    assert all(10 * k <= i < 10 * (k + 1) for k, i in enumerate(idx))
    kp = np.zeros((3, 4, 17, 3))
    kp[0, ..., 2], kp[1, ..., 2], kp[2, ..., 2] = 0.2, 0.9, 0.5
    kp[..., 0] = np.arange(3)[:, None, None]
    assert select_persons(kp, 2)[:, 0, 0, 0].tolist() == [1.0, 2.0]  # the two most confident, in order
    padded = select_persons(kp[:1], 2)
    assert padded.shape == (2, 4, 17, 3) and not padded[1].any()
    norm = normalise_persons(padded * 0 + np.array([100.0, 50.0, 1.0]) + np.arange(17)[:, None] * [2, 1, 0])
    assert np.allclose(norm[0, :, [0, -1], 0], [[-1, -1, -1, -1], [1, 1, 1, 1]])  # the box spans the joints


def test_oneshot_split_holds_out_novel_classes_with_one_exemplar_each():
    items = [LabelledSequence("f.h5", f"s{k:02d}", 50, "train", label) for k, label in enumerate([0, 1, 6, 6, 6, 2, 0])]
    split = oneshot_split(items, novel_classes=[0, 6], exemplar_names=["s04"])
    assert [it.name for it in split.train] == ["s01", "s05"]
    assert [(it.label, it.name) for it in split.exemplars] == [(0, "s00"), (6, "s04")]
    assert sorted(it.name for it in split.queries) == ["s02", "s03", "s06"]
