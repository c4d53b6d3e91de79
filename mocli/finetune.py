"""Finetuning the motion encoder with MotionBERT's task heads, on the one training loop of ``mocli.train``.

Tasks (``TASKS``):

    pose3d          3D pose: the lift loss (MPJPE + 0.5 N-MPJPE + 20 velocity) on 3D data, no noise or masks; the
                    head is the DSTformer's own pose head, so the result is a lifter (``mocli.load_model``)
    action          action classes: cross-entropy over ``ActionHead`` logits; NTU style, 2 persons zero-padded,
                    sequences resampled to ``clip_len`` frames; 3D-only labelled mocap through virtual cameras;
                    validation top-1; the class names go into heads['action']['classes']
    action-oneshot  action embedding: supervised contrastive loss (temperature 0.1) over batches of 2 samples per
                    class; validation: cosine nearest exemplar of the novel classes (one exemplar each)
    mesh            SMPL: 0.5 MPJPE (17 H36M joints from the regressor, mm) + 10 velocity + 1000 L1(rotation
                    matrices) + 1 L1(betas) + 20 |theta|; validation MPJPE / PA-MPJPE on 14 joints and MPVE (mm)

A run writes ``runs/finetune/<name>/`` like pretraining (config.json, log.jsonl, last.pt, best.pt, model.pt); its
checkpoints hold the encoder under 'model' and the task head under ``heads[task]`` (pose3d: in 'model').
The losses and the nearest-exemplar rule are pure functions (``supcon_loss``, ``nearest_exemplar``, ``mesh_loss``).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from mocli.config import RunConfig, apply_dict, config_to_dict, load_preset
from mocli.errors import MocliError
from mocli.losses import LiftLossWeights, loss_mpjpe, loss_velocity
from mocli.metrics import procrustes_align
from mocli.models.checkpoint import model_from_checkpoint
from mocli.models.dstformer import DSTformer
from mocli.models.heads import HeadModel, build_head, head_from_entry
from mocli.models.registry import create_model
from mocli.models.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from mocli.train import (
    FitResult,
    LiftTask,
    Reporter,
    Trainer,
    _run_dir,
    build_lift_data,
    fit,
    init_distributed,
    load_init,
    load_training_state,
    lr_factor,
    resolve_precision,
)
from mocli.utils.io import atomic_path
from mocli.utils.seed import seed_everything

__all__ = [
    "TASKS",
    "HEAD_DEFAULTS",
    "HeadConfig",
    "MeshLossConfig",
    "FinetuneConfig",
    "default_config",
    "finetune_config_from_dict",
    "supcon_loss",
    "nearest_exemplar",
    "mesh_loss",
    "Pose3dTask",
    "ActionTask",
    "OneShotTask",
    "MeshTask",
    "load_init",
    "build_finetune_model",
    "check_finetune_config",
    "resume_finetune_config",
    "run_finetune",
]

log = logging.getLogger(__name__)

TASKS = ("pose3d", "action", "action-oneshot", "mesh")
HEAD_DEFAULTS = {"action": (2048, 0.5), "action-oneshot": (2048, 0.0), "mesh": (1024, 0.1)}  # (hidden_dim, dropout)
EVAL_JOINTS_14 = (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16)  # H36M-17 minus pelvis, spine, nose
Batch = dict[str, torch.Tensor]


# ----------------------------------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class HeadConfig:
    """The task head and its data (0 / negative sizes: the task's MotionBERT default, ``HEAD_DEFAULTS``)."""

    num_classes: int = 0  # action: number of classes (0: 1 + the largest label in the data)
    hidden_dim: int = 0  # hidden width (0: action and one-shot 2048, mesh 1024)
    dropout: float = -1.0  # dropout on E in the head (negative: action 0.5, one-shot 0, mesh 0.1)
    max_persons: int = 2  # action: persons per sample, zero-padded (NTU: 2)
    label_key: str = "label"  # sequence attribute with the class: integer id or name (Bandai: 'content_label')
    temperature: float = 0.1  # one-shot: supervised contrastive temperature
    samples_per_class: int = 2  # one-shot: samples of each class in a batch
    novel_classes: list[int] = field(default_factory=lambda: list(range(0, 120, 6)))  # one-shot (NTU-120's 20)
    exemplars: list[str] = field(default_factory=list)  # one-shot: exemplar sequence names (default: first by name)
    smpl_dir: str = ""  # mesh: folder of the SMPL files (empty: $MOCLI_SMPL_DIR)


@dataclass
class MeshLossConfig:
    """Mesh loss weights (MotionBERT's)."""

    mpjpe: float = 0.5  # root-relative 17-joint MPJPE, mm
    velocity: float = 10.0  # joint velocity error, mm per frame
    pose: float = 1000.0  # L1 of the 24 rotation matrices
    shape: float = 1.0  # L1 of the betas
    norm: float = 20.0  # mean L2 norm of theta = (72 axis-angle, 10 betas)


@dataclass
class FinetuneConfig(RunConfig):
    """One finetuning run: RunConfig's sections (data, train, loss = the pose3d lift loss) plus the task's."""

    pretext: str = ""  # unused by finetuning
    out_dir: str = "runs/finetune"
    task: str = "pose3d"  # one of TASKS
    init: str = "scratch"  # pretrain run folder, mocli checkpoint, weights name, or 'scratch' (``model`` then)
    freeze_backbone: bool = False  # train the head only (partial finetuning)
    head: HeadConfig = field(default_factory=HeadConfig)
    mesh_loss: MeshLossConfig = field(default_factory=MeshLossConfig)


def default_config(task: str, **fields: Any) -> FinetuneConfig:
    """The config of ``task`` from its preset ``finetune_<task>`` (MotionBERT's recipe), with top-level fields set."""
    if task not in TASKS:
        raise MocliError(f"unknown finetune task {task!r}; tasks: {', '.join(TASKS)}")
    cfg = FinetuneConfig(task=task)
    apply_dict(cfg, load_preset(f"finetune_{task}"))
    for k, v in fields.items():
        setattr(cfg, k, v)
    return cfg


def finetune_config_from_dict(nested: dict[str, Any]) -> FinetuneConfig:
    """A FinetuneConfig from ``config_to_dict`` output (unknown keys are an error)."""
    return apply_dict(FinetuneConfig(), nested)


# ----------------------------------------------------------------------------------------------------------------------
# Losses and the nearest-exemplar rule (pure functions)
# ----------------------------------------------------------------------------------------------------------------------


def supcon_loss(emb: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, "L_out"), as MotionBERT's one-shot training.

    For each anchor i with at least one positive (another sample of its class):
    ``-1/|P(i)| sum_{p in P(i)} log( exp(z_i.z_p / t) / sum_{a != i} exp(z_i.z_a / t) )``, averaged over anchors.

    Args:
        emb: (N, D) unit-length embeddings.
        labels: (N,) class ids.
        temperature: t.
    Returns:
        0-dim loss (0 when no sample has a positive).
    """
    n = emb.shape[0]
    self_mask = torch.eye(n, dtype=torch.bool, device=emb.device)
    logits = (emb @ emb.T / temperature).masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    count = positives.sum(dim=1)
    mean_pos = log_prob.masked_fill(~positives, 0.0).sum(dim=1) / count.clamp_min(1)
    has = count > 0
    return -mean_pos[has].mean() if has.any() else emb.sum() * 0.0


def nearest_exemplar(queries: torch.Tensor, exemplars: torch.Tensor, exemplar_labels: torch.Tensor) -> torch.Tensor:
    """(N, D) query and (K, D) exemplar embeddings, (K,) exemplar classes -> (N,) class of the most cosine-similar
    exemplar of each query."""
    sim = F.normalize(queries.float(), dim=-1) @ F.normalize(exemplars.float(), dim=-1).T  # (N, K)
    return exemplar_labels[sim.argmax(dim=1)]


def mesh_loss(
    pred_joints_mm: torch.Tensor,
    gt_joints_mm: torch.Tensor,
    pred_rotmats: torch.Tensor,
    gt_rotmats: torch.Tensor,
    pred_betas: torch.Tensor,
    gt_betas: torch.Tensor,
    weights: MeshLossConfig = MeshLossConfig(),
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """MotionBERT's mesh loss.

    Args:
        pred_joints_mm, gt_joints_mm: (B, T, 17, 3) H36M joints from the SMPL vertices, millimetres (made
            root-relative here, joint 0 = pelvis).
        pred_rotmats, gt_rotmats: (B, T, 24, 3, 3) SMPL joint rotations.
        pred_betas, gt_betas: (B, T, 10).
        weights: term weights.
    Returns:
        total (0-dim) and the detached unweighted terms {'mpjpe' (mm), 'velocity' (mm/frame), 'pose', 'shape',
        'norm'}; 'norm' is the mean L2 norm of the predicted theta = (72 axis-angle radians, 10 betas).
    """
    pred_rel = pred_joints_mm - pred_joints_mm[..., :1, :]
    gt_rel = gt_joints_mm - gt_joints_mm[..., :1, :]
    zero = pred_rel.sum() * 0.0
    B, T = pred_rotmats.shape[:2]
    theta = torch.cat([matrix_to_axis_angle(pred_rotmats).reshape(B, T, 72), pred_betas], dim=-1)
    terms = {
        "mpjpe": loss_mpjpe(pred_rel, gt_rel),
        "velocity": loss_velocity(pred_rel, gt_rel) if T > 1 else zero,
        "pose": (pred_rotmats.float() - gt_rotmats.float()).abs().mean(),
        "shape": (pred_betas.float() - gt_betas.float()).abs().mean(),
        "norm": torch.linalg.vector_norm(theta.float(), dim=-1).mean(),
    }
    total = sum(getattr(weights, k) * v for k, v in terms.items())
    return total, {k: v.detach() for k, v in terms.items()}


# ----------------------------------------------------------------------------------------------------------------------
# Tasks (mocli.train.Task)
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class Pose3dTask(LiftTask):
    """3D pose finetuning: the lift loss on 3D clips (their data has no noise and no masks)."""

    name: str = "pose3d"
    stage: str = "finetune"


@dataclass
class ActionTask:
    """Action classification: cross-entropy; validation top-1 accuracy (best.pt: lowest top-1 error)."""

    name: str = "action"
    stage: str = "finetune"
    head_prefixes: tuple[str, ...] = ("head.",)
    best_metric: str = "top1_error"

    def loss(self, module: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = module(batch["input"]).float()
        loss = F.cross_entropy(logits, batch["label"])
        top1 = (logits.argmax(dim=1) == batch["label"]).float().mean()
        return loss, {"ce": loss.detach(), "top1": top1.detach()}

    def eval_sums(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        logits = model(batch["input"]).float()
        return {
            "loss": F.cross_entropy(logits, batch["label"], reduction="sum"),
            "correct": (logits.argmax(dim=1) == batch["label"]).sum().float(),
            "samples": torch.tensor(float(logits.shape[0])),
        }

    def summarise(self, sums: dict[str, float]) -> dict[str, float]:
        n = max(sums["samples"], 1.0)
        return {"loss": sums["loss"] / n, "top1": sums["correct"] / n, "top1_error": 1.0 - sums["correct"] / n}


@dataclass
class OneShotTask:
    """One-shot action embedding: supervised contrastive training; validation by the nearest exemplar.

    ``exemplars`` (K, M, T, J, 3) holds one clip per novel class, ``exemplar_labels`` (K,) their classes; they are
    embedded with the current model at every validation batch.
    """

    exemplars: torch.Tensor | None = None
    exemplar_labels: torch.Tensor | None = None
    temperature: float = 0.1
    name: str = "action-oneshot"
    stage: str = "finetune"
    head_prefixes: tuple[str, ...] = ("head.",)
    best_metric: str = "oneshot_error"

    def loss(self, module: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = supcon_loss(module(batch["input"]).float(), batch["label"], self.temperature)
        return loss, {"supcon": loss.detach()}

    def eval_sums(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        device = batch["input"].device
        exemplars = model(self.exemplars.to(device))
        pred = nearest_exemplar(model(batch["input"]), exemplars, self.exemplar_labels.to(device))
        return {
            "correct": (pred == batch["label"]).sum().float(),
            "samples": torch.tensor(float(pred.shape[0])),
        }

    def summarise(self, sums: dict[str, float]) -> dict[str, float]:
        acc = sums["correct"] / max(sums["samples"], 1.0)
        return {"oneshot_top1": acc, "oneshot_error": 1.0 - acc}


@dataclass
class MeshTask:
    """SMPL mesh recovery with ``body`` (a ``BodyModel``): the targets' joints come from the ground-truth SMPL
    parameters through the same body model and H36M regressor."""

    body: nn.Module
    weights: MeshLossConfig = field(default_factory=MeshLossConfig)
    name: str = "mesh"
    stage: str = "finetune"
    head_prefixes: tuple[str, ...] = ("head.",)
    best_metric: str = "mpjpe_mm"

    def _forward(self, module: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """Predicted and target rotations, betas, joints (mm) and vertices (mm)."""
        body = self.body.to(batch["input"].device)
        pred = module(batch["input"])
        B, T = pred["rotmats"].shape[:2]
        gt_rot = axis_angle_to_matrix(batch["pose"].float().reshape(B, T, 24, 3))
        pred_body = body(pred["rotmats"].reshape(B * T, 24, 3, 3), pred["betas"].reshape(B * T, 10))
        with torch.no_grad():
            gt_body = body(gt_rot.reshape(B * T, 24, 3, 3), batch["betas"].float().reshape(B * T, 10))

        def mm(x: torch.Tensor) -> torch.Tensor:
            return 1000.0 * x.reshape(B, T, *x.shape[1:])

        return {
            "rotmats": pred["rotmats"], "betas": pred["betas"], "gt_rotmats": gt_rot, "gt_betas": batch["betas"],
            "joints": mm(pred_body.joints), "gt_joints": mm(gt_body.joints),
            "verts": mm(pred_body.verts), "gt_verts": mm(gt_body.verts),
        }  # fmt: skip

    def _loss(self, out: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return mesh_loss(
            out["joints"], out["gt_joints"], out["rotmats"], out["gt_rotmats"], out["betas"], out["gt_betas"],
            self.weights,
        )  # fmt: skip

    def loss(self, module: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self._loss(self._forward(module, batch))

    def eval_sums(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        out = self._forward(model, batch)
        loss, _ = self._loss(out)
        pelvis, gt_pelvis = out["joints"][..., :1, :], out["gt_joints"][..., :1, :]
        idx = list(EVAL_JOINTS_14)
        j14, gt14 = (out["joints"] - pelvis)[..., idx, :], (out["gt_joints"] - gt_pelvis)[..., idx, :]
        err = torch.linalg.vector_norm(j14 - gt14, dim=-1)
        pa_err = torch.linalg.vector_norm(procrustes_align(j14, gt14) - gt14, dim=-1)
        v_err = torch.linalg.vector_norm((out["verts"] - pelvis) - (out["gt_verts"] - gt_pelvis), dim=-1)
        n = float(out["joints"].shape[0])
        return {
            "loss": loss.detach() * n, "samples": torch.tensor(n),
            "mpjpe_mm": err.sum(), "pa_mpjpe_mm": pa_err.sum(), "joints": torch.tensor(float(err.numel())),
            "mpve_mm": v_err.sum(), "verts": torch.tensor(float(v_err.numel())),
        }  # fmt: skip

    def summarise(self, sums: dict[str, float]) -> dict[str, float]:
        out = {"loss": sums["loss"] / max(sums["samples"], 1.0)}
        if sums["joints"] > 0:
            out.update(mpjpe_mm=sums["mpjpe_mm"] / sums["joints"], pa_mpjpe_mm=sums["pa_mpjpe_mm"] / sums["joints"])
            out["mpve_mm"] = sums["mpve_mm"] / sums["verts"]
        return out


# ----------------------------------------------------------------------------------------------------------------------
# Model: --init, the task head, --freeze-backbone
# ----------------------------------------------------------------------------------------------------------------------


def _head_config(cfg: FinetuneConfig, encoder: DSTformer, num_classes: int) -> dict[str, Any]:
    hidden, dropout = HEAD_DEFAULTS[cfg.task]
    config: dict[str, Any] = {"dim_rep": encoder.cfg.dim_rep, "num_joints": encoder.cfg.num_joints}
    config["hidden_dim"] = cfg.head.hidden_dim if cfg.head.hidden_dim > 0 else hidden
    config["dropout"] = cfg.head.dropout if cfg.head.dropout >= 0 else dropout
    if cfg.task == "action":
        config["num_classes"] = num_classes
    return config


def _initial_head(
    cfg: FinetuneConfig, ckpt: dict[str, Any] | None, config: dict[str, Any]
) -> tuple[dict[str, Any], nn.Module, bool]:
    """(config, head, from_checkpoint): the checkpoint's head for this task when it fits, else a fresh one."""
    entry = (ckpt or {}).get("heads", {}).get(cfg.task)
    if entry is not None:
        try:
            kind, loaded_config, head = head_from_entry(
                entry, config["dim_rep"], config["num_joints"], dropout=config["dropout"]
            )
        except MocliError as e:
            log.info("the checkpoint's %s head does not fit (%s): starting a new head", cfg.task, e)
        else:
            fits = kind == cfg.task and loaded_config.get("num_classes") == config.get("num_classes")
            if fits:
                log.info("the %s head starts from the checkpoint's", cfg.task)
                return loaded_config, head, True
            log.info("the checkpoint's %s head has other classes: starting a new head", cfg.task)
    return config, build_head(cfg.task, config), False


def build_finetune_model(
    cfg: FinetuneConfig,
    ckpt: dict[str, Any] | None,
    num_classes: int = 0,
    mean_params: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> nn.Module:
    """The model to finetune: the encoder from ``ckpt`` (else a fresh ``cfg.model``) and the task head.

    pose3d trains the DSTformer itself (its own pose head). Other tasks wrap it in a ``HeadModel`` with the
    checkpoint's head for the task when it fits, else a new one (a new mesh head starts at ``mean_params``, the
    SMPL mean (144,) 6D pose and (10,) betas); the encoder's unused pose head is frozen. ``cfg.freeze_backbone``
    freezes every parameter outside the task head (pose3d: outside the DSTformer's pose head).
    """
    encoder = model_from_checkpoint(ckpt, "--init checkpoint") if ckpt is not None else create_model(cfg.model)
    if not isinstance(encoder, DSTformer):  # an STMO (P-STMO) lifter: trained by `mocli pretrain --pretext lift`
        raise MocliError(
            f"finetune needs a DSTformer; {cfg.model} is an STMO lifter: train it on 3D with "
            "`mocli pretrain --pretext lift --init RUN` (see docs/pretrain.md)"
        )
    if cfg.task == "pose3d":
        model: nn.Module = encoder
    else:
        config, head, loaded = _initial_head(cfg, ckpt, _head_config(cfg, encoder, num_classes))
        if cfg.task == "mesh" and mean_params is not None and not loaded:
            head.set_mean_params(*mean_params)
        model = HeadModel(encoder, head, cfg.task, cfg.task, config)
        encoder.head.requires_grad_(False)  # the 3D pose head is not used by this task
    if cfg.freeze_backbone:
        for name, p in model.named_parameters():
            if not name.startswith("head."):
                p.requires_grad_(False)
    return model


# ----------------------------------------------------------------------------------------------------------------------
# Data and checks
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class FinetuneData:
    """Training and validation sets of a task, and what the head and task need from the data."""

    train: Any
    val: Any | None
    num_classes: int = 0  # action
    exemplars: tuple[torch.Tensor, torch.Tensor] | None = None  # one-shot: (K, M, T, J, 3) clips, (K,) classes
    class_names: list[str] = field(default_factory=list)  # action: the name of each class id


def _names(paths: list[str]) -> str:
    return ", ".join(Path(p).name for p in paths)


def _split_items(items: list, paths: list[str], what: str) -> tuple[list, list]:
    """Training items (split 'train') and validation items (split 'val', else 'test')."""
    train = [it for it in items if it.split == "train"]
    val = [it for it in items if it.split == "val"] or [it for it in items if it.split == "test"]
    if not train:
        raise MocliError(f"no training sequences (split 'train') with {what} in {_names(paths)}")
    return train, val


def _action_data(cfg: FinetuneConfig) -> FinetuneData:
    """2D keypoint sequences and 3D-only mocap (projected through virtual cameras) with a class attribute."""
    from mocli.data.finetune_data import ActionClipDataset, list_action_sequences

    d, h = cfg.data, cfg.head
    items, names = list_action_sequences(d.paths, h.label_key)
    what = f"keypoints2d or world/camera joints3d and a class attribute {h.label_key!r}"
    train, val = _split_items(items, d.paths, what)
    top = max(it.label for it in items)
    num_classes = h.num_classes or top + 1
    if top >= num_classes:
        raise MocliError(f"label {top} in the data is out of range for head.num_classes={num_classes}")
    names = names + [str(c) for c in range(len(names), num_classes)]
    args = {"max_persons": h.max_persons, "seed": cfg.seed}
    val_set = ActionClipDataset(val, d, train=False, **args) if val else None
    train_set = ActionClipDataset(train, d, train=True, **args)
    return FinetuneData(train_set, val_set, num_classes=num_classes, class_names=names)


def _oneshot_data(cfg: FinetuneConfig) -> FinetuneData:
    from mocli.data.finetune_data import ActionClipDataset, OneShotDataset, list_sequences, oneshot_split

    d, h = cfg.data, cfg.head
    items = list_sequences(d.paths, ("keypoints2d",), h.label_key)
    if not items:
        raise MocliError(f"no sequences with keypoints2d and an integer {h.label_key!r} attribute in {_names(d.paths)}")
    split = oneshot_split(items, h.novel_classes, h.exemplars)
    if not split.train or not split.exemplars:
        missing = "auxiliary (non-novel)" if not split.train else f"novel ({h.novel_classes})"
        raise MocliError(f"no sequences of the {missing} classes in {_names(d.paths)}; set head.novel_classes")
    args = {"max_persons": h.max_persons, "seed": cfg.seed}
    train = OneShotDataset(split.train, d, train=True, per_class=h.samples_per_class, **args)
    shots = ActionClipDataset(split.exemplars, d, train=False, **args)
    exemplars = torch.stack([shots[i]["input"] for i in range(len(shots))])
    val = ActionClipDataset(split.queries, d, train=False, **args) if split.queries else None
    return FinetuneData(train, val, exemplars=(exemplars, torch.from_numpy(shots.labels)))


def _mesh_data(cfg: FinetuneConfig) -> FinetuneData:
    from mocli.data.finetune_data import MESH_ARRAYS, MeshClipDataset, list_sequences

    d = cfg.data
    train, val = _split_items(list_sequences(d.paths, MESH_ARRAYS), d.paths, "keypoints2d, smpl_pose and smpl_shape")
    train_set = MeshClipDataset(train, d, seed=cfg.seed, train=True)
    if len(train_set) == 0:
        raise MocliError(f"no training clips: every training sequence is shorter than clip_len {d.clip_len}")
    val_set = MeshClipDataset(val, d, seed=cfg.seed, train=False, stride=d.val_stride or d.clip_len) if val else None
    return FinetuneData(train_set, val_set)


def _pose3d_data(cfg: FinetuneConfig) -> FinetuneData:
    from mocli.data.clips import load_sources

    sources = [s for s in load_sources(cfg.data.paths, fps=cfg.data.fps, holdout=cfg.data.holdout) if s.is_3d]
    if not sources:
        raise MocliError(f"no sequences with 3D joints (world or camera frame) in {_names(cfg.data.paths)}")
    return FinetuneData(*build_lift_data(cfg, sources))


def build_finetune_data(cfg: FinetuneConfig) -> FinetuneData:
    """The task's training and validation sets from ``cfg.data.paths``."""
    if not cfg.data.paths:
        raise MocliError("no training data: give --data FILE.h5 (see `mocli prepare dataset --help`)")
    build = {"pose3d": _pose3d_data, "action": _action_data, "action-oneshot": _oneshot_data, "mesh": _mesh_data}
    return build[cfg.task](cfg)


def check_finetune_config(cfg: FinetuneConfig, world: int = 1, maxlen: int | None = None) -> None:
    """Raise a one-line MocliError for settings that cannot work (before any data is read)."""
    from mocli.models.registry import arch_config

    if cfg.task not in TASKS:
        raise MocliError(f"unknown finetune task {cfg.task!r}; tasks: {', '.join(TASKS)}")
    maxlen = maxlen or arch_config(cfg.model).maxlen
    if not 2 <= cfg.data.clip_len <= maxlen:
        raise MocliError(f"clip length {cfg.data.clip_len} must be between 2 and the model's maxlen {maxlen}")
    t = cfg.train
    if t.batch_size < 1 or t.batch_size % world:
        raise MocliError(f"batch {t.batch_size} does not split evenly over {world} process(es)")
    local = t.batch_size // world
    if cfg.task != "pose3d" and local < 2:
        raise MocliError(f"the {cfg.task} head needs at least 2 samples per process and batch (BatchNorm, pairs)")
    per_class = cfg.head.samples_per_class
    if cfg.task == "action-oneshot" and (per_class < 2 or local % per_class):
        raise MocliError(f"batch per process {local} must be a multiple of head.samples_per_class={per_class} (>= 2)")
    if cfg.head.max_persons < 1 or cfg.head.dropout >= 1:
        raise MocliError("head.max_persons must be at least 1 and head.dropout below 1")
    if t.precision not in ("auto", "fp32", "bf16", "fp16"):
        raise MocliError(f"unknown precision {t.precision!r}: expected auto, fp32, bf16 or fp16")
    lr_factor(t, 0, 0, 1)  # unknown schedule


def resume_finetune_config(path: str | os.PathLike) -> tuple[FinetuneConfig, dict[str, Any], Path]:
    """The saved FinetuneConfig, the loaded last.pt and the run folder, from a run folder or a last.pt path."""
    ckpt, ckpt_path = load_training_state(path)
    if "task" not in ckpt.get("train_config", {}):
        raise MocliError(f"--resume {ckpt_path}: not a finetune run (resume pretraining with `mocli pretrain`)")
    return finetune_config_from_dict(ckpt["train_config"]), ckpt, ckpt_path.parent


# ----------------------------------------------------------------------------------------------------------------------
# run_finetune
# ----------------------------------------------------------------------------------------------------------------------


def _mesh_body(cfg: FinetuneConfig) -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    from mocli.models.smpl import BodyModel, find_smpl_files, load_mean_params

    files = find_smpl_files(cfg.head.smpl_dir or None)
    return BodyModel.from_files(files), load_mean_params(files.mean_params)


def _task(cfg: FinetuneConfig, data: FinetuneData, body: nn.Module | None):
    if cfg.task == "pose3d":
        return Pose3dTask(LiftLossWeights(**config_to_dict(cfg.loss)))
    if cfg.task == "action":
        return ActionTask()
    if cfg.task == "action-oneshot":
        exemplars, labels = data.exemplars
        return OneShotTask(exemplars, labels, temperature=cfg.head.temperature)
    return MeshTask(body, cfg.mesh_loss)


def run_finetune(
    cfg: FinetuneConfig,
    *,
    resume: dict[str, Any] | None = None,
    run_dir: Path | None = None,
    reporter: Reporter | None = None,
) -> FitResult:
    """Finetune as ``cfg`` says (task, --init checkpoint, data) and write the run folder.

    Args:
        cfg: the resolved config; ``cfg.model`` is replaced by the --init checkpoint's architecture.
        resume: a loaded last.pt (see ``resume_finetune_config``) to continue from, with ``run_dir`` its folder.
        reporter: progress display (default: logging).
    """
    info, device = init_distributed(cfg.device)
    owns_group = info.world > 1
    try:
        ckpt = resume if resume is not None else load_init(cfg.init)
        if ckpt is not None:
            cfg.model = ckpt["arch"]["name"]
        check_finetune_config(cfg, info.world, ckpt["arch"]["config"]["maxlen"] if ckpt is not None else None)
        body, mean_params = _mesh_body(cfg) if cfg.task == "mesh" else (None, None)
        data = build_finetune_data(cfg)
        seed_everything(cfg.seed)
        model = build_finetune_model(cfg, ckpt, data.num_classes, mean_params)
        if isinstance(model, HeadModel) and data.class_names:
            model.class_names = list(data.class_names)  # written into heads[task]['classes']
        run_dir = run_dir or _run_dir(cfg, info)
        trainer = Trainer(model, _task(cfg, data, body), cfg, device, info)
        if info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            _write_config(run_dir, cfg, trainer, data)
        return fit(trainer, data.train, data.val, run_dir, arch=cfg.model, reporter=reporter, resume_from=resume)
    finally:
        if owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _write_config(run_dir: Path, cfg: FinetuneConfig, trainer: Trainer, data: FinetuneData) -> None:
    params = list(trainer.model.parameters())
    resolved = {
        "device": str(trainer.device),
        "precision": resolve_precision(cfg.train.precision, trainer.device),
        "processes": trainer.info.world,
        "model_config": trainer.model.cfg.to_dict(),
        "parameters": sum(p.numel() for p in params),
        "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
        "train_samples": len(data.train),
        "val_samples": len(data.val) if data.val is not None else 0,
        "num_classes": data.num_classes,
        "class_names": data.class_names,
        "torch": torch.__version__,
    }
    text = json.dumps({**config_to_dict(cfg), "_resolved": resolved}, indent=2)
    with atomic_path(run_dir / "config.json") as tmp:
        tmp.write_text(text + "\n")
