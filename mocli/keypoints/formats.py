"""Imports of other tools' keypoint JSON (AlphaPose, COCO, OpenPose, mmpose) into H36M-17 sequences.

mocli's own keypoint file, the npz, is ``mocli.keypoints.npz``. Imports keep time: detections are placed at the
frame number the tool gives (image id, file name or list position), so frames the tool skipped stay missing (NaN,
confidence 0) instead of shifting the sequence.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mocli.errors import InputError
from mocli.keypoints.base import Detection, box_from_keypoints
from mocli.keypoints.sequence import KeypointSequence, build_sequences, drop_unusable
from mocli.keypoints.tracking import PersonSelector

__all__ = [
    "IMPORT_FORMATS",
    "ParsedKeypoints",
    "parse_alphapose",
    "parse_coco",
    "parse_openpose",
    "parse_mmpose",
    "import_keypoints",
]

log = logging.getLogger(__name__)


@dataclass
class ParsedKeypoints:
    """Detections read from another tool's output, before tracking and conversion.

    Attributes:
        per_frame: T lists of detections (keypoints (J, 3) pixels + confidence in the ``skeleton`` layout).
        skeleton: the layout's name in ``mocli.skeleton.SKELETONS``.
        image_size: (w, h) when the file says it (COCO annotations), else None.
    """

    per_frame: list[list[Detection]]
    skeleton: str
    image_size: tuple[int, int] | None = None


# Number of keypoints in a file -> (skeleton, how many leading joints to keep). Whole-body layouts start with the
# body joints: COCO-WholeBody (133) with COCO-17, Halpe-136 with Halpe-26.
_LAYOUTS: dict[int, tuple[str, int]] = {17: ("coco", 17), 26: ("halpe", 26), 133: ("coco", 17), 136: ("halpe", 26)}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read ({e})") from None


def _field(entry: Any, name: str, where: str) -> Any:
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected an object, got {type(entry).__name__}")
    if name not in entry:
        raise InputError(f"{where}: missing field {name!r}")
    return entry[name]


def _frame_number(value: Any, where: str) -> int:
    """A frame index from an image id: an int, or the last run of digits in a file name (``"frame_000012.jpg"``)."""
    if isinstance(value, bool):
        raise InputError(f"{where}: cannot read a frame number from {value!r}")
    if isinstance(value, int | float) and float(value).is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str):
        digits = re.findall(r"\d+", Path(value).stem)
        if digits:
            return int(digits[-1])
    raise InputError(f"{where}: cannot read a frame number from {value!r}")


def _float_array(value: Any, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise InputError(f"{where}: expected numbers") from None
    if arr.dtype == object:
        raise InputError(f"{where}: expected numbers")
    return arr


def _layout(num_joints: int, where: str, layouts: Mapping[int, tuple[str, int]] = _LAYOUTS) -> tuple[str, int]:
    if num_joints not in layouts:
        known = ", ".join(str(k) for k in layouts)
        raise InputError(f"{where}: {num_joints} keypoints; expected one of {known}")
    return layouts[num_joints]


def _flat_keypoints(
    value: Any, where: str, layouts: Mapping[int, tuple[str, int]] = _LAYOUTS
) -> tuple[np.ndarray, str]:
    """[x, y, s] * J flat list -> ((J_kept, 3) float32, skeleton name)."""
    flat = _float_array(value, where).reshape(-1)
    if flat.size % 3:
        raise InputError(f"{where}: {flat.size} numbers is not a multiple of 3 (x, y, score per keypoint)")
    skeleton, keep = _layout(flat.size // 3, where, layouts)
    return flat.reshape(-1, 3)[:keep], skeleton


def _xywh_to_xyxy(value: Any, where: str) -> np.ndarray:
    box = _float_array(value, where).reshape(-1)
    if box.size != 4:
        raise InputError(f"{where}: a box needs 4 numbers, got {box.size}")
    return np.array([box[0], box[1], box[0] + box[2], box[1] + box[3]], dtype=np.float32)


def _xyxy(value: Any, where: str) -> np.ndarray:
    box = _float_array(value, where).reshape(-1)
    if box.size < 4:
        raise InputError(f"{where}: a box needs 4 numbers, got {box.size}")
    return box[:4]


def _track_id(value: Any, where: str) -> int | None:
    """A tool's track id (int, float or a one-element list); None when absent or negative (untracked)."""
    if value is None:
        return None
    if isinstance(value, list):
        value = value[0] if value else None
        if value is None:
            return None
    try:
        tid = int(float(value))
    except (TypeError, ValueError):
        raise InputError(f"{where}: track id {value!r} is not a number") from None
    return tid if tid >= 0 else None


