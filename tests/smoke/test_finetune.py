"""`mocli finetune TASK` end to end on CPU with dstformer-tiny and tiny HDF5 fixtures: two steps of each task,
--freeze-backbone, --init from a pretrain checkpoint, resume, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from mocli.data import h5
from mocli.models.checkpoint import build_checkpoint, save_checkpoint
from mocli.models.registry import create_model
from tests.smoke.test_train import synthetic_motion

TINY = ["--model", "dstformer-tiny", "--batch", "2", "--epochs", "1", "--max-steps", "2"]
QUICK = ["--set", "train.log_every=1", "--set", "data.val_max_clips=2"]


def _cli_app() -> typer.Typer:
    from mocli.cli.main import app

    return app


def run_cli(*args: str) -> str:
    result = CliRunner().invoke(_cli_app(), ["finetune", *args])
    assert result.exit_code == 0, result.output
    return result.output


def keypoints_of(joints: np.ndarray) -> np.ndarray:
    """(T, 17, 3) world joints (m, y up) -> (T, 17, 3) pixels of a front camera + confidence 1."""
    xy = np.stack([500 + 300 * joints[..., 0] + 100 * joints[..., 2], 700 - 300 * joints[..., 1]], axis=-1)
    return np.concatenate([xy, np.ones(joints.shape[:-1] + (1,))], axis=-1).astype(np.float32)


def action_sequences(labels: list[int], split: str, seed: int) -> list[h5.Sequence]:
    """One or two persons per sequence, 20-40 frames, the class changing the motion's speed."""
    out = []
    for k, label in enumerate(labels):
        frames = 20 + 5 * (k % 4)
        people = [keypoints_of(synthetic_motion(frames, seed + k) * (1 + 0.2 * label))]
        if k % 2:
            people.append(keypoints_of(synthetic_motion(frames, seed + 100 + k)) + np.float32([200, 0, 0]))
        kp = np.stack(people)
        out.append(h5.Sequence(name=f"{split}{k:02d}", fps=30.0, keypoints2d=kp, label=label, split=split))
    return out


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("finetune")
    pose = root / "pose.h5"
    h5.write_dataset(
        pose,
        [
            h5.Sequence(name="walk_a", fps=30.0, joints3d=synthetic_motion(48, 1), split="train"),
            h5.Sequence(name="walk_b", fps=30.0, joints3d=synthetic_motion(32, 2), split="val"),
        ],
        kind="test",
    )
    action = root / "action.h5"
    h5.write_dataset(
        action, action_sequences([0, 1, 2, 1], "train", 10) + action_sequences([0, 1, 2], "val", 20), kind="t"
    )
    torch.manual_seed(5)
    pretrain = root / "pretrain"
    pretrain.mkdir()
    save_checkpoint(build_checkpoint(create_model("dstformer-tiny"), "dstformer-tiny"), pretrain / "model.pt")
    return {"root": root, "pose": pose, "action": action, "pretrain": pretrain}


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def test_pose3d_runs_two_steps(fixtures, tmp_path):
    args = ["pose3d", "--data", str(fixtures["pose"]), *TINY, "--clip-len", "16", "--stride", "8"]
    run_cli(*args, "--out-dir", str(tmp_path), *QUICK)
    run = tmp_path / "run"
    assert [r["step"] for r in _rows(run) if r["kind"] == "train"] == [1, 2]
    config = json.loads((run / "config.json").read_text())
    assert config["task"] == "pose3d" and config["data"]["noise"] is False and config["data"]["mask_frame_ratio"] == 0
    assert config["train"]["lr"] == 2e-4  # the task's preset
    import mocli

    model = mocli.load_model(run / "model.pt")  # a lifter
    assert model(torch.zeros(1, 16, 17, 3)).shape == (1, 16, 17, 3)
    assert model.checkpoint_info["meta"]["task"] == "finetune-pose3d"


