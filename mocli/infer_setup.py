"""What ``mocli.infer`` loads once for every input: the lifter and its options, the action and body models.

load_setup(task=..., model=..., ...) -> InferSetup      (the options of ``mocli.infer``, checked in one line each)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mocli.errors import MocliError
from mocli.keypoints import DEFAULT_DETECTOR
from mocli.pipeline import InferOptions

__all__ = ["TASKS", "Exports", "InferSetup", "check_options", "load_setup"]

TASKS = ("pose3d", "action", "mesh", "all")
_CHOICES = {
    "task": TASKS,
    "bones": ("fixed", "free"),
    "precision": ("auto", "fp32", "bf16"),
    "body_model": ("auto", "smpl", "anny"),
    "mediapipe_model": ("full", "heavy"),
}


@dataclass(frozen=True)
class Exports:
    """Optional files per person besides joints3d.npz."""

    render: bool = False  # preview.mp4
    bvh: bool = False  # motion.bvh
    action: object | None = None  # a mocli.actions.ActionRecogniser: actions.json (None: off)
    mesh: object | None = None  # a mocli.mesh.MeshExporter: mesh.npz + mesh/ (None: off)
    task: str = "pose3d"  # the task asked, for summary.json


@dataclass
class InferSetup:
    """What ``infer`` loads once for every input: the lifter, its options, the exports (and their models)."""

    lifter: torch.nn.Module
    device: torch.device
    options: InferOptions
    model_info: dict[str, Any]
    exports: Exports = field(default_factory=Exports)


def check_options(**values: Any) -> None:
    """The checks the command line's option types make, for Python callers: one line each."""
    for name, choices in _CHOICES.items():
        if values[name] not in choices:
            raise MocliError(f"{name}={values[name]!r}: expected one of {', '.join(choices)}")
    for name in ("batch_size", "top_k", "max_frames"):
        if values[name] is not None and int(values[name]) < 1:
            raise MocliError(f"{name}={values[name]}: must be at least 1")
    from mocli.keypoints import DETECTORS

    if values["detector"] not in DETECTORS:
        raise MocliError(f"detector={values['detector']!r}: expected one of {', '.join(DETECTORS)}")
    focal, fov = values.get("focal"), values.get("fov")
    if focal is not None and fov is not None:
        raise MocliError("--focal and --fov both given: give the focal length in pixels or the field of view")
    if focal is not None and not float(focal) > 0:
        raise MocliError(f"--focal {focal}: the focal length must be a positive number of pixels")
    if fov is not None and not 0 < float(fov) < 180:
        raise MocliError(f"--fov {fov}: the horizontal field of view must be between 0 and 180 degrees")
    from mocli.lift import parse_detector_3d
    from mocli.limb_depth import parse_limb_depth

    try:
        parse_detector_3d(values.get("detector_3d", 0.0))
        parse_limb_depth(values.get("limb_depth", 0.0))
    except ValueError as e:
        raise MocliError(str(e)) from None
    max_lift_fps = values.get("max_lift_fps", 0.0)
    if not 0 <= float(max_lift_fps) < float("inf"):
        raise MocliError(f"--max-lift-fps {max_lift_fps}: give a frame rate >= 0 (0: lift every input at its own rate)")


