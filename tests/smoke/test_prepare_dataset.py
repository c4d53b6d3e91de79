"""``mocli prepare dataset`` and ``mocli prepare inspect`` end to end through the CLI."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import h5py
import pytest
from typer.testing import CliRunner

from mocli.cli.main import app
from mocli.data.h5 import open_dataset
from tests.unit.test_bvh import THREE_JOINTS, humanoid_bvh

runner = CliRunner()
SAMPLE = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "mocap" / "sample"
needs_sample = pytest.mark.usefixtures("mocap_sample")  # fails, not skips, without ../shared (conftest.py)


def _invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _clips(folder: Path, count: int, bad: dict[int, str] | None = None) -> list[str]:
    """``count`` small humanoid clips clip_00.bvh ...; the indices in ``bad`` get the given text instead."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        (folder / f"clip_{i:02d}.bvh").write_text((bad or {}).get(i, humanoid_bvh(frames=4)))
        names.append(f"clip_{i:02d}")
    return names


@needs_sample
def test_bvh_sample_folder_to_h5_and_inspect(tmp_path):
    out = tmp_path / "sample.h5"
    result = _invoke("prepare", "dataset", "bvh", SAMPLE, "--out", out)
    assert result.exit_code == 0, result.output
    assert "3271" in result.stdout  # frames of the five sample clips
    with open_dataset(out) as ds:
        assert ds.kind == "bvh" and len(ds) == 5
        dash = ds["dataset-1_dash_normal_001"].load()
        assert dash.joints3d.shape == (20, 17, 3) and dash.fps == 30.0 and dash.up_axis == "y"
        assert dash.action == "dash" and dash.extra["style_label"] == "normal" and dash.extra["units_native"] == "cm"
        assert ds["reactidle_003_genuine"].fps == 24.0 and ds["cmu_martial_08"].num_frames == 2151
    result = _invoke("prepare", "inspect", out, "--check", "--names", "2")
    assert result.exit_code == 0, result.output
    for text in (
        "schema 1",
        "kind bvh",
        "joints3d (T, 17, 3) x5",
        "content_label",
        "dash 1",
        "valid",
        "cmu_martial_08",
    ):
        assert text in result.stdout, text


@needs_sample
def test_bvh_resampling_option(tmp_path):
    out = tmp_path / "s15.h5"
    files = [SAMPLE / "dataset-1_dash_normal_001.bvh", SAMPLE / "reactidle_003_genuine.bvh"]
    result = _invoke("prepare", "dataset", "bvh", *files, "--out", out, "--fps", "15")
    assert result.exit_code == 0, result.output
    with open_dataset(out) as ds:
        assert ds["dataset-1_dash_normal_001"].num_frames == 10  # 20 frames at 30 fps
        assert ds["reactidle_003_genuine"].num_frames == 574  # 1 + floor(917 * 15 / 24)
        assert ds["reactidle_003_genuine"].attrs["fps_native"] == 24.0 and ds.source == "sample"


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    out = tmp_path / "o.h5"
    clip = SAMPLE / "dataset-1_dash_normal_001.bvh"
    assert _invoke("prepare", "dataset", "bvh", clip, "--out", out, "--fps", "15").exit_code == 0
    before = out.read_bytes()
    result = _invoke("prepare", "dataset", "bvh", clip, "--out", out)
    assert result.exit_code == 1 and "--overwrite" in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1 and out.read_bytes() == before
    assert _invoke("prepare", "dataset", "bvh", clip, "--out", out, "--overwrite").exit_code == 0
    with open_dataset(out) as ds:
        assert ds["dataset-1_dash_normal_001"].num_frames == 20  # the new conversion, at the native 30 fps


def test_bad_files_are_skipped_reported_and_exit_1(tmp_path):
    bad = {
        3: THREE_JOINTS.replace("1 2 3 90 0 0 0 0 0", "1 2 3 90 0"),  # channel count mismatch
        5: THREE_JOINTS,  # no humanoid joint names
    }
    names = _clips(tmp_path / "mocap", 12, bad)
    out = tmp_path / "o.h5"
    result = _invoke("prepare", "dataset", "bvh", tmp_path / "mocap", "--out", out)
    assert result.exit_code == 1
    assert "clip_03.bvh: frame 2 has 5 values but the hierarchy declares 9 channels" in result.stderr
    assert "clip_05.bvh: cannot find joint(s) neck, head, l_hip" in result.stderr
    assert "2 file(s) failed" in result.stderr and "Traceback" not in result.output
    with open_dataset(out) as ds:
        assert ds.names() == [n for i, n in enumerate(names) if i not in bad]
        assert ds.names("val") == ["clip_09"]  # index 9 of the 12 sorted paths, failures included
        assert ds["clip_00"].attrs["path"] == "clip_00.bvh" and ds.source == "mocap"


