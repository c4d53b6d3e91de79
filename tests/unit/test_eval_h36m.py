"""Human3.6M evaluation on fixtures in the three layouts, with known answers built in."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from mocli.data.cameras import ViewRange, sample_camera
from mocli.data.converters import h36m as h36m_data
from mocli.data.converters.common import ConvertOptions, Task
from mocli.data.h5 import write_dataset
from mocli.errors import InputError
from mocli.evaluation.calibration import fit_camera_dlt
from mocli.evaluation.h36m import (
    H36MVideo,
    canonical_action,
    denormalise_h36m,
    load_test_set,
    normalise_h36m,
    score_h36m,
)
from mocli.evaluation.runner import RunOptions, predict_sequence

W, H = 1000, 1002  # camera 54138969
# (source, camera, action, frames, factor mm/px): two S9 actions, one broken S9 recording, one S11 action.
TEST_VIDEOS = [
    ("s_09_act_02_subact_01_ca_01", "54138969", "Directions", 30, 2.0),
    ("s_09_act_05_subact_02_ca_01", "54138969", "Greeting", 20, 3.0),  # broken: excluded
    ("s_11_act_04_subact_01_ca_02", "55011271", "Eating", 50, 4.0),
]


def _poses_px(rng: np.random.Generator, T: int) -> np.ndarray:
    """(T,17,3) image-space joints: x, y pixels around the image centre, depth in pixels."""
    base = rng.uniform(-120, 120, (17, 3))
    drift = np.cumsum(rng.normal(0, 2, (T, 1, 3)), axis=0)
    return np.array([500.0, 500.0, 0.0]) + base + drift + rng.normal(0, 3, (T, 17, 3))


def make_pkl(path: Path) -> dict:
    """A MotionBERT-style h36m pkl: a train part (S1) and the TEST_VIDEOS, every value float32 like the original."""
    rng = np.random.default_rng(0)

    def part(videos):
        cols = {k: [] for k in ("joint_2d", "confidence", "joint3d_image", "joints_2.5d_image", "2.5d_factor")}
        cols |= {"camera_name": [], "source": [], "action": []}
        for source, camera, action, T, factor in videos:
            img = _poses_px(rng, T)
            cols["joint3d_image"].append(img)
            cols["joints_2.5d_image"].append(img * factor)
            cols["2.5d_factor"].append(np.full(T, factor))
            cols["joint_2d"].append(img[..., :2] + rng.normal(0, 4, (T, 17, 2)))
            cols["confidence"].append(rng.uniform(0.5, 1, (T, 17, 1)))
            cols["camera_name"] += [camera] * T
            cols["source"] += [source] * T
            cols["action"] += [action] * T
        out = {
            k: np.concatenate(v).astype(np.float32)
            for k, v in cols.items()
            if k not in ("camera_name", "source", "action")
        }
        out["action"] = np.array(cols["action"])
        return out | {"camera_name": np.array(cols["camera_name"]), "source": cols["source"]}

    data = {"train": part([("s_01_act_02_subact_01_ca_01", "54138969", "Directions", 12, 5.0)]),
            "test": part(TEST_VIDEOS)}  # fmt: skip
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return data


@pytest.fixture
def pkl_path(tmp_path) -> Path:
    make_pkl(tmp_path / "h36m_sh_conf_cam_source_final.pkl")
    return tmp_path / "h36m_sh_conf_cam_source_final.pkl"


def _label_norm(video: H36MVideo) -> np.ndarray:
    """The ground truth label of a video in the model's normalised units (what a perfect model outputs)."""
    w, h = video.image_size
    return np.concatenate([normalise_h36m(video.joints_image[..., :2], w, h), video.joints_image[..., 2:] / w * 2], -1)


