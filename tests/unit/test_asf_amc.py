"""ASF/AMC parsing, forward kinematics, the H36M-17 mapping and the ``amc`` converter: hand-computed answers on a
tiny skeleton, the real HDM05 sample (read from ../shared at run time), one-line errors naming file and line."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest

from mocli.data.amc import forward_kinematics, parse_amc, read_amc
from mocli.data.asf import parse_asf, read_asf
from mocli.data.bvh import read_bvh
from mocli.data.converters import ConvertOptions, convert_dataset
from mocli.data.converters.amc import clip_labels, find_asf, native_split
from mocli.data.h5 import open_dataset
from mocli.data.rigs import asf_to_h36m
from mocli.errors import InputError
from mocli.skeleton import derive_trunk

SAMPLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mocap" / "sample"
ASF_NAME = "HDM_bk.asf"
AMC_NAME = "HDM_bk_hopBothLegs1hops_020_120.amc"
INCH_PER_UNIT = 1 / 0.45  # `length 0.45`: a file length x is x / 0.45 inches
M = 0.0254 / 0.45  # metres per file unit


@pytest.fixture
def sample() -> Path:
    if not (SAMPLE / AMC_NAME).is_file() or not (SAMPLE / ASF_NAME).is_file():
        pytest.fail(f"the HDM05 sample {AMC_NAME} + {ASF_NAME} is missing from {SAMPLE.resolve()} (../shared)")
    return SAMPLE


# A hip-to-foot chain: thigh straight down (9 units), foot along +X (4.5 units) with a local frame turned 90 degrees
# about Z; the root carries translation and rotation.
TINY_ASF = """# tiny test skeleton
:version 1.10
:name TINY
:units
  mass 1.0
  length 0.45
  angle deg
:documentation
  anything: here is free text
:root
  order TX TY TZ RX RY RZ
  axis XYZ
  position 0 0 0
  orientation 0 0 0
:bonedata
  begin
    id 1
    name thigh
    direction 0 -1 0
    length 9
    axis 0 0 0 XYZ
    dof rx ry rz
    limits (-160.0 20.0)
           (-70.0 70.0)
           (-inf inf)
  end
  begin
    id 2
    name foot
    direction 1 0 0
    length 4.5
    axis 0 0 90 XYZ
    dof rx
    limits (-45.0 90.0)
  end
:hierarchy
  begin
    root thigh
    thigh foot
  end
