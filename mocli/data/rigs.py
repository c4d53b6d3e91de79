"""Any BVH rig to H36M-17 joints in metres, Y-up, by joint names.

Joint names are matched case-insensitively after dropping namespace prefixes (``mixamorig:``, ``joint_``, ``J_``,
``Bip01 ``, ``DEF-``, anything before a colon) and reading the side from ``Left``/``Right``, ``L_``/``R_``,
``_L``/``_R``, ``.L``/``.R`` or a leading ``l``/``r`` before a known part (CMU's ``lThigh``). Each H36M joint is then:

- pelvis (0): the hips/pelvis joint (never a ground-projection ``Root``);
- hips, knees, ankles (1-6): thigh/upper-leg, shin/lower-leg/knee, foot/ankle joints;
- spine (7): the point half way along the spine chain from the pelvis to the neck (by rest bone lengths);
- thorax (8): the neck joint (neck base); nose/neck (9): the head joint; head top (10): the head's end site when it
  is long enough (at least 8% of the leg length), else a virtual end site 12.5% of the leg length beyond the head
  along the neck-to-head bone direction, carried by the head's rotation (ReActIdle, CMU, Bandai dataset 2);
- shoulders, elbows, wrists (11-16): upper-arm (else shoulder), forearm/lower-arm/elbow, hand/wrist joints.

Units (m, cm, mm) are detected from the body size (leg + spine + neck lengths, about 1.2-1.5 m for adults) unless
declared; the up axis is detected from the mean pelvis-to-thorax direction unless declared; the output is always
metres with +Y up (a right-handed rotation takes Z-up data there).

ASF/AMC skeletons (CMU, HDM05) go through the same mapping: ``asf_rig`` views an ASF as a BVH rig whose joints sit
at the bones' start points (each bone's end is its children's start; leaf bones get end sites), with CMU's bone names
renamed to those of CMU's own BVH release (``ASF_JOINT_NAMES``: lfemur -> LeftUpLeg, the hip; lradius ->
LeftForeArm, the elbow; lwrist -> LeftHand, the wrist; lowerneck -> Neck, the thorax; head -> Head; its end site is
the head top).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import numpy as np

from mocli.data.amc import Amc
from mocli.data.amc import forward_kinematics as amc_forward_kinematics
from mocli.data.asf import Asf
from mocli.data.bvh import Bvh, BvhJoint, add_end_site, forward_kinematics
from mocli.errors import InputError
from mocli.skeleton import H36M_17

__all__ = [
    "RigMapping",
    "H36mMotion",
    "parse_joint_name",
    "map_rig",
    "detect_units",
    "detect_up_axis",
    "rotate_to_y_up",
    "bvh_to_h36m",
    "asf_rig",
    "asf_to_h36m",
    "ASF_JOINT_NAMES",
    "UNIT_SCALES",
]

log = logging.getLogger(__name__)

UNIT_SCALES: dict[str, float] = {"m": 1.0, "cm": 0.01, "mm": 0.001}
_TYPICAL_BODY_M = 1.4  # leg + spine + neck length of an adult, metres

# Part words (after side and separators are removed) for each role, in order of preference.
_PELVIS = ("hips", "pelvis", "hip")
_UPLEG = ("upleg", "upperleg", "thigh", "hip", "femur", "uleg")
_KNEE = ("leg", "lowerleg", "shin", "knee", "calf", "lleg", "tibia")
_ANKLE = ("foot", "ankle")
_SHOULDER = ("upperarm", "arm", "shldr", "humerus", "uparm", "shoulder")
_ELBOW = ("forearm", "lowerarm", "elbow", "loarm")
_WRIST = ("hand", "wrist")
_NECK = ("neck", "neck1", "neck01", "neck001")
_HEAD = ("head", "face")
_SIDED_PARTS = frozenset(_UPLEG + _KNEE + _ANKLE + _SHOULDER + _ELBOW + _WRIST + ("collar", "clavicle", "toes", "toe"))

_PREFIX = re.compile(r"^(?:[^:]*:|mixamorig\d*_|joint_|j_|bip\d*[ _]|def[-_]|b_|bone_)", re.IGNORECASE)
_SEP = re.compile(r"[\s_.\-]+")


def parse_joint_name(name: str) -> tuple[str | None, str]:
    """Split a rig joint name into (side, part): side 'l', 'r' or None; part lower case without separators.

    Examples: 'mixamorig:LeftUpLeg' -> ('l', 'upleg'); 'UpperLeg_R' -> ('r', 'upperleg'); 'thigh.L' -> ('l',
    'thigh'); 'lShldr' -> ('l', 'shldr'); 'joint_Root' -> (None, 'root'); 'spine.001' -> (None, 'spine001').
    """
    s = _PREFIX.sub("", name.strip()).lower()
    patterns = (
        r"^(left|right)[\s_.\-]*(.+)$",
        r"^(.+?)[\s_.\-]*(left|right)$",
        r"^(l|r)[\s_.\-]+(.+)$",
        r"^(.+?)[\s_.\-]+(l|r)$",
    )
    for k, pat in enumerate(patterns):
        m = re.match(pat, s)
        if m:
            side, rest = (m.group(1), m.group(2)) if k in (0, 2) else (m.group(2), m.group(1))
            return side[0], _SEP.sub("", rest)
    flat = _SEP.sub("", s)
    if flat[:1] in ("l", "r") and flat[1:] in _SIDED_PARTS:
        return flat[0], flat[1:]
    return None, flat


@dataclass(frozen=True)
class RigMapping:
    """How to get H36M-17 from a rig's FK joints.

    Attributes:
        bvh: the rig, with a virtual head-top end site appended when the head has no usable one.
        weights: (17, J) so that ``h36m = weights @ fk_positions`` per frame (rows sum to 1).
        sources: for each H36M joint, a short description of its rig source (for reports).
        virtual_head_top: whether the head top is the virtual end site.
    """

    bvh: Bvh
    weights: np.ndarray
    sources: tuple[str, ...]
    virtual_head_top: bool


@dataclass(frozen=True)
class H36mMotion:
    """H36M-17 joints of one clip.

    Attributes:
        joints: (T, 17, 3) float32 world positions in metres, +Y up (as the rig's world otherwise).
        fps: frames per second of ``joints``.
        units: units of the source file ('m', 'cm', 'mm'; 'in' for ASF inch units); ``scale`` converts them to
            metres.
        up_axis: up axis detected or declared in the source ('+y', '+z', ...).
        mapping: the rig mapping used.
    """

    joints: np.ndarray
    fps: float
    units: str
    scale: float
    up_axis: str
    mapping: RigMapping


def _depths(parents: tuple[int, ...]) -> list[int]:
    depth: list[int] = []
    for p in parents:
        depth.append(0 if p < 0 else depth[p] + 1)
    return depth


def _find(bvh: Bvh, parts: tuple[str, ...], side: str | None) -> int | None:
    """Index of the joint (not end site) with ``side`` whose part is the earliest in ``parts``; ties -> nearest root."""
    parsed = [parse_joint_name(j.name) if not j.is_end_site else (None, "") for j in bvh.joints]
    depth = _depths(bvh.parents)
    for part in parts:
        hits = [i for i, (s, p) in enumerate(parsed) if s == side and p == part and not bvh.joints[i].is_end_site]
        if hits:
            return min(hits, key=lambda i: depth[i])
    return None


def _chain(parents: tuple[int, ...], start: int, end: int) -> list[int] | None:
    """Joint indices from ``start`` down to its descendant ``end`` (inclusive), or None if not a descendant."""
    path = [end]
    while path[-1] != start:
        p = parents[path[-1]]
        if p < 0:
            return None
        path.append(p)
    return path[::-1]


def _rest_lengths(bvh: Bvh) -> np.ndarray:
    """(J,) length of each joint's local translation in the first frame (position channels included), file units."""
    translations = bvh.local_translations()[0] if bvh.num_frames else bvh.offsets
    return np.linalg.norm(translations, axis=-1)


def _spine_weights(chain: list[int], lengths: np.ndarray, names: tuple[str, ...]) -> tuple[np.ndarray, str]:
    """(J,) weights of the point half way (by bone length) along ``chain``; and a description."""
    seg = np.array([lengths[j] for j in chain[1:]])
    total = seg.sum()
    w = np.zeros(len(names))
    if total <= 0:
        w[chain[0]] = 1.0
        return w, "pelvis"
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    k = int(np.clip(np.searchsorted(cum, total / 2, side="right") - 1, 0, len(seg) - 1))
    t = (total / 2 - cum[k]) / seg[k] if seg[k] > 0 else 0.0
    w[chain[k]] += 1 - t
    w[chain[k + 1]] += t
    return w, f"{1 - t:.2f}*{names[chain[k]]}+{t:.2f}*{names[chain[k + 1]]}"


def _find_roles(bvh: Bvh) -> dict[str, int]:
    """Joint index of each named role (pelvis, neck, head, l_/r_ hip, knee, ankle, shoulder, elbow, wrist)."""
    roles: dict[str, int | None] = {
        "pelvis": _find(bvh, _PELVIS, None),
        "neck": _find(bvh, _NECK, None),
        "head": _find(bvh, _HEAD, None),
    }
    limbs = (("hip", _UPLEG), ("knee", _KNEE), ("ankle", _ANKLE), ("shoulder", _SHOULDER), ("elbow", _ELBOW),
             ("wrist", _WRIST))  # fmt: skip
    for side in ("l", "r"):
        for role, parts in limbs:
            roles[f"{side}_{role}"] = _find(bvh, parts, side)
        # a rig may end a limb with the end site of the forearm / shin (ReActIdle has no hands)
        for role, prev in (("wrist", "elbow"), ("ankle", "knee")):
            base = roles[f"{side}_{prev}"]
            if roles[f"{side}_{role}"] is None and base is not None:
                roles[f"{side}_{role}"] = next((c for c in bvh.children(base) if bvh.joints[c].is_end_site), None)
    missing = [k for k, v in roles.items() if v is None]
    if missing:
        names = ", ".join(bvh.joint_names[:40])
        raise InputError(f"{bvh.name}: cannot find joint(s) {', '.join(missing)} by name among: {names}")
    return {k: v for k, v in roles.items() if v is not None}


def _head_top(bvh: Bvh, head: int, leg: float, lengths: np.ndarray) -> tuple[Bvh, int, bool]:
    """The head's end site (or a 'top'/'end' child) if at least 8% of the leg long; else a virtual end site 12.5% of
    the leg beyond the head along the neck-to-head direction in the head's frame. Returns (bvh, index, virtual)."""
    for c in bvh.children(head):
        tip_like = bvh.joints[c].is_end_site or re.search(r"top|end", parse_joint_name(bvh.joints[c].name)[1])
        if tip_like and lengths[c] >= 0.08 * leg:
            return bvh, c, False
    direction = bvh.local_translations()[0, head] if bvh.num_frames else bvh.offsets[head]
    norm = np.linalg.norm(direction)
    direction = direction / norm if norm > 0 else np.array([0.0, 1.0, 0.0])
    bvh = add_end_site(bvh, head, 0.125 * leg * direction, name=f"{bvh.joints[head].name}_top")
    return bvh, len(bvh.joints) - 1, True


_H36M_ROLES = (
    "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "neck", "head", "top",
    "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
)  # fmt: skip


def map_rig(bvh: Bvh) -> RigMapping:
    """Find the H36M-17 joints in a rig by joint names (see the module docstring).

    Raises:
        InputError: naming the H36M joints that could not be found and the rig's joint names.
    """
    idx = _find_roles(bvh)
    chain = _chain(bvh.parents, idx["pelvis"], idx["neck"])
    if chain is None:
        raise InputError(f"{bvh.name}: the neck {bvh.joint_names[idx['neck']]!r} is not below the pelvis joint")
    lengths = _rest_lengths(bvh)
    leg = float(np.mean([lengths[idx[f"{s}_knee"]] + lengths[idx[f"{s}_ankle"]] for s in ("l", "r")]))
    bvh, idx["top"], virtual = _head_top(bvh, idx["head"], leg, lengths)
    spine_w, spine_desc = _spine_weights(chain, lengths, bvh.joint_names)
    weights = np.zeros((H36M_17.num_joints, len(bvh.joints)))
    sources = []
    for k, role in enumerate(_H36M_ROLES):
        if role == "spine":
            weights[k] = spine_w
            sources.append("spine chain midpoint " + spine_desc)
        else:
            weights[k, idx[role]] = 1.0
            sources.append(bvh.joint_names[idx[role]])
    return RigMapping(bvh=bvh, weights=weights, sources=tuple(sources), virtual_head_top=virtual)


def body_size(joints: np.ndarray) -> float:
    """Leg + spine + neck-to-head length of H36M-17 joints (..., 17, 3), in their units (median over frames)."""
    j = joints.reshape(-1, 17, 3)

    def dist(a: int, b: int) -> np.ndarray:
        return np.linalg.norm(j[:, a] - j[:, b], axis=-1)

    size = (dist(1, 2) + dist(2, 3) + dist(4, 5) + dist(5, 6)) / 2 + dist(0, 8) + dist(8, 10)
    return float(np.median(size))


def detect_units(joints: np.ndarray, source: str = "") -> str:
    """'m', 'cm' or 'mm' for H36M-17 joints (T, 17, 3) in unknown units, from the body size.

    The body size (legs + spine + head) of an adult is about 1.4 m; the unit that brings it closest to that (on a
    log scale) wins. Raises InputError if no unit gives 0.4-4 m (pass the units explicitly then).
    """
    size = body_size(joints)
    unit = min(UNIT_SCALES, key=lambda u: abs(np.log(max(size * UNIT_SCALES[u], 1e-9) / _TYPICAL_BODY_M)))
    metres = size * UNIT_SCALES[unit]
    if not 0.4 <= metres <= 4.0:
        raise InputError(f"{source}: cannot detect units (body size {size:.3g} file units); pass --units m|cm|mm")
    return unit


def detect_up_axis(joints: np.ndarray) -> str:
    """Up axis ('+x', '-x', '+y', '-y', '+z', '-z') of H36M-17 joints (T, 17, 3): the dominant component of the mean
    pelvis-to-thorax direction."""
    up = (joints[:, 8] - joints[:, 0]).mean(axis=0)
    k = int(np.argmax(np.abs(up)))
    return ("+" if up[k] >= 0 else "-") + "xyz"[k]


_TO_Y_UP: dict[str, np.ndarray] = {
    "+y": np.eye(3),
    "-y": np.diag([1.0, -1.0, -1.0]),  # 180 degrees about X
    "+z": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),  # -90 degrees about X: z -> y, y -> -z
    "-z": np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]),
    "+x": np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]),  # 90 degrees about Z: x -> y
    "-x": np.array([[0.0, 1, 0], [-1, 0, 0], [0, 0, 1]]),
}


