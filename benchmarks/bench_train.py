"""Training throughput of the lift pretext: clips/s and frames/s, data loading and compute timed apart.

For each model x precision x clip length:

- loader: the LiftClipDataset behind a DataLoader (virtual camera, projection, normalisation, flip, noise, masks,
  collation) producing batches alone, in this process (``--workers 0``) or in worker processes;
- step: one optimisation step (forward, loss, backward, clipping, AdamW) on a prefetched batch, alone;
- both: the rate when the two run one after the other in one process (1 / (1/loader + 1/step)).

Data: the real mocap samples of the shared folder when present (H36M-17 from BVH), else synthetic motion.

    python benchmarks/bench_train.py --models lite --clip-lens 81,243 --steps 3
    python benchmarks/bench_train.py --models lite,full --precisions fp32,bf16 --device cuda --batch 32
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mocli.config import RunConfig  # noqa: E402
from mocli.data.clips import LiftClipDataset, MotionSource, StepBatchSampler, epoch_order  # noqa: E402
from mocli.models.registry import create_model  # noqa: E402
from mocli.train import LiftTask, Trainer  # noqa: E402

ARCH = {"lite": "dstformer-lite", "full": "dstformer", "tiny": "dstformer-tiny"}
MOCAP = REPO.parent / "shared" / "data" / "mocap" / "sample"


def load_motion() -> tuple[list[MotionSource], str]:
    """Real sample BVH clips as H36M-17 sources, or synthetic motion when they are absent."""
    if MOCAP.is_dir():
        from mocli.data.bvh import read_bvh
        from mocli.data.rigs import bvh_to_h36m

        sources = []
        for path in sorted(MOCAP.glob("*.bvh")):
            motion = bvh_to_h36m(read_bvh(path))
            sources.append(MotionSource(name=path.name, fps=motion.fps, joints3d=motion.joints))
        return sources, f"real mocap ({sum(s.num_frames for s in sources)} frames, {MOCAP})"
    t = np.arange(3000)[:, None, None] / 30.0
    rng = np.random.default_rng(0)
    joints = rng.normal(size=(1, 17, 3)) * 0.3 + np.array([0.0, 1.0, 0.0]) + 0.1 * np.sin(t * rng.normal(size=(17, 3)))
    return [MotionSource(name="synthetic", fps=30.0, joints3d=joints.astype(np.float32))], "synthetic motion"


def time_loader(data: LiftClipDataset, batch: int, batches: int, workers: int) -> float:
    """Clips per second of the DataLoader alone."""
    order = epoch_order(data.active_clips(0), 0, 0, batch)
    sampler = StepBatchSampler(order, 0, batch, 0, 1, 0)
    loader = torch.utils.data.DataLoader(data, batch_sampler=sampler, num_workers=workers)
    it = iter(loader)
    next(it)  # worker start-up is not throughput
    n, start = 0, time.perf_counter()
    for _ in range(batches):
        try:
            next(it)
        except StopIteration:
            it = iter(loader)
            next(it)
        n += batch
    return n / (time.perf_counter() - start)


def time_step(cfg: RunConfig, batch: dict, steps: int, device: torch.device) -> float:
    """Clips per second of the optimisation step alone, on one prefetched batch."""
    trainer = Trainer(create_model(cfg.model), LiftTask(), cfg, device)
    batch = trainer.to_device(batch)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    trainer.step(batch)  # warm-up: allocator, autocast caches, kernels
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(batch)
    sync()
    return steps * len(batch["input"]) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="lite,full", help="comma list of lite, full, tiny")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--clip-lens", default="81,243")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3, help="timed optimisation steps per configuration")
    ap.add_argument("--loader-batches", type=int, default=20)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    device = torch.device(args.device)
    sources, what = load_motion()
    print(f"# lift training throughput: {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {what}")
    print(f"# global batch {args.batch}, {args.steps} timed steps, loader workers {args.workers}\n")
    print("| model | precision | T | loader clips/s | step clips/s | step frames/s | both clips/s | bottleneck |")
    print("|---|---|---|---|---|---|---|---|")
    results = []
    for clip_len in [int(x) for x in args.clip_lens.split(",")]:
        cfg = RunConfig()
        cfg.data.clip_len, cfg.data.stride = clip_len, max(1, clip_len // 3)
        data = LiftClipDataset(sources, cfg.data, seed=0)
        loader_rate = time_loader(data, args.batch, args.loader_batches, args.workers)
        batch = torch.utils.data.default_collate([data[(0, i % len(data))] for i in range(args.batch)])
        for model in args.models.split(","):
            for precision in args.precisions.split(","):
                cfg.model, cfg.train.precision = ARCH[model], precision
                torch.manual_seed(0)
                step_rate = time_step(cfg, batch, args.steps, device)
                both = 1 / (1 / loader_rate + 1 / step_rate)
                slow = "compute" if step_rate < loader_rate else "data"
                ratio = max(loader_rate, step_rate) / min(loader_rate, step_rate)
                row = {
                    "model": model, "precision": precision, "clip_len": clip_len, "batch": args.batch,
                    "loader_clips_per_s": loader_rate, "step_clips_per_s": step_rate,
                    "step_frames_per_s": step_rate * clip_len, "both_clips_per_s": both, "bottleneck": slow,
                    "device": str(device),
                }  # fmt: skip
                results.append(row)
                print(
                    f"| {model} | {precision} | {clip_len} | {loader_rate:.1f} | {step_rate:.2f} | "
                    f"{step_rate * clip_len:.0f} | {both:.2f} | {slow} ({ratio:.0f}x) |",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
