from __future__ import annotations

import pytest
import torch

from mocli.errors import MocliError
from mocli.utils.device import autocast, resolve_device
from mocli.utils.io import atomic_path


def test_atomic_path_renames_on_success(tmp_path):
    out = tmp_path / "sub" / "result.npz"
    with atomic_path(out) as tmp:
        assert tmp.parent == out.parent and tmp.suffix == ".npz" and tmp.name.startswith(".")
        tmp.write_text("complete")
        assert not out.exists()
    assert out.read_text() == "complete"
    assert [p.name for p in out.parent.iterdir()] == ["result.npz"]


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    out = tmp_path / "result.json"
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(MocliError, match="expected auto"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(MocliError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_autocast_contexts():
    dev = torch.device("cpu")
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with autocast(dev, "fp32"):
        assert (a @ b).dtype == torch.float32
    with autocast(dev, "bf16"):
        assert (a @ b).dtype == torch.bfloat16
    with pytest.raises(MocliError):
        autocast(dev, "fp16")


def test_resolve_precision():
    from mocli.utils.device import resolve_precision

    assert resolve_precision(torch.device("cpu"), "auto") == "fp32"
    assert resolve_precision(torch.device("cpu"), "bf16") == "bf16"
