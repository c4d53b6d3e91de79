"""``mocli.infer`` (the Python API) against ``mocli infer`` (the command), and the result folder's guarantees:
one run per folder, the earlier result complete until the new one is, another process's inputs skipped."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import mocli
from mocli import infer_run
from mocli.cli.main import app
from mocli.errors import MocliError
from mocli.models.checkpoint import build_checkpoint, save_checkpoint
from mocli.results import InputResult, MotionResult, load_joints_npz, read_joints_npz, write_joints_npz
from tests.smoke.test_infer import _keypoints_npz

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
VOLATILE = ("created", "timings_s")  # the summary.json fields that differ between two identical runs


@pytest.fixture
def tiny_model(tmp_path) -> Path:
    model = mocli.create_model("dstformer-tiny", maxlen=27)
    return save_checkpoint(build_checkpoint(model, "dstformer-tiny", meta={"clip_len": 27}), tmp_path / "tiny.pt")


def _summary(folder: Path) -> dict:
    summary = json.loads((folder / "summary.json").read_text())
    return {k: v for k, v in summary.items() if k not in VOLATILE}


def test_python_api_writes_what_the_command_writes(tmp_path, tiny_model):
    src = _keypoints_npz(tmp_path / "walk.npz")
    r = runner.invoke(app, ["-q", "infer", str(src), "--model", str(tiny_model), "--out", str(tmp_path / "cli"),
                            "--bvh", "--no-flip", "--bones", "free"])  # fmt: skip
    assert r.exit_code == 0, r.output
    run = mocli.infer(src, out=tmp_path / "api", model=tiny_model, bvh=True, flip=False, bones="free")
    assert len(run) == 1 and run.ok
    res = run[0]
    assert (res.status, res.input, res.out_dir) == ("written", src, tmp_path / "api" / "walk")
    cli, api = tmp_path / "cli" / "walk", tmp_path / "api" / "walk"
    assert sorted(p.name for p in api.iterdir()) == sorted(p.name for p in cli.iterdir())
    assert [p.name for p in res.files] == ["joints3d.npz", "motion.bvh"]
    assert _summary(api) == _summary(cli) and res.summary["files"] == ["joints3d.npz", "motion.bvh"]
    a, c = load_joints_npz(api / "joints3d.npz"), load_joints_npz(cli / "joints3d.npz")
    assert sorted(a) == sorted(c)
    for key in a:
        np.testing.assert_array_equal(a[key], c[key])
    assert (api / "motion.bvh").read_text() == (cli / "motion.bvh").read_text()
    # the results object reads the files back: the same arrays
    (motion,) = res.motions()
    np.testing.assert_array_equal(motion.joints3d, c["joints3d"])
    assert motion.missing.tolist() == [10, 11, 12] and motion.fps == 25.0
    # a second call skips the complete folder, and says so
    again = mocli.infer([str(src)], out=tmp_path / "api", model=tiny_model)
    assert again[0].status == "skipped" and again[0].summary["files"] == ["joints3d.npz", "motion.bvh"]
    assert "mocli.infer(" in mocli.infer.__doc__ and "Returns:" in mocli.infer.__doc__


def test_python_api_options_are_checked_in_one_line(tmp_path, tiny_model):
    src = _keypoints_npz(tmp_path / "walk.npz")
    with pytest.raises(MocliError, match=r"task='pose': expected one of pose3d, action, mesh, all"):
        mocli.infer(src, out=tmp_path / "o", model=tiny_model, task="pose")
    with pytest.raises(MocliError, match="batch_size=0: must be at least 1"):
        mocli.infer(src, out=tmp_path / "o", model=tiny_model, batch_size=0)
    with pytest.raises(MocliError, match="detector='openpifpaf': expected one of mediapipe"):
        mocli.infer(src, out=tmp_path / "o", model=tiny_model, detector="openpifpaf")
    assert not (tmp_path / "o").exists()


def test_joints_npz_reads_back_as_the_motion_it_was_written_from(tmp_path):
    rng = np.random.default_rng(3)
    motion = MotionResult(
        joints3d=rng.normal(size=(5, 17, 3)).astype(np.float32), keypoints2d=rng.normal(size=(5, 17, 3)).astype(
            np.float32), fps=30.0, image_size=(640, 480), missing=np.array([1, 3]),
        root=rng.normal(size=(5, 3)).astype(np.float32), extras={"world_landmarks33": np.ones((5, 33, 3), np.float32)},
    )  # fmt: skip
    back = read_joints_npz(write_joints_npz(motion, tmp_path / "j.npz"))
    for name in ("joints3d", "keypoints2d", "missing", "root"):
        np.testing.assert_array_equal(getattr(back, name), getattr(motion, name))
    assert (back.fps, back.image_size, sorted(back.extras)) == (30.0, (640, 480), ["world_landmarks33"])
    assert InputResult(Path("x"), "failed", message="x: bad").files == []


def test_overwrite_replaces_the_folder_whole(tmp_path, tiny_model):
    """A result folder holds one run: motion.bvh of an earlier --bvh run goes with --overwrite."""
    src = _keypoints_npz(tmp_path / "walk.npz")
    out = tmp_path / "res"
    args = ["-q", "infer", str(src), "--model", str(tiny_model), "--out", str(out)]
    assert runner.invoke(app, [*args, "--bvh"]).exit_code == 0
    assert (out / "walk" / "motion.bvh").is_file()
    r = runner.invoke(app, [*args, "--overwrite"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (out / "walk").iterdir()) == ["joints3d.npz", "summary.json"]
    assert sorted(p.name for p in out.iterdir()) == ["walk"]  # no lock, no work folders


def test_overwrite_keeps_the_earlier_result_complete_until_the_new_one_is(tmp_path, tiny_model, monkeypatch):
    src = _keypoints_npz(tmp_path / "walk.npz")
    out = tmp_path / "res"
    first = mocli.infer(src, out=out, model=tiny_model, bvh=True)[0]
    before = {p.name: p.read_bytes() for p in (out / "walk").iterdir()}

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(infer_run, "write_summary", disk_full)  # the very last write of the new result
    run = mocli.infer(src, out=out, model=tiny_model, overwrite=True)
    assert run[0].status == "failed" and run[0].message == f"{src}: OSError: [Errno 28] No space left on device"
    assert {p.name: p.read_bytes() for p in (out / "walk").iterdir()} == before  # the earlier result, untouched
    assert sorted(p.name for p in out.iterdir()) == ["walk"] and first.status == "written"


def test_a_folder_takes_every_kind_of_input(tmp_path, tiny_model):
    folder = tmp_path / "clips"
    _keypoints_npz(folder / "a.npz")
    _keypoints_npz(folder / "sub" / "b.npz")
    _keypoints_npz(folder / ".hidden" / "c.npz")  # hidden folders (mocli's own work folders) are left out
    (folder / "notes.txt").write_text("not an input")
    (folder / "other.json").write_text("{}")  # JSON only with --format
    r = runner.invoke(app, ["-q", "infer", str(folder), "--model", str(tiny_model), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a", "b"]
    # two inputs of the same name would share a result folder: the second is an error, the first is written
    _keypoints_npz(folder / "sub" / "a.npz")
    run = mocli.infer(folder, out=tmp_path / "o2", model=tiny_model)
    assert [(r.input.relative_to(folder).as_posix(), r.status) for r in run] == [
        ("sub/a.npz", "failed"), ("a.npz", "written"), ("sub/b.npz", "written")]  # fmt: skip
    assert "same name as" in run[0].message and not run.ok


def test_another_process_s_inputs_are_skipped_by_the_api_too(tmp_path, tiny_model):
    src = _keypoints_npz(tmp_path / "a.npz")
    out = tmp_path / "res"
    out.mkdir()
    (out / ".a.mocli.lock").write_text(json.dumps({"pid": os.getppid(), "host": os.uname().nodename}))
    run = mocli.infer(src, out=out, model=tiny_model)
    assert run[0].status == "busy" and run.ok and "being written by another mocli process" in run[0].message


DISK_FULL = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
sys.argv = ["mocli", *sys.argv[1:]]
from mocli.cli.main import main
main()
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file-size limits")
def test_disk_full_is_one_line_and_leaves_nothing_half_written(tmp_path, tiny_model):
    src = _keypoints_npz(tmp_path / "long.npz", T=1500, missing=())
    out = tmp_path / "res"
    args = ["infer", str(src), "--model", str(tiny_model), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", DISK_FULL, *args], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {src}: OSError: [Errno 27] File too large"), r.stderr
    assert "Exception ignored" not in r.stderr and "Traceback" not in r.stderr
    assert list(out.iterdir()) == []  # no result folder, no half-written file, no work folder, no lock


def test_progress_counts_inputs_as_inputs_and_quiet_shows_none(tmp_path, tiny_model):
    a, b = _keypoints_npz(tmp_path / "a.npz"), _keypoints_npz(tmp_path / "b.npz")
    args = ["infer", str(a), str(b), "--model", str(tiny_model)]
    shown = runner.invoke(app, [*args, "--out", str(tmp_path / "o1")])
    assert shown.exit_code == 0, shown.output
    assert "inputs/s" in shown.output and "2/2" in shown.output and "frames/s" not in shown.output
    quiet = runner.invoke(app, ["-q", *args, "--out", str(tmp_path / "o2")])
    assert quiet.exit_code == 0 and quiet.output == ""


def test_the_rate_column_names_each_task_s_unit():
    from rich.console import Console
    from rich.progress import Progress

    from mocli.cli.batch import RateColumn

    now = [0.0]
    progress = Progress(console=Console(file=open(os.devnull, "w")), get_time=lambda: now[0], auto_refresh=False)
    inputs = progress.add_task("inputs", total=10, unit="inputs")
    progress.advance(inputs)
    now[0] = 2.0
    progress.advance(inputs)
    frames = progress.add_task("clip.mp4", total=100)
    column = RateColumn()
    assert column.render(progress.tasks[inputs]).plain == "  0.5 inputs/s"  # 1 more input in the 2 s after the 1st
    assert column.render(progress.tasks[frames]).plain == "  ... frames/s"


def test_every_stage_reports_progress(tmp_path, tiny_model):
    """Detection counts frames; lifting, BVH, preview and mesh each show as a stage of their own."""
    from mocli.infer_run import Reporter
    from tests.unit.test_mesh import write_body_smpl

    class Recording(Reporter):
        def __init__(self):
            self.stages, self.counts = [], {}

        def start(self, num_inputs):
            self.stages.append(("start", num_inputs, None))

        def stage(self, description, total=None, unit="frames"):
            self.stages.append((description, total, unit))
            self.counts[description] = 0

            def advance(n=1):
                self.counts[description] += n

            from contextlib import nullcontext

            return nullcontext(advance)

    video = REPO / "examples" / "sports2d_demo.mp4"
    src = _keypoints_npz(tmp_path / "walk.npz", T=6, missing=(2,))
    rec = Recording()
    run = mocli.infer([video, src], out=tmp_path / "o", model=tiny_model, max_frames=5, render=True, bvh=True,
                      task="mesh", smpl_dir=write_body_smpl(tmp_path / "smpl"), reporter=rec)  # fmt: skip
    assert run.ok and [r.status for r in run] == ["written", "written"]
    per_input = ["3D joints", "motion.bvh", "preview.mp4", "mesh"]
    stages = {str(src): [(f"walk.npz: {s}", None, "frames") for s in per_input]}
    stages[str(video)] = [("sports2d_demo.mp4", 5, "frames")] + [(f"sports2d_demo.mp4: {s}", None, "frames")
                                                                   for s in per_input]  # fmt: skip
    assert rec.stages == [("start", 2, None)] + [s for path in sorted(stages) for s in stages[path]]  # sorted inputs
    assert rec.counts["sports2d_demo.mp4"] == 5


def test_trajectory_in_joints_npz_follows_the_camera(tmp_path, tiny_model):
    """Every result gets ``root`` (T,3) in the camera of --focal/--fov (recorded in summary.json). The lifted pose
    does not depend on the focal length, so doubling it about doubles every depth (the 2D keypoints are the same
    size: the body must be about twice as far; not exactly, as the body's own depth stays the same in metres) and
    keeps where the pelvis projects, f x/z and f y/z (pixels from the image centre). mocli.trajectory's exact
    cases are in tests/unit/test_trajectory.py."""
    src = _keypoints_npz(tmp_path / "walk.npz")  # 1000 x 800 pixels, frames 10-12 missing
    roots = {}
    for focal in (800.0, 1600.0):
        run = mocli.infer(src, out=tmp_path / f"f{focal:.0f}", model=tiny_model, focal=focal)
        camera = run[0].summary["camera"]
        assert camera == {"focal_px": focal, "fov_deg": round(float(np.degrees(2 * np.arctan(500 / focal))), 3),
                          "principal_point_px": [500.0, 400.0], "focal_source": "focal"}  # fmt: skip
        roots[focal] = run[0].motions()[0].root
    near, far = roots[800.0], roots[1600.0]
    assert near.shape == (50, 3) and np.isnan(near[10:13]).all() and np.isfinite(near[13:]).all()
    ok = np.isfinite(near).all(-1)
    assert (near[ok, 2] > 0).all()  # in front of the camera
    np.testing.assert_allclose(far[ok, 2], 2 * near[ok, 2], rtol=0.1)
    np.testing.assert_allclose(1600 * far[ok, :2] / far[ok, 2:], 800 * near[ok, :2] / near[ok, 2:], atol=10.0)
    default = mocli.infer(src, out=tmp_path / "d", model=tiny_model)[0].summary["camera"]
    assert default["focal_source"] == "default" and default["fov_deg"] == 60.0


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"focal": 800.0, "fov": 60.0}, "--focal and --fov both given"),
        ({"focal": -1.0}, "--focal -1.0"),
        ({"fov": 180.0}, "--fov 180.0"),
        ({"max_lift_fps": -1.0}, "--max-lift-fps -1.0"),
        ({"limb_depth": 1.5}, "--limb-depth 1.5"),
        ({"limb_depth": float("nan")}, "--limb-depth nan"),
    ],
)
def test_bad_camera_options_are_one_line(tmp_path, tiny_model, options, needle):
    src = _keypoints_npz(tmp_path / "walk.npz")
    with pytest.raises(MocliError, match=needle):
        mocli.infer(src, out=tmp_path / "o", model=tiny_model, **options)
    assert not (tmp_path / "o").exists()


def test_limb_depths_are_an_option_as_summary_json_says(tmp_path, tiny_model):
    """limb_depth > 0 sets limb depths from bone lengths (``mocli.limb_depth``, by hand in
    tests/unit/test_limb_depth.py); the default, 0, is the lifter's own output."""
    src = _keypoints_npz(tmp_path / "walk.npz")
    on = mocli.infer(src, out=tmp_path / "on", model=tiny_model, limb_depth=0.5)[0]
    off = mocli.infer(src, out=tmp_path / "off", model=tiny_model)[0]
    assert on.summary["limb_depth"] == 0.5 and off.summary["limb_depth"] == 0.0
    a, b = on.motions()[0].joints3d, off.motions()[0].joints3d
    ok = np.isfinite(a).all((1, 2))
    assert ok.any() and (np.isfinite(b) == np.isfinite(a)).all()
    assert not np.allclose(a[ok], b[ok], atol=1e-4)


def test_a_fast_input_is_lifted_in_phases_as_summary_json_says(tmp_path, tiny_model):
    """A 120 frames/s input is lifted as two interleaved 60 frames/s sequences by default (mocli.lift.lift_phases;
    the exact merge is in tests/unit/test_lift.py), and at its own rate with max_lift_fps=0."""
    import dataclasses

    from mocli.keypoints.npz import load_keypoints_npz, save_keypoints_npz

    seq = load_keypoints_npz(_keypoints_npz(tmp_path / "k.npz"))
    fast = save_keypoints_npz(dataclasses.replace(seq, fps=120.0), tmp_path / "fast.npz")
    phased = mocli.infer(fast, out=tmp_path / "a", model=tiny_model)[0]
    direct = mocli.infer(fast, out=tmp_path / "b", model=tiny_model, max_lift_fps=0)[0]
    assert phased.summary["max_lift_fps"] == 60.0 and direct.summary["max_lift_fps"] == 0.0
    assert [r["lift_phases"] for r in phased.summary["results"]] == [2]
    assert [r["lift_phases"] for r in direct.summary["results"]] == [1]
    a, b = phased.motions()[0].joints3d, direct.motions()[0].joints3d
    assert np.isnan(a[10:13]).all() and np.isnan(b[10:13]).all()
    assert not np.allclose(a[13:], b[13:], atol=1e-4)


def test_a_person_lying_across_the_image_is_lifted_rolled_upright(tmp_path, tiny_model):
    """infer's default rolls a lying body upright for the lifter (mocli.models.tta.upright, by hand in
    tests/unit/test_tta_upright.py): a lying person's 3D differs with --no-upright, a standing person's does not."""
    from mocli.keypoints import KeypointSequence, save_keypoints_npz
    from tests.unit.test_tta_upright import STANDING, turned

    rng = np.random.default_rng(0)

    def person(points: np.ndarray, name: str) -> Path:
        kp = np.zeros((30, 17, 3), np.float32)
        kp[..., :2] = points * 400 + np.float32([320, 240]) + rng.normal(0, 1.0, (30, 17, 2))
        kp[..., 2] = 0.9
        seq = KeypointSequence(kp, (640, 480), 30.0, np.ones(30, bool), np.zeros(30, bool), source="test")
        return save_keypoints_npz(seq, tmp_path / f"{name}.npz")

    for name, points, differs in (("lying", turned(STANDING, 90.0), True), ("standing", STANDING, False)):
        src = person(points, name)
        rolled = mocli.infer(src, out=tmp_path / f"{name}_a", model=tiny_model)[0]
        plain = mocli.infer(src, out=tmp_path / f"{name}_b", model=tiny_model, upright=False)[0]
        assert rolled.summary["upright_tta"] is True and plain.summary["upright_tta"] is False
        a, b = rolled.motions()[0].joints3d, plain.motions()[0].joints3d
        assert np.isfinite(a).all() and (not np.allclose(a, b, atol=1e-4)) == differs, name


def test_mediapipes_own_3d_is_averaged_in_where_the_input_has_it(tmp_path, tiny_model):
    """An input with MediaPipe's world landmarks: by default (--detector-3d auto) and with a fixed weight they are
    mixed into the lifted joints (the mixing and the auto weight by hand: tests/unit/test_fuse_detector_3d.py);
    with 0, or without landmarks, the lifter alone; summary.json records the choice; a weight above 1 or another
    word is a one-line error."""
    import dataclasses

    from mocli.keypoints.npz import load_keypoints_npz, save_keypoints_npz

    seq = load_keypoints_npz(_keypoints_npz(tmp_path / "k.npz"))
    world = np.random.default_rng(3).normal(0.0, 0.3, size=(len(seq.keypoints), 33, 3)).astype(np.float32)
    world[~seq.valid] = np.nan
    with_world = save_keypoints_npz(dataclasses.replace(seq, extras={"world_landmarks33": world}), tmp_path / "w.npz")
    fused = mocli.infer(with_world, out=tmp_path / "a", model=tiny_model)[0]
    alone = mocli.infer(with_world, out=tmp_path / "b", model=tiny_model, detector_3d=0.0)[0]
    plain = mocli.infer(tmp_path / "k.npz", out=tmp_path / "c", model=tiny_model)[0]
    fixed = mocli.infer(with_world, out=tmp_path / "e", model=tiny_model, detector_3d="0.3")[0]
    assert fused.summary["detector_3d"] == "auto" and alone.summary["detector_3d"] == 0.0
    assert fixed.summary["detector_3d"] == 0.3
    frames_with_person = int(seq.valid.sum())  # world landmarks are NaN where the person is missing
    assert [r["detector_3d_frames"] for r in fused.summary["results"]] == [frames_with_person]
    assert [r["detector_3d_frames"] for r in fixed.summary["results"]] == [frames_with_person]
    assert [r["detector_3d_weight"] for r in fixed.summary["results"]] == [0.3]
    assert [r["detector_3d_weight"] for r in alone.summary["results"]] == [None]
    with np.load(fused.out_dir / "joints3d.npz") as data:  # the weight of each frame, NaN where not mixed
        weight = data["detector_3d_weight"]
    assert np.isfinite(weight).sum() == frames_with_person and ((weight >= 0) & (weight < 1))[seq.valid].all()
    assert fused.summary["results"][0]["detector_3d_weight"] == round(float(np.nanmean(weight)), 3)
    assert [r["detector_3d_frames"] for r in alone.summary["results"]] == [0]
    assert [r["detector_3d_frames"] for r in plain.summary["results"]] == [0]
    a, b, c, d = (r.motions()[0].joints3d for r in (fused, alone, plain, fixed))
    np.testing.assert_array_equal(b, c)
    ok = np.isfinite(a).all((1, 2))
    assert ok.sum() == np.isfinite(b).all((1, 2)).sum() and not np.allclose(a[ok], b[ok], atol=1e-3)
    assert not np.allclose(d[ok], b[ok], atol=1e-3) and not np.allclose(d[ok], a[ok], atol=1e-4)
    for bad in (1.5, "most"):
        with pytest.raises(MocliError, match=f"--detector-3d {bad}: give 'auto' or"):
            mocli.infer(with_world, out=tmp_path / "d", model=tiny_model, detector_3d=bad)


def test_auto_weight_follows_the_spread_stored_with_the_weights(tmp_path, tiny_model):
    """Weights exported with --detector-3d-spread S: --detector-3d auto gives each frame u^2 / (u^2 + S^2) for the
    same flip spread u as with infer's 0.06, so the weight of each frame follows from the one without (by hand:
    u^2 = w 0.06^2 / (1 - w)); summary.json records the spread."""
    import dataclasses

    from mocli.keypoints.npz import load_keypoints_npz, save_keypoints_npz

    seq = load_keypoints_npz(_keypoints_npz(tmp_path / "k.npz"))
    world = np.random.default_rng(3).normal(0.0, 0.3, size=(len(seq.keypoints), 33, 3)).astype(np.float32)
    src = save_keypoints_npz(dataclasses.replace(seq, extras={"world_landmarks33": world}), tmp_path / "w.npz")
    wide = tmp_path / "wide.pt"
    export = ["weights", "export", str(tiny_model), "--out", str(wide), "--detector-3d-spread", "0.2"]
    result = runner.invoke(app, export)
    assert result.exit_code == 0, result.output
    runs = [mocli.infer(src, out=tmp_path / name, model=m)[0] for name, m in (("a", tiny_model), ("b", wide))]
    assert [r.summary["detector_3d_spread_m"] for r in runs] == [0.06, 0.2]
    w06, w20 = (np.load(r.out_dir / "joints3d.npz")["detector_3d_weight"].astype(np.float64) for r in runs)
    u2 = w06 * 0.06**2 / (1.0 - w06)
    np.testing.assert_allclose(w20, u2 / (u2 + 0.2**2), rtol=1e-4, atol=1e-6)  # NaN where no person, in both
    mixed = np.isfinite(w06)
    assert mixed.sum() == seq.valid.sum() and (w20[mixed] < w06[mixed] - 0.1).all()
