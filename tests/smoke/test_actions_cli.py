"""Actions end to end with dstformer-tiny: `finetune action` on labelled 3D-only mocap (virtual cameras, class names
in the checkpoint), `infer --task action` (actions.json equal to the trainer's validation path + the model's own
forward on the same windows), `eval ntu` / `eval ntu120-oneshot` on PYSKL-layout fixtures, and one-line errors."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

import mocli
from mocli.config import DataConfig
from mocli.data import h5
from mocli.data.finetune_data import ActionClipDataset, LabelledSequence
from mocli.keypoints import KeypointSequence, save_keypoints_npz
from mocli.models.checkpoint import build_checkpoint, model_from_checkpoint, save_checkpoint
from mocli.models.heads import HeadModel, OneShotHead, head_from_entry
from tests.smoke.test_train import synthetic_motion

runner = CliRunner()
CLASSES = ["bow", "run", "walk"]  # string labels: ids by sorted name


def _app() -> typer.Typer:
    from mocli.cli.main import app

    return app


def _ok(*args: str) -> str:
    result = runner.invoke(_app(), list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _one_line_error(*args: str, match: str) -> None:
    result = runner.invoke(_app(), list(args))
    assert result.exit_code == 1, result.output
    assert match in result.output and "Traceback" not in result.output, result.output


@pytest.fixture(scope="module")
def action_run(tmp_path_factory) -> Path:
    """A tiny action checkpoint finetuned for 2 steps on 3D-only sequences with Bandai-style string labels."""
    root = tmp_path_factory.mktemp("actions")
    seqs = []
    for k, (name, split) in enumerate([("walk", "train"), ("run", "train"), ("bow", "train"), ("walk", "train"),
                                       ("run", "val"), ("walk", "val")]):  # fmt: skip
        joints = synthetic_motion(20 + 4 * k, k) * (1.5 if name == "run" else 1.0)
        seqs.append(h5.Sequence(f"{name}_{k}", 30.0, joints3d=joints, split=split, extra={"content_label": name}))
    h5.write_dataset(root / "mocap.h5", seqs, kind="bvh")
    args = ["finetune", "action", "--data", str(root / "mocap.h5"), "--model", "dstformer-tiny", "--batch", "2",
            "--epochs", "1", "--clip-len", "12", "--out-dir", str(root), "--name", "a",
            "--set", "head.label_key=content_label", "--set", "data.noise=true",
            "--set", "head.hidden_dim=16"]  # fmt: skip
    _ok(*args)
    return root / "a" / "model.pt"


def test_finetune_on_3d_only_mocap_stores_the_class_names(action_run):
    ckpt = torch.load(action_run, map_location="cpu", weights_only=True)
    assert ckpt["heads"]["action"]["classes"] == CLASSES
    assert ckpt["heads"]["action"]["config"]["num_classes"] == 3
    rows = [json.loads(line) for line in (action_run.parent / "log.jsonl").read_text().splitlines()]
    assert [r for r in rows if r["kind"] == "val"]  # validated on the 2 val sequences (fixed virtual cameras)
    config = json.loads((action_run.parent / "config.json").read_text())
    assert config["_resolved"]["class_names"] == CLASSES and config["_resolved"]["train_samples"] == 4


def test_3d_only_samples_differ_by_epoch_in_training_and_are_fixed_in_validation(tmp_path):
    path = tmp_path / "m.h5"
    h5.write_dataset(path, [h5.Sequence("s", 30.0, joints3d=synthetic_motion(30, 0), extra={"c": "x"})], kind="t")
    item = [LabelledSequence(str(path), "s", 30, "train", 0, "3d")]
    cfg = DataConfig(clip_len=10, noise=False)
    train = ActionClipDataset(item, cfg, max_persons=1, seed=3, train=True)
    assert torch.equal(train[(0, 0)]["input"], train[(0, 0)]["input"])  # seeded per (seed, epoch, clip)
    assert not torch.equal(train[(0, 0)]["input"], train[(1, 0)]["input"])  # a new camera each epoch
    val = ActionClipDataset(item, cfg, max_persons=1, seed=3, train=False)
    assert torch.equal(val[(0, 0)]["input"], val[(5, 0)]["input"])  # validation: one fixed camera
    x = val[0]["input"]
    assert x.shape == (1, 10, 17, 3) and torch.all(x[..., 2] == 1) and x[..., :2].abs().max() <= 1.0


def _lifter(tmp_path: Path) -> Path:
    """A checkpoint with the encoder and pose head only (no action head)."""
    return save_checkpoint(build_checkpoint(mocli.create_model("dstformer-tiny"), "dstformer-tiny"), tmp_path / "l.pt")


def _keypoints_npz(path: Path, T: int = 40) -> Path:
    rng = np.random.default_rng(0)
    kp = np.zeros((T, 17, 3), np.float32)
    kp[..., :2] = rng.uniform(200, 600, size=(17, 2)) + rng.normal(0, 20, size=(T, 17, 2))
    kp[..., 2] = rng.uniform(0.5, 1.0, size=(T, 17))
    valid = np.ones(T, bool)
    kp[10:13] = np.nan
    kp[10:13, :, 2] = 0
    valid[10:13] = False
    return save_keypoints_npz(KeypointSequence(kp, (1000, 800), 20.0, valid, np.zeros(T, bool)), path)


def test_infer_task_action_agrees_with_the_validation_path_on_the_same_windows(action_run, tmp_path):
    src = _keypoints_npz(tmp_path / "clip.npz")
    out = tmp_path / "res"
    _ok("infer", str(src), "--task", "action", "--model", str(action_run), "--out", str(out), "--top-k", "2")
    report = json.loads((out / "clip" / "actions.json").read_text())
    summary = json.loads((out / "clip" / "summary.json").read_text())
    assert "actions.json" in summary["files"] and "joints3d.npz" in summary["files"]
    assert report["classes"] == CLASSES and report["clip_len"] == 12 and report["stride"] == 6
    # 40 frames, windows of 12 every 6: starts 0, 6, ..., 24 and the last one ending on frame 40
    spans = [(w["start_frame"], w["end_frame"]) for w in report["windows"]]
    assert spans == [(0, 12), (6, 18), (12, 24), (18, 30), (24, 36), (28, 40)]
    assert report["windows"][1]["start_s"] == 0.3 and report["windows"][1]["frames_with_person"] == 9  # 10-12 missing

    # the second path: each window as a sequence of an HDF5 file, sampled by the trainer's validation dataset,
    # through the encoder + head rebuilt from the checkpoint by hand
    kp = np.load(src)["keypoints"].astype(np.float64)
    kp[~np.isfinite(kp).all(-1)] = 0.0
    seqs = [
        h5.Sequence(f"w{i}", 20.0, keypoints2d=kp[s:e].astype(np.float32), label=0) for i, (s, e) in enumerate(spans)
    ]
    h5.write_dataset(tmp_path / "w.h5", seqs, kind="t")
    items = [LabelledSequence(str(tmp_path / "w.h5"), f"w{i}", 12, "val", 0) for i in range(len(spans))]
    ds = ActionClipDataset(items, DataConfig(clip_len=12, scale_range=(1.0, 3.0)), max_persons=2, train=False)
    ckpt = torch.load(action_run, map_location="cpu", weights_only=True)
    encoder = model_from_checkpoint(ckpt)
    kind, config, head = head_from_entry(ckpt["heads"]["action"], 32, 17)
    model = HeadModel(encoder, head, "action", kind, config).eval()
    with torch.no_grad():
        probs = torch.softmax(model(torch.stack([ds[i]["input"] for i in range(len(ds))])), dim=-1).numpy()
    for w, p in zip(report["windows"], probs, strict=True):
        best = np.argsort(-p, kind="stable")[:2]
        assert [r["id"] for r in w["top"]] == best.tolist()
        np.testing.assert_allclose([r["score"] for r in w["top"]], p[best], atol=1e-5)
        assert [r["label"] for r in w["top"]] == [CLASSES[c] for c in best]
    mean = probs.mean(axis=0)
    assert [r["id"] for r in report["clip"]["top"]] == np.argsort(-mean, kind="stable")[:2].tolist()
    np.testing.assert_allclose(report["clip"]["top"][0]["score"], mean.max(), atol=1e-5)


def test_infer_action_errors_are_one_line(action_run, tmp_path):
    src = _keypoints_npz(tmp_path / "clip.npz")
    lifter = _lifter(tmp_path)
    out = str(tmp_path / "o")
    _one_line_error("infer", str(src), "--task", "action", "--model", str(lifter), "--out", out,
                    match="no action head")  # fmt: skip
    _one_line_error("infer", str(src), "--task", "action", "--model", str(action_run), "--out", out,
                    "--labels", "jump, sit", match="--labels needs a text-aligned model")  # fmt: skip
    _one_line_error("infer", str(src), "--labels", "jump", "--model", str(lifter), "--out", out,
                    match="--labels applies to --task action")  # fmt: skip


def _pkl(path: Path, labels: list[int], split: dict) -> Path:
    rng = np.random.default_rng(2)
    anns = [
        {"frame_dir": f"S001C001P001R001A{c + 1:03d}_{i}", "label": c, "total_frames": 15 + i, "img_shape": (480, 640),
         "keypoint": rng.uniform(50, 600, (1 + i % 2, 15 + i, 17, 2)).astype(np.float32),
         "keypoint_score": rng.uniform(0.3, 1, (1 + i % 2, 15 + i, 17)).astype(np.float32)}
        for i, c in enumerate(labels)
    ]  # fmt: skip
    names = [a["frame_dir"] for a in anns]
    path.write_bytes(pickle.dumps({"split": {k: [names[i] for i in v] for k, v in split.items()}, "annotations": anns}))
    return path


def test_eval_ntu_scores_the_val_list_once_like_the_validation_path(action_run, tmp_path):
    pkl = _pkl(tmp_path / "ntu60_hrnet.pkl", [0, 1, 2, 1, 0], {"xsub_train": [0], "xsub_val": [1, 2, 3, 4]})
    out = tmp_path / "ntu.json"
    _ok("--quiet", "eval", "ntu", "--data", str(pkl), "--split", "xsub", "--model", str(action_run),
        "--json", str(out), "--batch-size", "3")  # fmt: skip
    report = json.loads(out.read_text())
    assert report["benchmark"] == "ntu" and report["info"]["samples"] == 4 and report["info"]["split"] == "xsub_val"
    # the second path: the converter's H36M keypoints, the validation dataset, the model's own forward
    from mocli.evaluation.ntu import load_pyskl, val_samples

    samples = val_samples(load_pyskl(pkl), "xsub")
    seqs = [h5.Sequence(s.name, 30.0, keypoints2d=s.keypoints, label=s.label) for s in samples]
    h5.write_dataset(tmp_path / "n.h5", seqs, kind="t")
    items = [LabelledSequence(str(tmp_path / "n.h5"), s.name, 0, "val", s.label) for s in samples]
    ds = ActionClipDataset(items, DataConfig(clip_len=12, scale_range=(1.0, 3.0)), max_persons=2, train=False)
    ckpt = torch.load(action_run, map_location="cpu", weights_only=True)
    kind, config, head = head_from_entry(ckpt["heads"]["action"], 32, 17)
    model = HeadModel(model_from_checkpoint(ckpt), head, "action", kind, config).eval()
    with torch.no_grad():
        pred = model(torch.stack([ds[i]["input"] for i in range(len(ds))])).argmax(dim=1).numpy()
    top1 = 100.0 * np.mean(pred == np.array([s.label for s in samples]))
    assert report["headline"]["top-1 (%)"] == pytest.approx(top1)
    assert report["headline"]["top-5 (%)"] == 100.0  # 3 classes: always within the top 5


def test_eval_ntu_errors_are_one_line(action_run, tmp_path):
    pkl = _pkl(tmp_path / "ntu60_hrnet.pkl", [0, 5], {"xsub_train": [0], "xsub_val": [1]})
    lifter = _lifter(tmp_path)
    _one_line_error("eval", "ntu", "--data", str(pkl), "--model", str(lifter), match="no action head")
    _one_line_error("eval", "ntu", "--data", str(pkl), "--model", str(action_run), "--split", "xview",
                    match="no 'xview_val' list")  # fmt: skip
    _one_line_error("eval", "ntu", "--data", str(pkl), "--model", str(action_run), match="has 3 classes")
    (tmp_path / "bad.pkl").write_bytes(pickle.dumps([1, 2]))
    _one_line_error("eval", "ntu", "--data", str(tmp_path / "bad.pkl"), "--model", str(action_run),
                    match="expected PYSKL's layout")  # fmt: skip
    bad_split = runner.invoke(_app(), ["eval", "ntu", "--data", str(pkl), "--model", str(action_run), "--split", "x"])
    assert bad_split.exit_code == 2 and "Traceback" not in bad_split.output


def test_eval_ntu120_oneshot_with_a_tiny_embedding_model(tmp_path):
    torch.manual_seed(0)
    config = {"dim_rep": 32, "num_joints": 17, "hidden_dim": 8, "dropout": 0.0}
    model = HeadModel(mocli.create_model("dstformer-tiny", maxlen=27), OneShotHead(**config), "action-oneshot",
                      "action-oneshot", config)  # fmt: skip
    enc, heads = model.checkpoint_parts()
    path = save_checkpoint(build_checkpoint(enc, "dstformer-tiny", heads=heads), tmp_path / "oneshot.pt")
    labels = [c for c in range(0, 120, 6) for _ in range(2)] + [1]  # 2 samples per novel class, 1 auxiliary
    pkl = _pkl(tmp_path / "ntu120_hrnet.pkl", labels, {"xsub_train": [], "xsub_val": []})
    out = tmp_path / "o.json"
    _ok("--quiet", "eval", "ntu120-oneshot", "--data", str(pkl), "--model", str(path), "--json", str(out))
    report = json.loads(out.read_text())
    assert report["info"]["queries"] == 20 and len(report["info"]["exemplars"]) == 20
    assert report["info"]["exemplars"][0] == "S001C001P001R001A001_0"  # first by frame_dir
    assert 0.0 <= report["headline"]["one-shot top-1 (%)"] <= 100.0
    _one_line_error("eval", "ntu120-oneshot", "--data", str(pkl), "--model", str(path), "--exemplar", "nope",
                    match="are not sequences of the novel classes")  # fmt: skip


def test_infer_ranks_free_text_labels_with_a_text_aligned_checkpoint(tmp_path):
    from mocli.actions import window_inputs
    from mocli.models.action_text import ActionTextHead, ActionTextModel
    from mocli.text import HashEmbedder, label_text

    torch.manual_seed(1)
    encoder = mocli.create_model("dstformer-tiny", maxlen=27)
    config = {"dim": 32, "num_heads": 4, "text_dim": 128, "num_labels": 2, "layer": 1, "text_model": "hash",
              "prompt": "{label}", "temperature": 0.1}  # fmt: skip
    head = ActionTextHead(32, 4, 128, 2)
    head.label_emb.copy_(torch.from_numpy(HashEmbedder().embed(["walk", "bow"])))
    enc, heads = ActionTextModel(encoder, head, config, ["walk", "bow"]).checkpoint_parts()
    path = save_checkpoint(build_checkpoint(enc, "dstformer-tiny", heads=heads), tmp_path / "text.pt")
    src = _keypoints_npz(tmp_path / "clip.npz")
    out = tmp_path / "res"
    _ok("infer", str(src), "--task", "action", "--model", str(path), "--out", str(out), "--labels", "jump high, bow")
    report = json.loads((out / "clip" / "actions.json").read_text())
    assert report["classes"] == ["jump high", "bow"] and report["labels"].startswith("text labels")
    spans = [(w["start_frame"], w["end_frame"]) for w in report["windows"]]
    assert spans == [(0, 27), (13, 40)]
    # the model's own forward: unit motion embeddings against the hashed label texts, softmax at temperature 0.1
    x = torch.from_numpy(window_inputs(np.load(src)["keypoints"], spans, 27, 1, 1.0))
    net = ActionTextModel(encoder, head, config, ["walk", "bow"]).eval()
    text = torch.from_numpy(HashEmbedder().embed([label_text("jump high"), label_text("bow")]))
    with torch.no_grad():
        probs = torch.softmax(net.embed(x) @ text.T / 0.1, dim=-1).numpy()
    for w, p in zip(report["windows"], probs, strict=True):
        assert {r["label"]: r["score"] for r in w["top"]} == pytest.approx({"jump high": p[0], "bow": p[1]}, abs=1e-5)


def test_eval_mocap_action_accuracy_equals_the_finetuning_validation(action_run):
    """eval mocap --action-model scores the labelled val sequences as the trainer's validation did: same top-1."""
    import json

    rows = [json.loads(line) for line in (action_run.parent / "log.jsonl").read_text().splitlines()]
    val_top1 = [r for r in rows if r["kind"] == "val"][-1]["val_top1"]
    out = action_run.parent / "eval.json"
    _ok("-q", "eval", "mocap", "--data", str(action_run.parent.parent / "mocap.h5"), "--no-noise", "--action-model",
        str(action_run), "--json", str(out))  # fmt: skip
    report = json.loads(out.read_text())
    table = next(t for t in report["tables"] if "action recognition" in t["title"])
    assert [r["frames"] for r in table["rows"]] == [2]  # the two val sequences, one source
    assert report["headline"]["action top1 (%)"] == pytest.approx(100.0 * val_top1)
    assert report["headline"]["action top5 (%)"] == pytest.approx(100.0)  # 3 classes: always in the top 5
