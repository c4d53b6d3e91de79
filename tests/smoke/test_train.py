"""The training loop end to end on CPU with dstformer-tiny: overfitting real mocap, exact resume (also from the
time-based save), DDP equivalence, the pretext registry, and `mocli pretrain` through the CLI."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from mocli.config import RunConfig
from mocli.data.clips import LiftClipDataset
from mocli.data.sources import MotionSource, sources_from_arrays
from mocli.errors import MocliError
from mocli.models.registry import create_model
from mocli.train import LiftTask, Trainer, resume_config, run_pretrain

REPO = Path(__file__).resolve().parents[2]
MOCAP = REPO.parent / "shared" / "data" / "mocap" / "sample"


def synthetic_motion(num_frames: int, seed: int) -> np.ndarray:
    """(T, 17, 3) float32 world joints in metres, y up: a skeleton swinging its limbs while walking along x."""
    rng = np.random.default_rng(seed)
    heights = np.array([0.9, 0.9, 0.5, 0.1, 0.9, 0.5, 0.1, 1.15, 1.4, 1.5, 1.7, 1.4, 1.15, 0.9, 1.4, 1.15, 0.9])
    side = np.array([0, -1, -1, -1, 1, 1, 1, 0, 0, 0, 0, 1.2, 1.3, 1.3, -1.2, -1.3, -1.3]) * 0.15
    pose = np.stack([np.zeros(17), heights, side], axis=-1)
    t = np.arange(num_frames)[:, None] / 30.0
    phase = rng.uniform(0, 2 * np.pi, size=17)
    swing = 0.15 * np.sin(2 * np.pi * 1.2 * t + phase) * (heights < 1.6)  # (T, 17) limbs swing front/back
    clip = pose[None] + np.stack([swing + 0.8 * t, np.zeros_like(swing), 0.05 * np.cos(3 * t + phase)], axis=-1)
    return clip.astype(np.float32)


def tiny_config(tmp_path: Path, **train) -> RunConfig:
    cfg = RunConfig(model="dstformer-tiny", out_dir=str(tmp_path / "runs"), seed=7)
    cfg.data.clip_len, cfg.data.stride, cfg.data.join_2d_epoch = 16, 16, 1
    cfg.train.batch_size, cfg.train.epochs, cfg.train.lr, cfg.train.log_every = 4, 3, 1e-3, 1
    for k, v in train.items():
        setattr(cfg.train, k, v)
    return cfg


@pytest.fixture(scope="module")
def real_mocap() -> list[MotionSource]:
    """Real BVH clips (CMU martial arts 120 fps -> 30 fps; Bandai), H36M-17 in metres."""
    from mocli.data.bvh import read_bvh
    from mocli.data.rigs import bvh_to_h36m

    if not MOCAP.is_dir():
        pytest.fail(f"{MOCAP} is absent: these tests need the shared data folder beside the project (../shared)")
    out = []
    for name, step in (("cmu_martial_08.bvh", 4), ("dataset-1_guide_sad_001.bvh", 1)):
        motion = bvh_to_h36m(read_bvh(MOCAP / name))
        out.append(MotionSource(name=name, fps=motion.fps / step, joints3d=motion.joints[::step]))
    return out


def test_tiny_model_overfits_a_small_batch_of_real_mocap(real_mocap):
    cfg = RunConfig(model="dstformer-tiny")
    d = cfg.data
    d.clip_len, d.stride, d.noise, d.mask_joint_ratio, d.mask_frame_ratio, d.flip_prob = 16, 100, False, 0, 0, 0
    cfg.train.lr, cfg.train.weight_decay = 2e-3, 0.0
    data = LiftClipDataset(real_mocap[:1], d, seed=0)
    batch = torch.utils.data.default_collate([data[(0, i)] for i in (0, 2)])  # two 16-frame clips of real motion
    torch.manual_seed(0)
    trainer = Trainer(create_model("dstformer-tiny"), LiftTask(), cfg, torch.device("cpu"))
    losses = [float(trainer.step(batch)["loss"]) for _ in range(3)]
    while len(losses) < 500 and np.mean(losses[-5:]) > losses[0] / 12:
        losses.append(float(trainer.step(batch)["loss"]))
    assert np.mean(losses[-5:]) < losses[0] / 10, f"loss went from {losses[0]:.3f} to {np.mean(losses[-5:]):.3f}"


def _train_rows(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "samples_per_s"} for r in rows]


class _Crash:
    """A reporter that interrupts training after a given step (like a killed process)."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def start(self, total_steps: int, done_steps: int) -> None: ...

    def update(self, step: int, info: dict | None) -> None:
        if step == self.at_step:
            raise KeyboardInterrupt

    def message(self, text: str) -> None: ...

    def close(self) -> None: ...