def rotate_to_y_up(points: np.ndarray, up_axis: str) -> np.ndarray:
    """Rotate points (..., 3) so that ``up_axis`` ('+z', 'y', '-x', ...) becomes +Y (a proper rotation)."""
    key = up_axis if up_axis[:1] in ("+", "-") else "+" + up_axis
    try:
        rot = _TO_Y_UP[key.lower()]
    except KeyError:
        raise InputError(f"unknown up axis {up_axis!r}; use x, y or z (optionally signed)") from None
    return points @ rot.T


def bvh_to_h36m(bvh: Bvh, units: str = "auto", up_axis: str = "auto") -> H36mMotion:
    """FK of a BVH rig mapped to H36M-17, in metres and +Y up, at the file's frame rate.

    Args:
        bvh: a parsed BVH file.
        units: 'auto' (detect from the body size), 'm', 'cm' or 'mm'.
        up_axis: 'auto' (detect) or the file's up axis ('y', 'z', '+z', '-y', ...).
    Returns:
        H36mMotion with joints (T, 17, 3) float32 metres.
    """
    mapping = map_rig(bvh)
    positions = forward_kinematics(mapping.bvh)  # (T, J, 3) file units
    joints = np.einsum("kj,tjc->tkc", mapping.weights, positions)
    if units == "auto":
        units = detect_units(joints, bvh.name)
    if units not in UNIT_SCALES:
        raise InputError(f"unknown units {units!r}; use m, cm or mm")
    return _metres_y_up(joints, bvh.fps, units, UNIT_SCALES[units], up_axis, mapping)