def _score(kp: np.ndarray) -> float:
    conf = kp[:, 2][np.isfinite(kp[:, 2]) & (kp[:, 2] > 0)]
    return float(conf.mean()) if conf.size else 0.0


def _zero_to_nan(kp: np.ndarray) -> np.ndarray:
    """Joints the tool marks as missing with (0, 0, 0) get NaN coordinates (confidence stays 0)."""
    kp = kp.copy()
    kp[(kp[:, 2] <= 0) & (kp[:, 0] == 0) & (kp[:, 1] == 0), :2] = np.nan
    return kp


def _to_frames(items: Sequence[tuple[int, Detection]], skeletons: set[str], where: str) -> tuple[list, str]:
    """(frame, detection) pairs -> per-frame lists over frames 0..max, and the single skeleton used."""
    if len(skeletons) > 1:
        raise InputError(f"{where}: mixed keypoint layouts ({', '.join(sorted(skeletons))}) in one file")
    if not items:
        raise InputError(f"{where}: no person keypoints found")
    per_frame: list[list[Detection]] = [[] for _ in range(max(f for f, _ in items) + 1)]
    for frame, det in items:
        per_frame[frame].append(det)
    return per_frame, skeletons.pop()


def _parse_results_list(entries: list, path: Path, box_field: str, track_fields: Sequence[str]) -> ParsedKeypoints:
    """AlphaPose and COCO results: [{image_id, category_id, keypoints [x, y, s] * J, score, box|bbox xywh, ...}]."""
    items: list[tuple[int, Detection]] = []
    skeletons: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"{path}: entry {i}"
        if isinstance(entry, dict) and entry.get("category_id", 1) != 1:
            continue  # not a person
        frame = _frame_number(_field(entry, "image_id", where), f"{where}: field 'image_id'")
        kp, skeleton = _flat_keypoints(_field(entry, "keypoints", where), f"{where}: field 'keypoints'")
        box = entry.get(box_field)
        box = _xywh_to_xyxy(box, f"{where}: field {box_field!r}") if box is not None else box_from_keypoints(kp)
        score = entry.get("score", _score(kp))
        track = next((entry[k] for k in track_fields if k in entry), None)
        tid = _track_id(track, f"{where}: field {track_fields[0]!r}")
        items.append((frame, Detection(kp, box, float(score), track_id=tid)))
        skeletons.add(skeleton)
    per_frame, skeleton = _to_frames(items, skeletons, str(path))
    return ParsedKeypoints(per_frame, skeleton)


