"""``mocli infer``: videos or prepared keypoints in, 3D joints out, for one clip or a folder of thousands."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mocli.cli.batch import Batch, failure_message, progress_bar, summarise
from mocli.cli.options import console, get_settings
from mocli.cli.prepare_video import DetectorName as Detector
from mocli.errors import MocliError

log = logging.getLogger(__name__)


class Task(str, Enum):
    pose3d = "pose3d"
    action = "action"  # also actions.json per person (mocli.actions)
    mesh = "mesh"  # also mesh.npz + mesh/ (OBJ per frame) per person (mocli.mesh)
    all = "all"  # pose3d + action + mesh


class BodyModel(str, Enum):
    auto = "auto"
    smpl = "smpl"
    anny = "anny"


class Bones(str, Enum):
    fixed = "fixed"
    free = "free"


class Precision(str, Enum):
    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


HELP = """3D joints from videos or prepared 2D keypoints.

Each input gets a folder OUT/<input stem>/ with [b]joints3d.npz[/b] (joints3d (T,17,3) metres, root-relative,
camera axes x right / y down / z forward; keypoints2d (T,17,3) pixels + confidence; fps; joint_names;
missing_frames) and [b]summary.json[/b], written last: a folder with a summary is complete and is skipped on the
next run unless --overwrite. A bad input is reported and the others go on; the exit code is 1 if any failed.
--render adds [b]preview.mp4[/b] (the video with the 2D skeleton beside the 3D one); --bvh adds [b]motion.bvh[/b]
(Y up, centimetres, for Blender and other animation tools). With several people: joints3d_<id>.npz, motion_<id>.bvh
and preview_<id>.mp4 for each (docs/exports.md).
--task action adds [b]actions.json[/b] (actions_<id>.json): the --top-k classes of each window of the action
model's clip length (half-overlapping; frames and seconds) and of the whole clip (the mean of the window
probabilities). The action model is --action-model, else --model, else the shipped Bandai action classifier
(dstformer-small.bandai-action; with --labels the text-aligned dstformer-small.bandai-text).
--task mesh adds [b]mesh.npz[/b] (vertices (T,V,3) metres like joints3d, faces, body-model parameters) and
[b]mesh/frame_00000.obj[/b], ... (Y up): SMPL with --smpl-dir (or MOCLI_SMPL_DIR; the checkpoint's mesh head if it
has one, else fitted to the 3D joints), otherwise the open Anny body model fitted to the 3D joints.
--task all does pose3d, action and mesh.

[b]Examples[/b]

  mocli infer examples/sports2d_demo.mp4
  mocli infer videos/ --out results/ --shard 0/4
  mocli infer clip.npz alphapose.json --format alphapose --model my-lifter.pt
  mocli infer dance.mp4 --render --bvh
  mocli infer clip.mp4 --task action --top-k 3
  mocli infer clip.mp4 --task action --labels "walk,wave a hand,bow"
  mocli infer clip.mp4 --task action --action-model runs/finetune/bandai/best.pt
  mocli infer examples/sports2d_demo.mp4 --task mesh
  mocli infer clip.mp4 --task mesh --model runs/finetune/pw3d/best.pt --smpl-dir ~/smpl
  mocli --device cuda infer match.mp4 --detector yolo --person all --out results/
