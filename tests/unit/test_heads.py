"""Task heads: shapes, BatchNorm in eval mode, MotionBERT-named state dicts, and the mesh head on a synthetic SMPL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mocli.errors import CheckpointError, MocliError
from mocli.models.heads import ActionHead, HeadModel, MeshHead, OneShotHead, head_from_entry, pool_motion
from mocli.models.registry import create_model
from mocli.models.rotations import matrix_to_rot6d

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


def write_synthetic_smpl(folder: Path, seed: int = 0) -> Path:
    """A random model in the SMPL layout (SMPL_NEUTRAL.npz), identity mean params and a random H36M regressor."""
    rng = np.random.default_rng(seed)
    V = 6890
    weights = rng.uniform(size=(V, 24))
    j_reg = rng.uniform(size=(24, V))
    kintree = np.stack([np.array(SMPL_PARENTS) % 2**32, np.arange(24)]).astype(np.int64)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(
        folder / "SMPL_NEUTRAL.npz",
        v_template=rng.normal(size=(V, 3)) * 0.3, shapedirs=rng.normal(size=(V, 3, 10)) * 0.01,
        posedirs=rng.normal(size=(V, 3, 207)) * 0.01, J_regressor=j_reg / j_reg.sum(1, keepdims=True),
        weights=weights / weights.sum(1, keepdims=True), kintree_table=kintree,
        f=rng.integers(0, V, size=(13776, 3)),
    )  # fmt: skip
    np.savez(folder / "smpl_mean_params.npz", pose=np.tile([1.0, 0, 0, 1, 0, 0], 24), shape=np.zeros(10))
    h36m = rng.uniform(size=(17, V))
    np.save(folder / "J_regressor_h36m.npy", h36m / h36m.sum(1, keepdims=True))
    return folder


def motionbert_action_state(dim_rep: int, num_joints: int, hidden: int, classes: int) -> dict[str, torch.Tensor]:
    """An action head state dict written by hand with MotionBERT's names (as under 'module.head.')."""
    g = torch.Generator().manual_seed(0)
    return {
        "fc1.weight": torch.randn(hidden, num_joints * dim_rep, generator=g),
        "fc1.bias": torch.randn(hidden, generator=g),
        "bn.weight": torch.rand(hidden, generator=g) + 0.5,
        "bn.bias": torch.randn(hidden, generator=g),
        "bn.running_mean": torch.randn(hidden, generator=g),
        "bn.running_var": torch.rand(hidden, generator=g) + 0.5,
        "bn.num_batches_tracked": torch.tensor(1234),
        "fc2.weight": torch.randn(classes, hidden, generator=g),
        "fc2.bias": torch.randn(classes, generator=g),
    }


def test_pool_motion_means_time_then_persons():
    feats = torch.zeros(1, 2, 4, 3, 2)
    feats[0, 0] = 1.0  # person 0 all ones, person 1 zero-padded
    feats[0, 0, 0] = 5.0  # one frame of person 0 at 5: time mean (5 + 1 + 1 + 1) / 4 = 2
    torch.testing.assert_close(pool_motion(feats), torch.full((1, 6), 1.0))


def test_action_head_shapes_and_batchnorm_in_eval_mode():
    torch.manual_seed(0)
    head = ActionHead(dim_rep=8, num_joints=17, num_classes=5, hidden_dim=16)
    feats = torch.randn(4, 2, 6, 17, 8)
    assert head(feats).shape == (4, 5)
    head.train()
    head(feats)  # updates the running statistics
    assert int(head.bn.num_batches_tracked) == 2
    head.eval()
    alone = head(feats[:1])
    in_batch = head(feats)[:1]
    torch.testing.assert_close(alone, in_batch)  # running statistics: a sample does not depend on its batch
    assert torch.equal(head(feats), head(feats))  # no dropout in eval mode
    head.train()
    assert not torch.allclose(head(feats[:2])[:1], head(feats)[:1])


def test_motionbert_named_action_state_loads_into_the_head():
    state = motionbert_action_state(dim_rep=8, num_joints=17, hidden=32, classes=7)
    kind, config, head = head_from_entry({"kind": "motionbert-action", "config": {}, "state_dict": state}, 8, 17)
    assert kind == "action" and config["hidden_dim"] == 32 and config["num_classes"] == 7
    loaded = head.state_dict()
    assert set(loaded) == set(state)
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    bad = dict(state, **{"fc2.weight": torch.zeros(7, 31)})
    with pytest.raises(CheckpointError, match="fc2.weight"):
        head_from_entry({"kind": "motionbert-action", "config": {}, "state_dict": bad}, 8, 17)


