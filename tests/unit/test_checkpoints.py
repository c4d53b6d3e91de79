"""mocli checkpoints, load_model, and the MotionBERT import checked against an independent reference model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import mocli
from mocli.cli.main import app
from mocli.errors import CheckpointError, MocliError
from mocli.models.checkpoint import build_checkpoint, load_checkpoint, save_checkpoint
from mocli.models.motionbert import motionbert_name
from tests.reference.motionbert_ref import RefDSTformer

runner = CliRunner()


def _release_file(path, ref: RefDSTformer, layout: str = "pose3d", head: dict | None = None):
    """Write a file in the layout of MotionBERT's released checkpoints (DataParallel 'module.' prefixes)."""
    if layout == "pose3d":
        obj = {"model_pos": {f"module.{k}": v for k, v in ref.state_dict().items()}}
    else:
        state = {f"module.backbone.{k}": v for k, v in ref.state_dict().items()}
        state.update({f"module.head.{k}": v for k, v in (head or {}).items()})
        obj = {"model": state}
    obj.update(epoch=41, lr=3.2e-4, min_loss=np.float64(37.5), optimizer={"state": {}, "param_groups": []})
    torch.save(obj, path)
    return path


def test_name_mapping_is_one_to_one():
    names = [motionbert_name(k) for k in mocli.create_model("dstformer").state_dict()]
    assert len(set(names)) == 260
    assert set(names) == set(RefDSTformer(depth=5).state_dict())
    assert motionbert_name("levels.3.ts.temporal.attn.qkv.weight") == "blocks_ts.3.attn_t.qkv.weight"
    assert motionbert_name("levels.0.fuse.bias") == "ts_attn.0.bias"


@pytest.mark.parametrize(
    ("kwargs", "arch"),
    [
        ({"dim_feat": 256, "mlp_ratio": 4}, "dstformer-lite"),
        ({"dim_feat": 64, "depth": 2, "num_heads": 8}, "dstformer-custom"),
    ],
)
def test_import_matches_reference_outputs(tmp_path, kwargs, arch):
    torch.manual_seed(0)
    ref = RefDSTformer(**kwargs).eval()
    src = _release_file(tmp_path / "best_epoch.bin", ref)
    out = tmp_path / "imported.pt"
    result = runner.invoke(app, ["weights", "import", "motionbert", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    model = mocli.load_model(out)
    assert not model.training and model.checkpoint_info["arch"]["name"] == arch
    x = torch.randn(2, 30, 17, 3)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(model.forward_features(x), ref.get_representation(x), rtol=1e-4, atol=1e-5)


def test_import_action_layout_keeps_head(tmp_path):
    ref = RefDSTformer(dim_feat=32, dim_rep=32, depth=1, num_heads=4)
    head = {
        "fc1.weight": torch.randn(64, 17 * 32),
        "fc1.bias": torch.zeros(64),
        "bn.weight": torch.ones(64),
        "bn.running_mean": torch.zeros(64),
        "fc2.weight": torch.randn(60, 64),
        "fc2.bias": torch.zeros(60),
    }
    src = _release_file(tmp_path / "ntu.bin", ref, layout="action", head=head)
    result = runner.invoke(app, ["weights", "import", "motionbert", str(src), "--name", "mb-ntu"])
    assert result.exit_code == 0, result.output
    # without --out it lands in the user weights folder, under the given name, and is listed
    listing = runner.invoke(app, ["weights", "list"])
    assert "mb-ntu" in listing.output and "action" in listing.output
    ckpt = load_checkpoint(mocli.models.registry.resolve_weights("mb-ntu"))
    assert ckpt["meta"]["task"] == "action" and ckpt["heads"]["action"]["kind"] == "motionbert-action"
    torch.testing.assert_close(ckpt["heads"]["action"]["state_dict"]["fc2.weight"], head["fc2.weight"])


def test_import_names_mismatched_keys(tmp_path):
    ref = RefDSTformer(dim_feat=32, dim_rep=32, depth=2, num_heads=4)
    state = {f"module.{k}": v for k, v in ref.state_dict().items()}
    del state["module.blocks_ts.1.mlp_t.fc2.bias"]
    state["module.blocks_st.0.attn_s.proj.weight"] = torch.zeros(32, 31)
    state["module.extra.weight"] = torch.zeros(1)
    torch.save({"model_pos": state}, tmp_path / "bad.bin")
    result = runner.invoke(
        app, ["weights", "import", "motionbert", str(tmp_path / "bad.bin"), "--out", str(tmp_path / "x.pt")]
    )
    assert result.exit_code == 1
    for needle in ("missing blocks_ts.1.mlp_t.fc2.bias", "blocks_st.0.attn_s.proj.weight has shape (32, 31)",
                   "unexpected extra.weight"):  # fmt: skip
        assert needle in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.pt").exists()


def test_not_a_checkpoint_and_release_file_hint(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="not a loadable checkpoint"):
        mocli.load_model(tmp_path / "junk.pt")
    ref = RefDSTformer(dim_feat=32, dim_rep=32, depth=1, num_heads=4)
    _release_file(tmp_path / "release.bin", ref)
    with pytest.raises(CheckpointError, match="weights import motionbert"):
        mocli.load_model(tmp_path / "release.bin")
    with pytest.raises(MocliError, match="no weights named"):
        mocli.load_model("does-not-exist")


def test_checkpoint_round_trip_and_version_guard(tmp_path):
    model = mocli.create_model("dstformer-tiny")
    ckpt = build_checkpoint(model, "dstformer-tiny", train_config={"lr": 5e-4}, meta={"step": 10})
    path = save_checkpoint(ckpt, tmp_path / "m.pt")
    loaded = mocli.load_model(path)
    x = torch.randn(1, 12, 17, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model.eval()(x), rtol=0, atol=0)
    assert loaded.checkpoint_info["train_config"] == {"lr": 5e-4}
    ckpt["format_version"] = 99
    torch.save(ckpt, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="newer mocli"):
        load_checkpoint(tmp_path / "future.pt")


def test_other_architecture_names_mismatched_keys(tmp_path):
    ckpt = build_checkpoint(mocli.create_model("dstformer-tiny"), "dstformer-tiny")
    ckpt["arch"]["config"]["depth"] = 3  # claims a deeper model than its tensors
    torch.save(ckpt, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match=r"missing: levels\.2\."):
        mocli.load_model(tmp_path / "m.pt")


def test_export_half_precision_loads_back_as_float32(tmp_path):
    model = mocli.create_model("dstformer-tiny")
    src = save_checkpoint(build_checkpoint(model, "dstformer-tiny", meta={"clip_len": 27}), tmp_path / "m.pt")
    out = tmp_path / "shipped.pt"
    result = runner.invoke(app, ["weights", "export", str(src), "--out", str(out), "--half", "--license", "CC BY-NC"])
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(out)
    assert all(v.dtype == torch.float16 for v in ckpt["model"].values() if v.is_floating_point())
    assert ckpt["meta"]["clip_len"] == 27 and ckpt["meta"]["license"] == "CC BY-NC"
    loaded = mocli.load_model(out)
    assert next(loaded.parameters()).dtype == torch.float32
    x = torch.randn(1, 9, 17, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model.eval()(x), rtol=0, atol=2e-3)