# --- pure maths -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, action",
    [("s_09_act_05_subact_02_ca_01", "Greeting"), ("S9_Directions 1", "Directions"), ("TakingPhoto 1", "Photo"),
     ("S11:WalkingDog 1:55011271", "WalkDog"), ("WalkTogether", "WalkTogether"),
     ("s_11_act_12_subact_01_ca_03", "Photo"), ("Sitting Down 2", "SittingDown"), ("SittingDown", "SittingDown")],
)  # fmt: skip
def test_canonical_action(name, action):
    assert canonical_action(name) == action


def test_normalisation_round_trip():
    rng = np.random.default_rng(1)
    px = rng.uniform(0, 1000, (5, 17, 3))
    norm = np.concatenate([normalise_h36m(px[..., :2], W, H), px[..., 2:] / W * 2], axis=-1)
    np.testing.assert_allclose(denormalise_h36m(norm, W, H), px, atol=1e-9)
    np.testing.assert_allclose(normalise_h36m(np.array([[0.0, 0.0], [W, H]]), W, H), [[-1, -H / W], [1, H / W]])


# --- the pkl: exclusion, known offsets, per-action vs per-frame means --------------------------------------------


def test_pkl_test_set_excludes_the_broken_s9_recording(pkl_path):
    ts = load_test_set(pkl_path)
    assert ts.layout == "pkl"
    assert [v.name for v in ts.videos] == [v[0] for v in TEST_VIDEOS]  # the S1 train part is left out
    assert [v.name for v in ts.excluded] == ["s_09_act_05_subact_02_ca_01"]
    directions = ts.videos[0]
    assert (directions.action, directions.camera, directions.image_size) == ("Directions", "54138969", (1000, 1002))
    assert ts.videos[2].image_size == (1000, 1000)


def test_known_offset_gives_exact_mpjpe_and_action_vs_frame_means(pkl_path):
    ts = load_test_set(pkl_path)
    offset_px = np.array([3.0, 4.0, 0.0])  # 5 px; moving the root by -offset moves the 16 other joints by +offset

    def predict(video):
        assert not video.excluded, "excluded videos must not be run"
        pred = _label_norm(video)
        pred[:, 0] -= offset_px / video.image_size[0] * 2
        return pred

    report = score_h36m(ts, predict)
    table = report.tables[0]
    rows = {r.name: r for r in table.rows}
    assert list(rows) == ["Directions", "Eating"]
    assert rows["Directions"].frames == 30 and rows["Eating"].frames == 50
    per_frame_mm = {"Directions": 16 / 17 * 5 * 2.0, "Eating": 16 / 17 * 5 * 4.0}  # mm per px factors 2 and 4
    for action, expected in per_frame_mm.items():
        assert rows[action].values["mpjpe"] == pytest.approx(expected, abs=1e-3)
    over_actions = (per_frame_mm["Directions"] + per_frame_mm["Eating"]) / 2
    over_frames = (30 * per_frame_mm["Directions"] + 50 * per_frame_mm["Eating"]) / 80
    assert table.summary_row("mean over actions").values["mpjpe"] == pytest.approx(over_actions, abs=1e-3)
    assert table.summary_row("mean over frames").values["mpjpe"] == pytest.approx(over_frames, abs=1e-3)
    assert report.headline["P1 mpjpe (mm)"] == pytest.approx(over_actions, abs=1e-3)
    assert report.info["frames"] == 80 and report.info["excluded_frames"] == 20
    assert report.info["excluded"] == [{"name": "s_09_act_05_subact_02_ca_01", "frames": 20}]
    assert "Greeting" in report.info["missing_actions"]


def test_similarity_transform_gives_zero_pa_mpjpe(pkl_path):
    ts = load_test_set(pkl_path)
    angle = 0.4
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])

    def predict(video):
        return 1.3 * _label_norm(video) @ rot.T + np.array([0.1, -0.2, 0.3])

    report = score_h36m(ts, predict)
    means = report.tables[0].summary_row("mean over frames").values
    assert means["pa_mpjpe"] == pytest.approx(0.0, abs=1e-3)
    assert means["mpjpe"] > 10.0
    only_p1 = score_h36m(ts, predict, protocols=[1])
    assert list(only_p1.headline) == ["P1 mpjpe (mm)"] and "pa_mpjpe" not in only_p1.tables[0].rows[0].values


