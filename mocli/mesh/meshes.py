"""Meshes for ``mocli infer --task mesh``: which body model, which method, and the per-person files.

Body model (``--body-model``): ``smpl`` needs the user's SMPL files (``--smpl-dir`` or $MOCLI_SMPL_DIR, see
``mocli.models.smpl``); ``anny`` is the open Anny model (``pip install anny``); ``auto`` takes SMPL when a folder is
given (option or environment variable: then the files must be right) and Anny otherwise, so ``--task mesh`` works
on a fresh machine.

Method: with SMPL and a checkpoint that has a mesh head (``heads['mesh']``, from ``mocli finetune mesh`` or an
imported MotionBERT mesh model), the head predicts SMPL per window of 2D keypoints; otherwise the body model is
fitted to the lifted 3D joints (``mocli.mesh.fit``: per-frame pose, one shape, temporal smoothness).

Frames without the person have no mesh: NaN vertices and parameters in mesh.npz and no OBJ file.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mocli.data.transforms import normalise_persons
from mocli.errors import MocliError
from mocli.mesh.fit import FitOptions, FitResult, fit_sequence
from mocli.mesh.outputs import MeshSequence, write_mesh_npz, write_obj_frames
from mocli.models.rotations import matrix_to_axis_angle, matrix_to_rot6d, rot6d_to_matrix
from mocli.predict import Runtime, plan_sequence, predict

__all__ = ["BODY_MODELS", "MeshExporter", "mesh_exporter", "mesh_names", "fit_mesh", "head_mesh", "load_mesh_head"]

log = logging.getLogger(__name__)

BODY_MODELS = ("auto", "smpl", "anny")


def mesh_names(unit: str) -> tuple[str, str]:
    """(npz file, OBJ folder) of one person, named like joints3d files: mesh.npz + mesh/, or mesh_<id>.npz +
    mesh_<id>/."""
    return (f"mesh_{unit}.npz", f"mesh_{unit}") if unit else ("mesh.npz", "mesh")


def _per_frame_error(joints: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(T,17,3) x2 -> (T,) mean joint distance in mm after pelvis alignment (NaN where either is missing)."""
    a = joints - joints[:, :1]
    b = target - target[:, :1]
    return (np.linalg.norm(a - b, axis=-1).mean(-1) * 1000.0).astype(np.float32)


def fit_mesh(body, joints3d: np.ndarray, body_model: str, options: FitOptions = FitOptions()) -> MeshSequence:
    """Fit ``body`` (SmplBody or AnnyBody) to (T,17,3) lifted joints (metres, camera axes, NaN frames skipped)."""
    linearise = getattr(body, "linearise", None)
    fit: FitResult = fit_sequence(
        body.forward_joints, joints3d, body.num_rotations, body.num_shape, options, linearise=linearise
    )
    present = np.isfinite(fit.error_mm)
    t0 = time.perf_counter()
    verts = np.full((len(joints3d), body.num_vertices, 3), np.nan, np.float32)
    if present.any():
        rot = torch.from_numpy(fit.rotmats[present])
        verts[present] = body.vertices(rot, torch.from_numpy(fit.shape)).numpy()
    aa = matrix_to_axis_angle(torch.from_numpy(np.nan_to_num(fit.rotmats))).numpy()  # (T, K, 3)
    aa[~present] = np.nan
    if body_model == "smpl":
        params = {"pose": aa.reshape(len(aa), 72), "betas": fit.shape}
    else:
        params = {
            "pose": aa,
            "bone_names": np.array(body.fit_bone_names),
            "phenotypes": body.phenotypes(torch.from_numpy(fit.shape)).numpy().reshape(-1),
            "phenotype_labels": np.array(body.phenotype_labels),
        }
    info = {
        "fit_error_mm": round(fit.mean_error_mm, 2),
        "fit_seconds": round(fit.seconds, 2),
        "mesh_seconds": round(time.perf_counter() - t0, 2),
        "iterations": fit.iterations,
        "evaluations": fit.evaluations,
        "loss_terms": {k: round(v, 5) for k, v in fit.loss_terms.items()},
    }
    return MeshSequence(verts, body.faces, fit.joints, fit.error_mm, body_model, "fit", params, info)


# ------------------------------------------------------------------------------------------------ mesh head


