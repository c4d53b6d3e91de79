"""The mpm2d3d pretext (MPM): masks, schedule, the three losses, no leakage of masked joints, overfitting, the CLI run,
exact resume and pose completion, on CPU with dstformer-tiny."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mocli.config import Mpm2d3dConfig, RunConfig
from mocli.data.sources import sources_from_arrays
from mocli.errors import InputError, MocliError
from mocli.models.mpm2d3d import MPM_TASKS, encode_tokens, new_mpm_model
from mocli.models.registry import create_model
from mocli.pretexts.mpm2d3d import (
    Mpm2d3dTask,
    build_data,
    check_config,
    mask_counts,
    masked_mpjpe,
    mpm_losses,
    sample_mpm_mask,
    task_for_step,
)
from mocli.train import Trainer, resume_config, run_pretrain
from tests.smoke.test_train import synthetic_motion


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run several times faster on one thread, above all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(tmp_path: Path, clip_len: int = 8) -> RunConfig:
    cfg = RunConfig(pretext="mpm2d3d", model="dstformer-tiny", out_dir=str(tmp_path / "runs"), seed=3)
    cfg.data.clip_len, cfg.data.stride, cfg.data.flip_prob = clip_len, clip_len, 0.0
    cfg.train.batch_size, cfg.train.epochs, cfg.train.lr, cfg.train.log_every, cfg.train.save_every = 2, 1, 1e-3, 1, 0
    return cfg


# ----------------------------------------------------------------------------------------------------------------------
# Masks and schedule
# ----------------------------------------------------------------------------------------------------------------------


def test_mask_has_exact_counts_and_is_deterministic_per_seed():
    cfg = Mpm2d3dConfig()  # 5/16 of the joints in 60 % of the frames
    assert mask_counts(16, 17, cfg) == (0, 10, 5)  # round(9.6) frames, round(5.3125) joints
    assert mask_counts(243, 17, cfg) == (0, 146, 5)
    mask = sample_mpm_mask(np.random.default_rng([1, 2]), 16, 17, cfg)
    per_frame = mask.sum(axis=1)
    assert sorted(per_frame.tolist()) == [0] * 6 + [5] * 10 and mask.sum() == 50
    np.testing.assert_array_equal(mask, sample_mpm_mask(np.random.default_rng([1, 2]), 16, 17, cfg))
    assert not np.array_equal(mask, sample_mpm_mask(np.random.default_rng([1, 3]), 16, 17, cfg))

    gaps = Mpm2d3dConfig(drop_frame_ratio=0.25)  # 4 whole frames, then 10 of the other 12 with 5 joints
    mask = sample_mpm_mask(np.random.default_rng(0), 16, 17, gaps)
    assert sorted(mask.sum(axis=1).tolist()) == [0] * 2 + [5] * 10 + [17] * 4


def test_dataset_masks_are_keyed_by_seed_epoch_clip_and_targets_are_consistent():
    cfg = _config(Path("."))
    cfg.data.noise = False
    train, val = build_data(cfg, sources_from_arrays([synthetic_motion(40, 1)]) + sources_from_arrays(
        [synthetic_motion(24, 2)], split="val"))  # fmt: skip
    a, b, c = train[(0, 1)], train[(0, 1)], train[(1, 1)]
    assert torch.equal(a["mask"], b["mask"]) and not torch.equal(a["mask"], c["mask"])
    assert a["mask"].dtype == torch.bool and int(a["mask"].sum()) == 5 * 5  # round(0.6 * 8) frames x 5 joints
    torch.testing.assert_close(a["target_2d"], a["input"][..., :2])  # no noise: the input is the clean 2D
    torch.testing.assert_close(a["target"][..., 0, :], torch.zeros(8, 3))  # root-relative 3D target
    assert val is not None and torch.equal(val[0]["mask"], val[(0, 0)]["mask"])


def test_task_schedule_is_a_function_of_seed_and_step():
    cfg = Mpm2d3dConfig()
    assert [task_for_step(cfg, 0, s) for s in range(5)] == ["2d", "3d", "lift", "2d", "3d"]
    assert [task_for_step(Mpm2d3dConfig(tasks="lift,2d"), 9, s) for s in range(3)] == ["lift", "2d", "lift"]
    rnd = Mpm2d3dConfig(schedule="random")
    draws = [task_for_step(rnd, 4, s) for s in range(30)]
    assert draws == [task_for_step(rnd, 4, s) for s in range(30)] and set(draws) == set(MPM_TASKS)
    assert draws != [task_for_step(rnd, 5, s) for s in range(30)]
    with pytest.raises(MocliError, match="distinct names"):
        task_for_step(Mpm2d3dConfig(tasks="2d,2d"), 0, 0)


def test_epoch_order_keys_carry_the_global_step():
    cfg = _config(Path("."))
    cfg.train.batch_size = 3
    train, _ = build_data(cfg, sources_from_arrays([synthetic_motion(40, 1)]))  # 5 clips: 2 steps per epoch
    n = len(train)
    keys = train.epoch_order(cfg.seed, 2, 3)
    assert len(keys) == 6 and (keys // n).tolist() == [4, 4, 4, 5, 5, 5]
    assert sorted(set((keys % n).tolist())) == list(range(n))
    sample = train[(2, int(keys[3]))]
    assert MPM_TASKS[int(sample["task"])] == task_for_step(cfg.mpm2d3d, cfg.seed, 5) == "lift"


# ----------------------------------------------------------------------------------------------------------------------
# Losses (hand-computed)
# ----------------------------------------------------------------------------------------------------------------------


def _loss_batch() -> dict[str, torch.Tensor]:
    """B=2 clips of T=1 frame and J=3 joints; clip 0 has joints 0, 1 masked, clip 1 joint 2 (2D weight 0.5)."""
    return {
        "mask": torch.tensor([[[True, True, False]], [[False, False, True]]]),
        "weight_2d": torch.tensor([[[1.0, 1.0, 1.0]], [[1.0, 1.0, 0.5]]]),
        "has_3d": torch.tensor([1.0, 0.0]),
        "target_2d": torch.zeros(2, 1, 3, 2),
        "target": torch.zeros(2, 1, 3, 3),
    }


def test_the_three_losses_on_a_hand_made_example():
    batch = _loss_batch()
    pred2d = torch.tensor([[3.0, 4.0], [0.0, 1.0], [6.0, 8.0]]).expand(2, 1, 3, 2)  # errors 5, 1, 10
    pred3d = torch.tensor([[1.0, 2.0, 2.0], [0.0, 0.0, 2.0], [2.0, 3.0, 6.0]]).expand(2, 1, 3, 3)  # errors 3, 2, 7
    # 2D: masked joints of both clips, weighted: (5 + 1 + 0.5 * 10) / (1 + 1 + 0.5)
    assert float(mpm_losses("2d", pred2d, batch)) == pytest.approx(11 / 2.5)
    # 3D: masked joints of 3D clips only (clip 1 is 2D-only): (3 + 2) / 2
    assert float(mpm_losses("3d", pred3d, batch)) == pytest.approx(2.5)
    # lift: every joint of 3D clips: (3 + 2 + 7) / 3
    assert float(mpm_losses("lift", pred3d, batch)) == pytest.approx(4.0)
    empty = masked_mpjpe(pred3d.clone().requires_grad_(), batch["target"], torch.zeros(2, 1, 3))
    assert float(empty.detach()) == 0.0 and empty.requires_grad


# ----------------------------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def tiny_mpm():
    torch.manual_seed(0)
    return new_mpm_model(create_model("dstformer-tiny"), clip_len=8).eval()


def test_unmasked_lifting_is_the_plain_dstformer(tiny_mpm):
    x = torch.randn(2, 8, 17, 3, generator=torch.Generator().manual_seed(1))
    enc = tiny_mpm.encoder
    torch.testing.assert_close(encode_tokens(enc, enc.embed(x)), enc.forward_features(x), rtol=0, atol=0)
    torch.testing.assert_close(tiny_mpm(x), enc(x), rtol=0, atol=0)
    torch.testing.assert_close(tiny_mpm(x, torch.zeros(2, 8, 17, dtype=torch.bool)), enc(x), rtol=0, atol=0)


def test_masked_joints_do_not_leak_into_the_output(tiny_mpm):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 8, 17, 3, generator=g)
    mask = torch.rand(2, 8, 17, generator=g) < 0.4
    changed = torch.where(mask[..., None], torch.randn(2, 8, 17, 3, generator=g) * 100, x)
    changed[0][mask[0]] = float("nan")
    for task in MPM_TASKS:
        torch.testing.assert_close(tiny_mpm(changed, mask, task), tiny_mpm(x, mask, task), rtol=0, atol=0)
    visible = x.clone()
    visible[~mask] += 1.0  # the check can fail: visible joints do change the output
    assert not torch.allclose(tiny_mpm(visible, mask, "3d"), tiny_mpm(x, mask, "3d"))


def test_tiny_model_overfits_one_clip(tmp_path):
    """The three tasks in turn on one 8-frame clip: a round's summed loss falls 5x (about 100 steps, 35 per task)."""
    cfg = _config(tmp_path)
    cfg.data.noise = False
    cfg.train.lr, cfg.train.weight_decay = 2e-3, 0.0
    train, _ = build_data(cfg, sources_from_arrays([synthetic_motion(24, 4)]))
    batch = torch.utils.data.default_collate([train[(0, 0)]])
    torch.manual_seed(0)
    model = new_mpm_model(create_model("dstformer-tiny"), clip_len=8)
    trainer = Trainer(model, Mpm2d3dTask(), cfg, torch.device("cpu"))
    losses: list[float] = []
    while len(losses) < 150 and (len(losses) < 6 or sum(losses[-3:]) > sum(losses[:3]) / 5):
        batch["task"] = torch.tensor([len(losses) % 3])
        losses.append(float(trainer.step(batch)["loss"]))
    first, last = sum(losses[:3]), sum(losses[-3:])  # one round of the three tasks
    assert last < first / 5, f"2d+3d+lift loss went from {first:.3f} to {last:.3f} in {len(losses)} steps"


