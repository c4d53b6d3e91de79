"""Human3.6M 3D pose benchmark, as MotionBERT evaluates it.

Data: the test split (subjects S9 and S11) of MotionBERT's ``h36m_sh_conf_cam_source_final.pkl``, of VideoPose3D's
npz pair (``data_3d_h36m.npz`` + ``data_2d_h36m_cpn_ft_h36m_dbb.npz``), or of a mocli HDF5 made from either by
``mocli prepare dataset h36m``. The files are read by ``mocli.data.converters.h36m``. A *video* is one camera of
one recording.

Per video (units in brackets; the protocol itself, the model's convention and which frames count, is in
``h36m_protocol``):

    input  = detected 2D (T,17,2) [px] + confidence, normalised with the camera's image size (w, h):
             x_n = x / w * 2 - 1, y_n = y / w * 2 - h / w     (input_2d 'gt': the label's x, y with confidence 1)
    output = model(input) over the frames protocol's clips, flip-averaged, then the root step and gt_2d
             (``h36m_protocol.predict_video``)                                       (N,17,3) [normalised]
    pred   = denormalised to pixels: x = (x_n + 1) * w / 2, y = (y_n + h / w) * w / 2, depth = z_n * w / 2,
             times the per-frame 2.5D factor [mm/px], made root-relative                        (N,17,3) [mm]
    gt     = joints_2.5d_image [mm] (= joint3d_image [px] * factor), root-relative              (N,17,3) [mm]
    P1 = MPJPE(pred, gt) per frame; P2 = PA-MPJPE (similarity Procrustes per frame)             (N,) [mm]

Scores: per action (the 15 Human3.6M actions; variants such as "Directions 1" merged), the mean over the 15 action
means (the paper's number) and the mean over all frames.

Excluded, as in MotionBERT's evaluation: three S9 recordings with broken ground truth, (act, subact) = (5, 2),
(10, 2), (13, 1) = Greeting trial 2, SittingDown trial 2, Waiting trial 1; in the pkl their sources are
``s_09_act_05_subact_02_ca_0[1-4]``, ``s_09_act_10_subact_02_ca_0[1-4]`` and ``s_09_act_13_subact_01_ca_0[1-4]``
(the converter marks them ``reference_excluded``). VideoPose3D's files name trials by action name only ("Greeting",
"Greeting 1"); mocli takes trial k to be the k-th name in sorted order, so the excluded ones are "Greeting 1",
"SittingDown 1" and "Waiting" of S9 (an assumption: the npz carries no trial numbers).

VideoPose3D's npz holds world 3D and no cameras: each (subject, camera) is calibrated from its 2D and 3D by DLT
(calibration.py) and the 2.5D label is built like MotionBERT's: pixel x, y of the 3D joints, depth in pixels at the
root's depth, factor = root depth / focal [mm/px].
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mocli.data.converters import h36m as h36m_data
from mocli.data.converters.common import ConvertOptions, Task
from mocli.data.h5 import Sequence
from mocli.errors import InputError
from mocli.evaluation.calibration import PinholeCamera, fit_camera_dlt, reprojection_error
from mocli.evaluation.h36m_protocol import (  # the video type and the scoring, re-exported here
    ACTIONS,
    METRICS,
    H36MTestSet,
    H36MVideo,
    denormalise_h36m,
    evaluate_h36m,
    normalise_h36m,
    score_h36m,
    to_millimetres,
    video_errors,
)

__all__ = [
    "ACTIONS",
    "H36MVideo",
    "H36MTestSet",
    "canonical_action",
    "normalise_h36m",
    "denormalise_h36m",
    "to_millimetres",
    "video_errors",
    "load_test_set",
    "score_h36m",
    "evaluate_h36m",
    "METRICS",
]

log = logging.getLogger(__name__)

# Human3.6M action ids (the "act" of source strings such as s_09_act_05_subact_02_ca_01).
ACTION_IDS = {2: "Directions", 3: "Discussion", 4: "Eating", 5: "Greeting", 6: "Phoning", 7: "Posing",
              8: "Purchases", 9: "Sitting", 10: "SittingDown", 11: "Smoking", 12: "Photo", 13: "Waiting",
              14: "Walking", 15: "WalkDog", 16: "WalkTogether"}  # fmt: skip
_ALIASES = {a.lower(): a for a in ACTIONS} | {"takingphoto": "Photo", "walkingdog": "WalkDog",
                                              "walkingtogether": "WalkTogether"}  # fmt: skip
EXCLUDED_S9 = tuple(sorted(h36m_data.REFERENCE_EXCLUDED_S9))  # (act, subact)
_SOURCE = re.compile(r"s_(\d+)_act_(\d+)_subact_(\d+)_ca_(\d+)")
PKL_NAME = "h36m_sh_conf_cam_source_final.pkl"
NPZ_3D = "data_3d_h36m.npz"
NPZ_2D = "data_2d_h36m_cpn_ft_h36m_dbb.npz"


# --- pure maths -------------------------------------------------------------------------------------------------


def canonical_action(name: str) -> str:
    """One of the 15 action names from an action label or sequence name.

    's_09_act_05_subact_02_ca_01' -> 'Greeting'; 'S9_Directions 1' -> 'Directions'; 'TakingPhoto' -> 'Photo';
    'S11:WalkingDog 1:55011271' -> 'WalkDog'. An unknown name comes back without its trial number.
    """
    m = _SOURCE.search(name)
    if m and int(m.group(2)) in ACTION_IDS:
        return ACTION_IDS[int(m.group(2))]
    text = re.sub(r"^S\d+[_:]", "", name.strip()).split(":")[0]
    text = re.sub(r"[\s_\-]*\d+$", "", text).strip()
    return _ALIASES.get(re.sub(r"[\s_\-]", "", text).lower(), text)


# --- reading the test set ---------------------------------------------------------------------------------------


def resolve_paths(paths: list[Path]) -> tuple[str, list[Path]]:
    """The layout ('pkl', 'npz', 'h5') and the files to read from the --data arguments.

    A folder is searched for the pkl, then for the npz pair; a 2D npz alone finds ``data_3d_h36m.npz`` beside it.
    """
    if not paths:
        raise InputError("no --data given")
    files: list[Path] = []
    for p in paths:
        if not p.exists():
            raise InputError(f"no such file or folder: {p}")
        files += _files_in(p) if p.is_dir() else [p]
    suffixes = {p.suffix.lower() for p in files}
    if suffixes <= {".pkl"} and len(files) == 1:
        return "pkl", files
    if suffixes <= {".h5", ".hdf5"} and len(files) == 1:
        return "h5", files
    if suffixes <= {".npz"}:
        return "npz", _npz_pair(files)
    raise InputError(f"--data: expected one {PKL_NAME}, one mocli .h5, or the VideoPose3D npz pair; "
                     f"got {', '.join(p.name for p in files)}")  # fmt: skip


def _files_in(folder: Path) -> list[Path]:
    for candidates in ([folder / PKL_NAME], [folder / NPZ_2D, folder / NPZ_3D]):
        if all(c.is_file() for c in candidates):
            return candidates
    raise InputError(f"{folder}: holds neither {PKL_NAME} nor {NPZ_2D} + {NPZ_3D}")


def _npz_kind(path: Path) -> str:
    try:
        with np.load(path, allow_pickle=True) as z:
            keys = set(z.files)
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: not a readable npz ({e})") from None
    for kind in ("positions_3d", "positions_2d"):
        if kind in keys:
            return kind
    raise InputError(f"{path}: neither positions_3d nor positions_2d (not a VideoPose3D npz)")


def _npz_pair(files: list[Path]) -> list[Path]:
    """[2D file, 3D file] from one or two npz paths (the 3D file found beside a lone 2D file)."""
    kinds: dict[str, list[Path]] = {}
    for f in files:
        kinds.setdefault(_npz_kind(f), []).append(f)
    if any(len(v) > 1 for v in kinds.values()):
        raise InputError("--data: give one 2D npz and at most one 3D npz")
    if "positions_2d" not in kinds:
        raise InputError(f"--data {files[0]}: the 2D detections are needed too (e.g. {NPZ_2D})")
    path_2d = kinds["positions_2d"][0]
    path_3d = kinds.get("positions_3d", [path_2d.parent / NPZ_3D])[0]
    if not path_3d.is_file():
        raise InputError(f"{path_2d}: no {NPZ_3D} beside it; give the 3D file too (--data 2D.npz --data 3D.npz)")
    return [path_2d, path_3d]


def load_test_set(paths: list[Path] | Path) -> H36MTestSet:
    """The Human3.6M test videos (S9, S11) of a pkl, an npz pair or a mocli HDF5.

    Raises:
        InputError: unreadable or unsupported files, or no test sequences.
    """
    layout, files = resolve_paths([Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths])
    notes: list[str] = []
    if layout == "pkl":
        task = Task(path=files[0], relpath=files[0].name, source="h36m")
        sequences = _test_sequences(h36m_data.convert(task, ConvertOptions(split_rule="native")))
    elif layout == "npz":
        task = Task(path=files[0], relpath=files[0].name, source="h36m", meta={"path_3d": files[1], "variant": ""})
        sequences = _test_sequences(h36m_data.convert(task, ConvertOptions(split_rule="native")))
    else:
        sequences = _h5_test_sequences(files[0])
    if not sequences:
        raise InputError(f"{files[0]}: no test sequences (subjects S9, S11)")
    ready = [s for s in sequences if s.joints3d_image is not None and s.factor_2_5d is not None]
    world = [s for s in sequences if s.joints3d_image is None and s.joints3d is not None and s.frame == "world"]
    videos = [_video_from_label(s) for s in ready]
    if world:
        videos += _videos_from_world(world, notes)
    if not videos:
        raise InputError(f"{files[0]}: test sequences lack 3D ground truth (joint3d_image or joints3d)")
    _mark_excluded(videos, {s.name: s for s in sequences})
    return H36MTestSet(videos=videos, layout=layout, paths=files, notes=notes)


def _test_sequences(sequences: Iterator[Sequence]) -> list[Sequence]:
    return [s for s in sequences if s.split == "test" and s.keypoints2d is not None]


def _h5_test_sequences(path: Path) -> list[Sequence]:
    from mocli.data.h5 import open_dataset

    with open_dataset(path) as ds:
        try:
            refs = [r for r in ds if r.split == "test" or r.attrs.get("subject") in h36m_data.TEST_SUBJECTS]
            return [s for s in (r.load() for r in refs) if s.keypoints2d is not None]
        except (OSError, KeyError, ValueError) as e:
            raise InputError(f"{path}: cannot read sequences ({e})") from None


def _image_size(seq: Sequence) -> tuple[int, int]:
    if seq.image_size is not None:
        return int(seq.image_size[0]), int(seq.image_size[1])
    if seq.camera in h36m_data.CAMERAS:
        return h36m_data.image_size(seq.camera)
    raise InputError(f"{seq.name}: unknown camera {seq.camera!r} and no image_size; cannot normalise its 2D")


def _keypoints(seq: Sequence) -> np.ndarray:
    kp = np.asarray(seq.keypoints2d, dtype=np.float64)
    return kp[0] if kp.ndim == 4 else kp


def _video_from_label(seq: Sequence) -> H36MVideo:
    """A video with MotionBERT's label (joint3d_image, 2.5d factor); mm ground truth from joints_2.5d_image."""
    joints_image = np.asarray(seq.joints3d_image, dtype=np.float64)
    factor = np.asarray(seq.factor_2_5d, dtype=np.float64).reshape(-1)
    if seq.joints3d is not None and seq.frame == "image_2.5d":
        joints_mm = np.asarray(seq.joints3d, dtype=np.float64) * 1000.0
    else:
        joints_mm = joints_image * factor[:, None, None]
    return H36MVideo(
        name=seq.name, subject=seq.subject, action=canonical_action(seq.action or seq.name), camera=seq.camera,
        image_size=_image_size(seq), keypoints2d=_keypoints(seq), joints_image=joints_image, factor=factor,
        joints_mm=joints_mm,
    )  # fmt: skip