def _metres_y_up(
    joints: np.ndarray, fps: float, units: str, scale: float, up_axis: str, mapping: RigMapping
) -> H36mMotion:
    """H36mMotion from (T, 17, 3) joints in file units: scaled to metres and rotated to +Y up ('auto': detected)."""
    if up_axis == "auto":
        up_axis = detect_up_axis(joints)
    joints = rotate_to_y_up(joints * scale, up_axis)
    log.debug("%s: units %s, up %s, head top %s", mapping.bvh.name, units, up_axis, mapping.sources[10])
    return H36mMotion(
        joints=joints.astype(np.float32),
        fps=fps,
        units=units,
        scale=scale,
        up_axis=up_axis if up_axis[0] in "+-" else "+" + up_axis,
        mapping=mapping,
    )


# CMU/HDM05 ASF bone -> the name CMU's BVH release gives the joint at the bone's start (mapped by the rules above).
ASF_JOINT_NAMES: dict[str, str] = {
    "root": "Hips", "lowerback": "LowerBack", "upperback": "Spine", "thorax": "Spine1", "lowerneck": "Neck",
    "upperneck": "Neck1", "head": "Head",
    "lhipjoint": "LHipJoint", "lfemur": "LeftUpLeg", "ltibia": "LeftLeg", "lfoot": "LeftFoot", "ltoes": "LeftToeBase",
    "rhipjoint": "RHipJoint", "rfemur": "RightUpLeg", "rtibia": "RightLeg", "rfoot": "RightFoot",
    "rtoes": "RightToeBase",
    "lclavicle": "LeftShoulder", "lhumerus": "LeftArm", "lradius": "LeftForeArm", "lwrist": "LeftHand",
    "lhand": "LeftFingerBase", "lfingers": "LeftHandIndex1", "lthumb": "LThumb",
    "rclavicle": "RightShoulder", "rhumerus": "RightArm", "rradius": "RightForeArm", "rwrist": "RightHand",
    "rhand": "RightFingerBase", "rfingers": "RightHandIndex1", "rthumb": "RThumb",
}  # fmt: skip


