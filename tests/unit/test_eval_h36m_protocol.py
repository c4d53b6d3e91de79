"""The Human3.6M protocol: the model's root convention, gt_2d, which frames count, and parity of the whole
`eval h36m` path with an independent implementation of the reference's evaluation (REFERENCE.md, step by step)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mocli.cli.main import app
from mocli.evaluation.h36m import H36MTestSet, H36MVideo, evaluate_h36m
from mocli.evaluation.h36m_protocol import Convention, apply_convention, convention_of, predict_video
from mocli.evaluation.report import write_report
from mocli.evaluation.runner import RunOptions, plan_reference_clips, resample_indices
from tests.reference.motionbert_ref import RefDSTformer

runner = CliRunner()
W, H = 1000, 1002  # camera 54138969
FACTOR = 2.0  # mm per pixel
ROOT_PX = np.array([530.0, 541.0])  # normalised (0.06, 0.08): 0.1 from the origin, 50 px, 100 mm at FACTOR
SIXTEEN_17 = 16 / 17  # the root's own error is 0 after root subtraction


def _planar_video(T: int, name: str = "s_09_act_02_subact_01_ca_01", action: str = "Directions",
                  detection_offset_px=(0.0, 0.0)) -> H36MVideo:  # fmt: skip
    """A video whose label has every joint at depth 0 (relative depth 0), the root at ROOT_PX in every frame, and
    detections = label + ``detection_offset_px`` on joints 1..16 (the root detected exactly)."""
    rng = np.random.default_rng(T)
    img = np.zeros((T, 17, 3))
    img[:, 0, :2] = ROOT_PX
    img[:, 1:, :2] = ROOT_PX + rng.uniform(-150, 150, (T, 16, 2))
    det = img[..., :2].copy()
    det[:, 1:] += np.asarray(detection_offset_px)
    kp = np.concatenate([det, np.full((T, 17, 1), 0.9)], axis=-1)
    return H36MVideo(name=name, subject="S9", action=action, camera="54138969", image_size=(W, H), keypoints2d=kp,
                     joints_image=img, factor=np.full(T, FACTOR), joints_mm=img * FACTOR)  # fmt: skip


def _test_set(*videos: H36MVideo) -> H36MTestSet:
    return H36MTestSet(videos=list(videos), layout="pkl", paths=[Path("fixture.pkl")])


class RootRelative(torch.nn.Module):
    """Joints 1..16: the input's x, y relative to the input's root, depth 0; the root joint: the constant ``root``
    (x of it 0, so flip averaging keeps it)."""

    def __init__(self, root=(0.0, 0.006, 0.008)):
        super().__init__()
        self.register_buffer("root", torch.tensor(root))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(*x.shape[:-1], 3)
        out[..., :2] = x[..., :2] - x[..., :1, :2]
        out[..., 0, :] = self.root
        return out


class OffsetXY(torch.nn.Module):
    """The input's x, y with depth 0, plus ``offset`` (normalised) on joints 1..16 (x of it 0: flip-proof)."""

    def __init__(self, offset=(0.0, 0.01, 0.004)):
        super().__init__()
        self.register_buffer("offset", torch.tensor(offset))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.cat([x[..., :2], torch.zeros_like(x[..., :1])], dim=-1)
        out[..., 1:, :] += self.offset
        return out


class ClipPosition(torch.nn.Module):
    """The input's x, y; depth of joints 1..16 = 0.002 x the frame's position in its clip (1 px per position)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, J, _ = x.shape
        out = torch.cat([x[..., :2], torch.zeros_like(x[..., :1])], dim=-1)
        out[:, :, 1:, 2] = 0.002 * torch.arange(T, dtype=out.dtype)[None, :, None]
        return out


class TwoChannels(torch.nn.Module):
    """A no_conf model: takes x, y only and echoes them with depth 0."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-1] == 2, f"a no_conf model got {x.shape[-1]} channels"
        return torch.cat([x, torch.zeros_like(x[..., :1])], dim=-1)


