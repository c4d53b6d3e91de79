"""Task heads on the motion representation E (B,T,J,D) of the DSTformer, and the encoder + head model.

The heads are MotionBERT's downstream heads. Their parameter names follow MotionBERT's released checkpoints (the
tensors under 'module.head.' of its action and mesh files), as far as REFERENCE.md describes them, so that
``mocli weights import motionbert`` files load into them unchanged:

    ActionHead    dropout -> mean over T -> flatten J*D -> mean over persons -> fc1 (J*D -> hidden) -> bn
                  (BatchNorm1d) -> ReLU -> fc2 (-> classes)
    OneShotHead   the same pooling -> fc1 (J*D -> hidden) -> L2 normalisation (an embedding)
    MeshHead      pose: per frame fc1 (J*D -> hidden) -> bn1 -> ReLU -> head_pose (-> 24*6), added to the mean pose
                  init_pose (1, 144); shape: the temporal mean of E -> fc2 -> bn2 -> ReLU -> head_shape (-> 10),
                  added to the mean shape init_shape (1, 10) and broadcast to every frame

A head is stored in a mocli checkpoint as ``heads[task] = {"kind", "config", "state_dict"}``; ``head_from_entry``
rebuilds it (for imported MotionBERT heads, kind 'motionbert-action' / 'motionbert-mesh' with an empty config,
the sizes are read from the tensor shapes).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mocli.errors import CheckpointError
from mocli.models.checkpoint import check_state_dict
from mocli.models.dstformer import DSTformer
from mocli.models.rotations import rot6d_to_matrix

__all__ = [
    "ActionHead",
    "OneShotHead",
    "MeshHead",
    "HEADS",
    "pool_motion",
    "build_head",
    "head_entry",
    "head_config_from_state",
    "head_from_entry",
    "load_head_state",
    "HeadModel",
]

IDENTITY_6D = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)  # the first two columns of I, row by row (see rotations.py)


def pool_motion(feats: torch.Tensor) -> torch.Tensor:
    """(B, M, T, J, D) motion representations of M persons -> (B, J*D): mean over T, flatten, mean over persons."""
    B, M, T, J, D = feats.shape
    return feats.mean(dim=2).reshape(B, M, J * D).mean(dim=1)


class ActionHead(nn.Module):
    """Action classifier: (B, M, T, J, D) -> (B, num_classes) logits. MotionBERT's names: fc1, bn, fc2."""

    def __init__(
        self, dim_rep: int = 512, num_joints: int = 17, num_classes: int = 60, hidden_dim: int = 2048,
        dropout: float = 0.5,
    ) -> None:  # fmt: skip
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(num_joints * dim_rep, hidden_dim)
        self.bn = nn.BatchNorm1d(hidden_dim, momentum=0.1)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden_dim, num_classes)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = pool_motion(self.dropout(feats))  # (B, J*D)
        return self.fc2(self.relu(self.bn(self.fc1(x))))


class OneShotHead(nn.Module):
    """Action embedding for one-shot recognition: (B, M, T, J, D) -> (B, hidden_dim) unit vectors. Name: fc1."""

    def __init__(self, dim_rep: int = 512, num_joints: int = 17, hidden_dim: int = 2048, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(num_joints * dim_rep, hidden_dim)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.fc1(pool_motion(self.dropout(feats))), dim=-1)


