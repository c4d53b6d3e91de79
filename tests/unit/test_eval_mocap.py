"""mocli's mocap benchmark: known answers, the trainer's millimetres, determinism, every frame once."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mocli.config import DataConfig
from mocli.data.h5 import Sequence, write_dataset
from mocli.data.noise import load_noise_model
from mocli.errors import InputError
from mocli.evaluation.mocap import (
    MocapOptions,
    build_windows,
    data_config_of,
    load_mocap_sequences,
    options_from_data_config,
    score_mocap,
    sequence_camera,
    sequence_errors,
)
from mocli.evaluation.runner import gather_frames
from mocli.train import LiftTask


def _walk(rng: np.random.Generator, T: int) -> np.ndarray:
    """(T,17,3) metres, Y-up world: a body-sized skeleton moving forward, pelvis about 1 m up."""
    base = rng.uniform([-0.25, -0.9, -0.15], [0.25, 0.7, 0.15], (17, 3))
    base[0] = 0.0
    forward = np.linspace(0, 0.02 * T, T)[:, None, None] * np.array([1.0, 0.0, 0.3])
    return base + forward + np.array([0.0, 1.0, 0.0]) + rng.normal(0, 0.01, (T, 17, 3))


def make_mocap_h5(path: Path) -> Path:
    """Two val sequences of one source, one of another, one train sequence (not scored)."""
    rng = np.random.default_rng(0)
    seqs = [
        Sequence("dash_001", 30.0, joints3d=_walk(rng, 40), split="val", source="bandai", action="dash",
                 extra={"content": 2, "content_label": "dash"}),
        Sequence("bow_002", 30.0, joints3d=_walk(rng, 23), split="val", source="bandai", action="bow",
                 extra={"content": 4, "content_label": "bow"}),
        Sequence("salsa_03", 30.0, joints3d=_walk(rng, 35), split="val", source="cmu_dance", action="salsa"),
        Sequence("walk_004", 30.0, joints3d=_walk(rng, 50), split="train", source="bandai", action="walk"),
    ]  # fmt: skip
    write_dataset(path, seqs, kind="bvh", source="mixed")
    return path


@pytest.fixture
def sequences(tmp_path):
    return load_mocap_sequences([make_mocap_h5(tmp_path / "mocap.h5")])


OPTS = MocapOptions(clip_len=16, seed=0)


def _echo_xy(windows):
    """A stand-in model: the input's x, y and depth 0 (errors depend on cameras and noise)."""
    out = np.zeros_like(windows.targets)
    out[..., :2] = windows.inputs[..., :2]
    return out


def test_loads_the_val_split_with_labels(sequences):
    assert [(s.name, s.source, s.action, s.num_frames) for s in sequences] == [
        ("bow_002", "bandai", "bow", 23), ("dash_001", "bandai", "dash", 40), ("salsa_03", "cmu_dance", "salsa", 35)
    ]  # fmt: skip


def test_ground_truth_prediction_scores_zero_and_counts_every_frame_once(sequences):
    variants = {"clean": None, "noisy": load_noise_model()}
    report = score_mocap(sequences, lambda w: w.targets, OPTS, variants)
    for value in report.headline.values():
        assert value == pytest.approx(0.0, abs=1e-6)
    by_source = {t.title: t for t in report.tables}["mocap val - clean 2D - per source"]
    assert {r.name: r.frames for r in by_source.rows} == {"bandai": 63, "cmu_dance": 35}
    assert report.info["frames"] == 98 and report.info["sequences"] == 3
    assert len(report.tables) == 4


def test_zero_prediction_gives_the_mean_joint_distance_from_the_root(sequences):
    # Orthographic projection: the 2.5D label times the trainer's factor is the exact camera-frame pose, so
    # predicting all joints at the root errs by each joint's distance from the pelvis (a rotation-free quantity).
    opts = replace(OPTS, projection="orthographic")
    seq = sequences[1]
    windows = build_windows(seq, sequence_camera(seq, 0, opts.view), opts, None)
    errors = sequence_errors(np.zeros_like(windows.targets), windows)
    rel_mm = 1000 * (seq.joints - seq.joints[:, :1])
    np.testing.assert_allclose(errors["mpjpe"], np.linalg.norm(rel_mm, axis=-1).mean(-1), rtol=1e-9)