def _p1(report) -> float:
    return report.headline["P1 mpjpe (mm)"]


# --- 1. the root convention ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("flip", [False, True])
def test_rootrel_zeroes_a_constant_root_output(flip):
    ts = _test_set(_planar_video(30))
    opts = RunOptions(clip_len=10, flip=flip)
    # root output (0, 0.006, 0.008) normalised = (0, 3, 4) px = 5 px -> 10 mm; rootrel removes it exactly
    rootrel = evaluate_h36m(ts, RootRelative(), Convention(rootrel=True), opts, gt_input=True, protocols=[1])
    kept = evaluate_h36m(ts, RootRelative(), Convention(rootrel=False), opts, gt_input=True, protocols=[1])
    assert _p1(rootrel) == pytest.approx(0.0, abs=1e-4)
    assert _p1(kept) == pytest.approx(SIXTEEN_17 * 5 * FACTOR, abs=1e-4)
    # a global model that echoes the root: rootrel then measures the joints from the image origin instead
    echo = OffsetXY(offset=(0.0, 0.0, 0.0))
    assert _p1(evaluate_h36m(ts, echo, Convention(rootrel=False), opts, gt_input=True)) == pytest.approx(0, abs=1e-4)
    wrong = evaluate_h36m(ts, echo, Convention(rootrel=True), opts, gt_input=True)
    assert _p1(wrong) == pytest.approx(SIXTEEN_17 * 50 * FACTOR, abs=1e-4)  # the root's 50 px from the origin
    assert rootrel.info["convention"]["rootrel"] is True and kept.info["convention"]["rootrel"] is False


def test_apply_convention_order_root_then_gt_2d():
    pred = np.arange(2 * 17 * 3, dtype=float).reshape(2, 17, 3)
    xy = -np.ones((2, 17, 2))
    out = apply_convention(pred, xy, rootrel=True, gt_2d=True)
    np.testing.assert_array_equal(out[:, :, :2], xy)  # gt_2d comes last: the root's x, y are the input's
    np.testing.assert_array_equal(out[:, 0, 2], 0)  # the root's depth stays zeroed
    np.testing.assert_array_equal(out[:, 1:, 2], pred[:, 1:, 2])
    np.testing.assert_array_equal(apply_convention(pred, xy, False, False), pred)


def test_convention_of_reads_import_training_config_or_assumes():
    imported = {"meta": {"eval_convention": {"rootrel": True, "gt_2d": True, "flip": False, "from": "MB.yaml"}},
                "arch": {"config": {"dim_in": 2}}}  # fmt: skip
    conv = convention_of(imported)
    assert (conv.rootrel, conv.gt_2d, conv.flip, conv.no_conf) == (True, True, False, True)
    assert conv.origin == "checkpoint (MB.yaml)"
    trained = convention_of({"train_config": {"data": {"root_relative": False}}, "arch": {"config": {"dim_in": 3}}})
    assert (trained.rootrel, trained.gt_2d, trained.flip, trained.no_conf) == (False, False, True, False)
    assert convention_of({"train_config": {"data": {}}}).rootrel is True  # mocli's DataConfig default
    assumed = convention_of({})
    assert assumed.rootrel is False and assumed.origin.startswith("assumed")
    over = assumed.override(rootrel=True, gt_2d=None, flip=True)
    assert over.rootrel is True and over.flip is True and over.origin.endswith("overridden: rootrel=True")


@pytest.mark.parametrize("frames, scored", [("reference", 10), ("all", 12)])
def test_no_conf_model_gets_x_y_only(frames, scored):
    video = _planar_video(12)
    x = video.model_input()
    pred = predict_video(TwoChannels(), x, Convention(rootrel=False, no_conf=True), frames, RunOptions(clip_len=5))
    np.testing.assert_array_equal(pred.frames, np.arange(scored))
    np.testing.assert_allclose(pred.joints[..., :2], x[:scored, :, :2], atol=1e-6)


