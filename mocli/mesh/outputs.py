"""Writing meshes: ``mesh.npz`` (every frame, every parameter) and one Wavefront OBJ per frame (atomic writes).

Axes: ``mesh.npz`` keeps mocli's camera axes (x right, y down, z forward, like joints3d.npz); the OBJ files are
Y up for 3D tools: ``(x, y, z) -> (x, -y, -z)`` (as motion.bvh), so a person facing the camera faces +Z.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mocli.utils.io import atomic_path, save_npz

__all__ = ["MeshSequence", "write_mesh_npz", "write_obj", "write_obj_frames", "CAMERA_TO_Y_UP"]

CAMERA_TO_Y_UP = np.array([1.0, -1.0, -1.0], dtype=np.float32)  # (x, y, z) -> (x, -y, -z)


@dataclass
class MeshSequence:
    """Meshes of one person.

    Attributes:
        vertices: (T, V, 3) float32 metres, pelvis at the origin, camera axes; NaN in frames without the person.
        faces: (F, 3) triangle vertex indices.
        joints3d: (T, 17, 3) float32 the body model's H36M-17 joints (metres, pelvis-relative, camera axes).
        error_mm: (T,) float32 per-frame mean distance of ``joints3d`` to the lifted joints (mm); NaN where missing.
        body_model: 'smpl' or 'anny'; method: 'fit' (fitted to the 3D joints) or 'head' (the checkpoint's mesh head).
        params: the body model's parameters (see docs/exports.md), e.g. pose (T,72) + betas (10,) for SMPL.
        info: facts for summary.json (timings, iterations, loss terms).
    """

    vertices: np.ndarray
    faces: np.ndarray
    joints3d: np.ndarray
    error_mm: np.ndarray
    body_model: str
    method: str
    params: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def present(self) -> np.ndarray:
        """(T,) bool: frames with a mesh."""
        return np.isfinite(self.vertices).all(axis=(1, 2))


def write_mesh_npz(
    mesh: MeshSequence, path: str | os.PathLike, fps: float, missing: np.ndarray, root: np.ndarray | None = None
) -> Path:
    """``mesh.npz``: vertices, faces, joints3d, error_mm, body_model, method, fps, missing_frames, units + params,
    and ``root`` (T,3) metres, the pelvis in the camera frame, when a trajectory is given (vertices + root[:, None]
    places the meshes in the camera frame)."""
    arrays: dict[str, Any] = {
        "vertices": mesh.vertices.astype(np.float32),
        "faces": mesh.faces.astype(np.int32),
        "joints3d": mesh.joints3d.astype(np.float32),
        "error_mm": mesh.error_mm.astype(np.float32),
        "body_model": np.array(mesh.body_model),
        "method": np.array(mesh.method),
        "fps": np.float32(fps),
        "missing_frames": np.asarray(missing, dtype=np.int64),
        "units": np.array("metres"),
    }
    if root is not None:
        arrays["root"] = np.asarray(root, dtype=np.float32)
    arrays.update({k: v for k, v in mesh.params.items() if k not in arrays})
    return save_npz(path, arrays)


def _faces_text(faces: np.ndarray) -> str:
    """1-based ``f a b c`` lines of an OBJ (the same for every frame of a sequence)."""
    f = faces.astype(np.int64) + 1
    return ("f %d %d %d\n" * len(f)) % tuple(f.ravel())


def _obj_text(vertices: np.ndarray, faces_text: str) -> str:
    """OBJ text of one mesh: ``v x y z`` lines (6 decimals: micrometres), then the faces."""
    v = vertices.astype(np.float64)
    return "# mocli mesh: metres, Y up\n" + ("v %.6f %.6f %.6f\n" * len(v)) % tuple(v.ravel()) + faces_text


def write_obj(vertices: np.ndarray, faces: np.ndarray, path: str | os.PathLike) -> Path:
    """One mesh as an OBJ file, vertices (V, 3) written as given."""
    with atomic_path(path) as tmp:
        tmp.write_text(_obj_text(vertices, _faces_text(faces)))
    return Path(path)


def write_obj_frames(mesh: MeshSequence, folder: str | os.PathLike) -> Path:
    """``folder/frame_00000.obj``, ... one file per frame with a mesh (frame numbers of the input; frames without
    the person have no file), Y up. The folder is written beside under a temporary name and renamed when complete,
    replacing an older one."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=folder.parent))
    try:
        faces = _faces_text(mesh.faces)
        for t in np.flatnonzero(mesh.present):
            (tmp / f"frame_{t:05d}.obj").write_text(_obj_text(mesh.vertices[t] * CAMERA_TO_Y_UP, faces))
        os.chmod(tmp, 0o777 & ~_umask())
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
