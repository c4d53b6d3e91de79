"""The benchmark's camera ranges: the default ``VIEW`` (cameras 0-20 degrees above the body, 3.5-5 m away, 50-60
degrees of horizontal field of view, 640x640 pixels), the same with other ranges given as 'LO,HI' text, a one-line
description, and the pitch of a posed camera. Pure; used by benchmarks/rendered_mocap.py and its siblings."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mocli.data.cameras import ViewRange, up_vector
from mocli.errors import InputError

VIEW = ViewRange(yaw_deg=(0.0, 360.0), pitch_deg=(0.0, 20.0), roll_deg=0.0, distance_m=(3.5, 5.0),
                 fov_deg=(50.0, 60.0), image_size=(640, 640))  # fmt: skip


def parse_range(text: str, option: str) -> tuple[float, float]:
    """'LO,HI' -> (LO, HI) floats with LO <= HI, both finite.

    Raises:
        InputError: anything else, naming ``option``.
    """
    try:
        lo, hi = (float(part) for part in text.split(","))
    except ValueError:  # not numbers, or not two of them
        raise InputError(f"{option} {text!r}: expected LO,HI (two numbers)") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo <= hi):
        raise InputError(f"{option} {text!r}: expected finite numbers with LO <= HI")
    return lo, hi


def make_view(
    pitch: str | None = None, distance: str | None = None, fov: str | None = None, base: ViewRange = VIEW
) -> ViewRange:
    """``base`` (default ``VIEW``) with the ranges given as 'LO,HI' text (None keeps the base's).

    Args:
        pitch: degrees in [-90, 90], positive = camera above the target, looking down.
        distance: metres, > 0 (camera to the sequence's mean pelvis).
        fov: horizontal field of view, degrees in (0, 180).
    Raises:
        InputError: malformed or out-of-range values.
    """
    view = base
    if pitch is not None:
        lo, hi = parse_range(pitch, "--pitch")
        if lo < -90 or hi > 90:
            raise InputError(f"--pitch {pitch!r}: degrees must lie in [-90, 90]")
        view = replace(view, pitch_deg=(lo, hi))
    if distance is not None:
        lo, hi = parse_range(distance, "--distance")
        if lo <= 0:
            raise InputError(f"--distance {distance!r}: metres must be > 0")
        view = replace(view, distance_m=(lo, hi))
    if fov is not None:
        lo, hi = parse_range(fov, "--fov")
        if lo <= 0 or hi >= 180:
            raise InputError(f"--fov {fov!r}: degrees must lie in (0, 180)")
        view = replace(view, fov_deg=(lo, hi))
    return view


def describe_view(view: ViewRange) -> str:
    """One line of a ViewRange's ranges: 'yaw 0-360 deg, pitch 0-20 deg, roll +-0 deg, distance 3.5-5 m, fov 50-60
    deg, 640x640 px' for ``VIEW``."""

    def span(r: tuple[float, float]) -> str:
        return f"{r[0]:g}-{r[1]:g}"

    w, h = view.image_size
    return (f"yaw {span(view.yaw_deg)} deg, pitch {span(view.pitch_deg)} deg, roll +-{view.roll_deg:g} deg, "
            f"distance {span(view.distance_m)} m, fov {span(view.fov_deg)} deg, {w}x{h} px")  # fmt: skip


def camera_pitch_deg(R: np.ndarray, up_axis: str) -> float:
    """Elevation of a camera's optical axis below the horizon, degrees (positive: looking down, as the pitch of
    ``ViewRange``), from its (3,3) world -> camera rotation and the world's up axis ('y', 'z', ...)."""
    forward = np.asarray(R, np.float64)[2]  # the optical axis in world coordinates
    return float(np.degrees(np.arcsin(np.clip(-forward @ up_vector(up_axis), -1.0, 1.0))))
