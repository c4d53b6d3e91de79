"""NTU RGB+D raw Kinect skeletons (mocli.data.ntu_skeleton and the ``ntu`` converter) on synthetic ``.skeleton``
texts whose values are set by hand: parsed arrays, bodies followed by bodyID, the main-body rule, the Kinect-25 ->
H36M-17 mapping, names and splits, one-line errors naming file and line, the missing-skeleton list, and a round trip
through the HDF5 file."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest

from mocli.data.converters import ConvertOptions, convert_dataset
from mocli.data.h5 import open_dataset
from mocli.data.ntu_skeleton import (
    XSUB_TRAIN_PERFORMERS,
    SkeletonBody,
    SkeletonFile,
    camera_joints,
    fill_missing,
    h36m_keypoints,
    main_bodies,
    motion_energy,
    parse_sample_name,
    parse_skeleton,
    read_missing_list,
    read_skeleton,
)
from mocli.errors import InputError
from mocli.skeleton import KINECT_25, to_h36m

ID_A, ID_B = 72057594037931101, 72057594037931102  # above 2**53: must stay exact integers
# H36M-17 joint -> the Kinect joint it is (pelvis SpineBase, spine SpineMid, thorax SpineShoulder, neck Neck, ...).
H36M_FROM_KINECT = [0, 16, 17, 18, 12, 13, 14, 1, 20, 2, 3, 4, 5, 6, 8, 9, 10]


def joint_values(body: int, t: int) -> np.ndarray:
    """(25, 12) exact binary fractions: x y z, depth x y, colour x y, orientation w x y z, tracking state."""
    j = np.arange(25.0)
    v = np.zeros((25, 12))
    v[:, 0], v[:, 1], v[:, 2] = 0.25 * j + t, -0.125 * j + body, 2.0 + 0.5 * body  # metres
    v[:, 3], v[:, 4] = 100 + j + t, 200 + j + 8 * body  # depth pixels
    v[:, 5], v[:, 6] = 1000 + 10 * j + t + 100 * body, 500 + 5 * j  # colour pixels
    v[:, 7] = 1.0
    v[:, 11] = 2
    return v


def body_lines(body_id: int, values: np.ndarray) -> list[str]:
    rows = [" ".join(f"{x:g}" for x in row[:11]) + f" {int(row[11])}" for row in values]
    return [f"{body_id} 0 1 1 1 1 0 0.01 -0.02 2", str(len(values)), *rows]


def skeleton_lines(frames: list[list[tuple[int, np.ndarray]]]) -> list[str]:
    """Lines of a .skeleton file from per-frame lists of (bodyID, (25, 12) values)."""
    out = [str(len(frames))]
    for bodies in frames:
        out.append(str(len(bodies)))
        for body_id, values in bodies:
            out += body_lines(body_id, values)
    return out


def two_person_frames() -> list[list[tuple[int, np.ndarray]]]:
    """4 frames: body A in all (its head inferred and its left hand not tracked in frame 1), body B in frames 1-2."""
    frames = []
    for t in range(4):
        a = joint_values(0, t)
        if t == 1:
            a[3, 11], a[7, 11] = 1, 0
        frames.append([(ID_A, a)] + ([(ID_B, joint_values(1, t))] if t in (1, 2) else []))
    return frames


def write(path, lines: list[str]) -> None:
    path.write_text("".join(line + "\r\n" for line in lines))  # Windows line ends: the reader must accept them


# --- parsing --------------------------------------------------------------------------------------------------


def test_parse_two_bodies_followed_by_id_with_nan_where_absent():
    skel = parse_skeleton("\n".join(skeleton_lines(two_person_frames())), "x.skeleton")
    assert skel.num_frames == 4 and [b.body_id for b in skel.bodies] == [ID_A, ID_B]
    a, b = skel.bodies
    for t in range(4):
        v = joint_values(0, t)
        np.testing.assert_array_equal(a.xyz[t], v[:, 0:3])
        np.testing.assert_array_equal(a.depth_px[t], v[:, 3:5])
        np.testing.assert_array_equal(a.colour_px[t], v[:, 5:7])
    np.testing.assert_array_equal(b.xyz[1], joint_values(1, 1)[:, 0:3])
    np.testing.assert_array_equal(b.colour_px[2], joint_values(1, 2)[:, 5:7])
    assert np.isnan(b.xyz[[0, 3]]).all() and np.isnan(b.colour_px[[0, 3]]).all()
    assert b.present.tolist() == [False, True, True, False] and a.present.all()
    assert (b.tracking[[0, 3]] == -1).all() and (b.tracking[[1, 2]] == 2).all()
    assert a.tracking[1, 3] == 1 and a.tracking[1, 7] == 0 and (np.delete(a.tracking[1], [3, 7]) == 2).all()


def test_main_bodies_most_frames_then_motion_energy():
    skel = parse_skeleton("\n".join(skeleton_lines(two_person_frames())))
    assert [b.body_id for b in main_bodies(skel)] == [ID_A, ID_B]  # 4 frames before 2
    assert [b.body_id for b in main_bodies(skel, 1)] == [ID_A]

    def body(i: int, moving: float) -> SkeletonBody:
        xyz = np.zeros((3, 25, 3))
        xyz[:, :, 0] = moving * np.arange(3)[:, None]  # x = 0, m, 2m: variance 2m^2/3 per joint
        return SkeletonBody(i, xyz, np.zeros((3, 25, 2)), np.zeros((3, 25, 2)), np.full((3, 25), 2, np.int8))

    still, slow, fast = body(1, 0.0), body(2, 0.1), body(3, 0.2)
    assert motion_energy(slow) == pytest.approx(25 * 2 * 0.1**2 / 3)
    picked = main_bodies(SkeletonFile(3, [still, slow, fast]))  # equal frames: the larger motion first
    assert [b.body_id for b in picked] == [3, 2]
    with pytest.raises(InputError, match="S001C001P001R001A001.skeleton: no body in any frame"):
        main_bodies(SkeletonFile(3, []), where="S001C001P001R001A001.skeleton")


def test_h36m_keypoints_and_camera_joints_by_hand():
    skel = parse_skeleton("\n".join(skeleton_lines(two_person_frames())))
    kp = h36m_keypoints(main_bodies(skel))  # (2, 4, 17, 3)
    assert kp.shape == (2, 4, 17, 3)
    for t in range(4):
        np.testing.assert_array_equal(kp[0, t, :, :2], joint_values(0, t)[H36M_FROM_KINECT, 5:7])
    assert kp[0, 1, 10, 2] == 0.5  # head (Kinect 3) inferred in frame 1
    assert (np.delete(kp[0, :, :, 2].ravel(), 1 * 17 + 10) == 1.0).all()  # left hand (not tracked) is not in H36M
    np.testing.assert_array_equal(kp[1, 2, :, :2], joint_values(1, 2)[H36M_FROM_KINECT, 5:7])
    assert np.isnan(kp[1, [0, 3], :, :2]).all() and (kp[1, [0, 3], :, 2] == 0).all()
    filled = fill_missing(kp)
    assert filled.dtype == np.float32 and (filled[1, [0, 3]] == 0).all()
    np.testing.assert_array_equal(filled[:, 1:3], kp[:, 1:3].astype(np.float32))

    j3d = camera_joints(skel.bodies[0])  # (T, 17, 3): Kinect (x left, y up, z forward) -> (-x, -y, z)
    xyz = np.stack([joint_values(0, t)[H36M_FROM_KINECT, 0:3] for t in range(4)])
    np.testing.assert_array_equal(j3d, xyz * [-1, -1, 1])
    assert np.isnan(camera_joints(skel.bodies[1])[[0, 3]]).all()


def test_kinect_to_h36m_mapping_by_name():
    kp = np.random.default_rng(0).uniform(size=(2, 25, 3))
    out = to_h36m(kp, "kinect_v2")
    np.testing.assert_array_equal(out, kp[:, H36M_FROM_KINECT])
    names = [KINECT_25.joint_names[k] for k in H36M_FROM_KINECT]
    assert names[:4] == ["spine_base", "right_hip", "right_knee", "right_ankle"]
    assert names[7:11] == ["spine_mid", "spine_shoulder", "neck", "head"]


# --- names and splits -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fields", "splits"),
    [
        ("S001C001P001R001A011", (1, 1, 1, 1, 11), ("train", "val", "val")),
        ("S017C003P003R001A060", (17, 3, 3, 1, 60), ("val", "train", "val")),
        ("S018C002P045R002A120", (18, 2, 45, 2, 120), ("train", "train", "train")),
        ("S032C001P106R002A099", (32, 1, 106, 2, 99), ("val", "val", "train")),
        ("S002C002P038R001A002", (2, 2, 38, 1, 2), ("train", "train", "train")),
        ("S003C003P040R002A050", (3, 3, 40, 2, 50), ("val", "train", "val")),
    ],
)
def test_sample_names_and_benchmark_splits(name, fields, splits):
    s = parse_sample_name(name)
    assert (s.setup, s.camera, s.performer, s.replication, s.action) == fields
    assert s.label == fields[4] - 1 and s.name == name
    assert (s.split("xsub"), s.split("xview"), s.split("xset")) == splits


def test_ntu120_xsub_list_holds_ntu60s_up_to_performer_40():
    ntu60 = {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38}
    assert {p for p in XSUB_TRAIN_PERFORMERS if p <= 40} == ntu60 and len(XSUB_TRAIN_PERFORMERS) == 53


@pytest.mark.parametrize(
    "bad", ["S001C001P001R001", "S000C001P001R001A001", "s001c001p001r001a001", "S001C001P001R001A011x"]
)
def test_bad_sample_names(bad):
    with pytest.raises(InputError, match="not an NTU sample name"):
        parse_sample_name(bad)
    with pytest.raises(InputError, match="unknown NTU benchmark 'xcam'"):
        parse_sample_name("S001C001P001R001A001").split("xcam")


# --- malformed files ------------------------------------------------------------------------------------------


def one_frame() -> list[str]:
    """1: frames, 2: bodies, 3: body info, 4: joint count, 5-29: joints."""
    return skeleton_lines([[(ID_A, joint_values(0, 0))]])


def edit(lines: list[str], line: int, text: str | None) -> list[str]:
    out = list(lines)
    if text is None:
        del out[line - 1]
    else:
        out[line - 1] = text
    return out


def _joint(line: str, k: int, value: str) -> str:
    tokens = line.split()
    tokens[k] = value
    return " ".join(tokens)


MALFORMED = {
    "frames not a number": (lambda ls: edit(ls, 1, "abc"), 1, "the number of frames"),
    "no frames": (lambda ls: ["0"], 1, "0 frames"),
    "empty file": (lambda ls: [], 1, "ends early"),
    "negative body count": (lambda ls: edit(ls, 2, "-1"), 2, "got -1"),
    "body count not a number": (lambda ls: edit(ls, 2, "one"), 2, "the number of bodies of frame 1 of 1"),
    "body info short": (lambda ls: edit(ls, 3, "1 0 1 1 1 1 0 0.01 -0.02"), 3, "expected 10 values"),
    "bodyID not an integer": (lambda ls: edit(ls, 3, "1.5 0 1 1 1 1 0 0.01 -0.02 2"), 3, "bodyID '1.5'"),
    "body info not numeric": (lambda ls: edit(ls, 3, "7 0 1 1 1 1 0 0.01 x 2"), 3, "non-numeric value in the info"),
    "24 joints": (lambda ls: edit(ls, 4, "24"), 4, "has 24 joints, expected 25"),
    "joint line short": (lambda ls: edit(ls, 9, "1 2 3"), 9, "expected 12 values .* joint 5\\), got 3"),
    "joint not numeric": (lambda ls: edit(ls, 12, _joint(ls[11], 2, "1.2.3")), 12, "non-numeric value in .*joint 8"),
    "tracking state 3": (lambda ls: edit(ls, 29, _joint(ls[28], 11, "3")), 29, "tracking state 3 .* joint 25"),
    "truncated joints": (lambda ls: ls[:20], 21, "ends early, expected frame 1 of 1, body 1, joint 17"),
    "truncated frames": (lambda ls: edit(ls, 1, "2"), 30, "ends early, expected the number of bodies of frame 2"),
    "text after the end": (lambda ls: ls + ["", "5"], 31, "unexpected text after the last frame"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_files_are_one_line_errors_naming_file_and_line(tmp_path, case):
    change, line, message = MALFORMED[case]
    path = tmp_path / "S001C001P001R001A001.skeleton"
    write(path, change(one_frame()))
    with pytest.raises(InputError, match=f"^S001C001P001R001A001.skeleton:{line}: .*{message}") as e:
        read_skeleton(path)
    assert "\n" not in str(e.value)


def test_a_bodyid_twice_in_one_frame():
    lines = skeleton_lines([[(ID_A, joint_values(0, 0)), (ID_A, joint_values(1, 0))]])
    with pytest.raises(InputError, match=f"^x:30: bodyID {ID_A} appears twice in frame 1 of 1"):
        parse_skeleton("\n".join(lines), "x")


def test_missing_list_lines(tmp_path):
    path = tmp_path / "missing.txt"
    path.write_text("# samples with missing skeletons\nS001C002P005R002A008\n\nS001C002P006R001A008.skeleton\n")
    assert read_missing_list(path) == {"S001C002P005R002A008", "S001C002P006R001A008"}
    path.write_text("S001C002P005R002A008\nnot a name\n")
    with pytest.raises(InputError, match="^missing.txt:2: 'not a name' is not an NTU sample name"):
        read_missing_list(path)


# --- converter ------------------------------------------------------------------------------------------------


def _load(path) -> dict:
    with open_dataset(path) as ds:
        return {r.name: r.load() for r in ds}


@pytest.fixture
def raw_folder(tmp_path):
    """Three samples: a two-person one (B in frames 1-2), a one-person one, one whose only body skips a frame;
    and one sample named by the missing-skeleton list (not even a valid file)."""
    root = tmp_path / "nturgb+d_skeletons"
    root.mkdir()
    write(root / "S001C001P001R001A050.skeleton", skeleton_lines(two_person_frames()))
    write(root / "S002C002P003R002A011.skeleton", skeleton_lines([[(ID_A, joint_values(0, t))] for t in range(3)]))
    gap = [[(ID_B, joint_values(1, 0))], [], [(ID_B, joint_values(1, 2))]]
    write(root / "S001C003P002R001A001.skeleton", skeleton_lines(gap))
    write(root / "S001C002P005R002A008.skeleton", ["3", "0", "0"])  # truncated, but on the list
    (tmp_path / "NTU_RGBD_samples_with_missing_skeletons.txt").write_text("S001C002P005R002A008\n")
    return root


def test_converter_round_trip(raw_folder, tmp_path):
    missing = tmp_path / "NTU_RGBD_samples_with_missing_skeletons.txt"
    report = convert_dataset("ntu", [raw_folder, missing], tmp_path / "ntu.h5")
    assert report.failures == []
    seqs = _load(tmp_path / "ntu.h5")
    assert sorted(seqs) == ["S001C001P001R001A050", "S001C003P002R001A001", "S002C002P003R002A011"]
    two = seqs["S001C001P001R001A050"]
    assert two.keypoints2d.shape == (2, 4, 17, 3) and two.num_frames == 4 and two.fps == 30.0
    assert (two.label, two.split, two.subject, two.camera, two.action) == (49, "train", "P001", "C001", "A050")
    assert (two.extra["split_xview"], two.extra["split_xset"], two.extra["setup"], two.extra["bodies"]) == (
        "val", "val", "S001", 2)  # fmt: skip
    assert two.image_size == (1920, 1080)
    np.testing.assert_array_equal(two.keypoints2d[1, 1, :, :2], joint_values(1, 1)[H36M_FROM_KINECT, 5:7])
    assert (two.keypoints2d[1, [0, 3]] == 0).all() and two.keypoints2d[0, 1, 10, 2] == 0.5
    assert two.frame == "camera"
    np.testing.assert_array_equal(two.joints3d[2], joint_values(0, 2)[H36M_FROM_KINECT, 0:3] * [-1, -1, 1])
    one = seqs["S002C002P003R002A011"]
    assert one.keypoints2d.shape == (1, 3, 17, 3) and (one.label, one.split) == (10, "val")  # P003: xsub val
    gap = seqs["S001C003P002R001A001"]
    assert gap.joints3d is None and (gap.keypoints2d[0, 1] == 0).all() and gap.keypoints2d[0, 2, 0, 2] == 1.0

    convert_dataset("ntu", [raw_folder], tmp_path / "xview.h5", ConvertOptions(benchmark="xview"))
    xview = _load(tmp_path / "xview.h5")  # without the list, the listed sample is a reported failure
    assert xview["S001C001P001R001A050"].split == "val" and xview["S002C002P003R002A011"].split == "train"


def test_converter_missing_list_inside_an_archive_and_resampling(raw_folder, tmp_path):
    (tmp_path / "NTU_RGBD_samples_with_missing_skeletons.txt").rename(raw_folder / "missing_skeletons.txt")
    with tarfile.open(tmp_path / "skeletons.tar.gz", "w:gz") as tar:
        tar.add(raw_folder, arcname="nturgb+d_skeletons")
    report = convert_dataset("ntu", [tmp_path / "skeletons.tar.gz"], tmp_path / "ntu.h5", ConvertOptions(fps=15))
    assert report.failures == [] and report.sequences["train"] + report.sequences["val"] == 3
    two = _load(tmp_path / "ntu.h5")["S001C001P001R001A050"]
    assert two.fps == 15 and two.keypoints2d.shape == (2, 2, 17, 3)  # frames 0 and 2
    np.testing.assert_array_equal(two.keypoints2d[0, 1, :, :2], joint_values(0, 2)[H36M_FROM_KINECT, 5:7])
    np.testing.assert_array_equal(two.keypoints2d[1, 1, :, :2], joint_values(1, 2)[H36M_FROM_KINECT, 5:7])
    assert (two.keypoints2d[1, 0] == 0).all()  # B is absent in frame 0, and no blend with its frame 1


def test_converter_reports_a_malformed_file_and_an_unlisted_empty_sample(raw_folder, tmp_path):
    write(raw_folder / "S001C001P001R001A002.skeleton", edit(one_frame(), 4, "24"))
    report = convert_dataset("ntu", [raw_folder], tmp_path / "ntu.h5")
    errors = {f.path: f.error for f in report.failures}
    assert errors["S001C001P001R001A002.skeleton"].startswith("S001C001P001R001A002.skeleton:4: ")
    assert errors["S001C002P005R002A008.skeleton"].startswith("S001C002P005R002A008.skeleton:4: the file ends early")
    write(raw_folder / "S001C001P001R001A003.skeleton", ["2", "0", "0"])
    report = convert_dataset("ntu", [raw_folder], tmp_path / "ntu2.h5")
    assert {f.path: f.error for f in report.failures}["S001C001P001R001A003.skeleton"] == (
        "S001C001P001R001A003.skeleton: no body in any frame (a sample of the missing-skeleton list?)")  # fmt: skip
    with pytest.raises(InputError, match="unknown NTU benchmark 'xcam'"):
        convert_dataset("ntu", [raw_folder], tmp_path / "x.h5", ConvertOptions(benchmark="xcam"))