def test_embedding_head_is_unit_length_and_recognised_without_a_classifier():
    state = {k: v for k, v in motionbert_action_state(8, 17, 16, 3).items() if k.startswith("fc1.")}
    kind, _, head = head_from_entry({"kind": "motionbert-action", "config": {}, "state_dict": state}, 8, 17)
    assert kind == "action-oneshot" and isinstance(head, OneShotHead)
    emb = head(torch.randn(3, 2, 4, 17, 8))
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))


def test_mesh_head_loads_motionbert_names_and_skips_body_model_tensors():
    head = MeshHead(dim_rep=8, num_joints=17, hidden_dim=16)
    state = {k: torch.randn_like(v.float()).to(v.dtype) for k, v in head.state_dict().items()}
    assert {"fc1.weight", "bn1.running_var", "head_pose.weight", "head_shape.bias", "init_pose", "init_shape"} <= set(
        state
    )
    state["smpl.v_template"] = torch.zeros(6890, 3)  # a MotionBERT mesh head carries its SMPL buffers
    _, _, loaded = head_from_entry({"kind": "motionbert-mesh", "config": {}, "state_dict": state}, 8, 17)
    assert torch.equal(loaded.init_pose, state["init_pose"])


def test_head_model_runs_persons_through_the_encoder():
    torch.manual_seed(0)
    encoder = create_model("dstformer-tiny")
    model = HeadModel(encoder, ActionHead(32, 17, 4, 16), "action", "action", {}).eval()
    assert model(torch.randn(2, 2, 9, 17, 3)).shape == (2, 4)
    encoder_part, heads = model.checkpoint_parts()
    assert encoder_part is encoder and set(heads["action"]["state_dict"]) >= {"fc1.weight", "bn.running_mean"}


def test_zero_pose_and_zero_betas_give_the_template(tmp_path):
    from mocli.models.smpl import BodyModel, find_smpl_files, load_mean_params, read_model_data

    files = find_smpl_files(write_synthetic_smpl(tmp_path / "smpl"))
    body = BodyModel.from_files(files)
    template = torch.from_numpy(read_model_data(files.model)["v_template"]).float()
    head = MeshHead(dim_rep=8, num_joints=17, hidden_dim=16).eval()
    head.set_mean_params(*load_mean_params(files.mean_params))
    for layer in (head.head_pose, head.head_shape):  # no offsets: the mean pose (identity) and mean shape (zero)
        torch.nn.init.zeros_(layer.weight)
    out = head(torch.randn(2, 3, 17, 8))
    assert out["rotmats"].shape == (2, 3, 24, 3, 3) and out["betas"].shape == (2, 3, 10)
    torch.testing.assert_close(matrix_to_rot6d(out["rotmats"]), head.init_pose.reshape(24, 6).expand(2, 3, 24, 6))
    verts = body(out["rotmats"].reshape(6, 24, 3, 3), out["betas"].reshape(6, 10)).verts
    torch.testing.assert_close(verts, template.expand(6, -1, -1), atol=1e-5, rtol=0)
    betas = torch.zeros(1, 10)
    betas[0, 3] = 2.0  # one shape component: template + 2 * its blend shape
    shapedirs = torch.from_numpy(read_model_data(files.model)["shapedirs"]).float()
    shaped = body(torch.eye(3).expand(1, 24, 3, 3), betas)
    torch.testing.assert_close(shaped.verts[0], template + 2 * shapedirs[..., 3], atol=1e-5, rtol=0)
    assert shaped.joints.shape == (1, 17, 3)
    assert "j_regressor_h36m" not in body.state_dict() and "smpl.v_template" not in body.state_dict()


def test_missing_smpl_files_are_named_in_one_line(tmp_path, monkeypatch):
    from mocli.models.smpl import find_smpl_files

    monkeypatch.delenv("MOCLI_SMPL_DIR", raising=False)
    with pytest.raises(MocliError, match="SMPL_NEUTRAL.pkl or SMPL_NEUTRAL.npz.*MOCLI_SMPL_DIR"):
        find_smpl_files()
    (tmp_path / "smpl").mkdir()
    np.save(tmp_path / "smpl" / "J_regressor_h36m.npy", np.zeros((17, 6890)))
    monkeypatch.setenv("MOCLI_SMPL_DIR", str(tmp_path / "smpl"))
    with pytest.raises(MocliError, match=r"lacks SMPL_NEUTRAL.pkl/.npz, smpl_mean_params.npz:") as err:
        find_smpl_files()
    assert "\n" not in str(err.value)


def test_a_wrong_smpl_file_is_one_line(tmp_path):
    from mocli.models.smpl import read_model_data

    np.savez(tmp_path / "SMPL_NEUTRAL.npz", v_template=np.zeros((6890, 3)), f=np.zeros((10, 4)))
    with pytest.raises(MocliError, match="not an SMPL model file.*shapedirs.*f \\(10, 4\\)"):
        read_model_data(tmp_path / "SMPL_NEUTRAL.npz")
