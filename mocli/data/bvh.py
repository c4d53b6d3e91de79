"""BVH motion capture files: parsing and forward kinematics (pure numpy).

A BVH file has a HIERARCHY (ROOT/JOINT/End Site blocks with an OFFSET and CHANNELS) and a MOTION block (one row
of channel values per frame). Conventions implemented here:

- Rotation channels are Euler angles in degrees, applied intrinsically in the order the channels are listed:
  ``CHANNELS 3 Zrotation Xrotation Yrotation`` gives ``R = Rz(a1) @ Rx(a2) @ Ry(a3)``.
- A joint's local translation is its OFFSET; position channels, where present, replace the matching offset
  components (``Xposition`` replaces offset x, ...). This is the common reading of the format (Blender, Maya,
  MotionBuilder) and the only one that keeps bone lengths right for rigs that write positions on every joint.
- Global position of joint j: ``p_j = p_parent + R_parent_global @ t_j``; ``R_j_global = R_parent_global @ R_j``.
- End sites become joints named ``<parent>_end`` with no channels, so a rig's tips (head top, toes) come out of FK.

Positions are in the file's units (cm or m, see ``mocli.data.rigs`` for detection) and axes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mocli.errors import InputError

__all__ = ["BvhJoint", "Bvh", "parse_bvh", "read_bvh", "euler_to_matrix", "forward_kinematics", "add_end_site"]

log = logging.getLogger(__name__)

_CHANNEL_NAMES = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")


@dataclass(frozen=True)
class BvhJoint:
    """One node of the hierarchy: a joint, or an end site (``is_end_site``, no channels)."""

    name: str
    parent: int  # index into Bvh.joints, -1 for a root
    offset: tuple[float, float, float]  # file units, in the parent's frame
    channels: tuple[str, ...] = ()
    is_end_site: bool = False


@dataclass(frozen=True)
class Bvh:
    """A parsed BVH file.

    Attributes:
        joints: hierarchy in file order (parents always come before their children).
        motion: (T, C) float64 channel values, C = sum of the joints' channel counts, in file order.
        frame_time: seconds per frame (the file's ``Frame Time``).
        name: where it came from (file name), for messages.
    """

    joints: tuple[BvhJoint, ...]
    motion: np.ndarray
    frame_time: float
    name: str = "<bvh>"

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def fps(self) -> float:
        """Frames per second from ``Frame Time``, snapped to an integer when within 0.1% of one (0.0333333 -> 30)."""
        fps = 1.0 / self.frame_time
        return float(round(fps)) if abs(fps - round(fps)) < 1e-3 * fps else fps

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    @property
    def parents(self) -> tuple[int, ...]:
        return tuple(j.parent for j in self.joints)

    @property
    def offsets(self) -> np.ndarray:
        """(J, 3) offsets in file units."""
        return np.array([j.offset for j in self.joints], dtype=np.float64).reshape(-1, 3)

    @property
    def num_channels(self) -> int:
        return sum(len(j.channels) for j in self.joints)

    def channel_start(self) -> list[int]:
        """Column of each joint's first channel in ``motion``."""
        starts, c = [], 0
        for j in self.joints:
            starts.append(c)
            c += len(j.channels)
        return starts

    def index(self, name: str) -> int:
        return self.joint_names.index(name)

    def children(self, index: int) -> list[int]:
        return [i for i, j in enumerate(self.joints) if j.parent == index]

    def local_translations(self) -> np.ndarray:
        """(T, J, 3) local translation of every joint per frame: offsets with position channels substituted."""
        trans = np.broadcast_to(self.offsets, (self.num_frames, len(self.joints), 3)).copy()
        for j, (joint, start) in enumerate(zip(self.joints, self.channel_start(), strict=True)):
            for k, ch in enumerate(joint.channels):
                if ch.endswith("position"):
                    trans[:, j, "XYZ".index(ch[0])] = self.motion[:, start + k]
        return trans


class _Tokens:
    """Whitespace tokens of the HIERARCHY part, with line numbers for error messages."""

    def __init__(self, text: str, source: str) -> None:
        self.items: list[tuple[str, int]] = [
            (tok, n + 1) for n, line in enumerate(text.splitlines()) for tok in line.split()
        ]
        self.pos = 0
        self.source = source

    def next(self) -> str:
        if self.pos >= len(self.items):
            raise InputError(f"{self.source}: unexpected end of file in HIERARCHY")
        tok = self.items[self.pos][0]
        self.pos += 1
        return tok

    def peek(self) -> str | None:
        return self.items[self.pos][0] if self.pos < len(self.items) else None

    def expect(self, word: str) -> None:
        tok = self.next()
        if tok != word:
            raise InputError(f"{self.source}: expected {word!r} on line {self.items[self.pos - 1][1]}, got {tok!r}")

    def floats(self, n: int) -> tuple[float, ...]:
        line = self.items[self.pos][1] if self.pos < len(self.items) else -1
        try:
            values = tuple(float(self.next()) for _ in range(n))
        except ValueError:
            raise InputError(f"{self.source}: expected {n} numbers on line {line}") from None
        if not all(np.isfinite(values)):
            raise InputError(f"{self.source}: line {line} holds NaN or infinite values ({' '.join(map(str, values))})")
        return values


def _parse_joint(tok: _Tokens, name: str, parent: int, out: list[BvhJoint]) -> None:
    """Parse ``{ OFFSET ... CHANNELS ... children }`` of the joint called ``name`` into ``out`` (depth first)."""
    tok.expect("{")
    tok.expect("OFFSET")
    offset = tok.floats(3)
    channels: tuple[str, ...] = ()
    if tok.peek() == "CHANNELS":
        tok.next()
        count_tok = tok.next()
        if not count_tok.isdigit():
            raise InputError(f"{tok.source}: CHANNELS of joint {name!r} needs a count, got {count_tok!r}")
        channels = tuple(tok.next() for _ in range(int(count_tok)))
        bad = [c for c in channels if c not in _CHANNEL_NAMES]
        if bad:
            raise InputError(f"{tok.source}: joint {name!r} has unknown channel(s) {', '.join(bad)}")
    index = len(out)
    out.append(BvhJoint(name=name, parent=parent, offset=offset, channels=channels))  # type: ignore[arg-type]
    while True:
        word = tok.next()
        if word == "}":
            return
        if word == "JOINT":
            _parse_joint(tok, tok.next(), index, out)
        elif word == "End":
            tok.expect("Site")
            tok.expect("{")
            tok.expect("OFFSET")
            site = tok.floats(3)
            tok.expect("}")
            out.append(BvhJoint(name=f"{name}_end", parent=index, offset=site, is_end_site=True))  # type: ignore[arg-type]
        else:
            raise InputError(f"{tok.source}: unexpected {word!r} inside joint {name!r}")


def _parse_motion(text: str, num_channels: int, source: str) -> tuple[np.ndarray, float, list[int]]:
    """Parse ``Frames: N``, ``Frame Time: dt`` and the rows below.

    Returns:
        (T, C) values, dt, and the line of each row counted from the first line of ``text`` (0-based).
    """
    lines = text.splitlines()
    header: dict[str, str] = {}
    i = 0
    while i < len(lines) and len(header) < 2:
        line = lines[i]
        i += 1
        if line.strip():
            key, _, value = line.partition(":")
            header[key.strip().lower()] = value.strip()
    try:
        frames = int(header["frames"])
        frame_time = float(header["frame time"])
    except (KeyError, ValueError):
        raise InputError(f"{source}: MOTION needs 'Frames:' and 'Frame Time:' lines") from None
    if not (np.isfinite(frame_time) and frame_time > 0):
        raise InputError(f"{source}: Frame Time must be a positive number, got {frame_time}")
    row_lines = [k for k in range(i, len(lines)) if lines[k].strip()]
    rows = [lines[k] for k in row_lines]
    tokens = " ".join(rows).split()
    if len(tokens) != len(rows) * num_channels:
        bad = next(k for k, r in enumerate(rows) if len(r.split()) != num_channels)
        raise InputError(
            f"{source}: frame {bad + 1} has {len(rows[bad].split())} values "
            f"but the hierarchy declares {num_channels} channels"
        )
    if len(rows) != frames:
        log.warning("%s: header says %d frames, file has %d; using %d", source, frames, len(rows), len(rows))
    try:
        values = np.array(tokens, dtype=np.float64).reshape(len(rows), num_channels)
    except ValueError:
        raise InputError(f"{source}: MOTION holds a value that is not a number") from None
    return values, frame_time, row_lines


def _check_finite(values: np.ndarray, joints: list[BvhJoint], first_line: int, row_lines: list[int], source: str):
    """Raise InputError naming the first NaN or infinite channel value: its line, frame, joint and channel."""
    bad = np.argwhere(~np.isfinite(values))
    if not len(bad):
        return
    row, col = (int(v) for v in bad[0])
    labels = [f"{j.name} {c}" for j in joints for c in j.channels]
    raise InputError(
        f"{source}: line {first_line + row_lines[row]} (frame {row + 1}): {labels[col]} is {values[row, col]} "
        f"({len(bad)} non-finite values in all); mocli reads finite numbers only"
    )


def parse_bvh(text: str, source: str = "<bvh>") -> Bvh:
    """Parse the text of a BVH file.

    Raises:
        InputError: one line naming ``source`` and the problem (bad token, channel count disagreeing with the
            hierarchy, missing MOTION, non-numeric, NaN or infinite values, with the line).
    """
    head, sep, motion_text = text.partition("MOTION")
    if not sep:
        raise InputError(f"{source}: no MOTION section (not a BVH file?)")
    tok = _Tokens(head, source)
    tok.expect("HIERARCHY")
    joints: list[BvhJoint] = []
    while tok.peek() is not None:
        tok.expect("ROOT")
        _parse_joint(tok, tok.next(), -1, joints)
    if not joints:
        raise InputError(f"{source}: HIERARCHY has no ROOT")
    num_channels = sum(len(j.channels) for j in joints)
    motion, frame_time, row_lines = _parse_motion(motion_text, num_channels, source)
    _check_finite(motion, joints, head.count("\n") + 1, row_lines, source)
    return Bvh(joints=tuple(joints), motion=motion, frame_time=frame_time, name=source)


def read_bvh(path: str | Path) -> Bvh:
    """Read and parse a BVH file (InputError on unreadable or malformed files)."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise InputError(f"{path}: not a regular file (a folder, pipe or device)")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None
    return parse_bvh(text, source=path.name)


def _axis_rotation(axis: str, angle_rad: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices about the X, Y or Z axis (column-vector convention)."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    one, zero = np.ones_like(c), np.zeros_like(c)
    if axis == "X":
        rows = [[one, zero, zero], [zero, c, -s], [zero, s, c]]
    elif axis == "Y":
        rows = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
    else:
        rows = [[c, -s, zero], [s, c, zero], [zero, zero, one]]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def euler_to_matrix(angles_deg: np.ndarray, order: str) -> np.ndarray:
    """Intrinsic Euler angles to rotation matrices: ``R = R_order[0](a0) @ R_order[1](a1) @ ...``.

    Args:
        angles_deg: (..., K) angles in degrees, one per letter of ``order``.
        order: axis letters, e.g. "ZXY" (K = len(order), usually 3).
    Returns:
        (..., 3, 3) float64 rotation matrices.
    """
    angles = np.radians(np.asarray(angles_deg, dtype=np.float64))
    rot = np.broadcast_to(np.eye(3), angles.shape[:-1] + (3, 3)).copy()
    for k, axis in enumerate(order):
        rot = rot @ _axis_rotation(axis, angles[..., k])
    return rot


def local_rotations(bvh: Bvh) -> np.ndarray:
    """(T, J, 3, 3) local rotation of every joint per frame (identity for joints without rotation channels)."""
    rots = np.broadcast_to(np.eye(3), (bvh.num_frames, len(bvh.joints), 3, 3)).copy()
    for j, (joint, start) in enumerate(zip(bvh.joints, bvh.channel_start(), strict=True)):
        cols = [start + k for k, ch in enumerate(joint.channels) if ch.endswith("rotation")]
        if cols:
            order = "".join(joint.channels[c - start][0] for c in cols)
            rots[:, j] = euler_to_matrix(bvh.motion[:, cols], order)
    return rots


def forward_kinematics(bvh: Bvh) -> np.ndarray:
    """Global positions of every joint and end site, vectorised over frames.

    Returns:
        (T, J, 3) float64 positions in file units and axes; J = len(bvh.joints) (end sites included).
    """
    local_r = local_rotations(bvh)
    local_t = bvh.local_translations()
    num_frames, num_joints = local_t.shape[:2]
    glob_r = np.empty((num_frames, num_joints, 3, 3))
    glob_p = np.empty((num_frames, num_joints, 3))
    for j, joint in enumerate(bvh.joints):
        p = joint.parent
        if p < 0:
            glob_r[:, j] = local_r[:, j]
            glob_p[:, j] = local_t[:, j]
        else:
            glob_r[:, j] = glob_r[:, p] @ local_r[:, j]
            glob_p[:, j] = glob_p[:, p] + np.einsum("tab,tb->ta", glob_r[:, p], local_t[:, j])
    return glob_p


def add_end_site(bvh: Bvh, parent: int, offset: np.ndarray, name: str | None = None) -> Bvh:
    """A copy of ``bvh`` with a virtual end site under joint ``parent`` at ``offset`` (file units, parent frame).

    The motion is unchanged (end sites have no channels); the new joint is appended last.
    """
    site = BvhJoint(
        name=name or f"{bvh.joints[parent].name}_virtual_end",
        parent=parent,
        offset=tuple(float(v) for v in offset),  # type: ignore[arg-type]
        is_end_site=True,
    )
    return replace(bvh, joints=bvh.joints + (site,))
