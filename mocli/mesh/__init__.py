"""Meshes from 3D motion: body models (SMPL from the user's files, the open Anny model), fitting them to 3D joints,
the SMPL mesh head over whole sequences, and the mesh.npz / OBJ outputs of ``mocli infer --task mesh``.

    fit.py       pure fitting maths (per-frame pose, one shape, temporal smoothness; L-BFGS)
    anny.py      Anny as a body model (H36M-17 joints from its bones), its cache
    smpl_body.py SMPL (mocli.models.smpl.BodyModel) as a body model
    meshes.py    body-model choice, mesh head or fit, per-person files
    outputs.py   mesh.npz and OBJ writing (atomic)
"""

from mocli.mesh.fit import FitOptions, FitResult, FitWeights, fit_sequence
from mocli.mesh.meshes import BODY_MODELS, MeshExporter, fit_mesh, mesh_exporter, mesh_names
from mocli.mesh.outputs import MeshSequence, write_mesh_npz, write_obj, write_obj_frames

__all__ = [
    "BODY_MODELS",
    "FitOptions",
    "FitResult",
    "FitWeights",
    "MeshExporter",
    "MeshSequence",
    "fit_mesh",
    "fit_sequence",
    "mesh_exporter",
    "mesh_names",
    "write_mesh_npz",
    "write_obj",
    "write_obj_frames",
]
