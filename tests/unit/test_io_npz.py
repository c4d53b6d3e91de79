"""``save_npz``: the arrays numpy would store, and on a failed write one error, no file, no finaliser traceback."""

from __future__ import annotations

import errno
import gc
import sys

import numpy as np
import pytest

from mocli.utils.io import save_npz


def test_save_npz_stores_what_np_savez_compressed_stores(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"joints3d": rng.normal(size=(4, 17, 3)).astype(np.float32), "names": np.array(["a", "bc"]),
              "fps": np.float32(25.0), "missing": np.array([1, 3], np.int64)}  # fmt: skip
    np.savez_compressed(tmp_path / "numpy.npz", **arrays)
    save_npz(tmp_path / "ours.npz", arrays)
    with np.load(tmp_path / "numpy.npz") as ref, np.load(tmp_path / "ours.npz", allow_pickle=False) as ours:
        assert ours.files == ref.files
        for key in ref.files:
            assert ours[key].dtype == ref[key].dtype
            np.testing.assert_array_equal(ours[key], ref[key])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["numpy.npz", "ours.npz"]  # no temporary file left


def test_a_failed_write_raises_once_and_leaves_nothing(tmp_path, monkeypatch):
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    write_array = np.lib.format.write_array
    calls = []

    def disk_full_on_the_second_array(fp, array, **kwargs):
        calls.append(array.shape)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        write_array(fp, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", disk_full_on_the_second_array)
    with pytest.raises(OSError, match="No space left on device"):
        save_npz(tmp_path / "joints3d.npz", {"a": np.zeros(1000), "b": np.ones(1000)})
    gc.collect()
    assert unraisable == [] and list(tmp_path.iterdir()) == []
