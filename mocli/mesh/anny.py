"""The open Anny body model (``pip install anny``; Apache-2.0 code, CC0 MakeHuman assets) as a mocli body model.

Anny (NAVER LABS, 2025) is a parametric human mesh of 13,718 vertices (27,420 triangles) with a 104-bone rig and six
phenotype parameters in [0, 1] (gender, age, muscle, weight, height, proportions). Its own frame is metres, Z up, the
body facing -Y, the pelvis at the origin. Pose parameters are per-bone 4x4 "delta" transforms in Anny's ``local-ref``
parameterisation: the delta's rotation is expressed in world-aligned axes, so with ``A_c`` the accumulated rotation
of bone c (``A_c = A_parent D_c``, ``A_root = D_root``) every posed bone head follows

    h_c = h_parent + A_parent (q_c - q_parent)

where ``q`` are the bone heads of the identity pose (Anny's neutral A-pose) for the current phenotype. mocli uses
that chain on the ~30 bones the joints need while fitting (Anny's full forward kinematics over 104 bones is about
20x slower with gradients), and Anny's own forward (skinning, ``lbs``) for the final vertices; a test checks that the
two agree.

Human3.6M-17 joints on Anny (``H36M_FROM_ANNY``), defined like mocli's BVH rig mapping (``mocli.data.rigs``) so that
they match what the lifter was trained on:

    pelvis 0             root bone head (the pelvis centre)
    hips 1, 4            upperleg01.R / .L heads (the hip joint centres)
    knees 2, 5           lowerleg01.R / .L heads
    ankles 3, 6          foot.R / .L heads
    spine 7              the point half way along the spine chain root -> spine04 -> ... -> spine01 -> neck01, by the
                         identity-pose bone lengths of the mean body (a fixed segment and fraction)
    thorax 8             neck01 head (the neck base)
    neck/nose 9          head bone head (the top of the neck)
    head top 10          the crown (highest vertex of the mean identity-pose body), carried rigidly by the head bone
    shoulders 11, 14     upperarm01.L / .R heads
    elbows 12, 15        lowerarm01.L / .R heads
    wrists 13, 16        wrist.L / .R heads

Anny's COCO keypoint regressor (``anny.KeypointsRegressor.coco``) is not used: COCO has no pelvis, spine, thorax or
head top, and its hips are surface points rather than joint centres.

The first build of the model writes Anny's cache (about 2 minutes on a CPU, read from the package's own files, no
network): ``$ANNY_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/mocli/anny`` (``~/.cache/mocli/anny``). In mocli's own
cache folder the two intermediate build files (about 780 MB) are removed after the build; the 51 MB model file is
kept and later runs load it in a few seconds.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mocli.errors import MissingDependencyError

__all__ = ["AnnyBody", "anny_cache_dir", "load_anny", "ANNY_FIT_BONES", "H36M_FROM_ANNY"]

log = logging.getLogger(__name__)

ANNY_VERSION = "0.6.2"
INSTALL = f"pip install --no-deps anny=={ANNY_VERSION} roma pyyaml safetensors pillow (or: pip install 'mocli[anny]')"

# Bones whose rotation is fitted (root first); every other bone keeps its identity-pose rotation.
ANNY_FIT_BONES = (
    "root",
    "spine05", "spine04", "spine03", "spine02", "spine01",
    "neck01", "neck02", "neck03", "head",
    "upperleg01.R", "lowerleg01.R", "upperleg01.L", "lowerleg01.L",
    "clavicle.L", "shoulder01.L", "upperarm01.L", "lowerarm01.L",
    "clavicle.R", "shoulder01.R", "upperarm01.R", "lowerarm01.R",
)  # fmt: skip
# H36M-17 joint -> the Anny bone whose head it is (spine 7 and head top 10 are derived, see the module doc)
H36M_FROM_ANNY = {
    0: "root", 1: "upperleg01.R", 2: "lowerleg01.R", 3: "foot.R", 4: "upperleg01.L", 5: "lowerleg01.L", 6: "foot.L",
    8: "neck01", 9: "head", 11: "upperarm01.L", 12: "lowerarm01.L", 13: "wrist.L", 14: "upperarm01.R",
    15: "lowerarm01.R", 16: "wrist.R",
}  # fmt: skip
_SPINE_CHAIN = ("root", "spine04", "spine03", "spine02", "spine01", "neck01")  # heads along the spine (spine05 = root)
_CACHE_BUILDS = ("load_data_", "build_model_data_")  # intermediate cache files, not read once the model is built


def anny_cache_dir() -> Path:
    """Where Anny's built model data is cached: $ANNY_CACHE_DIR, else $XDG_CACHE_HOME/mocli/anny (~/.cache/...)."""
    if os.environ.get("ANNY_CACHE_DIR"):
        return Path(os.environ["ANNY_CACHE_DIR"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser()
    return base / "mocli" / "anny"


def load_anny():
    """Anny's default full-body model (float32, pure-torch skinning), building its cache on first use."""
    try:
        import anny
        import anny.paths
    except ImportError as e:
        raise MissingDependencyError(f"the Anny body model is not installed ({e}): {INSTALL}") from None
    cache = anny_cache_dir()
    own = not os.environ.get("ANNY_CACHE_DIR")
    anny.paths.set_anny_cache_path(cache)
    first = not any(cache.glob("v*/build_compact_model_data_*.safetensors"))
    if first:
        log.warning("building the Anny body model once (about 2 minutes on a CPU) into %s", cache)
    model = anny.Anny(skinning_method="lbs").float().eval()
    if first and own:
        for path in cache.glob("v*/*.safetensors"):
            if path.name.startswith(_CACHE_BUILDS):
                path.unlink(missing_ok=True)
    return model


@dataclass(frozen=True)
class _Chain:
    """The bones the joints need, in parent-before-child order, with their parent's position in that order."""

    bones: list[int]  # Anny bone indices
    parent_pos: list[int]  # position of each bone's parent in ``bones`` (-1 for the root)
    fit_pos: list[int]  # for each bone, its index among the fitted rotations, or -1 (identity)


def _chain(parents: list[int], needed: list[int], fitted: list[int]) -> _Chain:
    keep: set[int] = set()
    for b in needed:
        while b >= 0 and b not in keep:
            keep.add(b)
            b = parents[b]
    bones = sorted(keep)  # Anny's bones are numbered parents first
    if any(parents[b] >= 0 and parents[b] > b for b in bones):
        raise ValueError("Anny's bones are not numbered parents before children")
    pos = {b: i for i, b in enumerate(bones)}
    return _Chain(
        bones=bones,
        parent_pos=[pos.get(parents[b], -1) for b in bones],
        fit_pos=[fitted.index(b) if b in fitted else -1 for b in bones],
    )


class AnnyBody(torch.nn.Module):
    """Anny as a body model for fitting: rotations of ``ANNY_FIT_BONES`` + 6 phenotype values -> H36M-17 joints.

    Shape vector s (6,): free values, phenotype = sigmoid(s) (s = 0 is the middle of every phenotype, 0.5).
    Rotations (N, K, 3, 3), K = len(ANNY_FIT_BONES): Anny's ``local-ref`` delta rotations (world-aligned axes).
    Output joints and vertices in metres in Anny's frame rotated by the root rotation (so a fitted root gives
    camera axes), the pelvis at the origin.
    """

    def __init__(self, model=None) -> None:
        super().__init__()
        self.model = model if model is not None else load_anny()
        labels = list(self.model.bone_labels)
        parents = [int(p) for p in self.model.bone_parents]
        self.bone_labels = labels
        self.fit_bones = [labels.index(n) for n in ANNY_FIT_BONES]
        self.phenotype_labels = list(self.model.phenotype_labels)
        self.head_bone = labels.index("head")
        joint_bones = [labels.index(n) for n in H36M_FROM_ANNY.values()]
        spine = [labels.index(n) for n in _SPINE_CHAIN]
        self.chain = _chain(parents, joint_bones + spine + [self.head_bone], self.fit_bones)
        pos = {b: i for i, b in enumerate(self.chain.bones)}
        self._joint_pos = {j: pos[labels.index(n)] for j, n in H36M_FROM_ANNY.items()}
        self._head_pos = pos[self.head_bone]
        with torch.no_grad():
            heads, verts = self._identity_pose(self.phenotypes(torch.zeros(self.num_shape)), with_vertices=True)
        self.crown_vertex = int(torch.argmax(verts[:, 2]))  # Z up: the top of the head
        lengths = torch.linalg.vector_norm(heads[spine[1:]] - heads[spine[:-1]], dim=-1)
        cum = torch.cat([torch.zeros(1), torch.cumsum(lengths, 0)])
        half = float(cum[-1]) / 2
        seg = int(torch.searchsorted(cum, torch.tensor(half)).clamp(1, len(spine) - 1)) - 1
        self._cache: tuple | None = None  # (shape, constants) of the last fixed shape
        self._linear: tuple | None = None  # (s0, c(s0), dc/ds) while the shape is optimised
        self._spine = (pos[spine[seg]], pos[spine[seg + 1]], (half - float(cum[seg])) / float(lengths[seg]))

    @property
    def num_rotations(self) -> int:
        return len(self.fit_bones)

    @property
    def num_shape(self) -> int:
        return len(self.phenotype_labels)

    @property
    def fit_bone_names(self) -> list[str]:
        return list(ANNY_FIT_BONES)

    @property
    def num_vertices(self) -> int:
        return int(self.model.template_vertices.shape[0])

    @property
    def faces(self) -> np.ndarray:
        """(F, 3) int64 triangles."""
        return self.model.get_triangular_faces().cpu().numpy().astype(np.int64)

    def phenotypes(self, shape: torch.Tensor) -> torch.Tensor:
        """(S,) free shape values -> (1, S) phenotype values in (0, 1)."""
        return torch.sigmoid(shape.reshape(1, -1).float())

    def _coeffs(self, phen: torch.Tensor) -> torch.Tensor:
        m = self.model
        zeros = phen.new_zeros
        return m._get_phenotype_blendshape_coefficients(
            phen, zeros(1, len(m.local_change_labels)), zeros(1, len(m.facial_action_labels))
        )

    def _identity_pose(self, phen: torch.Tensor, with_vertices: bool = False):
        """For phenotype values (1, S): the identity-pose bone heads (104, 3) and the crown vertex (3,) (or all
        vertices (V, 3) with ``with_vertices``)."""
        m = self.model
        rest = m.get_rest_model(self._coeffs(phen))
        eye = torch.eye(4, dtype=phen.dtype).expand(1, m.bone_count, 4, 4)
        transforms, poses = m.get_bone_transforms(eye, rest["rest_bone_poses"])  # rest -> identity pose
        if with_vertices:
            return poses[0, :, :3, 3], m.get_skinned_vertices(rest["rest_vertices"], transforms)[0]
        v = self.crown_vertex
        idx, w = m.vertex_bone_indices[v], m.vertex_bone_weights[v].to(phen.dtype)  # (9,) bones and weights
        x = torch.cat([rest["rest_vertices"][0, v], phen.new_ones(1)])
        crown = (w[:, None] * (transforms[0, idx] @ x)[:, :3]).sum(0)
        return poses[0, :, :3, 3], crown

    def _exact_constants(self, shape: torch.Tensor) -> torch.Tensor:
        """(C*3 + 3,) the identity-pose heads of the chain bones and the crown relative to the head bone's head."""
        q, crown = self._identity_pose(self.phenotypes(shape))  # (104, 3), (3,)
        return torch.cat([q[self.chain.bones].reshape(-1), crown - q[self.head_bone]])

    @torch.no_grad()
    def linearise(self, shape: torch.Tensor, step: float = 1e-2) -> None:
        """Linearise the shape's effect around ``shape`` (central differences) for the next optimisation steps.

        The exact shape -> identity-pose mapping runs Anny's whole rest model (all vertices, 104 bones): its gradient
        costs more than the rest of a fit. While the shape is optimised (``shape.requires_grad``) the joints use
        ``c(s) = c(s0) + J (s - s0)``; the fit re-linearises between rounds, and a fixed shape uses the exact value.
        """
        s0 = shape.detach().float().reshape(-1).clone()
        c0 = self._exact_constants(s0)
        cols = []
        for i in range(len(s0)):
            e = torch.zeros_like(s0)
            e[i] = step
            cols.append((self._exact_constants(s0 + e) - self._exact_constants(s0 - e)) / (2 * step))
        self._linear = (s0, c0, torch.stack(cols, dim=1))  # (S,), (M,), (M, S)

    def _shape_constants(self, shape: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Identity-pose heads of the chain bones (C, 3) and the crown relative to the head bone (3,) for a shape:
        linearised while the shape is optimised, exact (and cached) otherwise."""
        if shape.requires_grad:
            if self._linear is None:
                self.linearise(shape)
            s0, c0, jac = self._linear
            c = c0 + jac @ (shape.reshape(-1) - s0)
        else:
            key = tuple(shape.detach().reshape(-1).tolist())
            if self._cache is None or self._cache[0] != key:
                with torch.no_grad():
                    self._cache = (key, self._exact_constants(shape))
            c = self._cache[1]
        return c[:-3].reshape(-1, 3), c[-3:]

    def forward_joints(self, rotmats: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        """(N, K, 3, 3) fitted-bone rotations, (S,) shape -> (N, 17, 3) H36M joints, metres (pelvis at origin)."""
        q, crown = self._shape_constants(shape)
        N = rotmats.shape[0]
        eye = torch.eye(3, dtype=rotmats.dtype).expand(N, 3, 3)
        deltas = rotmats.unbind(1)
        offsets = (q - q[[max(p, 0) for p in self.chain.parent_pos]]).unbind(0)  # (3,) each: head minus parent's
        acc: list[torch.Tensor] = []  # accumulated rotation A of each chain bone
        heads: list[torch.Tensor] = []
        for i, (p, f) in enumerate(zip(self.chain.parent_pos, self.chain.fit_pos, strict=True)):
            delta = deltas[f] if f >= 0 else eye
            if p < 0:
                acc.append(delta)
                heads.append(q[i].expand(N, 3))
            else:
                heads.append(heads[p] + acc[p] @ offsets[i])
                acc.append(acc[p] @ delta)
        joints: list[torch.Tensor | None] = [None] * 17
        for j, k in self._joint_pos.items():
            joints[j] = heads[k]
        a, b, frac = self._spine
        joints[7] = heads[a] + frac * (heads[b] - heads[a])
        joints[10] = heads[self._head_pos] + acc[self._head_pos] @ crown
        out = torch.stack(joints, dim=1)  # (N, 17, 3)
        return out - out[:, :1]

    def full_pose(self, rotmats: torch.Tensor) -> torch.Tensor:
        """(N, K, 3, 3) fitted rotations -> (N, 104, 4, 4) Anny delta transforms (identity for the other bones)."""
        N = rotmats.shape[0]
        pose = torch.eye(4, dtype=torch.float32).repeat(N, self.model.bone_count, 1, 1)
        pose[:, self.fit_bones, :3, :3] = rotmats.float()
        return pose

    @torch.no_grad()
    def vertices(self, rotmats: torch.Tensor, shape: torch.Tensor, chunk: int = 32) -> torch.Tensor:
        """(N, K, 3, 3), (S,) -> (N, V, 3) skinned vertices (Anny's own forward), metres, pelvis at the origin."""
        phen = self.phenotypes(shape)
        out = []
        for s in range(0, rotmats.shape[0], chunk):
            res = self.model(self.full_pose(rotmats[s : s + chunk]), phenotype_kwargs=phen)
            root = res["bone_poses"][:, 0, :3, 3]  # (n, 3) the pelvis
            out.append(res["vertices"].float() - root[:, None].float())
        return torch.cat(out) if out else torch.zeros(0, self.num_vertices, 3)

    @torch.no_grad()
    def bone_heads(self, rotmats: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        """(N, K, 3, 3), (S,) -> (N, 104, 3) posed bone heads from Anny's own forward kinematics (for checks)."""
        rest = self.model.get_rest_model(self._coeffs(self.phenotypes(shape)))
        _, poses = self.model.get_bone_transforms(self.full_pose(rotmats), rest["rest_bone_poses"])
        heads = poses[..., :3, 3]
        return heads - heads[:, :1]
