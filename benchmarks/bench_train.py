"""Training throughput of the lift pretext: clips/s and frames/s per recipe, against today's default recipe.

A recipe is model x precision x compile x clip length x loader workers. Each one trains for real: AdamW steps
(forward, loss, backward, clipping, update) on batches from the LiftClipDataset behind a DataLoader (virtual
camera, projection, normalisation, flip, noise, masks, collation), in this process (workers 0) or in worker
processes. The first row is today's default recipe (fp32, no compile, workers 0, 81 frames or the model's maxlen
if shorter); "x today" is each row's frames/s over that row's.

Timing: after the warm-up steps (the first one compiles with ``--compile on``: its seconds are the "first step"
column, shorter when the compiler's on-disk cache already holds the graph), the recipes are timed in turns,
``--steps`` steps each per round, for ``--rounds`` rounds, so that a machine shared with other work slows every
recipe alike; the table gives the median rate over rounds and the spread (min-max). A first table gives the data
loader alone (clips/s) per clip length and worker count.

Threads are set once for the whole run (``--threads``, ``--interop-threads``): run the script once per setting
to compare them (compiled CPU kernels keep the thread count they were compiled with). On cores shared with other
busy processes, one thread per training process can be several times faster than two.

Data: the real mocap samples of the shared folder when present (H36M-17 from BVH), else synthetic motion.

    python benchmarks/bench_train.py                                   # small, fp32 and bf16, 81 frames
    python benchmarks/bench_train.py --compile off,on --clip-lens 27,43,81 --precisions fp32,bf16
    python benchmarks/bench_train.py --workers 0,1 --threads 1 --rounds 5
    python benchmarks/bench_train.py --models lite,full --clip-lens 243 --device cuda --batch 32 --json out.json

A *plan* is a whole training recipe in stages, ``--plan "NAME=PRECISION/T:STEPS,..."`` (repeatable; the first
model, no compile, workers 0): its seconds are each stage's steps x batch / that recipe's measured clips/s, summed,
and "x first" is the first plan's seconds over each plan's (how much sooner it ends on this machine). Whether two
plans reach the same quality is a matter of training them (docs/pretrain.md); this only times them:

    python benchmarks/bench_train.py --threads 1 --clip-lens 27,81 --plan "fp32=fp32/81:240" \
        --plan "short-first=bf16/27:340,bf16/81:80"
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mocli.config import RunConfig  # noqa: E402
from mocli.data.clips import LiftClipDataset  # noqa: E402
from mocli.data.sources import MotionSource  # noqa: E402
from mocli.models.registry import arch_config, create_model  # noqa: E402
from mocli.train import LiftTask, Trainer  # noqa: E402

ARCH = {"small": "dstformer-small", "lite": "dstformer-lite", "full": "dstformer", "tiny": "dstformer-tiny"}
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


@dataclass(frozen=True)
class Recipe:
    model: str
    precision: str
    compile: bool
    clip_len: int
    workers: int

    def label(self) -> str:
        on = "on" if self.compile else "off"
        return f"| {self.model} | {self.precision} | {on} | {self.clip_len} | {self.workers} |"


def today(model: str) -> Recipe:
    """The default recipe: TrainConfig's precision on CPU (fp32) and no compile, workers 0, 81 frames (the
    default lifter's clip) or the model's longest clip."""
    return Recipe(model, "fp32", False, min(81, arch_config(ARCH[model]).maxlen), 0)


def make_data(sources: list[MotionSource], clip_len: int) -> LiftClipDataset:
    cfg = RunConfig()
    cfg.data.clip_len, cfg.data.stride = clip_len, max(1, clip_len // 3)
    return LiftClipDataset(sources, cfg.data, seed=0)


def batches(data: LiftClipDataset, batch: int, count: int) -> list[list[tuple[int, int]]]:
    """``count`` batches of (epoch 0, clip) keys, cycling over the clips."""
    return [[(0, (k * batch + i) % len(data)) for i in range(batch)] for k in range(count)]


def loader(data: LiftClipDataset, keys: list[list[tuple[int, int]]], workers: int):
    return iter(torch.utils.data.DataLoader(data, batch_sampler=keys, num_workers=workers))


def time_loader(data: LiftClipDataset, batch: int, count: int, workers: int) -> float:
    """Clips per second of the DataLoader alone (worker start-up excluded)."""
    it = loader(data, batches(data, batch, count + 1), workers)
    next(it)
    start = time.perf_counter()
    for _ in range(count):
        next(it)
    return count * batch / (time.perf_counter() - start)


@dataclass
class Run:
    """One recipe's trainer and batch stream, and its timings."""

    recipe: Recipe
    trainer: Trainer
    stream: object
    batch: int
    first_step_s: float = 0.0
    rates: list[float] = field(default_factory=list)  # clips/s per round

    def steps(self, n: int, device: torch.device) -> None:
        sync(device)
        start = time.perf_counter()
        for _ in range(n):
            self.trainer.step(next(self.stream))
        sync(device)
        self.rates.append(n * self.batch / (time.perf_counter() - start))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def build(recipe: Recipe, sources, args, device: torch.device) -> Run:
    cfg = RunConfig()
    cfg.model, cfg.train.precision, cfg.train.compile = ARCH[recipe.model], recipe.precision, recipe.compile
    data = make_data(sources, recipe.clip_len)
    count = args.warmup + args.rounds * args.steps
    torch.manual_seed(0)
    trainer = Trainer(create_model(cfg.model), LiftTask(), cfg, device)
    run = Run(recipe, trainer, loader(data, batches(data, args.batch, count), recipe.workers), args.batch)
    start = time.perf_counter()
    run.trainer.step(next(run.stream))  # compiles with --compile on; allocator, autocast caches, kernels
    sync(device)
    run.first_step_s = time.perf_counter() - start
    for _ in range(args.warmup - 1):
        run.trainer.step(next(run.stream))
    return run