def test_resumed_runs_repeat_the_uninterrupted_run_exactly(tmp_path, real_mocap):
    sources = real_mocap[:1] + sources_from_arrays([synthetic_motion(40, 1)], split="val")
    full = run_pretrain(tiny_config(tmp_path), run_dir=tmp_path / "full", sources=sources)
    assert full.finished and full.global_step > 6

    # stopped by --max-steps in the middle of the second epoch, then resumed
    cfg = tiny_config(tmp_path)
    cfg.max_steps = full.global_step // 2 + 1
    stopped = run_pretrain(cfg, run_dir=tmp_path / "stopped", sources=sources)
    assert not stopped.finished and stopped.global_step == cfg.max_steps
    cfg2, ckpt, run_dir = resume_config(tmp_path / "stopped")
    cfg2.max_steps = 0
    resumed = run_pretrain(cfg2, resume=ckpt, run_dir=run_dir, sources=sources)
    assert resumed.finished

    # killed between checkpoints: rows written after the last checkpoint are dropped and redone
    cfg = tiny_config(tmp_path, save_every=2)
    with pytest.raises(KeyboardInterrupt):
        run_pretrain(cfg, run_dir=tmp_path / "killed", sources=sources, reporter=_Crash(5))
    cfg3, ckpt, run_dir = resume_config(tmp_path / "killed")
    assert ckpt["data_position"]["global_step"] == 4
    run_pretrain(cfg3, resume=ckpt, run_dir=run_dir, sources=sources)

    expected = _train_rows(tmp_path / "full")
    assert any(r["kind"] == "val" for r in expected)
    params = torch.load(tmp_path / "full" / "model.pt", weights_only=True)["model"]
    for name in ("stopped", "killed"):
        assert _train_rows(tmp_path / name) == expected, name
        other = torch.load(tmp_path / name / "model.pt", weights_only=True)["model"]
        assert all(torch.equal(params[k], other[k]) for k in params), name
    for f in ("config.json", "log.csv", "curves.png", "last.pt", "best.pt", "model.pt"):
        assert (tmp_path / "full" / f).is_file(), f
    import mocli

    model = mocli.load_model(tmp_path / "full" / "best.pt")
    assert model(torch.zeros(1, 16, 17, 3)).shape == (1, 16, 17, 3)


class _ClockedCrash(_Crash):
    """Advances the loop's fake clock by ``minutes_per_step`` at every step, then interrupts after ``at_step``."""

    def __init__(self, at_step: int, minutes_per_step: float, clock: list[float]) -> None:
        super().__init__(at_step)
        self.minutes, self.clock = minutes_per_step, clock

    def update(self, step: int, info: dict | None) -> None:
        self.clock[0] = 60.0 * self.minutes * step
        super().update(step, info)