# --- 2. gt_2d ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flip", [False, True])
def test_gt_2d_replaces_the_predicted_xy_by_the_input(flip):
    opts = RunOptions(clip_len=10, flip=flip)
    ts = _test_set(_planar_video(25))
    conv = Convention(rootrel=False)
    # offset (0, 5, 2) px on joints 1..16: without gt_2d the error is sqrt(29) px, with it only the 2 px of depth
    plain = evaluate_h36m(ts, OffsetXY(), conv, opts, gt_input=True, protocols=[1])
    gt_2d = evaluate_h36m(ts, OffsetXY(), Convention(rootrel=False, gt_2d=True), opts, gt_input=True, protocols=[1])
    assert _p1(plain) == pytest.approx(SIXTEEN_17 * np.sqrt(29) * FACTOR, abs=1e-4)
    assert _p1(gt_2d) == pytest.approx(SIXTEEN_17 * 2 * FACTOR, abs=1e-4)
    # the input's x, y are the detections, not the label: detections off by (3, 4) px give that error back
    detected = _test_set(_planar_video(25, detection_offset_px=(3.0, 4.0)))
    no_offset = OffsetXY(offset=(0.0, 0.0, 0.0))
    report = evaluate_h36m(detected, no_offset, Convention(rootrel=False, gt_2d=True), opts, protocols=[1])
    assert _p1(report) == pytest.approx(SIXTEEN_17 * 5 * FACTOR, abs=1e-4)
    assert report.info["gt_2d"] is True and report.info["input_2d"] == "detected"


# --- 3. which frames count --------------------------------------------------------------------------------------


def test_reference_clips_and_resampling_indices():
    plan = plan_reference_clips(400, 243)
    assert plan.clips.shape == (1, 243) and plan.left_out == 157
    np.testing.assert_array_equal(plan.frames, np.arange(243))
    plan = plan_reference_clips(500, 243)
    np.testing.assert_array_equal(plan.clips, np.arange(486).reshape(2, 243))
    assert plan.left_out == 14 and plan.positions[243].tolist() == [1, 0]
    assert plan_reference_clips(486, 243).left_out == 0
    # T = 3 into 7: floor(k * 3 / 7) = 0 0 0 1 1 2 2; each frame scored from its last position: 2, 4, 6
    np.testing.assert_array_equal(resample_indices(3, 7), [0, 0, 0, 1, 1, 2, 2])
    short = plan_reference_clips(3, 7)
    np.testing.assert_array_equal(short.frames, [0, 1, 2])
    np.testing.assert_array_equal(short.positions, [[0, 2], [0, 4], [0, 6]])
    assert short.left_out == 0


def test_short_video_is_scored_from_its_resampled_clip():
    video = _planar_video(3)
    pred = predict_video(ClipPosition(), video.model_input(), Convention(rootrel=False), "reference",
                         RunOptions(clip_len=7, flip=False))  # fmt: skip
    np.testing.assert_array_equal(pred.frames, [0, 1, 2])
    np.testing.assert_allclose(pred.joints[:, 5, 2], 0.002 * np.array([2, 4, 6]), atol=1e-7)
    np.testing.assert_allclose(pred.joints[..., :2], video.model_input()[..., :2], atol=1e-6)