def test_nothing_converted_leaves_no_file(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.bvh").write_text("HIERARCHY\nROOT a\n{\nOFFSET 0 0\n")
    result = _invoke("prepare", "dataset", "bvh", tmp_path / "in", "--out", tmp_path / "o.h5")
    assert result.exit_code == 1 and "no sequence converted" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_archive_input_and_options(tmp_path):
    names = _clips(tmp_path / "src" / "salsa", 3) + _clips(tmp_path / "src" / "other", 1)
    archive = tmp_path / "dance.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        tar.add(tmp_path / "src", arcname="train_data_bvh")
    out = tmp_path / "dance.h5"
    args = ["--native-fps", "salsa/*=60", "--split-rule", "train", "--source", "cmu", "--units", "m", "--up", "y"]
    result = _invoke("prepare", "dataset", "bvh", archive, "--out", out, *args)
    assert result.exit_code == 0, result.output
    with open_dataset(out) as ds:
        # stems where unique, else the path inside the archive
        expected = ["clip_01", "clip_02", "train_data_bvh:other:clip_00", "train_data_bvh:salsa:clip_00"]
        assert ds.source == "cmu" and ds.names("train") == expected
        assert ds["clip_01"].fps == 60.0 and ds["train_data_bvh:other:clip_00"].fps == 30.0
    assert len(names) == 4


def test_bad_options_are_one_line_errors(tmp_path):
    _clips(tmp_path / "m", 1)
    result = _invoke("prepare", "dataset", "bvh", tmp_path / "m", "--out", tmp_path / "o.h5", "--native-fps", "x=y")
    assert result.exit_code == 1 and "--native-fps 'x=y'" in result.stderr
    result = _invoke("prepare", "dataset", "bvh", tmp_path / "m", "--out", tmp_path / "o.h5", "--split-rule", "native")
    assert result.exit_code == 1 and "split rule 'native'" in result.stderr
    result = _invoke("prepare", "dataset", "amass", tmp_path / "m", "--out", tmp_path / "o.h5")
    assert result.exit_code == 1 and "amass needs --smpl-model" in result.stderr
    assert not (tmp_path / "o.h5").exists()


def test_inspect_refuses_newer_schema_in_one_line(tmp_path):
    _clips(tmp_path / "m", 1)
    out = tmp_path / "o.h5"
    assert _invoke("prepare", "dataset", "bvh", tmp_path / "m", "--out", out).exit_code == 0
    with h5py.File(out, "a") as f:
        f.attrs["mocli_schema"] = 99
    result = _invoke("prepare", "inspect", out)
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: o.h5 was written by a newer mocli (schema 99); upgrade mocli"


def test_help_shows_kinds_and_examples():
    result = _invoke("prepare", "dataset", "--help")
    assert result.exit_code == 0
    for kind in ("bvh", "amc", "h36m", "amass", "ntu", "mesh", "posetrack", "instavariety", "Examples"):
        assert kind in result.output
    assert _invoke("prepare", "inspect", "--help").exit_code == 0


def test_amc_sample_and_a_clip_without_skeleton(tmp_path):
    clip = SAMPLE / "HDM_bk_hopBothLegs1hops_020_120.amc"
    if not clip.is_file() or not (SAMPLE / "HDM_bk.asf").is_file():
        pytest.fail(f"the HDM05 sample (HDM_bk.asf + {clip.name}) is missing from {SAMPLE.resolve()}")
    out = tmp_path / "hdm.h5"
    result = _invoke("prepare", "dataset", "amc", SAMPLE, "--out", out)
    assert result.exit_code == 0, result.output
    assert "56" in result.stdout  # frames of the one clip
    result = _invoke("prepare", "inspect", out, "--check")
    for text in ("kind amc", "fps: 120 (1)", "subject: 1 values: bk 1", "action: 1 values: hopBothLegs1hops", "valid"):
        assert text in result.stdout, text
    (tmp_path / "lone").mkdir()
    shutil.copy(clip, tmp_path / "lone" / "HDM_bk_lone_001_120.amc")  # no .asf beside it
    result = _invoke("prepare", "dataset", "amc", clip, tmp_path / "lone", "--out", tmp_path / "two.h5")
    assert result.exit_code == 1
    assert "failed HDM_bk_lone_001_120.amc: no .asf skeleton in its folder" in result.stderr
    with open_dataset(tmp_path / "two.h5") as ds:
        assert ds.names() == ["HDM_bk_hopBothLegs1hops_020_120"]
