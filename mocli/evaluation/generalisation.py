"""mocli's generalisation benchmark: lifting people, motions and cameras that training never saw.

The in-domain benchmark (``mocli eval mocap``) scores held-back takes of the training actors through cameras drawn
from the training ranges, so it cannot tell a lifter that learned human motion from one that learned its actors.
This benchmark scores only held-out sequences (``mocli.data.holdout``) and fixes its own cameras, whatever the model
was trained with, so two lifters are always compared on the same inputs:

========== ================================================ ================================================
group      sequences                                        cameras
========== ================================================ ================================================
people     HDM05 actors mm, tr (every motion but the        pitch -15..30 deg, 3-8 m, FOV 35-75 deg, roll
           held-out ones)                                   +-10 deg (the range of mocli's first lifters)
motions    HDM05 lieDownFloor and throwBasketball, all      the same
           actors
idle       ReActIdle person 012                             the same
high       as people                                        pitch 45..60 deg
low        as people                                        pitch -20..-5 deg, 2-5 m
tele       as people                                        FOV 10-20 deg, 10-20 m
wide       as people                                        FOV 90-110 deg, 1.5-3 m
60fps      as people, at 60 frames/s instead of 30          as people
========== ================================================ ================================================

Sequences are subsampled to about 30 frames/s (every 4th frame of 120 frames/s mocap; ReActIdle keeps 24), except
in ``60fps``. Everything else is ``mocli.evaluation.mocap``'s protocol: one fixed seeded camera per sequence and
group, windows of the model's clip length, clean 2D and MotionBERT's detection noise, flip test-time augmentation,
MPJPE, PA-MPJPE and PA-MPJPE of the 12 limb joints (hips, knees, ankles, shoulders, elbows, wrists: the joints
every rig places alike) in mm per frame. The headline is the mean over groups (each group weighs the same) per variant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mocli.data.cameras import ViewRange
from mocli.data.holdout import held_out_reason
from mocli.data.noise import NoiseModel
from mocli.errors import InputError
from mocli.evaluation.mocap import MocapOptions, MocapSequence, MocapWindows, score_mocap, subsample_sequence
from mocli.evaluation.report import Metric, Report, ScoreSums, build_table

__all__ = ["Group", "GROUPS", "STANDARD_VIEW", "select_group", "score_generalisation"]

STANDARD_VIEW = ViewRange(pitch_deg=(-15.0, 30.0), roll_deg=10.0, distance_m=(3.0, 8.0), fov_deg=(35.0, 75.0))
BASE_FPS = 30.0


@dataclass(frozen=True)
class Group:
    """One row of the benchmark: which held-out sequences (``kind``: 'person', 'motion' or 'idle'), seen how."""

    name: str
    kind: str
    view: ViewRange = STANDARD_VIEW
    fps: float = BASE_FPS
    description: str = ""


GROUPS: tuple[Group, ...] = (
    Group("people", "person", description="HDM05 actors mm, tr; cameras of the first lifters' training range"),
    Group("motions", "motion", description="HDM05 lieDownFloor, throwBasketball (all actors)"),
    Group("idle", "idle", description="ReActIdle person 012"),
    Group("high", "person", replace(STANDARD_VIEW, pitch_deg=(45.0, 60.0)), description="pitch 45-60 deg"),
    Group(
        "low",
        "person",
        replace(STANDARD_VIEW, pitch_deg=(-20.0, -5.0), distance_m=(2.0, 5.0)),
        description="pitch -20 to -5 deg, 2-5 m",
    ),  # fmt: skip
    Group(
        "tele",
        "person",
        replace(STANDARD_VIEW, fov_deg=(10.0, 20.0), distance_m=(10.0, 20.0)),
        description="FOV 10-20 deg, 10-20 m",
    ),  # fmt: skip
    Group(
        "wide",
        "person",
        replace(STANDARD_VIEW, fov_deg=(90.0, 110.0), distance_m=(1.5, 3.0)),
        description="FOV 90-110 deg, 1.5-3 m",
    ),  # fmt: skip
    Group("60fps", "person", fps=60.0, description="people at 60 frames/s"),
)

METRICS = [
    Metric("clean_mpjpe", "MPJPE clean"),
    Metric("clean_pa_mpjpe", "PA clean"),
    Metric("clean_pa_limbs", "PA limbs clean"),
    Metric("noisy_mpjpe", "MPJPE noisy"),
    Metric("noisy_pa_mpjpe", "PA noisy"),
    Metric("noisy_pa_limbs", "PA limbs noisy"),
]


def _kind(seq: MocapSequence) -> str | None:
    reason = held_out_reason(seq.source, seq.name, seq.subject, seq.action)
    if reason is None:
        return None
    if seq.source == "reactidle":
        return "idle"
    return reason


def select_group(sequences: Sequence[MocapSequence], group: Group) -> list[MocapSequence]:
    """The held-out sequences of ``group``, subsampled to the group's frame rate."""
    return [subsample_sequence(s, group.fps) for s in sequences if _kind(s) == group.kind]


