"""Known-answer tests for mocli.keypoints.npz (the plain npz) and mocli.keypoints.formats (other tools' JSON).

Every fixture is written in the tool's exact layout inside tmp_path. Keypoint values are chosen so that H36M joints
can be computed by hand: for joint j of the source layout in frame f, x = 10 j + f, y = 100 + 10 j + 2 f,
score = 0.5 + j / 100.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from mocli.errors import InputError
from mocli.keypoints import import_keypoints, load_keypoints_npz, save_keypoints_npz
from mocli.keypoints.sequence import KeypointSequence
from mocli.skeleton import H36M_17


def joints(num_joints: int, frame: int, offset: float = 0.0) -> np.ndarray:
    """(J, 3) known keypoints of one person in one frame (see the module docstring); offset shifts x."""
    j = np.arange(num_joints)
    return np.stack([10.0 * j + frame + offset, 100 + 10.0 * j + 2 * frame, 0.5 + j / 100], axis=1)


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def alphapose_results(num_joints: int) -> list[dict]:
    """Track 1 in frames 0, 1, 3 (small box), track 2 in frames 0..3 (big box); image ids as AlphaPose writes them."""
    entries = []
    for frame in range(4):
        for idx, box in ((1, [0, 0, 50, 100]), (2, [0, 0, 100, 200])):
            if idx == 1 and frame == 2:
                continue
            kp = joints(num_joints, frame, offset=1000 * (idx - 1))
            entries.append(
                {"image_id": f"{frame}.jpg", "category_id": 1, "keypoints": kp.reshape(-1).tolist(),
                 "score": 2.5, "box": box, "idx": idx}
            )  # fmt: skip
    return entries


# --------------------------------------------------------------------------------------------- AlphaPose


def test_alphapose_coco17_track1_missing_frame_stays_nan(tmp_path):
    path = write_json(tmp_path / "alphapose-results.json", alphapose_results(17))
    (seq,) = import_keypoints(path, "alphapose", image_size=(640, 480), fps=25.0, person=1)
    assert seq.keypoints.shape == (4, 17, 3)
    assert seq.track_id == 1 and seq.image_size == (640, 480) and seq.fps == 25.0
    assert seq.valid.tolist() == [True, True, False, True]
    assert np.isnan(seq.keypoints[2, :, :2]).all() and (seq.keypoints[2, :, 2] == 0).all()
    f = 3
    # pelvis = mean(l_hip 11, r_hip 12): x = 115 + f, y = 215 + 2 f, conf = min(0.61, 0.62)
    np.testing.assert_allclose(seq.keypoints[f, 0], [115 + f, 215 + 2 * f, 0.61], rtol=1e-6)
    # thorax = mean(shoulders 5, 6); spine = mean(pelvis, thorax); head = mean(eyes 1, 2)
    np.testing.assert_allclose(seq.keypoints[f, 8], [55 + f, 155 + 2 * f, 0.55], rtol=1e-6)
    np.testing.assert_allclose(seq.keypoints[f, 7], [85 + f, 185 + 2 * f, 0.55], rtol=1e-6)
    np.testing.assert_allclose(seq.keypoints[f, 10], [15 + f, 115 + 2 * f, 0.51], rtol=1e-6)
    # nose = COCO 0; right knee (H36M 2) = COCO 14; left wrist (H36M 13) = COCO 9
    np.testing.assert_allclose(seq.keypoints[f, 9], [f, 100 + 2 * f, 0.50], rtol=1e-6)
    np.testing.assert_allclose(seq.keypoints[f, 2], [140 + f, 240 + 2 * f, 0.64], rtol=1e-6)
    np.testing.assert_allclose(seq.keypoints[f, 13], [90 + f, 190 + 2 * f, 0.59], rtol=1e-6)


def test_alphapose_halpe26_largest_is_track2(tmp_path):
    path = write_json(tmp_path / "alphapose-results.json", alphapose_results(26))
    (seq,) = import_keypoints(path, "alphapose", image_size=(640, 480), fps=30.0)
    assert seq.track_id == 2 and seq.valid.all()
    f = 2
    # Halpe: pelvis = Hip 19, thorax = Neck 18, spine = mean(18, 19), head = Head 17; track 2's x is +1000
    np.testing.assert_allclose(seq.keypoints[f, 0], [1190 + f, 290 + 2 * f, 0.69], rtol=1e-6)
    np.testing.assert_allclose(seq.keypoints[f, 8], [1180 + f, 280 + 2 * f, 0.68], rtol=1e-6)
    np.testing.assert_allclose(seq.keypoints[f, 7], [1185 + f, 285 + 2 * f, 0.68], rtol=1e-6)
    np.testing.assert_allclose(seq.keypoints[f, 10], [1170 + f, 270 + 2 * f, 0.67], rtol=1e-6)
    assert seq.extras["keypoints_halpe"].shape == (4, 26, 3)


def test_alphapose_all_people_and_gap_filling(tmp_path):
    path = write_json(tmp_path / "alphapose-results.json", alphapose_results(17))
    seqs = import_keypoints(path, "alphapose", image_size=(640, 480), person="all", max_gap=1)
    assert [s.track_id for s in seqs] == [1, 2]
    one = seqs[0]
    assert one.interpolated.tolist() == [False, False, True, False] and not one.valid[2]
    # frame 2 halfway between frames 1 and 3: pelvis x = 117, confidence 0.2 x 0.61
    np.testing.assert_allclose(one.keypoints[2, 0], [117, 219, 0.2 * 0.61], rtol=1e-6)


def test_alphapose_without_track_ids_is_tracked(tmp_path):
    entries = alphapose_results(17)
    for e in entries:
        e["idx"] = 0  # AlphaPose without --pose_track writes the same idx for everyone
    path = write_json(tmp_path / "a.json", entries)
    seqs = import_keypoints(path, "alphapose", image_size=(640, 480), person="all")
    assert len(seqs) == 2
    assert {tuple(s.valid.tolist()) for s in seqs} == {(True, True, False, True), (True, True, True, True)}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e[1].update(keypoints=[1.0] * 50), r"entry 1: field 'keypoints': 50 numbers"),
        (lambda e: e[0].pop("image_id"), r"entry 0: missing field 'image_id'"),
        (lambda e: e[2].update(image_id="frame.jpg"), r"entry 2: field 'image_id': cannot read a frame number"),
        (lambda e: e[0].update(keypoints=[1.0] * 60), r"20 keypoints; expected one of 17, 26"),
    ],
)
def test_alphapose_malformed_names_file_and_field(tmp_path, mutate, message):
    entries = alphapose_results(17)
    mutate(entries)
    path = write_json(tmp_path / "bad.json", entries)
    with pytest.raises(InputError, match=message) as info:
        import_keypoints(path, "alphapose", image_size=(640, 480))
    assert str(path) in str(info.value)


def test_invalid_json_and_missing_image_size(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[{"image_id": 0,')
    with pytest.raises(InputError, match=r"broken.json: not valid JSON"):
        import_keypoints(path, "alphapose", image_size=(640, 480))
    good = write_json(tmp_path / "good.json", alphapose_results(17))
    with pytest.raises(InputError, match="--image-size"):
        import_keypoints(good, "alphapose")


# --------------------------------------------------------------------------------------------- COCO


def test_coco_results_list_uses_image_ids_as_frames(tmp_path):
    entries = [
        {"image_id": f, "category_id": 1, "keypoints": joints(17, f).reshape(-1).tolist(), "score": 0.9,
         "bbox": [0, 0, 10, 10]}
        for f in (0, 2)
    ]  # fmt: skip
    entries.append({"image_id": 1, "category_id": 3, "keypoints": [0] * 51, "score": 0.9})  # a car: ignored
    (seq,) = import_keypoints(write_json(tmp_path / "res.json", entries), "coco", image_size=(100, 100))
    assert seq.valid.tolist() == [True, False, True]
    np.testing.assert_allclose(seq.keypoints[2, 0], [117, 219, 0.61], rtol=1e-6)


def test_coco_annotations_file_visibility_and_frames_from_file_names(tmp_path):
    kp = joints(17, 5)
    kp[:, 2] = 2  # visible
    kp[3] = [0, 0, 0]  # left ear not labelled
    kp[11, 2] = 1  # left hip labelled, occluded
    data = {
        "images": [{"id": 71, "file_name": "seq/000005.jpg", "width": 1920, "height": 1080},
                   {"id": 72, "file_name": "seq/000006.jpg", "width": 1920, "height": 1080}],
        "annotations": [{"id": 1, "image_id": 71, "category_id": 1, "keypoints": kp.reshape(-1).tolist(),
                         "num_keypoints": 16, "bbox": [0, 0, 300, 300]}],
        "categories": [{"id": 1, "name": "person"}],
    }  # fmt: skip
    (seq,) = import_keypoints(write_json(tmp_path / "ann.json", data), "coco")
    assert seq.image_size == (1920, 1080)
    assert seq.num_frames == 6 and seq.valid.tolist() == [False] * 5 + [True]
    np.testing.assert_allclose(seq.keypoints[5, 0], [115 + 5, 215 + 10, 1.0])  # v 1 and 2 -> confidence 1
    raw = seq.extras["keypoints_coco"][5]
    assert np.isnan(raw[3, :2]).all() and raw[3, 2] == 0  # unlabelled joint -> NaN, confidence 0


# --------------------------------------------------------------------------------------------- OpenPose


def openpose_frame(folder: Path, frame: int, people: list[np.ndarray]) -> None:
    data = {
        "version": 1.3,
        "people": [
            {"person_id": [-1], "pose_keypoints_2d": kp.reshape(-1).tolist(), "face_keypoints_2d": [],
             "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [], "pose_keypoints_3d": []}
            for kp in people
        ],
    }  # fmt: skip
    write_json(folder / f"clip_{frame:012d}_keypoints.json", data)


def test_openpose_folder_frames_from_file_names(tmp_path):
    folder = tmp_path / "openpose"
    for frame in (0, 1, 3):  # frame 2's file is missing
        kp = joints(25, frame)
        kp[18] = [0, 0, 0]  # left ear not found (not used by H36M)
        if frame == 1:
            kp[16] = [0, 0, 0]  # left eye not found: head (mean of the eyes) is missing
        openpose_frame(folder, frame, [kp])
    openpose_frame(folder, 2, [])  # a frame file with nobody in it
    (seq,) = import_keypoints(folder, "openpose", image_size=(1280, 720), fps=25.0)
    assert seq.valid.tolist() == [True, True, False, True]
    f = 3
    # BODY_25: pelvis = MidHip 8, thorax = Neck 1, spine = mean(1, 8), head = mean(REye 15, LEye 16), nose = 0
    np.testing.assert_allclose(seq.keypoints[f, 0], [80 + f, 180 + 2 * f, 0.58], rtol=1e-6)
    np.testing.assert_allclose(seq.keypoints[f, 8], [10 + f, 110 + 2 * f, 0.51], rtol=1e-6)
    np.testing.assert_allclose(seq.keypoints[f, 7], [45 + f, 145 + 2 * f, 0.51], rtol=1e-6)
    np.testing.assert_allclose(seq.keypoints[f, 10], [155 + f, 255 + 2 * f, 0.65], rtol=1e-6)
    # right hip (H36M 1) = RHip 9, left shoulder (H36M 11) = LShoulder 5
    np.testing.assert_allclose(seq.keypoints[f, 1], [90 + f, 190 + 2 * f, 0.59], rtol=1e-6)
    np.testing.assert_allclose(seq.keypoints[f, 11], [50 + f, 150 + 2 * f, 0.55], rtol=1e-6)
    assert np.isnan(seq.extras["keypoints_openpose"][f, 18, :2]).all()
    assert np.isnan(seq.keypoints[1, 10, :2]).all() and seq.keypoints[1, 10, 2] == 0
    assert np.isfinite(np.delete(seq.keypoints[1], 10, axis=0)).all()


def test_openpose_bad_file_name_and_field(tmp_path):
    folder = tmp_path / "op"
    write_json(folder / "clip_keypoints.json", {"people": []})
    with pytest.raises(InputError, match="_<frame number>_keypoints.json"):
        import_keypoints(folder, "openpose", image_size=(10, 10))
    (folder / "clip_keypoints.json").unlink()
    write_json(folder / "clip_000000000000_keypoints.json", {"people": [{"pose_keypoints_2d": [1.0] * 51}]})
    with pytest.raises(InputError, match=r"people\[0\]: field 'pose_keypoints_2d': 17 keypoints; expected one of 25"):
        import_keypoints(folder, "openpose", image_size=(10, 10))


# --------------------------------------------------------------------------------------------- mmpose


def mmpose_instance(frame: int, offset: float = 0.0, num_joints: int = 17) -> dict:
    kp = joints(num_joints, frame, offset)
    return {"keypoints": kp[:, :2].tolist(), "keypoint_scores": kp[:, 2].tolist(),
            "bbox": [[offset, 0.0, offset + 100.0, 200.0]], "bbox_score": 0.95}  # fmt: skip


def test_mmpose_inferencer_predictions(tmp_path):
    frames = [
        {"frame_id": 0, "instances": [mmpose_instance(0)]},
        {"frame_id": 1, "instances": []},
        {"frame_id": 2, "instances": [mmpose_instance(2)]},
        {"frame_id": 3, "instances": []},
    ]
    (seq,) = import_keypoints(write_json(tmp_path / "pred.json", frames), "mmpose", image_size=(640, 480))
    assert seq.valid.tolist() == [True, False, True, False]  # trailing empty frame kept
    np.testing.assert_allclose(seq.keypoints[2, 0], [117, 219, 0.61], rtol=1e-6)


def test_mmpose_demo_predictions_wholebody(tmp_path):
    data = {"meta_info": {"dataset_name": "coco_wholebody"},
            "instance_info": [{"frame_id": 1, "instances": [mmpose_instance(0, num_joints=133)]},
                              {"frame_id": 2, "instances": [mmpose_instance(1, num_joints=133)]}]}  # fmt: skip
    (seq,) = import_keypoints(write_json(tmp_path / "demo.json", data), "mmpose", image_size=(640, 480))
    assert seq.num_frames == 2 and seq.valid.all()
    np.testing.assert_allclose(seq.keypoints[1, 0], [116, 217, 0.61], rtol=1e-6)


def test_mmpose_malformed(tmp_path):
    inst = mmpose_instance(0)
    inst["keypoint_scores"] = inst["keypoint_scores"][:5]
    path = write_json(tmp_path / "p.json", [[inst]])
    with pytest.raises(InputError, match=r"frame 0 instance 0: field 'keypoint_scores' must have 17 values"):
        import_keypoints(path, "mmpose", image_size=(640, 480))


# --------------------------------------------------------------------------------------------- npz


def sequence(T: int = 5) -> KeypointSequence:
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 500, (T, 17, 3)).astype(np.float32)
    kp[2, :, :2], kp[2, :, 2] = np.nan, 0.0
    valid = np.ones(T, bool)
    valid[2] = False
    return KeypointSequence(
        keypoints=kp, image_size=(1768, 994), fps=29.97, valid=valid, interpolated=np.zeros(T, bool), track_id=3,
        source="mediapipe", video="clips/a.mp4",
        extras={"world_landmarks33": rng.normal(size=(T, 33, 3)).astype(np.float32)},
    )  # fmt: skip


def test_npz_round_trip_is_exact(tmp_path):
    seq = sequence()
    path = save_keypoints_npz(seq, tmp_path / "out" / "a.npz")
    back = load_keypoints_npz(path)
    np.testing.assert_array_equal(back.keypoints, seq.keypoints)
    np.testing.assert_array_equal(back.extras["world_landmarks33"], seq.extras["world_landmarks33"])
    meta = (back.image_size, back.fps, back.track_id, back.source, back.video)
    assert meta == ((1768, 994), 29.97, 3, "mediapipe", "clips/a.mp4")
    np.testing.assert_array_equal(back.valid, seq.valid)
    with np.load(path, allow_pickle=False) as raw:  # the plain layout, readable without mocli
        assert raw["keypoints"].dtype == np.float32 and raw["image_size"].tolist() == [1768, 994]
        assert tuple(raw["joint_names"]) == H36M_17.joint_names
    assert [p.name for p in path.parent.iterdir()] == ["a.npz"]  # no temporary file left


def test_npz_validation(tmp_path):
    def save_raw(name: str, **arrays) -> Path:
        np.savez(tmp_path / name, **arrays)
        return tmp_path / name

    ok = {"keypoints": np.zeros((4, 17, 3), np.float32), "image_size": np.array([640, 480]), "fps": np.float64(30)}
    assert load_keypoints_npz(save_raw("ok.npz", **ok)).num_frames == 4
    with pytest.raises(InputError, match=r"'keypoints' must be \(T, 17, 3\)"):
        load_keypoints_npz(save_raw("j.npz", **{**ok, "keypoints": np.zeros((4, 26, 3))}))
    with pytest.raises(InputError, match="missing field 'image_size'"):
        load_keypoints_npz(save_raw("s.npz", keypoints=ok["keypoints"], fps=ok["fps"]))
    with pytest.raises(InputError, match="'image_size' must be two positive"):
        load_keypoints_npz(save_raw("z.npz", **{**ok, "image_size": np.array([0, 480])}))
    with pytest.raises(InputError, match="'joint_names' are not H36M-17's"):
        load_keypoints_npz(save_raw("n.npz", **ok, joint_names=np.array([f"j{i}" for i in range(17)])))
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(InputError, match="not a keypoints npz"):
        load_keypoints_npz(tmp_path / "text.npz")
    two = load_keypoints_npz(save_raw("two.npz", **{**ok, "keypoints": np.ones((4, 17, 2))}))
    assert (two.keypoints[..., 2] == 1).all()


# ------------------------------------------------------------------------------------- non-finite values


def _raw_npz(path: Path, kp: np.ndarray, valid: np.ndarray | None = None) -> Path:
    arrays = {"keypoints": kp, "image_size": np.array([640, 480]), "fps": np.float64(30)}
    np.savez(path, **arrays, **({"valid": valid} if valid is not None else {}))
    return path


def _known_keypoints(T: int = 6) -> np.ndarray:
    """(T, 17, 3): x = 10 j + t, y = 100 + j, confidence 0.9."""
    kp = np.zeros((T, 17, 3), np.float32)
    kp[..., 0] = 10.0 * np.arange(17) + np.arange(T)[:, None]
    kp[..., 1] = 100.0 + np.arange(17)
    kp[..., 2] = 0.9
    return kp


def test_npz_nan_confidence_drops_that_joint_only(tmp_path, caplog):
    kp = _known_keypoints()
    kp[2, 3, 2] = np.nan
    seq = load_keypoints_npz(_raw_npz(tmp_path / "a.npz", kp, np.ones(6, bool)))
    assert np.isnan(seq.keypoints[2, 3, :2]).all() and seq.keypoints[2, 3, 2] == 0
    others = np.ones((6, 17), bool)
    others[2, 3] = False
    np.testing.assert_array_equal(seq.keypoints[others], kp[others])  # every other joint as in the file
    assert seq.valid.all()
    assert "1 keypoint confidence is NaN" in caplog.text


def test_npz_nan_frames_marked_valid_become_missing(tmp_path, caplog):
    kp = _known_keypoints()
    kp[[1, 4], :, :2] = np.nan  # coordinates gone, confidence and `valid` still say "seen"
    seq = load_keypoints_npz(_raw_npz(tmp_path / "a.npz", kp, np.ones(6, bool)))
    assert seq.valid.tolist() == [True, False, True, True, False, True]
    assert (seq.keypoints[[1, 4], :, 2] == 0).all()
    assert "2 frames are marked valid but have no usable keypoint" in caplog.text
    kp[:, :, :2] = np.nan
    with pytest.raises(InputError, match="a.npz: no frame has a usable keypoint"):
        load_keypoints_npz(_raw_npz(tmp_path / "a.npz", kp, np.ones(6, bool)))


def test_npz_infinite_confidences_are_invalid(tmp_path, caplog):
    kp = _known_keypoints()
    kp[0, :, 2] = np.inf
    kp[5, 0, 2] = -np.inf
    seq = load_keypoints_npz(_raw_npz(tmp_path / "a.npz", kp))
    assert seq.valid.tolist() == [False, True, True, True, True, True]
    assert (seq.keypoints[0, :, 2] == 0).all() and np.isnan(seq.keypoints[5, 0, :2]).all()
    np.testing.assert_array_equal(seq.keypoints[5, 1:], kp[5, 1:])
    assert "18 keypoint confidences are infinite, which is invalid" in caplog.text
    kp[..., 2] = np.inf
    with pytest.raises(InputError, match="no frame has a usable keypoint"):
        load_keypoints_npz(_raw_npz(tmp_path / "b.npz", kp))


def test_json_import_nan_confidence_is_a_missing_joint(tmp_path):
    entries = alphapose_results(17)
    for e in entries:
        e["keypoints"][3 * 9 + 2] = float("nan")  # COCO joint 9 (left wrist) has no confidence
    path = tmp_path / "alphapose-results.json"
    path.write_text(json.dumps(entries))  # Python's json writes and reads NaN
    (seq,) = import_keypoints(path, "alphapose", image_size=(640, 480), fps=25.0, person=2)
    assert seq.valid.all()
    assert np.isnan(seq.keypoints[:, 13, :2]).all() and (seq.keypoints[:, 13, 2] == 0).all()  # H36M 13 = COCO 9
    np.testing.assert_allclose(seq.keypoints[3, 9], [1003, 106, 0.5], rtol=1e-6)  # the nose is kept


def test_fifo_named_npz_is_refused_at_once(tmp_path):
    fifo = tmp_path / "k.npz"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        load_keypoints_npz(fifo)
    json_fifo = tmp_path / "k.json"
    os.mkfifo(json_fifo)
    with pytest.raises(InputError, match="not a regular file"):
        import_keypoints(json_fifo, "alphapose", image_size=(640, 480), fps=25.0)
