"""The mpm pretext (P-STMO masked pose modelling) and the STMO many-to-one lifter: masks, loss, the MAE encoder,
overfitting, the CLI run, STMO checkpoints and STMO lifting."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import mocli
from mocli.config import MpmConfig, RunConfig
from mocli.data.sources import sources_from_arrays
from mocli.errors import CheckpointError, MocliError
from mocli.losses import LiftLossWeights
from mocli.models.checkpoint import build_checkpoint, load_checkpoint, model_from_checkpoint, save_checkpoint
from mocli.models.registry import create_model
from mocli.pretexts.mpm import (
    MaskedPoseDataset,
    MaskedPoseTask,
    build_model,
    mask_counts,
    reconstruction_error,
    sample_frame_joint_mask,
)
from mocli.train import StmoLiftTask, Trainer, run_pretrain
from tests.smoke.test_train import synthetic_motion


def _masks(batch: int, T: int, mpm: MpmConfig, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(visible (B,Tv), masked (B,Tm), joint_mask (B,T,17)) tensors of ``batch`` clips."""
    args = (T, 17, mpm.frame_ratio, mpm.joints_per_frame)
    out = [sample_frame_joint_mask(np.random.default_rng([seed, b]), *args) for b in range(batch)]
    return tuple(torch.from_numpy(np.stack(parts)) for parts in zip(*out, strict=True))


# ----------------------------------------------------------------------------------------------------------------------
# Masks and loss
# ----------------------------------------------------------------------------------------------------------------------


def test_mask_has_exact_counts_sorted_indices_and_is_deterministic_per_seed():
    visible, masked, joints = sample_frame_joint_mask(np.random.default_rng(3), 10, 17, 0.8, 3)
    assert len(masked) == 8 and len(visible) == 2  # round(0.8 * 10) frames masked whole
    assert list(visible) == sorted(visible) and list(masked) == sorted(masked)
    assert sorted([*visible, *masked]) == list(range(10))
    assert joints.shape == (10, 17) and joints.dtype == bool
    assert list(joints[visible].sum(axis=1)) == [3, 3] and joints[masked].sum() == 0  # 3 joints per visible frame
    again = sample_frame_joint_mask(np.random.default_rng(3), 10, 17, 0.8, 3)
    for a, b in zip((visible, masked, joints), again, strict=True):
        np.testing.assert_array_equal(a, b)
    other = sample_frame_joint_mask(np.random.default_rng(4), 10, 17, 0.8, 3)
    assert not all(np.array_equal(a, b) for a, b in zip((visible, masked, joints), other, strict=True))
    assert mask_counts(243, 0.9) == (24, 219) and mask_counts(27, 0.9) == (3, 24) and mask_counts(10, 0.99) == (1, 9)


def test_reconstruction_loss_and_metrics_on_a_hand_made_example():
    target = torch.zeros(1, 2, 2, 3)  # B=1, T=2 frames, J=2 joints, x, y + confidence
    pred = torch.tensor([[[[3.0, 4.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 2.0]]]])  # errors 5, 0 | 1, 2
    ones = torch.ones(1, 2, 2)
    assert float(reconstruction_error(pred, target, ones)) == pytest.approx(2.0)  # (5 + 0 + 1 + 2) / 4
    conf = torch.tensor([[[1.0, 0.0], [0.5, 1.0]]])
    assert float(reconstruction_error(pred, target, conf)) == pytest.approx(3.0)  # (5 + 0.5 + 2) / 2.5
    batch = {
        "input": target, "weight_2d": ones, "visible": torch.tensor([[0]]), "masked": torch.tensor([[1]]),
        "joint_mask": torch.zeros(1, 2, 2, dtype=torch.bool),
    }  # fmt: skip

    def module(x, visible, joint_mask):
        return pred

    loss, terms = MaskedPoseTask(loss_frames="all").loss(module, batch)
    assert float(loss) == pytest.approx(2.0) and float(terms["masked_2d"]) == pytest.approx(1.5)  # frame 1: (1+2)/2
    loss, _ = MaskedPoseTask(loss_frames="masked").loss(module, batch)
    assert float(loss) == pytest.approx(1.5)
    task = MaskedPoseTask()
    summary = task.summarise({k: float(v) for k, v in task.eval_sums(module, batch).items()})
    assert summary == pytest.approx({"loss": 2.0, "all_2d": 2.0, "masked_2d": 1.5})


