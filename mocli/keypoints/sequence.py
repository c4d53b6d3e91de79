"""``KeypointSequence``, the in-memory form of a keypoints npz, and its assembly from per-frame detections.

``build_sequences`` is the one place where detections (from a video detector or an imported JSON) become sequences:
identities (source track ids, a single track, or mocli's tracker) -> person selection -> dense (T, ...) arrays ->
short gaps interpolated -> H36M-17.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from mocli.errors import InputError
from mocli.keypoints.base import Detection
from mocli.keypoints.tracking import (
    PersonSelector,
    Track,
    fill_gaps,
    group_by_track_id,
    select_tracks,
    single_track,
    stack_track,
    track_detections,
)
from mocli.skeleton import H36M_17, to_h36m

__all__ = ["KeypointSequence", "build_sequences", "drop_unusable", "make_tracks", "source_keypoints_key"]

log = logging.getLogger(__name__)


@dataclass
class KeypointSequence:
    """2D keypoints of one person over every frame of a video, in H36M-17 order.

    Attributes:
        keypoints: (T, 17, 3) float32: x, y in pixels of the original image, then confidence in [0, 1]. Frames
            without the person have NaN coordinates and confidence 0.
        image_size: (w, h) in pixels.
        fps: frames per second.
        valid: (T,) bool, the person was detected in that frame.
        interpolated: (T,) bool, the frame was filled by interpolation (then ``valid`` is False).
        track_id: identity of the person in the source.
        source: detector or import format (``"mediapipe"``, ``"alphapose"``, ...).
        video: path of the source video or file, for reference.
        extras: other (T, ...) arrays, e.g. ``landmarks33`` (T, 33, 3) pixels + visibility and
            ``world_landmarks33`` (T, 33, 3) metres for MediaPipe.
    """

    keypoints: np.ndarray
    image_size: tuple[int, int]
    fps: float
    valid: np.ndarray
    interpolated: np.ndarray
    track_id: int = 1
    source: str = ""
    video: str = ""
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.keypoints.shape[0])

    @property
    def joint_names(self) -> tuple[str, ...]:
        return H36M_17.joint_names


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def drop_unusable(seq: KeypointSequence, where: str) -> KeypointSequence:
    """The sequence with every joint and frame that cannot be lifted marked missing, each kind said in a warning.

    A joint whose x, y or confidence is NaN or infinite becomes missing (x = y = NaN, confidence 0); infinite
    confidences are invalid, not "very sure". A frame left without a joint with finite coordinates and confidence
    is missing (``valid`` and ``interpolated`` False), whatever ``valid`` said, so downstream code lists it among
    the missing frames instead of lifting made-up input. Finite confidences are kept as they are. ``keypoints`` is
    (T, 17, 3) pixels + confidence; the result is a new sequence (the input is not changed).

    Raises:
        InputError: no frame has a usable joint.
    """
    kp = np.array(seq.keypoints, dtype=np.float32, copy=True)
    conf = kp[..., 2]
    nan_conf, inf_conf = np.isnan(conf), np.isinf(conf)
    bad = nan_conf | inf_conf | ~np.isfinite(kp[..., :2]).all(-1)
    usable = (~bad).any(-1)
    if not usable.any():
        raise InputError(
            f"{where}: no frame has a usable keypoint (every joint has a NaN or infinite coordinate or confidence)"
        )
    if nan_conf.any():
        what = _count(int(nan_conf.sum()), "keypoint confidence is", "keypoint confidences are")
        log.warning("%s: %s NaN: those joints are treated as missing", where, what)
    if inf_conf.any():
        what = _count(int(inf_conf.sum()), "keypoint confidence is", "keypoint confidences are")
        log.warning("%s: %s infinite, which is invalid: those joints are treated as missing", where, what)
    kp[bad, :2] = np.nan
    kp[bad, 2] = 0.0
    valid = np.asarray(seq.valid, dtype=bool) & usable
    interpolated = np.asarray(seq.interpolated, dtype=bool) & usable
    dropped = int((np.asarray(seq.valid, dtype=bool) & ~usable).sum())
    if dropped:
        what = _count(dropped, "frame is marked valid but has", "frames are marked valid but have")
        log.warning("%s: %s no usable keypoint: treated as missing", where, what)
    return replace(seq, keypoints=kp, valid=valid, interpolated=interpolated)


def source_keypoints_key(skeleton: str) -> str:
    """Name of the extra array that keeps the detector's own keypoints: ``landmarks33`` for MediaPipe (33 joints),
    ``keypoints_<skeleton>`` otherwise (e.g. ``keypoints_halpe`` (T, 26, 3))."""
    return "landmarks33" if skeleton == "mediapipe" else f"keypoints_{skeleton}"


def make_tracks(per_frame: Sequence[Sequence[Detection]], multi_person: bool) -> list[Track]:
    """Identities for the detections: the source's track ids when every detection has a distinct one per frame,
    else one track (single-person detectors), else mocli's tracker."""
    dets = [d for frame in per_frame for d in frame]
    if dets and all(d.track_id is not None for d in dets):
        try:
            return group_by_track_id(per_frame)
        except ValueError as e:
            log.info("source track ids are not identities (%s); tracking instead", e)
    if not multi_person:
        return single_track(per_frame)
    return track_detections(per_frame)


def _sequence(
    track: Track, num_frames: int, skeleton: str, max_gap: int, meta: dict, keep_source: bool
) -> KeypointSequence:
    stacked = stack_track(track, num_frames)
    raw, interpolated = fill_gaps(stacked.keypoints, stacked.valid, max_gap)
    extras = {k: fill_gaps(v, stacked.valid, max_gap, conf=False)[0] for k, v in stacked.extras.items()}
    if keep_source and skeleton != H36M_17.name:
        extras = {source_keypoints_key(skeleton): raw, **extras}
    return KeypointSequence(
        keypoints=to_h36m(raw, skeleton).astype(np.float32),
        valid=stacked.valid,
        interpolated=interpolated,
        track_id=track.track_id,
        extras=extras,
        **meta,
    )


def build_sequences(
    per_frame: Sequence[Sequence[Detection]],
    *,
    skeleton: str,
    image_size: tuple[int, int],
    fps: float,
    source: str,
    video: str = "",
    person: PersonSelector = "largest",
    max_gap: int = 10,
    multi_person: bool = True,
    keep_source: bool = True,
) -> list[KeypointSequence]:
    """Turn per-frame detections into one H36M-17 sequence per selected person.

    Args:
        per_frame: T lists of detections, keypoints (J, 3) pixels + confidence in the ``skeleton`` layout.
        skeleton: name of the detections' joint layout in ``mocli.skeleton.SKELETONS``.
        image_size: (w, h) pixels.
        fps: frames per second.
        source, video: written to the sequences as provenance.
        person: ``"largest"``, ``"all"`` or a track id (see ``select_tracks``).
        max_gap: fill runs of up to this many missing frames by interpolation (0: none).
        multi_person: whether frames can hold several people (else all detections form one track).
        keep_source: keep the detector-layout keypoints as an extra array (``source_keypoints_key``).
    Returns:
        Sequences of T frames each, in track id order.
    Raises:
        InputError: nobody detected in any frame, or no track with the requested id.
    """
    tracks = make_tracks(per_frame, multi_person)
    meta = {"image_size": (int(image_size[0]), int(image_size[1])), "fps": float(fps), "source": source, "video": video}
    return [_sequence(t, len(per_frame), skeleton, max_gap, meta, keep_source) for t in select_tracks(tracks, person)]
