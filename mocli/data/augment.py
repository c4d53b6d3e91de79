"""Augmentations of 3D motion for the lift pretext: body proportions, bent legs, a bent trunk, global tilts and
playback speed (pure numpy).

Each one changes the 3D motion of a training clip *before* it is seen through a virtual camera, so the 2D input and
the 3D target stay consistent; the random draws come from a ``numpy.random.Generator`` passed in (one per clip).

**Body proportions** (``sample_body_factors`` + ``scale_body``): the lifter should learn the geometry of human
bodies, not the three bodies of its training actors. Per clip, one factor is drawn for each bone group of
``BONE_GROUPS`` (legs, arms, torso, neck and head, hip width, shoulder width) and one for the whole body; left and
right bones of a group differ by a small drawn asymmetry. Each bone gets its median length over the clip times its
factor and the pose is rebuilt from the pelvis outwards along every bone's own direction
(``mocli.bones.set_bone_lengths``), so bones are rigid over time and no joint angle changes. The pelvis
trajectory is scaled about its mean by the whole-body factor times the leg factor, so a longer-legged body also
takes longer strides (no foot skating).

The ranges that mocli's preset uses (``pretrain_dstformer-small_generalise``) and why:

- whole body 0.85-1.15: the training actors are about 1.65-1.80 m tall; adults stand about 1.50-1.95 m (from short
  women to tall men) and teenagers of 13-17 years about 1.45-1.85 m, so about 0.85-1.15 of the actors' size;
- bone groups 0.9-1.1: the body's proportions vary less than its size. Legs are about 45-50 % of stature in adults
  (the sitting-height ratio varies between people and populations by a few per cent, and teenagers in their growth
  spurt have relatively long legs); shoulder width differs by about 10 % between men and women of equal height,
  the hip width the other way; arm span is 0.95-1.06 of stature. Independent ±10 % factors per group cover these
  and their combinations, and also the differences between rigs and detectors in where a joint sits (the H36M
  "head" of a mocap rig is the head top, a COCO detector's is between the eyes);
- left-right asymmetry up to 3 %: the limbs of healthy adults differ in length by about 1-2 %.

**Bent legs** (``sample_leg_bend`` + ``bend_legs``): the training motion is mostly upright (walking, dancing,
standing), so kneeling, sitting on the floor and deep crouches are rare, and a lifter that never saw a folded leg
straightens it. With some probability a clip's legs get extra flexion, the same over the clip on top of the motion:
each thigh is turned forward about the hips' left-right axis through its hip by a hip angle, then each shin
backward about the same axis through its knee by a knee angle (the knee's total bend capped at ``MAX_KNEE_DEG``).
Hip angles are drawn once for both legs plus a per-side difference, and so are knee angles. Bones stay rigid and the
pelvis and upper body do not move, so a walk becomes a crouched walk, a squat a deep squat, a standing pose a chair
sit or a kneel; the feet may leave the floor, which a root-relative lifter never sees.

**Bent trunk** (``bend_trunk``): the same for the upper body. With some probability the spine, head and arms of a
clip are turned forward (or, for negative angles, backward) about the hips' left-right axis through the pelvis, by
one angle drawn per clip: a walk becomes a stooped walk, a reach a reach to the floor, and with bent legs a squat
becomes a crouch over the ground (HDM05's "put on the floor" and squats were its held-out actors' worst motions).
The legs and pelvis do not move and every bone keeps its length; the arms keep their angles to the trunk. Off in
mocli's preset: it helped bent bodies and made the lifter lean people who stand (docs/pretrain.md).

**Global tilts** (``sample_tilt`` + ``rotate_about``): with some probability a clip's whole motion is rotated about a
horizontal axis (random azimuth) through its mean pelvis position, by up to 90 degrees: the body leans, bends or
lies. The world's up axis is left as it is, so the virtual camera (``mocli.data.cameras.sample_camera``) is still
drawn around the world up (its pitch and the image's up direction refer to the floor, not to the body), and a body
tilted by 90 degrees lies along the image's horizontal as it would lie on the floor. The rotation is rigid, so bone
lengths and the motion's shape are unchanged (only the direction of gravity relative to the body is new).

**Tilt ramps** (``sample_tilt_ramp`` + ``ramp_tilt``): a static tilt never shows a body *going* to the floor or
getting up, where the body's direction changes through 90 degrees within a second or two (HDM05's held-out "lie
down on the floor" is the lifter's worst motion). With some probability a tilted clip's angle changes over the clip
instead: about the same kind of axis and pivot, from one angle to another (both drawn in the tilt range), along a
smoothstep between two frames drawn in the clip (held before and after). Each frame is a rigid rotation, so bone
lengths stay; with equal angles a ramp is the static tilt.

**Speed** (``sample_target_fps`` + ``change_speed``): the same motion as if filmed at another frame rate. Clip
frame k is read at source frame ``start + k * step`` (``step`` = source fps / target fps) by linear interpolation,
so a target rate below the source's packs more motion into the clip (faster) and one above it less (slower). A clip
near the end of its sequence is moved back so that its whole span is real motion (``change_speed``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocli.bones import median_bone_lengths, set_bone_lengths
from mocli.config import DataConfig
from mocli.data.cameras import horizontal_basis
from mocli.data.converters.common import resample_linear
from mocli.errors import MocliError
from mocli.skeleton import H36M_17, Skeleton

__all__ = [
    "BONE_GROUPS",
    "BodyFactors",
    "sample_body_factors",
    "scale_body",
    "rotation_about_axis",
    "LegBend",
    "sample_leg_bend",
    "bend_legs",
    "bend_trunk",
    "sample_tilt",
    "rotate_about",
    "TiltRamp",
    "sample_tilt_ramp",
    "ramp_tilt",
    "sample_target_fps",
    "change_speed",
    "check_config",
]

# H36M-17 bone groups, each bone named by its child joint (the bone from its parent to it).
BONE_GROUPS: dict[str, tuple[int, ...]] = {
    "legs": (2, 3, 5, 6),  # thighs (hip-knee) and shins (knee-ankle)
    "arms": (12, 13, 15, 16),  # upper arms (shoulder-elbow) and forearms (elbow-wrist)
    "torso": (7, 8),  # pelvis-spine and spine-thorax
    "neck_head": (9, 10),  # thorax-neck/nose and neck/nose-head
    "hips": (1, 4),  # pelvis-hip: the hip width
    "shoulders": (11, 14),  # thorax-shoulder: the shoulder width
}
_LEFT = frozenset(j for j, name in enumerate(H36M_17.joint_names) if name.startswith("left_"))
_RIGHT = frozenset(j for j, name in enumerate(H36M_17.joint_names) if name.startswith("right_"))


@dataclass(frozen=True)
class BodyFactors:
    """Length factors of one clip's body.

    Attributes:
        bones: (17,) factor of the bone ending at each H36M-17 joint (whole-body factor included; 1 for the root).
        root: factor of the pelvis trajectory about its mean (whole body times legs).
    """

    bones: np.ndarray
    root: float


def sample_body_factors(
    rng: np.random.Generator,
    body_scale: tuple[float, float],
    bone_scale: tuple[float, float],
    asymmetry: float = 0.0,
) -> BodyFactors:
    """Draw the length factors of one clip (H36M-17).

    Args:
        rng: the clip's generator. Draws: the whole-body factor, one factor per group of ``BONE_GROUPS`` (in its
            order), then one asymmetry per group.
        body_scale: (lo, hi) range of the whole-body factor (uniform).
        bone_scale: (lo, hi) range of each group's factor (uniform, independent per group).
        asymmetry: left and right bones of a group get ``factor * (1 + d / 2)`` and ``factor * (1 - d / 2)``,
            ``d`` uniform in [-asymmetry, asymmetry] (the largest relative left-right difference).
    """
    body = rng.uniform(*body_scale)
    group = rng.uniform(*bone_scale, size=len(BONE_GROUPS))
    side = rng.uniform(-asymmetry, asymmetry, size=len(BONE_GROUPS)) / 2
    bones = np.full(H36M_17.num_joints, body)
    for members, g, d in zip(BONE_GROUPS.values(), group, side, strict=True):
        for j in members:
            bones[j] = body * g * (1 + d if j in _LEFT else 1 - d if j in _RIGHT else 1.0)
    bones[0] = 1.0
    legs = float(np.mean(bones[list(BONE_GROUPS["legs"])]))
    return BodyFactors(bones=bones, root=legs)


def scale_body(
    joints: np.ndarray, factors: np.ndarray, root_scale: float = 1.0, skeleton: Skeleton = H36M_17
) -> np.ndarray:
    """Give a clip new body proportions: rigid bones of the median lengths times ``factors``, same directions.

    Args:
        joints: (T, J, 3) positions, metres (any unit).
        factors: (J,) factor of the bone ending at each joint (roots ignored).
        root_scale: the root trajectory is scaled about its mean over the clip by this factor.
        skeleton: the joint layout (parents).
    Returns:
        (T, J, 3) float array: every bone ``median length * factor`` long in every frame, pointing where it pointed.
        All factors 1 and ``root_scale`` 1 return the input unchanged (a copy), even if its bones were not rigid.
    """
    joints = np.asarray(joints)
    factors = np.asarray(factors, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (skeleton.num_joints, 3) or factors.shape != (skeleton.num_joints,):
        raise ValueError(f"expected (T, {skeleton.num_joints}, 3) joints and ({skeleton.num_joints},) factors, "
                         f"got {joints.shape} and {factors.shape}")  # fmt: skip
    roots = [j for j, p in enumerate(skeleton.parents) if p < 0]
    if root_scale == 1.0 and np.all(np.delete(factors, roots) == 1.0):
        return joints.copy()
    lengths = median_bone_lengths(joints, skeleton) * factors
    if root_scale != 1.0:
        root = joints[:, roots[0]]  # (T, 3): the whole pose moves with the first root
        moved = root.mean(axis=0) + root_scale * (root - root.mean(axis=0))
        joints = joints + (moved - root)[:, None, :]
    return set_bone_lengths(joints, lengths, skeleton)


def rotation_about_axis(axis: np.ndarray, angle_rad: float) -> np.ndarray:
    """(3, 3) rotation by ``angle_rad`` about the unit vector ``axis`` (right-hand rule; Rodrigues' formula)."""
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k)
    cross = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle_rad) * cross + (1.0 - np.cos(angle_rad)) * (cross @ cross)