def test_hdf5_from_the_pkl_scores_the_same(pkl_path, tmp_path):
    task = Task(path=pkl_path, relpath=pkl_path.name, source="h36m")
    sequences = list(h36m_data.convert(task, ConvertOptions(split_rule="native")))
    write_dataset(tmp_path / "h36m.h5", sequences, kind="h36m", source="h36m")
    from_pkl, from_h5 = load_test_set(pkl_path), load_test_set(tmp_path / "h36m.h5")
    assert from_h5.layout == "h5" and [v.name for v in from_h5.excluded] == ["s_09_act_05_subact_02_ca_01"]

    def predict(video):
        return _label_norm(video) * 1.1  # 10 % too large: a non-zero P1

    a, b = score_h36m(from_pkl, predict), score_h36m(from_h5, predict)
    for key in a.headline:
        assert a.headline[key] == pytest.approx(b.headline[key], rel=1e-5)


# --- the VideoPose3D npz pair: calibration, exclusion by trial name -------------------------------------------


def _world_poses(rng: np.random.Generator, T: int) -> np.ndarray:
    """(T,32,3) metres, Z-up world: a body-sized point cloud walking about near the origin, 1 m above the floor."""
    base = rng.uniform([-0.25, -0.15, -0.9], [0.25, 0.15, 0.8], (32, 3))
    walk = np.cumsum(rng.normal(0, 0.01, (T, 1, 3)), axis=0) * np.array([1, 1, 0.1])
    return base + walk + np.array([0.0, 0.0, 1.0]) + rng.normal(0, 0.02, (T, 32, 3))


def make_npz_pair(folder: Path) -> dict:
    """data_3d_h36m.npz + data_2d_h36m_cpn_ft_h36m_dbb.npz; 2D = exact projections through 4 known cameras."""
    rng = np.random.default_rng(2)
    actions = {"S1": {"Walking": 15}, "S9": {"Directions": 30, "Greeting": 20, "Greeting 1": 25},
               "S11": {"Eating 1": 40}}  # fmt: skip
    pos3d = {s: {a: _world_poses(rng, T) for a, T in acts.items()} for s, acts in actions.items()}
    view = ViewRange(distance_m=(4.0, 6.0), pitch_deg=(0.0, 20.0), fov_deg=(45.0, 55.0), image_size=(1000, 1000))
    cameras = {s: [sample_camera(rng, np.concatenate(list(a.values())), "z", view) for _ in range(4)] for s, a in
               pos3d.items()}  # fmt: skip
    pos2d = {s: {a: [_project(cam, p[:, h36m_data.H36M_32_TO_17]) for cam in cameras[s]] for a, p in acts.items()}
             for s, acts in pos3d.items()}  # fmt: skip
    np.savez(folder / "data_3d_h36m.npz", positions_3d=np.array(pos3d, dtype=object))
    np.savez(folder / "data_2d_h36m_cpn_ft_h36m_dbb.npz", positions_2d=np.array(pos2d, dtype=object))
    return {"cameras": cameras, "pos3d": pos3d}


def _project(cam, points: np.ndarray) -> np.ndarray:
    pc = points @ cam.R.T + cam.t
    return (cam.focal * pc[..., :2] / pc[..., 2:] + cam.centre).astype(np.float32)


def test_dlt_recovers_a_known_camera():
    rng = np.random.default_rng(3)
    points = _world_poses(rng, 40).reshape(-1, 3)
    cam = sample_camera(rng, points.reshape(-1, 32, 3), "z", ViewRange())
    fitted = fit_camera_dlt(points, _project(cam, points).astype(np.float64))
    np.testing.assert_allclose(fitted.R, cam.R, atol=1e-6)
    np.testing.assert_allclose(fitted.t, cam.t, atol=1e-5)
    assert fitted.focal == pytest.approx(cam.focal, rel=1e-6)


