"""Mesh recovery benchmarks (3DPW, Human3.6M) as MotionBERT reports them: MPVE, MPJPE and PA-MPJPE in mm.

Data: MotionBERT's mesh pkl (mesh_det_pw3d.pkl, mesh_det_h36m.pkl): {'train': ..., 'test': ...}, per frame
joint_2d (N,17,2) pixels, confidence (N,17,1), source (N,) sequence names, smpl_pose (N,72) axis-angle (camera
frame), smpl_shape (N,10). The 'test' split is scored (a file without splits is scored whole); one sequence per
consecutive run of ``source``.

Protocol, per frame (every frame scored exactly once, windows as in ``mocli.evaluation.runner``: ``mocli.predict``'s
policy 'every-frame'):

- ground truth: SMPL with the ground-truth pose and shape (the user's neutral model: the pkl holds no gender);
  predictions: SMPL with the predicted rotations and shape; H36M-17 joints from the vertices with
  J_regressor_h36m (the same regressor for both);
- root alignment: each mesh and its joints are made relative to its own pelvis (H36M joint 0);
- MPVE: mean vertex distance; MPJPE: mean distance over the 14 joints (17 minus pelvis, spine and nose/neck);
  PA-MPJPE: the same after the similarity Procrustes alignment of the 14 predicted joints onto the ground truth;
- the headline is the mean over every frame; the table also gives each sequence's frame mean.

``score_mesh(sequences, predict, body)`` takes a ``predict`` function, so the scoring is checked with known answers
and any model (or none) can be plugged in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mocli.data.transforms import normalise_persons
from mocli.errors import InputError
from mocli.evaluation.report import Metric, Report, ScoreSums, build_table
from mocli.metrics import procrustes_align
from mocli.models.rotations import axis_angle_to_matrix

__all__ = ["MeshTestSequence", "load_mesh_test_set", "mesh_errors", "score_mesh", "EVAL_JOINTS_14", "DATASETS"]

EVAL_JOINTS_14 = (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16)  # H36M-17 minus pelvis 0, spine 7, nose/neck 9
DATASETS = ("3dpw", "h36m")
METRICS = [Metric("mpve", "MPVE"), Metric("mpjpe", "MPJPE"), Metric("pa_mpjpe", "PA-MPJPE")]


@dataclass
class MeshTestSequence:
    """One test sequence: ``keypoints`` (T,17,3) pixels + confidence (H36M order), ``pose`` (T,72) axis-angle,
    ``betas`` (T,10) ground truth."""

    name: str
    keypoints: np.ndarray
    pose: np.ndarray
    betas: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.keypoints)


def load_mesh_test_set(path: str | Path, layout: str = "h36m", split: str = "test") -> list[MeshTestSequence]:
    """The sequences of one split of a MotionBERT mesh pkl (``layout``: the 17-joint order of joint_2d)."""
    from mocli.data.converters.h36m import _load_pickle, _runs
    from mocli.data.converters.mesh import _arrays
    from mocli.skeleton import to_h36m

    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such mesh data file: {path}")
    data = _load_pickle(path)
    if not isinstance(data, dict):
        raise InputError(f"{path.name}: expected a dict (MotionBERT mesh pkl)")
    if "train" in data or "test" in data:
        if split not in data:
            raise InputError(f"{path.name} has no {split!r} split (splits: {', '.join(k for k in data)})")
        part, where = data[split], f"{path.name}: [{split!r}]"
    else:
        part, where = data, path.name
    arrays = _arrays(part, where)
    n = len(arrays["source"])
    joint_2d = np.asarray(arrays["joint_2d"], dtype=np.float32)
    conf = np.asarray(arrays["confidence"], dtype=np.float32).reshape(n, joint_2d.shape[1], 1)
    kp = np.concatenate([joint_2d, conf], axis=-1)
    kp = to_h36m(kp, layout) if layout != "h36m" else kp
    if kp.shape[1] != 17:
        raise InputError(f"{path.name}: joint_2d has {joint_2d.shape[1]} joints; give the layout of non-H36M input")
    sources = arrays["source"].astype(str)
    pose = np.asarray(arrays["smpl_pose"], dtype=np.float32).reshape(n, 72)
    betas = np.asarray(arrays["smpl_shape"], dtype=np.float32).reshape(n, 10)
    return [MeshTestSequence(sources[a], kp[a:b], pose[a:b], betas[a:b]) for a, b in _runs(sources)]


@torch.no_grad()
def mesh_errors(
    body, pred_rotmats: torch.Tensor, pred_betas: torch.Tensor, gt_pose: torch.Tensor, gt_betas: torch.Tensor
) -> dict[str, np.ndarray]:
    """Per-frame errors (mm) of predicted SMPL parameters against ground-truth ones.

    Args:
        body: a ``mocli.models.smpl.BodyModel`` (vertices and H36M joints from rotations and betas).
        pred_rotmats: (N, 24, 3, 3); pred_betas: (N, 10); gt_pose: (N, 72) axis-angle radians; gt_betas: (N, 10).
    Returns:
        {'mpve', 'mpjpe', 'pa_mpjpe'}: (N,) float64 millimetres (pelvis-aligned; 14 joints for the joint metrics).
    """
    n = pred_rotmats.shape[0]
    gt = body(axis_angle_to_matrix(gt_pose.float().reshape(n, 24, 3)), gt_betas.float())
    pred = body(pred_rotmats.float(), pred_betas.float())
    idx = list(EVAL_JOINTS_14)
    gt_pelvis, pred_pelvis = gt.joints[:, :1], pred.joints[:, :1]
    gt_j = (gt.joints - gt_pelvis)[:, idx].double() * 1000.0
    pred_j = (pred.joints - pred_pelvis)[:, idx].double() * 1000.0
    gt_v = (gt.verts - gt_pelvis).double() * 1000.0
    pred_v = (pred.verts - pred_pelvis).double() * 1000.0
    return {
        "mpve": torch.linalg.vector_norm(pred_v - gt_v, dim=-1).mean(-1).numpy(),
        "mpjpe": torch.linalg.vector_norm(pred_j - gt_j, dim=-1).mean(-1).numpy(),
        "pa_mpjpe": torch.linalg.vector_norm(procrustes_align(pred_j, gt_j) - gt_j, dim=-1).mean(-1).numpy(),
    }


PredictFn = Callable[[MeshTestSequence], tuple[torch.Tensor, torch.Tensor]]  # -> rotmats (T,24,3,3), betas (T,10)


def score_mesh(
    sequences: Sequence[MeshTestSequence],
    predict: PredictFn,
    body,
    dataset: str = "3dpw",
    info: dict[str, Any] | None = None,
    on_sequence: Callable[[MeshTestSequence], None] | None = None,
    chunk: int = 256,
) -> Report:
    """Score every frame of every sequence; ``predict(seq)`` gives (rotmats (T,24,3,3), betas (T,10) or (10,))."""
    sums = ScoreSums()
    for seq in sequences:
        rot, betas = predict(seq)
        betas = torch.as_tensor(betas, dtype=torch.float32)
        betas = betas.reshape(1, 10).expand(seq.num_frames, 10) if betas.ndim == 1 else betas
        if rot.shape != (seq.num_frames, 24, 3, 3) or betas.shape != (seq.num_frames, 10):
            shapes = f"{tuple(rot.shape)}, {tuple(betas.shape)}"
            raise ValueError(f"{seq.name}: predictions {shapes} for {seq.num_frames} frames")
        for s in range(0, seq.num_frames, chunk):
            e = min(s + chunk, seq.num_frames)
            errs = mesh_errors(body, rot[s:e], betas[s:e], torch.from_numpy(seq.pose[s:e]),
                               torch.from_numpy(seq.betas[s:e]))  # fmt: skip
            for key, values in errs.items():
                sums.add(seq.name, key, values)
        sums.add_frames(seq.name, seq.num_frames)
        if on_sequence is not None:
            on_sequence(seq)
    title = f"{'3DPW' if dataset == '3dpw' else 'Human3.6M'} mesh (mm; 14 joints, pelvis-aligned)"
    table = build_table(sums, title, "sequence", METRICS, mean_over_groups=False)
    pooled = table.summary_row("mean over frames").values
    headline = {f"{m.label} (mm)": pooled[m.key] for m in METRICS}
    facts = {"dataset": dataset, "sequences": len(sequences), "frames": sum(s.num_frames for s in sequences),
             "joints": list(EVAL_JOINTS_14), "root_alignment": "pelvis (H36M joint 0 from J_regressor_h36m)",
             "ground_truth": "SMPL neutral with the ground-truth pose and shape", **(info or {})}  # fmt: skip
    return Report(benchmark=f"mesh-{dataset}", headline=headline, tables=[table], info=facts)


def head_predictor(encoder, head, opts, ratio: float = 1.0) -> PredictFn:
    """``predict`` for ``score_mesh`` from an encoder and a mesh head: windows of ``opts.clip_len`` frames (each
    frame scored from exactly one window: ``mocli.predict``, policy 'every-frame'), normalised as in mesh
    finetuning (``normalise_persons`` with box side ``ratio`` times the keypoints' extent; keypoints with a NaN
    zeroed); betas per frame as predicted; ``opts`` (``runner.RunOptions``): batch size, device, precision (the
    head's autocast, as the lifters'; its flip is not used)."""
    from mocli.predict import Runtime, plan_sequence, predict

    runtime = Runtime(opts.batch_size, opts.device, opts.precision)

    def make(kp: np.ndarray) -> np.ndarray:
        kp = np.array(kp, dtype=np.float64)
        kp[~np.isfinite(kp).all(-1)] = 0.0
        return normalise_persons(kp, ratio).astype(np.float32)

    def predict_seq(seq: MeshTestSequence) -> tuple[torch.Tensor, torch.Tensor]:
        plan = plan_sequence(seq.num_frames, opts.clip_len, "every-frame")
        out = predict(lambda x: head(encoder.forward_features(x)), plan, runtime,
                      make=lambda frames: make(seq.keypoints[frames]))  # fmt: skip
        return torch.from_numpy(out["rotmats"]), torch.from_numpy(out["betas"])

    return predict_seq