def asf_rig(asf: Asf) -> Bvh:
    """An ASF skeleton as a BVH rig in its rest pose (one frame, no channels): joint j < len(asf.bones) sits at the
    start of bone j (renamed by ``ASF_JOINT_NAMES``), offset by its parent's length x direction; leaf bones get an
    end site at their end. File length units."""
    names = [ASF_JOINT_NAMES.get(b.name, b.name) for b in asf.bones]
    vectors = [b.length * np.asarray(b.direction, dtype=np.float64) for b in asf.bones]
    joints = [
        BvhJoint(name=name, parent=p, offset=tuple(vectors[p]) if p >= 0 else (0.0, 0.0, 0.0))  # type: ignore[arg-type]
        for name, p in zip(names, asf.parents, strict=True)
    ]
    for b, bone in enumerate(asf.bones):
        if b not in asf.parents and bone.length > 0:
            joints.append(BvhJoint(f"{names[b]}_end", b, tuple(vectors[b]), is_end_site=True))  # type: ignore[arg-type]
    return Bvh(joints=tuple(joints), motion=np.zeros((1, 0)), frame_time=1.0, name=asf.name)


def asf_to_h36m(asf: Asf, amc: Amc, fps: float = 120.0, units: str = "auto", up_axis: str = "auto") -> H36mMotion:
    """FK of an AMC motion on its ASF skeleton mapped to H36M-17, in metres and +Y up.

    Args:
        asf, amc: the parsed skeleton and motion.
        fps: the motion's frame rate (not in the files; 120 for CMU and HDM05).
        units: 'auto' (the ASF convention: a length x is x / length_unit inches) or the unit of x / length_unit
            ('m', 'cm', 'mm') for files that do not follow it.
        up_axis: 'auto' (the pelvis-to-thorax direction of the ASF rest pose) or the file's up axis ('y', 'z', ...).
    Returns:
        H36mMotion with joints (T, 17, 3) float32 metres; units 'in' (auto) or the declared one.
    Raises:
        InputError: joints not found by name, or (auto units) a body size outside 0.4-4 m.
    """
    mapping = map_rig(asf_rig(asf))
    pose = amc_forward_kinematics(asf, amc)
    starts = pose.positions[:, [max(p, 0) for p in asf.parents]]  # (T, B, 3) bone start points; root: itself
    rig = mapping.bvh
    extra = [  # end sites (and a virtual head top): parent start + parent rotation @ offset
        starts[:, j.parent] + pose.rotations[:, j.parent] @ np.asarray(j.offset) for j in rig.joints[len(asf.bones) :]
    ]
    positions = np.concatenate([starts, np.stack(extra, axis=1)], axis=1) if extra else starts
    joints = np.einsum("kj,tjc->tkc", mapping.weights, positions)
    if units == "auto":
        units, scale = "in", asf.metres_per_unit
        size = body_size(joints) * scale
        if not 0.4 <= size <= 4.0:
            raise InputError(
                f"{asf.name}: body size {size:.3g} m with ASF inch units (length {asf.length_unit:g}); "
                "pass --units m|cm|mm"
            )
    elif units in UNIT_SCALES:
        scale = UNIT_SCALES[units] / asf.length_unit
    else:
        raise InputError(f"unknown units {units!r}; use auto, m, cm or mm")
    if up_axis == "auto":  # from the rest pose, which stands upright (a clip's own poses may lie on the floor)
        up_axis = detect_up_axis(np.einsum("kj,tjc->tkc", mapping.weights, forward_kinematics(rig)))
    return _metres_y_up(joints, fps, units, scale, up_axis, mapping)
