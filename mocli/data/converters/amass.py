"""AMASS npz (poses (T,156) SMPL-H axis-angle, trans (T,3), betas, mocap_framerate) -> H36M-17 world joints.

Joints come from a body model the user supplies (``--smpl-model``: SMPL with 24 joints or SMPL-H with 52, .npz or
.pkl; licensed, never shipped) and an H36M regressor (``--regressor``: (17, V) .npy, e.g. MotionBERT's
J_regressor_h36m): ``joints = regressor @ vertices``. With an SMPL model the hand articulation is dropped (body
joints 0-21 only, SMPL hands at rest). ``joints3d`` is rotated from AMASS's Z-up to +Y up; ``smpl_pose`` (T, 72:
body joints 0-21 + zero hands), ``smpl_shape`` (10,) and ``smpl_trans`` stay in the source frame (Z-up). ``--fps``
picks the nearest source frames (exact for 120 -> 30), so joints and SMPL parameters stay consistent.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mocli.data.converters.common import (
    ConvertOptions,
    Task,
    collect_sources,
    resample_nearest,
    split_mod10,
    unique_names,
)
from mocli.data.h5 import Sequence
from mocli.data.rigs import rotate_to_y_up
from mocli.errors import InputError, MissingDependencyError

log = logging.getLogger(__name__)

SUFFIXES = (".npz",)
SPLIT_RULES = ("mod10", "train")
DEFAULT_SPLIT_RULE = "mod10"
_BATCH = 1024
_SKIP = ("shape.npz",)  # per-subject body shape files, no motion


def plan(srcs: list[Path], opts: ConvertOptions, stack: contextlib.ExitStack) -> list[Task]:
    """One task per motion npz (``shape.npz`` and ``*_stagei.npz`` skipped). Checks the model options up front."""
    _check_model_options(opts)
    tasks: list[Task] = []
    for group in collect_sources(srcs, SUFFIXES, stack, opts.source):
        files = [p for p in group.files if p.name not in _SKIP and not p.stem.endswith("_stagei")]
        rels = [group.relpath(p) for p in files]
        splits = split_mod10(len(rels)) if opts.split_rule == "mod10" else ["train"] * len(rels)
        for p, r, s in zip(files, rels, splits, strict=True):
            tasks.append(Task(path=p, relpath=r, source=group.name, split=s))
    for task, name in zip(tasks, unique_names([(t.source, t.relpath) for t in tasks]), strict=True):
        task.name = name
    return tasks


def _check_model_options(opts: ConvertOptions) -> None:
    if opts.smpl_model is None or opts.regressor is None:
        raise InputError("amass needs --smpl-model (SMPL or SMPL-H .npz/.pkl) and --regressor (17 x V .npy)")
    for path in (opts.smpl_model, opts.regressor):
        if not Path(path).is_file():
            raise InputError(f"no such file: {path}")


@functools.lru_cache(maxsize=2)
def load_body_model(path: str) -> Any:
    """An smplx SMPL (24 joints) or SMPL-H (52 joints) model from an .npz or .pkl file, chosen by its kintree."""
    try:
        import smplx
        from smplx.utils import Struct
    except ImportError:
        raise MissingDependencyError("amass needs smplx: pip install smplx") from None
    data = _read_model_file(Path(path))
    num_joints = int(np.asarray(data["kintree_table"]).shape[1])
    kwargs = {"data_struct": Struct(**data), "model_path": path, "num_betas": 10, "create_transl": False,
              "create_betas": False, "create_body_pose": False, "create_global_orient": False}  # fmt: skip
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # smplx prints a warning for 10-beta models
            if num_joints == 24:
                return smplx.SMPL(**kwargs)
            if num_joints == 52:
                return smplx.SMPLH(**kwargs, use_pca=False, flat_hand_mean=True, create_left_hand_pose=False,
                                   create_right_hand_pose=False)  # fmt: skip
    except (KeyError, AttributeError, ValueError, RuntimeError) as e:
        raise InputError(f"{Path(path).name}: cannot load as an SMPL/SMPL-H model ({type(e).__name__}: {e})") from None
    raise InputError(f"{Path(path).name}: body model has {num_joints} joints; expected SMPL (24) or SMPL-H (52)")


def _read_model_file(path: Path) -> dict[str, Any]:
    """The arrays of an SMPL-family model file (.npz, or the official .pkl, which may need chumpy)."""
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=True) as z:
                data = {k: z[k] for k in z.files}
        else:
            with open(path, "rb") as f:
                data = dict(pickle.load(f, encoding="latin1"))
    except (OSError, ValueError, pickle.UnpicklingError, ModuleNotFoundError, EOFError) as e:
        raise InputError(f"{path.name}: cannot read the body model ({type(e).__name__}: {e})") from None
    missing = [k for k in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
               if k not in data]  # fmt: skip
    if missing:
        raise InputError(f"{path.name}: not an SMPL-family model (missing {', '.join(missing)})")
    return data


@functools.lru_cache(maxsize=2)
def load_regressor(path: str, num_vertices: int) -> np.ndarray:
    """(17, V) float32 H36M regressor from .npy, checked against the model's vertex count."""
    try:
        reg = np.load(path)
    except (OSError, ValueError) as e:
        raise InputError(f"{Path(path).name}: not a readable .npy ({e})") from None
    if reg.shape != (17, num_vertices):
        raise InputError(f"{Path(path).name}: regressor has shape {reg.shape}, expected (17, {num_vertices})")
    return reg.astype(np.float32)