def test_action_runs_two_steps_and_validates(fixtures, tmp_path):
    args = ["action", "--data", str(fixtures["action"]), *TINY, "--clip-len", "12", "--out-dir", str(tmp_path)]
    run_cli(*args, "--name", "a", *QUICK)  # 4 sequences, batch 2: one epoch of 2 steps, then validation
    run = tmp_path / "a"
    rows = _rows(run)
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2]
    val = [r for r in rows if r["kind"] == "val"]
    assert len(val) == 1
    _check_action_validation(run, val[0])
    ckpt = _load(run / "model.pt")
    head = ckpt["heads"]["action"]
    assert head["kind"] == "action" and head["config"]["num_classes"] == 3
    assert head["state_dict"]["fc2.weight"].shape == (3, 2048)
    assert set(ckpt["model"]) == set(create_model("dstformer-tiny").state_dict())
    best = _load(run / "best.pt")
    assert best["meta"]["metric"] == "val_top1_error"
    from mocli.models.checkpoint import model_from_checkpoint
    from mocli.models.heads import HeadModel, head_from_entry

    encoder = model_from_checkpoint(best)  # the head rebuilt from its checkpoint entry, as docs/finetune.md shows
    kind, config, head = head_from_entry(best["heads"]["action"], encoder.cfg.dim_rep, encoder.cfg.num_joints)
    assert HeadModel(encoder, head, "action", kind, config).eval()(torch.zeros(1, 2, 12, 17, 3)).shape == (1, 3)


def _check_action_validation(run: Path, row: dict) -> None:
    """The loop's validation row equals top-1 and cross-entropy computed here from model.pt (the model after the
    epoch's last step) on the same validation clips (data.val_max_clips=2 of 3: clips 0 and 2)."""
    from mocli.config import finetune_config_from_dict
    from mocli.models.checkpoint import model_from_checkpoint
    from mocli.models.heads import HeadModel, head_from_entry
    from mocli.training.task_data import build_finetune_data

    final = _load(run / "model.pt")
    val_set = build_finetune_data(finetune_config_from_dict(final["train_config"])).val
    assert len(val_set) == 3
    batch = torch.utils.data.default_collate([val_set[(0, c)] for c in (0, 2)])
    encoder = model_from_checkpoint(final)
    kind, config, head = head_from_entry(final["heads"]["action"], encoder.cfg.dim_rep, encoder.cfg.num_joints)
    with torch.no_grad():
        logits = HeadModel(encoder, head, "action", kind, config).eval()(batch["input"])
    correct = int((logits.argmax(dim=1) == batch["label"]).sum())
    assert row["val_top1"] == correct / 2 and row["val_top1_error"] == 1 - correct / 2
    ce = float(torch.nn.functional.cross_entropy(logits, batch["label"]))
    assert row["val_loss"] == pytest.approx(ce, rel=1e-5)


def test_freeze_backbone_from_a_pretrain_checkpoint_trains_only_the_head(fixtures, tmp_path):
    init = _load(fixtures["pretrain"] / "model.pt")["model"]
    args = ["action", "--data", str(fixtures["action"]), "--init", str(fixtures["pretrain"]), "--freeze-backbone"]
    args += ["--batch", "2", "--epochs", "1", "--clip-len", "12", "--out-dir", str(tmp_path), "--name", "f"]
    run_cli(*args, "--max-steps", "1", *QUICK)
    first = _load(tmp_path / "f" / "model.pt")
    run_cli("--resume", str(tmp_path / "f"), "--max-steps", "2")
    second = _load(tmp_path / "f" / "model.pt")
    assert [r["step"] for r in _rows(tmp_path / "f") if r["kind"] == "train"] == [1, 2]
    for k, v in init.items():  # the encoder is the pretrained one, bit for bit, after both steps
        assert torch.equal(first["model"][k], v) and torch.equal(second["model"][k], v), k
    h1, h2 = first["heads"]["action"]["state_dict"], second["heads"]["action"]["state_dict"]
    assert not torch.equal(h1["fc1.weight"], h2["fc1.weight"])  # the head moved
    assert first["train_config"]["freeze_backbone"] is True and first["train_config"]["model"] == "dstformer-tiny"
    config = json.loads((tmp_path / "f" / "config.json").read_text())
    head_size = sum(v.numel() for k, v in h1.items() if not k.endswith(("running_mean", "running_var", "tracked")))
    assert config["_resolved"]["trainable_parameters"] == head_size


