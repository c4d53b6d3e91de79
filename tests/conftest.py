from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} (the shared data folder beside the project) is absent")
    return SHARED


@pytest.fixture(autouse=True)
def _isolated_weights_home(tmp_path, monkeypatch):
    # imports without --out go to $MOCLI_HOME/weights: keep tests away from the user's folder
    monkeypatch.setenv("MOCLI_HOME", str(tmp_path / "mocli_home"))