# ----------------------------------------------------------------------------------------------------------------------
# The MAE encoder
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["stmo-tiny", "dstformer-tiny"])
def test_the_encoder_never_sees_masked_frames_or_masked_joints(arch):
    torch.manual_seed(0)
    mpm = MpmConfig(frame_ratio=0.8, joints_per_frame=3, decoder_dim=32, decoder_heads=4, decoder_depth=1)
    model = build_model(create_model(arch), mpm).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 27, 17, 3, generator=g)
    visible, masked, joint_mask = _masks(2, 27, mpm)
    seen = []
    original = model.backbone.forward_features

    def spy(inp, frames=None):
        seen.append((tuple(inp.shape), frames.clone()))
        return original(inp, frames=frames)

    model.backbone.forward_features = spy
    with torch.no_grad():
        out = model(x, visible, joint_mask)
        changed = x.clone()
        for b in range(2):
            changed[b, masked[b]] = torch.randn(masked.shape[1], 17, 3, generator=g) * 5  # whole masked frames
        changed[joint_mask] = torch.randn(int(joint_mask.sum()), 3, generator=g) * 5  # masked joints of visible frames
        out_changed = model(changed, visible, joint_mask)
        visible_changed = changed.clone()
        visible_changed[0, visible[0, 0], (~joint_mask[0, visible[0, 0]]).nonzero()[0, 0]] += 1.0
        out_visible = model(visible_changed, visible, joint_mask)
    assert out.shape == (2, 27, 17, 2)
    assert seen[0][0][:2] == (2, 5) and torch.equal(seen[0][1], visible)  # only the 5 visible frames, their positions
    torch.testing.assert_close(out_changed, out, rtol=0, atol=0)
    assert not torch.allclose(out_visible, out)  # a visible, unmasked joint does reach the output


def test_a_tiny_model_overfits_one_batch():
    mpm = MpmConfig(frame_ratio=0.8, joints_per_frame=2, decoder_dim=32, decoder_heads=4, decoder_depth=1)
    cfg = RunConfig(pretext="mpm", model="stmo-tiny", mpm=mpm)
    cfg.data.clip_len, cfg.data.stride, cfg.data.flip_prob = 27, 100, 0.0
    cfg.train.lr, cfg.train.weight_decay = 3e-3, 0.0
    data = MaskedPoseDataset(sources_from_arrays([synthetic_motion(60, 0)]), cfg.data, mpm, seed=0)
    batch = torch.utils.data.default_collate([data[(0, 0)], data[(0, 1)]])
    assert batch["visible"].shape == (2, 5) and batch["input"].shape == (2, 27, 17, 3)
    torch.manual_seed(0)
    trainer = Trainer(build_model(create_model("stmo-tiny"), mpm), MaskedPoseTask(), cfg, torch.device("cpu"))
    losses = [float(trainer.step(batch)["loss"]) for _ in range(3)]
    while len(losses) < 400 and np.mean(losses[-5:]) > losses[0] / 6:
        losses.append(float(trainer.step(batch)["loss"]))
    assert np.mean(losses[-5:]) < losses[0] / 5, f"loss went from {losses[0]:.3f} to {np.mean(losses[-5:]):.3f}"


# ----------------------------------------------------------------------------------------------------------------------
# CLI run, checkpoints
# ----------------------------------------------------------------------------------------------------------------------


def _cli(args: list[str]):
    from mocli.cli.main import app

    return CliRunner().invoke(app, args)


