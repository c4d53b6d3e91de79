"""Video input: resolve files/folders/globs to video paths, probe them, and decode frames as a stream.

Frames are decoded one at a time with OpenCV (``read_frames`` is a generator), so memory stays flat however long the
video is. Every error a user can cause (missing file, unknown extension, not a video, truncated or empty video) is an
``InputError`` with one line that names the file.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mocli.errors import InputError

__all__ = [
    "FPS_RANGE",
    "VIDEO_EXTENSIONS",
    "VideoInfo",
    "decide_fps",
    "probe_video",
    "read_frames",
    "resolve_video_inputs",
    "ResolvedInput",
]

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".mts", ".3gp",
)  # fmt: skip

FPS_RANGE: tuple[float, float] = (1.0, 1000.0)  # frame rates mocli believes; others are a broken container header
_FPS_PROBE_FRAMES = 16  # frames whose timestamps estimate the rate when the header's is not believable


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video.

    ``num_frames`` is the container's frame count, which can be wrong (variable frame rate, truncated files); the
    number of frames ``read_frames`` yields is the truth.
    """

    path: Path
    width: int  # pixels
    height: int  # pixels
    fps: float  # frames per second
    num_frames: int  # from the container header; 0 when unknown

    @property
    def image_size(self) -> tuple[int, int]:
        """(w, h) in pixels."""
        return self.width, self.height


def _check_path(path: Path) -> None:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not a video file")
    if not path.is_file():  # a FIFO or device would block the decoder forever
        raise InputError(f"{path}: not a regular file (a pipe or device); save the video to a file first")
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        raise InputError(f"{path}: unsupported extension {path.suffix!r} (videos: {' '.join(VIDEO_EXTENSIONS)})")


def _open(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise InputError(f"{path}: cannot open as a video (not a video, truncated, or an unsupported codec)")
    return cap


def _info(path: Path, cap: cv2.VideoCapture) -> VideoInfo:
    width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = float(cap.get(cv2.CAP_PROP_FPS))
    num_frames = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
    if width <= 0 or height <= 0:
        raise InputError(f"{path}: no video stream (image size {width}x{height})")
    if not _believable(fps):
        fps = decide_fps(fps, _timestamps_ms(path, _FPS_PROBE_FRAMES), str(path))
    return VideoInfo(path=path, width=width, height=height, fps=fps, num_frames=num_frames)


def _believable(fps: float) -> bool:
    return bool(np.isfinite(fps)) and FPS_RANGE[0] <= fps <= FPS_RANGE[1]


def _timestamps_ms(path: Path, num_frames: int) -> list[float]:
    """Presentation times in milliseconds of the first ``num_frames`` frames (grabbed, not decoded)."""
    cap = cv2.VideoCapture(str(path))
    times: list[float] = []
    try:
        while len(times) < num_frames and cap.grab():
            times.append(float(cap.get(cv2.CAP_PROP_POS_MSEC)))
    finally:
        cap.release()
    return times


def decide_fps(reported: float, timestamps_ms: Sequence[float], where: str) -> float:
    """The frame rate to use when the container's (``reported``) is outside ``FPS_RANGE``.

    The median step between consecutive frame timestamps (milliseconds) gives the rate; if it is believable it is
    used with a warning, otherwise the video is refused (its timing cannot be known, and a wrong fps would be
    written into every result).

    Raises:
        InputError: neither the header nor the timestamps give a frame rate in ``FPS_RANGE``.
    """
    steps = np.diff(np.asarray(timestamps_ms, dtype=np.float64))
    steps = steps[np.isfinite(steps) & (steps > 0)]
    estimate = 1000.0 / float(np.median(steps)) if steps.size else float("nan")
    if _believable(estimate):
        log.warning("%s: the container reports %.4g fps; using %.4g fps from the frame timestamps", where, reported,
                    estimate)  # fmt: skip
        return estimate
    lo, hi = FPS_RANGE
    raise InputError(
        f"{where}: the container reports {reported:.4g} fps and the frame timestamps give no rate between {lo:g} "
        f"and {hi:g}; re-encode the video with its true frame rate"
    )


def probe_video(path: str | Path) -> VideoInfo:
    """Open ``path`` and read its size, fps and frame count without decoding frames.

    Raises:
        InputError: missing file, unknown extension, or a file OpenCV cannot open as a video.
    """
    path = Path(path)
    _check_path(path)
    cap = _open(path)
    try:
        return _info(path, cap)
    finally:
        cap.release()


def read_frames(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decode a video frame by frame.

    Args:
        path: a video file.
        max_frames: stop after this many frames (None: all).

    Yields:
        (H, W, 3) uint8 frames in BGR order (OpenCV's), in display order.

    Raises:
        InputError: the file cannot be opened, or not a single frame can be decoded (empty or truncated video).
    """
    path = Path(path)
    _check_path(path)
    cap = _open(path)
    count = 0
    try:
        info = _info(path, cap)
        while max_frames is None or count < max_frames:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            count += 1
            yield frame
    finally:
        cap.release()
    if count == 0:
        raise InputError(f"{path}: no decodable frames (empty or truncated video)")
    if max_frames is None and info.num_frames and count < info.num_frames:
        log.warning("%s: decoded %d of the %d frames the header announces (truncated?)", path, count, info.num_frames)


@dataclass(frozen=True)
class ResolvedInput:
    """One command-line input resolved to a video path, or to the error that explains why it is not one."""

    spec: str  # what the user typed
    path: Path | None
    error: str | None = None


def _is_glob(spec: str) -> bool:
    return any(c in spec for c in "*?[")


def _is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS


def resolve_video_inputs(specs: Sequence[str]) -> list[ResolvedInput]:
    """Expand files, folders (searched recursively for video extensions) and glob patterns into video paths.

    Explicit files are kept whatever their extension so that ``read_frames`` reports a bad one by name; folders
    and globs only contribute files with a video extension. Duplicates are dropped, order is kept (sorted within a
    folder or glob). A spec that yields nothing becomes a ``ResolvedInput`` with an ``error``.
    """
    out: list[ResolvedInput] = []
    seen: set[Path] = set()

    def add(spec: str, path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            out.append(ResolvedInput(spec, path))

    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if _is_video(p))
            if not found:
                out.append(ResolvedInput(spec, None, f"{spec}: no video files in this folder"))
        elif _is_glob(spec) and not path.exists():
            found = sorted(p for p in map(Path, glob.glob(spec, recursive=True)) if _is_video(p))
            if not found:
                out.append(ResolvedInput(spec, None, f"{spec}: no video files match"))
        else:
            found = [path]
        for p in found:
            add(spec, p)
    return out
