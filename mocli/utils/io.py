"""Safe file writing: outputs appear complete or not at all."""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error remove it.

    The temporary name keeps the suffix (so writers that look at it, like numpy or h5py, behave) and starts with a
    dot so that globbing for outputs does not pick up a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~current_umask())  # mkstemp makes 0600 files; outputs get the usual permissions
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def save_npz(path: str | os.PathLike, arrays: Mapping[str, Any], compressed: bool = True) -> Path:
    """``np.savez_compressed`` (or ``np.savez``) to ``path``, atomically, and safe when a write fails.

    numpy leaves its zip archive open when a write fails (a full disk), and the archive's finaliser then prints an
    "Exception ignored ... Traceback" after the error. Here the archive is closed on every path, the first error
    propagates, and the temporary file is removed. Arrays are stored as numpy stores them (``<key>.npy`` members,
    zip64, no pickles), so ``np.load`` reads the file back as usual.
    """
    import numpy as np

    compression = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        archive = zipfile.ZipFile(f, mode="w", compression=compression, allowZip64=True)
        try:
            for key, value in arrays.items():
                with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
        except BaseException:
            with contextlib.suppress(Exception):  # the first error is the one to report
                archive.close()
            raise
        archive.close()
    return Path(path)


def current_umask() -> int:
    """The process's file-creation mask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