@dataclass(frozen=True)
class Plan:
    """A training recipe in stages: (precision, clip length, steps) each."""

    name: str
    stages: tuple[tuple[str, int, int], ...]

    @classmethod
    def parse(cls, text: str) -> Plan:
        """``NAME=PRECISION/T:STEPS,PRECISION/T:STEPS,...``; ValueError when malformed."""
        name, _, body = text.partition("=")
        stages = []
        try:
            for part in body.split(","):
                recipe, _, steps = part.strip().partition(":")
                precision, _, clip_len = recipe.partition("/")
                stages.append((precision.strip(), int(clip_len), int(steps)))
        except ValueError:
            stages = []
        if not name.strip() or not stages or min(st[2] for st in stages) < 1:
            raise ValueError(f"bad plan {text!r}")
        return cls(name.strip(), tuple(stages))

    def recipes(self, model: str) -> list[Recipe]:
        return [Recipe(model, precision, False, clip_len, 0) for precision, clip_len, _ in self.stages]

    def seconds(self, model: str, batch: int, rates: dict[Recipe, float]) -> float:
        """Seconds of training at the measured clips/s of each stage's recipe."""
        return sum(steps * batch / rates[r] for r, (_, _, steps) in zip(self.recipes(model), self.stages, strict=True))


def print_plans(plans: list[Plan], model: str, batch: int, rates: dict[Recipe, float]) -> list[dict]:
    """The plans' table: stages, steps, clips, frames, seconds and x first; returns its rows."""
    print("\n| plan | stages (precision/T:steps) | steps | clips | frames | seconds | x first |")
    print("|---|---|---|---|---|---|---|")
    first, rows = plans[0].seconds(model, batch, rates), []
    for plan in plans:
        secs = plan.seconds(model, batch, rates)
        steps = sum(st[2] for st in plan.stages)
        frames = sum(st[1] * st[2] * batch for st in plan.stages)
        text = ", ".join(f"{p}/{t}:{n}" for p, t, n in plan.stages)
        print(f"| {plan.name} | {text} | {steps} | {steps * batch} | {frames} | {secs:.0f} | {first / secs:.2f} |")
        rows.append({"plan": plan.name, "stages": plan.stages, "steps": steps, "seconds": secs})
        rows[-1]["x_first"] = first / secs
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="small", help="comma list of small, lite, full, tiny")
    ap.add_argument("--precisions", default="fp32,bf16", help="comma list of fp32, bf16 (fp16: CUDA)")
    ap.add_argument("--compile", default="off", help="comma list of off, on (torch.compile of the training forward)")
    ap.add_argument("--clip-lens", default="81", help="comma list of clip lengths T (at most the model's maxlen)")
    ap.add_argument("--workers", default="0", help="comma list of DataLoader worker counts")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=2, help="timed optimisation steps per recipe and round")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of timing, every recipe in turn")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per recipe (the first one compiles)")
    ap.add_argument("--loader-batches", type=int, default=10, help="batches for the loader-alone table")
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    ap.add_argument("--interop-threads", type=int, default=0, help="torch.set_num_interop_threads (0: default)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--plan", action="append", default=[], help="NAME=PRECISION/T:STEPS,... a staged recipe to time")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    if args.warmup < 1 or args.steps < 1 or args.rounds < 1:
        ap.error("--warmup, --steps and --rounds must be at least 1")
    try:
        plans = [Plan.parse(text) for text in args.plan]
    except ValueError as err:
        ap.error(f"{err}: expected NAME=PRECISION/T:STEPS,...")
    if args.interop_threads:
        torch.set_num_interop_threads(args.interop_threads)
    if args.threads:
        torch.set_num_threads(args.threads)
    # one static compiled graph per recipe, all alive at once (as in training, where shapes do not change)
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    torch._dynamo.config.automatic_dynamic_shapes = False

    def axis(text: str) -> list[str]:
        return [x.strip() for x in text.split(",") if x.strip()]

    device = torch.device(args.device)
    models = axis(args.models)
    lens = [int(x) for x in axis(args.clip_lens)]
    workers = [int(x) for x in axis(args.workers)]
    product = itertools.product(models, axis(args.precisions), axis(args.compile), lens, workers)
    recipes = [today(m) for m in models]
    for model, precision, comp, clip_len, w in product:
        recipe = Recipe(model, precision, comp == "on", clip_len, w)
        if recipe not in recipes:
            recipes.append(recipe)
    for recipe in (r for plan in plans for r in plan.recipes(models[0])):
        if recipe not in recipes:
            recipes.append(recipe)

    sources, what = load_motion()
    print(f"# lift training throughput: {device}, torch {torch.__version__}, {torch.get_num_threads()} threads "
          f"({torch.get_num_interop_threads()} interop), {what}")  # fmt: skip
    print(f"# batch {args.batch}; {args.warmup} warm-up steps, then {args.rounds} rounds of {args.steps} steps each\n")
    print("| T | workers | loader alone clips/s |\n|---|---|---|")
    for clip_len in sorted({r.clip_len for r in recipes}):
        data = make_data(sources, clip_len)
        for w in sorted({r.workers for r in recipes}):
            print(f"| {clip_len} | {w} | {time_loader(data, args.batch, args.loader_batches, w):.1f} |", flush=True)

    runs = []
    for recipe in recipes:
        runs.append(build(recipe, sources, args, device))
        print(f"# built {recipe.label()} first step {runs[-1].first_step_s:.1f} s", flush=True)
    for _ in range(args.rounds):
        for run in runs:
            run.steps(args.steps, device)

    base = {m: statistics.median(r.rates) * r.recipe.clip_len for r in runs for m in models if r.recipe == today(m)}
    print("\n| model | precision | compile | T | workers | first step s | clips/s (min-max) | frames/s | x today |")
    print("|---|---|---|---|---|---|---|---|---|")
    results = []
    for run in runs:
        r, rate = run.recipe, statistics.median(run.rates)
        frames = rate * r.clip_len
        note = " (today)" if r == today(r.model) else ""
        print(
            f"{r.label()} {run.first_step_s:.1f} | {rate:.2f} ({min(run.rates):.2f}-{max(run.rates):.2f}) | "
            f"{frames:.0f} | {frames / base[r.model]:.2f}{note} |"
        )
        row = {**r.__dict__, "batch": args.batch, "first_step_s": run.first_step_s, "clips_per_s": rate}
        row.update(frames_per_s=frames, rates=run.rates, x_today=frames / base[r.model], device=str(device))
        row.update(threads=torch.get_num_threads(), torch=torch.__version__)
        results.append(row)
    plan_rows = []
    if plans:
        rates = {run.recipe: statistics.median(run.rates) for run in runs}
        plan_rows = print_plans(plans, models[0], args.batch, rates)
    if args.json:
        args.json.write_text(json.dumps({"recipes": results, "plans": plan_rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
