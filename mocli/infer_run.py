"""``mocli.infer``: the whole ``mocli infer`` command as one call, from inputs to result folders.

infer(inputs, out=..., task=..., ...) -> InferRun      load the models once (InferSetup), then for each input:
  run_input(item, out_dir, setup)      -> InputResult
    load_people                        2D keypoints: the detector on a video, a reader otherwise (mocli.pipeline)
    for each person: _write_person     run_pose3d -> joints3d.npz, motion.bvh, preview.mp4, actions.json, mesh
    summary.json, last                 in a hidden sibling folder swapped in whole (mocli.result_folder)

A ``Reporter`` receives the progress of every stage and each input's outcome; the default one does nothing (the
command line's draws progress bars and prints the lines).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mocli.errors import MocliError
from mocli.infer_setup import Exports, InferSetup, check_options, load_setup
from mocli.keypoints import DEFAULT_DETECTOR, KeypointSequence
from mocli.lift import lift_phases
from mocli.pipeline import (
    InferInput,
    InferOptions,
    base_summary,
    camera_summary,
    input_camera,
    joints_file,
    load_people,
    parse_shard,
    resolve_inputs,
    run_pose3d,
    select_shard,
    write_summary,
)
from mocli.result_folder import SUMMARY, OutputBusy, failure_message, is_complete, staged_result
from mocli.results import InferRun, InputResult, MotionResult, write_joints_npz
from mocli.trajectory import Camera

__all__ = ["infer", "Reporter", "run_input", "InferSetup", "Exports", "load_setup"]

log = logging.getLogger(__name__)


class Reporter:
    """What ``infer`` tells about its work as it goes. These hooks do nothing; subclass them to show progress.

    ``start(n)`` is called once with the number of inputs to process; ``stage(description, total, unit)`` wraps every
    stage of an input that may take more than a moment and yields ``advance(n=1)`` (``total`` None: the stage cannot
    count its steps); ``done(result)`` is called once per input, bad specs first.
    """

    def start(self, num_inputs: int) -> None:
        pass

    @contextlib.contextmanager
    def stage(self, description: str, total: int | None = None, unit: str = "frames") -> Iterator[Callable[..., None]]:
        yield lambda n=1: None

    def done(self, result: InputResult) -> None:
        pass


def infer(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike = "out",
    *,
    task: str = "pose3d",
    model: str | os.PathLike | None = None,
    detector: str = DEFAULT_DETECTOR,
    mediapipe_model: str = "full",
    person: str | int = "largest",
    keypoint_format: str | None = None,
    shard: str | None = None,
    overwrite: bool = False,
    flip: bool = True,
    upright: bool = True,
    bones: str = "fixed",
    precision: str = "auto",
    batch_size: int = 8,
    max_lift_fps: float = 60.0,
    detector_3d: float | str = "auto",
    limb_depth: float = 0.0,
    max_frames: int | None = None,
    render: bool = False,
    bvh: bool = False,
    labels: str | Sequence[str] | None = None,
    top_k: int = 5,
    action_model: str | os.PathLike | None = None,
    body_model: str = "auto",
    smpl_dir: str | os.PathLike | None = None,
    device: str = "auto",
    seed: int = 0,
    focal: float | None = None,
    fov: float | None = None,
    world: bool = False,
    reporter: Reporter | None = None,
) -> InferRun:
    """3D joints (and actions, meshes, previews, BVH) for videos or 2D keypoints: what ``mocli infer`` does.

    Each input gets a result folder ``out/<input stem>/`` with ``joints3d.npz`` (joints3d (T,17,3) float32 metres,
    root-relative, camera axes x right / y down / z forward, NaN in frames without the person; keypoints2d (T,17,3)
    pixels + confidence; root (T,3) metres, the pelvis in the camera frame, when the image size is known; fps;
    missing_frames) and ``summary.json``, plus per person ``motion.bvh`` (``bvh``, moving along ``root``),
    ``actions.json`` (task action/all) and ``mesh.npz`` + ``mesh/`` (task mesh/all), and ``preview.mp4``
    (``render``: every person of the input in one video and one 3D scene); several people get
    ``joints3d_<id>.npz`` and so on (docs/exports.md). A complete folder is skipped unless ``overwrite``; a folder is
    replaced whole, and only once the new result is complete. A bad input is recorded and the others go on.

    Example::

        run = mocli.infer(["clip.mp4", "keypoints/"], out="results", bvh=True)
        for r in run:                        # one InputResult per input
            print(r.input, r.status, r.files)
        joints = run[0].motions()[0].joints3d     # (T,17,3) metres

    Args:
        inputs: videos, folders (recursive: videos, keypoint .npz, .h5; .json with ``keypoint_format``), globs.
        out: the results folder.
        task: ``pose3d``, ``action``, ``mesh`` or ``all``.
        model: weights name or checkpoint of the lifter (default: ``dstformer-small.video``).
        detector, person, keypoint_format, max_frames: as ``mocli infer``'s --detector, --person, --format,
            --max-frames. ``mediapipe_model``: the landmark model of the MediaPipe detectors, ``full`` (the wheel's)
            or ``heavy`` (more accurate 2D, about 2-2.5x slower; ``mocli prepare mediapipe-heavy`` installs it).
            ``shard``: ``"K/N"``, only the K-th of N parts of the sorted inputs (None: the torchrun
            rank and world size when set, else every input).
        flip, upright, bones, precision, batch_size: lifting options (flip test-time augmentation; a body lying
            across the image lifted rolled upright, ``mocli.models.tta.upright``; ``fixed`` or ``free`` bone
            lengths; ``auto``, ``fp32`` or ``bf16``; windows per forward pass).
        max_lift_fps: inputs faster than this (frames/s) are lifted as interleaved sequences at or below it, the
            rates the lifter was trained at (``mocli.lift.lift_phases``); 0: every input at its own rate.
        detector_3d: MediaPipe's own 3D pose (its world landmarks), for inputs that have it, aligned onto the lifted
            one and averaged in frame by frame (``mocli.lift.fuse_detector_3d``) with this weight: 'auto' (more
            where the lifter is less sure, read from flip TTA: ``mocli.lift.detector_3d_weights``), a number 0-1,
            or 0: the lifter alone.
        limb_depth: 0-1, the depth of each limb and girdle bone blended towards the one its length and its length
            in the image call for (``mocli.limb_depth.limb_depths``); 0: the lifter's own.
        labels, top_k, action_model: task action: free-text labels (comma-separated or a list), classes listed per
            window, the action checkpoint (default: ``model``, else the shipped one).
        body_model, smpl_dir: task mesh: ``auto``, ``smpl`` or ``anny``, and the folder of the SMPL files.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``. ``seed``: seeds Python, numpy and torch.
        focal, fov: the camera of the inputs, for the trajectories (``root``): focal length in pixels, or horizontal
            field of view in degrees; neither: ``mocli.trajectory.DEFAULT_FOV_DEG``.
        world: task mesh: the OBJ meshes placed at the trajectory (camera frame, Y up) instead of the pelvis at the
            origin.
        reporter: receives progress and each input's outcome (default: silent).
    Returns:
        An InferRun: one InputResult per input (bad specs first), each ``written``, ``skipped`` (complete already),
        ``busy`` (being written by another process) or ``failed`` (with its one-line message).
    Raises:
        MocliError: a problem with the whole run (out is a file, no inputs, bad options, a model that cannot be
            loaded); problems with one input are in its InputResult instead.
    """
    reporter = reporter or Reporter()
    specs = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    check_options(task=task, bones=bones, precision=precision, body_model=body_model, batch_size=batch_size,
                  top_k=top_k, max_frames=max_frames, detector=detector, mediapipe_model=mediapipe_model,
                  focal=focal, fov=fov,
                  max_lift_fps=max_lift_fps, detector_3d=detector_3d, limb_depth=limb_depth)  # fmt: skip
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise MocliError(f"--out {out} is a file; give a folder for the results")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MocliError(f"--out {out}: cannot create this folder ({e.strerror or e})") from None
    items, errors = resolve_inputs([os.fspath(s) for s in specs], keypoint_format)
    items = select_shard(items, parse_shard(shard))
    if not items and not errors:
        raise MocliError("no inputs to process" + (" in this shard" if shard else ""))
    if labels is not None and not isinstance(labels, str):
        labels = ",".join(labels)
    setup = load_setup(
        task=task, model=model, detector=detector, mediapipe_model=mediapipe_model, person=person,
        keypoint_format=keypoint_format, flip=flip, upright=upright, bones=bones, precision=precision,
        batch_size=batch_size, max_lift_fps=max_lift_fps,
        detector_3d=detector_3d, limb_depth=limb_depth,
        max_frames=max_frames, render=render, bvh=bvh, labels=labels, top_k=top_k, action_model=action_model,
        body_model=body_model, smpl_dir=smpl_dir, device=device, seed=seed, focal=focal, fov=fov, world=world,
    )  # fmt: skip
    run = InferRun()
    reporter.start(len(items))
    for message in errors:
        run.results.append(InputResult(Path(message.split(":")[0]), "failed", message=message))
        reporter.done(run.results[-1])
    for item in items:
        run.results.append(run_input(item, out / item.name, setup, reporter, overwrite=overwrite))
        reporter.done(run.results[-1])
    return run


# ------------------------------------------------------------------------------------------------ one input


def run_input(
    item: InferInput, out_dir: Path, setup: InferSetup, reporter: Reporter | None = None, overwrite: bool = False
) -> InputResult:
    """One input to its result folder ``out_dir``. A failure is recorded in the result, never raised."""
    reporter = reporter or Reporter()
    if is_complete(out_dir) and not overwrite:
        return _skipped(item, out_dir)
    try:
        with staged_result(out_dir, overwrite) as work:
            if work is None:  # completed by another process while this one waited
                return _skipped(item, out_dir)
            summary = _write_result(item, work, setup, reporter)
        return InputResult(item.path, "written", out_dir, summary=summary)
    except OutputBusy as e:
        return InputResult(item.path, "busy", out_dir, message=failure_message(item.path, e))
    except MocliError as e:
        return InputResult(item.path, "failed", out_dir, message=failure_message(item.path, e))
    except (OSError, ValueError, RuntimeError) as e:
        log.debug("%s failed", item.path, exc_info=True)
        return InputResult(item.path, "failed", out_dir, message=failure_message(item.path, e))


def _skipped(item: InferInput, out_dir: Path) -> InputResult:
    import json

    try:
        summary = json.loads((out_dir / SUMMARY).read_text())
    except (OSError, ValueError):
        summary = None
    return InputResult(item.path, "skipped", out_dir, summary=summary)


def _write_result(item: InferInput, work: Path, setup: InferSetup, reporter: Reporter) -> dict[str, Any]:
    """Every file of one input's result into the folder ``work``, summary.json last; returns the summary."""
    t0 = time.perf_counter()
    sequences, people = _keypoints(item, setup.options, reporter)
    timings = {"keypoints": time.perf_counter() - t0, "lift": 0.0, "export": 0.0, "render": 0.0}
    # the people of one video (or keypoint file) share its camera and one preview; an HDF5's sequences are apart
    together = len(sequences) > 1 and item.kind != "h5"
    camera = input_camera(sequences[0][1].image_size, setup.options)
    units, warnings, files, results = [], [], [], []
    if camera is None:
        warnings.append("image size unknown: no camera-space trajectory ('root')")
    for unit, seq in sequences:
        cam = camera if item.kind != "h5" else input_camera(seq.image_size, setup.options)
        facts, person_files, result = _write_person(item, unit, seq, work, setup, reporter, timings, cam, together)
        units.append(facts)
        files += person_files
        results.append(result)
        if facts["frames_without_person"]:
            warnings.append(f"{facts['file']}: {facts['frames_without_person']} frames without the person (NaN)")
    if setup.exports.render and together:  # everyone in one preview, in one camera space
        with reporter.stage(f"{item.path.name}: preview.mp4"), _timed(timings, "render"):
            labels = [str(int(seq.track_id)) for _, seq in sequences]
            files.append(_render_people(item, sequences[0][1], results, work / "preview.mp4", labels))
    summary = base_summary(item, setup.model_info, setup.options)
    summary.update(task=setup.exports.task, device=str(setup.device), camera=camera_summary(camera))
    if people is not None:
        summary["people"] = people
    summary.update(results=units, warnings=warnings, files=files,
                   timings_s={k: round(v, 3) for k, v in timings.items()})  # fmt: skip
    write_summary(work, summary)
    return summary


def _keypoints(
    item: InferInput, options: InferOptions, reporter: Reporter
) -> tuple[list[tuple[str, KeypointSequence]], dict[str, Any] | None]:
    """The input's 2D keypoint sequences and, for a video, who was found (``load_people``); a video's frames are
    counted as they are decoded."""
    if item.kind != "video":
        return load_people(item, options)
    from mocli.video import probe_video

    n = probe_video(item.path).num_frames
    with reporter.stage(item.path.name, total=min(n, options.max_frames or n) or None, unit="frames") as advance:
        return load_people(item, options, on_frame=advance)


def _export_name(stem: str, suffix: str, unit: str) -> str:
    """File name of one person's export, named like ``joints_file``: motion.bvh, or motion_<unit>.bvh."""
    return f"{stem}_{unit}{suffix}" if unit else f"{stem}{suffix}"


@contextlib.contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - t0


def _write_person(
    item: InferInput, unit: str, seq: KeypointSequence, work: Path, setup: InferSetup, reporter: Reporter,
    timings: dict[str, float], camera: Camera | None = None, together: bool = False,
) -> tuple[dict[str, Any], list[str], MotionResult]:  # fmt: skip
    """One person's 3D joints (and trajectory in ``camera``'s frame) and files into ``work``; returns (their summary
    entry, the file names written, the result)."""
    exports, label = setup.exports, f"{item.path.name} {unit}".rstrip()
    with reporter.stage(f"{label}: 3D joints", unit="frames"), _timed(timings, "lift"):
        result = run_pose3d(seq, setup.lifter, setup.options.lift, setup.device, camera)
    with _timed(timings, "export"):
        files = [write_joints_npz(result, work / joints_file(unit)).name]
    if exports.bvh:
        with reporter.stage(f"{label}: motion.bvh"), _timed(timings, "export"):
            files.append(_write_bvh(result, work / _export_name("motion", ".bvh", unit)))
    if exports.render and not together:  # several people of one video: one preview of all (_write_result)
        with reporter.stage(f"{label}: preview.mp4"), _timed(timings, "render"):
            files.append(_render(item, seq, result, work / _export_name("preview", ".mp4", unit)))
    if exports.action is not None:  # actions.json of this person (mocli.actions)
        with reporter.stage(f"{label}: actions"), _timed(timings, "action"):
            name = _export_name("actions", ".json", unit)
            files.append(exports.action.write(result, work / name, person=int(seq.track_id)).name)
    facts = {"file": joints_file(unit), "person": int(seq.track_id), "frames": result.num_frames, "fps": result.fps,
             "frames_without_person": int(len(result.missing)),
             "lift_phases": lift_phases(result.fps, setup.options.lift.max_fps)}  # fmt: skip
    weight = result.extras.get("detector_3d_weight")  # (T,) MediaPipe's 3D's share per frame, NaN where not mixed
    mixed = np.isfinite(weight) if weight is not None else np.zeros(result.num_frames, bool)
    facts["detector_3d_frames"] = int(mixed.sum())
    facts["detector_3d_weight"] = round(float(np.mean(weight[mixed])), 3) if mixed.any() else None
    if result.root is not None:
        solved = np.isfinite(result.root).all(-1)
        facts["trajectory_frames"] = int(solved.sum())
        if solved.any():
            facts["mean_root_m"] = [round(float(v), 3) for v in np.mean(result.root[solved], axis=0)]
    if exports.mesh is not None:  # mesh.npz + mesh/ of this person (mocli.mesh)
        with reporter.stage(f"{label}: mesh"), _timed(timings, "mesh"):
            mesh_files, facts["mesh"] = exports.mesh.write(result, work, unit, world=setup.options.world)
        files += mesh_files
    return facts, files, result


def _write_bvh(result: MotionResult, path: Path) -> str:
    from mocli.export import write_bvh

    return write_bvh(result, path).name


def _source_video(item: InferInput, seq: KeypointSequence) -> Path | None:
    """The video to draw on: the input, or the keypoints' source video when it is here; None: a blank canvas."""
    from mocli.video import VIDEO_EXTENSIONS

    video = item.path if item.kind == "video" else Path(seq.video) if seq.video else None
    if video is not None and not (video.is_file() and video.suffix.lower() in VIDEO_EXTENSIONS):
        video = None
    return video


def _render_people(
    item: InferInput, seq: KeypointSequence, results: list[MotionResult], path: Path, labels: list[str]
) -> str:
    """One preview.mp4 of every person: each in their own colour, placed at their trajectory in one 3D scene."""
    from mocli.export.render import render_people

    return render_people(results, path, _source_video(item, seq), labels=labels).name


def _render(item: InferInput, seq: KeypointSequence, result: MotionResult, path: Path) -> str:
    """preview.mp4 on the input video, or on a blank canvas for keypoints whose source video is not here."""
    from mocli.export import render_preview

    return render_preview(result, path, _source_video(item, seq)).name
