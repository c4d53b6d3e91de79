"""Fitting a body model's pose (per frame) and shape (per sequence) to 3D joints: pure torch maths, no I/O.

The body model is anything that maps joint rotations and a shape vector to Human3.6M-17 joints (``JointsFn``):
SMPL through the user's files, or the open Anny model. Targets are ``joints3d`` as ``mocli infer`` writes them:
(T,17,3) metres, root-relative (pelvis at 0), camera axes (x right, y down, z forward), NaN in frames without the
person. The body model keeps its own axes: each frame's root rotation takes the model's frame to the camera's, so
the fit never needs to know which way is up for the model.

Parameters (all optimised together, batched over every frame):

    root    R_t = R0_t exp([a_t]x)       R0_t the per-frame Kabsch rotation of the rest torso onto the target torso
    body    R_tk = exp([b_tk]x)          axis-angle of the K-1 other rotations, starting at the rest pose (0)
    shape   s (S,)                       one vector for the whole sequence, starting at the mean (0)

Loss (``FitWeights``; the joint terms are in units of ``sigma`` = 1 cm, so a 1 cm error of one joint costs 1):

    data        mean over valid frames of sum_j |J_tj - Y_tj|^2 / sigma^2           (both pelvis-relative)
    bone_dir    mean over valid frames of sum_b |u_tb - v_tb|^2, u, v the unit directions of the 16 bones: the
                limbs point where the target's do even when its bone lengths differ from any body the model makes
    pose_prior  mean over valid frames of sum_k |b_tk|^2                            (radians^2)
    pose_smooth mean over consecutive valid pairs of sum_k |R_t+1,k - R_tk|_F^2      (all K rotations, root included)
    joint_accel mean over valid triples of sum_j |J_t+1 - 2 J_t + J_t-1|^2 / sigma^2
    shape_prior |s|^2

minimised with L-BFGS (strong Wolfe line search) in two stages: the shape with the poses of a few frames spread over
the sequence, then every frame's pose with the shape fixed (a body model may make the shape's gradient costly; the
shape is the same in every frame). Frames without the person take no part (their outputs are NaN); the temporal
terms only link consecutive frames that both have the person.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np
import torch

from mocli.models.rotations import axis_angle_to_matrix

__all__ = ["FitWeights", "FitOptions", "FitResult", "JointsFn", "kabsch_rotation", "fit_sequence", "TORSO_JOINTS"]

# (N, K, 3, 3) rotations (root first, in the model's own frame), (S,) shape -> (N, 17, 3) H36M joints, metres
JointsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

TORSO_JOINTS = (0, 1, 4, 7, 8, 11, 14)  # pelvis, hips, spine, thorax, shoulders: the rigid-ish part for the init


@dataclass(frozen=True)
class FitWeights:
    """Weights of the loss terms (see the module doc)."""

    data: float = 1.0
    pose_prior: float = 0.02
    pose_smooth: float = 2.0
    joint_accel: float = 0.1
    shape_prior: float = 0.01
    bone_dir: float = 100.0  # per bone, |unit direction difference|^2 (0.1, about 6 degrees, costs as 1 cm does)
    sigma_m: float = 0.01  # joint errors are measured in units of sigma (metres)


@dataclass(frozen=True)
class FitOptions:
    """L-BFGS iterations (each may evaluate the loss a few times in its line search) and the loss weights."""

    iterations: int = 200  # stage 2: every frame's pose
    shape_iterations: int = 120  # stage 1: the shape with the poses of a few frames, in ``shape_rounds`` rounds
    shape_rounds: int = 3
    shape_frames: int = 32
    weights: FitWeights = FitWeights()
    lr: float = 1.0
    history_size: int = 20


@dataclass
class FitResult:
    """A fitted sequence.

    Attributes:
        rotmats: (T, K, 3, 3) float32 rotations (root first; root in camera axes), NaN in frames without the person.
        shape: (S,) float32 shape vector of the body model (free parameters, 0 = the mean body).
        joints: (T, 17, 3) float32 the fitted model's H36M joints, metres, pelvis-relative, camera axes; NaN where
            the target is missing.
        error_mm: (T,) float32 per-frame mean joint distance to the target (MPJPE), millimetres; NaN where missing.
        loss_terms: the final unweighted loss terms (see the module doc).
        iterations: L-BFGS iterations run; evaluations: loss evaluations; seconds: wall time.
    """

    rotmats: np.ndarray
    shape: np.ndarray
    joints: np.ndarray
    error_mm: np.ndarray
    loss_terms: dict[str, float]
    iterations: int
    evaluations: int
    seconds: float

    @property
    def mean_error_mm(self) -> float:
        """MPJPE of the fit over the frames with the person (mm)."""
        valid = np.isfinite(self.error_mm)
        return float(self.error_mm[valid].mean()) if valid.any() else float("nan")


def kabsch_rotation(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """(..., N, 3) point sets -> (..., 3, 3) proper rotation R minimising sum |R (src - mean) - (dst - mean)|^2."""
    a = src - src.mean(-2, keepdim=True)
    b = dst - dst.mean(-2, keepdim=True)
    u, _, vh = torch.linalg.svd(b.transpose(-1, -2) @ a)  # (..., 3, 3) = sum dst src^T
    d = torch.sign(torch.linalg.det(u @ vh))
    fix = torch.ones_like(u[..., 0])
    fix[..., 2] = d
    return u @ torch.diag_embed(fix) @ vh


def _root_relative(joints: torch.Tensor) -> torch.Tensor:
    return joints - joints[..., :1, :]


_PARENTS = (0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)  # H36M-17 parent of joints 1..16


def _bone_dirs(joints: torch.Tensor) -> torch.Tensor:
    """(N, 17, 3) -> (N, 16, 3) unit directions of the 16 bones (parent -> child)."""
    d = joints[:, 1:] - joints[:, list(_PARENTS)]
    return d / torch.linalg.vector_norm(d, dim=-1, keepdim=True).clamp_min(1e-6)


def _runs_of(valid: np.ndarray, length: int) -> np.ndarray:
    """(M,) start indices t such that frames t .. t+length-1 are all valid."""
    if len(valid) < length:
        return np.zeros(0, dtype=np.int64)
    ok = np.ones(len(valid) - length + 1, bool)
    for k in range(length):
        ok &= valid[k : len(valid) - length + 1 + k]
    return np.flatnonzero(ok)


def _lbfgs(params: list[torch.Tensor], loss_fn: Callable[[], torch.Tensor], options: FitOptions) -> tuple[int, int]:
    """Minimise ``loss_fn`` over ``params`` with L-BFGS; returns (iterations, loss evaluations)."""
    if options.iterations <= 0:
        return 0, 0
    optimiser = torch.optim.LBFGS(
        params, lr=options.lr, max_iter=options.iterations, history_size=options.history_size,
        line_search_fn="strong_wolfe", tolerance_grad=1e-9, tolerance_change=1e-12,
    )  # fmt: skip
    evaluations = 0

    def closure() -> torch.Tensor:
        nonlocal evaluations
        evaluations += 1
        optimiser.zero_grad()
        loss = loss_fn()
        loss.backward()
        return loss

    optimiser.step(closure)
    return int(optimiser.state[params[0]].get("n_iter", 0)), evaluations


class _Problem:
    """Rotations of N frames (root: Kabsch init times a fitted correction; the rest: axis-angle from 0) and the loss
    terms against pelvis-relative targets ``y`` (N, 17, 3)."""

    def __init__(self, joints_fn: JointsFn, y: torch.Tensor, num_rotations: int, shape: torch.Tensor, w: FitWeights):
        self.joints_fn, self.y, self.w = joints_fn, y, w
        self.y_dirs = _bone_dirs(y)
        N, K = y.shape[0], num_rotations
        with torch.no_grad():
            rest = _root_relative(joints_fn(torch.eye(3).expand(1, K, 3, 3), shape.detach()))  # (1, 17, 3)
            idx = list(TORSO_JOINTS)
            self.root0 = kabsch_rotation(rest[:, idx].expand(N, -1, -1), y[:, idx])  # (N, 3, 3) model -> camera
        self.root_aa = torch.zeros(N, 3, requires_grad=True)
        self.body_aa = torch.zeros(N, K - 1, 3, requires_grad=True)
        self.pairs = self.triples = torch.zeros(0, dtype=torch.long)

    def rotations(self) -> torch.Tensor:
        """(N, K, 3, 3), the root in camera axes."""
        root = self.root0 @ axis_angle_to_matrix(self.root_aa)
        return torch.cat([root[:, None], axis_angle_to_matrix(self.body_aa)], dim=1)

    def terms(self, shape: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """The unweighted loss terms, the joints (N, 17, 3) and the rotations (N, K, 3, 3)."""
        rot = self.rotations()
        joints = _root_relative(self.joints_fn(rot, shape))
        inv_s2 = 1.0 / self.w.sigma_m**2
        zero = joints.sum() * 0.0
        p, t = self.pairs, self.triples
        terms = {
            "data": ((joints - self.y) ** 2).sum((-1, -2)).mean() * inv_s2,
            "bone_dir": ((_bone_dirs(joints) - self.y_dirs) ** 2).sum((-1, -2)).mean(),
            "pose_prior": (self.body_aa**2).sum((-1, -2)).mean(),
            "shape_prior": (shape**2).sum(),
            "pose_smooth": ((rot[p + 1] - rot[p]) ** 2).sum((-1, -2, -3)).mean() if len(p) else zero,
            "joint_accel": (
                ((joints[t + 1] - 2 * joints[t] + joints[t - 1]) ** 2).sum((-1, -2)).mean() * inv_s2 if len(t) else zero
            ),
        }
        return terms, joints, rot

    def loss(self, shape: torch.Tensor) -> torch.Tensor:
        terms, _, _ = self.terms(shape)
        return sum(getattr(self.w, k) * v for k, v in terms.items())


def _spread(n: int, k: int) -> np.ndarray:
    """k indices spread evenly over range(n) (all of them when k >= n)."""
    return np.arange(n) if k >= n else np.unique(np.linspace(0, n - 1, k).round().astype(np.int64))


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread: the fit is thousands of tiny ops, for which a thread pool only adds waiting (10-30x
    slower on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_sequence(
    joints_fn: JointsFn,
    target: np.ndarray,
    num_rotations: int,
    num_shape: int,
    options: FitOptions = FitOptions(),
    init_shape: np.ndarray | None = None,
    linearise: Callable[[torch.Tensor], None] | None = None,
) -> FitResult:
    """Fit rotations per frame and one shape vector to a sequence of 3D joints.

    Two stages: (1) the shape with the poses of at most ``options.shape_frames`` frames spread over the sequence
    (no temporal terms), (2) the poses of every frame with that shape fixed, with the temporal terms. Both start
    from the rest pose with each frame's root turned onto the target's torso (Kabsch).

    Args:
        joints_fn: the body model, (N, K, 3, 3) rotations + (S,) shape -> (N, 17, 3) H36M joints in metres.
        target: (T, 17, 3) metres, camera axes (any origin per frame; made pelvis-relative); NaN frames are skipped.
        num_rotations: K (root first); num_shape: S.
        options: iterations and loss weights.
        init_shape: (S,) starting shape (default zeros, the mean body).
        linearise: called with the current shape before each round of stage 1, for body models whose joints use a
            local linear model of the shape while it is optimised (``AnnyBody.linearise``).
    Returns:
        FitResult (rotations in camera axes, shape, fitted joints, per-frame error in mm).
    """
    with _one_thread():
        return _fit(joints_fn, target, num_rotations, num_shape, options, init_shape, linearise)


def _fit(joints_fn, target, num_rotations, num_shape, options, init_shape, linearise) -> FitResult:
    t_start = time.perf_counter()
    target = np.asarray(target, dtype=np.float64)
    if target.ndim != 3 or target.shape[1:] != (17, 3):
        raise ValueError(f"expected (T, 17, 3) target joints, got {target.shape}")
    T, K, S = len(target), num_rotations, num_shape
    valid = np.isfinite(target).all(axis=(1, 2))
    w = options.weights
    out_rot = np.full((T, K, 3, 3), np.nan, np.float32)
    out_joints = np.full((T, 17, 3), np.nan, np.float32)
    out_err = np.full(T, np.nan, np.float32)
    shape = torch.zeros(S) if init_shape is None else torch.as_tensor(init_shape, dtype=torch.float32).clone()
    if not valid.any():
        return FitResult(out_rot, shape.numpy(), out_joints, out_err, {}, 0, 0, time.perf_counter() - t_start)
    frames = np.flatnonzero(valid)
    y = _root_relative(torch.from_numpy(target[frames]).float())  # (N, 17, 3)

    iterations = evaluations = 0
    if S > 0 and options.shape_iterations > 0:  # stage 1: shape (and the poses of a few frames)
        sub = torch.from_numpy(_spread(len(frames), options.shape_frames))
        stage1 = _Problem(joints_fn, y[sub], K, shape, w)
        rounds = max(1, options.shape_rounds)
        per_round = replace(options, iterations=max(1, options.shape_iterations // rounds))
        for _ in range(rounds):
            if linearise is not None:
                linearise(shape)
            shape.requires_grad_(True)
            its, evs = _lbfgs([stage1.root_aa, stage1.body_aa, shape], lambda s=shape: stage1.loss(s), per_round)
            iterations, evaluations = iterations + its, evaluations + evs
            shape = shape.detach()

    pos = np.full(T, -1)
    pos[frames] = np.arange(len(frames))  # frame -> row among the valid frames
    problem = _Problem(joints_fn, y, K, shape, w)  # stage 2: every frame's pose, the shape fixed
    problem.pairs = torch.from_numpy(pos[_runs_of(valid, 2)])  # rows t with frame t+1 valid too
    problem.triples = torch.from_numpy(pos[_runs_of(valid, 3)] + 1)  # middle rows of 3 consecutive valid frames
    its, evs = _lbfgs([problem.root_aa, problem.body_aa], lambda: problem.loss(shape), options)
    iterations, evaluations = iterations + its, evaluations + evs
    with torch.no_grad():
        terms, joints, rot = problem.terms(shape)
    err = torch.linalg.vector_norm(joints - y, dim=-1).mean(-1) * 1000.0  # (N,) mm
    out_rot[frames] = rot.numpy()
    out_joints[frames] = joints.numpy()
    out_err[frames] = err.numpy()
    return FitResult(
        rotmats=out_rot,
        shape=shape.numpy().astype(np.float32),
        joints=out_joints,
        error_mm=out_err,
        loss_terms={k: float(v) for k, v in terms.items()},
        iterations=iterations,
        evaluations=evaluations,
        seconds=time.perf_counter() - t_start,
    )
