"""2D keypoint sequences of any length -> 3D joints: windows, normalisation, the encoder, blending, metric scale.

Pure orchestration around a model: no file I/O. The data flow per sequence:

    keypoints (T,17,3) px + conf
      -> windows of the model's clip length (``mocli.predict``, policy 'blend': overlapping by a third, the last one
         ending at the last frame; a window shorter than the clip length padded with its last frame)
      -> per window: MotionBERT's crop-scale normalisation (T_w,17,3) in [-1,1] + conf
      -> the model (flip TTA; a body lying across the image rolled upright and back), windows batched
         -> (T_w,17,3) normalised 3D, root-relative
      -> (limb_depth > 0) per window: the depth of each limb and girdle bone blended towards the depth its length
         and its length in the image call for (``mocli.limb_depth.limb_depths``; x and y unchanged)
      -> per window: scaled to metres with an average adult's body size (monocular 2D cannot observe scale)
      -> blended across overlaps -> (T,17,3) metres, root-relative, camera axes (x right, y down, z forward)
      -> (with the detector's own 3D pose: MediaPipe's world landmarks) that pose aligned onto the lifted one frame
         by frame, smoothed over time and averaged in (``fuse_detector_3d``): with a fixed weight, or ('auto') with
         a weight that grows with the lifter's own uncertainty there (``detector_3d_weights``: how far the lifts
         of the input and of its mirror image disagree, over about two seconds)
      -> (bones="fixed") every bone set to one length for the whole sequence, the same on the left and the right:
         the median of the lifter's own lengths over the frames with a person (a body is rigid between joints)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mocli.bones import median_bone_lengths, set_bone_lengths
from mocli.data.transforms import crop_scale, root_relative
from mocli.limb_depth import limb_depths
from mocli.metrics import procrustes_align
from mocli.models.checkpoint import is_spread_m
from mocli.models.tta import mirrored
from mocli.predict import Runtime, plan_sequence, read_frames, run_batches, window_inputs
from mocli.skeleton import H36M_17
from mocli.trajectory import smooth_trajectory

__all__ = [
    "LiftOptions",
    "lift_keypoints",
    "lift_sequence",
    "Lifted",
    "lift_phases",
    "merge_phases",
    "fuse_detector_3d",
    "detector_3d_weights",
    "parse_detector_3d",
    "mixes_detector_3d",
    "body_size",
    "CANONICAL_BODY_SIZE_M",
    "DETECTOR_3D_SMOOTH_S",
]

# Metric scale of the output: mean leg length (hip-knee-ankle) plus the pelvis-spine-thorax chain of an average
# adult, in metres (0.80 + 0.49; the mean of mocli's mocap sources lies within 5 %).
CANONICAL_BODY_SIZE_M = 1.29
# The detector's own 3D pose jitters from frame to frame (and so does its alignment): each joint of it is smoothed
# over time as the trajectories are (mocli.trajectory.smooth_trajectory), with a Gaussian of this many seconds.
DETECTOR_3D_SMOOTH_S = 0.07
# --detector-3d auto: the lifter's uncertainty is read from flip TTA, as the mean over joints of the distance between
# the lift of the input and the mirrored lift of its mirror image (metres, at the canonical body size), averaged over
# this many seconds; the detector's weight is u^2 / (u^2 + s^2) with s = DETECTOR_3D_SPREAD_M (half at 6 cm).
# Chosen on rendered validation sequences of the training sources (model card, "Auto weight"); weights may store
# their own (meta 'detector_3d_spread_m', read by mocli.api.model_detector_3d_spread).
DETECTOR_3D_AUTO = "auto"
DETECTOR_3D_SPREAD_M = 0.06
DETECTOR_3D_SPREAD_S = 2.0
_LEGS = [(1, 2), (2, 3), (4, 5), (5, 6)]
_TORSO = [(0, 7), (7, 8)]


@dataclass
class LiftOptions:
    clip_len: int = 243  # frames per window (the model's training clip length)
    stride: int | None = None  # default: clip_len * 2 // 3 (a third of each window overlaps the next)
    flip: bool = True  # flip test-time augmentation
    upright: bool = True  # windows of a body lying across the image lifted rolled upright (models.tta.upright)
    batch_size: int = 8  # windows per forward pass
    precision: str = "fp32"  # fp32 | bf16
    min_conf: float = 0.0  # keypoints at or below this confidence are treated as missing
    bones: str = "fixed"  # fixed: one symmetric length per bone for the sequence | free: the lifter's own lengths
    max_fps: float = 60.0  # a faster input is lifted as interleaved sequences at or below this rate (0: never)
    # the detector's own 3D pose averaged in, where given: 'auto' (detector_3d_weights) or a weight 0-1
    detector_3d: float | str = DETECTOR_3D_AUTO
    # 'auto': the lifter's flip spread (metres) at which the detector gets half the weight (detector_3d_weights)
    detector_3d_spread_m: float = DETECTOR_3D_SPREAD_M
    # 0-1: each window's limb depths blended towards those their lengths call for (mocli.limb_depth; 0: off)
    limb_depth: float = 0.0


def parse_detector_3d(value: float | str) -> float | str:
    """``--detector-3d``: 'auto' or a weight from 0 to 1 (a number or its text); ValueError otherwise."""
    if isinstance(value, str) and value.strip().lower() == DETECTOR_3D_AUTO:
        return DETECTOR_3D_AUTO
    try:
        weight = float(value)
    except (TypeError, ValueError):
        weight = float("nan")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"--detector-3d {value}: give 'auto' or the detector's weight from 0 to 1 (0: lifter alone)")
    return weight


def mixes_detector_3d(value: float | str) -> bool:
    """Whether ``--detector-3d`` ``value`` averages the detector's 3D pose in at all ('auto' or a weight above 0)."""
    weight = parse_detector_3d(value)
    return weight == DETECTOR_3D_AUTO or weight > 0