def load_mesh_head(checkpoint: str | os.PathLike, encoder) -> torch.nn.Module | None:
    """The mesh head of a checkpoint (heads['mesh'], kind mesh), in eval mode; None when it has none."""
    from mocli.models.checkpoint import load_checkpoint
    from mocli.models.heads import head_from_entry

    ckpt = load_checkpoint(checkpoint)
    entry = (ckpt.get("heads") or {}).get("mesh")
    if entry is None:
        return None
    kind, _, head = head_from_entry(entry, encoder.cfg.dim_rep, encoder.cfg.num_joints)
    if kind != "mesh":
        return None
    return head.eval()


def mesh_window_input(keypoints: np.ndarray, ratio: float) -> np.ndarray:
    """(n, 17, 3) pixels + confidence -> (n, 17, 3) float32 mesh-head input: missing keypoints (NaN or confidence
    <= 0) zeroed, one square box over the window's confident keypoints, side ``ratio`` times their extent."""
    kp = np.array(keypoints, dtype=np.float64)
    missing = ~np.isfinite(kp[..., :2]).all(-1) | (kp[..., 2] <= 0)
    kp[missing] = 0.0
    return normalise_persons(kp, ratio).astype(np.float32)


def predict_smpl(
    encoder, head, keypoints: np.ndarray, clip_len: int, device: str | torch.device = "cpu", ratio: float = 1.0,
    batch_size: int = 8, precision: str = "fp32",
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """SMPL rotations (T, 24, 3, 3) and betas (10,) for a whole sequence of 2D keypoints, by the mesh head.

    Windows of ``clip_len`` frames (``mocli.predict``, policy 'blend': overlapping by a third, the last ending at
    the last frame), each normalised as the head was trained (``mesh_window_input``); shorter windows are padded
    with their last frame. Per-frame rotations are blended across overlaps in the 6D representation and
    re-orthonormalised; the betas are the mean over the frames of the per-window predictions (one body per
    sequence). ``precision``: autocast ('fp32': none).

    Args:
        keypoints: (T, 17, 3) pixels + confidence, NaN where missing.
    """

    def smpl_6d(x: torch.Tensor) -> dict[str, torch.Tensor]:
        out = head(encoder.forward_features(x))
        return {"rot6d": matrix_to_rot6d(out["rotmats"]), "betas": out["betas"]}

    plan = plan_sequence(len(keypoints), clip_len, "blend")
    runtime = Runtime(batch_size, device, precision)
    out = predict(smpl_6d, plan, runtime, make=lambda frames: mesh_window_input(keypoints[frames], ratio))
    merged, shape = out["rot6d"], out["betas"].mean(0)  # (T, 24, 6), (10,)
    return rot6d_to_matrix(torch.from_numpy(merged)), torch.from_numpy(shape.astype(np.float32))


def head_mesh(
    body, encoder, head, keypoints: np.ndarray, joints3d: np.ndarray, clip_len: int, device="cpu", ratio=1.0,
    precision: str = "fp32",
) -> MeshSequence:  # fmt: skip
    """SMPL meshes from the mesh head (``body`` a SmplBody); ``joints3d`` (T,17,3) lifted joints, NaN where
    missing, give the frames without the person and the reported distance."""
    t0 = time.perf_counter()
    rot, betas = predict_smpl(encoder, head, keypoints, clip_len, device, ratio, precision=precision)
    present = np.isfinite(joints3d).all(axis=(1, 2))
    verts = body.vertices(rot, betas).numpy().astype(np.float32)
    with torch.no_grad():
        joints = body.forward_joints(rot, betas).numpy().astype(np.float32)
    aa = matrix_to_axis_angle(rot).numpy().reshape(len(rot), 72)
    for arr in (verts, joints, aa):
        arr[~present] = np.nan
    error = _per_frame_error(joints, joints3d)
    info = {
        "distance_to_lifted_joints_mm": round(float(np.nanmean(error)), 2) if present.any() else None,
        "head_seconds": round(time.perf_counter() - t0, 2),
        "clip_len": clip_len,
    }
    return MeshSequence(verts, body.faces, joints, error, "smpl", "head", {"pose": aa, "betas": betas.numpy()}, info)


# ------------------------------------------------------------------------------------------------ the exporter


@dataclass
class MeshExporter:
    """What ``--task mesh`` needs across inputs: the body model (loaded once), the mesh head if used, options.

    ``write`` makes and writes one person's meshes and returns (file names, summary facts).
    """

    body_model: str  # 'smpl' | 'anny'
    body: Any
    head: torch.nn.Module | None = None
    encoder: torch.nn.Module | None = None
    clip_len: int = 16
    ratio: float = 1.0
    device: str = "cpu"
    fit_options: FitOptions = FitOptions()
    obj: bool = True
    precision: str = "fp32"  # the mesh head's autocast (fp32: none)

    @property
    def method(self) -> str:
        return "head" if self.head is not None else "fit"

    def make(self, keypoints: np.ndarray, joints3d: np.ndarray) -> MeshSequence:
        """One person's meshes from (T,17,3) 2D keypoints (pixels + conf) and lifted joints (metres, NaN gaps)."""
        if self.head is not None:
            return head_mesh(self.body, self.encoder, self.head, keypoints, joints3d, self.clip_len, self.device,
                             self.ratio, self.precision)  # fmt: skip
        return fit_mesh(self.body, joints3d, self.body_model, self.fit_options)

    def write(self, result, out_dir: Path, unit: str, world: bool = False) -> tuple[list[str], dict[str, Any]]:
        """mesh.npz (+ the mesh/ OBJ folder) of one person (a MotionResult); returns (names, facts).

        mesh.npz keeps the vertices pelvis-relative and stores the result's trajectory as ``root`` (T,3) when it has
        one; ``world``: the OBJ frames are placed at that trajectory (camera frame, Y up) instead of the origin.
        """
        mesh = self.make(result.keypoints2d, result.joints3d)
        npz_name, obj_name = mesh_names(unit)
        t0 = time.perf_counter()
        root = getattr(result, "root", None)
        write_mesh_npz(mesh, out_dir / npz_name, result.fps, result.missing, root=root)
        files = [npz_name]
        if self.obj:
            placed = mesh
            if world and root is not None:
                placed = replace(mesh, vertices=mesh.vertices + np.asarray(root, np.float32)[:, None, :])
            write_obj_frames(placed, out_dir / obj_name)
            files.append(obj_name + "/")
        facts = {"file": npz_name, "body_model": mesh.body_model, "method": mesh.method,
                 "vertices": int(mesh.vertices.shape[1]), "frames_with_mesh": int(mesh.present.sum()),
                 **mesh.info, "write_seconds": round(time.perf_counter() - t0, 2)}  # fmt: skip
        return files, facts


def _smpl_requested(smpl_dir: str | os.PathLike | None) -> bool:
    from mocli.models.smpl import SMPL_ENV

    return bool(smpl_dir) or bool(os.environ.get(SMPL_ENV))


def mesh_exporter(
    body_model: str = "auto",
    smpl_dir: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    encoder: torch.nn.Module | None = None,
    device: str | torch.device = "cpu",
    fit_options: FitOptions = FitOptions(),
    obj: bool = True,
    precision: str = "fp32",
) -> MeshExporter:
    """The MeshExporter for ``--body-model`` (auto, smpl, anny) and ``--smpl-dir``.

    A missing or wrong SMPL file is a one-line MocliError naming the files and where to put them. With SMPL and a
    checkpoint (``checkpoint`` path, ``encoder`` its loaded model) holding a mesh head, the head is used, with
    autocast at ``precision`` ('fp32': none), as the lifter.
    """
    if body_model not in BODY_MODELS:
        raise MocliError(f"unknown body model {body_model!r}: expected {', '.join(BODY_MODELS)}")
    if body_model == "smpl" or (body_model == "auto" and _smpl_requested(smpl_dir)):
        from mocli.mesh.smpl_body import SmplBody
        from mocli.models.smpl import BodyModel, find_smpl_files

        files = find_smpl_files(smpl_dir)
        body = SmplBody(BodyModel.from_files(files)).eval()
        head = load_mesh_head(checkpoint, encoder) if checkpoint is not None and encoder is not None else None
        exporter = MeshExporter("smpl", body, fit_options=fit_options, device=str(device), obj=obj,
                                precision=precision)  # fmt: skip
        if head is not None:
            info = getattr(encoder, "checkpoint_info", {}) or {}
            data = (info.get("train_config") or {}).get("data") or {}
            lo, hi = data.get("scale_range") or (1.0, 1.0)
            from mocli.api import model_clip_len

            exporter = replace(exporter, head=head.to(device), encoder=encoder, clip_len=model_clip_len(encoder),
                               ratio=(float(lo) + float(hi)) / 2)  # fmt: skip
        return exporter
    from mocli.mesh.anny import AnnyBody

    return MeshExporter("anny", AnnyBody(), fit_options=fit_options, device=str(device), obj=obj, precision=precision)