@pytest.mark.parametrize("save_minutes", [10.0, 0.0])
def test_a_run_killed_inside_its_first_epoch_resumes_from_the_time_based_save(tmp_path, monkeypatch, save_minutes):
    """train.save_minutes: with save_every off, a run killed at step 5 of a 6-step epoch, 4 minutes a step, has
    last.pt of step 3 (12 minutes > 10 after the start) and its resumption repeats the uninterrupted run exactly;
    with save_minutes 0 there is nothing to resume."""
    from mocli.training import loop

    clock = [0.0]
    monkeypatch.setattr(loop, "_now", lambda: clock[0])
    sources = sources_from_arrays([synthetic_motion(192, 1)])  # 12 clips of 16 frames, batch 2: 6 steps
    full = run_pretrain(tiny_config(tmp_path, epochs=1, batch_size=2, save_every=0), run_dir=tmp_path / "full",
                        sources=sources)  # fmt: skip
    assert full.finished and full.global_step == 6
    cfg = tiny_config(tmp_path, epochs=1, batch_size=2, save_every=0, save_minutes=save_minutes)
    with pytest.raises(KeyboardInterrupt):
        run_pretrain(cfg, run_dir=tmp_path / "killed", sources=sources, reporter=_ClockedCrash(5, 4.0, clock))
    if save_minutes == 0:
        assert not (tmp_path / "killed" / "last.pt").exists()
        with pytest.raises(MocliError, match="no last.pt"):
            resume_config(tmp_path / "killed")
        return
    cfg2, ckpt, run_dir = resume_config(tmp_path / "killed")
    assert ckpt["data_position"] == {"epoch": 0, "step_in_epoch": 3, "global_step": 3}
    assert cfg2.train.save_minutes == 10.0
    run_pretrain(cfg2, resume=ckpt, run_dir=run_dir, sources=sources)
    assert _train_rows(tmp_path / "killed") == _train_rows(tmp_path / "full")
    params = torch.load(tmp_path / "full" / "model.pt", weights_only=True)["model"]
    other = torch.load(tmp_path / "killed" / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(params[k], other[k]) for k in params)


def test_the_pretext_registry_names_what_the_command_offers():
    from mocli.cli.pretrain import Pretext
    from mocli.pretexts import PRETEXTS, get_pretext
    from mocli.training import lift_task

    assert [p.value for p in Pretext] == list(PRETEXTS) == ["lift", "mpm2d3d", "action-text", "mpm"]
    assert get_pretext("lift") is lift_task
    for name in PRETEXTS:
        module = get_pretext(name)
        assert callable(module.check_config) and callable(module.build), name
    with pytest.raises(MocliError, match="unknown pretext 'lfit'; available: lift, mpm2d3d, action-text, mpm"):
        get_pretext("lfit")


def test_precision_is_resolved_in_one_place():
    from mocli.utils.device import resolve_precision

    cpu = torch.device("cpu")
    assert [resolve_precision(cpu, p) for p in ("auto", "fp32", "bf16")] == ["fp32", "fp32", "bf16"]
    with pytest.raises(MocliError, match="fp16 needs CUDA"):
        resolve_precision(cpu, "fp16")
    with pytest.raises(MocliError, match="unknown precision 'fp64'"):
        resolve_precision(cpu, "fp64")
    cfg = tiny_config(Path("unused"), precision="bf16")
    assert Trainer(create_model("dstformer-tiny"), LiftTask(), cfg, cpu).precision == "bf16"


DDP_SCRIPT = """
import sys
import torch
torch.set_num_threads(1)
sys.path.insert(0, {repo!r})
from pathlib import Path
from mocli.data.sources import sources_from_arrays
from mocli.train import run_pretrain
from tests.smoke.test_train import synthetic_motion, tiny_config

out = Path(sys.argv[1])
cfg = tiny_config(out, epochs=1, lr=1e-4)
sources = sources_from_arrays([synthetic_motion(64, 3)]) + sources_from_arrays([synthetic_motion(48, 4)], split="val")
run_pretrain(cfg, run_dir=out / "run", sources=sources)
"""


