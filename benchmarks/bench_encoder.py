"""Encoder throughput: frames/s of the DSTformer forward pass (inference) and peak memory.

Each configuration runs in its own process so peak memory is its own. ``--impl reference`` runs the independent
MotionBERT-layout implementation in tests/reference (explicit softmax attention, frames folded into the batch) as
the baseline at equal precision.

    python benchmarks/bench_encoder.py                       # lite + full, fp32 + bf16, batch 1 and 4, mocli
    python benchmarks/bench_encoder.py --impl mocli,reference --models lite --batches 1
    python benchmarks/bench_encoder.py --device cuda --batches 1,16,64
    python benchmarks/bench_encoder.py --interleave --models full --precisions bf16 --batches 1

``--interleave`` runs mocli and the reference in one process, one forward each in turn, and prints the medians:
a fairer A/B on a noisy machine (peak memory is then not per implementation).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARCH = {"lite": "dstformer-lite", "full": "dstformer"}


def run_one(impl: str, model_name: str, precision: str, batch: int, T: int, device: str, seconds: float) -> dict:
    import torch

    sys.path.insert(0, str(REPO))
    from mocli import create_model
    from mocli.models.registry import ARCHS
    from mocli.utils.device import autocast

    dev = torch.device(device)
    if impl == "mocli":
        model = create_model(ARCH[model_name])
    else:
        from tests.reference.motionbert_ref import RefDSTformer

        cfg = ARCHS[ARCH[model_name]]
        model = RefDSTformer(dim_feat=cfg.dim_feat, dim_rep=cfg.dim_rep, depth=cfg.depth, num_heads=cfg.num_heads,
                             mlp_ratio=cfg.mlp_ratio, maxlen=cfg.maxlen)  # fmt: skip
    model = model.to(dev).eval()
    x = torch.randn(batch, T, 17, 3, device=dev)

    def step():
        with torch.inference_mode(), autocast(dev, precision):
            model(x)
        if dev.type == "cuda":
            torch.cuda.synchronize()

    step()
    step()  # warm-up: allocator, kernels, autocast caches
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    n, start = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - start < seconds:
        step()
        n += 1
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
    return {
        "impl": impl, "model": model_name, "precision": precision, "batch": batch, "T": T, "device": device,
        "frames_per_s": batch * T * n / elapsed, "ms_per_forward": 1000 * elapsed / n,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_cuda_mb": peak,
        "threads": torch.get_num_threads(),
    }  # fmt: skip


def interleaved(model_name: str, precision: str, batch: int, T: int, device: str, rounds: int) -> dict:
    """Median frames/s of mocli and the reference, alternating forwards in one process (same weights)."""
    import torch

    sys.path.insert(0, str(REPO))
    from mocli import create_model
    from mocli.models.registry import ARCHS
    from mocli.utils.device import autocast
    from tests.reference.motionbert_ref import RefDSTformer

    cfg = ARCHS[ARCH[model_name]]
    dev = torch.device(device)
    ref = RefDSTformer(dim_feat=cfg.dim_feat, dim_rep=cfg.dim_rep, depth=cfg.depth, num_heads=cfg.num_heads,
                       mlp_ratio=cfg.mlp_ratio, maxlen=cfg.maxlen).to(dev).eval()  # fmt: skip
    models = {"mocli": create_model(ARCH[model_name]).to(dev).eval(), "reference": ref}
    x = torch.randn(batch, T, 17, 3, device=dev)
    times: dict[str, list[float]] = {k: [] for k in models}
    with torch.inference_mode():
        for i in range(rounds + 1):
            for name, model in models.items():
                start = time.perf_counter()
                with autocast(dev, precision):
                    model(x)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                if i:  # the first round warms up
                    times[name].append(time.perf_counter() - start)
    return {k: batch * T / sorted(v)[len(v) // 2] for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="lite,full")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--batches", default="1,4")
    ap.add_argument("--impl", default="mocli", help="mocli, reference, or both comma-separated")
    ap.add_argument("--T", type=int, default=243)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seconds", type=float, default=8.0, help="timed seconds per configuration")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    ap.add_argument("--interleave", action="store_true", help="A/B mocli vs reference in one process")
    ap.add_argument("--rounds", type=int, default=5, help="timed forwards per implementation with --interleave")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(**json.loads(args.child))))
        return
    if args.interleave:
        print(f"{'model':5} {'prec':5} {'B':>3} {'mocli f/s':>10} {'reference f/s':>14}   (interleaved medians)")
        for model in args.models.split(","):
            for precision in args.precisions.split(","):
                for batch in map(int, args.batches.split(",")):
                    r = interleaved(model, precision, batch, args.T, args.device, args.rounds)
                    print(f"{model:5} {precision:5} {batch:>3} {r['mocli']:>10.1f} {r['reference']:>14.1f}", flush=True)
        return
    rows = []
    print(f"{'impl':9} {'model':5} {'prec':5} {'B':>3} {'frames/s':>9} {'ms/fwd':>8} {'peak MB':>8}", flush=True)
    for model in args.models.split(","):
        for precision in args.precisions.split(","):
            for batch in map(int, args.batches.split(",")):
                for impl in args.impl.split(","):
                    spec = dict(impl=impl, model_name=model, precision=precision, batch=batch, T=args.T,
                                device=args.device, seconds=args.seconds)  # fmt: skip
                    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                                         capture_output=True, text=True, env=os.environ)  # fmt: skip
                    if out.returncode:
                        print(f"{impl} {model} {precision} B={batch}: failed\n{out.stderr[-2000:]}")
                        continue
                    r = json.loads(out.stdout.strip().splitlines()[-1])
                    rows.append(r)
                    mem = r["peak_cuda_mb"] if r["peak_cuda_mb"] is not None else r["peak_rss_mb"]
                    print(f"{impl:9} {model:5} {precision:5} {batch:>3} {r['frames_per_s']:>9.1f} "
                          f"{r['ms_per_forward']:>8.1f} {mem:>8.0f}", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
