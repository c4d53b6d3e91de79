"""mocli.video on the real example video, broken files and synthetic videos; extraction with a fake detector."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from mocli.errors import InputError
from mocli.keypoints.base import Detection
from mocli.keypoints.extract import extract_keypoints
from mocli.video import decide_fps, probe_video, read_frames, resolve_video_inputs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sports2d_demo.mp4"


def write_video(path: Path, num_frames: int, size: tuple[int, int] = (96, 64), fps: float = 25.0) -> Path:
    """A video of uniform grey frames whose brightness is the frame index (so frames can be told apart)."""
    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.suffix == ".mp4" else "MJPG"))
    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
    assert writer.isOpened()
    for t in range(num_frames):
        writer.write(np.full((size[1], size[0], 3), 10 * t, np.uint8))
    writer.release()
    return path


def test_example_video_probe_and_full_decode():
    info = probe_video(EXAMPLE)
    assert (info.width, info.height, info.fps, info.num_frames) == (1768, 994, 30.0, 230)
    assert info.image_size == (1768, 994)
    count, frame = 0, None
    for frame in read_frames(EXAMPLE):  # noqa: B007 (the last frame is checked below)
        count += 1
    assert count == 230
    assert frame.shape == (994, 1768, 3) and frame.dtype == np.uint8


def test_max_frames_stops_early():
    frames = list(read_frames(EXAMPLE, max_frames=3))
    assert len(frames) == 3


def test_truncated_copies_are_input_errors(tmp_path):
    data = EXAMPLE.read_bytes()
    for n in (2_000, 50_000):  # header cut / header intact but no frame data
        path = tmp_path / f"cut{n}.mp4"
        path.write_bytes(data[:n])
        with pytest.raises(InputError, match=str(path)):
            list(read_frames(path))


def test_text_file_renamed_and_other_bad_paths(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n")
    with pytest.raises(InputError, match="cannot open as a video"):
        probe_video(fake)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty.mp4"):
        list(read_frames(empty))
    text = tmp_path / "x.txt"
    text.write_text("x")
    with pytest.raises(InputError, match="unsupported extension '.txt'"):
        probe_video(text)
    with pytest.raises(InputError, match="no such file"):
        probe_video(tmp_path / "missing.mp4")


def test_synthetic_video_frames_in_order(tmp_path):
    path = write_video(tmp_path / "grey.avi", 7)
    info = probe_video(path)
    assert (info.width, info.height, info.fps) == (96, 64, 25.0)
    means = [float(f.mean()) for f in read_frames(path)]
    np.testing.assert_allclose(means, 10 * np.arange(7), atol=2)


def test_fifo_named_mp4_is_refused_at_once(tmp_path):
    fifo = tmp_path / "x.mp4"
    os.mkfifo(fifo)  # opening it for reading would block until a writer comes
    with pytest.raises(InputError, match="x.mp4: not a regular file"):
        probe_video(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        list(read_frames(fifo))


def test_frame_rate_from_timestamps_when_the_header_is_nonsense(caplog):
    # a time scale of 0 in the header, but frames 40 ms apart: 25 fps, said in a warning
    assert decide_fps(0.002, [0.0, 40.0, 80.0, 120.0, 160.0], "v.mp4") == pytest.approx(25.0)
    assert "reports 0.002 fps; using 25 fps from the frame timestamps" in caplog.text
    # the median step, 0 ms steps left out
    assert decide_fps(0.0, [0.0, 33.3, 66.7, 100.0, 100.0], "v.mp4") == pytest.approx(1000 / 33.3)
    for reported, stamps in ((0.002, [0.0, 5e5, 1e6]), (0.0, [0.0, 0.0, 0.0]), (1e4, [0.0, 0.1, 0.2]), (0.0, [])):
        with pytest.raises(InputError, match="v.mp4: the container reports .* fps and the frame timestamps give no"):
            decide_fps(reported, stamps, "v.mp4")


@pytest.mark.parametrize("fps", [0.002, 10000.0])
def test_video_whose_stream_says_a_nonsense_rate_is_refused(tmp_path, fps):
    path = write_video(tmp_path / "odd.mp4", 5, fps=fps)  # header and timestamps agree on the nonsense
    with pytest.raises(InputError, match="odd.mp4: the container reports"):
        probe_video(path)


def test_resolve_inputs_files_folders_globs(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.mp4", "a/b/y.MOV", "a/b/notes.txt", "z.avi"):
        (tmp_path / name).write_bytes(b"")
    found = resolve_video_inputs([str(tmp_path / "a"), str(tmp_path / "*.avi"), str(tmp_path / "a" / "x.mp4")])
    assert [r.path.relative_to(tmp_path).as_posix() for r in found] == ["a/b/y.MOV", "a/x.mp4", "z.avi"]
    bad = resolve_video_inputs([str(tmp_path / "*.mkv"), str(tmp_path / "a" / "b" / "notes.txt")])
    assert bad[0].path is None and "no video files match" in bad[0].error
    assert bad[1].path is not None  # explicit files are kept, so that decoding reports them by name


class FakeDetector:
    """Two people on a synthetic video, placed by the frame's brightness (= 10 x frame index)."""

    name = "fake"
    skeleton = "coco"
    multi_person = True

    def __init__(self, missing: dict[int, set[int]]) -> None:
        self.missing = missing  # person -> frames without a detection

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        t = int(round(frame_bgr.mean() / 10))
        out = []
        for p, (x0, size) in enumerate(((100.0, 200.0), (600.0, 100.0))):
            if t in self.missing.get(p, set()):
                continue
            kp = np.zeros((17, 3), np.float32)
            kp[:, 0], kp[:, 1], kp[:, 2] = x0 + 5 * t + np.arange(17), 50 + np.arange(17) * size / 17, 0.8
            out.append(Detection(kp, [x0 + 5 * t, 50, x0 + 5 * t + size, 50 + size], 0.9))
        return out

    def close(self) -> None:
        pass


def test_extract_with_fake_detector_keeps_every_frame(tmp_path):
    path = write_video(tmp_path / "two.avi", 12)
    detector = FakeDetector({0: {4, 5}, 1: set(range(6, 12))})
    (big,) = extract_keypoints(path, detector, max_gap=2)
    assert big.num_frames == 12 and big.track_id == 1 and big.image_size == (96, 64) and big.fps == 25.0
    assert big.interpolated.tolist() == [False] * 4 + [True] * 2 + [False] * 6
    np.testing.assert_allclose(big.keypoints[:, 0, 0], 100 + 5 * np.arange(12) + 11.5, atol=1e-4)  # mean of hips
    both = extract_keypoints(path, detector, person="all", max_gap=0, max_frames=8)
    assert [s.track_id for s in both] == [1, 2] and both[1].valid.tolist() == [True] * 6 + [False] * 2


def test_blank_video_gives_no_person_detected(tmp_path):
    pytest.importorskip("mediapipe")
    from mocli.keypoints import create_detector

    path = write_video(tmp_path / "blank.mp4", 5, size=(128, 96))
    with pytest.raises(InputError, match=r"no person detected in .*blank.mp4"):
        extract_keypoints(path, create_detector("mediapipe"))