"""


def _model_info(path: Path, model) -> dict:
    info = getattr(model, "checkpoint_info", {})
    return {"path": str(path), "arch": info.get("arch", {}).get("name"), "meta": info.get("meta", {})}


def infer(
    ctx: typer.Context,
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Videos, folders (recursive), globs, keypoints .npz, .h5, or JSON with --format.",
            metavar="INPUT...",
            show_default=False,
        ),  # fmt: skip
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Results folder (one subfolder per input).")] = Path("out"),
    task: Annotated[Task, typer.Option(help="What to compute.")] = Task.pose3d,
    model: Annotated[
        str | None, typer.Option(help="Weights name (`mocli weights list`) or checkpoint path. Default: shipped.")
    ] = None,
    detector: Annotated[Detector, typer.Option(help="2D detector for video inputs.")] = Detector.mediapipe,
    person: Annotated[str, typer.Option(help="largest, all (one result per track) or a track ID.")] = "largest",
    keypoint_format: Annotated[
        str | None, typer.Option("--format", help="Format of JSON inputs: alphapose, coco, openpose, mmpose.")
    ] = None,
    shard: Annotated[
        str | None, typer.Option(help="Process shard K/N of the sorted inputs (0 <= K < N); torchrun ranks shard.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Recompute results that are already complete.")] = False,
    flip: Annotated[bool, typer.Option(help="Flip test-time augmentation.")] = True,
    bones: Annotated[
        Bones,
        typer.Option(help="fixed: one length per bone for each person, equal left and right; free: as lifted."),
    ] = Bones.fixed,
    precision: Annotated[
        Precision, typer.Option(help="auto (bf16 on CUDA, fp32 on CPU), fp32 or bf16 autocast.")
    ] = Precision.auto,
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per forward pass.")] = 8,
    max_frames: Annotated[int | None, typer.Option(min=1, help="Only the first N frames of videos.")] = None,
    render: Annotated[
        bool, typer.Option("--render", help="Also write preview.mp4: the 2D skeleton on the video beside the 3D one.")
    ] = False,
    bvh: Annotated[bool, typer.Option("--bvh", help="Also write motion.bvh (Y up, centimetres) for Blender.")] = False,
    labels: Annotated[
        str | None,
        typer.Option(help="--task action: comma-separated free-text labels to rank (needs a text-aligned model)."),
    ] = None,
    top_k: Annotated[int, typer.Option(min=1, help="--task action: classes listed per window and for the clip.")] = 5,
    action_model: Annotated[
        str | None,
        typer.Option(help="--task action: weights name or checkpoint with an action (or action-text) head."),
    ] = None,
    body_model: Annotated[
        BodyModel, typer.Option(help="--task mesh: smpl, anny, or auto (SMPL when --smpl-dir or MOCLI_SMPL_DIR).")
    ] = BodyModel.auto,
    smpl_dir: Annotated[
        Path | None,
        typer.Option(help="--task mesh: folder of the SMPL files (else $MOCLI_SMPL_DIR; docs/finetune.md)."),
    ] = None,
) -> None:
    from mocli.api import load_lifter, model_clip_len
    from mocli.keypoints import DetectorOptions, parse_person
    from mocli.lift import LiftOptions
    from mocli.models.registry import default_weights, resolve_weights
    from mocli.models.stmo import ManyToOne
    from mocli.pipeline import InferOptions, is_complete, parse_shard, resolve_inputs, select_shard
    from mocli.utils.device import resolve_device, resolve_precision
    from mocli.utils.seed import seed_everything

    settings = get_settings(ctx)
    if out.exists() and not out.is_dir():
        raise MocliError(f"--out {out} is a file; give a folder for the results")
    items, errors = resolve_inputs(inputs, keypoint_format)
    items = select_shard(items, parse_shard(shard))
    if not items and not errors:
        raise MocliError("no inputs to process" + (" in this shard" if shard else ""))
    device = resolve_device(settings.device)
    seed_everything(settings.seed)
    weights = resolve_weights(model) if model else default_weights()
    lifter = load_lifter(weights, device=str(device))
    options = InferOptions(
        detector=detector.value,
        detector_options=DetectorOptions(device=settings.device),
        person=parse_person(person),
        keypoint_format=keypoint_format,
        lift=LiftOptions(
            clip_len=model_clip_len(lifter),
            flip=flip,
            bones=bones.value,
            batch_size=batch_size,
            precision=resolve_precision(device, precision.value),
        ),
        max_frames=max_frames,
    )
    model_info = _model_info(weights, lifter)
    action_weights = _action_weights(task, model, action_model, labels)
    if action_weights == weights and isinstance(lifter, ManyToOne):
        raise MocliError(f"{weights} is an STMO (many-to-one) lifter with no action head; give --action-model")
    action = _action_export(task, action_weights, device, labels, top_k, options)
    exports = Exports(render=render, bvh=bvh, action=action, task=task.value)
    exports = replace(exports, mesh=_mesh_export(task, body_model, smpl_dir, weights, lifter, device))
    batch = Batch()
    for message in errors:
        batch.fail(message.split(":")[0], message)
    with progress_bar(settings.quiet) as progress:
        files_task = progress.add_task("inputs", total=len(items)) if len(items) > 1 else None
        for item in items:
            if is_complete(out / item.name) and not overwrite:
                batch.skipped.append(item.path)
            else:
                _run_one(item, out / item.name, options, lifter, device, model_info, progress, batch, exports)
            if files_task is not None:
                progress.advance(files_task)
    if not settings.quiet:
        for path in batch.written:
            console.print(str(path), highlight=False)
    summarise(batch, settings.quiet)


@dataclass(frozen=True)
class Exports:
    """Optional files per person besides joints3d.npz."""

    render: bool = False  # preview.mp4
    bvh: bool = False  # motion.bvh
    action: object | None = None  # a mocli.actions.ActionRecogniser: actions.json (None: off)
    mesh: object | None = None  # a mocli.mesh.MeshExporter: mesh.npz + mesh/ (None: off)
    task: str = "pose3d"  # the --task asked, for summary.json


def _mesh_export(task: Task, body_model: BodyModel, smpl_dir: Path | None, weights: Path, lifter, device):
    """--task mesh: the body model (and the checkpoint's mesh head with SMPL), loaded once for every input."""
    if task not in (Task.mesh, Task.all):
        if smpl_dir is not None or body_model != BodyModel.auto:
            raise MocliError("--smpl-dir and --body-model apply to --task mesh or all")
        return None
    from mocli.mesh import mesh_exporter

    return mesh_exporter(body_model.value, smpl_dir.expanduser() if smpl_dir else None, weights, lifter, device)


def _action_weights(task: Task, model: str | None, action_model: str | None, labels: str | None) -> Path | None:
    """The action checkpoint: --action-model, else --model, else the shipped one (text-aligned with --labels)."""
    from mocli.models.registry import DEFAULT_ACTION_WEIGHTS, DEFAULT_TEXT_WEIGHTS, default_weights, resolve_weights

    if task not in (Task.action, Task.all):
        for given, name in ((labels, "--labels"), (action_model, "--action-model")):
            if given is not None:
                raise MocliError(f"{name} applies to --task action or all")
        return None
    chosen = action_model or model
    if chosen:
        return resolve_weights(chosen)
    return default_weights(DEFAULT_TEXT_WEIGHTS if labels is not None else DEFAULT_ACTION_WEIGHTS)


def _action_export(task: Task, weights: Path | None, device, labels: str | None, top_k: int, options):
    """--task action|all: the action model, loaded once (a model without an action head fails here)."""
    if weights is None:
        return None
    from mocli.actions import ActionRecogniser

    names = [n.strip() for n in labels.split(",") if n.strip()] if labels is not None else None
    if labels is not None and not names:
        raise MocliError("--labels: give at least one label, comma-separated")
    return ActionRecogniser.load(weights, device, top_k=top_k, labels=names, batch_size=options.lift.batch_size,
                                 precision=options.lift.precision)  # fmt: skip


def _export_name(stem: str, suffix: str, unit: str) -> str:
    """File name of one person's export, named like ``joints_file``: motion.bvh, or motion_<unit>.bvh."""
    return f"{stem}_{unit}{suffix}" if unit else f"{stem}{suffix}"


def _write_exports(item, seq, result, out_dir: Path, unit: str, exports: Exports, timings: dict) -> list[str]:
    """preview.mp4 and motion.bvh of one person, as asked; returns the file names written."""
    from mocli.export import render_preview, write_bvh
    from mocli.video import VIDEO_EXTENSIONS

    files = []
    if exports.bvh:
        t0 = time.perf_counter()
        files.append(write_bvh(result, out_dir / _export_name("motion", ".bvh", unit)).name)
        timings["export"] += time.perf_counter() - t0
    if exports.render:
        t0 = time.perf_counter()
        video = item.path if item.kind == "video" else Path(seq.video) if seq.video else None
        if video is not None and not (video.is_file() and video.suffix.lower() in VIDEO_EXTENSIONS):
            video = None  # a keypoints file whose source video is not here: blank canvas
        files.append(render_preview(result, out_dir / _export_name("preview", ".mp4", unit), video).name)
        timings["render"] += time.perf_counter() - t0
    return files


def _run_one(
    item, out_dir: Path, options, lifter, device, model_info: dict, progress, batch: Batch, exports: Exports = Exports()
) -> None:
    """One input: 2D keypoints, 3D joints and files, with timings. A failure is recorded; the batch goes on."""
    from mocli.pipeline import OutputLock, base_summary, joints_file, load_sequences, run_pose3d, write_summary
    from mocli.results import write_joints_npz
    from mocli.video import probe_video

    frames_task = None
    try:
        with OutputLock(out_dir):
            (out_dir / "summary.json").unlink(missing_ok=True)  # an --overwrite run is incomplete until it ends
            t0 = time.perf_counter()
            if item.kind == "video":
                n = probe_video(item.path).num_frames
                frames_task = progress.add_task(item.path.name, total=min(n, options.max_frames or n) or None)
            on_frame = (lambda: progress.advance(frames_task)) if frames_task is not None else None
            sequences = load_sequences(item, options, on_frame=on_frame)
            timings = {"keypoints": time.perf_counter() - t0, "lift": 0.0, "export": 0.0, "render": 0.0}
            units, warnings, files = [], [], []
            for unit, seq in sequences:
                t1 = time.perf_counter()
                result = run_pose3d(seq, lifter, options.lift, device)
                t2 = time.perf_counter()
                write_joints_npz(result, out_dir / joints_file(unit))
                timings["lift"] += t2 - t1
                timings["export"] += time.perf_counter() - t2
                files += [joints_file(unit)] + _write_exports(item, seq, result, out_dir, unit, exports, timings)
                if exports.action is not None:  # --task action: actions.json of this person (mocli.actions)
                    t3 = time.perf_counter()
                    name = _export_name("actions", ".json", unit)
                    files.append(exports.action.write(result, out_dir / name, person=int(seq.track_id)).name)
                    timings["action"] = timings.get("action", 0.0) + time.perf_counter() - t3
                units.append({"file": joints_file(unit), "person": int(seq.track_id), "frames": result.num_frames,
                              "fps": result.fps, "frames_without_person": int(len(result.missing))})  # fmt: skip
                if exports.mesh is not None:  # --task mesh: mesh.npz + mesh/ of this person (mocli.mesh)
                    t3 = time.perf_counter()
                    mesh_files, units[-1]["mesh"] = exports.mesh.write(result, out_dir, unit)
                    files += mesh_files
                    timings["mesh"] = timings.get("mesh", 0.0) + time.perf_counter() - t3
                if len(result.missing):
                    warnings.append(f"{joints_file(unit)}: {len(result.missing)} frames without the person (NaN)")
            summary = base_summary(item, model_info, options)
            summary.update(task=exports.task, device=str(device), results=units, warnings=warnings, files=files,
                           timings_s={k: round(v, 3) for k, v in timings.items()})  # fmt: skip
            write_summary(out_dir, summary)
        batch.written.append(out_dir)
    except MocliError as e:
        batch.fail(str(item.path), failure_message(item.path, e))
    except (OSError, ValueError, RuntimeError) as e:
        log.debug("%s failed", item.path, exc_info=True)
        batch.fail(str(item.path), failure_message(item.path, e))
    finally:
        if frames_task is not None:
            progress.remove_task(frames_task)


def register(app: typer.Typer) -> None:
    app.command("infer", help=HELP)(infer)
