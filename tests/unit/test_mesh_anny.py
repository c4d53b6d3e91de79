"""The open Anny body model (only when ``anny`` is installed): its H36M-17 joints from mocli's fast bone chain agree
with Anny's own forward kinematics and skinning, and fitting recovers a known Anny pose.

The model is built once per session (``anny_body``). On a machine without Anny's cache the first build takes about
2 minutes on a CPU (written to $ANNY_CACHE_DIR or ~/.cache/mocli/anny and reused by later sessions); with the cache,
loading takes a few seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("anny")

from mocli.mesh.anny import ANNY_FIT_BONES, H36M_FROM_ANNY, AnnyBody  # noqa: E402
from mocli.mesh.fit import FitOptions, fit_sequence  # noqa: E402
from mocli.mesh.meshes import fit_mesh  # noqa: E402
from mocli.models.rotations import axis_angle_to_matrix  # noqa: E402


@pytest.fixture(scope="session")
def anny_body() -> AnnyBody:
    return AnnyBody()


def _pose(N: int, K: int, seed: int) -> torch.Tensor:
    """A smooth known motion (0.1 rad per frame), the root turned from Anny's Z up to the camera's y down."""
    g = torch.Generator().manual_seed(seed)
    phase = 0.1 * torch.arange(N, dtype=torch.float32)[:, None, None]
    aa = torch.randn(K, 3, generator=g) * 0.3 + torch.sin(phase) * torch.randn(K, 3, generator=g) * 0.3
    aa[:, 0] = torch.tensor([-np.pi / 2, 0.0, 0.0]) + 0.1 * torch.randn(3, generator=g)
    return axis_angle_to_matrix(aa)


def test_bone_chain_joints_match_annys_own_kinematics_and_skinning(anny_body):
    rot, shape = _pose(3, anny_body.num_rotations, 0), torch.tensor([0.5, -0.3, 0.2, 0.0, 0.8, -0.4])
    with torch.no_grad():
        joints = anny_body.forward_joints(rot, shape)
    heads = anny_body.bone_heads(rot, shape)  # Anny's forward kinematics over all 104 bones
    for j, name in H36M_FROM_ANNY.items():
        torch.testing.assert_close(joints[:, j], heads[:, anny_body.bone_labels.index(name)], atol=1e-5, rtol=0)
    verts = anny_body.vertices(rot, shape)  # Anny's skinning
    assert verts.shape == (3, 13718, 3) and anny_body.faces.shape == (27420, 3)
    torch.testing.assert_close(joints[:, 10], verts[:, anny_body.crown_vertex], atol=1e-5, rtol=0)
    spine = [heads[:, anny_body.bone_labels.index(n)] for n in ("root", "neck01")]
    assert float(torch.linalg.vector_norm(joints[:, 7] - (spine[0] + spine[1]) / 2, dim=-1).max()) < 0.05


def test_linearised_shape_matches_the_exact_one_near_its_anchor(anny_body):
    rot = _pose(2, anny_body.num_rotations, 1)
    s0 = torch.zeros(6)
    anny_body.linearise(s0)
    s = (s0 + 0.01).requires_grad_(True)
    with torch.no_grad():
        exact = anny_body.forward_joints(rot, s.detach())
    torch.testing.assert_close(anny_body.forward_joints(rot, s).detach(), exact, atol=2e-4, rtol=0)


def test_fit_recovers_a_known_anny_pose(anny_body):
    K = anny_body.num_rotations
    rot, shape = _pose(4, K, 2), torch.tensor([0.3, 0.0, 0.0, 0.0, -0.5, 0.2])
    with torch.no_grad():
        target = anny_body.forward_joints(rot, shape).numpy()
    fit = fit_sequence(anny_body.forward_joints, target, K, 6, FitOptions(iterations=150, shape_iterations=90),
                       linearise=anny_body.linearise)  # fmt: skip
    assert fit.mean_error_mm < 5.0, fit.mean_error_mm
    mesh = fit_mesh(anny_body, target, "anny", FitOptions(iterations=20, shape_iterations=10))
    assert mesh.params["pose"].shape == (4, K, 3) and list(mesh.params["bone_names"]) == list(ANNY_FIT_BONES)
    assert ((mesh.params["phenotypes"] > 0) & (mesh.params["phenotypes"] < 1)).all()
