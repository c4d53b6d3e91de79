"""AMC motions on an ASF skeleton (CMU mocap database, HDM05): parsing and forward kinematics (pure numpy).

An AMC file holds a header (``#`` comments, ``:FULLY-SPECIFIED``, ``:DEGREES`` or ``:RADIANS``), then per frame its
number on a line of its own and one line ``bone v1 v2 ...`` per bone with DOFs (the root: one value per entry of its
``order``). Forward kinematics follows the common readers:

- Euler angles are composed so that the first letter acts first: ``axis 10 20 30 XYZ`` gives
  ``C = Rz(30) Ry(20) Rx(10)``; a frame's DOF values give ``M`` the same way in ``dof`` order (missing DOFs are 0).
  The root's ``C`` comes from its ``orientation`` in its ``axis`` order, its ``M`` from the rotation values.
- Global rotation of a bone: ``G = G_parent C M C^-1``; its end point is ``p = p_parent + length G direction``, where
  ``p_parent`` is the parent bone's end point (the root's: its translation values; the ASF ``position`` where a
  translation is not in ``order``). File length units (``Asf.metres_per_unit`` converts).

Files are read as Latin-1 (HDM05's AMC headers hold Latin-1 bytes); errors are one-line ``InputError``s naming the
file and the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mocli.data.asf import Asf, read_latin1, text_lines
from mocli.data.bvh import euler_to_matrix
from mocli.errors import InputError

__all__ = ["Amc", "AsfPose", "parse_amc", "read_amc", "forward_kinematics"]


@dataclass(frozen=True)
class Amc:
    """A parsed AMC motion for one ``Asf``.

    Attributes:
        values: (T, D) float64 DOF values per frame, columns bone by bone as ``Asf.dof_columns()``; angles in
            ``angle_unit``, translations in file length units.
        angle_unit: 'deg' or 'rad' (the header's ``:DEGREES``/``:RADIANS``, else the ASF's unit).
        first_frame: the number of the first frame in the file (frames are consecutive).
        name: where it came from (file name), for messages.
    """

    values: np.ndarray
    angle_unit: str
    first_frame: int = 1
    name: str = "<amc>"

    @property
    def num_frames(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True)
class AsfPose:
    """Forward kinematics of an AMC motion on its ASF skeleton.

    Attributes:
        positions: (T, B, 3) float64 end point of each bone (the root: its translation), file length units.
        rotations: (T, B, 3, 3) float64 global rotation ``G`` of each bone.
    """

    positions: np.ndarray
    rotations: np.ndarray


def parse_amc(text: str, asf: Asf, source: str = "<amc>") -> Amc:
    """Parse the text of an AMC file recorded on ``asf``.

    Raises:
        InputError: one line naming ``source`` and the line: an unknown bone, missing or extra DOF values, a bone
            with DOFs missing from a frame block (or given twice), a value that is not a finite number, frame
            numbers that are not consecutive, or no frames at all.
    """
    lines = text_lines(text)
    angle_unit = asf.angle_unit
    start = 0
    for start, raw in enumerate(lines):  # noqa: B007 (the header ends at the first other line)
        words = raw.split()
        if words and words[0].startswith(":"):
            key = words[0][1:].upper()
            angle_unit = {"DEGREES": "deg", "RADIANS": "rad"}.get(key, angle_unit)
        elif words and not words[0].startswith("#"):
            break
    else:
        start = len(lines)
    index = {name: k for k, name in enumerate(asf.bone_names)}
    ndof = [len(b.dof) for b in asf.bones]
    needed = sum(1 for k in ndof if k)
    seen = [-1] * len(ndof)
    tokens: list[str] = []
    line_bone: list[int] = []
    line_frame: list[int] = []
    line_number: list[int] = []
    frame_line: list[int] = []  # line of each frame number
    first = count = 0
    for n in range(start, len(lines)):
        words = lines[n].split()
        if not words:
            continue
        head = words[0]
        if len(words) == 1 and head.isascii() and head.isdigit():
            if frame_line and count != needed:
                _missing_bones(asf, seen, len(frame_line) - 1, frame_line[-1], source)
            number = int(head)
            if not frame_line:
                first = number
            elif number != first + len(frame_line):
                expected = first + len(frame_line)
                raise InputError(f"{source} line {n + 1}: frame number {number}, expected {expected}")
            frame_line.append(n + 1)
            count = 0
            continue
        if head.startswith("#"):
            continue
        bone = index.get(head)
        if bone is None:
            raise InputError(f"{source} line {n + 1}: unknown bone {head!r} (not in {asf.name})")
        if not frame_line:
            raise InputError(f"{source} line {n + 1}: bone values before the first frame number")
        if len(words) - 1 != ndof[bone]:
            got, want = len(words) - 1, ndof[bone]
            raise InputError(f"{source} line {n + 1}: bone {head!r} has {got} values, its DOFs need {want}")
        frame = len(frame_line) - 1
        if seen[bone] == frame:
            raise InputError(f"{source} line {n + 1}: bone {head!r} appears twice in frame {first + frame}")
        seen[bone] = frame
        count += ndof[bone] > 0
        tokens += words[1:]
        line_bone.append(bone)
        line_frame.append(frame)
        line_number.append(n + 1)
    if not frame_line:
        raise InputError(f"{source}: no frames (empty motion)")
    if count != needed:
        _missing_bones(asf, seen, len(frame_line) - 1, frame_line[-1], source)
    values = _to_numbers(tokens, np.array(line_bone), np.array(line_number), ndof, source)
    frames = np.array(line_frame, dtype=np.int64)
    bones = np.array(line_bone, dtype=np.int64)
    width = sum(ndof)
    counts = np.asarray(ndof, dtype=np.int64)[bones]
    col0 = np.array([c.start for c in asf.dof_columns()], dtype=np.int64)
    line_start = frames * width + col0[bones]
    within = np.arange(values.size) - np.repeat(np.cumsum(counts) - counts, counts)
    table = np.empty(len(frame_line) * width)
    table[np.repeat(line_start, counts) + within] = values
    return Amc(values=table.reshape(len(frame_line), width), angle_unit=angle_unit, first_frame=first, name=source)


def _missing_bones(asf: Asf, seen: list[int], frame: int, line: int, source: str) -> None:
    missing = [b.name for b, s in zip(asf.bones, seen, strict=True) if b.dof and s != frame]
    raise InputError(f"{source} line {line}: the frame block has no line for bone(s) {', '.join(missing)}")


def _to_numbers(tokens: list[str], bones: np.ndarray, lines: np.ndarray, ndof: list[int], source: str) -> np.ndarray:
    """(N,) float64 from the value tokens; InputError naming the line of the first non-numeric or non-finite one."""
    ends = np.cumsum(np.asarray(ndof, dtype=np.int64)[bones]) if len(bones) else np.zeros(0, np.int64)
    try:
        values = np.array(tokens, dtype=np.float64)
    except ValueError:
        bad = next(k for k, t in enumerate(tokens) if not _is_float(t))
        line = int(lines[np.searchsorted(ends, bad, side="right")])
        raise InputError(f"{source} line {line}: {tokens[bad]!r} is not a number") from None
    finite = np.isfinite(values)
    if not finite.all():
        bad = int(np.argmin(finite))
        line = int(lines[np.searchsorted(ends, bad, side="right")])
        raise InputError(f"{source} line {line}: value {tokens[bad]!r} is not finite")
    return values


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_amc(path: str | Path, asf: Asf) -> Amc:
    """Read and parse an AMC file recorded on ``asf`` (Latin-1; InputError on unreadable or malformed files)."""
    return parse_amc(read_latin1(path), asf, source=Path(path).name)


def _rotation(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """(..., 3, 3) rotations from (..., K) angles whose first letter of ``order`` acts first (XYZ: Rz Ry Rx)."""
    return euler_to_matrix(np.asarray(angles_deg)[..., ::-1], order[::-1])


def forward_kinematics(asf: Asf, amc: Amc) -> AsfPose:
    """Global rotations and end points of every bone, vectorised over frames (see the module docstring).

    Returns:
        AsfPose with positions (T, B, 3) in file length units and rotations (T, B, 3, 3); B = len(asf.bones).
    """
    num_frames, num_bones = amc.num_frames, len(asf.bones)
    width = sum(len(bone.dof) for bone in asf.bones)
    if amc.values.shape[1:] != (width,):
        raise InputError(f"{amc.name}: {amc.values.shape[1:]} DOF values per frame, {asf.name} has {width} DOFs")
    to_deg = 1.0 if amc.angle_unit == "deg" else 180.0 / np.pi
    rotations = np.empty((num_frames, num_bones, 3, 3))
    positions = np.empty((num_frames, num_bones, 3))
    for b, (bone, parent, cols) in enumerate(zip(asf.bones, asf.parents, asf.dof_columns(), strict=True)):
        values = amc.values[:, cols]
        rot = [k for k, d in enumerate(bone.dof) if d[0] == "r"]
        local = np.broadcast_to(np.eye(3), (num_frames, 3, 3))
        if rot:
            axis = _rotation(np.array(bone.axis_deg), bone.axis_order)
            order = "".join(bone.dof[k][1].upper() for k in rot)
            local = axis @ _rotation(values[:, rot] * to_deg, order) @ axis.T
        if parent < 0:
            rotations[:, b] = local
            trans = np.broadcast_to(np.asarray(asf.root_position, dtype=np.float64), (num_frames, 3)).copy()
            for k, d in enumerate(bone.dof):
                if d[0] == "t":
                    trans[:, "xyz".index(d[1])] = values[:, k]
            positions[:, b] = trans
        else:
            rotations[:, b] = rotations[:, parent] @ local
            direction = bone.length * np.asarray(bone.direction)
            positions[:, b] = positions[:, parent] + rotations[:, b] @ direction
    return AsfPose(positions=positions, rotations=rotations)