"""

TINY_AMC = """#!OML:ASF tiny.asf
:FULLY-SPECIFIED
:DEGREES
1
root 0 0 0 0 0 0
thigh 0 0 0
foot 0
2
root 1 2 3 90 0 0
thigh 0 0 0
foot 0
3
root 0 0 0 0 0 0
thigh 90 0 90
foot 0
4
root 0 0 0 0 0 0
thigh 0 0 0
foot 90
"""

# End points (file units) per frame, by hand: frame 2 turns the chain by Rx(90) ((0,-1,0) -> (0,0,-1)) and moves it
# to (1,2,3); frame 3's thigh M = Rz(90) Rx(90) sends (0,-1,0) to (0,0,-1) and the foot's (1,0,0) to (0,1,0);
# frame 4's foot L = C Rx(90) C^-1 with C = Rz(90) is Ry(90): (1,0,0) -> (0,0,-1).
TINY_ENDS = np.array(
    [
        [[0, 0, 0], [0, -9, 0], [4.5, -9, 0]],
        [[1, 2, 3], [1, 2, -6], [5.5, 2, -6]],
        [[0, 0, 0], [0, 0, -9], [0, 4.5, -9]],
        [[0, 0, 0], [0, -9, 0], [0, -9, -4.5]],
    ],
    dtype=np.float64,
)


def tiny(asf_text: str = TINY_ASF, amc_text: str = TINY_AMC) -> np.ndarray:
    """(T, 3, 3) end points (root, thigh, foot) of the tiny skeleton, file units."""
    asf = parse_asf(asf_text, "tiny.asf")
    return forward_kinematics(asf, parse_amc(amc_text, asf, "tiny.amc")).positions


def test_tiny_skeleton_parses_units_bones_and_dofs():
    asf = parse_asf(TINY_ASF, "tiny.asf")
    assert asf.bone_names == ("root", "thigh", "foot") and asf.parents == (-1, 0, 1)
    assert asf.length_unit == 0.45 and asf.angle_unit == "deg" and asf.mass == 1.0
    assert asf.metres_per_unit * 9 == pytest.approx(9 / 0.45 * 0.0254)  # 20 inches = 0.508 m
    assert asf.bones[0].dof == ("tx", "ty", "tz", "rx", "ry", "rz") and asf.bones[2].dof == ("rx",)
    assert asf.bones[2].axis_deg == (0.0, 0.0, 90.0) and asf.bones[2].axis_order == "XYZ"
    assert asf.bones[1].limits == ((-160.0, 20.0), (-70.0, 70.0), (-np.inf, np.inf))
    amc = parse_amc(TINY_AMC, asf, "tiny.amc")
    assert amc.values.shape == (4, 10) and amc.first_frame == 1 and amc.angle_unit == "deg"
    np.testing.assert_array_equal(amc.values[1], [1, 2, 3, 90, 0, 0, 0, 0, 0, 0])


def test_tiny_forward_kinematics_by_hand():
    np.testing.assert_allclose(tiny(), TINY_ENDS, atol=1e-12)


def test_radians_in_amc_and_asf_give_the_same_pose():
    half_pi = repr(np.pi / 2)
    amc_rad = TINY_AMC.replace(":DEGREES", ":RADIANS").replace(" 90", f" {half_pi}")
    np.testing.assert_allclose(tiny(amc_text=amc_rad), TINY_ENDS, atol=1e-12)
    asf_rad = TINY_ASF.replace("angle deg", "angle rad").replace("axis 0 0 90 XYZ", f"axis 0 0 {half_pi} XYZ")
    np.testing.assert_allclose(tiny(asf_text=asf_rad), TINY_ENDS, atol=1e-12)


def test_bone_axis_changes_the_pose_as_computed_by_hand():
    # without the foot's local frame, its rx = 90 turns (1,0,0) about X: no change; with axis Z 90 it is Ry(90)
    no_axis = tiny(asf_text=TINY_ASF.replace("axis 0 0 90 XYZ", "axis 0 0 0 XYZ"))
    np.testing.assert_allclose(no_axis[3, 2], [4.5, -9, 0], atol=1e-12)
    np.testing.assert_allclose(tiny()[3, 2], [0, -9, -4.5], atol=1e-12)
    # the same frame written in another axis order: 90 0 0 ZYX is also C = Rz(90)
    zyx = tiny(asf_text=TINY_ASF.replace("axis 0 0 90 XYZ", "axis 90 0 0 ZYX"))
    np.testing.assert_allclose(zyx, TINY_ENDS, atol=1e-12)


def test_dof_order_is_the_order_of_the_rotations():
    # dof rz rx with values 90 90: M = Rx(90) Rz(90) (the first listed acts first) sends (0,-1,0) to (1,0,0),
    # where dof rx rz (M = Rz Rx) sends it to (0,0,-1)
    asf_text = TINY_ASF.replace("dof rx ry rz", "dof rz rx")
    amc_text = TINY_AMC.replace("thigh 0 0 0", "thigh 0 0").replace("thigh 90 0 90", "thigh 90 90")
    np.testing.assert_allclose(tiny(asf_text, amc_text)[2, 1], [9, 0, 0], atol=1e-12)
    asf_text = TINY_ASF.replace("dof rx ry rz", "dof rx rz")
    np.testing.assert_allclose(tiny(asf_text, amc_text)[2, 1], [0, 0, -9], atol=1e-12)


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), start=1) if line == needle)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("thigh 90 0 90", "thigh 90 0", "bone 'thigh' has 2 values, its DOFs need 3"),
        ("thigh 90 0 90", "thigh 90 0 90 1", "bone 'thigh' has 4 values, its DOFs need 3"),
        ("thigh 90 0 90", "knee 90 0 90", "unknown bone 'knee'"),
        ("thigh 90 0 90", "thigh 90 x 90", "'x' is not a number"),
        ("thigh 90 0 90", "thigh 90 nan 90", "value 'nan' is not finite"),
        ("thigh 90 0 90", "thigh 90 0 -inf", "value '-inf' is not finite"),
        ("thigh 90 0 90", "thigh 90 0 90\nthigh 1 2 3", "bone 'thigh' appears twice in frame 3"),
        ("3", "5", "frame number 5, expected 3"),
        (":DEGREES", "thigh 0 0 0", "bone values before the first frame number"),
    ],
)
def test_malformed_amc_names_file_and_line(old, new, message):
    asf = parse_asf(TINY_ASF, "tiny.asf")
    text = TINY_AMC.replace(f"\n{old}\n", f"\n{new}\n", 1)
    line = _line_of(text, new.splitlines()[-1])
    with pytest.raises(InputError, match=rf"^tiny\.amc line {line}: {message}"):
        parse_amc(text, asf, "tiny.amc")


def test_amc_frame_without_a_bone_line_and_empty_motion():
    asf = parse_asf(TINY_ASF, "tiny.asf")
    text = TINY_AMC.replace("2\nroot 1 2 3 90 0 0\nthigh 0 0 0\n", "2\nroot 1 2 3 90 0 0\n")
    frame_line = text.splitlines().index("2") + 1
    with pytest.raises(InputError, match=rf"^tiny\.amc line {frame_line}: .*no line for bone\(s\) thigh$"):
        parse_amc(text, asf, "tiny.amc")
    last = TINY_AMC.rsplit("foot 90", 1)[0]  # the last frame block loses its foot line
    with pytest.raises(InputError, match=r"^tiny\.amc line 16: .*no line for bone\(s\) foot$"):
        parse_amc(last, asf, "tiny.amc")
    with pytest.raises(InputError, match=r"^tiny\.amc: no frames"):
        parse_amc("#!OML:ASF tiny.asf\n:FULLY-SPECIFIED\n:DEGREES\n", asf, "tiny.amc")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    thigh foot", "    thigh shin", "the hierarchy names unknown bone 'shin'"),
        ("    dof rx ry rz", "    dof rx ry tx", "dof 'rx ry tx': only rx, ry, rz"),
        ("    axis 0 0 90 XYZ", "    axis 0 0 90 XXY", "axis order must be the letters X, Y, Z"),
        ("    length 4.5", "    length four", "length needs 1 finite numbers"),
        ("  angle deg", "  angle grad", "angle must be 'deg' or 'rad'"),
        ("  order TX TY TZ RX RY RZ", "  order TX TY TZ RX RY RQ", "root order"),
    ],
)
def test_malformed_asf_names_file_and_line(old, new, message):
    text = TINY_ASF.replace(f"\n{old}\n", f"\n{new}\n", 1)
    with pytest.raises(InputError, match=rf"^tiny\.asf line {_line_of(text, new)}: {message}"):
        parse_asf(text, "tiny.asf")


def test_asf_bone_outside_the_hierarchy():
    with pytest.raises(InputError, match=r"^tiny\.asf: bone\(s\) not connected to the root by the hierarchy: foot"):
        parse_asf(TINY_ASF.replace("    thigh foot\n", ""), "tiny.asf")


def test_latin1_header_is_read_and_line_numbers_stay_right(tmp_path):
    # HDM05 headers hold Latin-1 bytes; \x85 must not count as a line break
    header = b"#!OML:ASF X:\\f\xfcr Bonn\\\x85 bjorn.ASF\r\n:FULLY-SPECIFIED\r\n:DEGREES\r\n"
    body = TINY_AMC.split(":DEGREES\n", 1)[1].replace("foot 90", "foot 90 1")
    (tmp_path / "tiny.amc").write_bytes(header + body.encode())
    (tmp_path / "tiny.asf").write_text(TINY_ASF)
    asf = read_asf(tmp_path / "tiny.asf")
    with pytest.raises(InputError, match=r"^tiny\.amc line 19: bone 'foot' has 2 values"):
        read_amc(tmp_path / "tiny.amc", asf)
    (tmp_path / "tiny.amc").write_bytes(header + TINY_AMC.split(":DEGREES\n", 1)[1].encode())
    np.testing.assert_allclose(
        forward_kinematics(asf, read_amc(tmp_path / "tiny.amc", asf)).positions, TINY_ENDS, atol=1e-12
    )


def test_hdm05_sample_body_measures(sample):
    asf = read_asf(sample / ASF_NAME)
    amc = read_amc(sample / AMC_NAME, asf)
    assert asf.length_unit == 0.45 and asf.angle_unit == "deg" and len(asf.bones) == 31
    assert amc.values.shape == (56, 62) and amc.first_frame == 1 and amc.angle_unit == "deg"
    pos = forward_kinematics(asf, amc).positions * asf.metres_per_unit  # (T, 31, 3) metres
    names = asf.bone_names

    def length(a: str, b: str) -> np.ndarray:
        return np.linalg.norm(pos[:, names.index(a)] - pos[:, names.index(b)], axis=-1)

    for a, b, metres in (("lhipjoint", "lfemur", 0.445), ("lfemur", "ltibia", 0.476), ("upperneck", "head", 0.099)):
        bone = length(a, b)
        assert bone[0] == pytest.approx(metres, abs=1e-3) and np.ptp(bone) < 1e-6, (b, bone[0])
    assert length("lhipjoint", "lfemur")[0] == pytest.approx(7.88132 * INCH_PER_UNIT * 0.0254, rel=1e-9)
    height = pos[0, :, 1].max() - pos[0, :, 1].min()  # standing in frame 1
    assert height == pytest.approx(1.68, abs=0.01)
    up = pos[:, names.index("head"), 1] - pos[:, 0, 1]  # y up: the head is well above the root in every frame
    assert up.min() > 0.6


def test_hdm05_sample_h36m_mapping(sample):
    asf = read_asf(sample / ASF_NAME)
    amc = read_amc(sample / AMC_NAME, asf)
    motion = asf_to_h36m(asf, amc)
    assert motion.units == "in" and motion.scale == pytest.approx(M) and motion.up_axis == "+y" and motion.fps == 120
    assert not motion.mapping.virtual_head_top
    assert motion.joints.shape == (56, 17, 3) and motion.joints.dtype == np.float32
    pos = forward_kinematics(asf, amc).positions * M  # bone end points, metres; y is up already
    end = {name: pos[:, k] for k, name in enumerate(asf.bone_names)}
    expected = {  # H36M joint -> the bone whose end point it is
        0: "root", 1: "rhipjoint", 2: "rfemur", 3: "rtibia", 4: "lhipjoint", 5: "lfemur", 6: "ltibia",
        8: "thorax", 9: "upperneck", 10: "head", 11: "lclavicle", 12: "lhumerus", 13: "lradius",
        14: "rclavicle", 15: "rhumerus", 16: "rradius",
    }  # fmt: skip
    for joint, bone in expected.items():
        np.testing.assert_allclose(motion.joints[:, joint], end[bone], atol=1e-5, err_msg=f"{joint} {bone}")
    # spine: half way along root -> lowerback -> upperback -> thorax by bone length (on upperback, t = 0.495)
    lengths = {b.name: b.length for b in asf.bones}
    t = ((lengths["lowerback"] + lengths["upperback"] + lengths["thorax"]) / 2 - lengths["lowerback"]) / lengths[
        "upperback"
    ]
    spine = (1 - t) * end["lowerback"] + t * end["upperback"]
    np.testing.assert_allclose(motion.joints[:, 7], spine, atol=1e-5)
    with pytest.raises(InputError, match=r"^HDM_bk\.asf: body size .* pass --units"):
        text = (sample / ASF_NAME).read_bytes().decode("latin-1").replace("length 0.45", "length 0.045")
        asf_to_h36m(parse_asf(text, ASF_NAME), amc)
    metres = asf_to_h36m(asf, amc, units="m", up_axis="y")  # base unit declared: x / 0.45 metres
    assert metres.scale == pytest.approx(1 / 0.45)
    np.testing.assert_allclose(metres.joints, motion.joints * (1 / 0.45) / M, rtol=1e-5, atol=1e-5)


def test_find_asf_and_clip_labels(tmp_path):
    (tmp_path / "01").mkdir()
    for name in ("01.asf", "01_02.amc", "other.asf"):
        (tmp_path / "01" / name).write_text("")
    assert find_asf(tmp_path / "01" / "01_02.amc") == tmp_path / "01" / "01.asf"  # CMU style
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "skel.asf").write_text("")
    assert find_asf(tmp_path / "one" / "clip.amc") == tmp_path / "one" / "skel.asf"  # the only one
    with pytest.raises(InputError, match=r"^clip\.amc: 2 \.asf files beside it and none named after it"):
        find_asf(tmp_path / "01" / "clip.amc")
    (tmp_path / "none").mkdir()
    with pytest.raises(InputError, match=r"^clip\.amc: no \.asf skeleton in its folder"):
        find_asf(tmp_path / "none" / "clip.amc")
    assert clip_labels(f"hdm05/train/4/{AMC_NAME}") == {
        "subject": "bk", "action": "hopBothLegs1hops", "take": 20, "hdm05_class": 4
    }  # fmt: skip
    assert clip_labels("01/01_03.amc") == {"subject": "01", "take": 3} and clip_labels("x/walk.amc") == {}
    assert native_split("hdm05/test/3/a.amc") == "test" and native_split("train/x.amc") == "train"
    assert native_split("trainer/x.amc") is None and native_split("test.amc") is None


def test_convert_sample_folder_round_trip(sample, tmp_path):
    out = tmp_path / "s.h5"
    report = convert_dataset("amc", [sample], out)
    assert not report.failures and report.frames == {"train": 56}
    asf = read_asf(sample / ASF_NAME)
    expected = derive_trunk(asf_to_h36m(asf, read_amc(sample / AMC_NAME, asf)).joints)  # the default trunk: detector's
    with open_dataset(out) as ds:
        assert ds.kind == "amc" and len(ds) == 1
        seq = ds[AMC_NAME[:-4]].load()
    assert seq.fps == 120.0 and seq.num_frames == 56 and seq.split == "train" and seq.source == "sample"
    assert (seq.subject, seq.action, seq.up_axis, seq.frame) == ("bk", "hopBothLegs1hops", "y", "world")
    assert seq.extra["asf"] == ASF_NAME and seq.extra["take"] == 20 and seq.extra["units_native"] == "in"
    np.testing.assert_array_equal(seq.joints3d, expected)
    # resampled: 56 frames at 120 fps -> 1 + floor(55 / 2) at 60; a declared native rate of 100 -> 1 + floor(55 * 0.6)
    convert_dataset("amc", [sample / AMC_NAME], tmp_path / "r.h5", ConvertOptions(fps=60, native_fps={"*": 100}))
    with open_dataset(tmp_path / "r.h5") as ds:
        ref = ds[AMC_NAME[:-4]]
        assert ref.num_frames == 34 and ref.fps == 60 and ref.attrs["fps_native"] == 100


def test_convert_native_split_folders_and_tar_archive(sample, tmp_path):
    root = tmp_path / "hdm05"
    for split, actor in (("train", "bk"), ("test", "zz")):
        folder = root / split / "4"
        folder.mkdir(parents=True)
        shutil.copy(sample / ASF_NAME, folder / f"HDM_{actor}.asf")
        shutil.copy(sample / AMC_NAME, folder / AMC_NAME.replace("_bk_", f"_{actor}_"))
    (root / "extra").mkdir()  # outside train/test: mod10 (one clip -> train)
    shutil.copy(sample / ASF_NAME, root / "extra" / ASF_NAME)
    shutil.copy(sample / AMC_NAME, root / "extra" / "HDM_bk_other_001_120.amc")
    archive = tmp_path / "hdm05.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="hdm05")
    for src, source in ((root, "hdm05"), (archive, "hdm05")):
        out = tmp_path / f"{src.name}.h5"
        report = convert_dataset("amc", [src], out)
        assert not report.failures and report.sequences == {"train": 2, "test": 1}, report
        with open_dataset(out) as ds:
            test = next(r for r in ds if r.split == "test")
            assert test.attrs["subject"] == "zz" and test.attrs["hdm05_class"] == 4 and ds.source == source
    report = convert_dataset("amc", [root], tmp_path / "all_train.h5", ConvertOptions(split_rule="train"))
    assert report.sequences == {"train": 3}


def test_pipes_named_like_mocap_files_are_refused_at_once(tmp_path):
    for name in ("a.amc", "b.bvh"):
        os.mkfifo(tmp_path / name)  # reading would block until a writer comes
    with pytest.raises(InputError, match="a.amc: not a regular file"):
        read_amc(tmp_path / "a.amc", parse_asf(TINY_ASF, "tiny.asf"))
    with pytest.raises(InputError, match="b.bvh: not a regular file"):
        read_bvh(tmp_path / "b.bvh")


def test_detector_trunk_derives_pelvis_spine_and_thorax_and_keeps_the_rest(sample, tmp_path):
    convert_dataset("amc", [sample], tmp_path / "rig.h5", ConvertOptions(trunk="rig"))
    report = convert_dataset("amc", [sample], tmp_path / "det.h5")  # the default
    assert not report.failures
    with open_dataset(tmp_path / "rig.h5") as ds:
        rig = ds[AMC_NAME[:-4]].load()
    with open_dataset(tmp_path / "det.h5") as ds:
        det = ds[AMC_NAME[:-4]].load()
    assert rig.extra["trunk"] == "rig" and det.extra["trunk"] == "detector"
    kept = [j for j in range(17) if j not in (0, 7, 8)]
    np.testing.assert_array_equal(det.joints3d[:, kept], rig.joints3d[:, kept])
    pelvis = (rig.joints3d[:, 1] + rig.joints3d[:, 4]) / 2
    thorax = (rig.joints3d[:, 11] + rig.joints3d[:, 14]) / 2
    np.testing.assert_allclose(det.joints3d[:, 0], pelvis, atol=1e-6)
    np.testing.assert_allclose(det.joints3d[:, 8], thorax, atol=1e-6)
    np.testing.assert_allclose(det.joints3d[:, 7], (pelvis + thorax) / 2, atol=1e-6)
    # HDM05's root is not the middle of its hips: the rig's pelvis moves by centimetres
    assert np.linalg.norm(rig.joints3d[:, 0] - pelvis, axis=-1).min() > 0.05
    with pytest.raises(InputError, match="unknown trunk 'chest'; use rig or detector"):
        convert_dataset("amc", [sample], tmp_path / "bad.h5", ConvertOptions(trunk="chest"))
    assert not (tmp_path / "bad.h5").exists()


def test_training_data_with_mixed_trunks_is_warned_about(sample, tmp_path, caplog):
    from mocli.data.sources import load_sources

    for name, trunk in (("rig.h5", "rig"), ("det.h5", "detector"), ("det2.h5", "detector")):
        convert_dataset("amc", [sample], tmp_path / name, ConvertOptions(trunk=trunk))
    with caplog.at_level("WARNING", logger="mocli.data.clips"):
        load_sources([tmp_path / "det.h5", tmp_path / "det2.h5"])
    assert not caplog.records
    with caplog.at_level("WARNING", logger="mocli.data.clips"):
        sources = load_sources([tmp_path / "det.h5", tmp_path / "rig.h5"])
    assert len(sources) == 2
    assert [r.getMessage() for r in caplog.records] == [
        "the mocap files place pelvis, spine and thorax differently: det.h5 (detector), rig.h5 (rig); prepare them "
        "alike (mocli prepare dataset --trunk)"
    ]