def _field(data: Any, name: str, *alternatives: str) -> np.ndarray:
    for key in (name, *alternatives):
        if key in data.files:
            return np.asarray(data[key])
    raise InputError(f"missing field {name!r}")


def regress_joints(model: Any, regressor: np.ndarray, poses: np.ndarray, betas: np.ndarray,
                   trans: np.ndarray) -> np.ndarray:  # fmt: skip
    """H36M-17 joints of a body model sequence.

    Args:
        model: smplx SMPL or SMPLH; regressor: (17, V); poses: (T, 3 * model joints) axis-angle radians;
        betas: (10,); trans: (T, 3) metres.
    Returns:
        (T, 17, 3) float32 metres in the model's frame (AMASS: Z-up).
    """
    import torch

    out = []
    betas_t = torch.as_tensor(betas[:10], dtype=torch.float32)[None]
    reg = torch.as_tensor(regressor)
    with torch.no_grad():
        for a in range(0, len(poses), _BATCH):
            p = torch.as_tensor(poses[a : a + _BATCH], dtype=torch.float32)
            n = p.shape[0]
            kwargs = {"global_orient": p[:, :3], "betas": betas_t.expand(n, -1),
                      "transl": torch.as_tensor(trans[a : a + _BATCH], dtype=torch.float32)}  # fmt: skip
            if p.shape[1] == 156:
                kwargs.update(body_pose=p[:, 3:66], left_hand_pose=p[:, 66:111], right_hand_pose=p[:, 111:156])
            else:
                kwargs["body_pose"] = p[:, 3:72]
            verts = model(**kwargs).vertices  # (n, V, 3)
            out.append(torch.einsum("kv,nvc->nkc", reg, verts).numpy())
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, 17, 3), np.float32)


def _smpl_poses(poses: np.ndarray) -> np.ndarray:
    """(T, 156) SMPL-H or (T, 72) SMPL axis-angle -> (T, 72) SMPL layout (body joints 0-21, zero hands 22-23)."""
    out = np.zeros((len(poses), 72), dtype=np.float32)
    out[:, :66] = poses[:, :66]
    if poses.shape[1] == 72:
        out[:, 66:] = poses[:, 66:72]
    return out


def _model_poses(poses: np.ndarray, model: Any) -> np.ndarray:
    """Poses in the model's layout: (T, 156) for SMPL-H (zero hands if the input has none), (T, 72) for SMPL."""
    if model.NUM_JOINTS + 1 != 52:
        return _smpl_poses(poses)
    out = np.zeros((len(poses), 156), dtype=np.float64)
    out[:, :66] = poses[:, :66]
    if poses.shape[1] == 156:
        out[:, 66:] = poses[:, 66:]
    return out


def convert(task: Task, opts: ConvertOptions) -> Iterator[Sequence]:
    try:
        data = np.load(task.path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise InputError(f"{task.path.name}: not a readable npz ({e})") from None
    with data:
        try:
            poses = _field(data, "poses").astype(np.float64)
            trans = _field(data, "trans").astype(np.float64)
            betas = _field(data, "betas").astype(np.float64).reshape(-1)
            fps = float(_field(data, "mocap_framerate", "mocap_frame_rate"))
        except InputError as e:
            raise InputError(f"{task.path.name}: {e}") from None
    if poses.ndim != 2 or poses.shape[1] not in (72, 156):
        raise InputError(f"{task.path.name}: poses has shape {poses.shape}, expected (T, 156) or (T, 72)")
    if trans.shape != (len(poses), 3):
        raise InputError(f"{task.path.name}: trans has shape {trans.shape}, expected ({len(poses)}, 3)")
    if betas.size < 10:
        raise InputError(f"{task.path.name}: betas has {betas.size} values, expected at least 10")
    if opts.fps and opts.fps != fps:
        poses, trans = resample_nearest(poses, fps, opts.fps), resample_nearest(trans, fps, opts.fps)
        fps_out = opts.fps
    else:
        fps_out = fps
    if len(poses) < opts.min_frames:
        return
    model = load_body_model(str(opts.smpl_model))
    regressor = load_regressor(str(opts.regressor), int(model.v_template.shape[0]))
    model_poses = _model_poses(poses, model)
    joints = regress_joints(model, regressor, model_poses, betas, trans)
    yield Sequence(
        name=task.name,
        fps=fps_out,
        joints3d=rotate_to_y_up(joints, "+z"),
        smpl_pose=_smpl_poses(poses),
        smpl_shape=betas[:10].astype(np.float32),
        smpl_trans=trans.astype(np.float32),
        frame="world",
        up_axis="y",
        split=task.split or "train",
        source=task.source,
        subject=Path(task.relpath).parent.name,
        action=task.path.stem,
        extra={"path": task.relpath, "fps_native": fps, "up_axis_native": "+z", "smpl_up_axis": "+z"},
    )
