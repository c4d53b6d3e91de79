"""Dataset converters on small fixtures written here in each dataset's own layout; values must come back exactly."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from mocli.data.converters import ConvertOptions, convert_dataset
from mocli.data.h5 import open_dataset
from mocli.errors import InputError

SAMPLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mocap" / "sample"
H36M_32_TO_17 = [0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
COCO_TO_H36M_LIMBS = {1: 12, 2: 14, 3: 16, 4: 11, 5: 13, 6: 15, 11: 5, 12: 7, 13: 9, 14: 6, 15: 8, 16: 10}


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _load(path: Path) -> dict:
    with open_dataset(path) as ds:
        return {r.name: r.load() for r in ds}


def _y_up(z_up: np.ndarray) -> np.ndarray:
    """Z-up world (x, y, z) -> +Y up (x, z, -y): what the converters store."""
    return np.stack([z_up[..., 0], z_up[..., 2], -z_up[..., 1]], axis=-1)


def _check_coco_to_h36m(h36m: np.ndarray, coco: np.ndarray) -> None:
    """H36M-17 (..., 17, 3) from COCO-17 (..., 17, 3): limbs copied, pelvis = mean hips with the min score."""
    for h, c in COCO_TO_H36M_LIMBS.items():
        np.testing.assert_allclose(h36m[..., h, :], coco[..., c, :], atol=1e-5)
    np.testing.assert_allclose(h36m[..., 0, :2], (coco[..., 11, :2] + coco[..., 12, :2]) / 2, atol=1e-4)
    np.testing.assert_allclose(h36m[..., 0, 2], np.minimum(coco[..., 11, 2], coco[..., 12, 2]), atol=1e-6)


# --- h36m: MotionBERT pkl ---------------------------------------------------------------------------------------


def _h36m_pkl(path: Path) -> dict:
    rng = _rng(1)

    def part(sources: list[str], cameras: list[str], actions: list[str]) -> dict:
        n = len(sources)
        return {
            "joint_2d": rng.uniform(0, 1000, (n, 17, 2)).astype(np.float32),
            "confidence": rng.uniform(0, 1, (n, 17, 1)).astype(np.float32),
            "joint3d_image": rng.uniform(0, 1000, (n, 17, 3)).astype(np.float32),
            "joints_2.5d_image": rng.uniform(-900, 900, (n, 17, 3)).astype(np.float32),
            "2.5d_factor": rng.uniform(3, 6, n).astype(np.float32),
            "camera_name": np.array(cameras),
            "source": sources,
            "action": np.array(actions),
        }

    a, b = "s_01_act_02_subact_01_ca_01", "s_01_act_02_subact_01_ca_02"
    data = {
        "train": part([a] * 4 + [b] * 3 + [a] * 3, ["54138969"] * 4 + ["55011271"] * 6, ["Directions"] * 10),
        "test": part(["s_09_act_05_subact_02_ca_04"] * 5, ["60457274"] * 5, ["Discussion"] * 5),
    }
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return data


def test_h36m_pkl_splits_runs_of_source_and_keeps_values(tmp_path):
    data = _h36m_pkl(tmp_path / "h36m_sh_conf_cam_source_final.pkl")
    report = convert_dataset("h36m", [tmp_path / "h36m_sh_conf_cam_source_final.pkl"], tmp_path / "o.h5")
    assert report.sequences == {"train": 3, "test": 1} and report.frames == {"train": 10, "test": 5}
    seqs = _load(tmp_path / "o.h5")
    assert sorted(seqs) == [
        "s_01_act_02_subact_01_ca_01",
        "s_01_act_02_subact_01_ca_01~2",
        "s_01_act_02_subact_01_ca_02",
        "s_09_act_05_subact_02_ca_04",
    ]
    tr = data["train"]
    first = seqs["s_01_act_02_subact_01_ca_01"]
    np.testing.assert_array_equal(first.keypoints2d[..., :2], tr["joint_2d"][:4])
    np.testing.assert_array_equal(first.keypoints2d[..., 2:], tr["confidence"][:4])
    np.testing.assert_array_equal(first.joints3d_image, tr["joint3d_image"][:4])
    np.testing.assert_array_equal(first.factor_2_5d, tr["2.5d_factor"][:4])
    np.testing.assert_allclose(first.joints3d, tr["joints_2.5d_image"][:4] / 1000.0, rtol=1e-6)
    assert (first.frame, first.fps, first.subject, first.camera, first.action) == (
        "image_2.5d",
        50.0,
        "S1",
        "54138969",
        "Directions",
    )
    assert first.image_size == (1000, 1002) and first.split == "train"
    np.testing.assert_array_equal(seqs["s_01_act_02_subact_01_ca_01~2"].keypoints2d[..., :2], tr["joint_2d"][7:])
    assert seqs["s_01_act_02_subact_01_ca_02"].image_size == (1000, 1000)
    test = seqs["s_09_act_05_subact_02_ca_04"]
    assert test.split == "test" and test.extra["reference_excluded"] is True and test.subject == "S9"
    assert "reference_excluded" not in first.extra


def test_h36m_pkl_missing_field_is_named(tmp_path):
    data = _h36m_pkl(tmp_path / "a.pkl")
    del data["train"]["confidence"]
    with open(tmp_path / "a.pkl", "wb") as f:
        pickle.dump(data, f)
    with pytest.raises(InputError, match=r"a\.pkl: \['train'\] lacks field 'confidence'"):
        convert_dataset("h36m", [tmp_path / "a.pkl"], tmp_path / "o.h5")
    assert not (tmp_path / "o.h5").exists()


# --- h36m: VideoPose3D npz pair ---------------------------------------------------------------------------------


def test_videopose3d_npz_pair(tmp_path):
    rng = _rng(2)
    pos3d = {"S1": {"Walking 1": rng.normal(size=(6, 32, 3))}, "S9": {"Sitting": rng.normal(size=(4, 32, 3))}}
    pos2d = {
        "S1": {"Walking 1": [rng.uniform(0, 1000, (6, 17, 2)).astype(np.float32) for _ in range(4)]},
        "S9": {"Sitting": [rng.uniform(0, 1000, (5, 17, 2)).astype(np.float32) for _ in range(4)]},
    }
    meta = {
        "layout_name": "h36m",
        "num_joints": 17,
        "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]],
    }
    np.savez(tmp_path / "data_3d_h36m.npz", positions_3d=pos3d)
    np.savez(tmp_path / "data_2d_h36m_cpn_ft_h36m_dbb.npz", positions_2d=pos2d, metadata=meta)
    report = convert_dataset("h36m", [tmp_path], tmp_path / "out" / "vp.h5")
    assert report.sequences == {"train": 4, "test": 4}
    seqs = _load(tmp_path / "out" / "vp.h5")
    s = seqs["S1:Walking 1:58860488"]
    np.testing.assert_array_equal(s.keypoints2d[..., :2], pos2d["S1"]["Walking 1"][2])
    assert (s.keypoints2d[..., 2] == 1).all() and s.image_size == (1000, 1000) and s.frame == "world"
    np.testing.assert_allclose(s.joints3d, _y_up(pos3d["S1"]["Walking 1"][:, H36M_32_TO_17]), atol=1e-6)
    t = seqs["S9:Sitting:54138969"]
    assert t.split == "test" and t.num_frames == 4 and t.image_size == (1000, 1002)  # 2D trimmed to the 3D length


# --- ntu ------------------------------------------------------------------------------------------------------


def test_ntu_pyskl_pkl(tmp_path):
    rng = _rng(3)
    names = ["S001C001P001R001A001", "S001C002P002R001A002", "S002C001P003R002A003"]
    anns = []
    for i, (name, persons, frames) in enumerate(zip(names, (2, 1, 1), (5, 4, 3), strict=True)):
        anns.append(
            {
                "frame_dir": name,
                "label": i,
                "img_shape": (1080, 1920),
                "original_shape": (1080, 1920),
                "total_frames": frames,
                "keypoint": rng.uniform(0, 1900, (persons, frames, 17, 2)).astype(np.float16),
                "keypoint_score": rng.uniform(0, 1, (persons, frames, 17)).astype(np.float16),
            }
        )
    split = {
        "xsub_train": [names[0], names[2]],
        "xsub_val": [names[1]],
        "xview_train": names[1:],
        "xview_val": names[:1],
    }
    with open(tmp_path / "ntu60_hrnet.pkl", "wb") as f:
        pickle.dump({"split": split, "annotations": anns}, f)
    convert_dataset("ntu", [tmp_path / "ntu60_hrnet.pkl"], tmp_path / "ntu.h5")
    seqs = _load(tmp_path / "ntu.h5")
    s = seqs[names[0]]
    coco = np.concatenate([anns[0]["keypoint"], anns[0]["keypoint_score"][..., None]], -1).astype(np.float32)
    assert s.keypoints2d.shape == (2, 5, 17, 3) and s.label == 0 and s.image_size == (1920, 1080)
    _check_coco_to_h36m(s.keypoints2d, coco)
    assert (s.split, s.extra["split_xview"], s.subject, s.camera, s.action) == ("train", "val", "P001", "C001", "A001")
    assert seqs[names[1]].split == "val" and seqs[names[1]].label == 1
    convert_dataset("ntu", [tmp_path / "ntu60_hrnet.pkl"], tmp_path / "xview.h5", ConvertOptions(benchmark="xview"))
    assert _load(tmp_path / "xview.h5")[names[0]].split == "val"
    with pytest.raises(InputError, match="no xset_train/_val lists"):
        convert_dataset("ntu", [tmp_path / "ntu60_hrnet.pkl"], tmp_path / "x.h5", ConvertOptions(benchmark="xset"))


# --- mesh -----------------------------------------------------------------------------------------------------


def test_mesh_pkl(tmp_path):
    rng = _rng(4)

    def part(sources: list[str]) -> dict:
        n = len(sources)
        return {
            "joint_2d": rng.uniform(0, 1000, (n, 17, 2)),
            "confidence": rng.uniform(0, 1, (n, 17, 1)),
            "source": sources,
            "smpl_pose": rng.normal(size=(n, 72)),
            "smpl_shape": rng.normal(size=(n, 10)),
        }

    data = {"train": part(["courtyard_0"] * 3 + ["office_1"] * 2), "test": part(["outdoors_2"] * 4)}
    with open(tmp_path / "mesh_det_pw3d.pkl", "wb") as f:
        pickle.dump(data, f)
    report = convert_dataset("mesh", [tmp_path / "mesh_det_pw3d.pkl"], tmp_path / "m.h5")
    assert report.sequences == {"train": 2, "test": 1}
    s = _load(tmp_path / "m.h5")["office_1"]
    np.testing.assert_allclose(s.keypoints2d[..., :2], data["train"]["joint_2d"][3:], rtol=1e-6)
    np.testing.assert_allclose(s.keypoints2d[..., 2], data["train"]["confidence"][3:, :, 0], rtol=1e-6)
    np.testing.assert_allclose(s.smpl_pose, data["train"]["smpl_pose"][3:], rtol=1e-6)
    np.testing.assert_allclose(s.smpl_shape, data["train"]["smpl_shape"][3:], rtol=1e-6)
    assert s.fps == 30.0 and s.split == "train"


# --- posetrack ------------------------------------------------------------------------------------------------

POSETRACK_NAMES = [
    "nose", "head_bottom", "head_top", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
]  # fmt: skip


def test_posetrack_tracks_become_sequences(tmp_path):
    rng = _rng(5)
    folder = tmp_path / "annotations" / "val"
    folder.mkdir(parents=True)
    frame_ids = [10, 14, 11, 13, 12]  # listed out of order on purpose
    images = [
        {"id": 100 + f, "file_name": f"images/val/000001/{f:06d}.jpg", "frame_id": f, "vid_id": "000001",
         "width": 1280, "height": 720}
        for f in frame_ids
    ]  # fmt: skip
    kps = {}
    anns = []
    for track, frames in ((0, [10, 11, 13, 14]), (1, [13, 14])):
        for f in frames:
            kp = np.concatenate([rng.uniform(0, 700, (17, 2)), np.ones((17, 1))], -1)
            kp[3:5, 2] = 0  # ears not labelled
            if f == 11:
                kp[0, 2] = 0  # nose not labelled in one frame
            kps[track, f] = kp
            anns.append({"image_id": 100 + f, "track_id": track, "keypoints": kp.reshape(-1).tolist()})
    doc = {"images": images, "annotations": anns, "categories": [{"name": "person", "keypoints": POSETRACK_NAMES}]}
    (folder / "000001_mpii_test.json").write_text(json.dumps(doc))
    convert_dataset("posetrack", [tmp_path / "annotations"], tmp_path / "pt.h5")
    seqs = _load(tmp_path / "pt.h5")
    assert sorted(seqs) == ["000001:0", "000001:1"]
    s = seqs["000001:0"]
    assert s.num_frames == 5 and s.split == "val" and s.image_size == (1280, 720) and s.extra["first_frame"] == 0
    assert (s.keypoints2d[2] == 0).all()  # frame 12: track 0 absent
    np.testing.assert_allclose(s.keypoints2d[0, 10], kps[0, 10][2], rtol=1e-6)  # head top
    np.testing.assert_allclose(s.keypoints2d[0, 9], kps[0, 10][0], rtol=1e-6)  # nose
    np.testing.assert_allclose(s.keypoints2d[1, 9], kps[0, 11][1], rtol=1e-6)  # no nose: head bottom
    np.testing.assert_allclose(s.keypoints2d[4, 1], kps[0, 14][12], rtol=1e-6)  # right hip
    t = seqs["000001:1"]
    assert t.num_frames == 2 and t.extra["first_frame"] == 3


def test_posetrack_bad_annotation_is_named(tmp_path):
    doc = {"images": [{"id": 1}], "annotations": [{"image_id": 1, "track_id": 0, "keypoints": [0.0] * 50}]}
    (tmp_path / "v.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"v\.json: annotations\[0\]\['keypoints'\] has 50 values, expected 51"):
        convert_dataset("posetrack", [tmp_path / "v.json"], tmp_path / "pt.h5")


# --- instavariety ---------------------------------------------------------------------------------------------


def test_instavariety_npy(tmp_path):
    rng = _rng(6)
    coco = np.concatenate([rng.uniform(0, 500, (12, 17, 2)), rng.uniform(0, 1, (12, 17, 1))], -1).astype(np.float32)
    np.save(tmp_path / "clip_a.npy", coco)
    np.save(tmp_path / "clip_b.npy", rng.uniform(0, 500, (8, 26, 2)).astype(np.float32))  # Halpe-26, no confidence
    np.save(tmp_path / "clip_c.npy", np.zeros((8, 19, 3), np.float32))
    report = convert_dataset("instavariety", [tmp_path], tmp_path / "iv.h5", ConvertOptions(fps=15.0))
    assert [f.path for f in report.failures] == ["clip_c.npy"] and "pass --layout" in report.failures[0].error
    seqs = _load(tmp_path / "iv.h5")
    a = seqs["clip_a"]
    assert a.fps == 15.0 and a.num_frames == 6
    _check_coco_to_h36m(a.keypoints2d, coco[::2])
    assert seqs["clip_b"].extra["layout_native"] == "halpe" and (seqs["clip_b"].keypoints2d[..., 2] == 1).all()


# --- amass ----------------------------------------------------------------------------------------------------

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


@pytest.fixture(scope="module")
def smpl_files(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A synthetic model in the SMPL layout (DATA.md) and a random (17, V) regressor."""
    rng = _rng(7)
    folder = tmp_path_factory.mktemp("smpl")
    num_verts = 6890
    j_reg = rng.uniform(0, 1, (24, num_verts))
    weights = rng.uniform(0, 1, (num_verts, 24))
    model = {
        "v_template": rng.normal(size=(num_verts, 3)) * 0.3,
        "shapedirs": rng.normal(size=(num_verts, 3, 10)) * 0.01,
        "posedirs": rng.normal(size=(num_verts, 3, 207)) * 0.001,
        "J_regressor": j_reg / j_reg.sum(1, keepdims=True),
        "weights": weights / weights.sum(1, keepdims=True),
        "kintree_table": np.stack([np.array(SMPL_PARENTS) % 2**32, np.arange(24)]).astype(np.int64),
        "f": rng.integers(0, num_verts, (13776, 3)),
    }
    np.savez(folder / "SMPL_NEUTRAL.npz", **model)
    reg = rng.uniform(0, 1, (17, num_verts))
    np.save(folder / "J_regressor_h36m.npy", reg / reg.sum(1, keepdims=True))
    return folder / "SMPL_NEUTRAL.npz", folder / "J_regressor_h36m.npy", model


