"""Paired training sources (a real detector's 2D with the 3D truth in the same camera) in ``LiftClipDataset``: known
answers for the input, the label, confidences, augmentations, flips and the HDF5 attributes."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest

from mocli.config import DataConfig
from mocli.data.cameras import Camera, focal_from_fov, identity_camera, image_25d, project_perspective
from mocli.data.clips import LiftClipDataset, build_clip_index, detected_share, view_range
from mocli.data.h5 import Sequence, write_dataset
from mocli.data.sources import MotionSource, load_sources
from mocli.data.transforms import crop_box, flip_clip
from mocli.errors import InputError

T = 20
# A camera whose focal length and centre are those of identity_camera(view_range(CFG)) (90 degrees, 1000 x 1000).
CAMERA = Camera(R=np.eye(3), t=np.zeros(3), focal=focal_from_fov(90.0, 1000), centre=np.array([500.0, 500.0]),
                image_size=(1000, 1000))  # fmt: skip
CFG = DataConfig(clip_len=T, stride=T, fov_deg=(90.0, 90.0), image_size=(1000, 1000), noise=False, flip_prob=0.0,
                 mask_joint_ratio=0.0, mask_frame_ratio=0.0, root_relative=False)  # fmt: skip
AUGMENTED = dict(body_scale=(0.8, 1.2), bone_scale=(0.9, 1.1), bone_asymmetry=0.03, bend_prob=1.0, trunk_prob=1.0,
                 tilt_prob=1.0, speed_fps=(15.0, 60.0), shift_prob=1.0)  # fmt: skip
FAULTS = dict(noise=True, occlusion_rate=20.0, swap_rate=20.0, jitter_rate=20.0)


def _motion(num_frames: int = T, seed: int = 0) -> np.ndarray:
    """(T, 17, 3) float32 metres, camera frame (x right, y down, z forward): a standing body 4 m in front of the
    camera, pelvis on the optical axis, drifting to the right and moving its joints a little."""
    heights = np.array([0.9, 0.9, 0.5, 0.1, 0.9, 0.5, 0.1, 1.15, 1.4, 1.5, 1.7, 1.4, 1.15, 0.9, 1.4, 1.15, 0.9])
    side = np.array([0, -1, -1, -1, 1, 1, 1, 0, 0, 0, 0, 1.2, 1.3, 1.3, -1.2, -1.3, -1.3]) * 0.15
    pose = np.stack([side, 0.9 - heights, np.full(17, 4.0)], axis=-1)
    drift = np.arange(num_frames)[:, None, None] * np.array([0.02, 0.0, 0.01])
    wobble = np.random.default_rng(seed).normal(0.0, 0.02, size=(num_frames, 17, 3))
    return (pose[None] + drift + wobble).astype(np.float32)


def _detect(joints: np.ndarray, camera: Camera = CAMERA) -> np.ndarray:
    """(T, 17, 3) float32: the exact pinhole projection of camera-frame joints (pixels) with confidence 1."""
    xy = project_perspective(joints.astype(np.float64), camera.focal, camera.centre)
    return np.concatenate([xy, np.ones(xy.shape[:-1] + (1,))], axis=-1).astype(np.float32)


def _paired(keypoints: np.ndarray | None = None, joints: np.ndarray | None = None) -> MotionSource:
    joints = _motion() if joints is None else joints
    keypoints = _detect(joints) if keypoints is None else keypoints
    return MotionSource(name="paired", fps=30.0, joints3d=joints, keypoints2d=keypoints, frame="camera", camera=CAMERA)


def _sample(source: MotionSource, seed: int = 3, **changes) -> dict[str, np.ndarray]:
    data = LiftClipDataset([source], dataclasses.replace(CFG, **changes), seed=seed)
    return {k: v.numpy() for k, v in data[(0, 0)].items()}


def test_exact_detections_give_the_label_xy_and_the_label_of_the_camera_frame_path():
    assert identity_camera(view_range(CFG)).focal == CAMERA.focal
    paired = _sample(_paired())
    np.testing.assert_allclose(paired["input"][..., :2], paired["target"][..., :2], atol=1e-5)
    np.testing.assert_array_equal(paired["input"][..., 2], 1.0)
    plain_source = MotionSource(name="plain", fps=30.0, joints3d=_motion(), frame="camera")
    for root_relative in (False, True):
        plain = _sample(plain_source, root_relative=root_relative)
        with_detections = _sample(_paired(), root_relative=root_relative)
        for key in ("target", "factor", "weight_2d", "has_3d"):
            np.testing.assert_array_equal(with_detections[key], plain[key])


def test_a_keypoint_moved_12_px_right_moves_its_input_by_12_px_in_the_labels_box_and_nothing_else():
    joints = _motion()
    box = crop_box(image_25d(joints.astype(np.float64), CAMERA)[0][..., :2])  # scale_range (1, 1): the label's box
    moved = _detect(joints)
    moved[7, 13, 0] += 12.0  # left wrist, frame 7
    diff = _sample(_paired(moved, joints))["input"] - _sample(_paired(None, joints))["input"]
    assert diff[7, 13, 0] == pytest.approx(12.0 * box.scale, abs=1e-6)  # box.scale = 2 / side normalised per px
    diff[7, 13, 0] = 0.0
    np.testing.assert_array_equal(diff, 0.0)


def test_the_input_carries_the_detectors_confidence_and_missed_joints_are_all_zero():
    keypoints = _detect(_motion())
    keypoints[5, 14, 2] = 0.4  # right shoulder, frame 5: seen with confidence 0.4
    keypoints[9, 3] = 0.0  # right ankle, frame 9: missed (x = y = confidence = 0)
    keypoints[12] = 0.0  # frame 12: no detection
    sample, full = _sample(_paired(keypoints)), _sample(_paired())
    assert sample["input"][5, 14, 2] == pytest.approx(0.4)
    np.testing.assert_array_equal(sample["input"][5, 14, :2], full["input"][5, 14, :2])
    np.testing.assert_array_equal(sample["input"][9, 3], 0.0)
    np.testing.assert_array_equal(sample["input"][12], 0.0)
    np.testing.assert_array_equal(sample["target"], full["target"])  # the box comes from the label


def test_noise_and_detector_faults_skip_paired_sources_and_masks_do_not():
    paired = _sample(_paired())
    np.testing.assert_array_equal(_sample(_paired(), **FAULTS)["input"], paired["input"])
    plain_source = MotionSource(name="plain", fps=30.0, joints3d=_motion(), frame="camera")
    assert not np.allclose(_sample(plain_source, **FAULTS)["input"], _sample(plain_source)["input"])
    masked = _sample(_paired(), mask_joint_ratio=0.2, mask_frame_ratio=0.2)["input"]
    dropped = (masked == 0).all(axis=-1)
    assert dropped.all(axis=-1).any() and 0 < dropped.sum() < dropped.size  # whole frames and single joints
    np.testing.assert_array_equal(masked[~dropped], paired["input"][~dropped])


def test_3d_augmentations_and_definition_shifts_skip_paired_sources():
    on, off = _sample(_paired(), **AUGMENTED), _sample(_paired())
    for key in ("input", "target", "factor"):
        np.testing.assert_array_equal(on[key], off[key])
    plain_source = MotionSource(name="plain", fps=30.0, joints3d=_motion(), frame="camera")
    assert not np.allclose(_sample(plain_source, **AUGMENTED)["target"], _sample(plain_source)["target"], atol=1e-3)


def test_a_flip_mirrors_input_and_label_together():
    keypoints = _detect(_motion())
    keypoints[..., :2] += np.random.default_rng(1).normal(0.0, 3.0, size=keypoints[..., :2].shape)  # a detector's error
    keypoints[..., 2] = np.random.default_rng(2).uniform(0.3, 1.0, size=keypoints.shape[:2])
    source = _paired(keypoints)
    straight, flipped = _sample(source, root_relative=True), _sample(source, root_relative=True, flip_prob=1.0)
    assert not np.allclose(flipped["input"], straight["input"])
    for key in ("input", "target"):
        np.testing.assert_allclose(flipped[key], flip_clip(straight[key]), atol=1e-6)
    np.testing.assert_array_equal(flipped["factor"], straight["factor"])


def _sequence(name: str = "take1", **changes) -> Sequence:
    """A paired sequence of a 640 x 480 video, principal point off the image centre."""
    joints = _motion(num_frames=40)
    camera = dataclasses.replace(CAMERA, focal=900.0, centre=np.array([320.5, 241.0]), image_size=(640, 480))
    extra = {"focal_px": 900.0, "principal_x_px": 320.5, "principal_y_px": 241.0}
    fields = dict(name=name, fps=30.0, joints3d=joints, keypoints2d=_detect(joints, camera), frame="camera",
                  image_size=(640, 480), extra=extra)  # fmt: skip
    return Sequence(**{**fields, **changes})


def test_a_paired_h5_sequence_loads_as_the_in_memory_source_and_others_are_unchanged(tmp_path):
    seq = _sequence()
    camera_only = _sequence("camera_only", keypoints2d=None)  # camera-frame 3D without detections
    no_focal = _sequence("no_focal", extra={})  # camera-frame 3D and 2D, no camera attributes
    detections_only = _sequence("detections_only", joints3d=None)
    write_dataset(tmp_path / "paired.h5", [seq, camera_only, no_focal, detections_only], kind="test")
    sources = {s.name: s for s in load_sources([tmp_path / "paired.h5"])}
    assert sorted(sources) == ["camera_only", "detections_only#0", "no_focal", "take1"]
    loaded = sources["take1"]
    assert loaded.is_paired and loaded.camera.focal == 900.0 and loaded.camera.image_size == (640, 480)
    np.testing.assert_array_equal(loaded.camera.centre, [320.5, 241.0])
    np.testing.assert_array_equal(loaded.camera.R, np.eye(3))
    np.testing.assert_array_equal(loaded.camera.t, np.zeros(3))
    for name in ("camera_only", "no_focal"):
        assert not sources[name].is_paired and sources[name].keypoints2d is None
    assert not sources["detections_only#0"].is_3d

    camera = Camera(R=np.eye(3), t=np.zeros(3), focal=900.0, centre=np.array([320.5, 241.0]), image_size=(640, 480))
    in_memory = MotionSource(name="take1", fps=30.0, joints3d=seq.joints3d, keypoints2d=seq.keypoints2d,
                             frame="camera", camera=camera)  # fmt: skip
    cfg = dataclasses.replace(CFG, stride=10, flip_prob=0.5)
    from_file, from_arrays = (LiftClipDataset([s], cfg, seed=4) for s in (loaded, in_memory))
    assert len(from_file) == 3 and not from_file.index.is_2d.any()
    for i in range(3):
        sample = from_file[(1, i)]
        for key, value in sample.items():
            np.testing.assert_array_equal(value, from_arrays[(1, i)][key])
        # the label is seen through the file's camera (900 px, off-centre), as the detections were
        np.testing.assert_allclose(sample["input"][..., :2], sample["target"][..., :2], atol=1e-5)

    halved = {s.name: s for s in load_sources([tmp_path / "paired.h5"], fps=15.0)}["take1"]
    np.testing.assert_array_equal(halved.keypoints2d, seq.keypoints2d[::2])
    np.testing.assert_array_equal(halved.joints3d, seq.joints3d[::2])
    assert halved.fps == 15.0 and halved.camera.focal == 900.0  # the camera does not change with the rate


@pytest.mark.parametrize("focal", [0.0, -900.0, float("nan"), float("inf")])
def test_a_bad_focal_is_a_one_line_error_naming_the_sequence(tmp_path, focal):
    seq = _sequence()
    write_dataset(tmp_path / "bad.h5", [_sequence(extra={**seq.extra, "focal_px": focal})], kind="test")
    with pytest.raises(InputError, match=r"take1: focal_px .* not a positive number"):
        load_sources([tmp_path / "bad.h5"])


def test_detections_and_joints_of_different_lengths_are_a_one_line_error_naming_the_sequence(tmp_path):
    path = tmp_path / "short.h5"
    seq = _sequence()
    write_dataset(path, [seq], kind="test")
    with h5py.File(path, "a") as f:  # a file the writer would refuse: keypoints2d one frame short
        group = f["sequences/take1"]
        del group["keypoints2d"]
        group.create_dataset("keypoints2d", data=seq.keypoints2d[:-1])
    with pytest.raises(InputError, match=r"take1: keypoints2d \(39, 17, 3\) and joints3d \(40, 17, 3\) disagree"):
        load_sources([path])
    with pytest.raises(InputError, match="paired: keypoints2d"):
        _paired(_detect(_motion())[:-1])


def test_a_focal_without_the_principal_point_is_a_one_line_error(tmp_path):
    write_dataset(tmp_path / "partial.h5", [_sequence(extra={"focal_px": 900.0})], kind="test")
    with pytest.raises(InputError, match="take1: focal_px without principal_x_px, principal_y_px"):
        load_sources([tmp_path / "partial.h5"])


def test_paired_windows_where_the_detector_found_the_person_in_under_half_the_frames_are_left_out():
    """200 frames, the person found in the first 100 only; windows of 81 every 54 start at 0, 54, 108, 119 and
    hold 81/81, 46/81, 0 and 0 detected frames: the first two are kept; a plain 3D source keeps all four."""
    joints = _motion(200)
    keypoints = _detect(joints)
    keypoints[100:] = 0.0
    np.testing.assert_allclose(detected_share(keypoints, np.array([0, 54, 108, 119]), 81), [1.0, 46 / 81, 0.0, 0.0])
    paired = _paired(keypoints, joints)
    plain = MotionSource(name="plain", fps=30.0, joints3d=joints, frame="camera")
    index = build_clip_index([paired, plain], clip_len=81, stride=54)
    assert index.source.tolist() == [0, 0, 1, 1, 1, 1]
    assert index.start.tolist() == [0, 54, 0, 54, 108, 119]
