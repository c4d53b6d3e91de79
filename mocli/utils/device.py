"""Device and precision selection (CPU always works; CUDA when present)."""

from __future__ import annotations

import contextlib
import logging

import torch

from mocli.errors import MocliError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # autocast precisions (auto: bf16 on CUDA, else fp32)


def resolve_device(spec: str = "auto") -> torch.device:
    """'auto' -> cuda when available else cpu; 'cpu'; 'cuda' or 'cuda:N' (a clear error when CUDA is absent)."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise MocliError(f"--device {spec}: CUDA is not available on this machine (use --device cpu or auto)")
        dev = torch.device(spec)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise MocliError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
        return dev
    raise MocliError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N")


def resolve_precision(device: torch.device, precision: str = "auto") -> str:
    """The autocast precision to use on ``device``: 'auto' -> 'bf16' on CUDA devices that support it, else 'fp32'
    (on a 2-core CPU bf16 autocast gave the small default lifter no measurable speed-up); 'fp32', 'bf16' and
    'fp16' unchanged. Unknown names and fp16 off CUDA are one-line errors; bf16 on a CPU without native bf16
    (AVX512-BF16 / AMX) logs a warning (it runs, slowly)."""
    if precision not in PRECISIONS:
        raise MocliError(f"unknown precision {precision!r}: expected auto, fp32, bf16 or fp16")
    if precision == "auto":
        return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if precision == "fp16" and device.type != "cuda":
        raise MocliError("fp16 needs CUDA; use --precision bf16 (or fp32) on CPU")
    if precision == "bf16" and device.type == "cpu" and not cpu_has_bf16():
        log.warning("this CPU has no native bf16 (AVX512-BF16/AMX): bf16 autocast will be slow; fp32 may be faster")
    return precision


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX tiles). Without, bf16 autocast is emulated and
    trains many times slower than fp32 (scripts/train_default_weights.sh then trains its bf16 stages in fp32)."""
    checks = [getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None)]
    return any(bool(f()) for f in checks if f is not None)


def autocast(device: torch.device, precision: str = "fp32") -> contextlib.AbstractContextManager:
    """A context for the requested precision: 'fp32' (no autocast), 'bf16' or 'fp16' (fp16 on CUDA only)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        if device.type != "cuda":
            raise MocliError("fp16 autocast needs CUDA; use bf16 on CPU")
        return torch.autocast("cuda", dtype=torch.float16)
    raise MocliError(f"unknown precision {precision!r}: expected fp32, bf16 or fp16")
