from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """The shared data folder beside the project (CI always has it): a test that needs it fails without it."""
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} (the shared data folder beside the project, with the real mocap samples) is absent")
    return SHARED


@pytest.fixture
def mocap_sample(shared_dir) -> Path:
    """shared/data/mocap/sample: the real BVH and ASF/AMC samples (fails when absent)."""
    sample = shared_dir / "data" / "mocap" / "sample"
    if not sample.is_dir():
        pytest.fail(f"{sample} (the real mocap samples) is absent")
    return sample


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state (Python, numpy's global generator, torch), so a test that draws
    random inputs and compares them with a tolerance sees the same inputs on every run and machine."""
    import random

    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _isolated_weights_home(tmp_path, monkeypatch):
    # imports without --out go to $MOCLI_HOME/weights: keep tests away from the user's folder
    monkeypatch.setenv("MOCLI_HOME", str(tmp_path / "mocli_home"))
