"""mocli's HDF5 dataset file: exact round trip, lazy reads, schema checks, atomic writes."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest

from mocli.data.h5 import (
    SCHEMA_VERSION,
    DatasetWriter,
    Sequence,
    open_dataset,
    validate_dataset,
    write_dataset,
)
from mocli.errors import InputError


def _sequences() -> list[Sequence]:
    rng = np.random.default_rng(0)
    return [
        Sequence(
            name="walk_001",
            fps=30.0,
            joints3d=rng.normal(size=(40, 17, 3)).astype(np.float32),
            up_axis="y",
            split="train",
            source="bandai",
            action="walk",
            extra={"content": 0, "content_label": "walk", "head_top": "end_site", "flag": True, "fps_native": 30.0},
        ),
        Sequence(
            name="s_09_act_02_subact_01_ca_01",
            fps=50.0,
            keypoints2d=rng.uniform(0, 1000, size=(7, 17, 3)).astype(np.float32),
            joints3d=rng.normal(size=(7, 17, 3)).astype(np.float32),
            joints3d_image=rng.normal(size=(7, 17, 3)).astype(np.float32),
            factor_2_5d=rng.uniform(3, 5, size=7).astype(np.float32),
            frame="image_2.5d",
            up_axis=None,
            split="test",
            subject="S9",
            camera="54138969",
            image_size=(1000, 1002),
        ),
        Sequence(
            name="S001C001P001R001A001",
            fps=30.0,
            keypoints2d=rng.normal(size=(2, 9, 17, 3)).astype(np.float32),
            split="val",
            label=0,
        ),
        Sequence(
            name="mesh:clip",
            fps=25.0,
            keypoints2d=rng.normal(size=(5, 17, 3)).astype(np.float32),
            smpl_pose=rng.normal(size=(5, 72)).astype(np.float32),
            smpl_shape=rng.normal(size=(10,)).astype(np.float32),
            smpl_trans=rng.normal(size=(5, 3)).astype(np.float32),
        ),
    ]


def test_round_trip_is_exact(tmp_path):
    path = tmp_path / "d.h5"
    assert write_dataset(path, _sequences(), kind="test", source="unit") == 4
    with open_dataset(path) as ds:
        assert (ds.schema, ds.kind, ds.source) == (SCHEMA_VERSION, "test", "unit")
        assert ds.attrs["created_by"].startswith("mocli ") and ds.attrs["joint_layout"] == "h36m"
        assert len(ds) == 4 and ds.split_counts() == {"train": 2, "test": 1, "val": 1}
        for seq in _sequences():
            back = ds[seq.name].load()
            for name, arr in seq.arrays().items():
                got = getattr(back, name)
                assert got.dtype == np.float32 and np.array_equal(got, arr), name
            for f in ("fps", "frame", "up_axis", "split", "source", "subject", "action", "camera", "image_size"):
                assert getattr(back, f) == getattr(seq, f), f
            assert back.label == seq.label and back.extra == seq.extra and back.num_frames == seq.num_frames
    assert validate_dataset(path, check_values=True) == []


def test_lazy_reads_split_filter_and_pickling(tmp_path):
    path = tmp_path / "d.h5"
    seqs = _sequences()
    write_dataset(path, seqs, kind="test")
    ds = open_dataset(path, split="train")
    assert ds.names() == ["mesh:clip", "walk_001"] and ds.names("test") == ["s_09_act_02_subact_01_ca_01"]
    ref = ds["walk_001"]
    assert ref.num_frames == 40 and ref.fps == 30.0 and ref.array_names == ("joints3d",)
    assert ref.shape("joints3d") == (40, 17, 3)
    np.testing.assert_array_equal(ref.read("joints3d", slice(10, 20)), seqs[0].joints3d[10:20])
    np.testing.assert_array_equal(
        ds["S001C001P001R001A001"].read("keypoints2d", slice(1, 3)), seqs[2].keypoints2d[:, 1:3]
    )
    with pytest.raises(KeyError, match="has no 'smpl_pose'"):
        ref.read("smpl_pose")
    clone = pickle.loads(pickle.dumps(ds))  # what a DataLoader worker gets: reopens the file on use
    np.testing.assert_array_equal(clone["walk_001"].read("joints3d"), seqs[0].joints3d)
    ds.close()
    with pytest.raises(InputError, match="unknown split"):
        open_dataset(path, split="dev")


def test_newer_schema_is_refused_in_one_line(tmp_path):
    path = tmp_path / "future.h5"
    write_dataset(path, _sequences()[:1], kind="test")
    with h5py.File(path, "a") as f:
        f.attrs["mocli_schema"] = SCHEMA_VERSION + 1
    with pytest.raises(InputError) as info:
        open_dataset(path)
    assert str(info.value) == f"future.h5 was written by a newer mocli (schema {SCHEMA_VERSION + 1}); upgrade mocli"


def test_not_a_mocli_file(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(InputError, match="not a mocli dataset"):
        open_dataset(path)
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(InputError, match="cannot open"):
        open_dataset(tmp_path / "text.h5")
    with pytest.raises(InputError, match="no such dataset file"):
        open_dataset(tmp_path / "missing.h5")


def test_writes_are_atomic(tmp_path):
    path = tmp_path / "out.h5"
    with pytest.raises(RuntimeError), DatasetWriter(path, kind="test") as w:
        w.add(_sequences()[0])
        raise RuntimeError("converter crashed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "change, match",
    [
        ({"joints3d": np.zeros((4, 16, 3), np.float32)}, r"joints3d has shape \(4, 16, 3\)"),
        (
            {"keypoints2d": np.zeros((5, 17, 3), np.float32)},
            r"arrays disagree on the number of frames \(keypoints2d 5, joints3d 4\)",
        ),
        ({"split": "dev"}, "split 'dev'"),
        ({"fps": 0.0}, "fps must be positive"),
        ({"frame": "pixels"}, "frame 'pixels'"),
        ({"name": "a/b"}, "invalid sequence name"),
        ({"extra": {"fps": 3}}, "reserved names"),
    ],
)
def test_writer_rejects_sequences_that_break_the_schema(tmp_path, change, match):
    base = {"name": "a", "fps": 30.0, "joints3d": np.zeros((4, 17, 3), np.float32)}
    with DatasetWriter(tmp_path / "x.h5", kind="test") as w:
        with pytest.raises(ValueError, match=match):
            w.add(Sequence(**{**base, **change}))
        w.add(Sequence(**base))
        with pytest.raises(ValueError, match="already in"):
            w.add(Sequence(**base))


def test_writer_update_and_remove(tmp_path):
    path = tmp_path / "x.h5"
    with DatasetWriter(path, kind="test") as w:
        for seq in _sequences():
            w.add(seq)
        w.update("walk_001", split="val")
        w.remove("mesh:clip")
        assert w.attrs("walk_001")["split"] == "val" and "mesh:clip" not in w
    with open_dataset(path) as ds:
        assert ds["walk_001"].split == "val" and "mesh:clip" not in ds.names()


def test_validate_finds_tampering(tmp_path):
    path = tmp_path / "x.h5"
    write_dataset(path, _sequences(), kind="test")
    with h5py.File(path, "a") as f:
        f["sequences/walk_001"].attrs["num_frames"] = 41
        del f["sequences/mesh:clip/smpl_pose"]
        f["sequences/mesh:clip/smpl_pose"] = np.zeros((5, 72))  # float64
        f["sequences/S001C001P001R001A001/keypoints2d"][0, 0, 0, 0] = np.nan
    problems = validate_dataset(path, check_values=True)
    assert any("walk_001: num_frames 41 but arrays hold 40 frames" in p for p in problems)
    assert any("mesh:clip: smpl_pose has dtype float64" in p for p in problems)
    assert any("S001C001P001R001A001: keypoints2d holds NaN" in p for p in problems)
    assert len(problems) == 3
