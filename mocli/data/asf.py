"""ASF skeletons (Acclaim format of the CMU mocap database and HDM05): parsing (motions: ``mocli.data.amc``).

An ASF file describes one skeleton: ``:units`` (``mass``, ``length`` scale, ``angle deg|rad``), the ``:root``
(``order`` of its AMC values, ``axis`` order, ``position``, ``orientation``), one ``:bonedata`` block per bone
(``id``, ``name``, ``direction`` unit vector in the world frame at rest, ``length``, ``axis ax ay az ORDER``, ``dof``
in the order of its AMC values, and ``limits``, parsed but not applied) and the ``:hierarchy`` (a parent, then its
children, per line).

Lengths stay in file units: ``length L`` in ``:units`` means a file length x is x / L inches (CMU and HDM05 write
``length 0.45``), so metres = x / L * 0.0254 (``Asf.metres_per_unit``). Angles are stored in degrees. Files are read
as Latin-1; errors are one-line ``InputError``s naming the file and the line.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mocli.errors import InputError

__all__ = ["AsfBone", "Asf", "parse_asf", "read_asf", "read_latin1", "text_lines"]

log = logging.getLogger(__name__)

INCH_M = 0.0254
_ROOT_CHANNELS = ("tx", "ty", "tz", "rx", "ry", "rz")
_LIMIT = re.compile(r"\(\s*(\S+)\s+(\S+)\s*\)")


@dataclass(frozen=True)
class AsfBone:
    """One bone (index 0 of ``Asf.bones`` is the root: length 0, ``dof`` = its ``order``, ``axis`` = orientation).

    Attributes:
        name: bone name ('lfemur').
        id: the file's id (0 for the root).
        direction: (3,) unit vector of the bone in the world frame at rest.
        length: file length units.
        axis_deg: (3,) angles of the bone's local frame, degrees, one per letter of ``axis_order``.
        axis_order: 'XYZ' or any other order of the three letters.
        dof: DOF names in the order of their AMC values ('rx', 'ry', 'rz'; the root also 'tx', 'ty', 'tz').
        limits: (lo, hi) per DOF as written (degrees or radians; parsed, not applied).
    """

    name: str
    id: int
    direction: tuple[float, float, float]
    length: float
    axis_deg: tuple[float, float, float]
    axis_order: str
    dof: tuple[str, ...]
    limits: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Asf:
    """A parsed ASF skeleton.

    Attributes:
        bones: the root then the bones, parents always before children (depth first along the hierarchy).
        parents: index of each bone's parent in ``bones`` (-1 for the root).
        length_unit: the ``:units length`` value (0.45 for CMU and HDM05).
        mass: the ``:units mass`` value (not used).
        angle_unit: 'deg' or 'rad' (of ``axis``, ``orientation``, ``limits``; the AMC's default).
        root_position: (3,) the root's ``position`` (file length units; used for missing translation values).
        name: where it came from (file name), for messages.
    """

    bones: tuple[AsfBone, ...]
    parents: tuple[int, ...]
    length_unit: float = 1.0
    mass: float = 1.0
    angle_unit: str = "deg"
    root_position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    name: str = "<asf>"

    @property
    def bone_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bones)

    @property
    def metres_per_unit(self) -> float:
        """Metres per file length unit (a length L in the file is L / length_unit inches)."""
        return INCH_M / self.length_unit

    def dof_columns(self) -> list[slice]:
        """The columns of each bone's DOFs in an AMC motion's values (``mocli.data.amc.Amc``)."""
        cols, start = [], 0
        for bone in self.bones:
            cols.append(slice(start, start + len(bone.dof)))
            start += len(bone.dof)
        return cols


def text_lines(text: str) -> list[str]:
    """Lines split on CR, LF or CRLF only (Latin-1 text may hold \\x85, which str.splitlines would split on)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def read_latin1(path: str | Path) -> str:
    """The text of an ASF or AMC file (Latin-1); InputError when it cannot be read or is not a regular file."""
    if Path(path).exists() and not Path(path).is_file():
        raise InputError(f"{path}: not a regular file (a folder, pipe or device)")
    try:
        return Path(path).read_bytes().decode("latin-1")
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}") from None