def test_two_processes_under_torchrun_make_the_same_update_as_one(tmp_path):
    script = tmp_path / "ddp_step.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT.format(repo=str(REPO))))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    for _attempt in range(2):  # a second try only for gloo's rare abort while a process exits (seen once in CI)
        shutil.rmtree(tmp_path / "ddp", ignore_errors=True)
        proc = subprocess.run([*cmd, str(tmp_path / "ddp")], capture_output=True, text=True, env=env, timeout=120)
        if proc.returncode == 0 or "terminate called without an active exception" not in proc.stderr:
            break
    assert proc.returncode == 0, proc.stderr[-3000:]

    # the same global batch of 4 clips in one process (one epoch = one step: 4 clips of 16 frames, batch 4)
    cfg = tiny_config(tmp_path / "single", epochs=1, lr=1e-4)
    sources = sources_from_arrays([synthetic_motion(64, 3)]) + sources_from_arrays(
        [synthetic_motion(48, 4)], split="val"
    )
    single = run_pretrain(cfg, run_dir=tmp_path / "single" / "run", sources=sources)
    assert single.global_step == 1

    ddp_params = torch.load(tmp_path / "ddp" / "run" / "model.pt", weights_only=True)["model"]
    one_params = torch.load(tmp_path / "single" / "run" / "model.pt", weights_only=True)["model"]
    torch.manual_seed(cfg.seed)  # the initial parameters, as run_pretrain seeds them
    init = create_model("dstformer-tiny").state_dict()
    moved = 0
    for k, v in one_params.items():
        torch.testing.assert_close(ddp_params[k], v, atol=1e-6, rtol=0, msg=k)
        moved += int(not torch.equal(v, init[k]))
    assert moved > 10  # the step changed the parameters
    ddp_rows, one_rows = _train_rows(tmp_path / "ddp" / "run"), _train_rows(tmp_path / "single" / "run")
    assert ddp_rows[0]["loss"] == pytest.approx(one_rows[0]["loss"], rel=1e-5)
    ddp_val, one_val = ddp_rows[-1], one_rows[-1]
    assert ddp_val["kind"] == "val" and ddp_val["val_mpjpe_mm"] == pytest.approx(one_val["val_mpjpe_mm"], rel=1e-4)


def _cli_app() -> typer.Typer:
    from mocli.cli.main import app

    return app


def test_cli_pretrain_runs_two_steps(tmp_path, tiny_h5):
    args = ["pretrain", "--data", str(tiny_h5), "--model", "dstformer-tiny", "--clip-len", "16", "--stride", "8"]
    args += ["--batch", "2", "--epochs", "1", "--max-steps", "2", "--out-dir", str(tmp_path / "runs"), "--name", "t"]
    result = CliRunner().invoke(_cli_app(), [*args, "--set", "train.log_every=1", "--set", "data.flip_prob=0"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "t"
    rows = _train_rows(run)
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2]
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["clip_len"] == 16 and config["train"]["log_every"] == 1 and config["data"]["flip_prob"] == 0
    import mocli

    assert mocli.load_model(run / "model.pt").cfg.dim_feat == 32
    again = CliRunner().invoke(_cli_app(), ["pretrain", "--resume", str(run), "--max-steps", "3"])
    assert again.exit_code == 0, again.output
    assert [r["step"] for r in _train_rows(run) if r["kind"] == "train"] == [1, 2, 3]


def test_cli_pretrain_init_starts_from_the_given_weights(tmp_path, tiny_h5):
    """--init: the new run's first step starts from the given checkpoint's weights (architecture taken from it)."""
    import mocli
    from mocli.models.checkpoint import build_checkpoint, save_checkpoint

    start = mocli.create_model("dstformer-tiny")
    with torch.no_grad():
        for p in start.parameters():
            p.add_(0.5)  # far from any fresh initialisation
    save_checkpoint(build_checkpoint(start, "dstformer-tiny"), tmp_path / "start.pt")
    args = ["pretrain", "--data", str(tiny_h5), "--init", str(tmp_path / "start.pt"), "--clip-len", "16"]
    args += ["--stride", "8", "--batch", "2", "--epochs", "1", "--max-steps", "1", "--lr", "1e-12"]
    args += ["--out-dir", str(tmp_path / "runs"), "--name", "warm", "--set", "train.warmup_steps=0"]
    result = CliRunner().invoke(_cli_app(), args)
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "runs" / "warm" / "config.json").read_text())
    assert config["model"] == "dstformer-tiny" and config["init"] == str(tmp_path / "start.pt")
    trained = mocli.load_model(tmp_path / "runs" / "warm" / "model.pt")
    for (name, a), b in zip(start.state_dict().items(), trained.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=name)  # lr 1e-12: one step moves nothing
    both = CliRunner().invoke(_cli_app(), [*args[:-4], "--resume", str(tmp_path / "runs" / "warm")])
    assert both.exit_code == 1 and "--init" in both.output


