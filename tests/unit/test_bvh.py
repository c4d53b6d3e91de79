"""BVH parsing, forward kinematics and the rig -> H36M-17 mapping: hand-computed answers and the real sample rigs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mocli.data.bvh import euler_to_matrix, forward_kinematics, parse_bvh, read_bvh
from mocli.data.converters.bvh import read_labels
from mocli.data.converters.common import resample_linear, resample_nearest, split_mod10, unique_names
from mocli.data.rigs import (
    bvh_to_h36m,
    detect_units,
    detect_up_axis,
    map_rig,
    parse_joint_name,
    rotate_to_y_up,
)
from mocli.errors import InputError

SAMPLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mocap" / "sample"
needs_sample = pytest.mark.usefixtures("mocap_sample")  # fails, not skips, without ../shared (conftest.py)
RIGS = {  # file -> (units, virtual head top)
    "dataset-1_dash_normal_001.bvh": ("cm", False),
    "dataset-2_wave-left-hand_active_011.bvh": ("cm", True),
    "cmu_martial_08.bvh": ("cm", True),
    "reactidle_003_genuine.bvh": ("m", True),
}

THREE_JOINTS = """HIERARCHY
ROOT hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT knee
  {
    OFFSET 0 -10 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    End Site
    {
      OFFSET 0 -5 0
    }
  }
}
MOTION
Frames: 4
Frame Time: 0.0333333
0 0 0 0 0 0 0 0 0
1 2 3 90 0 0 0 0 0
0 0 0 0 0 0 90 0 0
0 0 0 90 90 0 0 0 0
"""


def humanoid_bvh(frames: int = 3, scale: float = 1.0, swing_deg: float = 10.0) -> str:
    """A small Mixamo-named humanoid (metres * ``scale``, Y-up, facing +Z, T-pose rest) swinging its right hip."""
    s = scale

    def joint(name: str, off: tuple[float, float, float], body: str, root: bool = False) -> str:
        kind = "ROOT" if root else "JOINT"
        chans = (
            "6 Xposition Yposition Zposition Zrotation Xrotation Yrotation"
            if root
            else "3 Zrotation Xrotation Yrotation"
        )
        o = " ".join(f"{v * s:g}" for v in off)
        return f"{kind} {name}\n{{\nOFFSET {o}\nCHANNELS {chans}\n{body}}}\n"

    def end(off: tuple[float, float, float]) -> str:
        return "End Site\n{\nOFFSET " + " ".join(f"{v * s:g}" for v in off) + "\n}\n"

    def leg(side: str, x: float) -> str:
        foot = joint(f"mixamorig:{side}Foot", (0, -0.42, 0), end((0, -0.05, 0.12)))
        knee = joint(f"mixamorig:{side}Leg", (0, -0.42, 0), foot)
        return joint(f"mixamorig:{side}UpLeg", (x, -0.05, 0), knee)

    def arm(side: str, x: float) -> str:
        hand = joint(f"mixamorig:{side}Hand", (x * 1.6, 0, 0), end((x * 0.6, 0, 0)))
        fore = joint(f"mixamorig:{side}ForeArm", (x * 1.8, 0, 0), hand)
        upper = joint(f"mixamorig:{side}Arm", (x * 0.8, 0, 0), fore)
        return joint(f"mixamorig:{side}Shoulder", (x * 0.3, 0.2, 0), upper)

    head = joint("mixamorig:Head", (0, 0.1, 0), end((0, 0.2, 0)))
    neck = joint("mixamorig:Neck", (0, 0.15, 0), head)
    chest = joint("mixamorig:Spine1", (0, 0.25, 0), neck + arm("Left", 0.125) + arm("Right", -0.125))
    spine = joint("mixamorig:Spine", (0, 0.1, 0), chest)
    hips = joint("mixamorig:Hips", (0, 0, 0), spine + leg("Left", 0.1) + leg("Right", -0.1), root=True)
    num_channels = 6 + 3 * (4 + 2 * 3 + 2 * 4)
    rows = []
    for t in range(frames):
        row = np.zeros(num_channels)
        row[1] = 0.95 * s
        row[6 + 3 * 15 + 1] = swing_deg * t  # Xrotation of RightUpLeg (joint 16 in file order)
        rows.append(" ".join(f"{v:g}" for v in row))
    return "HIERARCHY\n" + hips + f"MOTION\nFrames: {frames}\nFrame Time: 0.0333333\n" + "\n".join(rows) + "\n"


def _rot(axis: str, deg: float) -> np.ndarray:
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return {
        "X": np.array([[1, 0, 0], [0, c, -s], [0, s, c]]),
        "Y": np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]),
        "Z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
    }[axis]


def test_euler_is_intrinsic_in_channel_order():
    angles = np.array([30.0, -45.0, 60.0])
    expected = _rot("Z", 30) @ _rot("X", -45) @ _rot("Y", 60)
    np.testing.assert_allclose(euler_to_matrix(angles, "ZXY"), expected, atol=1e-12)
    assert not np.allclose(euler_to_matrix(angles, "ZXY"), euler_to_matrix(angles, "YXZ"))


def test_forward_kinematics_of_three_joints_gives_hand_computed_positions():
    bvh = parse_bvh(THREE_JOINTS, "three.bvh")
    assert bvh.joint_names == ("hips", "knee", "knee_end")
    assert bvh.num_channels == 9 and bvh.num_frames == 4 and bvh.fps == 30.0
    pos = forward_kinematics(bvh)
    expected = np.array(
        [
            [[0, 0, 0], [0, -10, 0], [0, -15, 0]],  # rest
            [[1, 2, 3], [11, 2, 3], [16, 2, 3]],  # root moved, Rz(90): -y -> +x
            [[0, 0, 0], [0, -10, 0], [0, -10, -5]],  # knee Rx(90): -y -> -z
            [[0, 0, 0], [0, 0, -10], [0, 0, -15]],  # root Rz(90) @ Rx(90): -y -> -z (Rx first on the vector)
        ],
        dtype=float,
    )
    np.testing.assert_allclose(pos, expected, atol=1e-9)


def test_position_channels_replace_the_offset():
    text = THREE_JOINTS.replace(
        "CHANNELS 3 Xrotation Yrotation Zrotation", "CHANNELS 4 Yposition Xrotation Yrotation Zrotation"
    )
    rows = ["0 0 0 0 0 0 -20 0 0 0"] * 4
    text = text.split("Frame Time: 0.0333333\n")[0] + "Frame Time: 0.0333333\n" + "\n".join(rows) + "\n"
    pos = forward_kinematics(parse_bvh(text))
    np.testing.assert_allclose(pos[0], [[0, 0, 0], [0, -20, 0], [0, -25, 0]], atol=1e-12)


def test_channel_count_mismatch_names_file_and_counts():
    text = THREE_JOINTS.replace("1 2 3 90 0 0 0 0 0", "1 2 3 90 0 0 0 0")
    with pytest.raises(InputError, match=r"bad\.bvh: frame 2 has 8 values but the hierarchy declares 9 channels"):
        parse_bvh(text, "bad.bvh")


@pytest.mark.parametrize(
    "text, match",
    [
        ("HIERARCHY\nROOT a\n{\nOFFSET 0 0 0\n}\n", "no MOTION"),
        (THREE_JOINTS.replace("OFFSET 0 -10 0", "OFFSET 0 -10"), "expected 3 numbers"),
        (THREE_JOINTS.replace("Zrotation Xrotation Yrotation", "Zrotation Xrotation Wrotation"), "unknown channel"),
        (THREE_JOINTS.replace("Frame Time: 0.0333333", ""), "Frame Time"),
        (THREE_JOINTS.replace("1 2 3 90", "1 2 x 90"), "not a number"),
    ],
)
def test_malformed_bvh_gives_one_line_errors(text, match):
    with pytest.raises(InputError, match=match) as info:
        parse_bvh(text, "m.bvh")
    assert "\n" not in str(info.value) and str(info.value).startswith("m.bvh")


def test_non_finite_values_are_refused_naming_line_frame_and_channel(tmp_path):
    # THREE_JOINTS: line 8 is the knee's OFFSET, lines 19-22 the 4 frames
    text = THREE_JOINTS.replace("1 2 3 90", "1 2 3 inf")
    with pytest.raises(InputError, match=r"^m\.bvh: line 20 \(frame 2\): hips Zrotation is inf \(1 non-finite"):
        parse_bvh(text, "m.bvh")
    header, motion = THREE_JOINTS.split("Frame Time: 0.0333333\n")
    all_inf = header + "Frame Time: 0.0333333\n" + "\n".join(["inf " * 9] * 4) + "\n"
    path = tmp_path / "inf.bvh"
    path.write_text(all_inf)
    with pytest.raises(InputError, match=r"^inf\.bvh: line 19 \(frame 1\): hips Xposition is inf \(36 non-finite"):
        read_bvh(path)
    for old, new, match in (
        ("OFFSET 0 -10 0", "OFFSET 0 nan 0", r"m\.bvh: line 8 holds NaN or infinite values"),
        ("Frame Time: 0.0333333", "Frame Time: nan", "Frame Time must be a positive number, got nan"),
    ):
        with pytest.raises(InputError, match=match):
            parse_bvh(THREE_JOINTS.replace(old, new), "m.bvh")


@pytest.mark.parametrize(
    "name, expected",
    [
        ("mixamorig:LeftUpLeg", ("l", "upleg")),
        ("UpperLeg_R", ("r", "upperleg")),
        ("thigh.L", ("l", "thigh")),
        ("lShldr", ("l", "shldr")),
        ("rForeArm", ("r", "forearm")),
        ("joint_Root", (None, "root")),
        ("J_Neck", (None, "neck")),
        ("Bip01 R Calf", ("r", "calf")),
        ("L_Hip", ("l", "hip")),
        ("Hand_Left", ("l", "hand")),
        ("spine.001", (None, "spine001")),
        ("lowerleg", (None, "lowerleg")),
    ],
)
def test_parse_joint_name(name, expected):
    assert parse_joint_name(name) == expected


def test_synthetic_humanoid_maps_exactly():
    bvh = parse_bvh(humanoid_bvh(frames=2, swing_deg=0.0), "h.bvh")
    motion = bvh_to_h36m(bvh)
    j = motion.joints[0]
    assert motion.units == "m" and motion.up_axis == "+y" and not motion.mapping.virtual_head_top
    np.testing.assert_allclose(j[0], [0, 0.95, 0], atol=1e-6)  # pelvis
    np.testing.assert_allclose(j[4], [0.1, 0.90, 0], atol=1e-6)  # left hip
    np.testing.assert_allclose(j[3], [-0.1, 0.06, 0], atol=1e-6)  # right ankle
    np.testing.assert_allclose(j[7], [0, 0.95 + 0.25, 0], atol=1e-6)  # half of the 0.5 m spine chain
    np.testing.assert_allclose(j[8], [0, 1.45, 0], atol=1e-6)  # thorax = neck
    np.testing.assert_allclose(j[10], [0, 1.75, 0], atol=1e-6)  # head end site
    np.testing.assert_allclose(j[11], [0.1375, 1.30 + 0.2, 0], atol=1e-6)  # left upper arm


def test_units_are_detected_and_declared():
    cm = bvh_to_h36m(parse_bvh(humanoid_bvh(scale=100.0), "cm.bvh"))
    m = bvh_to_h36m(parse_bvh(humanoid_bvh(scale=1.0), "m.bvh"))
    mm = bvh_to_h36m(parse_bvh(humanoid_bvh(scale=1000.0), "mm.bvh"))
    assert (cm.units, m.units, mm.units) == ("cm", "m", "mm")
    np.testing.assert_allclose(cm.joints, m.joints, atol=1e-5)
    np.testing.assert_allclose(mm.joints, m.joints, atol=1e-5)
    declared = bvh_to_h36m(parse_bvh(humanoid_bvh(scale=100.0), "cm.bvh"), units="m")
    np.testing.assert_allclose(declared.joints, m.joints * 100, rtol=1e-5)
    with pytest.raises(InputError, match="cannot detect units"):
        detect_units(m.joints * 1e5, "huge.bvh")


def test_up_axis_is_detected_and_rotated_to_y():
    m = bvh_to_h36m(parse_bvh(humanoid_bvh(frames=3), "h.bvh")).joints
    z_up = m @ np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]).T  # y -> z
    assert detect_up_axis(m) == "+y" and detect_up_axis(z_up) == "+z" and detect_up_axis(-m) == "-y"
    np.testing.assert_allclose(rotate_to_y_up(z_up, "z"), m, atol=1e-6)
    np.testing.assert_allclose(rotate_to_y_up(-m, "-y"), m * [-1, 1, 1], atol=1e-6)  # 180 degrees about X
    axes = {"+x": [1, 0, 0], "-x": [-1, 0, 0], "+y": [0, 1, 0], "-y": [0, -1, 0], "+z": [0, 0, 1], "-z": [0, 0, -1]}
    for axis, vec in axes.items():
        np.testing.assert_allclose(rotate_to_y_up(np.array(vec, dtype=float), axis), [0, 1, 0], atol=1e-12)
        assert np.isclose(np.linalg.det(rotate_to_y_up(np.eye(3), axis)), 1.0)


def test_missing_joints_are_named():
    text = humanoid_bvh().replace("mixamorig:LeftHand", "mixamorig:LeftPalm")
    with pytest.raises(InputError, match="cannot find joint.*l_wrist"):
        map_rig(parse_bvh(text.replace("mixamorig:LeftForeArm", "mixamorig:LeftLowerWing"), "x.bvh"))


def test_resample_30_to_15_halves_frames_and_keeps_shared_times():
    x = np.random.default_rng(0).normal(size=(20, 17, 3))
    y = resample_linear(x, 30, 15)
    assert y.shape == (10, 17, 3)
    np.testing.assert_allclose(y, x[::2], atol=1e-12)
    assert resample_linear(x[:19], 30, 15).shape[0] == 10  # frames 0, 2, ..., 18


def test_resample_interpolates_linearly():
    x = np.arange(5, dtype=float)[:, None] * 2.0  # value 2 * t_frames
    y = resample_linear(x, 24, 30)  # span 4/24 s -> 1 + floor(4 * 30 / 24) = 6 frames at k * 0.8 input frames
    np.testing.assert_allclose(y[:, 0], 2.0 * np.arange(6) * 0.8, atol=1e-12)
    np.testing.assert_array_equal(resample_nearest(np.arange(12), 120, 30), [0, 4, 8])


def test_split_rule_and_names():
    splits = split_mod10(21)
    assert [i for i, s in enumerate(splits) if s == "val"] == [9, 19]
    names = unique_names([("a", "x/08.bvh"), ("a", "y/08.bvh"), ("a", "y/09.bvh"), ("b", "x/08.bvh")])
    assert names == ["a:x:08", "y:08", "09", "b:x:08"]


@needs_sample
@pytest.mark.parametrize("filename", sorted(RIGS))
def test_sample_rigs_give_plausible_constant_human_skeletons(filename):
    bvh = read_bvh(SAMPLE / filename)
    motion = bvh_to_h36m(bvh)
    units, virtual = RIGS[filename]
    assert motion.units == units and motion.up_axis == "+y" and motion.mapping.virtual_head_top == virtual
    j = motion.joints.astype(np.float64)
    assert j.shape == (bvh.num_frames, 17, 3)

    def length(a: int, b: int) -> np.ndarray:
        return np.linalg.norm(j[:, a] - j[:, b], axis=-1)

    for a, b in [(1, 2), (2, 3), (4, 5), (5, 6), (11, 12), (12, 13), (14, 15), (15, 16), (9, 10)]:
        assert length(a, b).std() < 1e-3, f"bone {a}-{b} changes length"
    assert 0.3 < length(1, 2).mean() < 0.55 and 0.3 < length(4, 5).mean() < 0.55  # thighs
    assert 0.5 < length(0, 10).mean() < 0.9  # pelvis to head top
    assert (j[:, 10, 1] > j[:, 0, 1]).all() and (j[:, 8, 1] > j[:, 7, 1]).all()  # head over pelvis, thorax over spine

    # left/right: the facing direction from the hips (left x up) agrees with the one from the shoulders and with
    # the direction the toes point (an independent cue: feet point forward).
    up = np.array([0.0, 1.0, 0.0])
    facing_hips = np.cross(j[:, 4] - j[:, 1], up)
    facing_shoulders = np.cross(j[:, 11] - j[:, 14], up)
    pos = rotate_to_y_up(forward_kinematics(motion.mapping.bvh) * motion.scale, motion.up_axis)
    toes = []
    for k in (3, 6):
        ankle = int(np.argmax(motion.mapping.weights[k]))
        below, stack = [], [ankle]
        while stack:
            kids = motion.mapping.bvh.children(stack.pop())
            below += kids
            stack += kids
        tip = max(below, key=lambda i: np.linalg.norm(pos[0, i] - pos[0, ankle]))
        toes.append(pos[:, tip] - pos[:, ankle])
    feet = (toes[0] + toes[1]) * [1, 0, 1]

    def cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)

    assert cos(facing_hips, facing_shoulders).mean() > 0.8
    assert cos(facing_hips, feet).mean() > 0.5


@needs_sample
def test_bandai_labels_from_sidecar_and_lists(tmp_path):
    assert read_labels(SAMPLE / "dataset-1_dash_normal_001.bvh") == {
        "content": 2,
        "style": 0,
        "content_label": "dash",
        "style_label": "normal",
    }
    assert read_labels(SAMPLE / "dataset-2_wave-left-hand_active_011.bvh") == {"content": 5, "style": 0}
    assert read_labels(SAMPLE / "cmu_martial_08.bvh") == {}


def test_bandai_labels_in_the_archive_layout(tmp_path):
    data = tmp_path / "dataset-3" / "data"
    data.mkdir(parents=True)
    (tmp_path / "dataset-3" / "cfg").mkdir()
    (tmp_path / "dataset-3" / "cfg" / "content_label.txt").write_text("dataset-3_walk\ndataset-3_run\n")
    (tmp_path / "dataset-3" / "cfg" / "style_label.txt").write_text("dataset-3_happy\n")
    (data / "dataset-3_run_happy_001.json").write_text('{"content": 1, "style": 0}')
    labels = read_labels(data / "dataset-3_run_happy_001.bvh")
    assert labels == {"content": 1, "style": 0, "content_label": "run", "style_label": "happy"}
    (data / "dataset-3_run_happy_002.json").write_text('{"content": 7, "style": 0}')
    with pytest.raises(InputError, match="'content' = 7 is outside the 2 labels"):
        read_labels(data / "dataset-3_run_happy_002.bvh")
