"""native_stderr_muted: native writes to fd 2 vanish, Python's stderr (and logging set up on it) still prints."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import logging, os, sys
    import numpy as np
    from mocli.keypoints.extract import detect_video
    from mocli.utils.native_logs import native_stderr_muted

    os.write(2, b"before\\n")
    with native_stderr_muted():
        os.write(2, b"native inside\\n")
        print("python inside", file=sys.stderr)
    os.write(2, b"after\\n")

    class Noisy:
        name, skeleton, multi_person, mutes_native_logs = "noisy", "coco", False, True
        def detect(self, frame):
            os.write(2, b"native detect\\n")
            print("python detect", file=sys.stderr)
            return []
        def close(self):
            pass

    import mocli.keypoints.extract as ex
    ex.read_frames = lambda path, max_frames=None: iter([np.zeros((4, 4, 3), np.uint8)] * 2)
    print(len(detect_video("x.mp4", Noisy())), file=sys.stderr)
    os.write(2, b"end\\n")
    """
)


def test_native_writes_are_muted_and_python_stderr_is_kept():
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stderr.splitlines() == [
        "before",
        "python inside",
        "after",
        "python detect",
        "python detect",
        "2",
        "end",
    ]
