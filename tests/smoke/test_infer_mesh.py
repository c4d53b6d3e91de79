"""`mocli infer --task mesh` and `mocli eval mesh` end to end through the CLI, with a synthetic SMPL and tiny models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import mocli
from mocli.cli.main import app
from mocli.data.transforms import normalise_persons
from mocli.evaluation.mesh import head_predictor, load_mesh_test_set, score_mesh
from mocli.evaluation.runner import RunOptions
from mocli.keypoints import load_keypoints_npz
from mocli.mesh.meshes import load_mesh_head, predict_smpl
from mocli.models.checkpoint import build_checkpoint, save_checkpoint
from mocli.models.heads import MeshHead, head_entry
from mocli.models.rotations import matrix_to_axis_angle
from mocli.models.smpl import BodyModel, find_smpl_files
from tests.smoke.test_infer import _keypoints_npz
from tests.unit.test_mesh import _mesh_pkl, _motion, write_body_smpl

runner = CliRunner()


@pytest.fixture(scope="module")
def smpl_dir(tmp_path_factory) -> Path:
    return write_body_smpl(tmp_path_factory.mktemp("smpl"))


def _tiny(tmp_path: Path, mesh_head: bool) -> Path:
    torch.manual_seed(0)
    model = mocli.create_model("dstformer-tiny", maxlen=27)
    heads = None
    if mesh_head:
        head = MeshHead(dim_rep=32, num_joints=17, hidden_dim=16)
        with torch.no_grad():  # visible outputs: the head's last layers away from zero
            head.head_pose.weight.normal_(0, 0.05)
            head.head_shape.weight.normal_(0, 0.05)
        head.eval()
        heads = {"mesh": head_entry("mesh", {"dim_rep": 32, "num_joints": 17, "hidden_dim": 16}, head)}
    ckpt = build_checkpoint(model, "dstformer-tiny", heads=heads, meta={"clip_len": 8})
    return save_checkpoint(ckpt, tmp_path / ("mesh.pt" if mesh_head else "tiny.pt"))


def _infer(*args: str):
    return runner.invoke(app, ["-q", "infer", *args])


def test_infer_task_mesh_fits_smpl_and_writes_npz_objs_and_summary(tmp_path, smpl_dir):
    src = _keypoints_npz(tmp_path / "walk.npz", T=6, missing=(2,))
    out = tmp_path / "res"
    r = _infer(str(src), "--model", str(_tiny(tmp_path, False)), "--out", str(out), "--task", "mesh",
               "--smpl-dir", str(smpl_dir))  # fmt: skip
    assert r.exit_code == 0, r.output
    folder = out / "walk"
    with np.load(folder / "mesh.npz") as f:
        data = {k: f[k] for k in f.files}
    assert data["vertices"].shape == (6, 6890, 3) and data["faces"].shape == (13776, 3)
    assert str(data["body_model"]) == "smpl" and str(data["method"]) == "fit"
    assert np.isnan(data["vertices"][2]).all() and np.isfinite(data["vertices"][[0, 1, 3, 4, 5]]).all()
    assert data["pose"].shape == (6, 72) and data["betas"].shape == (10,)
    assert sorted(p.name for p in (folder / "mesh").iterdir()) == [f"frame_{t:05d}.obj" for t in (0, 1, 3, 4, 5)]
    summary = json.loads((folder / "summary.json").read_text())
    assert {"joints3d.npz", "mesh.npz", "mesh/"} <= set(summary["files"])
    facts = summary["results"][0]["mesh"]
    assert facts["method"] == "fit" and facts["frames_with_mesh"] == 5
    assert facts["fit_error_mm"] == pytest.approx(float(np.nanmean(data["error_mm"])), abs=0.01)
    assert "mesh" in summary["timings_s"]
    # the fitted body's joints match the lifted joints to the reported error
    lifted = np.load(folder / "joints3d.npz")["joints3d"]
    err = np.linalg.norm(data["joints3d"] - lifted, axis=-1).mean(-1) * 1000
    np.testing.assert_allclose(err[[0, 1, 3, 4, 5]], data["error_mm"][[0, 1, 3, 4, 5]], rtol=1e-3, atol=1e-3)


def test_infer_task_mesh_uses_the_checkpoints_mesh_head(tmp_path, smpl_dir):
    src = _keypoints_npz(tmp_path / "clip.npz", T=8, missing=())
    ckpt = _tiny(tmp_path, True)
    out = tmp_path / "res"
    r = _infer(str(src), "--model", str(ckpt), "--out", str(out), "--task", "mesh", "--smpl-dir", str(smpl_dir))
    assert r.exit_code == 0, r.output
    with np.load(out / "clip" / "mesh.npz") as f:
        assert str(f["method"]) == "head"
        pose, betas, verts = f["pose"], f["betas"], f["vertices"]
    # parity: one window of the clip length (8 frames) straight through the encoder and the head
    encoder = mocli.load_model(ckpt)
    head = load_mesh_head(ckpt, encoder)
    seq_kp = load_keypoints_npz(src).keypoints
    x = torch.from_numpy(normalise_persons(seq_kp.astype(np.float64), 1.0).astype(np.float32))[None]
    with torch.no_grad():
        direct = head(encoder.forward_features(x))
    np.testing.assert_allclose(pose, matrix_to_axis_angle(direct["rotmats"][0]).reshape(8, 72).numpy(), atol=1e-4)
    np.testing.assert_allclose(betas, direct["betas"][0, 0].numpy(), atol=1e-5)
    rot, b = predict_smpl(encoder, head, seq_kp, clip_len=8)
    body = BodyModel.from_files(find_smpl_files(smpl_dir))
    with torch.no_grad():
        out_b = body(rot, b.expand(8, 10))
    np.testing.assert_allclose(verts, (out_b.verts - out_b.joints[:, :1]).numpy(), atol=1e-5)


def test_infer_mesh_without_or_with_wrong_smpl_files_is_one_line(tmp_path, monkeypatch):
    monkeypatch.delenv("MOCLI_SMPL_DIR", raising=False)
    src = _keypoints_npz(tmp_path / "a.npz", T=6, missing=(2,))
    model = str(_tiny(tmp_path, False))
    r = _infer(str(src), "--model", model, "--out", str(tmp_path / "o"), "--task", "mesh", "--body-model", "smpl")
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "SMPL_NEUTRAL.pkl or SMPL_NEUTRAL.npz" in r.output and "J_regressor_h36m.npy" in r.output
    (tmp_path / "empty").mkdir()
    r = _infer(str(src), "--model", model, "--out", str(tmp_path / "o"), "--task", "mesh", "--smpl-dir",
               str(tmp_path / "empty"))  # fmt: skip
    assert r.exit_code == 1 and "lacks SMPL_NEUTRAL.pkl/.npz, smpl_mean_params.npz, J_regressor_h36m.npy" in r.output
    r = _infer(str(src), "--model", model, "--out", str(tmp_path / "o"), "--smpl-dir", str(tmp_path / "empty"))
    assert r.exit_code == 1 and "apply to --task mesh" in r.output


def test_eval_mesh_cli_matches_the_python_api(tmp_path, smpl_dir):
    ckpt = _tiny(tmp_path, True)
    rot, betas = _motion(11, seed=4)
    pkl = _mesh_pkl(tmp_path / "mesh_det_pw3d.pkl", rot, betas, ["s1"] * 5 + ["s2"] * 6)
    out = tmp_path / "mesh.json"
    r = runner.invoke(app, ["-q", "eval", "mesh", "--dataset", "3dpw", "--data", str(pkl), "--model", str(ckpt),
                            "--smpl-dir", str(smpl_dir), "--json", str(out)])  # fmt: skip
    assert r.exit_code == 0, r.output
    report = json.loads(out.read_text())
    encoder = mocli.load_model(ckpt)
    expected = score_mesh(
        load_mesh_test_set(pkl), head_predictor(encoder, load_mesh_head(ckpt, encoder), RunOptions(clip_len=8)),
        BodyModel.from_files(find_smpl_files(smpl_dir)),
    )  # fmt: skip
    for key, value in expected.headline.items():
        assert report["headline"][key] == pytest.approx(value, rel=1e-5) and value > 0
    assert report["info"]["frames"] == 11 and report["benchmark"] == "mesh-3dpw"
    no_head = runner.invoke(app, ["eval", "mesh", "--data", str(pkl), "--model", str(_tiny(tmp_path, False)),
                                  "--smpl-dir", str(smpl_dir)])  # fmt: skip
    assert no_head.exit_code == 1 and "has no mesh head" in no_head.output


def test_infer_task_all_with_shipped_weights_adds_actions_and_meshes_without_changing_the_joints(tmp_path, smpl_dir):
    """--task all = pose3d + action + mesh: joints3d.npz equals --task pose3d's (same lifter, the shipped default),
    actions.json comes from the shipped Bandai action classifier, and summary.json names the task."""
    src = _keypoints_npz(tmp_path / "walk.npz", T=40, missing=(5,))
    r = _infer(str(src), "--out", str(tmp_path / "pose"))
    assert r.exit_code == 0, r.output
    r = _infer(str(src), "--out", str(tmp_path / "all"), "--task", "all", "--smpl-dir", str(smpl_dir), "--top-k", "3")
    assert r.exit_code == 0, r.output
    pose, every = np.load(tmp_path / "pose/walk/joints3d.npz"), np.load(tmp_path / "all/walk/joints3d.npz")
    np.testing.assert_array_equal(pose["joints3d"], every["joints3d"])
    summary = json.loads((tmp_path / "all/walk/summary.json").read_text())
    assert summary["task"] == "all"
    assert json.loads((tmp_path / "pose/walk/summary.json").read_text())["task"] == "pose3d"
    assert {"joints3d.npz", "actions.json", "mesh.npz"} <= set(summary["files"])
    actions = json.loads((tmp_path / "all/walk/actions.json").read_text())
    assert actions["model"]["path"].endswith("dstformer-small.bandai-action.pt")
    assert len(actions["classes"]) == 24 and "walk" in actions["classes"]  # Bandai content labels
    top = actions["clip"]["top"]
    assert len(top) == 3 and [t["score"] for t in top] == sorted((t["score"] for t in top), reverse=True)
    with np.load(tmp_path / "all/walk/mesh.npz") as mesh:
        assert mesh["vertices"].shape[:2] == (40, 6890) and np.isnan(mesh["vertices"][5]).all()


def test_action_options_without_an_action_task_are_one_line(tmp_path):
    src = _keypoints_npz(tmp_path / "walk.npz", T=6, missing=(2,))
    r = _infer(str(src), "--out", str(tmp_path / "o"), "--action-model", "dstformer-small.bandai-action")
    assert r.exit_code == 1 and "--action-model applies to --task action or all" in r.output