def test_cli_mpm_run_writes_a_loadable_stmo_then_lifts_from_it(tmp_path, tiny_h5):
    common = ["--data", str(tiny_h5), "--clip-len", "27", "--stride", "9", "--batch", "2", "--epochs", "1"]
    common += ["--out-dir", str(tmp_path / "runs")]
    args = ["pretrain", "--pretext", "mpm", "--model", "stmo-tiny", *common, "--max-steps", "2", "--name", "m"]
    result = _cli([*args, "--set", "mpm.decoder_dim=32", "--set", "mpm.decoder_heads=4", "--set", "train.log_every=1"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "m"
    config = json.loads((run / "config.json").read_text())
    assert config["pretext"] == "mpm" and config["mpm"]["frame_ratio"] == 0.9 and config["mpm"]["decoder_dim"] == 32
    model = mocli.load_model(run / "model.pt")
    assert type(model).__name__ == "STMO" and model.checkpoint_info["heads"] == ["mpm"]
    assert model(torch.zeros(1, 27, 17, 3)).shape == (1, 1, 17, 3)
    ckpt = load_checkpoint(run / "model.pt")
    assert ckpt["arch"]["kind"] == "stmo" and ckpt["heads"]["mpm"]["kind"] == "mpm-decoder"
    again = _cli(["pretrain", "--resume", str(run), "--max-steps", "3"])  # the decoder comes back from last.pt
    assert again.exit_code == 0, again.output
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2, 3] and "val_masked_2d" in rows[-1]
    # lifting from the pretrained encoder: --pretext lift --init the mpm run trains the many-to-one STMO
    lift = _cli(["pretrain", "--init", str(run), *common, "--max-steps", "1", "--name", "l"])
    assert lift.exit_code == 0, lift.output
    lifted = load_checkpoint(tmp_path / "runs" / "l" / "model.pt")
    assert lifted["arch"]["name"] == "stmo-tiny" and lifted["meta"]["task"] == "pretrain-lift"
    bad = _cli(["pretrain", "--pretext", "mpm", "--model", "stmo-tiny", *common[:2], "--clip-len", "26"])
    assert bad.exit_code == 1 and "exactly 27 frames" in bad.output and "Traceback" not in bad.output


def test_stmo_checkpoint_round_trip_gives_the_same_outputs(tmp_path):
    torch.manual_seed(0)
    model = create_model("stmo-tiny").eval()
    save_checkpoint(build_checkpoint(model, "stmo-tiny"), tmp_path / "s.pt")
    loaded = mocli.load_model(tmp_path / "s.pt")
    x = torch.randn(2, 27, 17, 3, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        (c1, f1), (c2, f2) = model(x, aux=True), loaded(x, aux=True)
    assert c1.shape == (2, 1, 17, 3) and f1.shape == (2, 27, 17, 3)
    assert torch.equal(c1, c2) and torch.equal(f1, f2) and torch.equal(loaded(x), c2)
    assert loaded.checkpoint_info["arch"]["kind"] == "stmo"
    old = build_checkpoint(create_model("dstformer-tiny"), "dstformer-tiny")
    del old["arch"]["kind"]  # checkpoints written before STMO existed
    assert type(model_from_checkpoint(old)).__name__ == "DSTformer"
    old["arch"]["kind"] = "transformer-9000"
    with pytest.raises(CheckpointError, match="kind 'transformer-9000' is unknown"):
        model_from_checkpoint(old)
    assert sum(p.numel() for p in create_model("stmo").parameters()) == 6_572_646  # P-STMO reports 6.7M


# ----------------------------------------------------------------------------------------------------------------------
# STMO lifting
# ----------------------------------------------------------------------------------------------------------------------


def test_stmo_lift_loss_is_centre_mpjpe_plus_all_frames_mpjpe():
    target = torch.zeros(1, 3, 2, 3)  # T=3 frames (centre 1), J=2
    centre = torch.tensor([[[[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]]])  # MPJPE 2.5
    frames = torch.zeros(1, 3, 2, 3)
    frames[..., 2] = 1.0  # MPJPE 1
    target[:, [0, 2]] = 7.0  # only the centre frame counts for the centre prediction

    def module(x, aux=False):
        return (centre, frames + target) if aux else centre

    batch = {"input": torch.zeros(1, 3, 2, 3), "target": target, "weight_2d": torch.ones(1, 3, 2)}
    batch.update(has_3d=torch.ones(1), factor=torch.full((1, 3), 0.002))
    loss, terms = StmoLiftTask(LiftLossWeights()).loss(module, batch)
    assert float(loss) == pytest.approx(3.5) and float(terms["mpjpe"]) == pytest.approx(2.5)
    assert float(terms["mpjpe_frames"]) == pytest.approx(1.0)
    sums = StmoLiftTask().eval_sums(module, batch)  # centre frame only; root (joint 0) relative, 2 mm per unit
    assert float(sums["mpjpe_mm"] / sums["joints_3d"]) == pytest.approx(5.0)  # joint 1 is 5 units from the root


def test_stmo_lift_pretrain_in_python(tmp_path):
    cfg = RunConfig(model="stmo-tiny", out_dir=str(tmp_path), seed=1)
    cfg.data.clip_len, cfg.data.stride = 27, 9
    cfg.train.batch_size, cfg.train.epochs, cfg.train.lr = 2, 1, 1e-3
    sources = sources_from_arrays([synthetic_motion(45, 3)])
    sources += sources_from_arrays([synthetic_motion(30, 4)], split="val")
    result = run_pretrain(cfg, run_dir=tmp_path / "r", sources=sources)
    assert result.best["metric"] == "val_mpjpe_mm" and np.isfinite(result.best["value"])
    cfg.data.clip_len = 9
    with pytest.raises(MocliError, match="exactly 27 frames"):
        run_pretrain(cfg, run_dir=tmp_path / "r2", sources=sources)
