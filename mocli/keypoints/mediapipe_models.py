"""MediaPipe's pose landmark models: which file each name is, where MediaPipe looks for it, and installing 'heavy'.

mediapipe 0.10.21's wheel ships the person detector and the **full** landmark model, so the default detectors run
offline. MediaPipe's **heavy** landmark model (its ``model_complexity=2``: a larger network with the same 33
landmarks and world landmarks) is not in the wheel; MediaPipe itself would download it at run time, which fails
offline.
The npm registry's ``@mediapipe/pose`` package (Apache-2.0) ships the same release of both models (its full model is
byte for byte the wheel's), so ``mocli prepare mediapipe-heavy`` takes the heavy file from that package (the
``.tgz`` that ``npm pack`` fetches, or the ``.tflite`` itself), checks its SHA-256 and copies it into the wheel's
folder beside the full one, where both MediaPipe's own solution and mocli's Tasks-API bundle find it.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path
from typing import Any

from mocli.errors import InputError, MissingDependencyError, MocliError

__all__ = [
    "HEAVY_NPM_PACKAGE",
    "MEDIAPIPE_MODELS",
    "import_mediapipe",
    "install_heavy_model",
    "landmark_folder",
    "landmark_model_path",
    "model_complexity",
]

INSTALL_HINT = 'pip install "mocli[mediapipe]" && pip install --no-deps "mediapipe==0.10.21"'
# the legacy solution's model_complexity of each landmark model (0, lite, is neither shipped nor offered)
MEDIAPIPE_MODELS = {"full": 1, "heavy": 2}
HEAVY_NPM_PACKAGE = "@mediapipe/pose@0.5.1675469404"
HEAVY_FILE = "pose_landmark_heavy.tflite"
HEAVY_SHA256 = "59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe"
HEAVY_HINT = f"npm pack {HEAVY_NPM_PACKAGE} && mocli prepare mediapipe-heavy mediapipe-pose-0.5.1675469404.tgz"


def import_mediapipe(who: str = "the mediapipe detectors") -> Any:
    """The ``mediapipe`` module; missing, a MissingDependencyError that names ``who`` needs it and how to install it."""
    try:
        import mediapipe as mp
    except ImportError as e:
        raise MissingDependencyError(f"{who} needs mediapipe ({e}): {INSTALL_HINT}") from None
    return mp


def model_complexity(model: str) -> int:
    """The legacy solution's ``model_complexity`` of landmark model ``model`` ('full' or 'heavy').

    Raises:
        InputError: another name.
    """
    if model not in MEDIAPIPE_MODELS:
        raise InputError(f"unknown MediaPipe model {model!r}; known: {', '.join(MEDIAPIPE_MODELS)}")
    return MEDIAPIPE_MODELS[model]


def landmark_folder() -> Path:
    """The installed wheel's folder of landmark models (``mediapipe/modules/pose_landmark``)."""
    return Path(import_mediapipe().__file__).parent / "modules" / "pose_landmark"


def landmark_model_path(model: str = "full") -> Path:
    """The ``.tflite`` of landmark model ``model`` ('full' or 'heavy') in the installed wheel's folder.

    Raises:
        InputError: an unknown model name. MissingDependencyError: mediapipe is missing, or the file is not there
        (for 'heavy' the message says how to install it).
    """
    model_complexity(model)
    path = landmark_folder() / f"pose_landmark_{model}.tflite"
    if not path.is_file():
        if model == "heavy":
            raise MissingDependencyError(f"MediaPipe's heavy pose model is not installed (no {path}): {HEAVY_HINT}")
        raise MissingDependencyError(f"mediapipe's wheel has no {path.name} (expected at {path}): {INSTALL_HINT}")
    return path


def _heavy_bytes(source: Path) -> bytes:
    """The heavy model's bytes from ``source``: the npm package's .tgz, or the .tflite itself."""
    if not source.is_file():
        raise InputError(f"{source}: no such file")
    if source.suffix == ".tflite":
        return source.read_bytes()
    try:
        with tarfile.open(source, "r:*") as tar:
            member = next((m for m in tar.getmembers() if m.isfile() and Path(m.name).name == HEAVY_FILE), None)
            if member is None:
                raise InputError(f"{source}: no {HEAVY_FILE} inside (expected the npm package {HEAVY_NPM_PACKAGE})")
            f = tar.extractfile(member)
            return f.read() if f is not None else b""
    except (tarfile.TarError, OSError, EOFError) as e:
        raise InputError(f"{source}: not a readable .tgz or .tflite ({e})") from None


def install_heavy_model(source: str | Path, folder: Path | None = None) -> Path:
    """Copy MediaPipe's heavy landmark model from ``source`` (the npm package ``@mediapipe/pose`` as a .tgz, or its
    ``pose_landmark_heavy.tflite``) into ``folder`` (default: the installed wheel's, ``landmark_folder``), after
    checking that it is the known release (SHA-256). Written under a temporary name and renamed.

    Returns:
        the installed file's path.
    Raises:
        InputError: unreadable source, or a file that is not the known release. MocliError: the folder is not
        writable.
    """
    data = _heavy_bytes(Path(source))
    digest = hashlib.sha256(data).hexdigest()
    if digest != HEAVY_SHA256:
        raise InputError(f"{source}: {HEAVY_FILE} has SHA-256 {digest[:16]}..., not the release mocli knows "
                         f"({HEAVY_SHA256[:16]}..., {HEAVY_NPM_PACKAGE})")  # fmt: skip
    folder = landmark_folder() if folder is None else Path(folder)
    target = folder / HEAVY_FILE
    tmp = folder / f".{HEAVY_FILE}.part"
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise MocliError(f"cannot write {target}: {e.strerror or e}") from None
    return target
