"""The generalisation benchmark: held-out rules, group selection and scoring with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from mocli.data.holdout import held_out_reason, is_held_out
from mocli.errors import InputError
from mocli.evaluation.generalisation import GROUPS, Group, score_generalisation, select_group
from mocli.evaluation.mocap import MocapSequence, subsample_sequence
from mocli.skeleton import H36M_17


def _walker(
    name: str,
    source: str,
    subject: str = "",
    action: str = "walk",
    frames: int = 120,
    fps: float = 120.0,
    seed: int = 0,
) -> MocapSequence:
    """A standing skeleton (metres, y up) swinging its limbs, moving forward."""
    rng = np.random.default_rng(seed)
    rest = np.zeros((17, 3))
    for j, parent in enumerate(H36M_17.parents):
        if parent >= 0:
            rest[j] = rest[parent] + rng.normal(0, 0.15, 3) + np.array([0.0, 0.1 if j >= 7 else -0.1, 0.0])
    t = np.arange(frames)[:, None, None] / fps
    joints = rest[None] + 0.05 * np.sin(2 * np.pi * t + np.arange(17)[None, :, None]) + [1.0, 1.0, 0.0]
    joints[..., 2] += 0.5 * t[..., 0]
    return MocapSequence(name=name, source=source, action=action, fps=fps, joints=joints, subject=subject)


def test_held_out_rules() -> None:
    assert held_out_reason("hdm05", "HDM_mm_squat1Reps_001_120", "mm", "squat1Reps") == "person"
    assert held_out_reason("hdm05", "HDM_bd_lieDownFloor_001_120", "bd", "lieDownFloor") == "motion"
    assert held_out_reason("hdm05", "HDM_tr_throwBasketball_001_120", "tr", "throwBasketball") == "motion"
    assert held_out_reason("hdm05", "HDM_bk_squat1Reps_001_120", "bk", "squat1Reps") is None
    assert held_out_reason("reactidle", "012_acted") == "person"
    assert not is_held_out("reactidle", "011_acted")
    assert not is_held_out("bandai", "dataset-1_walk_normal_001", "mm", "lieDownFloor")  # rules are per source


def test_subsample_keeps_every_kth_frame() -> None:
    seq = _walker("a", "hdm05", frames=10)
    sub = subsample_sequence(seq, 30.0)
    assert sub.fps == 30.0 and sub.num_frames == 3
    np.testing.assert_array_equal(sub.joints, seq.joints[[0, 4, 8]])
    assert subsample_sequence(seq, 0.0) is seq


def test_groups_select_their_sequences() -> None:
    seqs = [
        _walker("HDM_mm_jog_1", "hdm05", "mm", "jog"),
        _walker("HDM_bd_jog_1", "hdm05", "bd", "jog"),
        _walker("HDM_bd_lieDownFloor_1", "hdm05", "bd", "lieDownFloor"),
        _walker("012_acted", "reactidle", fps=24.0, frames=48),
        _walker("dataset-1_walk_normal_001", "bandai", fps=30.0),
    ]
    by_name = {g.name: g for g in GROUPS}
    people = select_group(seqs, by_name["people"])
    assert [s.name for s in people] == ["HDM_mm_jog_1"] and people[0].num_frames == 30
    assert [s.name for s in select_group(seqs, by_name["motions"])] == ["HDM_bd_lieDownFloor_1"]
    idle = select_group(seqs, by_name["idle"])
    assert [s.name for s in idle] == ["012_acted"] and idle[0].num_frames == 48  # 24 frames/s kept
    assert select_group(seqs, by_name["60fps"])[0].num_frames == 60
    for name in ("high", "low", "tele", "wide"):
        assert [s.name for s in select_group(seqs, by_name[name])] == ["HDM_mm_jog_1"]


def test_perfect_and_scaled_predictions() -> None:
    seqs = [_walker("HDM_mm_jog_1", "hdm05", "mm", "jog", frames=400, seed=1),
            _walker("HDM_tr_throwBasketball_1", "hdm05", "tr", "throwBasketball", frames=200, seed=2)]  # fmt: skip
    groups = [Group("people", "person"), Group("motions", "motion")]
    exact = score_generalisation(seqs, lambda w: w.targets, 27, {"clean": None}, groups=groups)
    rows = {r.name: r for r in exact.tables[0].rows}
    assert rows["people"].frames == 100 and rows["motions"].frames == 50
    assert max(abs(v) for r in rows.values() for v in r.values.values()) < 1e-9

    def doubled(w):  # twice the root-relative pose: PA-MPJPE 0, MPJPE = the mean root-relative joint distance
        return w.targets + (w.targets - w.targets[:, :, :1])

    report = score_generalisation(seqs, doubled, 27, {"clean": None}, groups=groups)
    rows = {r.name: r for r in report.tables[0].rows}
    for row in rows.values():
        assert row.values["clean_pa_mpjpe"] < 1e-6 and row.values["clean_pa_limbs"] < 1e-6
        assert row.values["clean_mpjpe"] > 100.0  # a body is far more than 10 cm across
    mean = (rows["people"].values["clean_mpjpe"] + rows["motions"].values["clean_mpjpe"]) / 2
    assert report.headline["clean mpjpe (mm)"] == pytest.approx(mean)  # each group weighs the same


def test_no_held_out_data_is_an_error() -> None:
    with pytest.raises(InputError, match="held-out"):
        score_generalisation([_walker("dataset-1_walk", "bandai")], lambda w: w.targets, 27, {"clean": None})


def test_training_with_holdout_never_loads_the_benchmark_sequences(tmp_path) -> None:
    from mocli.data.h5 import Sequence, write_dataset
    from mocli.data.sources import load_sources

    joints = np.zeros((30, 17, 3), np.float32)
    seqs = [Sequence(f"HDM_{who}_{what}_001_120", 120.0, joints3d=joints, source="hdm05", subject=who, action=what)
            for who, what in (("mm", "jog"), ("bd", "lieDownFloor"), ("bd", "jog"))]  # fmt: skip
    write_dataset(tmp_path / "hdm05.h5", seqs, kind="amc")
    write_dataset(tmp_path / "idle.h5", [Sequence("012_acted", 24.0, joints3d=joints, source="reactidle"),
                                         Sequence("011_acted", 24.0, joints3d=joints, source="reactidle")],
                  kind="bvh")  # fmt: skip
    paths = [tmp_path / "hdm05.h5", tmp_path / "idle.h5"]
    assert len(load_sources(paths)) == 5
    assert [s.name for s in load_sources(paths, holdout=True)] == ["HDM_bd_jog_001_120", "011_acted"]
