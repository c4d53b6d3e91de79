"""Fixtures shared by the smoke tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.smoke.test_train import synthetic_motion


@pytest.fixture
def tiny_h5(tmp_path) -> Path:
    """A mocli HDF5 of two synthetic 3D walks: 'walk_a' (60 frames, train) and 'walk_b' (40 frames, val)."""
    from mocli.data import h5

    path = tmp_path / "tiny.h5"
    seqs = [
        h5.Sequence(name="walk_a", fps=30.0, joints3d=synthetic_motion(60, 5), split="train"),
        h5.Sequence(name="walk_b", fps=30.0, joints3d=synthetic_motion(40, 6), split="val"),
    ]
    h5.write_dataset(path, seqs, kind="test")
    return path
