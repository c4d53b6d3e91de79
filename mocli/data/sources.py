"""Motion sources: sequences of mocli HDF5 files (or plain arrays) as arrays in memory, the input of the clip
datasets (``mocli.data.clips``).

A *source* (``MotionSource``) is one sequence: 3D world (or camera) joints in metres, or 2D keypoints in pixels with
confidences, or both for a *paired* sequence (camera-frame 3D truth with a real detector's 2D of the same frames and
the camera that filmed it). ``load_sources`` reads every usable sequence of HDF5 files (leaving out the held-out
people and motions when asked); ``sources_from_arrays`` wraps arrays for tests and scripts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mocli.data.cameras import Camera
from mocli.data.holdout import is_held_out
from mocli.errors import InputError

__all__ = ["MotionSource", "sources_from_arrays", "load_sources", "subsample", "NUM_JOINTS"]

log = logging.getLogger(__name__)

NUM_JOINTS = 17
FRAMES_3D = ("world", "camera")


@dataclass(frozen=True)
class MotionSource:
    """One sequence in memory.

    Attributes:
        name: sequence name (for messages).
        fps: frames per second.
        joints3d: (T, 17, 3) float32 metres in ``frame`` ('world' with ``up_axis``, or 'camera': OpenCV axes), or
            None for 2D-only data.
        keypoints2d: (T, 17, 3) float32 x, y pixels + confidence, or None. Used when joints3d is None, or as the
            model input of a paired source.
        split: 'train', 'val' or 'test'.
        frame: frame of joints3d.
        up_axis: world up axis ('y', 'z', '-y', ...).
        origin: the file it came from.
        camera: the camera that filmed a paired source (camera-frame joints3d and the detector's keypoints2d of the
            same frames; R = identity, t = 0), else None.

    Raises:
        InputError: a camera without camera-frame joints3d and keypoints2d of the same shape, or with a focal
            length that is not a positive number.
    """

    name: str
    fps: float
    joints3d: np.ndarray | None = None
    keypoints2d: np.ndarray | None = None
    split: str = "train"
    frame: str = "world"
    up_axis: str = "y"
    origin: str = ""
    camera: Camera | None = None

    def __post_init__(self) -> None:
        if self.camera is None:
            return
        if self.joints3d is None or self.keypoints2d is None or self.frame != "camera":
            raise InputError(f"{self.name}: a paired sequence needs camera-frame joints3d and keypoints2d")
        if self.keypoints2d.shape != self.joints3d.shape:
            raise InputError(
                f"{self.name}: keypoints2d {self.keypoints2d.shape} and joints3d {self.joints3d.shape} disagree; "
                "a paired sequence needs (T, 17, 3) of each"
            )
        if not (np.isfinite(self.camera.focal) and self.camera.focal > 0):
            raise InputError(f"{self.name}: focal_px {self.camera.focal} is not a positive number")

    @property
    def is_3d(self) -> bool:
        return self.joints3d is not None

    @property
    def is_paired(self) -> bool:
        """3D truth with a real detector's 2D of the same frames, through ``camera``."""
        return self.camera is not None

    @property
    def num_frames(self) -> int:
        arr = self.joints3d if self.joints3d is not None else self.keypoints2d
        return 0 if arr is None else int(arr.shape[0])


def sources_from_arrays(
    joints3d: Sequence[np.ndarray], fps: float = 30.0, split: str = "train", up_axis: str = "y", name: str = "seq"
) -> list[MotionSource]:
    """Wrap (T, 17, 3) world-joint arrays in metres as sources (``name0``, ``name1``, ...)."""
    out = []
    for k, arr in enumerate(joints3d):
        arr = np.asarray(arr, dtype=np.float32)
        if arr.ndim != 3 or arr.shape[1:] != (NUM_JOINTS, 3):
            raise ValueError(f"expected (T, 17, 3) joints, got {arr.shape}")
        out.append(MotionSource(name=f"{name}{k}", fps=fps, joints3d=arr, split=split, up_axis=up_axis))
    return out


def subsample(source: MotionSource, fps: float) -> MotionSource:
    """Keep every k-th frame, k = round(source fps / fps) (no change when k <= 1 or fps is 0)."""
    step = int(round(source.fps / fps)) if fps > 0 else 1
    if step <= 1:
        return source
    return replace(
        source,
        fps=source.fps / step,
        joints3d=None if source.joints3d is None else source.joints3d[::step],
        keypoints2d=None if source.keypoints2d is None else source.keypoints2d[::step],
    )


