"""The result folder of one input, ``OUT/<name>/``: locked while written, swapped in whole when complete.

A result folder holds one run. It is written in a hidden sibling, ``OUT/.<name>.part-XXXX/``, and renamed to
``OUT/<name>`` only when everything in it (``summary.json`` last) is written, so a crash, a full disk or a kill leaves
the earlier result as it was: complete, or absent. An earlier folder is replaced whole, so files the new run does not
write (``motion.bvh`` of an earlier ``--bvh`` run, say) do not stay behind.

OUT/.<name>.mocli.lock        held while a process writes <name> (OutputLock); another process skips the input
OUT/.<name>.part-XXXX/        the new result being written (staged_result)
OUT/.<name>.old-XXXX/         the earlier result, for the moment between the two renames of the swap

No numpy or torch here: the command line imports this module at start-up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mocli.errors import InputError, MocliError
from mocli.utils.io import current_umask

__all__ = ["SUMMARY", "OutputBusy", "OutputLock", "is_complete", "staged_result", "failure_message"]

log = logging.getLogger(__name__)

SUMMARY = "summary.json"
LOCK_SUFFIX = ".mocli.lock"
# Names mocli writes in a result folder: an existing folder holding anything else is not replaced.
_OUTPUT_STEMS = ("joints3d", "motion", "preview", "actions", "mesh", "summary")


class OutputBusy(InputError):
    """The result folder is being written by another mocli process (the input is skipped, not failed)."""


def is_complete(out_dir: Path) -> bool:
    """A result folder is complete when its summary.json exists (it is written last)."""
    return (out_dir / SUMMARY).is_file()


def lock_path(out_dir: Path) -> Path:
    """The lock file of a result folder: ``OUT/.<name>.mocli.lock``, beside the folder (which is replaced whole)."""
    return out_dir.parent / f".{out_dir.name}{LOCK_SUFFIX}"


class OutputLock:
    """An exclusive lock file beside a result folder, so two processes never write the same result.

    A lock left by a process that no longer runs (same host) is taken over.

    Raises:
        OutputBusy: another live process holds the lock.
    """

    def __init__(self, out_dir: Path):
        self.path = lock_path(Path(out_dir))
        self.out_dir = Path(out_dir)

    def __enter__(self) -> OutputLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self._stale():
                    self.path.unlink(missing_ok=True)
                    continue
                raise OutputBusy(f"{self.out_dir} is being written by another mocli process") from None
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(json.dumps({"pid": os.getpid(), "host": platform.node()}))
            except BaseException:
                self.path.unlink(missing_ok=True)
                raise
            return self
        raise InputError(f"{self.out_dir}: cannot take the output lock")

    def _stale(self) -> bool:
        try:
            info = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return True
        if info.get("host") != platform.node():
            return False
        try:
            os.kill(int(info["pid"]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, KeyError, ValueError, TypeError):
            return False
        return False

    def __exit__(self, *exc: object) -> None:
        self.path.unlink(missing_ok=True)


def _siblings(out_dir: Path, kind: str) -> list[Path]:
    """Hidden work folders of ``out_dir`` left by earlier runs: ``.<name>.part-*`` or ``.<name>.old-*``."""
    prefix = f".{out_dir.name}.{kind}-"
    try:
        return sorted(p for p in out_dir.parent.iterdir() if p.name.startswith(prefix) and p.is_dir())
    except OSError:
        return []


def _recover(out_dir: Path) -> None:
    """Tidy what a killed run left (call with the lock held): an earlier result moved aside goes back, stale
    part folders go."""
    if not out_dir.exists():
        old = [p for p in _siblings(out_dir, "old") if is_complete(p)] or _siblings(out_dir, "old")
        if old:
            os.rename(old[-1], out_dir)
            log.info("%s: restored the earlier result a killed run had moved aside", out_dir)
    for stale in _siblings(out_dir, "part") + _siblings(out_dir, "old"):
        shutil.rmtree(stale, ignore_errors=True)


def _check_replaceable(out_dir: Path) -> None:
    """An existing ``out_dir`` may be replaced only when it is a folder of mocli outputs (complete or not)."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise InputError(f"{out_dir} exists and is not a folder; move it or give another --out")
    foreign = [p.name for p in out_dir.iterdir() if not p.name.startswith(".") and not p.name.startswith(_OUTPUT_STEMS)]
    if foreign:
        raise InputError(
            f"{out_dir} holds files mocli did not write ({', '.join(sorted(foreign)[:3])}); "
            "move them or give another --out"
        )


def _swap_in(new: Path, out_dir: Path) -> None:
    """Rename the complete ``new`` folder to ``out_dir``; an earlier ``out_dir`` is moved aside first, then removed."""
    if not out_dir.exists():
        os.rename(new, out_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    os.rename(out_dir, old)  # replaces the empty placeholder made by mkdtemp
    try:
        os.rename(new, out_dir)
    except BaseException:
        os.rename(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staged_result(out_dir: Path, overwrite: bool = False) -> Iterator[Path | None]:
    """Lock ``out_dir``, yield a fresh hidden sibling folder to write the result in, and swap it in on success.

    Yields None (and writes nothing) when ``out_dir`` is complete and ``overwrite`` is off: another process may have
    completed it while this one waited. On any error the new folder is removed and ``out_dir`` is left as it was.

    Raises:
        OutputBusy: another process is writing ``out_dir``.
        InputError: ``out_dir`` is a file, or a folder with files mocli did not write.
    """
    out_dir = Path(out_dir)
    with OutputLock(out_dir):
        _recover(out_dir)
        if is_complete(out_dir) and not overwrite:
            yield None
            return
        _check_replaceable(out_dir)
        new = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.part-", dir=out_dir.parent))
        try:
            os.chmod(new, 0o777 & ~current_umask())  # mkdtemp makes 0700 folders; results get the usual permissions
            yield new
            _swap_in(new, out_dir)
        finally:
            shutil.rmtree(new, ignore_errors=True)  # gone already after the swap


def failure_message(path: Path | str, error: Exception) -> str:
    """One line naming the file: a MocliError's own message, else the exception type and text."""
    message = str(error) if isinstance(error, MocliError) else f"{type(error).__name__}: {error}"
    return message if str(path) in message else f"{path}: {message}"