def score_generalisation(
    sequences: Sequence[MocapSequence],
    predict: Callable[[MocapWindows], np.ndarray],
    clip_len: int,
    variants: dict[str, NoiseModel | None],
    seed: int = 0,
    groups: Sequence[Group] = GROUPS,
    info: dict[str, Any] | None = None,
    on_group: Callable[[Group, int], None] | None = None,
) -> Report:
    """Score every group (see the module docstring) and tabulate them side by side.

    Args:
        sequences: world-frame mocap at its native rate (``load_mocap_sequences(paths, split='all')``); only the
            held-out ones are used.
        predict: (N,L,17,3) normalised outputs of ``windows.inputs``.
        clip_len: frames per window.
        variants: {'clean': None, 'noisy': noise model} (either may be absent).
        on_group: called with each group and its frame count once it is scored (progress).
    Raises:
        InputError: no held-out sequence for any group (the data lacks HDM05 and ReActIdle).
    """
    sums = ScoreSums()
    details: dict[str, Any] = {}
    scored = 0
    for group in groups:
        chosen = select_group(sequences, group)
        if not chosen:
            continue
        opts = MocapOptions(clip_len=clip_len, view=group.view, fps=group.fps, seed=seed, split="held-out")
        report = score_mocap(chosen, predict, opts, variants)
        frames = int(sum(s.num_frames for s in chosen))
        for variant in variants:
            for metric in ("mpjpe", "pa_mpjpe", "pa_limbs"):
                value = report.headline[f"{variant} {metric} (mm)"]
                sums.add_total(group.name, f"{variant}_{metric}", value * frames, frames)
        sums.add_frames(group.name, frames)
        details[group.name] = {
            "description": group.description,
            "sequences": len(chosen),
            "frames": frames,
            "fps": group.fps,
            "view": {k: getattr(group.view, k) for k in group.view.__dataclass_fields__},
            "per_action": [t.to_dict() for t in report.tables if t.key == "action"],
        }
        scored += 1
        if on_group is not None:
            on_group(group, frames)
    if not scored:
        raise InputError("no held-out sequences in the data: the benchmark needs hdm05.h5 and/or reactidle.h5")
    metrics = [m for m in METRICS if m.key.split("_", 1)[0] in variants]
    table = build_table(sums, "generalisation - held-out people, motions and cameras", "group", metrics,
                        order=[g.name for g in groups])  # fmt: skip
    overall = table.summary_row("mean over groups").values
    headline = {f"{m.key.replace('_', ' ', 1)} (mm)": overall[m.key] for m in metrics}
    report_info = {"seed": seed, "clip_len": clip_len, "base_fps": BASE_FPS, "groups": details}
    report_info.update(info or {})
    return Report(benchmark="generalisation", headline=headline, tables=[table], info=report_info)