def _floats(words: list[str], count: int, where: str, what: str, finite: bool = True) -> tuple[float, ...]:
    """``count`` numbers (finite unless ``finite`` is False) from ``words``, or an InputError naming ``where``."""
    try:
        values = tuple(float(w) for w in words)
    except ValueError:
        values = ()
    if len(values) != count or np.isnan(values).any() or (finite and not np.isfinite(values).all()):
        raise InputError(f"{where}: {what} needs {count} {'finite ' if finite else ''}numbers, got {' '.join(words)!r}")
    return values


def _axis_order(word: str, where: str) -> str:
    order = word.upper()
    if len(order) != 3 or set(order) != {"X", "Y", "Z"}:
        raise InputError(f"{where}: axis order must be the letters X, Y, Z in some order, got {word!r}")
    return order


@dataclass
class _BoneBlock:
    """The fields of one ``begin ... end`` block of ``:bonedata`` while it is being read (``line``: its 'begin')."""

    line: int
    name: str | None = None
    id: int = 0
    direction: tuple[float, ...] | None = None
    length: float | None = None
    axis: tuple[float, ...] = (0.0, 0.0, 0.0)
    axis_order: str = "XYZ"
    dof: tuple[str, ...] = ()
    limits: str = ""

    def read(self, words: list[str], where: str) -> None:
        """Store one ``key values...`` line of the block."""
        key, rest = words[0].lower(), words[1:]
        if key == "name":
            if len(rest) != 1:
                raise InputError(f"{where}: 'name' needs one word")
            self.name = rest[0]
        elif key == "id":
            self.id = int(_floats(rest, 1, where, "id")[0])
        elif key == "direction":
            self.direction = _floats(rest, 3, where, "direction")
        elif key == "length":
            self.length = _floats(rest, 1, where, "length")[0]
        elif key == "axis":
            self.axis = _floats(rest[:3], 3, where, "axis")
            self.axis_order = _axis_order(rest[3] if len(rest) == 4 else "", where)
        elif key == "dof":
            self.dof = tuple(w.lower() for w in rest)
            if any(d not in ("rx", "ry", "rz") for d in self.dof) or len(set(self.dof)) != len(self.dof):
                raise InputError(f"{where}: dof {' '.join(rest)!r}: only rx, ry, rz (each at most once) are supported")
        elif key == "limits" or key.startswith("("):  # limits continue on lines starting with '('
            self.limits += " " + " ".join(rest if key == "limits" else words)
        else:
            log.debug("%s: bone field %r ignored", where, key)

    def build(self, source: str, angle_scale: float) -> AsfBone:
        where = f"{source} line {self.line}"
        if self.name is None or self.direction is None or self.length is None:
            raise InputError(f"{where}: a bone block needs 'name', 'direction' and 'length'")
        direction = np.asarray(self.direction, dtype=np.float64)
        norm = float(np.linalg.norm(direction))
        if self.length < 0 or (norm == 0 and self.length > 0):
            raise InputError(f"{where}: bone {self.name!r} has length {self.length} and direction {self.direction}")
        limits = tuple(_floats(list(pair), 2, where, "a limit", finite=False) for pair in _LIMIT.findall(self.limits))
        return AsfBone(
            name=self.name,
            id=self.id,
            direction=tuple(direction / norm if norm > 0 else direction),  # type: ignore[arg-type]
            length=self.length,
            axis_deg=tuple(a * angle_scale for a in self.axis),  # type: ignore[arg-type]
            axis_order=self.axis_order,
            dof=self.dof,
            limits=limits,  # type: ignore[arg-type]
        )