# ----------------------------------------------------------------------------------------------------------------------
# Runs: the CLI, exact resume
# ----------------------------------------------------------------------------------------------------------------------


def _rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "samples_per_s"} for r in rows if r["kind"] == "train"]


def test_cli_pretrain_mpm2d3d_writes_a_loadable_run_with_the_mpm_heads(tmp_path, tiny_h5):
    from mocli.cli.main import app

    args = ["pretrain", "--pretext", "mpm2d3d", "--data", str(tiny_h5), "--model", "dstformer-tiny", "--max-steps"]
    args += ["3", "--clip-len", "16", "--stride", "8", "--batch", "2", "--epochs", "1", "--out-dir", str(tmp_path)]
    result = CliRunner().invoke(app, [*args, "--name", "m", "--set", "train.log_every=1"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "m"
    rows = _rows(run)
    assert [[t for t in MPM_TASKS if r[f"loss_{t}"] > 0] for r in rows] == [["2d"], ["3d"], ["lift"]]
    import mocli
    from mocli.completion import load_mpm_model
    from mocli.models.checkpoint import load_checkpoint

    assert mocli.load_model(run / "model.pt").cfg.dim_feat == 32
    heads = load_checkpoint(run / "model.pt")["heads"]
    assert heads["mpm2d3d"]["kind"] == "mpm2d3d" and heads["mpm2d3d"]["config"]["clip_len"] == 16
    assert {"decoder_2d.fc2.weight", "decoder_3d.fc2.weight", "embed_3d.fc1.weight", "mask_token_3d"} <= set(
        heads["mpm2d3d"]["state_dict"]
    )
    assert load_mpm_model(run / "model.pt").parts.decoder_3d.fc2.weight.shape == (3, 32)
    from mocli.completion import complete_pose

    partial = _camera_joints(20)  # two 16-frame windows of the trained model
    partial[4, 10] = partial[9] = np.nan
    done = complete_pose(run / "model.pt", joints3d=partial)
    np.testing.assert_array_equal(done.joints3d[~done.filled], partial[~done.filled])
    assert done.filled.sum() == 18 and np.isfinite(done.joints3d).all()
    bad = CliRunner().invoke(app, [*args, "--name", "bad", "--set", "mpm2d3d.tasks=2d,4d"])
    assert bad.exit_code == 1 and "mpm2d3d.tasks" in bad.output


def test_resumed_mpm2d3d_run_repeats_the_uninterrupted_one(tmp_path):
    sources = sources_from_arrays([synthetic_motion(32, 8)])  # 4 clips of 8 frames, batch 2: 2 steps per epoch
    cfg = _config(tmp_path)
    cfg.train.epochs = 2
    full = run_pretrain(cfg, run_dir=tmp_path / "full", sources=sources)
    assert full.finished and full.global_step == 4
    cfg = _config(tmp_path)
    cfg.train.epochs, cfg.max_steps = 2, 2
    run_pretrain(cfg, run_dir=tmp_path / "part", sources=sources)
    cfg2, ckpt, run_dir = resume_config(tmp_path / "part")
    cfg2.max_steps = 0
    assert run_pretrain(cfg2, resume=ckpt, run_dir=run_dir, sources=sources).finished
    assert _rows(tmp_path / "part") == _rows(tmp_path / "full")
    a = torch.load(tmp_path / "full" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "part" / "model.pt", weights_only=True)
    for k, v in a["heads"]["mpm2d3d"]["state_dict"].items():
        torch.testing.assert_close(b["heads"]["mpm2d3d"]["state_dict"][k], v, rtol=0, atol=0)


def test_check_config_rejects_bad_mpm_settings(tmp_path):
    cfg = _config(tmp_path)
    check_config(cfg)
    cfg.mpm2d3d.frame_ratio = 1.5
    with pytest.raises(MocliError, match="mpm2d3d.frame_ratio"):
        check_config(cfg)
    cfg.mpm2d3d.frame_ratio, cfg.mpm2d3d.schedule = 0.6, "cyclic"
    with pytest.raises(MocliError, match="mpm2d3d.schedule"):
        check_config(cfg)


# ----------------------------------------------------------------------------------------------------------------------
# Pose completion
# ----------------------------------------------------------------------------------------------------------------------


def _camera_joints(num_frames: int) -> np.ndarray:
    """(T, 17, 3) metres in camera axes (y down, 4 m in front of the camera)."""
    world = synthetic_motion(num_frames, 11).astype(np.float64)
    return np.stack([world[..., 0] - 0.4, 1.0 - world[..., 1], 4.0 + world[..., 2]], axis=-1).astype(np.float32)


def test_complete_pose_from_partial_3d_keeps_visible_joints_and_fills_the_rest(tiny_mpm):
    from mocli.completion import complete_pose

    joints = _camera_joints(20)  # longer than the model's 8-frame clip: three windows
    mask = np.zeros((20, 17), dtype=bool)
    mask[3, [2, 5, 16]] = True
    mask[7, 0] = True  # a missing root
    mask[12] = True  # a whole missing frame
    partial = joints.copy()
    partial[mask] = np.nan
    done = complete_pose(tiny_mpm, joints3d=partial, mask=mask)
    assert done.joints3d.shape == (20, 17, 3) and done.keypoints2d is None
    np.testing.assert_array_equal(done.joints3d[~mask], partial[~mask])  # visible: bit-for-bit
    assert np.isfinite(done.joints3d).all() and np.array_equal(done.filled, mask)
    assert np.abs(done.joints3d[mask] - joints[mask]).max() < 3.0  # in the scene (untrained model: near the root)
    default = complete_pose(tiny_mpm, joints3d=partial)  # the mask defaults to the NaN entries
    np.testing.assert_array_equal(default.joints3d, done.joints3d)


def test_complete_pose_from_partial_2d(tiny_mpm):
    from mocli.completion import complete_pose

    kp = np.zeros((8, 17, 3), dtype=np.float32)
    kp[..., :2] = _camera_joints(8)[..., :2] * 200 + 500  # pixels
    kp[..., 2] = 0.9
    kp[2, [4, 9], 2] = 0.0  # missing by confidence
    kp[5, 1, :2] = np.nan  # missing by NaN
    done = complete_pose(tiny_mpm, keypoints2d=kp)
    filled = np.zeros((8, 17), dtype=bool)
    filled[2, [4, 9]] = filled[5, 1] = True
    assert np.array_equal(done.filled, filled) and done.joints3d.shape == (8, 17, 3)
    np.testing.assert_array_equal(done.keypoints2d[~filled], kp[~filled])
    np.testing.assert_array_equal(done.keypoints2d[..., 2], kp[..., 2])
    assert np.isfinite(done.keypoints2d[..., :2]).all() and np.isfinite(done.joints3d).all()
    np.testing.assert_allclose(done.joints3d[:, 0], 0.0, atol=1e-6)  # root-relative
    with pytest.raises(InputError, match="exactly one"):
        complete_pose(tiny_mpm)
    with pytest.raises(InputError, match="not masked"):
        complete_pose(tiny_mpm, keypoints2d=kp, mask=np.zeros((8, 17), dtype=bool))