def test_init_copies_the_encoder_and_a_fitting_motionbert_head(fixtures):
    from mocli.finetune import build_finetune_model, default_config, load_init
    from tests.unit.test_heads import motionbert_action_state

    ckpt = load_init(str(fixtures["pretrain"]))
    for task in ("pose3d", "action", "action-oneshot"):
        model = build_finetune_model(default_config(task), ckpt, num_classes=4)
        encoder = model if task == "pose3d" else model.encoder
        assert all(torch.equal(encoder.state_dict()[k], v) for k, v in ckpt["model"].items()), task
    state = motionbert_action_state(dim_rep=32, num_joints=17, hidden=64, classes=4)  # as `weights import` keeps it
    ckpt["heads"] = {"action": {"kind": "motionbert-action", "config": {}, "state_dict": state}}
    head = build_finetune_model(default_config("action"), ckpt, num_classes=4).head
    assert head.fc1.out_features == 64 and torch.equal(head.bn.running_var, state["bn.running_var"])
    fresh = build_finetune_model(default_config("action"), ckpt, num_classes=5).head  # other classes: a new head
    assert fresh.fc1.out_features == 2048


def test_oneshot_runs_two_steps_with_exemplars(fixtures, tmp_path):
    args = ["action-oneshot", "--data", str(fixtures["action"]), *TINY, "--clip-len", "12", "--out-dir", str(tmp_path)]
    run_cli(*args, "--batch", "4", "--set", "head.novel_classes=2", *QUICK)  # class 2: 1 exemplar, 1 query
    rows = _rows(tmp_path / "run")
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2] and rows[0]["supcon"] > 0
    val = [r for r in rows if r["kind"] == "val"]  # 5 training sequences, batch 4: one epoch of 2 steps
    assert len(val) == 1 and val[0]["val_oneshot_top1"] == 1.0  # one novel class: its exemplar is the nearest
    ckpt = _load(tmp_path / "run" / "model.pt")
    assert ckpt["heads"]["action-oneshot"]["state_dict"]["fc1.weight"].shape == (2048, 17 * 32)


def test_mesh_runs_two_steps_with_a_synthetic_smpl(fixtures, tmp_path):
    from tests.unit.test_heads import write_synthetic_smpl

    smpl = write_synthetic_smpl(tmp_path / "smpl")
    rng = np.random.default_rng(0)
    seqs = []
    for k, split in enumerate(["train", "train", "val"]):
        kp = keypoints_of(synthetic_motion(20, 30 + k))
        pose = (rng.normal(size=(20, 72)) * 0.2).astype(np.float32)
        betas = np.zeros(10, np.float32)
        seqs.append(h5.Sequence(f"m{k}", 30.0, keypoints2d=kp, smpl_pose=pose, smpl_shape=betas, split=split))
    h5.write_dataset(tmp_path / "mesh.h5", seqs, kind="t")
    args = ["mesh", "--data", str(tmp_path / "mesh.h5"), *TINY, "--clip-len", "8", "--out-dir", str(tmp_path)]
    run_cli(*args, "--smpl-dir", str(smpl), "--name", "m", *QUICK)
    rows = _rows(tmp_path / "m")
    train = [r for r in rows if r["kind"] == "train"]
    assert len(train) == 2 and all(r["pose"] > 0 and r["mpjpe"] > 0 for r in train)
    head = _load(tmp_path / "m" / "model.pt")["heads"]["mesh"]["state_dict"]
    assert {"head_pose.weight", "init_pose"} <= set(head) and not any(k.startswith("smpl.") for k in head)


@pytest.mark.parametrize(
    "problem", ["no_task", "no_smpl", "no_labels", "bad_init", "model_with_init", "pretext_section"]
)
def test_bad_input_is_one_line(fixtures, tmp_path, monkeypatch, problem):
    monkeypatch.delenv("MOCLI_SMPL_DIR", raising=False)
    args = {
        "no_task": ["--data", str(fixtures["action"])],
        "no_smpl": ["mesh", "--data", str(fixtures["action"]), *TINY],
        "no_labels": ["action", "--data", str(fixtures["pose"]), *TINY],
        "bad_init": ["action", "--data", str(fixtures["action"]), "--init", str(tmp_path / "nope.pt")],
        "model_with_init": ["pose3d", "--init", str(fixtures["pretrain"]), "--model", "dstformer"],
        "pretext_section": ["pose3d", "--data", str(fixtures["pose"]), *TINY, "--set", "text.temperature=0.2"],
    }[problem]
    result = CliRunner().invoke(_cli_app(), ["finetune", *args, "--out-dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "error:" in result.output
    assert len(result.output.split("error:", 1)[1].strip().splitlines()) == 1
    if problem == "pretext_section":  # accepted and ignored before: refused, naming the key and the sections
        assert "'text.temperature' does not apply" in result.output
        assert "data, head, loss, mesh_loss, train" in result.output