MAX_KNEE_DEG = 155.0  # a knee folds no further than about 150-160 degrees from straight
_LEGS = ((1, 2, 3), (4, 5, 6))  # H36M-17 (hip, knee, ankle): right, left


@dataclass(frozen=True)
class LegBend:
    """Extra flexion of one clip's legs, degrees, (right, left): hips (thigh forward), knees (shin backward)."""

    hip_deg: tuple[float, float]
    knee_deg: tuple[float, float]


def sample_leg_bend(
    rng: np.random.Generator, hip_deg: tuple[float, float], knee_deg: tuple[float, float], side_deg: float = 20.0
) -> LegBend:
    """Draw one clip's leg flexion: a hip angle uniform in ``hip_deg`` and a knee angle uniform in ``knee_deg`` for
    both legs, each side then moved by an independent uniform difference in [-side_deg / 2, side_deg / 2]; knee
    angles below 0 are 0 (a knee does not bend backwards). Draws: hip, knee, hip sides (2), knee sides (2)."""
    hip, knee = rng.uniform(*hip_deg), rng.uniform(*knee_deg)
    dh, dk = rng.uniform(-side_deg / 2, side_deg / 2, size=2), rng.uniform(-side_deg / 2, side_deg / 2, size=2)
    return LegBend(
        hip_deg=(float(hip + dh[0]), float(hip + dh[1])),
        knee_deg=(float(max(0.0, knee + dk[0])), float(max(0.0, knee + dk[1]))),
    )


