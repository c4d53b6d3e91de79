"""mocli: videos of people to 3D motion (MotionBERT's DSTformer and related methods), end to end.

Public API::

    model = mocli.create_model("dstformer-lite")        # freshly initialised
    model = mocli.load_model("path/to/checkpoint.pt")   # eval mode, from a mocli checkpoint or a weights name
    pose3d = model(kp2d)                                # (B,T,17,3) normalised 2D + conf -> (B,T,17,3)

    run = mocli.infer(["clip.mp4"], out="results")      # what `mocli infer` does: result folders + an InferRun
    joints3d = run[0].motions()[0].joints3d             # (T,17,3) metres, root-relative, camera axes
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mocli._version import __version__

if TYPE_CHECKING:
    from mocli.api import create_model, load_model
    from mocli.infer_run import infer

__all__ = ["__version__", "create_model", "load_model", "infer"]


def __getattr__(name: str) -> Any:
    # torch is imported on first use, so `mocli --help` and `mocli --version` stay fast
    if name in ("create_model", "load_model"):
        from mocli import api

        return getattr(api, name)
    if name == "infer":
        from mocli.infer_run import infer

        return infer
    raise AttributeError(f"module 'mocli' has no attribute {name!r}")