def label_from_camera(joints_world: np.ndarray, camera: PinholeCamera) -> tuple[np.ndarray, np.ndarray]:
    """MotionBERT's 2.5D label of world joints (T,17,3) metres seen by ``camera``.

    Returns:
        joints_image (T,17,3): x, y pixels and depth relative to the root in pixels at the root's depth;
        factor (T,): millimetres per pixel at the root depth (root depth / focal length).
    """
    cam = camera.to_camera(joints_world)
    mm_per_px = 1000.0 * cam[:, 0, 2] / camera.focal
    depth_px = (cam[..., 2] - cam[:, :1, 2]) * 1000.0 / mm_per_px[:, None]
    return np.concatenate([camera.project(joints_world), depth_px[..., None]], axis=-1), mm_per_px


def _videos_from_world(sequences: list[Sequence], notes: list[str]) -> list[H36MVideo]:
    """Videos of world-frame sequences (VideoPose3D): one DLT camera per (subject, camera) from all its frames."""
    groups: dict[tuple[str, str], list[Sequence]] = {}
    for s in sequences:
        groups.setdefault((s.subject, s.camera), []).append(s)
    videos = []
    for (subject, camera_id), group in sorted(groups.items()):
        camera = _calibrate(group, f"{subject} camera {camera_id}")
        error = reprojection_error(camera, *_correspondences(group, max_frames=10**9))
        frames = sum(s.num_frames for s in group)
        notes.append(f"{subject} camera {camera_id}: DLT calibration, focal {camera.focal:.1f} px, "
                     f"mean reprojection error {error:.2f} px over {frames} frames")  # fmt: skip
        for s in group:
            joints_image, factor = label_from_camera(np.asarray(s.joints3d, np.float64), camera)
            videos.append(H36MVideo(
                name=s.name, subject=s.subject, action=canonical_action(s.action or s.name), camera=s.camera,
                image_size=_image_size(s), keypoints2d=_keypoints(s), joints_image=joints_image, factor=factor,
                joints_mm=joints_image * factor[:, None, None],
            ))  # fmt: skip
    return videos