class MeshHead(nn.Module):
    """SMPL parameters from E: (B, T, J, D) -> {'rotmats' (B, T, 24, 3, 3), 'betas' (B, T, 10)}.

    Names: fc1, bn1, head_pose (per-frame pose), fc2, bn2, head_shape (clip shape), buffers init_pose (1, 144) and
    init_shape (1, 10) (the SMPL mean pose in 6D and mean betas; identity and zeros until set from
    smpl_mean_params.npz). The output layers start near zero (Xavier, gain 0.01), so training starts at the mean.
    """

    def __init__(self, dim_rep: int = 512, num_joints: int = 17, hidden_dim: int = 1024, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.fc1 = nn.Linear(num_joints * dim_rep, hidden_dim)
        self.bn1 = nn.BatchNorm1d(hidden_dim, momentum=0.1)
        self.fc2 = nn.Linear(num_joints * dim_rep, hidden_dim)
        self.bn2 = nn.BatchNorm1d(hidden_dim, momentum=0.1)
        self.head_pose = nn.Linear(hidden_dim, 24 * 6)
        self.head_shape = nn.Linear(hidden_dim, 10)
        for layer in (self.head_pose, self.head_shape):
            nn.init.xavier_uniform_(layer.weight, gain=0.01)
            nn.init.zeros_(layer.bias)
        self.register_buffer("init_pose", torch.tensor(IDENTITY_6D).repeat(24)[None])  # (1, 144)
        self.register_buffer("init_shape", torch.zeros(1, 10))

    def set_mean_params(self, pose6d: torch.Tensor, betas: torch.Tensor) -> None:
        """Set the mean pose (144,) 6D and mean betas (10,) the predictions are added to."""
        self.init_pose.copy_(pose6d.reshape(1, 144))
        self.init_shape.copy_(betas.reshape(1, 10))

    def forward(self, feats: torch.Tensor) -> dict[str, torch.Tensor]:
        B, T, J, D = feats.shape
        x = feats.reshape(B, T, J * D)
        pose = F.relu(self.bn1(self.fc1(self.dropout(x.reshape(B * T, J * D)))))  # (B*T, hidden)
        shape = F.relu(self.bn2(self.fc2(self.dropout(x.mean(dim=1)))))  # (B, hidden)
        pose6d = (self.head_pose(pose) + self.init_pose).float()  # (B*T, 144)
        betas = (self.head_shape(shape) + self.init_shape).float()  # (B, 10)
        rotmats = rot6d_to_matrix(pose6d.reshape(B, T, 24, 6))
        return {"rotmats": rotmats, "betas": betas[:, None].expand(B, T, 10)}


HEADS: dict[str, type[nn.Module]] = {"action": ActionHead, "action-oneshot": OneShotHead, "mesh": MeshHead}
_IGNORED = ("smpl.", "J_regressor")  # body-model tensors a MotionBERT mesh head carries: supplied by the user here


def build_head(kind: str, config: dict[str, Any]) -> nn.Module:
    """A freshly initialised head of ``kind`` ('action', 'action-oneshot', 'mesh') with constructor ``config``."""
    if kind not in HEADS:
        raise CheckpointError(f"unknown head kind {kind!r}; known: {', '.join(HEADS)}")
    return HEADS[kind](**config)


def head_entry(kind: str, config: dict[str, Any], head: nn.Module) -> dict[str, Any]:
    """The checkpoint entry of a head: {"kind", "config", "state_dict"} (CPU tensors)."""
    state = {k: v.detach().cpu() for k, v in head.state_dict().items()}
    return {"kind": kind, "config": dict(config), "state_dict": state}


def head_config_from_state(kind: str, state: dict[str, torch.Tensor], dim_rep: int, num_joints: int) -> dict:
    """Constructor config of a head from its tensors (imported MotionBERT heads carry no config)."""
    try:
        hidden, width = state["fc1.weight"].shape
    except KeyError:
        raise CheckpointError(f"{kind} head without fc1.weight: not a MotionBERT {kind} head") from None
    if width != dim_rep * num_joints:
        raise CheckpointError(f"{kind} head expects {width} pooled features, the encoder gives {dim_rep * num_joints}")
    config: dict[str, Any] = {"dim_rep": dim_rep, "num_joints": num_joints, "hidden_dim": int(hidden)}
    if kind == "action":
        config["num_classes"] = int(state["fc2.weight"].shape[0])
    return config


def _kind_of(entry: dict[str, Any]) -> str:
    kind = str(entry.get("kind", ""))
    if kind == "motionbert-action":  # MotionBERT's embedding head (one-shot) has no classifier
        return "action" if "fc2.weight" in entry["state_dict"] else "action-oneshot"
    return kind.removeprefix("motionbert-")


def head_from_entry(
    entry: dict[str, Any], dim_rep: int, num_joints: int, **overrides: Any
) -> tuple[str, dict[str, Any], nn.Module]:
    """(kind, config, head module with the entry's weights) from a checkpoint's heads[task] entry.

    ``overrides`` replace config fields that do not change tensor shapes (e.g. dropout).
    """
    kind = _kind_of(entry)
    config = dict(entry.get("config") or head_config_from_state(kind, entry["state_dict"], dim_rep, num_joints))
    config.update(overrides)
    head = build_head(kind, config)
    load_head_state(head, entry["state_dict"], f"{kind} head")
    return kind, config, head


def load_head_state(head: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load a head's tensors by name (MotionBERT's names); body-model tensors ('smpl.*') are skipped, a missing
    BatchNorm ``num_batches_tracked`` counter is taken as 0; anything else missing or mis-shaped is an error."""
    state = {k: v for k, v in state.items() if not k.startswith(_IGNORED)}
    for k, v in head.state_dict().items():
        if k.endswith("num_batches_tracked") and k not in state:
            state[k] = torch.zeros_like(v)
    check_state_dict(head, state, where)
    head.load_state_dict(state)


class HeadModel(nn.Module):
    """The encoder and one task head: (B, T, J, 3) or (B, M, T, J, 3) normalised 2D + confidence -> head output.

    ``task`` names the checkpoint entry (heads[task]); ``kind`` and ``config`` rebuild the head. ``class_names``
    (action heads: the name of each class id, index = id) is written into the entry as ``classes``.
    """

    def __init__(
        self, encoder: DSTformer, head: nn.Module, task: str, kind: str, config: dict[str, Any],
        class_names: list[str] | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.encoder, self.head = encoder, head
        self.task, self.kind, self.config = task, kind, dict(config)
        self.class_names = list(class_names) if class_names else None

    @property
    def cfg(self):
        """The encoder's DSTformerConfig."""
        return self.encoder.cfg

    def forward(self, x: torch.Tensor) -> Any:
        if x.ndim == 5:  # (B, M, T, J, 3): every person through the encoder
            B, M = x.shape[:2]
            feats = self.encoder.forward_features(x.flatten(0, 1)).unflatten(0, (B, M))  # (B, M, T, J, D)
        else:
            feats = self.encoder.forward_features(x)  # (B, T, J, D)
        return self.head(feats)

    def checkpoint_parts(self) -> tuple[DSTformer, dict[str, dict[str, Any]]]:
        """(encoder, heads) for ``build_checkpoint``: the training loop writes checkpoints through this."""
        entry = head_entry(self.kind, self.config, self.head)
        if self.class_names:
            entry["classes"] = list(self.class_names)
        return self.encoder, {self.task: entry}

    def load_checkpoint_parts(self, ckpt: dict[str, Any]) -> None:
        """Load the encoder ('model') and this task's head (heads[task]) of a mocli checkpoint."""
        check_state_dict(self.encoder, ckpt["model"], "encoder")
        self.encoder.load_state_dict(ckpt["model"])
        if self.task not in ckpt.get("heads", {}):
            raise CheckpointError(f"checkpoint has no {self.task!r} head (heads: {', '.join(ckpt.get('heads', {}))})")
        load_head_state(self.head, ckpt["heads"][self.task]["state_dict"], f"{self.task} head")
