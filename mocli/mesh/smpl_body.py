"""SMPL (the user's files, ``mocli.models.smpl.BodyModel``) as a body model for fitting and for the mesh head."""

from __future__ import annotations

import numpy as np
import torch

from mocli.models.smpl import BodyModel

__all__ = ["SmplBody"]


class SmplBody(torch.nn.Module):
    """SMPL for ``mocli.mesh.fit``: rotations (N, 24, 3, 3) (root first) + betas (10,) -> H36M-17 joints.

    The joints come from the vertices through the user's J_regressor_h36m, so they are the joints the papers
    evaluate. SMPL's own frame is Y up, facing +Z; a fitted root rotation takes it to camera axes.

    ``forward_joints`` (used thousands of times by a fit) skins only the vertices the H36M regressor reads, with the
    SMPL joints' shape dependence precomputed (J = J0 + dJ/dbeta beta: linear); ``vertices`` runs the full model
    (``BodyModel``, smplx). Both give the same joints (a test checks it).
    """

    num_rotations = 24
    num_shape = 10

    def __init__(self, body: BodyModel) -> None:
        super().__init__()
        self.body = body
        smpl = body.smpl
        reg = body.j_regressor_h36m  # (17, V)
        used = torch.nonzero(reg.abs().sum(0) > 0).flatten()  # the vertices the joints read
        V = smpl.v_template.shape[0]
        self.parents = [int(p) for p in smpl.parents]
        self.register_buffer("reg", reg[:, used], persistent=False)  # (17, I)
        self.register_buffer("v_template", smpl.v_template[used], persistent=False)  # (I, 3)
        self.register_buffer("shapedirs", smpl.shapedirs[used, :, :10], persistent=False)  # (I, 3, 10)
        posedirs = smpl.posedirs.reshape(-1, V, 3)[:, used].reshape(smpl.posedirs.shape[0], -1)
        self.register_buffer("posedirs", posedirs, persistent=False)  # (207, I*3)
        self.register_buffer("weights", smpl.lbs_weights[used], persistent=False)  # (I, 24)
        jreg = smpl.J_regressor  # (24, V)
        self.register_buffer("j0", jreg @ smpl.v_template, persistent=False)  # (24, 3)
        self.register_buffer("jdirs", torch.einsum("jv,vcb->jcb", jreg, smpl.shapedirs[:, :, :10]), persistent=False)

    @property
    def faces(self) -> np.ndarray:
        return self.body.faces

    @property
    def num_vertices(self) -> int:
        return int(self.body.smpl.v_template.shape[0])

    def forward_joints(self, rotmats: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        """(N, 24, 3, 3), (10,) -> (N, 17, 3) metres, pelvis at the origin (linear blend skinning of the vertices
        the H36M regressor reads: shape and pose blend shapes, forward kinematics, skinning)."""
        N = rotmats.shape[0]
        beta = shape.reshape(10).float()
        rot = rotmats.float()
        J = self.j0 + self.jdirs @ beta  # (24, 3) rest joints of this body
        pose_feature = (rot[:, 1:] - torch.eye(3)).reshape(N, -1)  # (N, 207)
        v = self.v_template + self.shapedirs @ beta + (pose_feature @ self.posedirs).reshape(N, -1, 3)  # (N, I, 3)
        rs: list[torch.Tensor] = []
        ts: list[torch.Tensor] = []
        for k, p in enumerate(self.parents):
            if p < 0:
                rs.append(rot[:, k])
                ts.append(J[k].expand(N, 3))
            else:
                rs.append(rs[p] @ rot[:, k])
                ts.append(ts[p] + rs[p] @ (J[k] - J[p]))
        R = torch.stack(rs, dim=1)  # (N, 24, 3, 3) world rotations
        t = torch.stack(ts, dim=1) - (R @ J[:, :, None])[..., 0]  # (N, 24, 3): x -> R (x - J_k) + posed J_k
        blend_r = torch.einsum("ik,nkab->niab", self.weights, R)  # (N, I, 3, 3)
        verts = (blend_r @ v[..., None])[..., 0] + torch.einsum("ik,nka->nia", self.weights, t)
        joints = torch.einsum("ji,nia->nja", self.reg, verts)
        return joints - joints[:, :1]

    @torch.no_grad()
    def vertices(self, rotmats: torch.Tensor, shape: torch.Tensor, chunk: int = 64) -> torch.Tensor:
        """(N, 24, 3, 3), (10,) -> (N, V, 3) vertices, metres, relative to the H36M pelvis joint."""
        out = []
        for s in range(0, rotmats.shape[0], chunk):
            rot = rotmats[s : s + chunk]
            res = self.body(rot, shape.reshape(1, 10).expand(rot.shape[0], 10))
            out.append(res.verts - res.joints[:, :1])
        return torch.cat(out) if out else torch.zeros(0, self.num_vertices, 3)
