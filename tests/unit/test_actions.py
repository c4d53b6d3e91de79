"""mocli.actions: windows and their frame ranges, top-k rankings and the whole-clip merge on hand-made scores, the
model input equal to the trainer's validation sample, and the class names a checkpoint carries."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mocli
from mocli.actions import (
    action_input,
    action_windows,
    clip_probs,
    load_action_model,
    summarise_actions,
    top_k,
    window_inputs,
)
from mocli.config import DataConfig
from mocli.data import h5
from mocli.data.finetune_data import ActionClipDataset, LabelledSequence
from mocli.errors import MocliError
from mocli.models.checkpoint import build_checkpoint, save_checkpoint
from mocli.models.heads import ActionHead, HeadModel

NAMES = ["walk", "run", "wave", "bow"]


def test_windows_cover_every_frame_half_overlapping_and_end_on_the_last():
    assert action_windows(100, 40) == [(0, 40), (20, 60), (40, 80), (60, 100)]
    assert action_windows(90, 40) == [(0, 40), (20, 60), (40, 80), (50, 90)]  # the last shifted back
    assert action_windows(30, 40) == [(0, 30)]  # shorter than a clip: one window
    assert action_windows(100, 40, stride=40) == [(0, 40), (40, 80), (60, 100)]


def test_top_k_orders_by_score_with_ties_to_the_lower_id():
    scores = np.array([0.1, 0.4, 0.1, 0.4])
    assert [r["id"] for r in top_k(scores, 3, NAMES)] == [1, 3, 0]
    assert top_k(scores, 1, NAMES) == [{"id": 1, "label": "run", "score": 0.4}]
    assert len(top_k(scores, 10, NAMES)) == 4


def test_clip_scores_are_the_mean_of_the_used_windows_and_rankings_per_window():
    probs = np.array(
        [
            [0.7, 0.1, 0.1, 0.1],  # window 0: walk
            [0.2, 0.6, 0.1, 0.1],  # window 1: run
            [0.0, 0.0, 0.0, 1.0],  # window 2: no person in it -> not counted
            [0.1, 0.5, 0.3, 0.1],  # window 3: run
        ]
    )
    windows = [(0, 30), (15, 45), (30, 60), (45, 75)]
    np.testing.assert_allclose(clip_probs(probs, [True, True, False, True]), [1.0 / 3, 1.2 / 3, 0.5 / 3, 0.1])
    out = summarise_actions(probs, windows, np.array([30, 30, 0, 12]), fps=30.0, names=NAMES, k=2)
    # by hand: mean of windows 0, 1, 3 = [0.3333, 0.4, 0.1667, 0.1] -> run, walk
    assert [(r["label"], r["score"]) for r in out["clip"]["top"]] == [("run", 0.4), ("walk", 0.333333)]
    assert out["clip"]["windows_used"] == 3
    w = out["windows"]
    assert [(r["start_frame"], r["end_frame"], r["start_s"], r["end_s"]) for r in w] == [
        (0, 30, 0.0, 1.0), (15, 45, 0.5, 1.5), (30, 60, 1.0, 2.0), (45, 75, 1.5, 2.5)
    ]  # fmt: skip
    assert [r["label"] for r in w[0]["top"]] == ["walk", "run"] and w[2]["top"] == []
    assert [r["label"] for r in w[3]["top"]] == ["run", "wave"] and w[3]["frames_with_person"] == 12
    unknown_fps = summarise_actions(probs, windows, np.ones(4), fps=0.0, names=NAMES, k=1)
    assert unknown_fps["windows"][1]["start_s"] is None


def test_action_input_is_the_validation_sample_of_the_trainer(tmp_path):
    """The same keypoints give the same (M, L, 17, 3) input through infer's path and ActionClipDataset(train=False)."""
    rng = np.random.default_rng(0)
    kp = np.concatenate([rng.uniform(100, 700, (2, 37, 17, 2)), rng.uniform(0.2, 1, (2, 37, 17, 1))], axis=-1)
    kp[1, ..., 2] *= 0.5  # the second person is less confident
    path = tmp_path / "a.h5"
    h5.write_dataset(path, [h5.Sequence(name="s", fps=30.0, keypoints2d=kp.astype(np.float32), label=1)], kind="t")
    cfg = DataConfig(clip_len=27, scale_range=(1.0, 3.0))
    ds = ActionClipDataset([LabelledSequence(str(path), "s", 37, "val", 1)], cfg, max_persons=2, train=False)
    expected = ds[0]["input"].numpy()
    got = action_input(kp.astype(np.float32).astype(np.float64), 27, 2, 2.0)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    # a full window is not resampled, and one person is zero-padded to the head's count
    one = window_inputs(kp[0], [(0, 27), (10, 37)], 27, 2, 2.0)
    assert one.shape == (2, 2, 27, 17, 3) and not one[:, 1].any()
    np.testing.assert_allclose(one[1, 0], action_input(kp[0, 10:37], 27, 1, 2.0)[0], atol=1e-6)


def test_missing_frames_are_zeroed_like_masked_joints():
    kp = np.ones((30, 17, 3))
    kp[..., :2] = np.random.default_rng(1).uniform(0, 100, (30, 17, 2))
    kp[5] = np.nan
    x = window_inputs(kp, [(0, 30)], 30, 1, 1.0)
    assert np.isfinite(x).all() and not x[0, 0, 5].any() and x[0, 0, 6, :, 2].min() == 1.0


def _action_checkpoint(path, classes=None, train_config=None):
    torch.manual_seed(0)
    encoder = mocli.create_model("dstformer-tiny", maxlen=27)
    config = {"dim_rep": 32, "num_joints": 17, "num_classes": 4, "hidden_dim": 16, "dropout": 0.5}
    model = HeadModel(encoder, ActionHead(**config), "action", "action", config, classes)
    enc, heads = model.checkpoint_parts()
    return save_checkpoint(build_checkpoint(enc, "dstformer-tiny", heads=heads, train_config=train_config), path)


def test_class_names_and_training_settings_come_from_the_checkpoint(tmp_path):
    train = {"task": "action", "data": {"clip_len": 20, "scale_range": [1.0, 2.0]}, "head": {"max_persons": 1}}
    a = load_action_model(_action_checkpoint(tmp_path / "a.pt", NAMES, train))
    assert a.class_names == NAMES and (a.clip_len, a.max_persons, a.box_ratio) == (20, 1, 1.5)
    assert not a.model.training
    # no names stored (e.g. imported weights) and no training config: ids as names, the action preset's settings
    b = load_action_model(_action_checkpoint(tmp_path / "b.pt"))
    assert b.class_names == ["0", "1", "2", "3"] and (b.clip_len, b.max_persons, b.box_ratio) == (27, 2, 2.0)


def test_a_checkpoint_without_an_action_head_is_a_one_line_error(tmp_path):
    path = save_checkpoint(build_checkpoint(mocli.create_model("dstformer-tiny"), "dstformer-tiny"), tmp_path / "l.pt")
    with pytest.raises(MocliError, match="no action head.*mocli finetune action") as e:
        load_action_model(path)
    assert "\n" not in str(e.value)