def test_millimetres_match_the_trainers_validation(sequences):
    seq = sequences[1]  # 40 frames, clip 20: two windows, no overlap, so each frame appears once in the batch
    opts = replace(OPTS, clip_len=20)
    windows = build_windows(seq, sequence_camera(seq, 0, opts.view), opts, load_noise_model())
    pred = _echo_xy(windows)
    ours = sequence_errors(pred, windows)
    target = windows.targets - windows.targets[:, :, :1]
    batch = {"input": windows.inputs, "target": target, "weight_2d": np.ones(target.shape[:3]),
             "factor": windows.factors, "has_3d": np.ones(len(target))}  # fmt: skip
    batch = {k: torch.from_numpy(np.asarray(v, dtype=np.float64)) for k, v in batch.items()}
    sums = LiftTask().eval_sums(lambda x: torch.from_numpy(pred), batch)
    assert float(sums["mpjpe_mm"] / sums["joints_3d"]) == pytest.approx(ours["mpjpe"].mean(), rel=1e-5)
    assert float(sums["pa_mpjpe_mm"] / sums["joints_3d"]) == pytest.approx(ours["pa_mpjpe"].mean(), rel=1e-5)


def test_fixed_seeds_give_identical_figures_and_another_seed_differs(sequences):
    variants = {"clean": None, "noisy": load_noise_model()}
    a = score_mocap(sequences, _echo_xy, OPTS, variants)
    b = score_mocap(sequences, _echo_xy, OPTS, variants)
    assert a.to_dict() == b.to_dict()
    assert a.headline["noisy mpjpe (mm)"] > a.headline["clean mpjpe (mm)"] > 0
    c = score_mocap(sequences, _echo_xy, replace(OPTS, seed=1), variants)
    assert c.headline["clean mpjpe (mm)"] != a.headline["clean mpjpe (mm)"]


def test_acceleration_error_of_a_known_wobble(sequences):
    seq = sequences[1]  # 40 frames; windows (0,16) (16,32) (24,40) all start on even frames
    windows = build_windows(seq, sequence_camera(seq, 0, OPTS.view), OPTS, None)
    pred = windows.targets.copy()
    pred[:, ::2, 5, 0] += 0.01  # joint 5's x jumps by 0.01 normalised units on even frames
    total, count = sequence_errors(pred, windows)["accel"]
    factor_mm = 1000 * gather_frames(list(windows.factors), windows.plan)  # (T,) mm per normalised unit
    wobble = 0.01 * factor_mm * (np.arange(40) % 2 == 0)  # (T,) mm
    expected = np.abs(wobble[2:] - 2 * wobble[1:-1] + wobble[:-2]).sum()
    assert count == (40 - 2) * 17
    assert total == pytest.approx(expected, rel=1e-9)


def test_options_follow_the_models_training_config():
    info = {"train_config": {"data": {"projection": "orthographic", "scale_range": [1.0, 1.4], "fps": 15.0,
                                      "fov_deg": [40.0, 50.0], "clip_len": 27}}}  # fmt: skip
    cfg = data_config_of(info)
    assert isinstance(cfg, DataConfig) and cfg.projection == "orthographic"
    opts = options_from_data_config(cfg, clip_len=27, seed=3)
    assert (opts.box_ratio, opts.fps, opts.view.fov_deg, opts.seed) == (pytest.approx(1.2), 15.0, (40.0, 50.0), 3)
    assert data_config_of({}).projection == "perspective"


def test_no_val_sequences_is_an_input_error(tmp_path):
    path = make_mocap_h5(tmp_path / "m.h5")
    with pytest.raises(InputError, match="no 3D sequences in split 'test'"):
        load_mocap_sequences([path], split="test")