@pytest.mark.parametrize(
    "frames, scored, left_out, mean_position",
    [("reference", 243, 157, 121.0),  # one clip, positions 0..242
     ("all", 400, 0, 121.0)],  # windows (0,243) + (157,400): frames 0..199 at 0..199, 200..399 at 43..242
)  # fmt: skip
def test_400_frame_video_counts_in_the_json(tmp_path, frames, scored, left_out, mean_position):
    ts = _test_set(_planar_video(400), _planar_video(20, "s_09_act_05_subact_02_ca_01", "Greeting"))
    ts.videos[1].excluded = True
    report = evaluate_h36m(ts, ClipPosition(), Convention(rootrel=False), RunOptions(clip_len=243), frames,
                           gt_input=True)  # fmt: skip
    info = json.loads(write_report(report, tmp_path / "r.json").read_text())["info"]
    assert (info["frames"], info["left_out_frames"], info["excluded_frames"]) == (scored, left_out, 20)
    assert info["frames_protocol"] == frames and "243" in info["frames_rule"] and info["clip_len"] == 243
    assert report.tables[0].rows[0].frames == scored
    assert (f"; {left_out} frames not scored" in report.tables[0].title) == bool(left_out)
    # depth error 1 px per clip position on joints 1..16, times FACTOR
    assert _p1(report) == pytest.approx(SIXTEEN_17 * FACTOR * mean_position, abs=1e-4)


# --- parity of `eval h36m` with the reference's evaluation ---------------------------------------------------------

CLIP = 27
LEFT = [4, 5, 6, 11, 12, 13]
RIGHT = [1, 2, 3, 14, 15, 16]
RES = {"54138969": (1000, 1002), "55011271": (1000, 1000), "58860488": (1000, 1000), "60457274": (1000, 1002)}
BLOCKED = {"s_09_act_05_subact_02", "s_09_act_10_subact_02", "s_09_act_13_subact_01"}
# (source, camera, action, frames): 2 whole clips + 6 tail; an excluded recording; 1 clip + 13 tail; a short video
PARITY_VIDEOS = [("s_09_act_02_subact_01_ca_01", "54138969", "Directions", 2 * CLIP + 6),
                 ("s_09_act_05_subact_02_ca_02", "55011271", "Greeting", 30),
                 ("s_11_act_04_subact_01_ca_04", "60457274", "Eating", CLIP + 13),
                 ("s_11_act_14_subact_02_ca_03", "58860488", "Walking", 20)]  # fmt: skip


def write_h36m_pkl(path: Path, videos, seed: int = 0) -> dict:
    """h36m_sh_conf_cam_source_final.pkl's layout: {'train', 'test'} of per-frame arrays (float32 like the original):
    joint_2d (N,17,2) px, confidence (N,17,1), joint3d_image (N,17,3) px (root depth 0), joints_2.5d_image (N,17,3)
    mm = joint3d_image * factor, 2.5d_factor (N,), camera_name (N,), source (list of N str), action (N,)."""
    rng = np.random.default_rng(seed)

    def part(rows):
        cols = {k: [] for k in ("joint_2d", "confidence", "joint3d_image", "joints_2.5d_image", "2.5d_factor")}
        names = {"camera_name": [], "source": [], "action": []}
        for source, camera, action, T in rows:
            img = np.concatenate([rng.uniform(350, 650, (1, 17, 2)), rng.uniform(-120, 120, (1, 17, 1))], -1)
            img = img + np.cumsum(rng.normal(0, 2, (T, 17, 3)), axis=0)
            img[..., 2] -= img[:, :1, 2]  # depth relative to the root
            factor = rng.uniform(4.5, 5.5) + 0.05 * np.sin(np.arange(T) / 7)
            cols["joint3d_image"].append(img)
            cols["joints_2.5d_image"].append(img * factor[:, None, None])
            cols["2.5d_factor"].append(factor)
            cols["joint_2d"].append(img[..., :2] + rng.normal(0, 3, (T, 17, 2)))
            cols["confidence"].append(rng.uniform(0.5, 1.0, (T, 17, 1)))
            for key, value in (("camera_name", camera), ("source", source), ("action", action)):
                names[key] += [value] * T
        out = {k: np.concatenate(v).astype(np.float32) for k, v in cols.items()}
        return out | {"camera_name": np.array(names["camera_name"]), "source": names["source"],
                      "action": np.array(names["action"])}  # fmt: skip

    data = {"train": part([("s_01_act_02_subact_01_ca_01", "54138969", "Directions", 12)]), "test": part(videos)}
    path.write_bytes(pickle.dumps(data))
    return data


