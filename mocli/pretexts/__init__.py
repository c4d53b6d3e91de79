"""The pretext registry: ``--pretext NAME`` -> the module that trains it. Modules are imported only when chosen.

A pretext module offers two functions (the ``Pretext`` protocol):

    check_config(cfg, world, ckpt)    one-line MocliErrors for its own settings, before any data is read (the
                                      checks every run shares, ``mocli.training.runs.check_common``, run first);
                                      ``ckpt`` is the loaded last.pt of a resumed run, else None
    build(cfg, sources, resume)       (model, task, train_set, val_set); ``sources``: in-memory sequences instead
                                      of ``cfg.data.paths`` (or None); ``resume``: a loaded last.pt or None

The pieces they share (the lift task and data, ``--init`` loading, run folders) are the public API of
``mocli.training``.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol

from mocli.errors import MocliError

__all__ = ["Pretext", "PRETEXTS", "get_pretext"]


class Pretext(Protocol):
    def check_config(self, cfg: Any, world: int = 1, ckpt: dict[str, Any] | None = None) -> None: ...

    def build(self, cfg: Any, sources: Any, resume: dict[str, Any] | None) -> tuple[Any, Any, Any, Any]: ...


def _lift() -> ModuleType:
    from mocli.training import lift_task

    return lift_task


def _mpm2d3d() -> ModuleType:
    from mocli.pretexts import mpm2d3d

    return mpm2d3d


def _action_text() -> ModuleType:
    from mocli.pretexts import action_text

    return action_text


def _mpm() -> ModuleType:
    from mocli.pretexts import mpm

    return mpm


PRETEXTS: dict[str, Callable[[], Pretext]] = {
    "lift": _lift,  # MotionBERT: noisy, masked 2D -> 3D (mocli.training.lift_task)
    "mpm2d3d": _mpm2d3d,  # MPM: masked 2D, masked 3D and masked 2D -> 3D modelling in turn
    "action-text": _action_text,  # ActionPose: motion embeddings aligned with text embeddings of labels
    "mpm": _mpm,  # P-STMO: masked frames and joints of clean 2D, reconstructed
}


def get_pretext(name: str) -> Pretext:
    """The module of the pretext registered as ``name``; an unknown name is a one-line MocliError."""
    if name not in PRETEXTS:
        raise MocliError(f"unknown pretext {name!r}; available: {', '.join(PRETEXTS)}")
    return PRETEXTS[name]()