def _rotate_batch(points: np.ndarray, pivots: np.ndarray, axes: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rotate (T, 3) points about (T, 3) pivots, around (T, 3) unit axes by (T,) angles (radians), per frame."""
    v = points - pivots
    cos, sin = np.cos(angles)[:, None], np.sin(angles)[:, None]
    dot = np.sum(axes * v, axis=-1, keepdims=True)
    return pivots + v * cos + np.cross(axes, v) * sin + axes * dot * (1.0 - cos)  # Rodrigues


def _hip_axis(joints: np.ndarray) -> np.ndarray:
    """(T, 3) unit vectors from the right hip to the left hip of (T, 17, 3) H36M-17 joints."""
    left = joints[:, 4] - joints[:, 1]
    return left / np.maximum(np.linalg.norm(left, axis=-1, keepdims=True), 1e-9)


def bend_legs(joints: np.ndarray, bend: LegBend, max_knee_deg: float = MAX_KNEE_DEG) -> np.ndarray:
    """Fold a clip's legs by ``bend`` (see the module docstring), H36M-17.

    Args:
        joints: (T, 17, 3) positions in a right-handed frame (mocli's world and camera frames), any unit.
        bend: hip and knee angles, degrees (all 0: an exact copy of the input).
        max_knee_deg: a knee's bend (the angle between thigh and shin, 0 straight) is not pushed past this; a knee
            already bent further is left as it is.
    Returns:
        (T, 17, 3) float array: only knees and ankles move, and every bone keeps its length.
    """
    out = np.array(joints, dtype=np.float64)
    axis = _hip_axis(out)
    # In a right-handed frame left x up is the body's front, and a positive turn about `axis` takes a hanging
    # (downward) vector towards axis x (-up), the back: a hip flexes by a negative turn, a knee by a positive one.
    for (hip, knee, ankle), hip_deg, knee_deg in zip(_LEGS, bend.hip_deg, bend.knee_deg, strict=True):
        if hip_deg != 0.0:
            turn = np.full(len(out), -np.radians(hip_deg))
            out[:, knee] = _rotate_batch(out[:, knee], out[:, hip], axis, turn)
            out[:, ankle] = _rotate_batch(out[:, ankle], out[:, hip], axis, turn)
        if knee_deg <= 0.0:
            continue
        thigh, shin = out[:, knee] - out[:, hip], out[:, ankle] - out[:, knee]
        norms = np.linalg.norm(thigh, axis=-1) * np.linalg.norm(shin, axis=-1)
        bent = np.arccos(np.clip(np.sum(thigh * shin, axis=-1) / np.maximum(norms, 1e-12), -1.0, 1.0))
        extra = np.clip(np.radians(knee_deg), 0.0, np.maximum(0.0, np.radians(max_knee_deg) - bent))
        out[:, ankle] = _rotate_batch(out[:, ankle], out[:, knee], axis, extra)
    return out


_UPPER_BODY = np.arange(7, 17)  # H36M-17 spine, thorax, neck, head and both arms


def bend_trunk(joints: np.ndarray, trunk_deg: float) -> np.ndarray:
    """Turn a clip's upper body forward about the pelvis by ``trunk_deg`` (see the module docstring), H36M-17.

    Args:
        joints: (T, 17, 3) positions in a right-handed frame (mocli's world and camera frames), any unit.
        trunk_deg: degrees, the same in every frame; > 0 bends forward, < 0 backward, 0 returns an exact copy.
    Returns:
        (T, 17, 3) float array: joints 7-16 rotated about the pelvis (joint 0) around the right-to-left hip axis;
        the pelvis and legs are unchanged and every bone keeps its length.
    """
    out = np.array(joints, dtype=np.float64)
    if trunk_deg == 0.0:
        return out
    axis = _hip_axis(out)
    turn = np.full(len(out), np.radians(trunk_deg))  # a positive turn about `axis` takes up towards the front
    for j in _UPPER_BODY:
        out[:, j] = _rotate_batch(out[:, j], out[:, 0], axis, turn)
    return out


def sample_tilt(rng: np.random.Generator, up: np.ndarray, tilt_deg: tuple[float, float]) -> np.ndarray:
    """A random tilt of the body: (3, 3) rotation about a horizontal axis of random azimuth.

    Args:
        rng: draws the axis azimuth (uniform over 360 degrees), then the angle (uniform in ``tilt_deg``).
        up: (3,) unit world up vector; the axis is perpendicular to it.
        tilt_deg: (lo, hi) angle range in degrees (90: standing becomes lying).
    """
    axis = _horizontal_axis(rng, up)
    return rotation_about_axis(axis, np.radians(rng.uniform(*tilt_deg)))


def _horizontal_axis(rng: np.random.Generator, up: np.ndarray) -> np.ndarray:
    """(3,) unit vector perpendicular to ``up``, its azimuth drawn uniformly over 360 degrees."""
    azimuth = rng.uniform(0.0, 2 * np.pi)
    h0, h1 = horizontal_basis(up)
    return np.cos(azimuth) * h0 + np.sin(azimuth) * h1


def rotate_about(joints: np.ndarray, rotation: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """Rotate (..., 3) points about ``pivot`` (3,): ``pivot + R (X - pivot)``; same units as the input."""
    return (joints - pivot) @ rotation.T + pivot


@dataclass(frozen=True)
class TiltRamp:
    """A tilt that changes over a clip: about the horizontal unit ``axis`` (3,), ``angles_deg`` (from, to), the
    change along a smoothstep from clip frame ``frames[0]`` to ``frames[1]`` (the angle held outside them)."""

    axis: np.ndarray
    angles_deg: tuple[float, float]
    frames: tuple[float, float]


def sample_tilt_ramp(
    rng: np.random.Generator, up: np.ndarray, tilt_deg: tuple[float, float], num_frames: int
) -> TiltRamp:
    """A random ``TiltRamp`` for a clip of ``num_frames``: axis azimuth uniform over 360 degrees, each angle uniform
    in ``tilt_deg`` (so as many clips lie down as get up), the two frames uniform in the clip, in order.

    Args:
        up: (3,) unit world up vector; the axis is perpendicular to it.
    """
    axis = _horizontal_axis(rng, up)
    a0, a1 = rng.uniform(*tilt_deg, size=2)
    f0, f1 = np.sort(rng.uniform(0.0, num_frames - 1, size=2))
    return TiltRamp(axis, (float(a0), float(a1)), (float(f0), float(f1)))


def ramp_tilt(joints: np.ndarray, ramp: TiltRamp, pivot: np.ndarray) -> np.ndarray:
    """Rotate each frame of (T, J, 3) ``joints`` about ``pivot`` (3,) and ``ramp.axis`` by its angle on the ramp.

    The angle at frame t is ``a0 + (a1 - a0) * s(u)``, ``u = (t - f0) / (f1 - f0)`` clipped to [0, 1] and
    ``s(u) = 3u^2 - 2u^3`` (no jump in angular speed at either end; a step at f0 when f0 == f1). Same unit as the input.
    """
    num_frames = joints.shape[0]
    f0, f1 = ramp.frames
    t = np.arange(num_frames, dtype=np.float64)
    u = np.clip((t - f0) / (f1 - f0), 0.0, 1.0) if f1 > f0 else (t >= f0).astype(np.float64)
    a0, a1 = np.radians(ramp.angles_deg)
    angles = a0 + (a1 - a0) * (3 * u**2 - 2 * u**3)
    axis = np.asarray(ramp.axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis)
    out = np.empty(joints.shape, dtype=np.float64)
    pivots = np.broadcast_to(np.asarray(pivot, dtype=np.float64), (num_frames, 3))
    axes = np.broadcast_to(axis, (num_frames, 3))
    for j in range(joints.shape[1]):
        out[:, j] = _rotate_batch(np.asarray(joints[:, j], dtype=np.float64), pivots, axes, angles)
    return out


def sample_target_fps(rng: np.random.Generator, fps_range: tuple[float, float]) -> float:
    """A frame rate drawn log-uniformly in ``fps_range`` (as many clips twice as fast as twice as slow)."""
    lo, hi = fps_range
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def change_speed(sequence: np.ndarray, start: int, clip_len: int, step: float) -> np.ndarray:
    """``clip_len`` frames of a sequence read every ``step`` source frames, by linear interpolation.

    Frame k is source frame ``start' + k * step``. ``start'`` is ``start``, moved back just enough for the clip's
    span ``(clip_len - 1) * step`` to end within the sequence (never before frame 0): a clip near the end of a
    sequence sees real motion, not a frozen last pose. Only in a sequence shorter than the span do the positions
    past its end clamp to its last frame.

    Args:
        sequence: (T, ...) whole source sequence (positions in any unit).
        start: the clip's first frame in the source.
        clip_len: frames to return.
        step: source frames per clip frame (source fps / target fps; > 1 is faster, < 1 slower motion).
    Returns:
        (clip_len, ...) float array.
    """
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step}")
    num_frames = sequence.shape[0]
    span = (clip_len - 1) * step
    start = max(0, min(int(start), int(np.floor(num_frames - 1 - span + 1e-9))))
    end = min(num_frames, start + int(np.ceil(span - 1e-9)) + 2)
    window = np.asarray(sequence[start:end], dtype=np.float64)
    frames = resample_linear(window, step, 1.0)[:clip_len]
    if len(frames) < clip_len:  # the sequence is shorter than the span: later positions clamp to its last frame
        frames = np.concatenate([frames, np.repeat(window[-1:], clip_len - len(frames), axis=0)])
    return frames


def check_config(cfg: DataConfig) -> None:
    """Raise a one-line MocliError for augmentation settings of a DataConfig that cannot work."""

    def ordered(key: str, lo_min: float) -> None:
        lo, hi = getattr(cfg, key)
        if not lo_min <= lo <= hi:
            raise MocliError(f"data.{key} must be two values {lo_min} <= lo <= hi, got {lo}, {hi}")

    for key in ("body_scale", "bone_scale"):
        ordered(key, 1e-3)
    for key in ("occlusion_frames", "swap_frames", "jitter_frames"):
        ordered(key, 1)
    ordered("tilt_deg", -180.0)
    ordered("bend_hip_deg", -90.0)
    ordered("bend_knee_deg", -180.0)
    ordered("trunk_deg", -90.0)
    ordered("aim_offset_m", -np.inf)
    if tuple(cfg.speed_fps) != (0.0, 0.0):
        ordered("speed_fps", 1e-3)
    for key in ("tilt_prob", "tilt_ramp_prob", "bend_prob", "trunk_prob", "occlusion_limb_prob", "shift_prob"):
        if not 0.0 <= getattr(cfg, key) <= 1.0:
            raise MocliError(f"data.{key} must be in [0, 1], got {getattr(cfg, key)}")
    for key in ("bone_asymmetry", "occlusion_rate", "swap_rate", "jitter_rate", "jitter_std", "shift_m"):
        if not getattr(cfg, key) >= 0.0:
            raise MocliError(f"data.{key} must be >= 0, got {getattr(cfg, key)}")
    if cfg.bone_asymmetry >= 2.0:
        raise MocliError(f"data.bone_asymmetry must be < 2, got {cfg.bone_asymmetry}")