def _flip(a: np.ndarray) -> np.ndarray:
    """Mirror (..., 17, C): x negated, left and right joints swapped."""
    out = a.copy()
    out[..., LEFT, :], out[..., RIGHT, :] = a[..., RIGHT, :], a[..., LEFT, :]
    out[..., 0] *= -1
    return out


def _procrustes_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(T,) mean joint error after the best similarity transform (no reflection) of each frame of pred onto gt."""
    errors = []
    for p, g in zip(pred, gt, strict=True):
        pc, gc = p - p.mean(0), g - g.mean(0)
        u, s, vt = np.linalg.svd(pc.T @ gc)
        d = np.sign(np.linalg.det(vt.T @ u.T))
        rot = vt.T @ np.diag([1, 1, d]) @ u.T
        scale = (s * [1, 1, d]).sum() / (pc**2).sum()
        errors.append(np.linalg.norm(scale * pc @ rot.T + g.mean(0) - g, axis=-1).mean())
    return np.array(errors)


def reference_evaluate(
    data: dict, model: torch.nn.Module, clip_len: int, rootrel: bool, gt_2d: bool, no_conf: bool = False
) -> dict:
    """MotionBERT's evaluation as REFERENCE.md describes it, with mocli's documented deterministic resampling of
    short videos (indices floor(k T / L), each frame's error taken from its last position in the clip).

    Returns {'P1': mean over actions, 'P2': ..., 'actions': {action: (P1, P2, frames)}, 'frames': scored}.
    """
    test = data["test"]
    n = len(test["source"])
    sources = np.array(test["source"])
    res = np.array([RES[c] for c in test["camera_name"]], dtype=np.float64)  # (N, 2) w, h
    w, h = res[:, 0, None], res[:, 1, None]
    xy = test["joint_2d"].astype(np.float64)
    w, h = w[..., None], h[..., None]  # (N, 1, 1)
    inputs = np.concatenate([xy[..., :1] / w * 2 - 1, xy[..., 1:] / w * 2 - h / w, test["confidence"]], axis=-1)
    clips = []
    starts = [0] + [i for i in range(1, n) if sources[i] != sources[i - 1]] + [n]
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        T = b - a
        if T >= clip_len:
            clips += [np.arange(a + k * clip_len, a + (k + 1) * clip_len) for k in range(T // clip_len)]
        else:
            clips.append(a + (np.arange(clip_len) * T) // clip_len)
    e1, e2, scored = np.zeros(n), np.zeros(n), np.zeros(n, dtype=bool)
    for clip in clips:
        if sources[clip[0]][:-6] in BLOCKED:
            continue
        x = torch.from_numpy(inputs[clip][None, ..., : 2 if no_conf else 3].astype(np.float32))
        with torch.no_grad():
            pred = (
                model(x)[0].double().numpy() + _flip(model(torch.from_numpy(_flip(x.numpy())))[0].double().numpy())
            ) / 2
        if rootrel:
            pred[:, 0, :] = 0
        if gt_2d:
            pred[..., :2] = inputs[clip][..., :2]
        cw, ch = res[clip[0]]
        pred[..., :2] = (pred[..., :2] + np.array([1, ch / cw])) * cw / 2
        pred[..., 2] = pred[..., 2] * cw / 2
        pred = pred * test["2.5d_factor"][clip].astype(np.float64)[:, None, None]
        gt = test["joints_2.5d_image"][clip].astype(np.float64)
        pred, gt = pred - pred[:, :1], gt - gt[:, :1]
        e1[clip] = np.linalg.norm(pred - gt, axis=-1).mean(-1)  # repeated frames: the last position's value
        e2[clip] = _procrustes_error(pred, gt)
        scored[clip] = True
    actions = {}
    for action in sorted(set(test["action"][scored])):
        sel = scored & (test["action"] == action)
        actions[str(action)] = (e1[sel].mean(), e2[sel].mean(), int(sel.sum()))
    return {"P1": np.mean([v[0] for v in actions.values()]), "P2": np.mean([v[1] for v in actions.values()]),
            "actions": actions, "frames": int(scored.sum())}  # fmt: skip


def _config_yaml(path: Path, rootrel: bool, gt_2d: bool, no_conf: bool) -> Path:
    path.write_text(f"""# MotionBERT-style config (flat keys)
maxlen: {CLIP}
dim_feat: 32
mlp_ratio: 2
depth: 2
dim_rep: 32
num_heads: 4
att_fuse: True
clip_len: {CLIP}
data_stride: 9
rootrel: {rootrel}
no_conf: {no_conf}
gt_2d: {gt_2d}
flip: True
subset_list: [H36M-SH]
""")
    return path


@pytest.mark.parametrize("rootrel, gt_2d, no_conf", [(True, False, False), (False, False, False),
                                                    (True, True, False), (True, False, True)])  # fmt: skip
def test_eval_h36m_matches_the_reference_evaluation(tmp_path, rootrel, gt_2d, no_conf):
    torch.manual_seed(0)
    ref = RefDSTformer(dim_in=2 if no_conf else 3, dim_feat=32, dim_rep=32, depth=2, num_heads=4, maxlen=CLIP).eval()
    src = tmp_path / "best_epoch.bin"
    torch.save({"model_pos": {f"module.{k}": v for k, v in ref.state_dict().items()}, "epoch": 3}, src)
    config = _config_yaml(tmp_path / "MB_ft_h36m.yaml", rootrel, gt_2d, no_conf)
    ckpt = tmp_path / "mb.pt"
    result = runner.invoke(app, ["weights", "import", "motionbert", str(src), "--config", str(config), "--out",
                                 str(ckpt)])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = write_h36m_pkl(tmp_path / "h36m_sh_conf_cam_source_final.pkl", PARITY_VIDEOS)
    out = tmp_path / "h36m.json"
    result = runner.invoke(app, ["eval", "h36m", "--data", str(tmp_path / "h36m_sh_conf_cam_source_final.pkl"),
                                 "--model", str(ckpt), "--json", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    expected = reference_evaluate(data, ref, CLIP, rootrel, gt_2d, no_conf)
    assert report["headline"]["P1 mpjpe (mm)"] == pytest.approx(expected["P1"], abs=1e-4)
    assert report["headline"]["P2 pa_mpjpe (mm)"] == pytest.approx(expected["P2"], abs=1e-4)
    rows = {r["name"]: r for r in report["tables"][0]["rows"]}
    assert set(rows) == set(expected["actions"]) == {"Directions", "Eating", "Walking"}
    for action, (p1, p2, frames) in expected["actions"].items():
        assert rows[action]["frames"] == frames
        assert rows[action]["mpjpe"] == pytest.approx(p1, abs=1e-4)
        assert rows[action]["pa_mpjpe"] == pytest.approx(p2, abs=1e-4)
    info = report["info"]
    assert info["frames"] == expected["frames"] == 2 * CLIP + CLIP + 20 and info["left_out_frames"] == 6 + 13
    convention = info["convention"]
    assert (convention["rootrel"], convention["gt_2d"], convention["no_conf"]) == (rootrel, gt_2d, no_conf)
    assert info["resampled_videos"] == ["s_11_act_14_subact_02_ca_03"] and info["frames_protocol"] == "reference"
    # the other root convention gives another number (the random weights' root output is far from 0; with gt_2d
    # only its depth is left to differ)
    other = reference_evaluate(data, ref, CLIP, not rootrel, gt_2d, no_conf)
    assert abs(other["P1"] - expected["P1"]) > (0.1 if gt_2d else 1.0)