def _correspondences(group: list[Sequence], max_frames: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """(N,17,3) world metres and (N,17,2) pixels: every k-th frame of the group, at most about ``max_frames``."""
    total = sum(s.num_frames for s in group)
    step = max(1, total // max_frames)
    points = np.concatenate([np.asarray(s.joints3d, np.float64)[::step] for s in group])
    pixels = np.concatenate([_keypoints(s)[::step, :, :2] for s in group])
    return points, pixels


def _calibrate(group: list[Sequence], where: str) -> PinholeCamera:
    try:
        return fit_camera_dlt(*_correspondences(group))
    except ValueError as e:
        raise InputError(f"{where}: cannot calibrate the camera from the 2D and 3D ({e})") from None


def _mark_excluded(videos: list[H36MVideo], sequences: dict[str, Sequence]) -> None:
    """Set ``excluded`` on the three broken S9 recordings (every camera of them)."""
    npz_names = _npz_excluded_actions([s for s in sequences.values() if s.subject == "S9"])
    for v in videos:
        seq = sequences[v.name]
        m = _SOURCE.search(v.name)
        by_source = bool(m) and int(m.group(1)) == 9 and (int(m.group(2)), int(m.group(3))) in EXCLUDED_S9
        by_npz = v.subject == "S9" and not m and seq.action in npz_names
        v.excluded = bool(seq.extra.get("reference_excluded")) or by_source or by_npz


def _npz_excluded_actions(s9: list[Sequence]) -> set[str]:
    """Action names of the excluded S9 trials in VideoPose3D naming: trial k = the k-th of the sorted names."""
    trials: dict[str, list[str]] = {}
    for s in s9:
        if not _SOURCE.search(s.name) and s.action:
            trials.setdefault(canonical_action(s.action), [])
            if s.action not in trials[canonical_action(s.action)]:
                trials[canonical_action(s.action)].append(s.action)
    out = set()
    for act, subact in EXCLUDED_S9:
        names = sorted(trials.get(ACTION_IDS[act], []))
        if len(names) >= subact:
            out.add(names[subact - 1])
    return out