def parse_asf(text: str, source: str = "<asf>") -> Asf:
    """Parse the text of an ASF file.

    Raises:
        InputError: one line naming ``source`` and the line (bad numbers, units, axis orders or DOFs, a bone block
            missing its name/direction/length, duplicate bones, a hierarchy naming unknown bones or leaving bones
            out).
    """
    length_unit, mass, angle_unit = 1.0, 1.0, "deg"
    root = _BoneBlock(line=0, name="root", direction=(0.0, 0.0, 0.0), length=0.0, dof=_ROOT_CHANNELS)
    position: tuple[float, ...] = (0.0, 0.0, 0.0)
    blocks: list[_BoneBlock] = []
    block: _BoneBlock | None = None
    edges: list[tuple[str, str, int]] = []  # (parent, child, line)
    section = ""
    for n, raw in enumerate(text_lines(text), start=1):
        words = raw.split()
        if not words or words[0].startswith("#"):
            continue
        where = f"{source} line {n}"
        if words[0].startswith(":"):
            section = words[0][1:].lower()
            continue
        key = words[0].lower()
        if section == "units" and key in ("mass", "length"):
            value = _floats(words[1:], 1, where, key)[0]
            if value <= 0:
                raise InputError(f"{where}: {key} must be positive")
            length_unit, mass = (value, mass) if key == "length" else (length_unit, value)
        elif section == "units" and key == "angle":
            if len(words) != 2 or words[1].lower() not in ("deg", "rad"):
                raise InputError(f"{where}: angle must be 'deg' or 'rad'")
            angle_unit = words[1].lower()
        elif section == "root" and key == "order":
            root.dof = tuple(w.lower() for w in words[1:])
            if any(w not in _ROOT_CHANNELS for w in root.dof) or len(set(root.dof)) != len(root.dof):
                raise InputError(f"{where}: root order {' '.join(words[1:])!r}: use TX TY TZ RX RY RZ in any order")
        elif section == "root" and key == "axis":
            root.axis_order = _axis_order(words[1] if len(words) == 2 else "", where)
        elif section == "root" and key == "orientation":
            root.axis = _floats(words[1:], 3, where, key)
        elif section == "root" and key == "position":
            position = _floats(words[1:], 3, where, key)
        elif section == "bonedata" and key == "begin":
            if block is not None:
                raise InputError(f"{where}: 'begin' inside a bone block (missing 'end' above)")
            block = _BoneBlock(line=n)
        elif section == "bonedata" and key == "end":
            if block is None:
                raise InputError(f"{where}: 'end' without 'begin'")
            blocks.append(block)
            block = None
        elif section == "bonedata" and block is not None:
            block.read(words, where)
        elif section == "hierarchy" and key not in ("begin", "end"):
            edges += [(words[0], child, n) for child in words[1:]]
        elif section not in ("version", "name", "documentation"):
            log.debug("%s: %r ignored", where, raw.strip())
    if block is not None:
        raise InputError(f"{source} line {block.line}: bone block without 'end'")
    angle_scale = 1.0 if angle_unit == "deg" else 180.0 / np.pi
    bones = {"root": root.build(source, angle_scale)}
    for block in blocks:
        bone = block.build(source, angle_scale)
        if bone.name in bones:
            raise InputError(f"{source} line {block.line}: bone {bone.name!r} is defined twice")
        bones[bone.name] = bone
    ordered, parents = _order_bones(bones, edges, source)
    return Asf(
        bones=ordered,
        parents=parents,
        length_unit=length_unit,
        mass=mass,
        angle_unit=angle_unit,
        root_position=position,  # type: ignore[arg-type]
        name=source,
    )


def _order_bones(
    bones: dict[str, AsfBone], edges: list[tuple[str, str, int]], source: str
) -> tuple[tuple[AsfBone, ...], tuple[int, ...]]:
    """Bones depth first from the root along the hierarchy, and their parent indices."""
    children: dict[str, list[str]] = {name: [] for name in bones}
    parent_of: dict[str, str] = {}
    for parent, child, line in edges:
        for name in (parent, child):
            if name not in bones:
                raise InputError(f"{source} line {line}: the hierarchy names unknown bone {name!r}")
        if child in parent_of or child == "root":
            raise InputError(f"{source} line {line}: bone {child!r} has a second parent {parent!r}")
        parent_of[child] = parent
        children[parent].append(child)
    order: list[str] = []
    stack = ["root"]
    while stack:
        name = stack.pop()
        order.append(name)
        stack.extend(reversed(children[name]))
    missing = [name for name in bones if name not in set(order)]
    if missing:
        raise InputError(f"{source}: bone(s) not connected to the root by the hierarchy: {', '.join(missing)}")
    index = {name: k for k, name in enumerate(order)}
    parents = tuple(index[parent_of[name]] if name != "root" else -1 for name in order)
    return tuple(bones[name] for name in order), parents


def read_asf(path: str | Path) -> Asf:
    """Read and parse an ASF file (Latin-1; InputError on unreadable or malformed files)."""
    return parse_asf(read_latin1(path), source=Path(path).name)
