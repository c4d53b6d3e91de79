"""``mocli infer``: videos or prepared keypoints in, 3D joints out, for one clip or a folder of thousands.

Argument parsing only: the work is ``mocli.infer`` (mocli/infer_run.py), the same call as the Python API.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mocli.cli.batch import Batch, InferReporter, progress_bar, summarise
from mocli.cli.options import console, get_settings
from mocli.cli.prepare_video import DetectorName as Detector
from mocli.cli.prepare_video import MediaPipeModel, MediaPipeModelOpt


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
camera axes x right / y down / z forward; keypoints2d (T,17,3) pixels + confidence; root (T,3) metres, the pelvis
in the camera frame, from --focal or --fov (default 60 degrees across); fps; joint_names; missing_frames) and
[b]summary.json[/b], written last: a folder with a summary is complete and is skipped on the
next run unless --overwrite. A bad input is reported and the others go on; the exit code is 1 if any failed.
--render adds [b]preview.mp4[/b] (the video with the 2D skeleton beside the 3D one); --bvh adds [b]motion.bvh[/b]
(Y up, centimetres, for Blender and other animation tools; the root moves along the trajectory). With several
people (--person all): joints3d_<id>.npz and motion_<id>.bvh for each, all in the same camera frame, and one
preview.mp4 showing everyone in their own colour (docs/exports.md).
--task action adds [b]actions.json[/b] (actions_<id>.json): the --top-k classes of each window of the action
model's clip length (half-overlapping; frames and seconds) and of the whole clip (the mean of the window
probabilities). The action model is --action-model, else --model, else the shipped Bandai action classifier
(dstformer-small.bandai-action; with --labels the text-aligned dstformer-small.bandai-text).
--task mesh adds [b]mesh.npz[/b] (vertices (T,V,3) metres like joints3d, faces, body-model parameters) and
[b]mesh/frame_00000.obj[/b], ... (Y up): SMPL with --smpl-dir (or MOCLI_SMPL_DIR; the checkpoint's mesh head if it
has one, else fitted to the 3D joints), otherwise the open Anny body model fitted to the 3D joints; --world places
the OBJ meshes at the trajectory.
--task all does pose3d, action and mesh.

[b]Examples[/b]

  mocli infer examples/sports2d_demo.mp4
  mocli infer videos/ --out results/ --shard 0/4
  mocli infer clip.npz alphapose.json --format alphapose --model my-lifter.pt
  mocli infer dance.mp4 --render --bvh
  mocli infer clip.mp4 --task action --top-k 3
  mocli infer clip.mp4 --task action --labels "walk,wave a hand,bow"
  mocli infer clip.mp4 --task action --action-model runs/finetune/bandai
  mocli infer examples/sports2d_demo.mp4 --task mesh
  mocli infer a.mp4 --task mesh --model runs/finetune/pw3d --smpl-dir ~/smpl
  mocli --device cuda infer match.mp4 --detector yolo --person all --out res/
"""


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
        str | None, typer.Option(help="Weights name (`mocli weights list`) or path. Default: dstformer-small.video.")
    ] = None,
    detector: Annotated[Detector, typer.Option(help="2D detector for video inputs.")] = Detector.mediapipe_multi,
    mediapipe_model: MediaPipeModelOpt = MediaPipeModel.full,
    person: Annotated[str, typer.Option(help="largest, all (one result per track) or a track ID.")] = "largest",
    keypoint_format: Annotated[
        str | None, typer.Option("--format", help="Format of JSON inputs: alphapose, coco, openpose, mmpose.")
    ] = None,
    shard: Annotated[
        str | None, typer.Option(help="Process shard K/N of the sorted inputs (0 <= K < N); torchrun ranks shard.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Recompute results that are already complete.")] = False,
    flip: Annotated[bool, typer.Option(help="Flip test-time augmentation.")] = True,
    upright: Annotated[
        bool, typer.Option(help="Lift a body lying across the image rolled upright, then roll the 3D back.")
    ] = True,
    bones: Annotated[
        Bones,
        typer.Option(help="fixed: one length per bone for each person, equal left and right; free: as lifted."),
    ] = Bones.fixed,
    precision: Annotated[
        Precision, typer.Option(help="auto (bf16 on CUDA, fp32 on CPU), fp32 or bf16 autocast.")
    ] = Precision.auto,
    batch_size: Annotated[int, typer.Option(min=1, help="Windows per forward pass.")] = 8,
    max_lift_fps: Annotated[
        float,
        typer.Option(min=0, help="Lift faster inputs as interleaved sequences at or below this rate (0: off)."),
    ] = 60.0,
    detector_3d: Annotated[
        str,
        typer.Option(
            "--detector-3d",
            help="MediaPipe's own 3D pose averaged into the lifted one, where the input has it: auto (more where the "
            "lifter is less sure, from flip TTA), a weight 0-1, or 0 (off).",
        ),
    ] = "auto",
    limb_depth: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="0-1: each limb's depth blended towards the one its length and its length in the image call for "
            "(0: the lifter's own).",
        ),
    ] = 0.0,
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
    focal: Annotated[
        float | None, typer.Option(help="Focal length of the camera, pixels (trajectories). Default: from --fov.")
    ] = None,
    fov: Annotated[
        float | None,
        typer.Option(help="Horizontal field of view of the camera, degrees, if --focal is unknown. Default: 60."),
    ] = None,
    world: Annotated[
        bool, typer.Option("--world", help="--task mesh: OBJ meshes at the trajectory, not at the origin.")
    ] = False,
) -> None:
    from mocli.infer_run import infer as infer_inputs

    settings = get_settings(ctx)
    batch = Batch()
    with progress_bar(settings.quiet) as progress:
        infer_inputs(
            inputs, out, task=task.value, model=model, detector=detector.value,
            mediapipe_model=mediapipe_model.value, person=person,
            keypoint_format=keypoint_format, shard=shard, overwrite=overwrite, flip=flip, upright=upright,
            bones=bones.value, precision=precision.value, batch_size=batch_size, max_lift_fps=max_lift_fps,
            detector_3d=detector_3d, limb_depth=limb_depth, max_frames=max_frames,
            render=render, bvh=bvh, labels=labels, top_k=top_k, action_model=action_model,
            body_model=body_model.value, smpl_dir=smpl_dir, device=settings.device, seed=settings.seed, focal=focal,
            fov=fov, world=world,
            reporter=InferReporter(progress, batch, settings.quiet),
        )  # fmt: skip
    if not settings.quiet:
        for path in batch.written:
            console.print(str(path), highlight=False)
    summarise(batch, settings.quiet)


def register(app: typer.Typer) -> None:
    app.command("infer", help=HELP)(infer)