def load_setup(
    *, task: str = "pose3d", model: str | os.PathLike | None = None, detector: str = DEFAULT_DETECTOR,
    mediapipe_model: str = "full", person: str | int = "largest", keypoint_format: str | None = None,
    flip: bool = True, upright: bool = True, bones: str = "fixed", precision: str = "auto", batch_size: int = 8,
    max_lift_fps: float = 60.0,
    detector_3d: float | str = "auto", limb_depth: float = 0.0, max_frames: int | None = None,
    render: bool = False, bvh: bool = False, labels: str | None = None, top_k: int = 5,
    action_model: str | os.PathLike | None = None, body_model: str = "auto",
    smpl_dir: str | os.PathLike | None = None, device: str = "auto", seed: int = 0, focal: float | None = None,
    fov: float | None = None, world: bool = False,
) -> InferSetup:  # fmt: skip
    """Load the lifter and what the exports need (action model, body model), once for every input."""
    from mocli.api import load_lifter, model_clip_len, model_detector_3d_spread
    from mocli.keypoints import DetectorOptions, parse_person
    from mocli.lift import LiftOptions, parse_detector_3d
    from mocli.models.registry import DEFAULT_VIDEO_WEIGHTS, default_weights, resolve_weights
    from mocli.models.stmo import ManyToOne
    from mocli.utils.device import resolve_device, resolve_precision
    from mocli.utils.seed import seed_everything

    if detector.startswith("mediapipe") and mediapipe_model != "full":
        from mocli.keypoints.mediapipe_models import landmark_model_path

        landmark_model_path(mediapipe_model)  # missing: one error for the run, not one per video
    torch_device = resolve_device(device)
    seed_everything(seed)
    weights = resolve_weights(model) if model else default_weights(DEFAULT_VIDEO_WEIGHTS)
    lifter = load_lifter(weights, device=str(torch_device))
    options = InferOptions(
        detector=detector,
        detector_options=DetectorOptions(device=device, mediapipe_model=mediapipe_model),
        person=parse_person(str(person)),
        keypoint_format=keypoint_format,
        lift=LiftOptions(
            clip_len=model_clip_len(lifter),
            flip=flip,
            upright=upright,
            bones=bones,
            batch_size=batch_size,
            precision=resolve_precision(torch_device, precision),
            max_fps=float(max_lift_fps),
            detector_3d=parse_detector_3d(detector_3d),
            detector_3d_spread_m=model_detector_3d_spread(lifter),
            limb_depth=float(limb_depth),
        ),
        max_frames=max_frames,
        focal=focal,
        fov=fov,
        world=world,
    )
    info = getattr(lifter, "checkpoint_info", {})
    model_info = {"path": str(weights), "arch": info.get("arch", {}).get("name"), "meta": info.get("meta", {})}
    action_weights = _action_weights(task, model, action_model, labels)
    if action_weights == weights and isinstance(lifter, ManyToOne):
        raise MocliError(f"{weights} is an STMO (many-to-one) lifter with no action head; give --action-model")
    action = _action_export(action_weights, torch_device, labels, top_k, options)
    mesh = _mesh_export(task, body_model, smpl_dir, weights, lifter, torch_device, options.lift.precision)
    exports = Exports(render=render, bvh=bvh, action=action, mesh=mesh, task=task)
    return InferSetup(lifter, torch_device, options, model_info, exports)


def _action_weights(task: str, model, action_model, labels: str | None) -> Path | None:
    """The action checkpoint: --action-model, else --model, else the shipped one (text-aligned with --labels)."""
    from mocli.models.registry import DEFAULT_ACTION_WEIGHTS, DEFAULT_TEXT_WEIGHTS, default_weights, resolve_weights

    if task not in ("action", "all"):
        for given, name in ((labels, "--labels"), (action_model, "--action-model")):
            if given is not None:
                raise MocliError(f"{name} applies to --task action or all")
        return None
    chosen = action_model or model
    if chosen:
        return resolve_weights(chosen)
    return default_weights(DEFAULT_TEXT_WEIGHTS if labels is not None else DEFAULT_ACTION_WEIGHTS)


def _action_export(weights: Path | None, device, labels: str | None, top_k: int, options: InferOptions):
    """--task action|all: the action model, loaded once (a model without an action head fails here)."""
    if weights is None:
        return None
    from mocli.actions import ActionRecogniser

    names = [n.strip() for n in labels.split(",") if n.strip()] if labels is not None else None
    if labels is not None and not names:
        raise MocliError("--labels: give at least one label, comma-separated")
    return ActionRecogniser.load(weights, device, top_k=top_k, labels=names, batch_size=options.lift.batch_size,
                                 precision=options.lift.precision)  # fmt: skip


def _mesh_export(task: str, body_model: str, smpl_dir, weights: Path, lifter, device, precision: str = "fp32"):
    """--task mesh|all: the body model (and the checkpoint's mesh head with SMPL), loaded once for every input."""
    if task not in ("mesh", "all"):
        if smpl_dir is not None or body_model != "auto":
            raise MocliError("--smpl-dir and --body-model apply to --task mesh or all")
        return None
    from mocli.mesh import mesh_exporter

    smpl = Path(smpl_dir).expanduser() if smpl_dir else None
    return mesh_exporter(body_model, smpl, weights, lifter, device, precision=precision)
