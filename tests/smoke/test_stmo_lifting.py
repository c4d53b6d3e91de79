"""STMO (many-to-one) lifters in `mocli infer` and `mocli eval`: ``ManyToOne`` lifts every frame as the centre of its
own window of ``maxlen`` frames (the clip's ends padded by repeating the edge frames), parity with the bare STMO."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import mocli
from mocli.api import load_lifter, model_clip_len
from mocli.lift import LiftOptions, lift_keypoints
from mocli.models.checkpoint import build_checkpoint, save_checkpoint
from mocli.models.stmo import ManyToOne
from mocli.models.tta import flip_average
from mocli.results import load_joints_npz
from mocli.skeleton import H36M_17, flip_keypoints
from tests.smoke.test_eval_cli import h36m_pkl  # noqa: F401 (fixture)
from tests.smoke.test_infer import _keypoints_npz
from tests.smoke.test_infer_mesh import smpl_dir  # noqa: F401 (fixture)
from tests.unit.test_mesh import _mesh_pkl, _motion

runner = CliRunner()


def _cli(*args: str):
    from mocli.cli.main import app

    return runner.invoke(app, list(args))


@pytest.fixture
def stmo() -> torch.nn.Module:
    torch.manual_seed(0)
    return mocli.create_model("stmo-tiny").eval()  # maxlen 27


@pytest.fixture
def stmo_ckpt(tmp_path, stmo) -> Path:
    return save_checkpoint(build_checkpoint(stmo, "stmo-tiny"), tmp_path / "stmo.pt")


@torch.no_grad()
def test_a_full_clip_centre_frame_is_the_stmo_output(stmo):
    x = torch.randn(1, 27, 17, 3, generator=torch.Generator().manual_seed(1))
    y = ManyToOne(stmo)(x)
    assert y.shape == (1, 27, 17, 3)
    torch.testing.assert_close(y[:, 13], stmo(x)[:, 0], atol=1e-5, rtol=0)
    # flip TTA composes per frame: the wrapper's flip-averaged frame 13 is the STMO's flip-averaged centre
    flipped = flip_keypoints(stmo(flip_keypoints(x, H36M_17)), H36M_17)
    torch.testing.assert_close(flip_average(ManyToOne(stmo), x)[:, 13], ((stmo(x) + flipped) / 2)[:, 0], atol=1e-5,
                               rtol=0)  # fmt: skip


@torch.no_grad()
def test_edge_frames_see_their_window_padded_by_repeating_the_edge_frame(stmo):
    x = torch.randn(1, 27, 17, 3, generator=torch.Generator().manual_seed(2))
    y = ManyToOne(stmo)(x)
    first = torch.cat([x[:, :1].repeat(1, 13, 1, 1), x[:, :14]], dim=1)  # 13 copies of frame 0, then frames 0..13
    torch.testing.assert_close(y[:, 0], stmo(first)[:, 0], atol=1e-5, rtol=0)
    last = torch.cat([x[:, 13:], x[:, -1:].repeat(1, 13, 1, 1)], dim=1)  # frames 13..26, then 13 copies of 26
    torch.testing.assert_close(y[:, 26], stmo(last)[:, 0], atol=1e-5, rtol=0)


@torch.no_grad()
def test_chunking_does_not_change_the_result_for_any_clip_length(stmo):
    x = torch.randn(2, 9, 17, 3, generator=torch.Generator().manual_seed(3))  # shorter than the receptive field
    one, many = ManyToOne(stmo, chunk=1)(x), ManyToOne(stmo, chunk=10_000)(x)
    assert one.shape == (2, 9, 17, 3)
    torch.testing.assert_close(one, many, atol=1e-5, rtol=0)
    # clip b's frames depend on clip b alone: the second clip lifted by itself gives the same frames
    torch.testing.assert_close(many[1:], ManyToOne(stmo)(x[1:]), atol=1e-5, rtol=0)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 autocast (infer --precision bf16) runs too
        low = ManyToOne(stmo)(x)
    assert low.dtype == torch.bfloat16 and (low.float() - many).abs().max() < 0.05


@torch.no_grad()
def test_eval_lifts_a_whole_sequence_with_every_frame_centred_in_its_own_window(stmo):
    from mocli.evaluation.runner import RunOptions, gather_frames, plan_sequence, predict_sequence, predict_windows

    x = np.random.default_rng(4).normal(size=(60, 17, 3)).astype(np.float32)  # 60 frames, receptive field 27
    opts = RunOptions(clip_len=27, flip=False)
    whole = predict_sequence(ManyToOne(stmo), x, opts)
    t = torch.from_numpy(x)[None]
    # frame 30 sees frames 17..43 and nothing padded, although windows of 27 frames would cut at 27 and 54
    torch.testing.assert_close(torch.from_numpy(whole[30]).float(), stmo(t[:, 17:44])[0, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.from_numpy(whole).float(), ManyToOne(stmo)(t)[0], atol=1e-5, rtol=0)
    # what windows of 27 frames would give (the context of frame 30 padded at the cut at frame 27) differs
    plan = plan_sequence(60, 27)
    windowed = gather_frames(list(predict_windows(ManyToOne(stmo), np.stack([x[s:e] for s, e in plan.windows]),
                                                  opts)), plan)  # fmt: skip
    assert np.abs(windowed[30] - whole[30]).max() > 1e-3


def test_lift_keypoints_with_a_saved_stmo_checkpoint(tmp_path, stmo, stmo_ckpt):
    lifter = load_lifter(stmo_ckpt)
    assert isinstance(lifter, ManyToOne) and not lifter.training and model_clip_len(lifter) == 27
    assert lifter.checkpoint_info["arch"]["kind"] == "stmo"
    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(200, 600, (40, 17, 2)), np.full((40, 17, 1), 0.9)], -1)  # 40 = 27 + 13 frames
    opts = LiftOptions(clip_len=model_clip_len(lifter))
    out = lift_keypoints(lifter, kp, opts)
    assert out.shape == (40, 17, 3) and out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(out[:, 0], 0)  # root-relative
    assert 0.05 < np.abs(out).max() < 10  # metres
    np.testing.assert_allclose(out, lift_keypoints(ManyToOne(stmo), kp, opts), atol=1e-5)  # checkpoint round trip


def test_infer_cli_lifts_with_an_stmo_and_refuses_task_action(tmp_path, stmo_ckpt):
    src = _keypoints_npz(tmp_path / "walk.npz", T=30, missing=(4,))
    out = tmp_path / "res"
    r = _cli("infer", str(src), "--model", str(stmo_ckpt), "--out", str(out))
    assert r.exit_code == 0, r.output
    data = load_joints_npz(out / "walk" / "joints3d.npz")
    assert data["joints3d"].shape == (30, 17, 3) and data["missing_frames"].tolist() == [4]
    assert np.isfinite(np.delete(data["joints3d"], 4, axis=0)).all()
    summary = json.loads((out / "walk" / "summary.json").read_text())
    assert summary["model"]["arch"] == "stmo-tiny"
    r = _cli("infer", str(src), "--model", str(stmo_ckpt), "--task", "action", "--out", str(tmp_path / "a"))
    assert r.exit_code == 1 and "STMO (many-to-one) lifter with no action head" in r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output


def test_eval_h36m_runs_an_stmo_and_eval_mesh_refuses_it(tmp_path, stmo_ckpt, h36m_pkl, smpl_dir):  # noqa: F811
    report_path = tmp_path / "h36m.json"
    r = _cli("eval", "h36m", "--data", str(h36m_pkl), "--model", str(stmo_ckpt), "--json", str(report_path))
    assert r.exit_code == 0, r.output
    report = json.loads(report_path.read_text())
    assert report["info"]["clip_len"] == 27 and all(np.isfinite(v) for v in report["headline"].values())
    rot, betas = _motion(5, seed=4)
    pkl = _mesh_pkl(tmp_path / "mesh_det_pw3d.pkl", rot, betas, ["s1"] * 5)
    r = _cli("eval", "mesh", "--data", str(pkl), "--model", str(stmo_ckpt), "--smpl-dir", str(smpl_dir))
    assert r.exit_code == 1 and "STMO (many-to-one) lifter; eval mesh needs a DSTformer" in r.output
    assert "Traceback" not in r.output
