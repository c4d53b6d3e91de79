"""The SMPL body model for the mesh head: a thin wrapper of ``smplx.SMPLLayer`` fed with user-supplied files.

SMPL is licensed and never shipped with mocli. The mesh task needs three files in one folder, given by
``--smpl-dir DIR`` (``smpl_dir`` below) or the environment variable ``MOCLI_SMPL_DIR``:

    SMPL_NEUTRAL.npz (or .pkl)  the neutral SMPL model (smpl.is.tue.mpg.de, after accepting its license); arrays
                                v_template (V,3), shapedirs (V,3,>=10), posedirs (V,3,207), J_regressor (24,V),
                                weights (V,24), kintree_table (2,24), f (F,3). The .npz needs no pickle; the
                                original .pkl holds chumpy objects and needs the ``chumpy`` package to be read.
    smpl_mean_params.npz        'pose' (144,) mean 6D rotations of the 24 joints, 'shape' (10,) mean betas (SPIN)
    J_regressor_h36m.npy        (17, V) regressor of the Human3.6M joints from the vertices

Units: vertices and joints in metres (``BodyOutput``); rotations as (N, 24, 3, 3) matrices, betas (N, 10).
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mocli.errors import MocliError

__all__ = [
    "SMPL_ENV",
    "SmplFiles",
    "BodyOutput",
    "BodyModel",
    "find_smpl_files",
    "read_model_data",
    "load_mean_params",
    "load_j_regressor",
]

SMPL_ENV = "MOCLI_SMPL_DIR"
NUM_SMPL_JOINTS = 24
NUM_BETAS = 10
_HOW = (
    f"put SMPL_NEUTRAL.pkl or SMPL_NEUTRAL.npz (smpl.is.tue.mpg.de), smpl_mean_params.npz and J_regressor_h36m.npy "
    f"in one folder and pass --smpl-dir DIR or set {SMPL_ENV}=DIR (see docs/finetune.md)"
)
_MODEL_SHAPES = {  # array -> expected shape, None = any size (V vertices, F faces)
    "v_template": (None, 3),
    "shapedirs": (None, 3, None),
    "posedirs": (None, 3, 207),
    "J_regressor": (NUM_SMPL_JOINTS, None),
    "weights": (None, NUM_SMPL_JOINTS),
    "kintree_table": (2, NUM_SMPL_JOINTS),
    "f": (None, 3),
}


@dataclass(frozen=True)
class SmplFiles:
    """Paths of the three files the mesh head needs."""

    model: Path
    mean_params: Path
    j_regressor_h36m: Path


def find_smpl_files(smpl_dir: str | os.PathLike | None = None) -> SmplFiles:
    """The SMPL files in ``smpl_dir`` (else ``$MOCLI_SMPL_DIR``); a one-line MocliError naming what is missing."""
    folder = smpl_dir or os.environ.get(SMPL_ENV, "")
    if not folder:
        raise MocliError(f"the mesh head needs the SMPL model files: {_HOW}")
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise MocliError(f"SMPL folder {folder} does not exist: {_HOW}")
    model = next((p for p in (folder / "SMPL_NEUTRAL.npz", folder / "SMPL_NEUTRAL.pkl") if p.is_file()), None)
    files = {"SMPL_NEUTRAL.pkl/.npz": model, "smpl_mean_params.npz": folder / "smpl_mean_params.npz"}
    files["J_regressor_h36m.npy"] = folder / "J_regressor_h36m.npy"
    missing = [name for name, path in files.items() if path is None or not path.is_file()]
    if missing:
        raise MocliError(f"{folder} lacks {', '.join(missing)}: {_HOW}")
    return SmplFiles(model, files["smpl_mean_params.npz"], files["J_regressor_h36m.npy"])


def _dense(value: object) -> np.ndarray:
    """A numpy array from an array, a scipy sparse matrix or a chumpy array."""
    if hasattr(value, "toarray"):
        value = value.toarray()
    return np.asarray(value)


def _fits(arr: np.ndarray, shape: tuple[int | None, ...]) -> bool:
    """Whether ``arr`` has ``shape`` (None matches any size)."""
    return arr.ndim == len(shape) and all(e is None or e == n for e, n in zip(shape, arr.shape, strict=True))


def read_model_data(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The SMPL arrays of an SMPL_NEUTRAL .npz or .pkl file, checked against the SMPL layout (see module doc)."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                raw = {k: f[k] for k in f.files}
        else:
            with path.open("rb") as f:
                raw = pickle.load(f, encoding="latin1")
    except ModuleNotFoundError as e:
        raise MocliError(
            f"{path.name} needs the {e.name!r} package to be read: pip install {e.name}, or convert it once to "
            "SMPL_NEUTRAL.npz (np.savez of its arrays)"
        ) from None
    except (OSError, ValueError, pickle.UnpicklingError, EOFError) as e:
        raise MocliError(f"{path}: cannot read the SMPL model ({e}); {_HOW}") from None
    data = {k: _dense(raw[k]) for k in _MODEL_SHAPES if k in raw}
    problems = [k for k in _MODEL_SHAPES if k not in data]
    problems += [f"{k} {data[k].shape}" for k, want in _MODEL_SHAPES.items() if k in data and not _fits(data[k], want)]
    if not problems and data["shapedirs"].shape[-1] < NUM_BETAS:
        problems.append(f"shapedirs {data['shapedirs'].shape} (fewer than {NUM_BETAS} betas)")
    if problems:
        raise MocliError(f"{path} is not an SMPL model file (missing or mis-shaped: {', '.join(problems)}); {_HOW}")
    return data


def load_mean_params(path: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """(pose6d (144,), betas (10,)) float32 from smpl_mean_params.npz."""
    try:
        with np.load(path, allow_pickle=False) as f:
            pose, shape = np.asarray(f["pose"], np.float32).reshape(-1), np.asarray(f["shape"], np.float32).reshape(-1)
    except (OSError, KeyError, ValueError) as e:
        raise MocliError(f"{path}: cannot read the SMPL mean parameters 'pose' and 'shape' ({e}); {_HOW}") from None
    if pose.shape != (NUM_SMPL_JOINTS * 6,) or shape.shape != (NUM_BETAS,):
        raise MocliError(f"{path}: expected pose (144,) and shape (10,), got {pose.shape} and {shape.shape}")
    return torch.from_numpy(pose), torch.from_numpy(shape)


def load_j_regressor(path: str | os.PathLike, num_verts: int) -> torch.Tensor:
    """(17, V) float32 Human3.6M joint regressor from J_regressor_h36m.npy."""
    try:
        reg = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise MocliError(f"{path}: cannot read the H36M joint regressor ({e}); {_HOW}") from None
    if reg.shape != (17, num_verts):
        raise MocliError(f"{path}: expected a (17, {num_verts}) regressor, got {reg.shape}")
    return torch.from_numpy(reg.astype(np.float32))


@dataclass
class BodyOutput:
    """SMPL output: ``verts`` (N, V, 3) and ``joints`` (N, 17, 3) Human3.6M joints, both in metres."""

    verts: torch.Tensor
    joints: torch.Tensor


class BodyModel(nn.Module):
    """SMPL (smplx.SMPLLayer) plus the H36M joint regressor: rotations and betas -> vertices and 17 joints.

    Its tensors are non-persistent buffers: the licensed model never ends up in a mocli checkpoint.
    """

    def __init__(self, model_data: dict[str, np.ndarray], j_regressor_h36m: torch.Tensor) -> None:
        super().__init__()
        from smplx import SMPLLayer
        from smplx.utils import Struct

        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning for 10-beta models
            self.smpl = SMPLLayer(model_path="", data_struct=Struct(**model_data), num_betas=NUM_BETAS)
        for name, buf in list(self.smpl.named_buffers(recurse=False)):
            self.smpl.register_buffer(name, buf, persistent=False)
        self.register_buffer("j_regressor_h36m", j_regressor_h36m, persistent=False)  # (17, V)

    @classmethod
    def from_files(cls, files: SmplFiles) -> BodyModel:
        data = read_model_data(files.model)
        return cls(data, load_j_regressor(files.j_regressor_h36m, data["v_template"].shape[0]))

    @property
    def faces(self) -> np.ndarray:
        """(F, 3) int64 triangle vertex indices."""
        return self.smpl.faces_tensor.cpu().numpy()

    def forward(self, rotmats: torch.Tensor, betas: torch.Tensor) -> BodyOutput:
        """rotmats (N, 24, 3, 3) joint rotations (root first), betas (N, 10) -> vertices and H36M joints, metres."""
        if rotmats.shape[1:] != (NUM_SMPL_JOINTS, 3, 3) or betas.shape != (rotmats.shape[0], NUM_BETAS):
            raise ValueError(f"expected rotmats (N, 24, 3, 3) and betas (N, 10), got {rotmats.shape} and {betas.shape}")
        with torch.autocast(rotmats.device.type, enabled=False):  # skinning in float32 whatever the autocast
            out = self.smpl(
                betas=betas.float(), global_orient=rotmats[:, :1].float(), body_pose=rotmats[:, 1:].float(),
                pose2rot=False,
            )  # fmt: skip
            joints = torch.einsum("jv,nvc->njc", self.j_regressor_h36m, out.vertices)
        return BodyOutput(verts=out.vertices, joints=joints)