def test_npz_pair_calibrates_and_excludes_by_trial_name(tmp_path):
    truth = make_npz_pair(tmp_path)
    ts = load_test_set(tmp_path / "data_2d_h36m_cpn_ft_h36m_dbb.npz")  # the 3D file is found beside it
    assert ts.layout == "npz" and len(ts.paths) == 2
    assert {v.subject for v in ts.videos} == {"S9", "S11"} and len(ts.videos) == 4 * 4
    assert sorted({v.name.split(":")[1] for v in ts.excluded}) == ["Greeting 1"]  # S9 Greeting trial 2
    video = next(v for v in ts.videos if v.name == "S9:Directions:55011271")
    cam = truth["cameras"]["S9"][1]
    world = truth["pos3d"]["S9"]["Directions"][:, h36m_data.H36M_32_TO_17]
    root_depth = (world[:, 0] @ cam.R.T + cam.t)[:, 2]
    np.testing.assert_allclose(video.factor, 1000 * root_depth / cam.focal, rtol=1e-5)
    np.testing.assert_allclose(video.joints_image[..., :2], video.keypoints2d[..., :2], atol=1e-2)
    report = score_h36m(ts, _label_norm)
    assert report.headline["P1 mpjpe (mm)"] == pytest.approx(0.0, abs=1e-3)
    assert report.info["frames"] == 4 * (30 + 20 + 40) and report.info["excluded_frames"] == 4 * 25
    assert [r.name for r in report.tables[0].rows] == ["Directions", "Eating", "Greeting"]
    assert any("DLT" in note for note in report.info["notes"])


def test_bad_data_paths_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_test_set(tmp_path / "missing.pkl")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(InputError, match="expected one"):
        load_test_set(tmp_path / "x.txt")
    np.savez(tmp_path / "data_2d_h36m_cpn_ft_h36m_dbb.npz", positions_2d=np.array({}, dtype=object))
    with pytest.raises(InputError, match="data_3d_h36m.npz"):
        load_test_set(tmp_path / "data_2d_h36m_cpn_ft_h36m_dbb.npz")


# --- running a model over whole videos ------------------------------------------------------------------------


class _EchoXY(torch.nn.Module):
    """Returns the input's x, y with depth 0: flip-equivariant, so flip TTA returns the same."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x[..., :2], torch.zeros_like(x[..., 2:])], dim=-1)


@pytest.mark.parametrize("flip", [False, True])
def test_windows_cover_every_frame_with_its_own_input(flip):
    x = np.random.default_rng(4).uniform(-1, 1, (30, 17, 3))
    out = predict_sequence(_EchoXY(), x, RunOptions(clip_len=8, flip=flip, batch_size=3))
    np.testing.assert_allclose(out[..., :2], x[..., :2], atol=1e-6)  # windows (0,8) (8,16) (16,24) (22,30)
    np.testing.assert_array_equal(out[..., 2], 0)
    short = predict_sequence(_EchoXY(), x[:5], RunOptions(clip_len=8, flip=flip))  # padded to 8, 5 frames back
    np.testing.assert_allclose(short[..., :2], x[:5, :, :2], atol=1e-6)


def test_model_on_ground_truth_2d_gives_the_depth_error(pkl_path):
    ts = load_test_set(pkl_path)
    report = score_h36m(ts, lambda v: predict_sequence(_EchoXY(), v.model_input(gt_input=True), RunOptions(8)))
    expected = []  # x, y exact; the error is the root-relative depth of the ground truth, in mm
    for v in ts.scored:
        depth_mm = v.joints_mm[..., 2] - v.joints_mm[:, :1, 2]
        expected.append(np.abs(depth_mm).mean())
    rows = report.tables[0].rows
    assert [r.values["mpjpe"] for r in rows] == pytest.approx(expected, abs=1e-3)
