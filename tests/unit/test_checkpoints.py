"""mocli checkpoints, load_model, and the MotionBERT import checked against an independent reference model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import mocli
from mocli.api import model_clip_len
from mocli.cli.main import app
from mocli.errors import CheckpointError, MocliError
from mocli.models.checkpoint import average_checkpoints, build_checkpoint, load_checkpoint, save_checkpoint
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
    with pytest.raises(CheckpointError, match="junk.pt: is not a torch checkpoint"):
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


def test_export_stores_the_auto_weights_spread_and_keeps_it_on_a_second_export(tmp_path):
    """--detector-3d-spread goes into meta['detector_3d_spread_m'], which model_detector_3d_spread reads (infer's
    0.06 without it); exporting the export again keeps it; 0, a negative or a stored word are one-line errors."""
    from mocli.api import model_detector_3d_spread
    from mocli.lift import DETECTOR_3D_SPREAD_M

    src = save_checkpoint(build_checkpoint(mocli.create_model("dstformer-tiny"), "dstformer-tiny"), tmp_path / "m.pt")
    out, again = tmp_path / "shipped.pt", tmp_path / "again.pt"
    export = ["weights", "export", "--detector-3d-spread"]
    assert runner.invoke(app, [*export, "0.16", str(src), "--out", str(out)]).exit_code == 0
    assert load_checkpoint(out)["meta"]["detector_3d_spread_m"] == 0.16
    assert runner.invoke(app, ["weights", "export", str(out), "--out", str(again), "--half"]).exit_code == 0
    assert model_detector_3d_spread(mocli.load_model(again)) == 0.16
    assert model_detector_3d_spread(mocli.load_model(src)) == DETECTOR_3D_SPREAD_M == 0.06
    for bad in ("0", "-0.1", "nan", "inf"):
        result = runner.invoke(app, [*export, bad, str(src), "--out", str(tmp_path / "bad.pt")])
        assert result.exit_code != 0 and "positive number of metres" in result.output, result.output
        assert not (tmp_path / "bad.pt").exists()
    ckpt = load_checkpoint(src)
    ckpt["meta"]["detector_3d_spread_m"] = "wide"
    model = mocli.load_model(save_checkpoint(ckpt, tmp_path / "word.pt"))
    with pytest.raises(CheckpointError, match=r"detector_3d_spread_m \('wide'\) is not a positive number"):
        model_detector_3d_spread(model)
    ckpt["meta"]["detector_3d_spread_m"] = -0.06
    model = mocli.load_model(save_checkpoint(ckpt, tmp_path / "negative.pt"))
    with pytest.raises(CheckpointError, match=r"\(-0.06\) is not a positive number"):
        model_detector_3d_spread(model)


def test_is_spread_m_is_the_one_test_of_a_flip_spread():
    """The option, the stored meta, detector_3d_weights and the benchmarks' auto@S share one test: finite, > 0 m."""
    from mocli.lift import detector_3d_weights
    from mocli.models.checkpoint import is_spread_m

    assert [is_spread_m(v) for v in (0.06, 1e-4, np.float32(2.0))] == [True, True, True]
    assert [is_spread_m(v) for v in (0.0, -0.06, float("nan"), float("inf"), np.float64("-inf"))] == [False] * 5
    with pytest.raises(ValueError, match="positive number of metres"):
        detector_3d_weights(np.zeros(4), 3, scale_m=float("inf"))


def _tiny_checkpoint(path, seed: int, **overrides):
    torch.manual_seed(seed)
    return save_checkpoint(build_checkpoint(mocli.create_model("dstformer-tiny", **overrides), "dstformer-tiny",
                                            meta={"clip_len": 27, "source": f"run {seed}"}), path)  # fmt: skip