def detector_3d_weights(spread: np.ndarray, window_frames: float, scale_m: float = DETECTOR_3D_SPREAD_M) -> np.ndarray:
    """Per-frame weight of the detector's 3D pose from the lifter's flip spread (``--detector-3d auto``).

    Args:
        spread: (T,) metres, the lifter's flip disagreement per frame (mean over joints); NaN where no person.
        window_frames: the running mean's width in frames (a centred box, shorter at the ends and next to gaps).
        scale_m: the spread at which the detector gets half the weight, metres, > 0.
    Returns:
        (T,) float64 in [0, 1): u^2 / (u^2 + scale_m^2), u the running mean of the finite spreads within the window;
        0 where the window has none.
    Raises:
        ValueError: ``scale_m`` not a positive number.
    """
    if not is_spread_m(scale_m):
        raise ValueError(f"the detector's half-weight spread must be a positive number of metres, got {scale_m}")
    spread = np.asarray(spread, np.float64)
    have = np.isfinite(spread)
    half = max(0, int(round(window_frames)) // 2)
    total = np.concatenate([[0.0], np.cumsum(np.where(have, spread, 0.0))])
    count = np.concatenate([[0], np.cumsum(have)])
    t = np.arange(len(spread))
    lo, hi = np.clip(t - half, 0, len(spread)), np.clip(t + half + 1, 0, len(spread))
    n = count[hi] - count[lo]
    u = np.divide(total[hi] - total[lo], n, out=np.zeros(len(spread)), where=n > 0)
    return u**2 / (u**2 + scale_m**2)


def body_size(joints: np.ndarray) -> np.ndarray:
    """(..., 17, 3) -> (...,) mean leg length + pelvis-to-thorax length, in the joints' units."""

    def length(pairs):
        return sum(np.linalg.norm(joints[..., a, :] - joints[..., b, :], axis=-1) for a, b in pairs)

    return length(_LEGS) / 2 + length(_TORSO)


def _metres_scale(pose: np.ndarray, seen: np.ndarray | None = None) -> float:
    """Factor from a window's (T,17,3) normalised, root-relative pose to metres: the canonical body size over the
    median over its frames with the person (``seen`` (T,) bool; all frames when None or when none is seen). Frames
    without anyone are lifted from an all-zero input and would pull the median down, blowing up a person seen in
    only part of the window. 0 for a pose of no size."""
    if seen is not None and seen.any():
        size = float(np.median(body_size(pose[seen])))
    else:
        size = float(np.median(body_size(pose)))
    return CANONICAL_BODY_SIZE_M / size if size > 1e-6 else 0.0


def _window_input(keypoints: np.ndarray, frames: np.ndarray, min_conf: float) -> np.ndarray:
    """Normalised model input (n,17,3) of the window of ``frames`` (n,): crop-scale over its confident keypoints."""
    window = keypoints[frames].copy()
    missing = ~np.isfinite(window[..., :2]).all(-1) | (window[..., 2] <= min_conf)
    window[missing] = 0.0  # missing keypoints look like MotionBERT's masked joints: x = y = conf = 0
    norm, _ = crop_scale(window)
    return norm.astype(np.float32)


def lift_phases(fps: float | None, max_fps: float) -> int:
    """How many interleaved sequences an input of ``fps`` frames/s is lifted as: k = ceil(fps / max_fps), so each
    (frames p, p+k, p+2k, ...) plays at fps / k <= max_fps; 1 when the rate is unknown or ``max_fps`` is 0."""
    if not fps or max_fps <= 0 or fps <= max_fps:
        return 1
    return int(np.ceil(fps / max_fps - 1e-9))


def merge_phases(phases: list[np.ndarray]) -> np.ndarray:
    """Interleave k lifted phases back into one sequence and remove the steps between them.

    Args:
        phases: k arrays (T_p,...) with phase p holding frames p, p+k, p+2k, ... of the sequence (T_0 >= T_1 >= ...
            >= T_0 - 1), e.g. (T_p,17,3) metres.
    Returns:
        (T,...) float32, T = sum of T_p: frame t from phase t % k, then smoothed over time by a symmetric kernel
        that cancels every pattern repeating each k frames (the k phases are lifted separately, so each has its
        own small offset): a box of k frames (k odd) or a box of k convolved with a box of 2 (k even), edges held.
        A constant or linear motion passes unchanged (away from the ends); at the input's rate of more than 60
        frames/s the kernel spans under 1/20 s for k = 2, 3.
    """
    k = len(phases)
    T = sum(len(p) for p in phases)
    merged = np.empty((T,) + phases[0].shape[1:], np.float32)
    for p, values in enumerate(phases):
        merged[p::k] = values
    if k == 1 or T < 2:
        return merged
    kernel = np.ones(k) / k
    if k % 2 == 0:
        kernel = np.convolve(kernel, [0.5, 0.5])
    half = len(kernel) // 2
    padded = np.concatenate([np.repeat(merged[:1], half, 0), merged, np.repeat(merged[-1:], half, 0)])
    out = np.zeros_like(merged, dtype=np.float64)
    for i, w in enumerate(kernel):
        out += w * padded[i : i + T]
    return out.astype(np.float32)


def fuse_detector_3d(
    joints: np.ndarray, detector_3d: np.ndarray, weight: float | np.ndarray, smooth_frames: float = 0.0
) -> np.ndarray:
    """The lifted joints averaged frame by frame with a detector's own 3D pose (MediaPipe's world landmarks).

    The two err differently (the lifter sees 2D over time, the detector sees the pixels of one frame), so their
    mean is closer to the truth than either where both are about as good. The detector's pose is in its own frame
    and scale, so each frame of it is first aligned onto the lifted pose by a similarity transform (rotation, scale,
    translation; ``mocli.metrics.procrustes_align``): the result keeps the lifter's orientation, scale and root.
    With ``smooth_frames`` > 0 each joint of the aligned pose is then smoothed over the frames that have it
    (``mocli.trajectory.smooth_trajectory``: a 5-frame running median, then a local linear fit with Gaussian
    weights of that many frames), so that the detector's jitter does not reach the result.

    Args:
        joints: (T,17,3) lifted joints, metres, root-relative, camera axes.
        detector_3d: (T,17,3) the detector's 3D joints in H36M-17 order, metres, any frame; NaN where missing.
        weight: the detector's share, 0-1 (0: ``joints`` unchanged, 1: the aligned detector pose), one for every
            frame or (T,) one per frame.
        smooth_frames: the Gaussian's sigma in frames (0: no smoothing).
    Returns:
        (T,17,3) float32, root-relative; frames where either pose is not finite are ``joints``'s.
    """
    if joints.shape != detector_3d.shape or joints.shape[1:] != (H36M_17.num_joints, 3):
        raise ValueError(f"expected two (T,17,3) arrays, got {joints.shape} and {detector_3d.shape}")
    w = np.broadcast_to(np.asarray(weight, np.float64), (len(joints),))
    if not ((w >= 0.0) & (w <= 1.0)).all():
        raise ValueError(f"detector_3d weights must be within 0-1, got {np.min(w)}-{np.max(w)}")
    out = np.asarray(joints, np.float64).copy()
    both = np.isfinite(out).all((1, 2)) & np.isfinite(detector_3d).all((1, 2))
    if (w > 0).any() and both.any():
        aligned = np.full_like(out, np.nan)
        aligned[both] = root_relative(procrustes_align(np.asarray(detector_3d[both], np.float64), out[both]))
        if smooth_frames > 0:
            for j in range(1, out.shape[1]):  # the root stays at 0
                aligned[:, j] = smooth_trajectory(aligned[:, j], sigma_frames=smooth_frames)
        wb = w[both][:, None, None]
        out[both] = root_relative((1.0 - wb) * out[both] + wb * aligned[both])
    return out.astype(np.float32)


@dataclass(frozen=True)
class Lifted:
    """What ``lift_sequence`` gives for one sequence."""

    joints: np.ndarray  # (T,17,3) float32 metres, root-relative, camera axes (x right, y down, z forward)
    detector_3d_weight: np.ndarray  # (T,) float32: the detector's share of each frame's mix; NaN where not mixed


def lift_keypoints(
    model: torch.nn.Module,
    keypoints: np.ndarray,
    options: LiftOptions | None = None,
    device: str | torch.device = "cpu",
    fps: float | None = None,
    detector_3d: np.ndarray | None = None,
) -> np.ndarray:
    """(T,17,3) float32 3D joints for a whole sequence of 2D keypoints: ``lift_sequence(...).joints``."""
    return lift_sequence(model, keypoints, options, device, fps, detector_3d).joints


def lift_sequence(
    model: torch.nn.Module,
    keypoints: np.ndarray,
    options: LiftOptions | None = None,
    device: str | torch.device = "cpu",
    fps: float | None = None,
    detector_3d: np.ndarray | None = None,
) -> Lifted:
    """3D joints for a whole sequence of 2D keypoints, and the weight the detector's own 3D pose got in each frame.

    Args:
        model: maps (B,T,17,3) normalised 2D + conf to (B,T,17,3) normalised 3D (a DSTformer, or an STMO in
            ``mocli.models.stmo.ManyToOne``: each frame the centre of its own window, within this lift window).
        keypoints: (T,17,3) pixels + confidence, H36M-17 order; NaN or conf 0 where a joint or frame is missing.
        options: windowing, flip TTA, batching, precision, bone lengths, the fastest rate lifted as is.
        fps: the input's frame rate (None: unknown). Above ``options.max_fps`` the sequence is lifted as
            k = ``lift_phases(fps, max_fps)`` interleaved sequences (frames p, p+k, ...), so that a window spans as
            much time as in training (the lifters are trained at 15-60 frames/s; at 120 frames/s a window of 81
            frames is 0.7 s of motion), and the phases are merged back into one sequence (``merge_phases``).
        detector_3d: (T,17,3) the detector's own 3D pose (MediaPipe's world landmarks in H36M-17 order), metres,
            its own frame, NaN where missing; averaged in (``fuse_detector_3d``, smoothed over
            ``DETECTOR_3D_SMOOTH_S`` seconds at ``fps``, 30 when unknown) before the bone lengths are fixed, with
            the weight ``options.detector_3d``: a number, or 'auto' (``detector_3d_weights`` of the lifter's flip
            spread over ``DETECTOR_3D_SPREAD_S`` seconds, half the weight at ``options.detector_3d_spread_m``;
            without ``options.flip`` the mirrored pass is run for the weight only). None, or a weight of 0: the
            lifter's alone.
    Returns:
        ``Lifted``: joints (T,17,3) float32 metres, root-relative (pelvis at 0), camera axes (x right, y down, z
        forward), for every input frame (callers mark frames without a person); detector_3d_weight (T,) the
        detector's weight in the frames it was averaged into (NaN in the others, and everywhere without it).
    """
    opts = options or LiftOptions()
    if opts.bones not in ("fixed", "free"):
        raise ValueError(f"bones must be 'fixed' or 'free', got {opts.bones!r}")
    mix = parse_detector_3d(opts.detector_3d)
    auto = detector_3d is not None and mix == DETECTOR_3D_AUTO
    device = torch.device(device)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (H36M_17.num_joints, 3):
        raise ValueError(f"expected (T,17,3) keypoints, got {keypoints.shape}")
    seen = (np.isfinite(keypoints[..., :2]).all(-1) & (keypoints[..., 2] > opts.min_conf)).any(-1)  # (T,) a person
    k = lift_phases(fps, opts.max_fps)
    lifted = [_lift_windows(model, keypoints[p::k], seen[p::k], opts, device, spread=auto) for p in range(k)]
    joints = merge_phases([j for j, _ in lifted]) if k > 1 else lifted[0][0]
    used = np.full(len(keypoints), np.nan)
    if detector_3d is not None and (auto or mix > 0):
        rate = fps if fps and fps > 0 else 30.0
        if auto:
            spread = merge_phases([g for _, g in lifted]) if k > 1 else lifted[0][1]
            spread = np.where(seen, spread, np.nan)
            weight = detector_3d_weights(spread, DETECTOR_3D_SPREAD_S * rate, opts.detector_3d_spread_m)
        else:
            weight = np.full(len(keypoints), mix)
        both = np.isfinite(joints).all((1, 2)) & np.isfinite(detector_3d).all((1, 2))  # as fuse_detector_3d's
        used[both] = weight[both]
        joints = fuse_detector_3d(joints, detector_3d, weight, smooth_frames=DETECTOR_3D_SMOOTH_S * rate)
    if opts.bones == "fixed":
        if seen.any():
            joints = set_bone_lengths(joints, median_bone_lengths(joints[seen], symmetric=True))
    return Lifted(joints.astype(np.float32), used.astype(np.float32))


def _lift_windows(
    model: torch.nn.Module,
    keypoints: np.ndarray,
    seen: np.ndarray,
    opts: LiftOptions,
    device: torch.device,
    spread: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(T,17,3) pixels + conf -> (T,17,3) metres, root-relative: blended windows, each scaled to the average body
    from the frames where ``seen`` (T,) has the person. With ``spread`` also (T,) metres: the mean over joints of
    the distance between the lift of the input and the mirrored lift of its mirror image (the two halves of flip
    TTA, run as two passes; their mean is the flip-averaged lift, used when ``opts.flip``), at the same scale;
    else None."""
    T = len(keypoints)
    plan = plan_sequence(T, opts.clip_len, "blend", stride=opts.stride)
    inputs = window_inputs(plan, make=lambda frames: _window_input(keypoints, frames, opts.min_conf))
    if spread:
        runtime = Runtime(opts.batch_size, device, opts.precision, False, opts.upright)
        one = run_batches(model, inputs, runtime)
        other = run_batches(mirrored(model), inputs, runtime)
        one, other = one - one[:, :, :1], other - other[:, :, :1]
        pred = (one + other) / 2 if opts.flip else one
        gap = np.linalg.norm(one - other, axis=-1).mean(-1)  # (N, T_w) normalised units
    else:
        pred = run_batches(model, inputs, Runtime(opts.batch_size, device, opts.precision, opts.flip, opts.upright))
        pred = pred - pred[:, :, :1]  # root-relative
    if opts.limb_depth > 0:
        windows = zip(pred, plan.windows, strict=True)
        pred = np.stack([_limb_window(p, seen[s:e], opts.limb_depth) for p, (s, e) in windows])
    scales = [_metres_scale(p[: e - s], seen[s:e]) for p, (s, e) in zip(pred, plan.windows, strict=True)]
    joints = read_frames(plan, [p[: e - s] * c for p, (s, e), c in zip(pred, plan.windows, scales, strict=True)])
    if not spread:
        return joints, None
    return joints, read_frames(plan, [g[: e - s] * c for g, (s, e), c in zip(gap, plan.windows, scales, strict=True)])


def _limb_window(pred: np.ndarray, seen: np.ndarray, strength: float) -> np.ndarray:
    """``limb_depths`` of one window (T_w,17,3) whose first len(seen) frames are the sequence's (the rest pad it),
    bone lengths from the frames with the person."""
    n = len(seen)
    out = pred.copy()
    out[:n] = limb_depths(pred[:n], strength, seen=seen)
    return out