def _paired_camera(seq) -> Camera | None:
    """The camera of a paired h5 Sequence (camera-frame joints3d, keypoints2d and a ``focal_px`` attribute), from
    ``focal_px``, ``principal_x_px``, ``principal_y_px`` (pixels) and ``image_size``, with R = identity and t = 0;
    None for any other sequence.

    Raises:
        InputError: the principal point or the image size is missing.
    """
    if seq.frame != "camera" or seq.keypoints2d is None or "focal_px" not in seq.extra:
        return None
    missing = [k for k in ("principal_x_px", "principal_y_px") if k not in seq.extra]
    missing += [] if seq.image_size else ["image_size"]
    if missing:
        raise InputError(f"{seq.name}: focal_px without {', '.join(missing)}; a paired sequence needs them")
    centre = np.array([float(seq.extra["principal_x_px"]), float(seq.extra["principal_y_px"])])
    w, h = seq.image_size
    return Camera(R=np.eye(3), t=np.zeros(3), focal=float(seq.extra["focal_px"]), centre=centre, image_size=(w, h))


def _sources_of_sequence(seq, origin: str) -> list[MotionSource]:
    """MotionSources of one h5 Sequence: its 3D joints (with its keypoints2d and camera when paired), else its 2D
    keypoints (one source per person).

    Raises:
        InputError: a paired sequence whose attributes or arrays do not fit (``_paired_camera``, ``MotionSource``).
    """
    if seq.joints3d is not None and seq.frame in FRAMES_3D:
        camera = _paired_camera(seq)
        return [
            MotionSource(
                name=seq.name, fps=seq.fps, joints3d=np.asarray(seq.joints3d, np.float32), split=seq.split,
                frame=seq.frame, up_axis=seq.up_axis or "y", origin=origin, camera=camera,
                keypoints2d=None if camera is None else np.asarray(seq.keypoints2d, np.float32),
            )
        ]  # fmt: skip
    if seq.keypoints2d is not None:
        kp = np.asarray(seq.keypoints2d, np.float32)
        people = kp if kp.ndim == 4 else kp[None]
        return [
            MotionSource(name=f"{seq.name}#{m}", fps=seq.fps, keypoints2d=p, split=seq.split, origin=origin)
            for m, p in enumerate(people)
        ]
    log.debug("%s: %s has no usable joints3d (frame %s) or keypoints2d; skipped", origin, seq.name, seq.frame)
    return []


def load_sources(paths: Sequence[str | Path], fps: float = 0.0, holdout: bool = False) -> list[MotionSource]:
    """Every usable sequence of mocli HDF5 files (all splits), subsampled to ``fps`` when given.

    ``holdout``: leave out the sequences that the generalisation benchmark scores (``mocli.data.holdout``).
    Logs a warning when BVH / ASF-AMC files disagree on the trunk joints (``prepare dataset --trunk``).

    Raises:
        InputError: a file is missing, not HDF5, or not a mocli dataset.
    """
    from mocli.data.h5 import open_dataset  # h5py only when reading files

    sources: list[MotionSource] = []
    trunks: dict[str, str] = {}  # trunk convention of the BVH / ASF-AMC files -> the first file with it
    for path in paths:
        with open_dataset(path) as ds:
            try:
                for ref in ds:
                    seq = ref.load()
                    if ds.kind in ("bvh", "amc"):  # files written before the attribute hold the rig's trunk
                        trunks.setdefault(str(seq.extra.get("trunk", "rig")), Path(path).name)
                    if holdout and is_held_out(seq.source or ds.source, seq.name, seq.subject, seq.action):
                        log.debug("%s: %s is held out for the generalisation benchmark", path, seq.name)
                        continue
                    sources += [subsample(s, fps) for s in _sources_of_sequence(seq, Path(path).name)]
            except (OSError, KeyError, ValueError) as e:
                raise InputError(f"{path}: cannot read sequences ({e})") from None
    if len(trunks) > 1:
        mixed = ", ".join(f"{name} ({trunk})" for trunk, name in sorted(trunks.items()))
        log.warning("the mocap files place pelvis, spine and thorax differently: %s; prepare them alike "
                    "(mocli prepare dataset --trunk)", mixed)  # fmt: skip
    return sources