def test_average_is_the_weighted_mean_of_the_tensors(tmp_path):
    a, b = _tiny_checkpoint(tmp_path / "a.pt", 0), _tiny_checkpoint(tmp_path / "b.pt", 1)
    out = tmp_path / "soup.pt"
    result = runner.invoke(app, ["weights", "average", str(a), str(b), "--out", str(out), "--weight", "3",
                                 "--weight", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    ta, tb, soup = (load_checkpoint(p)["model"] for p in (a, b, out))
    for key in ta:
        torch.testing.assert_close(soup[key], 0.75 * ta[key] + 0.25 * tb[key], rtol=0, atol=1e-6)
    meta = load_checkpoint(out)["meta"]
    assert meta["averaged_from"] == [{"checkpoint": "a.pt", "weight": 0.75}, {"checkpoint": "b.pt", "weight": 0.25}]
    assert meta["clip_len"] == 27 and meta["source"] == "mocli weights average"  # the rest is the first's
    one = average_checkpoints([load_checkpoint(a), load_checkpoint(a)])  # a model averaged with itself is itself
    assert all(torch.equal(one["model"][k], ta[k]) for k in ta)


def test_average_refuses_other_architectures_and_bad_weights(tmp_path):
    a, b = _tiny_checkpoint(tmp_path / "a.pt", 0), _tiny_checkpoint(tmp_path / "b.pt", 1, depth=3)
    result = runner.invoke(app, ["weights", "average", str(a), str(b), "--out", str(tmp_path / "x.pt")])
    assert result.exit_code != 0 and "architecture" in result.output and not (tmp_path / "x.pt").exists()
    with pytest.raises(CheckpointError, match="positive weight"):
        average_checkpoints([load_checkpoint(a), load_checkpoint(a)], [1.0, -1.0])
    with pytest.raises(CheckpointError, match="two or more"):
        average_checkpoints([load_checkpoint(a)])


# --- importing with MotionBERT's config ------------------------------------------------------------------------------

MB_CONFIG = """# General
finetune: False
# Model
maxlen: 30
dim_feat: 32
mlp_ratio: 2
depth: 2
dim_rep: 32
num_heads: 4
att_fuse: True
# Data
subset_list: [H36M-SH]
dt_file: h36m_sh_conf_cam_source_final.pkl
clip_len: 24
rootrel: True
no_conf: False
gt_2d: False
flip: True
"""


def _small_release(tmp_path):
    torch.manual_seed(1)
    ref = RefDSTformer(dim_feat=32, dim_rep=32, depth=2, num_heads=4, maxlen=30).eval()
    return ref, _release_file(tmp_path / "best_epoch.bin", ref)


def _import(src, out, *extra):
    return runner.invoke(app, ["weights", "import", "motionbert", str(src), "--out", str(out), *extra])


def test_import_with_config_records_the_convention_and_uses_its_heads(tmp_path):
    ref, src = _small_release(tmp_path)
    (tmp_path / "MB_ft_h36m.yaml").write_text(MB_CONFIG)
    result = _import(src, tmp_path / "mb.pt", "--config", str(tmp_path / "MB_ft_h36m.yaml"))
    assert result.exit_code == 0, result.output
    assert ("evaluation convention (from MB_ft_h36m.yaml): rootrel True, gt_2d False, flip True, no_conf False, "
            "clip_len 24") in result.output  # fmt: skip
    ckpt = load_checkpoint(tmp_path / "mb.pt")
    assert ckpt["meta"]["eval_convention"] == {"rootrel": True, "gt_2d": False, "flip": True, "no_conf": False,
                                               "clip_len": 24, "from": "MB_ft_h36m.yaml"}  # fmt: skip
    assert ckpt["meta"]["clip_len"] == 24 and ckpt["meta"]["motionbert_config"]["subset_list"] == ["H36M-SH"]
    assert ckpt["arch"]["config"]["num_heads"] == 4  # from the config (the shapes do not show it)
    model = mocli.load_model(tmp_path / "mb.pt")
    x = torch.randn(1, 24, 17, 3)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=1e-4, atol=1e-5)
    assert model_clip_len(model) == 24


def test_import_without_config_says_what_it_assumed(tmp_path):
    _, src = _small_release(tmp_path)
    result = _import(src, tmp_path / "mb.pt", "--num-heads", "4")
    assert result.exit_code == 0, result.output
    assumed = "rootrel False, gt_2d False, flip True, no_conf False, clip_len 30"
    assert f"evaluation convention (assumed, no --config): {assumed}" in result.output
    meta = load_checkpoint(tmp_path / "mb.pt")["meta"]
    assert meta["eval_convention"]["from"] == "assumed (no --config)" and meta["clip_len"] == 30


@pytest.mark.parametrize(
    "edit, needle",
    [(("dim_feat: 32", "dim_feat: 64"), "dim_feat: 64, but the weights have dim_feat 32"),
     (("depth: 2", "depth: 3"), "depth: 3, but the weights have depth 2"),
     (("maxlen: 30", "maxlen: 243"), "maxlen: 243, but the weights have maxlen 30"),
     (("mlp_ratio: 2", "mlp_ratio: 4"), "mlp_ratio: 4, but the weights have mlp_ratio 2"),
     (("no_conf: False", "no_conf: True"), "no_conf: True, but the weights take 3 input channels"),
     (("clip_len: 24", "clip_len: 243"), "clip_len: 243, but the weights take 1 to 30 frames"),
     (("rootrel: True", "rootrel: yes please"), "'rootrel' must be True or False"),
     (("num_heads: 4", "num_heads: 5"), "num_heads: 5 does not divide dim_feat 32"),
     (("att_fuse: True", "att_fuse: False"), "att_fuse: False"),
     (("rootrel: True", "rootrel: [True"), "not a readable YAML file (line 16: expected ',' or ']'"),
     ((MB_CONFIG, "- a list\n- not a mapping\n"), "expected MotionBERT's 'key: value' config, got list")],
)  # fmt: skip
def test_config_problems_are_one_line_errors_naming_the_key(tmp_path, edit, needle):
    _, src = _small_release(tmp_path)
    (tmp_path / "cfg.yaml").write_text(MB_CONFIG.replace(*edit))
    result = _import(src, tmp_path / "mb.pt", "--config", str(tmp_path / "cfg.yaml"))
    assert result.exit_code == 1
    assert needle in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "mb.pt").exists()