@pytest.mark.parametrize(
    "problem", ["missing", "garbage", "clip_too_long", "no_train_split", "unknown_key", "name_taken"]
)
def test_cli_bad_input_is_one_line(tmp_path, tiny_h5, problem):
    data = tiny_h5
    extra: list[str] = []
    if problem == "missing":
        data = tmp_path / "nope.h5"
    elif problem == "garbage":
        data = tmp_path / "garbage.h5"
        data.write_bytes(b"not hdf5 at all")
    elif problem == "clip_too_long":
        extra = ["--clip-len", "100"]  # dstformer-tiny has maxlen 81
    elif problem == "no_train_split":
        from mocli.data import h5

        data = tmp_path / "val_only.h5"
        only_val = h5.Sequence(name="v", fps=30.0, joints3d=synthetic_motion(40, 1), split="val")
        h5.write_dataset(data, [only_val], kind="t")
    elif problem == "unknown_key":
        extra = ["--set", "train.lrr=1"]
    elif problem == "name_taken":
        (tmp_path / "runs" / "t").mkdir(parents=True)
        (tmp_path / "runs" / "t" / "last.pt").write_bytes(b"")
    args = ["pretrain", "--data", str(data), "--model", "dstformer-tiny", "--clip-len", "16", "--batch", "2"]
    result = CliRunner().invoke(_cli_app(), [*args, "--out-dir", str(tmp_path / "runs"), "--name", "t", *extra])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "error:" in result.output
    assert len(result.output.split("error:", 1)[1].strip().splitlines()) == 1


def test_run_pretrain_rejects_bad_input_in_python(tmp_path):
    cfg = tiny_config(tmp_path)
    with pytest.raises(MocliError, match="shorter than the clip length|no training clips"):
        run_pretrain(cfg, run_dir=tmp_path / "r", sources=sources_from_arrays([synthetic_motion(8, 0)]))
    with pytest.raises(MocliError, match="no training sequences"):
        run_pretrain(cfg, run_dir=tmp_path / "r", sources=sources_from_arrays([synthetic_motion(40, 0)], split="val"))