def parse_alphapose(path: str | Path) -> ParsedKeypoints:
    """AlphaPose ``alphapose-results.json``: a list of {image_id ("12.jpg" or 12), category_id, keypoints
    [x, y, score] * J (J = 17 COCO, 26 Halpe, 136 Halpe full body), score, box [x, y, w, h], idx (track id)}."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, list):
        raise InputError(f"{path}: an AlphaPose results file is a JSON list, got {type(data).__name__}")
    return _parse_results_list(data, path, "box", ("idx", "track_id"))


def _coco_frames(images: Any, path: Path) -> tuple[dict[int, int], tuple[int, int] | None]:
    """COCO ``images`` -> ({image id: frame number from the file name, else the id}, the common (w, h) or None)."""
    if not isinstance(images, list):
        raise InputError(f"{path}: field 'images' must be a list")
    frames: dict[int, int] = {}
    sizes: set[tuple[int, int]] = set()
    for i, image in enumerate(images):
        where = f"{path}: images[{i}]"
        image_id = _field(image, "id", where)
        name = image.get("file_name")
        has_digits = isinstance(name, str) and re.search(r"\d", Path(name).stem)
        frames[image_id] = _frame_number(name if has_digits else image_id, f"{where}: field 'id'")
        if "width" in image and "height" in image:
            sizes.add((int(image["width"]), int(image["height"])))
    return frames, (sizes.pop() if len(sizes) == 1 else None)


def parse_coco(path: str | Path) -> ParsedKeypoints:
    """COCO keypoints: a results list [{image_id, category_id, keypoints, score, bbox [x, y, w, h]}], or an
    annotations file {images: [{id, file_name, width, height}], annotations: [{image_id, keypoints, bbox,
    track_id?}]}, whose visibility flags v (0, 1, 2) become confidences 0 / 1 and whose frame numbers come from the
    image file names (``000123.jpg`` -> 123), else the image ids."""
    path = Path(path)
    data = _read_json(path)
    if isinstance(data, list):
        return _parse_results_list(data, path, "bbox", ("track_id", "idx"))
    if not isinstance(data, dict) or "annotations" not in data:
        raise InputError(f"{path}: expected a COCO results list or an annotations file with field 'annotations'")
    frames, image_size = _coco_frames(data.get("images", []), path)
    entries = []
    for i, ann in enumerate(_field(data, "annotations", str(path))):
        where = f"{path}: annotations[{i}]"
        if ann.get("num_keypoints", 1) == 0 or ann.get("category_id", 1) != 1:
            continue
        kp, _ = _flat_keypoints(_field(ann, "keypoints", where), f"{where}: field 'keypoints'")
        kp[:, 2] = (kp[:, 2] > 0).astype(np.float32)
        image_id = _field(ann, "image_id", where)
        entry = {**ann, "keypoints": kp.reshape(-1).tolist(), "image_id": frames.get(image_id, image_id)}
        entries.append(entry)
    parsed = _parse_results_list(entries, path, "bbox", ("track_id",))
    parsed.per_frame = [[_with_nan_missing(d) for d in dets] for dets in parsed.per_frame]
    parsed.image_size = image_size
    return parsed


def _with_nan_missing(det: Detection) -> Detection:
    det.keypoints = _zero_to_nan(det.keypoints)
    return det


_OPENPOSE_NAME = re.compile(r"(\d+)_keypoints\.json$")


def parse_openpose(path: str | Path) -> ParsedKeypoints:
    """OpenPose ``--write_json`` output: a folder of ``<name>_<frame>_keypoints.json`` files (or one such file),
    each {people: [{person_id, pose_keypoints_2d [x, y, c] * 25 (BODY_25)}]}. The frame number comes from the file
    name; joints OpenPose did not find, (0, 0, 0), get NaN coordinates."""
    path = Path(path)
    files = sorted(path.glob("*_keypoints.json")) if path.is_dir() else [path]
    if not files:
        raise InputError(f"{path}: no OpenPose *_keypoints.json files in this folder")
    items: list[tuple[int, Detection]] = []
    for file in files:
        match = _OPENPOSE_NAME.search(file.name)
        if match is None:
            raise InputError(f"{file}: OpenPose file names end in _<frame number>_keypoints.json")
        data = _read_json(file)
        for i, person in enumerate(_field(data, "people", str(file))):
            where = f"{file}: people[{i}]"
            flat = _field(person, "pose_keypoints_2d", where)
            kp, _ = _flat_keypoints(flat, f"{where}: field 'pose_keypoints_2d'", {25: ("openpose", 25)})
            kp = _zero_to_nan(kp)
            tid = _track_id(person.get("person_id"), f"{where}: field 'person_id'")
            items.append((int(match.group(1)), Detection(kp, box_from_keypoints(kp), _score(kp), track_id=tid)))
    per_frame, skeleton = _to_frames(items, {"openpose"}, str(path))
    return ParsedKeypoints(per_frame, skeleton)


def _mmpose_frames(data: Any, path: Path) -> list:
    """The per-frame instance lists of an mmpose predictions file, whatever its wrapping."""
    if isinstance(data, dict) and "instance_info" in data:  # demo/topdown_demo_with_mmdet.py --save-predictions
        data = data["instance_info"]
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of frames (mmpose predictions), got {type(data).__name__}")
    if data and isinstance(data[0], dict) and "keypoints" in data[0]:
        return [data]  # a single image's instances
    frames = []
    for i, frame in enumerate(data):
        if isinstance(frame, dict):
            frame = _field(frame, "instances", f"{path}: frame {i}")
        if not isinstance(frame, list):
            raise InputError(f"{path}: frame {i}: expected a list of instances")
        frames.append(frame)
    return frames


def parse_mmpose(path: str | Path) -> ParsedKeypoints:
    """mmpose predictions (MMPoseInferencer ``pred_out_dir`` or the demos' ``--save-predictions``): one entry per
    frame, each a list of instances (or {frame_id, instances}) with keypoints (J, 2), keypoint_scores (J,),
    bbox [[x1, y1, x2, y2]] and bbox_score. The frame is the entry's position. J = 17 (COCO), 26 (Halpe) or
    133 (COCO-WholeBody, body joints kept)."""
    path = Path(path)
    frames = _mmpose_frames(_read_json(path), path)
    items: list[tuple[int, Detection]] = []
    skeletons: set[str] = set()
    for f, instances in enumerate(frames):
        for i, inst in enumerate(instances):
            where = f"{path}: frame {f} instance {i}"
            xy = _float_array(_field(inst, "keypoints", where), f"{where}: field 'keypoints'")
            scores = _float_array(_field(inst, "keypoint_scores", where), f"{where}: field 'keypoint_scores'")
            if xy.ndim != 2 or xy.shape[1] != 2:
                raise InputError(f"{where}: field 'keypoints' must be (J, 2), got shape {xy.shape}")
            if scores.reshape(-1).shape != (xy.shape[0],):
                raise InputError(f"{where}: field 'keypoint_scores' must have {xy.shape[0]} values")
            skeleton, keep = _layout(xy.shape[0], f"{where}: field 'keypoints'")
            kp = np.concatenate([xy, scores.reshape(-1, 1)], axis=1)[:keep]
            box = _xyxy(inst["bbox"], f"{where}: field 'bbox'") if "bbox" in inst else box_from_keypoints(kp)
            score = float(np.asarray(inst.get("bbox_score", _score(kp)), dtype=np.float32).reshape(-1)[0])
            tid = _track_id(inst.get("track_id"), f"{where}: field 'track_id'")
            items.append((f, Detection(kp, box, score, track_id=tid)))
            skeletons.add(skeleton)
    if not items:
        raise InputError(f"{path}: no person keypoints found")
    per_frame, skeleton = _to_frames(items, skeletons, str(path))
    per_frame += [[] for _ in range(len(frames) - len(per_frame))]  # trailing frames without people stay
    return ParsedKeypoints(per_frame, skeleton)


IMPORT_FORMATS: dict[str, Callable[[Path], ParsedKeypoints]] = {
    "alphapose": parse_alphapose,
    "coco": parse_coco,
    "openpose": parse_openpose,
    "mmpose": parse_mmpose,
}


def import_keypoints(
    path: str | Path,
    fmt: str,
    *,
    image_size: tuple[int, int] | None = None,
    fps: float | None = None,
    num_frames: int | None = None,
    person: PersonSelector = "largest",
    max_gap: int = 0,
) -> list[KeypointSequence]:
    """Read another tool's keypoints and convert them to H36M-17 sequences.

    Args:
        path: the tool's output file (an OpenPose folder for ``openpose``).
        fmt: a key of ``IMPORT_FORMATS``.
        image_size: (w, h) pixels; required unless the file gives it (COCO annotations).
        fps: frames per second (default 30, with a warning).
        num_frames: total frames of the video, to keep trailing frames without people (default: last frame seen).
        person: ``"largest"``, ``"all"`` or a track id.
        max_gap: interpolate runs of up to this many missing frames (default 0: keep the tool's output as it is).
    Returns:
        One sequence per selected person, (T, 17, 3) pixels + confidence each; non-finite joints and frames without
        a usable joint are missing (``drop_unusable``).
    """
    if fmt not in IMPORT_FORMATS:
        raise InputError(f"unknown keypoint format {fmt!r}; known: {', '.join(IMPORT_FORMATS)}")
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if not (path.is_file() or path.is_dir()):
        raise InputError(f"{path}: not a regular file or folder (a pipe or device)")
    parsed = IMPORT_FORMATS[fmt](path)
    size = image_size or parsed.image_size
    if size is None:
        raise InputError(f"{path}: image size unknown; pass --image-size W H (or --video) for pixel normalisation")
    if fps is None:
        log.warning("%s: fps unknown, assuming 30 (pass --fps or --video)", path)
        fps = 30.0
    per_frame = parsed.per_frame
    if num_frames is not None and num_frames > len(per_frame):
        per_frame = per_frame + [[] for _ in range(num_frames - len(per_frame))]
    seqs = build_sequences(
        per_frame,
        skeleton=parsed.skeleton,
        image_size=size,
        fps=fps,
        source=fmt,
        video=str(path),
        person=person,
        max_gap=max_gap,
        multi_person=True,
    )
    return [drop_unusable(seq, f"{path} (person {seq.track_id})" if len(seqs) > 1 else str(path)) for seq in seqs]
