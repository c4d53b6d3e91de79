"""Muting what native libraries write straight to file descriptor 2, while Python's own stderr keeps working.

MediaPipe's C++ graph and TensorFlow Lite log to fd 2 from their own threads ("INFO: Created TensorFlow Lite XNNPACK
delegate", absl warnings), bypassing Python's logging and ``-q``. Inside ``native_stderr_muted()`` fd 2 points to
/dev/null and ``sys.stderr`` is a new stream on a copy of the real stderr, so mocli's messages, progress bars and
errors (rich reads ``sys.stderr`` when it prints) still reach the terminal.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

__all__ = ["native_stderr_muted"]


@contextlib.contextmanager
def native_stderr_muted() -> Iterator[None]:
    """fd 2 -> /dev/null for native code; ``sys.stderr`` -> the real stderr for Python code. Restored on exit."""
    python_stderr = sys.stderr
    with contextlib.suppress(Exception):
        python_stderr.flush()
    saved = os.dup(2)
    stream = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="backslashreplace")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    sys.stderr = stream
    try:
        yield
    finally:
        stream.flush()
        sys.stderr = python_stderr
        stream.close()
        os.dup2(saved, 2)
        os.close(saved)