def test_2d_only_sequences_join_after_the_curriculum_epoch(tmp_path):
    from mocli.data.cameras import ViewRange, image_25d, sample_camera, world_to_camera

    joints = synthetic_motion(64, 8)
    cam = sample_camera(np.random.default_rng(0), joints, "y", ViewRange())
    pixels = image_25d(world_to_camera(joints, cam.R, cam.t), cam)[0][..., :2]
    conf = np.random.default_rng(1).uniform(0.3, 1.0, size=(64, 17, 1))
    only_2d = MotionSource(name="detections", fps=30.0, keypoints2d=np.concatenate([pixels, conf], -1).astype("f4"))
    sources = sources_from_arrays([synthetic_motion(64, 9)]) + [only_2d]
    cfg = tiny_config(tmp_path, epochs=2)
    data = LiftClipDataset(sources, cfg.data, seed=0)
    sample = data[(0, len(data) - 1)]  # a 2D-only clip
    assert float(sample["has_3d"]) == 0.0 and float(sample["factor"].abs().max()) == 0.0
    assert float(sample["target"][..., 2].abs().max()) == 0.0
    assert set(np.unique(sample["weight_2d"].numpy())) <= set(np.unique(np.float32(conf))) | {0.0}
    assert len(data.active_clips(0)) == 4 and len(data.active_clips(1)) == 8  # join_2d_epoch = 1
    run_pretrain(cfg, run_dir=tmp_path / "curriculum", sources=sources)
    rows = [r for r in _train_rows(tmp_path / "curriculum") if r["kind"] == "train"]
    assert all(r["proj_2d"] == 0.0 for r in rows if r["epoch"] == 0)
    assert any(r["proj_2d"] > 0.0 for r in rows if r["epoch"] == 1)


