"""Finetuning the motion encoder with MotionBERT's task heads, on the one training loop of ``mocli.training``.

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
The config is ``mocli.config.FinetuneConfig``; the losses are pure functions of ``mocli.losses`` (``supcon_loss``,
``mesh_loss``, ``lift_loss``); the data of each task comes from ``mocli.training.task_data``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mocli.config import FINETUNE_TASKS as TASKS
from mocli.config import FinetuneConfig, HeadConfig, MeshLossConfig, config_to_dict, finetune_config_from_dict
from mocli.config import finetune_config as default_config
from mocli.errors import MocliError
from mocli.losses import LiftLossWeights, mesh_loss, supcon_loss
from mocli.metrics import nearest_exemplar, procrustes_align
from mocli.models.checkpoint import model_from_checkpoint
from mocli.models.dstformer import DSTformer
from mocli.models.heads import HeadModel, build_head, head_from_entry
from mocli.models.registry import arch_config, create_model
from mocli.models.rotations import axis_angle_to_matrix
from mocli.training.lift_task import LiftTask
from mocli.training.logs import Reporter
from mocli.training.loop import FitResult, fit
from mocli.training.runs import check_common, load_init, load_training_state, new_run_dir, write_config
from mocli.training.task_data import FinetuneData, build_finetune_data
from mocli.training.trainer import Trainer, init_distributed, leave_distributed
from mocli.utils.seed import seed_everything

__all__ = [
    "TASKS", "HEAD_DEFAULTS", "nearest_exemplar", "Pose3dTask", "ActionTask", "OneShotTask", "MeshTask",
    "build_finetune_model", "check_finetune_config", "resume_finetune_config", "run_finetune",
    # the config and losses, from mocli.config and mocli.losses (scripts and docs import them from here)
    "HeadConfig", "MeshLossConfig", "FinetuneConfig", "default_config", "finetune_config_from_dict", "supcon_loss",
    "mesh_loss", "load_init",
]  # fmt: skip

log = logging.getLogger(__name__)

HEAD_DEFAULTS = {"action": (2048, 0.5), "action-oneshot": (2048, 0.0), "mesh": (1024, 0.1)}  # (hidden_dim, dropout)
EVAL_JOINTS_14 = (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16)  # H36M-17 minus pelvis, spine, nose
Batch = dict[str, torch.Tensor]


# ----------------------------------------------------------------------------------------------------------------------
# The nearest-exemplar rule (a pure function)
# ----------------------------------------------------------------------------------------------------------------------


# ----------------------------------------------------------------------------------------------------------------------
# Tasks (mocli.training.trainer.Task)
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
# Checks
# ----------------------------------------------------------------------------------------------------------------------


def check_finetune_config(cfg: FinetuneConfig, world: int = 1, maxlen: int | None = None) -> None:
    """Raise a one-line MocliError for settings that cannot work (before any data is read): the checks every run
    shares, then the task's."""
    if cfg.task not in TASKS:
        raise MocliError(f"unknown finetune task {cfg.task!r}; tasks: {', '.join(TASKS)}")
    check_common(cfg, world)
    maxlen = maxlen or arch_config(cfg.model).maxlen
    if not 2 <= cfg.data.clip_len <= maxlen:
        raise MocliError(f"clip length {cfg.data.clip_len} must be between 2 and the model's maxlen {maxlen}")
    local = cfg.train.batch_size // world
    if cfg.task != "pose3d" and local < 2:
        raise MocliError(f"the {cfg.task} head needs at least 2 samples per process and batch (BatchNorm, pairs)")
    per_class = cfg.head.samples_per_class
    if cfg.task == "action-oneshot" and (per_class < 2 or local % per_class):
        raise MocliError(f"batch per process {local} must be a multiple of head.samples_per_class={per_class} (>= 2)")
    if cfg.head.max_persons < 1 or cfg.head.dropout >= 1:
        raise MocliError("head.max_persons must be at least 1 and head.dropout below 1")


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
    owns_group, completed = info.world > 1, False
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
        run_dir = run_dir or new_run_dir(cfg, info)
        trainer = Trainer(model, _task(cfg, data, body), cfg, device, info)
        if info.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            params = list(trainer.model.parameters())
            write_config(
                run_dir, cfg, trainer, trainable_parameters=sum(p.numel() for p in params if p.requires_grad),
                train_samples=len(data.train), val_samples=len(data.val) if data.val is not None else 0,
                num_classes=data.num_classes, class_names=data.class_names,
            )  # fmt: skip
        result = fit(trainer, data.train, data.val, run_dir, arch=cfg.model, reporter=reporter, resume_from=resume)
        completed = True
        return result
    finally:
        if owns_group:
            leave_distributed(completed)
