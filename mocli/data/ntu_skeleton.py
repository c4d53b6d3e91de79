"""NTU RGB+D's raw Kinect v2 skeleton files (``*.skeleton``): parsing, sample names, benchmark splits, and the main
bodies as H36M-17 arrays.

File format (text, one record per line)::

    F                                   number of frames
    per frame:  B                       number of bodies in this frame
      per body: bodyID clippedEdges handLeftConfidence handLeftState handRightConfidence handRightState
                isRestricted leanX leanY trackingState                      (10 values; bodyID a 64-bit integer)
                25                      number of joints
                25 lines of x y z depthX depthY colorX colorY orientationW orientationX orientationY orientationZ
                trackingState           (12 values)

x, y, z are metres in Kinect's camera space (right-handed: x towards the sensor's left, y up, z forward); depthX,
depthY are pixels of the 512x424 depth image and colorX, colorY pixels of the 1920x1080 colour image; a joint's
trackingState is 0 (not tracked), 1 (inferred) or 2 (tracked). Joints are in Kinect's order (``skeleton.KINECT_25``).

Bodies are followed by bodyID across frames: each distinct ID is one body with (T, 25, ...) arrays, NaN in the frames
where it is absent. The main bodies of a sample (at most two, for NTU's two-person actions) are the ones seen in the
most frames, ties broken by the larger motion energy (the sum over joints and axes of the variance of x, y, z over
the body's frames), then by first appearance.

Sample names are ``SsssCcccPpppRrrrAaaa`` (setup, camera, performer, replication, action; 1-based); the label is
action - 1. Benchmarks: ``xsub`` (training performers ``XSUB_TRAIN_PERFORMERS``, NTU-120's list; its members up to
40 are NTU-60's list), ``xview`` (training cameras 2 and 3), ``xset`` (even setups train); the others are 'val'.

Parsing is pure (text in, arrays out); malformed text raises a one-line ``InputError`` naming the file and line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mocli.errors import InputError
from mocli.skeleton import KINECT_25, to_h36m

__all__ = [
    "NUM_JOINTS",
    "FPS",
    "IMAGE_SIZE",
    "BENCHMARKS",
    "XSUB_TRAIN_PERFORMERS",
    "XVIEW_TRAIN_CAMERAS",
    "TRACKING_CONFIDENCE",
    "SampleName",
    "parse_sample_name",
    "SkeletonBody",
    "SkeletonFile",
    "parse_skeleton",
    "read_skeleton",
    "read_missing_list",
    "motion_energy",
    "main_bodies",
    "h36m_keypoints",
    "fill_missing",
    "read_skeleton_keypoints",
    "camera_joints",
]

NUM_JOINTS = KINECT_25.num_joints  # 25
FPS = 30.0
IMAGE_SIZE = (1920, 1080)  # (w, h) of the colour image, pixels
BENCHMARKS = ("xsub", "xview", "xset")
XSUB_TRAIN_PERFORMERS = frozenset({
    1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38, 45, 46, 47, 49, 50, 52, 53, 54, 55, 56,
    57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103,
})  # fmt: skip
XVIEW_TRAIN_CAMERAS = frozenset({2, 3})
TRACKING_CONFIDENCE = (0.0, 0.5, 1.0)  # keypoint confidence by joint tracking state: not tracked, inferred, tracked

_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
_BODY_VALUES, _JOINT_VALUES = 10, 12


@dataclass(frozen=True)
class SampleName:
    """The fields of an NTU sample name (1-based numbers)."""

    setup: int
    camera: int
    performer: int
    replication: int
    action: int

    @property
    def name(self) -> str:
        """'S001C002P003R002A013'."""
        s, c, p, r, a = self.setup, self.camera, self.performer, self.replication, self.action
        return f"S{s:03d}C{c:03d}P{p:03d}R{r:03d}A{a:03d}"

    @property
    def label(self) -> int:
        """0-based class: A001 -> 0."""
        return self.action - 1

    def split(self, benchmark: str) -> str:
        """'train' or 'val' of this sample in ``benchmark`` ('xsub', 'xview' or 'xset').

        Raises:
            InputError: unknown benchmark.
        """
        if benchmark == "xsub":
            train = self.performer in XSUB_TRAIN_PERFORMERS
        elif benchmark == "xview":
            train = self.camera in XVIEW_TRAIN_CAMERAS
        elif benchmark == "xset":
            train = self.setup % 2 == 0
        else:
            raise InputError(f"unknown NTU benchmark {benchmark!r}; known: {', '.join(BENCHMARKS)}")
        return "train" if train else "val"


def parse_sample_name(name: str) -> SampleName:
    """'S001C002P003R002A013' (a file stem) -> its fields.

    Raises:
        InputError: not of the form SsssCcccPpppRrrrAaaa with numbers from 1.
    """
    m = _NAME.fullmatch(name)
    if not m or 0 in (values := tuple(int(g) for g in m.groups())):
        raise InputError(f"{name}: not an NTU sample name (expected SsssCcccPpppRrrrAaaa, e.g. S001C001P001R001A011)")
    return SampleName(*values)


@dataclass
class SkeletonBody:
    """One tracked body (one bodyID) over the T frames of a file; NaN (tracking -1) in frames where it is absent.

    Attributes:
        body_id: Kinect's tracking ID.
        xyz: (T, 25, 3) float64 metres, Kinect camera space (x to the sensor's left, y up, z forward).
        colour_px: (T, 25, 2) float64 pixels of the 1920x1080 colour image.
        depth_px: (T, 25, 2) float64 pixels of the 512x424 depth image.
        tracking: (T, 25) int8 joint tracking state: 0 not tracked, 1 inferred, 2 tracked, -1 body absent.
    """

    body_id: int
    xyz: np.ndarray
    colour_px: np.ndarray
    depth_px: np.ndarray
    tracking: np.ndarray

    @property
    def present(self) -> np.ndarray:
        """(T,) bool: the frames where the body is in the file."""
        return self.tracking[:, 0] >= 0


@dataclass
class SkeletonFile:
    """A parsed ``.skeleton`` file: ``num_frames`` T and its bodies in order of first appearance."""

    num_frames: int
    bodies: list[SkeletonBody]


class _Lines:
    """The lines of a file with a cursor, raising one-line errors that name the file and the line (1-based)."""

    def __init__(self, text: str, where: str):
        self.lines = text.splitlines()
        self.where = where
        self.i = 0

    def fail(self, line: int, what: str) -> InputError:
        return InputError(f"{self.where}:{line}: {what}")

    def take(self, what: str) -> str:
        if self.i >= len(self.lines):
            raise self.fail(len(self.lines) + 1, f"the file ends early, expected {what}")
        self.i += 1
        return self.lines[self.i - 1]

    def count(self, what: str) -> int:
        text = self.take(what).strip()
        try:
            value = int(text)
        except ValueError:
            raise self.fail(self.i, f"expected {what} (an integer), got {text[:40]!r}") from None
        if value < 0:
            raise self.fail(self.i, f"expected {what}, got {value}")
        return value

    def values(self, n: int, what: str) -> list[str]:
        tokens = self.take(what).split()
        if len(tokens) != n:
            raise self.fail(self.i, f"expected {n} values ({what}), got {len(tokens)}")
        return tokens

    def joints(self, what: str) -> np.ndarray:
        """The next 25 joint lines as a (25, 12) float64 array."""
        start = self.i
        rows = [line.split() for line in self.lines[start : start + NUM_JOINTS]]
        for j, row in enumerate(rows):
            if len(row) != _JOINT_VALUES:
                raise self.fail(
                    start + j + 1, f"expected {_JOINT_VALUES} values ({what}, joint {j + 1}), got {len(row)}"
                )
        if len(rows) < NUM_JOINTS:
            raise self.fail(len(self.lines) + 1, f"the file ends early, expected {what}, joint {len(rows) + 1}")
        self.i += NUM_JOINTS
        try:
            block = np.array(rows, dtype=np.float64)
        except ValueError:
            j = next(j for j, row in enumerate(rows) if not _numeric(row))
            raise self.fail(start + j + 1, f"non-numeric value in {what}, joint {j + 1}") from None
        state = block[:, -1]
        if not ((state == 0) | (state == 1) | (state == 2)).all():
            j = int(np.flatnonzero((state != 0) & (state != 1) & (state != 2))[0])
            raise self.fail(start + j + 1, f"tracking state {state[j]:g} of {what}, joint {j + 1} is not 0, 1 or 2")
        return block


def _numeric(tokens: list[str]) -> bool:
    try:
        np.array(tokens, dtype=np.float64)
    except ValueError:
        return False
    return True


def parse_skeleton(text: str, where: str = "<text>") -> SkeletonFile:
    """Parse the text of a ``.skeleton`` file (format in the module docstring).

    Args:
        text: the file's content.
        where: the file name for error messages.
    Raises:
        InputError: "<where>:<line>: <what>" for a non-integer or negative count, no frames, a wrong number of
            values on a line, a non-numeric value, a joint count other than 25, a tracking state other than 0, 1, 2,
            a bodyID twice in one frame, a file that ends early, or text after the last frame.
    """
    lines = _Lines(text, where)
    num_frames = lines.count("the number of frames")
    if num_frames == 0:
        raise lines.fail(1, "the file has 0 frames")
    seen: dict[int, list[tuple[int, np.ndarray]]] = {}  # bodyID -> [(frame, (25, 12) joints)], first-seen order
    for t in range(num_frames):
        frame = f"frame {t + 1} of {num_frames}"
        ids_here: set[int] = set()
        for b in range(lines.count(f"the number of bodies of {frame}")):
            body = f"{frame}, body {b + 1}"
            info = lines.values(_BODY_VALUES, f"the info line of {body}")
            try:
                body_id = int(info[0])
            except ValueError:
                raise lines.fail(lines.i, f"bodyID {info[0][:40]!r} of {body} is not an integer") from None
            if not _numeric(info[1:]):
                raise lines.fail(lines.i, f"non-numeric value in the info line of {body}")
            if body_id in ids_here:
                raise lines.fail(lines.i, f"bodyID {body_id} appears twice in {frame}")
            ids_here.add(body_id)
            joints = lines.count(f"the number of joints of {body}")
            if joints != NUM_JOINTS:
                raise lines.fail(lines.i, f"{body} has {joints} joints, expected {NUM_JOINTS}")
            seen.setdefault(body_id, []).append((t, lines.joints(body)))
    rest = [k for k in range(lines.i, len(lines.lines)) if lines.lines[k].strip()]
    if rest:
        raise lines.fail(rest[0] + 1, f"unexpected text after the last frame ({num_frames} frames)")
    return SkeletonFile(num_frames, [_body(body_id, rows, num_frames) for body_id, rows in seen.items()])


def _body(body_id: int, rows: list[tuple[int, np.ndarray]], num_frames: int) -> SkeletonBody:
    """(frame, (25, 12) joint values) pairs -> a SkeletonBody over all frames."""
    data = np.full((num_frames, NUM_JOINTS, _JOINT_VALUES), np.nan)
    frames = [t for t, _ in rows]
    data[frames] = np.stack([block for _, block in rows])
    tracking = np.full((num_frames, NUM_JOINTS), -1, dtype=np.int8)
    tracking[frames] = data[frames, :, 11].astype(np.int8)
    return SkeletonBody(body_id, data[..., 0:3], data[..., 5:7], data[..., 3:5], tracking)


def read_skeleton(path: str | os.PathLike) -> SkeletonFile:
    """Read and parse one ``.skeleton`` file (errors name the file by its name).

    Raises:
        InputError: unreadable (not UTF-8 / ASCII text) or malformed (see ``parse_skeleton``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path.name}: cannot read: {e}") from None
    return parse_skeleton(text, path.name)


def read_missing_list(path: str | os.PathLike) -> set[str]:
    """The sample names of the dataset's list of samples with missing skeletons (one name per line; blank lines and
    lines starting with '#' ignored; a trailing '.skeleton' allowed).

    Raises:
        InputError: unreadable, or a line that is not a sample name (naming the file and line).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path.name}: cannot read: {e}") from None
    names = set()
    for k, line in enumerate(lines):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name = text.removesuffix(".skeleton")
        if not _NAME.fullmatch(name):
            raise InputError(f"{path.name}:{k + 1}: {text[:40]!r} is not an NTU sample name (missing-skeleton list)")
        names.add(name)
    return names


def motion_energy(body: SkeletonBody) -> float:
    """Sum over joints and axes of the variance of x, y, z (m^2) over the frames where the body is present."""
    xyz = body.xyz[body.present]
    return float(np.nan_to_num(xyz.var(axis=0)).sum()) if len(xyz) else 0.0


def main_bodies(skel: SkeletonFile, max_bodies: int = 2, where: str = "") -> list[SkeletonBody]:
    """The (at most ``max_bodies``) main bodies: most frames present, then largest ``motion_energy``, then first
    appearance; in that order (the first is the main performer).

    Raises:
        InputError: no body in any frame (the dataset's missing-skeleton list names such samples).
    """
    if not skel.bodies:
        raise InputError(f"{where or 'skeleton'}: no body in any frame (a sample of the missing-skeleton list?)")
    order = sorted(
        range(len(skel.bodies)),
        key=lambda k: (-int(skel.bodies[k].present.sum()), -motion_energy(skel.bodies[k]), k),
    )
    return [skel.bodies[k] for k in order[:max_bodies]]


def h36m_keypoints(bodies: list[SkeletonBody]) -> np.ndarray:
    """The bodies' colour-image keypoints as H36M-17 (``skeleton.to_h36m`` of Kinect's joints).

    Returns:
        (M, T, 17, 3) float64: x, y pixels of the 1920x1080 colour image + confidence ``TRACKING_CONFIDENCE`` of the
        joint's tracking state (tracked 1, inferred 0.5, not tracked 0). x, y are NaN and the confidence 0 where the
        body is absent or the file's pixel value is not finite (``fill_missing`` turns them into zeros).
    """
    kp = np.empty((len(bodies), bodies[0].tracking.shape[0], NUM_JOINTS, 3))
    conf = np.asarray(TRACKING_CONFIDENCE + (0.0,))  # index -1 (absent) -> 0
    for m, body in enumerate(bodies):
        kp[m, ..., :2] = body.colour_px
        kp[m, ..., 2] = conf[body.tracking]
    bad = ~np.isfinite(kp[..., :2]).all(axis=-1)
    kp[bad, :2], kp[bad, 2] = np.nan, 0.0
    return to_h36m(kp, KINECT_25)


def fill_missing(keypoints: np.ndarray) -> np.ndarray:
    """(..., J, 3) pixels + confidence with NaN where missing -> float32 with (0, 0, 0) there (the zero padding of
    PYSKL's keypoints, which the action models expect)."""
    out = np.asarray(keypoints, dtype=np.float32).copy()
    out[~np.isfinite(out).all(axis=-1)] = 0.0
    return out


def read_skeleton_keypoints(path: str | os.PathLike, max_bodies: int = 2) -> np.ndarray:
    """A ``.skeleton`` file's main bodies as (M, T, 17, 3) float32 H36M-17 colour pixels + confidence at 30 fps,
    (0, 0, 0) where a body is absent (M = min(max_bodies, bodies in the file)).

    Raises:
        InputError: unreadable or malformed file, or no body in any frame.
    """
    bodies = main_bodies(read_skeleton(path), max_bodies, Path(path).name)
    return fill_missing(h36m_keypoints(bodies))


def camera_joints(body: SkeletonBody) -> np.ndarray:
    """A body's joints as H36M-17 in mocli's camera axes (x right, y down, z forward; right-handed like Kinect's
    camera space, which has x to the sensor's left and y up): (x, y, z) -> (-x, -y, z).

    Returns:
        (T, 17, 3) float64 metres, NaN where the body is absent.
    """
    xyz = body.xyz * np.array([-1.0, -1.0, 1.0])
    return to_h36m(xyz, KINECT_25, conf=False)