def test_compiled_runs_checkpoint_the_plain_module_and_resume_without_compile(tmp_path, monkeypatch):
    """train.compile: last.pt and model.pt of a compiled run have the plain module's keys (no "_orig_mod."), load
    into an eager model with identical tensors, resume without compile, and end where an eager run ends. Compiled
    here by the aot_eager backend (the compile wrapper without C++ code generation); the slow test below checks
    the default backend's numerics."""
    import mocli

    compile_ = torch.compile
    monkeypatch.setattr(torch, "compile", lambda module: compile_(module, backend="aot_eager"))
    sources = sources_from_arrays([synthetic_motion(64, 3)])
    sources += sources_from_arrays([synthetic_motion(48, 4)], split="val")
    eager = run_pretrain(tiny_config(tmp_path, epochs=2), run_dir=tmp_path / "eager", sources=sources)
    cfg = tiny_config(tmp_path, epochs=2, compile=True)
    cfg.max_steps = 1
    run_pretrain(cfg, run_dir=tmp_path / "compiled", sources=sources)
    cfg2, ckpt, run_dir = resume_config(tmp_path / "compiled")
    torch.manual_seed(cfg.seed)
    plain = create_model("dstformer-tiny").state_dict()
    assert cfg2.train.compile and list(ckpt["model"]) == list(plain)
    assert not all(torch.equal(ckpt["model"][k], plain[k]) for k in plain)  # the compiled step trained them
    loaded = mocli.load_model(tmp_path / "compiled" / "model.pt").state_dict()  # an eager model, strict load
    assert all(torch.equal(loaded[k], ckpt["model"][k]) for k in plain)

    cfg2.train.compile, cfg2.max_steps = False, 0
    resumed = run_pretrain(cfg2, resume=ckpt, run_dir=run_dir, sources=sources)
    assert resumed.global_step == eager.global_step == 2
    expected = torch.load(tmp_path / "eager" / "model.pt", weights_only=True)["model"]
    got = torch.load(tmp_path / "compiled" / "model.pt", weights_only=True)["model"]
    for k, v in expected.items():
        torch.testing.assert_close(got[k], v, rtol=1e-4, atol=1e-6, msg=k)
    rows, ref = _train_rows(tmp_path / "compiled"), _train_rows(tmp_path / "eager")
    assert [(r["kind"], r["step"]) for r in rows] == [(r["kind"], r["step"]) for r in ref]
    for r, e in zip(rows, ref, strict=True):
        if r["kind"] == "train":
            assert r["loss"] == pytest.approx(e["loss"], rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(("precision", "tol"), [("fp32", 1e-5), ("bf16", 5e-3)])
def test_inductor_compiled_steps_match_eager_steps(tmp_path, precision, tol):
    """Compiled (inductor, C++ kernels) optimisation steps give eager steps' losses and gradients: the same maths,
    fused. A one-level tiny model keeps the compile short."""
    cfg = tiny_config(tmp_path, precision=precision)
    data = LiftClipDataset(sources_from_arrays([synthetic_motion(64, 5)]), cfg.data, seed=0)
    batch = torch.utils.data.default_collate([data[(0, i)] for i in range(4)])
    runs = []
    for compiled in (False, True):
        cfg.train.compile = compiled
        torch.manual_seed(0)
        trainer = Trainer(create_model("dstformer-tiny", depth=1), LiftTask(), cfg, torch.device("cpu"))
        first = float(trainer.step(batch)["loss"])
        grads = torch.cat([p.grad.flatten() for p in trainer.model.parameters()])
        runs.append((first, grads, float(trainer.step(batch)["loss"])))
    (first, grads, second), (first_c, grads_c, second_c) = runs
    assert first_c == pytest.approx(first, rel=tol) and second_c == pytest.approx(second, rel=tol)
    assert second < first * 0.99  # the first step moved the parameters
    assert float((grads_c - grads).norm()) < tol * float(grads.norm())


def test_bf16_run_validates_in_float32_like_an_fp32_run(tmp_path):
    """A CPU bf16 run reaches its end-of-epoch validation (PA-MPJPE's SVD has no bf16 kernel: it raised
    NotImplementedError there) and validates in float32: its validation of the initial weights (max_steps 0 would
    train; here one epoch at lr 0 keeps the weights) equals the fp32 run's up to bf16 forward rounding."""
    sources = sources_from_arrays([synthetic_motion(64, 3)])
    sources += sources_from_arrays([synthetic_motion(48, 4)], split="val")
    vals = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        cfg = tiny_config(tmp_path, epochs=1, lr=0.0, precision=precision)
        run_pretrain(cfg, run_dir=tmp_path / precision, sources=sources)
        rows = [json.loads(line) for line in (tmp_path / precision / "log.jsonl").read_text().splitlines()]
        (val,) = [r for r in rows if r["kind"] == "val"]
        vals[precision] = val
    for key in ("val_mpjpe_mm", "val_pa_mpjpe_mm"):
        assert math.isfinite(vals["bf16"][key]) and vals["bf16"][key] > 0
        assert vals["bf16"][key] == pytest.approx(vals["fp32"][key], rel=0.02)


def test_gpu_script_sets_its_epochs_from_the_probe_run(tmp_path, tiny_h5):
    """scripts/train_gpu.sh sizes its run from a probe: epochs = int(0.85 * minutes * 60 * clips/s / clips), at least
    1, with the probe's last logged rate and its training clips. Its embedded Python runs here on a real tiny run."""
    from mocli.config import config_from_dict
    from mocli.training.lift_task import build_lift_data

    args = ["pretrain", "--data", str(tiny_h5), "--model", "dstformer-tiny", "--clip-len", "16", "--stride", "8"]
    args += ["--batch", "2", "--epochs", "1", "--max-steps", "2", "--out-dir", str(tmp_path / "runs"), "--name", "p"]
    result = CliRunner().invoke(_cli_app(), [*args, "--set", "train.log_every=1"])
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "p"
    script = (REPO / "scripts" / "train_gpu.sh").read_text()
    code = script.split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    rate = [r["samples_per_s"] for r in rows if r["kind"] == "train"][-1]
    train_set, _ = build_lift_data(config_from_dict(json.loads((run / "config.json").read_text())))
    clips = len(train_set.active_clips(0))
    assert clips == 7  # walk_a, 60 frames: 16-frame windows from 0, 8, ..., 40, and one ending on the last frame
    for minutes, want in ((1000.0, int(0.85 * 1000 * 60 * rate / clips)), (1e-9, 1)):
        out = subprocess.run([sys.executable, "-", str(run), str(minutes)], input=code, capture_output=True,
                             text=True, check=True)  # fmt: skip
        assert int(out.stdout.strip()) == want