def test_amass_joints_through_the_body_model(tmp_path, smpl_files):
    model_path, reg_path, model = smpl_files
    rng = _rng(8)
    frames = 4
    poses = np.zeros((frames, 156))
    poses[1, 2] = np.pi / 2  # frame 1: global rotation 90 degrees about Z
    poses[2:, 3:] = rng.normal(size=(2, 153)) * 0.2
    trans = rng.normal(size=(frames, 3))
    betas = rng.normal(size=16)
    motion = tmp_path / "CMU" / "01"
    motion.mkdir(parents=True)
    np.savez(motion / "01_01_poses.npz", poses=poses, trans=trans, betas=betas, mocap_framerate=120.0, gender="neutral")
    np.savez(motion / "shape.npz", betas=betas, gender="neutral")  # not a motion: skipped
    opts = ConvertOptions(smpl_model=model_path, regressor=reg_path)
    report = convert_dataset("amass", [tmp_path / "CMU"], tmp_path / "amass.h5", opts)
    assert report.sequences == {"train": 1} and not report.failures
    s = _load(tmp_path / "amass.h5")["01_01_poses"]
    reg = np.load(reg_path)
    v_shaped = model["v_template"] + model["shapedirs"] @ betas[:10]
    rest = reg @ v_shaped
    np.testing.assert_allclose(s.joints3d[0], _y_up(rest + trans[0]), atol=1e-4)
    root = model["J_regressor"][0] @ v_shaped
    rz = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    rotated = reg @ ((v_shaped - root) @ rz.T + root) + trans[1]
    np.testing.assert_allclose(s.joints3d[1], _y_up(rotated), atol=1e-4)
    np.testing.assert_allclose(s.smpl_pose[:, :66], poses[:, :66], atol=1e-6)
    assert (s.smpl_pose[:, 66:] == 0).all() and s.smpl_shape.shape == (10,) and s.fps == 120.0
    half = convert_dataset(
        "amass", [tmp_path / "CMU"], tmp_path / "a60.h5", ConvertOptions(**{**vars(opts), "fps": 60.0})
    )
    assert half.frames == {"train": 2}
    np.testing.assert_allclose(_load(tmp_path / "a60.h5")["01_01_poses"].joints3d, s.joints3d[::2], atol=1e-5)