def test_missing_config_and_conflicting_heads_are_one_line_errors(tmp_path):
    _, src = _small_release(tmp_path)
    result = _import(src, tmp_path / "mb.pt", "--config", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1 and "nope.yaml: cannot be read" in result.output
    assert len(result.output.strip().splitlines()) == 1
    (tmp_path / "cfg.yaml").write_text(MB_CONFIG)
    result = _import(src, tmp_path / "mb.pt", "--config", str(tmp_path / "cfg.yaml"), "--num-heads", "8")
    assert result.exit_code == 1 and "--num-heads 8, but the config has num_heads: 4" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "mb.pt").exists()


class _Payload:
    """A pickle that would create a marker file when unpickled (it must never be)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_load_errors_say_what_the_file_is_and_never_advise_unsafe_loading(tmp_path):
    good = save_checkpoint(build_checkpoint(mocli.create_model("dstformer-tiny"), "dstformer-tiny"), tmp_path / "g.pt")
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.pt").write_bytes(b"")
    np.savez(tmp_path / "arrays.npz", a=np.zeros(3))
    (tmp_path / "arrays.npz").rename(tmp_path / "arrays.pt")
    marker = tmp_path / "ran"
    torch.save({"format": "mocli-checkpoint", "model": _Payload(marker)}, tmp_path / "evil.pt")
    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}, "epoch": 3}, tmp_path / "other.pt")
    expected = {
        "cut.pt": "bytes: its zip index is missing); save or copy it again",
        "empty.pt": "is empty (0 bytes); mocli expected a checkpoint written by torch.save",
        "arrays.pt": "is a zip archive but not a torch checkpoint",
        "evil.pt": "holds pickled Python code (io.open), which mocli never runs",
        "other.pt": "not a mocli checkpoint (a dict with keys 'epoch', 'model'; mocli expected format",
    }
    for name, needle in expected.items():
        with pytest.raises(CheckpointError) as info:
            mocli.load_model(tmp_path / name)
        message = str(info.value)
        assert message.startswith(f"{tmp_path / name}: ") and needle in message, message
        assert "weights_only" not in message and "\n" not in message and "MotionBERT checkpoint" not in message
    assert not marker.exists()


def test_run_folder_is_accepted_wherever_a_checkpoint_is(tmp_path):
    run = tmp_path / "runs" / "pretrain" / "small"
    run.mkdir(parents=True)
    last = mocli.create_model("dstformer-tiny")
    save_checkpoint(build_checkpoint(last, "dstformer-tiny", meta={"step": 2}), run / "last.pt")
    assert load_checkpoint(run)["meta"]["step"] == 2  # only last.pt: taken
    save_checkpoint(build_checkpoint(last, "dstformer-tiny", meta={"step": 1}), run / "best.pt")
    assert load_checkpoint(run)["meta"]["step"] == 1  # best.pt before last.pt
    save_checkpoint(build_checkpoint(last, "dstformer-tiny", meta={"step": 9}), run / "model.pt")
    assert mocli.load_model(run).checkpoint_info["meta"]["step"] == 9  # model.pt first
    with pytest.raises(MocliError, match="the folder holds no model.pt, best.pt or last.pt"):
        load_checkpoint(tmp_path / "runs")
