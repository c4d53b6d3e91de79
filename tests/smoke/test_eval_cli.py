"""`mocli eval h36m`, `mocap` and `generalisation` end to end with a tiny model on small fixtures."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

import mocli
from mocli.data.h5 import Sequence, write_dataset
from mocli.models.checkpoint import build_checkpoint, save_checkpoint

runner = CliRunner()


def _app() -> typer.Typer:
    from mocli.cli.main import app

    return app


@pytest.fixture
def tiny_model(tmp_path) -> Path:
    model = mocli.create_model("dstformer-tiny", maxlen=27)
    return save_checkpoint(build_checkpoint(model, "dstformer-tiny", meta={"clip_len": 27}), tmp_path / "tiny.pt")


@pytest.fixture
def h36m_pkl(tmp_path) -> Path:
    """MotionBERT layout: S9 Directions (30 frames), the broken S9 Greeting trial 2 (20), S11 Eating (50)."""
    rng = np.random.default_rng(0)
    videos = [("s_09_act_02_subact_01_ca_01", "Directions", 30), ("s_09_act_05_subact_02_ca_01", "Greeting", 20),
              ("s_11_act_04_subact_01_ca_01", "Eating", 50)]  # fmt: skip
    n = sum(v[2] for v in videos)
    img = rng.uniform(300, 700, (n, 17, 3)).astype(np.float32)
    img[..., 2] -= 500
    test = {"joint_2d": img[..., :2] + 2, "confidence": np.full((n, 17, 1), 0.9, np.float32), "joint3d_image": img,
            "joints_2.5d_image": img * 4, "2.5d_factor": np.full(n, 4.0, np.float32),
            "camera_name": np.array(["54138969"] * n), "source": [s for s, _, T in videos for _ in range(T)],
            "action": np.array([a for _, a, T in videos for _ in range(T)])}  # fmt: skip
    path = tmp_path / "h36m_sh_conf_cam_source_final.pkl"
    path.write_bytes(pickle.dumps({"test": test}))
    return path


@pytest.fixture
def mocap_h5(tmp_path) -> Path:
    rng = np.random.default_rng(1)

    def walk(T):
        return rng.uniform(-0.3, 0.3, (17, 3)) + np.array([0, 1.0, 0]) + rng.normal(0, 0.01, (T, 17, 3))

    dash = {"content_label": "dash"}
    seqs = [Sequence("dash_001", 30.0, joints3d=walk(40), split="val", source="bandai", extra=dash),
            Sequence("salsa_02", 30.0, joints3d=walk(30), split="val", source="cmu_dance", action="salsa"),
            Sequence("walk_003", 30.0, joints3d=walk(30), split="train", source="bandai")]  # fmt: skip
    write_dataset(tmp_path / "mocap.h5", seqs, kind="bvh")
    return tmp_path / "mocap.h5"


def test_eval_help():
    app = _app()
    for args in (["eval", "--help"], ["eval", "h36m", "--help"], ["eval", "mocap", "--help"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output


def test_eval_h36m_prints_the_action_table_and_writes_json(tmp_path, tiny_model, h36m_pkl):
    out = tmp_path / "h36m.json"
    args = ["eval", "h36m", "--data", str(h36m_pkl), "--model", str(tiny_model), "--json", str(out)]
    result = runner.invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert "Directions" in result.output and "mean over actions" in result.output
    assert "reference protocol, clips of 27 frames; 26 frames not scored" in result.output.replace("\n", " ")
    assert "no evaluation convention recorded, rootrel False assumed" in result.output
    report = json.loads(out.read_text())
    table = report["tables"][0]
    # the reference protocol: one whole clip of 27 frames per video, the tails (3 and 23 frames) not scored
    assert [(r["name"], r["frames"]) for r in table["rows"]] == [("Directions", 27), ("Eating", 27)]
    assert set(report["headline"]) == {"P1 mpjpe (mm)", "P2 pa_mpjpe (mm)"}
    assert all(np.isfinite(v) and v > 0 for v in report["headline"].values())
    info = report["info"]
    assert info["frames"] == 54 and info["left_out_frames"] == 26 and info["frames_protocol"] == "reference"
    assert info["excluded"] == [{"name": "s_09_act_05_subact_02_ca_01", "frames": 20}]
    assert info["model"]["path"] == str(tiny_model) and info["flip"] is True and info["clip_len"] == 27
    assert info["convention"]["rootrel"] is False and info["convention"]["origin"].startswith("assumed")
    assert info["data"] == [str(h36m_pkl)] and info["layout"] == "pkl" and info["input_2d"] == "detected"
    assert table["summary"]["mean over actions"]["mpjpe"] == pytest.approx(report["headline"]["P1 mpjpe (mm)"])


def test_eval_h36m_all_frames_and_overrides(tmp_path, tiny_model, h36m_pkl):
    out = tmp_path / "p1.json"
    args = ["eval", "h36m", "--data", str(h36m_pkl), "--model", str(tiny_model), "--protocol", "1", "--json", str(out),
            "--frames", "all", "--rootrel", "--gt-2d", "--input-2d", "gt", "--no-flip", "--clip-len", "16"]  # fmt: skip
    result = runner.invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert "no evaluation convention recorded" not in result.output  # --rootrel given
    report = json.loads(out.read_text())
    assert list(report["headline"]) == ["P1 mpjpe (mm)"]
    info = report["info"]
    assert (info["frames"], info["left_out_frames"], info["frames_protocol"]) == (80, 0, "all")
    assert info["gt_2d"] is True and info["flip"] is False and info["clip_len"] == 16 and info["input_2d"] == "gt"
    convention = info["convention"]
    assert convention["rootrel"] is True and convention["origin"].endswith(
        "overridden: rootrel=True, gt_2d=True, flip=False"
    )


def test_eval_h36m_takes_rootrel_from_the_training_config(tmp_path, h36m_pkl):
    model = mocli.create_model("dstformer-tiny", maxlen=27)
    train_config = {"data": {"root_relative": True, "clip_len": 27}}
    ckpt = save_checkpoint(build_checkpoint(model, "dstformer-tiny", train_config=train_config), tmp_path / "m.pt")
    out = tmp_path / "r.json"
    result = runner.invoke(_app(), ["eval", "h36m", "--data", str(h36m_pkl), "--model", str(ckpt), "--json", str(out)])
    assert result.exit_code == 0, result.output
    convention = json.loads(out.read_text())["info"]["convention"]
    assert convention["rootrel"] is True and convention["origin"] == "training config (data.root_relative)"


def test_eval_mocap_is_deterministic_and_writes_json(tmp_path, tiny_model, mocap_h5):
    reports = []
    for k in range(2):
        out = tmp_path / f"mocap{k}.json"
        args = ["eval", "mocap", "--data", str(mocap_h5), "--model", str(tiny_model), "--json", str(out)]
        result = runner.invoke(_app(), args)
        assert result.exit_code == 0, result.output
        reports.append(json.loads(out.read_text()))
    assert reports[0] == reports[1]
    report = reports[0]
    metrics = ("mpjpe (mm)", "pa_mpjpe (mm)", "pa_limbs (mm)", "accel (mm/frame²)")
    assert set(report["headline"]) == {f"{v} {m}" for v in ("clean", "noisy") for m in metrics}
    by_source = report["tables"][0]
    assert {r["name"]: r["frames"] for r in by_source["rows"]} == {"bandai": 40, "cmu_dance": 30}
    assert {r["name"] for r in report["tables"][1]["rows"]} == {"dash", "salsa"}
    assert "bandai" in result.output


def test_eval_mocap_no_noise_scores_clean_only(tmp_path, tiny_model, mocap_h5):
    out = tmp_path / "clean.json"
    args = ["eval", "mocap", "--data", str(mocap_h5), "--model", str(tiny_model), "--no-noise", "--json", str(out)]
    result = runner.invoke(_app(), args)
    assert result.exit_code == 0, result.output
    assert list(json.loads(out.read_text())["info"]["variants"]) == ["clean"]


def test_eval_mocap_standard_cameras_ignore_the_training_ranges(tmp_path, mocap_h5):
    model = mocli.create_model("dstformer-tiny", maxlen=27)
    train_config = {"data": {"pitch_deg": [50.0, 60.0], "fov_deg": [20.0, 21.0]}}
    ckpt = save_checkpoint(build_checkpoint(model, "dstformer-tiny", meta={"clip_len": 27}, train_config=train_config),
                           tmp_path / "wide.pt")  # fmt: skip
    views = {}
    for cameras in ("model", "standard"):
        out = tmp_path / f"{cameras}.json"
        args = ["eval", "mocap", "--data", str(mocap_h5), "--model", str(ckpt), "--no-noise", "--cameras", cameras,
                "--json", str(out)]  # fmt: skip
        result = runner.invoke(_app(), args)
        assert result.exit_code == 0, result.output
        views[cameras] = json.loads(out.read_text())["info"]["view"]
    assert views["model"]["pitch_deg"] == [50.0, 60.0] and views["model"]["fov_deg"] == [20.0, 21.0]
    assert views["standard"]["pitch_deg"] == [-15.0, 30.0] and views["standard"]["fov_deg"] == [35.0, 75.0]


def test_eval_generalisation_scores_only_held_out_groups(tmp_path, tiny_model, mocap_h5):
    rng = np.random.default_rng(2)
    body = rng.uniform(-0.3, 0.3, (17, 3)) + np.array([0, 1.0, 0])
    seqs = [
        Sequence(
            f"HDM_{who}_{what}_001_120",
            120.0,
            joints3d=body + rng.normal(0, 0.01, (240, 17, 3)),
            split=split,
            source="hdm05",
            subject=who,
            action=what,
        )
        for who, what, split in (("mm", "jog", "test"), ("bd", "lieDownFloor", "train"), ("bd", "jog", "train"))
    ]
    write_dataset(tmp_path / "hdm05.h5", seqs, kind="amc")
    out = tmp_path / "gen.json"
    args = ["eval", "generalisation", "--data", str(tmp_path / "hdm05.h5"), "--data", str(mocap_h5), "--model",
            str(tiny_model), "--no-noise", "--json", str(out)]  # fmt: skip
    result = runner.invoke(_app(), args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    frames = {r["name"]: r["frames"] for r in report["tables"][0]["rows"]}
    # the bd jog clip and the bandai/cmu clips are not held out; 240 frames at 120 fps -> 60 at 30 fps, 120 at 60
    assert frames == {"people": 60, "motions": 60, "high": 60, "low": 60, "tele": 60, "wide": 60, "60fps": 120}
    assert set(report["headline"]) == {"clean mpjpe (mm)", "clean pa_mpjpe (mm)", "clean pa_limbs (mm)"}
    assert report["info"]["upright"] is True  # scored as mocli infer lifts (lying bodies rolled upright)
    result = runner.invoke(_app(), [*args[:-1], str(tmp_path / "plain.json"), "--no-upright"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "plain.json").read_text())["info"]["upright"] is False


@pytest.mark.parametrize("command", ["h36m", "mocap", "generalisation"])
def test_bad_data_path_is_a_one_line_error(tmp_path, tiny_model, command):
    args = ["eval", command, "--data", str(tmp_path / "missing.pkl"), "--model", str(tiny_model)]
    result = runner.invoke(_app(), args)
    assert result.exit_code == 1
    assert "missing.pkl" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