def test_amass_needs_the_model_options(tmp_path):
    np.savez(tmp_path / "x.npz", poses=np.zeros((2, 156)), trans=np.zeros((2, 3)), betas=np.zeros(16))
    with pytest.raises(InputError, match="amass needs --smpl-model"):
        convert_dataset("amass", [tmp_path], tmp_path / "a.h5")


# --- driver ---------------------------------------------------------------------------------------------------


def test_unknown_kind_and_split_rule(tmp_path):
    with pytest.raises(InputError, match="unknown dataset kind"):
        convert_dataset("fbx", [tmp_path], tmp_path / "a.h5")
    with pytest.raises(InputError, match="split rule 'native' is not one of mod10, train"):
        convert_dataset("bvh", [tmp_path], tmp_path / "a.h5", ConvertOptions(split_rule="native"))
    with pytest.raises(InputError, match="no bvh input"):
        convert_dataset("bvh", [tmp_path], tmp_path / "a.h5")


def test_mod10_over_sequence_names_for_multi_sequence_files(tmp_path):
    rng = _rng(9)
    sources = [f"seq{i:02d}" for i in range(12) for _ in range(2)]
    data = {
        "joint_2d": rng.normal(size=(24, 17, 2)),
        "confidence": np.ones((24, 17, 1)),
        "source": sources,
        "smpl_pose": np.zeros((24, 72)),
        "smpl_shape": np.zeros((24, 10)),
    }
    with open(tmp_path / "flat.pkl", "wb") as f:
        pickle.dump(data, f)
    convert_dataset("mesh", [tmp_path / "flat.pkl"], tmp_path / "m.h5", ConvertOptions(split_rule="mod10"))
    with open_dataset(tmp_path / "m.h5") as ds:
        assert ds.names("val") == ["seq09"] and len(ds.names("train")) == 11
