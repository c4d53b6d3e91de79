"""benchmarks/rendered_training.py, detector_pairs.py and training_views.py: the choice of training sequences,
the cameras, the outfits and the written pairs, on hand-made HDF5 files (no MediaPipe, no Anny: the fit and the
detector are stubbed)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from mocli.data.cameras import Camera, focal_from_fov, horizontal_basis, look_at, project_perspective, up_vector
from mocli.data.h5 import Sequence, open_dataset, write_dataset
from mocli.keypoints.sequence import KeypointSequence

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))  # as when the script runs: it imports its sibling modules by name
rm = importlib.import_module("rendered_mocap")
rt = importlib.import_module("rendered_training")
dp = importlib.import_module("detector_pairs")
tv = importlib.import_module("training_views")

TRAIN = {"HDM_bk_jog_001", "HDM_dg_walk_001", "011_acted", "dataset-1_walk_001"}


def _standing(T: int, seed: int) -> np.ndarray:
    """(T,17,3) metres, y up: a body-sized skeleton, pelvis 1 m up, drifting forward."""
    rng = np.random.default_rng(seed)
    base = rng.uniform([-0.25, -0.9, -0.15], [0.25, 0.7, 0.15], (17, 3))
    base[0] = 0.0
    return (base + [0.0, 1.0, 0.0] + np.linspace(0, 0.5, T)[:, None, None] * [1.0, 0.0, 0.0]).astype(np.float32)


def _files(tmp_path: Path) -> list[Path]:
    """hdm05.h5 (120 fps), reactidle.h5 (24 fps), bandai.h5 (30 fps): train, val, test and held-out sequences; the
    training ones are ``TRAIN``."""
    hdm = [  # name, subject, action, split, frames at 120 fps
        ("HDM_bk_jog_001", "bk", "jog", "train", 400),
        ("HDM_dg_walk_001", "dg", "walk", "train", 200),
        ("HDM_mm_jog_001", "mm", "jog", "train", 400),  # held-out person
        ("HDM_bd_lieDownFloor_001", "bd", "lieDownFloor", "train", 400),  # held-out motion
        ("HDM_bk_kick_001", "bk", "kick", "val", 400),
        ("HDM_dg_kick_001", "dg", "kick", "test", 400),
    ]
    files = [tmp_path / f"{n}.h5" for n in ("hdm05", "reactidle", "bandai")]
    write_dataset(files[0], [Sequence(n, 120.0, joints3d=_standing(T, i), split=split, source="hdm05", subject=subj,
                                      action=act) for i, (n, subj, act, split, T) in enumerate(hdm)],
                  kind="amc", source="hdm05")  # fmt: skip
    react = [("012_acted", "train"), ("011_acted", "train"), ("013_acted", "val")]  # 012: held-out person
    write_dataset(files[1], [Sequence(n, 24.0, joints3d=_standing(240, 10 + i), split=split, source="reactidle")
                             for i, (n, split) in enumerate(react)], kind="bvh", source="reactidle")  # fmt: skip
    # the held-out rules are per source: a Bandai sequence with HDM05's held-out subject and motion is trained on
    bandai = [Sequence("dataset-1_walk_001", 30.0, joints3d=_standing(60, 20), split="train", source="bandai",
                       subject="mm", action="lieDownFloor"),
              Sequence("dataset-1_run_001", 30.0, joints3d=_standing(60, 21), split="val")]  # fmt: skip
    write_dataset(files[2], bandai, kind="bvh", source="bandai")
    return files


# --- selection -------------------------------------------------------------------------------------------------------


def test_candidates_are_the_training_sequences_only(tmp_path):
    cands = rt.training_candidates(_files(tmp_path))
    assert {c.name: c.num_frames for c in cands} == {"HDM_bk_jog_001": 100, "HDM_dg_walk_001": 50,
                                                     "011_acted": 240, "dataset-1_walk_001": 60}  # fmt: skip
    assert {c.name: c.source for c in cands}["dataset-1_walk_001"] == "bandai"
    longer = rt.training_candidates(_files(tmp_path / "again"), min_frames=61)  # shorter than a clip: left out
    assert sorted(c.name for c in longer) == ["011_acted", "HDM_bk_jog_001"]


@pytest.mark.parametrize("seed", range(6))
def test_pick_spreads_over_files_and_never_takes_held_out_or_validation(tmp_path, seed):
    cands = rt.training_candidates(_files(tmp_path))
    three = rt.pick_training(cands, 3, 243, seed)
    assert sorted(c.path.name for c in three) == ["bandai.h5", "hdm05.h5", "reactidle.h5"]
    every = rt.pick_training(cands, 10, 243, seed)
    assert len(every) == 4 and {c.name for c in every} == TRAIN
    assert [c.name for c in three] == [c.name for c in rt.pick_training(cands, 3, 243, seed)]  # seeded


def test_output_names_are_unique():
    c = SimpleNamespace(source="hdm05", name="a")
    assert rt.output_names([c, SimpleNamespace(source="cmu", name="a"), c, c]) == [
        "hdm05:a", "cmu:a", "hdm05:a~2", "hdm05:a~3"]  # fmt: skip


# --- cameras ---------------------------------------------------------------------------------------------------------


def test_fit_in_image_backs_off_just_enough():
    cam = Camera(R=np.eye(3), t=np.zeros(3), focal=100.0, centre=np.array([100.0, 50.0]), image_size=(200, 100))
    inside = np.array([[[1.0, 0.0, 2.0]]])  # x pixel 150
    assert tv.fit_in_image(cam, inside, pad_m=0.0) is cam
    wide = np.array([[[3.0, 0.0, 2.0], [0.0, 0.0, 5.0]]])  # x pixel 250: needs z 3, so d = 1
    moved = tv.fit_in_image(cam, wide, pad_m=0.0)
    np.testing.assert_allclose(moved.t, [0.0, 0.0, 1.0])
    assert (moved.R == cam.R).all() and moved.focal == cam.focal and (moved.centre == cam.centre).all()
    tall = np.array([[[0.0, -1.0, 2.0]]])  # y above the image: 100 (1 + 0.5) / 50 = 3 = z + d with the pad
    np.testing.assert_allclose(tv.fit_in_image(cam, tall, pad_m=0.5).t, [0.0, 0.0, 1.0])
    px = project_perspective(wide + tv.fit_in_image(cam, wide, 0.0).t, 100.0, cam.centre)
    assert px[0, 0, 0] == pytest.approx(200.0)  # on the border, not beyond


def test_body_size_px_is_the_median_longer_side():
    cam = Camera(R=np.eye(3), t=np.zeros(3), focal=300.0, centre=np.array([320.0, 320.0]), image_size=(640, 640))
    upright = np.array([[0.0, -0.5, 5.0], [0.2, 0.5, 5.0]])  # 12 x 60 px
    lying = np.array([[-1.0, 0.0, 10.0], [1.0, 0.1, 10.0]])  # 60 x 3 px
    small = np.array([[0.0, 0.0, 10.0], [0.1, 0.2, 10.0]])  # 3 x 6 px
    frames = np.stack([upright, lying, small, np.full((2, 3), np.nan)])
    assert tv.body_size_px(cam, frames[:1]) == pytest.approx(60.0)
    assert tv.body_size_px(cam, frames[1:2]) == pytest.approx(60.0)
    assert tv.body_size_px(cam, frames) == pytest.approx(60.0)  # median of 60, 60, 6; the NaN frame left out
    assert tv.body_size_px(cam, frames[2:]) == pytest.approx(6.0)
    assert tv.body_size_px(cam, frames[3:]) == 0.0


def test_bring_closer_moves_forward_just_enough_then_fits():
    cam = Camera(R=np.eye(3), t=np.zeros(3), focal=300.0, centre=np.array([320.0, 320.0]), image_size=(640, 640))
    body = np.array([[[0.0, -0.5, 10.0], [0.0, 0.5, 10.0]]])  # 1 m tall, 30 px at 10 m
    closer = tv.bring_closer(cam, body, 150.0, pad_m=0.0)  # 300 / (10 - d) = 150: d = 8
    np.testing.assert_allclose(closer.t, [0.0, 0.0, -8.0], atol=1e-9)
    assert (closer.R == cam.R).all() and closer.focal == cam.focal and (closer.centre == cam.centre).all()
    assert tv.body_size_px(closer, body + closer.t) == pytest.approx(150.0)
    assert tv.bring_closer(cam, body, 30.0, pad_m=0.0) is cam  # big enough, and inside the image
    far_aside = body + [30.0, 0.0, 0.0]  # 0 px asked for (as drawn): only fit_in_image
    assert tv.bring_closer(cam, far_aside, 0.0, 0.0).t == pytest.approx(tv.fit_in_image(cam, far_aside, 0.0).t)
    assert tv.fit_in_image(cam, far_aside, 0.0).t[2] > 0
    # 800 px would need the camera nearer than NEAR_BODY_M: it stops there (z 0.5 m, 600 px, still inside)
    nearest = tv.bring_closer(cam, body, 800.0, pad_m=0.0)
    np.testing.assert_allclose(nearest.t, [0.0, 0.0, -(10.0 - tv.NEAR_BODY_M)], atol=1e-12)
    # off to the side: at 150 px (z 2) the body would be at x 450 px, past the border; fit_in_image backs off to
    # 300 * 3 / 320 = 2.8125 m
    aside = body + [3.0, 0.0, 0.0]
    fitted = tv.bring_closer(cam, aside, 150.0, pad_m=0.0)
    np.testing.assert_allclose(fitted.t, [0.0, 0.0, -8.0 + (2.8125 - 2.0)], atol=1e-9)
    assert project_perspective(aside + fitted.t, 300.0, cam.centre)[..., 0].max() == pytest.approx(640.0)
    # a body too big for the image is only backed off, as fit_in_image alone
    big = body * [1.0, 30.0, 1.0]
    assert tv.bring_closer(cam, big, 150.0, 0.0).t == pytest.approx(tv.fit_in_image(cam, big, 0.0).t)


def test_random_outfit_recolours_clothes_and_skin_only():
    raster = importlib.import_module("raster")
    eye, shoes, trousers, shirt, skin = (np.array(c, float) for _, c in raster.REGIONS)
    colours = np.stack([eye, shoes, trousers, shirt, skin, np.array(raster.GREY, float), shirt, skin])
    a = tv.random_outfit(colours, np.random.default_rng(5))
    b = tv.random_outfit(colours, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)  # seeded
    np.testing.assert_array_equal(a[[0, 5]], colours[[0, 5]])  # eyes and the rest kept
    np.testing.assert_array_equal(a[3], a[6])  # one shirt colour per outfit
    np.testing.assert_array_equal(a[4], a[7])
    assert not np.allclose(a[[1, 2, 3]], colours[[1, 2, 3]])
    assert (a[1] >= 15).all() and (a[1] <= 90).all() and (a[2] <= 200).all() and (a[3] <= 235).all()
    k = a[4] / skin  # the skin is its base colour times one factor
    assert np.allclose(k, k[0]) and 0.35 <= k[0] <= 1.05
    c = tv.random_outfit(colours, np.random.default_rng(6))
    assert not np.allclose(c[3], a[3])


@pytest.mark.parametrize("up_axis", ["y", "z"])
def test_camera_angles_recover_the_drawn_camera(up_axis):
    up = up_vector(up_axis)
    h0, h1 = horizontal_basis(up)
    target = np.array([0.3, 1.0, -0.2])
    for yaw, pitch, roll, dist, fov in [(30.0, 40.0, -12.0, 4.0, 50.0), (250.0, -15.0, 5.0, 7.5, 85.0)]:
        y, p = np.radians(yaw), np.radians(pitch)
        position = target + dist * (np.cos(p) * (np.cos(y) * h0 + np.sin(y) * h1) + np.sin(p) * up)
        R = look_at(position, target, up, np.radians(roll))
        cam = Camera(R, -R @ position, focal_from_fov(fov, 640), np.array([320.0, 320.0]), (640, 640))
        got = tv.camera_angles(cam, target, up_axis)
        expected = {"yaw_deg": yaw, "pitch_deg": pitch, "roll_deg": roll, "distance_m": dist, "fov_deg": fov}
        assert got == pytest.approx(expected, abs=1e-9)


def test_training_view_defaults_and_errors():
    view = tv.make_training_view()
    assert (view.pitch_deg, view.roll_deg, view.distance_m, view.fov_deg) == ((-20.0, 60.0), 15.0, (2.5, 8.0),
                                                                             (30.0, 90.0))  # fmt: skip
    assert view.aim_offset_m == (-0.5, 0.7) and view.image_size == (640, 640)
    other = tv.make_training_view(pitch="0,20", roll=0.0, aim="0,0")
    assert other.pitch_deg == (0.0, 20.0) and other.roll_deg == 0.0 and other.aim_offset_m == (0.0, 0.0)
    assert other.fov_deg == (30.0, 90.0)
    with pytest.raises(rt.InputError, match=r"^--roll 100: degrees must lie in \[0, 90\]"):
        tv.make_training_view(roll=100.0)
    with pytest.raises(rt.InputError, match="^--aim '1': "):
        tv.make_training_view(aim="1")


# --- the written pairs -----------------------------------------------------------------------------------------------


def test_detector_keypoints_zero_where_missed():
    T = 5
    kp = np.full((T, 17, 3), 7.0, np.float32)
    kp[..., 2] = 0.6
    kp[3, 0, 2] = 1.2  # confidence kept in [0, 1]
    valid = np.array([True, False, True, True, False])
    kp[~valid] = np.nan
    kp[2, 4] = np.nan  # a joint the detector did not give
    found = SimpleNamespace(keypoints=kp, valid=valid, num_frames=T)
    out, detected = dp.detector_keypoints(found, T + 1)  # a decoder dropped the last frame
    assert out.shape == (T, 17, 3) and out.dtype == np.float32 and np.isfinite(out).all()
    assert detected.tolist() == valid.tolist()
    assert (out[[1, 4]] == 0).all() and (out[2, 4] == 0).all()
    assert (out[0, :, :2] == 7.0).all() and (out[2, 5, :2] == 7.0).all() and out[2, 5, 2] == pytest.approx(0.6)
    assert out[3, 0, 2] == 1.0
    none, missed = dp.detector_keypoints(None, 3)
    assert none.shape == (3, 17, 3) and (none == 0).all() and not missed.any()


FRAMES = 12
QUAD_HALF = 0.08


def _fake_fit(body, joints, kind, options):
    """The Anny fit: a square facing the camera, centred on the pelvis (root-relative camera axes)."""
    verts = np.array([[-QUAD_HALF, -QUAD_HALF, 0], [-QUAD_HALF, QUAD_HALF, 0], [QUAD_HALF, QUAD_HALF, 0],
                      [QUAD_HALF, -QUAD_HALF, 0]], float)  # fmt: skip
    return SimpleNamespace(vertices=np.repeat(verts[None], len(joints), axis=0), error_mm=np.full(len(joints), 4.0))


def _fake_detect(video, options):
    """reactidle: nobody; bandai: every frame but the last decoded; hdm05: every other frame."""
    if video.stem.startswith("reactidle"):
        return None
    T = FRAMES - 1 if video.stem.startswith("bandai") else FRAMES
    t = np.arange(T)[:, None]
    kp = np.stack([10.0 + np.arange(17)[None].repeat(T, 0), 20.0 + t.repeat(17, 1), np.full((T, 17), 0.7)], -1)
    valid = np.ones(T, bool) if video.stem.startswith("bandai") else t[:, 0] % 2 == 0
    kp[~valid] = np.nan
    kp[~valid, :, 2] = 0.0
    return KeypointSequence(kp.astype(np.float32), (640, 640), 30.0, valid, np.zeros(T, bool))


@pytest.fixture
def stubbed(monkeypatch):
    import mocli.mesh.meshes

    faces = np.array([[0, 1, 2], [0, 2, 3]])
    monkeypatch.setattr(rt, "load_body", lambda look: (SimpleNamespace(faces=faces), np.array([[0, 0, 255.0]] * 2)))
    monkeypatch.setattr(mocli.mesh.meshes, "fit_mesh", _fake_fit)
    monkeypatch.setattr(rt, "detect_person", _fake_detect)
    monkeypatch.setattr(rm, "make_background", lambda w, h, rng: np.full((h, w, 3), 128, np.uint8))


def test_written_file_pairs_truth_and_detections(tmp_path, stubbed, capsys):
    files = _files(tmp_path)
    out = tmp_path / "out" / "rendered.h5"
    videos = tmp_path / "videos"
    argv = [a for f in files for a in ("--data", str(f))]
    argv += ["--sequences", "3", "--frames", str(FRAMES), "--keep-videos", str(videos), "--out", str(out)]
    argv += ["--keep-swaps", "--min-frames", "3"]  # the stub's keypoints as detected (unswap_sides has its own test)
    assert rt.main(argv) == 0
    printed = capsys.readouterr().out
    assert "wrote " in printed and "3 sequences" in printed
    assert [p.name for p in out.parent.iterdir()] == ["rendered.h5"]  # no temporary file left
    cands = {c.name: c for c in rt.training_candidates(files)}
    with open_dataset(out) as ds:
        assert ds.kind == "rendered" and len(ds) == 3
        seqs = {ref.name: ref.load() for ref in ds}
    by_source = {s.source: s for s in seqs.values()}
    assert set(by_source) == {"rendered-hdm05", "rendered-reactidle", "rendered-bandai"}
    for name, s in seqs.items():
        assert s.split == "train" and s.frame == "camera" and s.image_size == (640, 640)
        assert s.extra["original_file"] + ":" + s.extra["original_sequence"] in {
            f"{c.path.name}:{c.name}" for c in cands.values()}  # fmt: skip
        assert s.extra["original_sequence"] in TRAIN
        assert s.joints3d.dtype == np.float32 and s.keypoints2d.dtype == np.float32
        assert np.isfinite(s.keypoints2d).all() and np.isfinite(s.joints3d).all()
        assert (s.joints3d[..., 2] > 1.0).all()
        # the renderer's camera, computed again: joints3d projected with the written pinhole gives its pixels
        c = cands[s.extra["original_sequence"]]
        seq = rt.load_candidate(c, name, FRAMES)
        cam = tv.training_camera(seq, 0, tv.TRAIN_VIEW, min_px=tv.MIN_BODY_PX)
        n = len(s.joints3d)
        expected = project_perspective(rm.world_to_camera(seq.joints[:n], cam.R, cam.t), cam.focal, cam.centre)
        f, cx, cy = s.extra["focal_px"], s.extra["principal_x_px"], s.extra["principal_y_px"]
        assert (f, cx, cy) == (cam.focal, 320.0, 320.0)
        px = f * s.joints3d[..., :2].astype(np.float64) / s.joints3d[..., 2:3] + [cx, cy]
        np.testing.assert_allclose(px, expected, atol=1e-4)
        assert (px > 0).all() and (px < 640).all()  # the whole body in the image
        assert s.extra["camera_fov_deg"] == pytest.approx(np.degrees(2 * np.arctan(320 / f)), abs=1e-3)
        assert -20 <= s.extra["camera_pitch_deg"] <= 60 and abs(s.extra["camera_roll_deg"]) <= 15
        assert s.extra["fit_error_mm"] == 4.0
        truth = rm.world_to_camera(seq.joints[:n], cam.R, cam.t)
        assert s.extra["body_px"] == pytest.approx(tv.body_size_px(cam, truth), abs=0.05)
        assert s.extra["camera_distance_m"] >= 2.5 or s.extra["body_px"] >= tv.MIN_BODY_PX - 1.0  # drawn, or nearer
        # the drawn square is centred on the pelvis's projected pixel
        video = cv2.VideoCapture(str(videos / "videos" / f"{rm._file_name(name)}.mp4"))
        ok, image = video.read()
        video.release()
        assert ok
        mask = image[..., 2].astype(int) - image[..., 1] > 100  # red on grey
        rows, cols = np.nonzero(mask)
        assert len(rows) > 30
        np.testing.assert_allclose([cols.mean(), rows.mean()], px[0, 0], atol=1.0)
    hdm, react, bandai = by_source["rendered-hdm05"], by_source["rendered-reactidle"], by_source["rendered-bandai"]
    assert hdm.fps == 30.0 and react.fps == 24.0 and bandai.fps == 30.0
    assert hdm.num_frames == FRAMES and react.num_frames == FRAMES and bandai.num_frames == FRAMES - 1
    assert hdm.extra["original_fps"] == 120.0 and hdm.subject in ("bk", "dg") and hdm.action in ("jog", "walk")
    assert bandai.subject == "mm" and bandai.action == "lieDownFloor"
    assert hdm.extra["detection_rate"] == 0.5 and react.extra["detection_rate"] == 0.0
    assert bandai.extra["detection_rate"] == 1.0
    assert (hdm.keypoints2d[1::2] == 0).all()
    np.testing.assert_allclose(hdm.keypoints2d[::2, :, 2], 0.7, rtol=1e-6)
    np.testing.assert_allclose(hdm.keypoints2d[2, :, :2], np.stack([10.0 + np.arange(17), np.full(17, 22.0)], -1))
    assert (react.keypoints2d == 0).all()


def test_window_start_is_first_or_a_seeded_uniform_draw():
    c = rt.Candidate(Path("x.h5"), "a", "hdm05", "bk", "jog", 120.0, 100)
    assert rt.window_start(c, 30, 3, "hdm05:a") == 0
    starts = [rt.window_start(c, 30, seed, "hdm05:a", "random") for seed in range(400)]
    assert min(starts) == 0 and max(starts) == 70  # every start that leaves 30 frames, both ends included
    assert len(set(starts)) > 60
    assert starts[5] == rt.window_start(c, 30, 5, "hdm05:a", "random")  # seeded: the same again
    other = [rt.window_start(c, 30, seed, "hdm05:b", "random") for seed in range(400)]
    assert other != starts  # and by the name
    short = rt.Candidate(Path("x.h5"), "b", "hdm05", "bk", "jog", 120.0, 20)
    assert {rt.window_start(short, 30, seed, "hdm05:b", "random") for seed in range(20)} == {0}
    with pytest.raises(rt.InputError, match="first or random"):
        rt.window_start(c, 30, 0, "hdm05:a", "middle")


def test_random_start_renders_the_window_it_records(tmp_path, stubbed):
    files = _files(tmp_path)
    out = tmp_path / "rendered.h5"
    argv = [a for f in files for a in ("--data", str(f))]
    argv += ["--sequences", "3", "--frames", str(FRAMES), "--min-frames", "3", "--start", "random", "--seed", "4"]
    assert rt.main([*argv, "--keep-swaps", "--out", str(out)]) == 0
    cands = {c.name: c for c in rt.training_candidates(files)}
    with open_dataset(out) as ds:
        seqs = {ref.name: ref.load() for ref in ds}
    firsts = {}
    for name, s in seqs.items():
        c = cands[s.extra["original_sequence"]]
        step = {120.0: 4, 24.0: 1, 30.0: 1}[c.fps]
        start = rt.window_start(c, FRAMES, 4, name, "random")
        assert s.extra["original_first_frame"] == start * step
        firsts[c.source] = start
        # the truth is the original's frames from there, every step-th, in the written camera
        with open_dataset(c.path) as src:
            world = src[c.name].load().joints3d[start * step :: step][: len(s.joints3d)].astype(np.float64)
        cam = tv.training_camera(rt.load_candidate(c, name, FRAMES, start), 4, tv.TRAIN_VIEW, min_px=tv.MIN_BODY_PX)
        np.testing.assert_allclose(s.joints3d, rm.world_to_camera(world, cam.R, cam.t), atol=1e-5)
    assert all(v > 0 for v in firsts.values())  # with this seed every window starts past the first frame


def test_the_heavy_model_detects_and_is_recorded(tmp_path, stubbed, monkeypatch):
    """--mediapipe-model heavy reaches the detection step and names the sequences' detector mediapipe-heavy."""
    models = []

    def detect(video, options):
        models.append(options.detector_options.mediapipe_model)
        return _fake_detect(video, options)

    monkeypatch.setattr(rt, "detect_person", detect)
    files = _files(tmp_path)
    argv = [a for f in files for a in ("--data", str(f))] + ["--sequences", "3", "--frames", str(FRAMES)]
    argv += ["--min-frames", "3", "--keep-swaps"]
    for model, name in (("full", "mediapipe"), ("heavy", "mediapipe-heavy")):
        out = tmp_path / f"{model}.h5"
        assert rt.main([*argv, "--mediapipe-model", model, "--out", str(out)]) == 0
        with open_dataset(out) as ds:
            assert {ref.load().extra["detector"] for ref in ds} == {name}
    assert models == ["full"] * 3 + ["heavy"] * 3


def test_no_training_sequence_is_one_line_error_and_no_file(tmp_path, stubbed, capsys):
    only_val = tmp_path / "val.h5"
    write_dataset(only_val, [Sequence("a", 30.0, joints3d=_standing(30, 0), split="val", source="bandai"),
                             Sequence("012_x", 30.0, joints3d=_standing(30, 1), split="train", source="reactidle")],
                  kind="bvh", source="mixed")  # fmt: skip
    out = tmp_path / "out.h5"
    assert rt.main(["--data", str(only_val), "--sequences", "2", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "no training sequence" in err[0]
    assert not out.exists()


def test_failed_sequences_are_skipped_and_reported(tmp_path, stubbed, monkeypatch, capsys):
    files = _files(tmp_path)

    def flaky(video, options):
        if video.stem.startswith("bandai"):
            raise RuntimeError("decoder broke\nsecond line")
        return _fake_detect(video, options)

    monkeypatch.setattr(rt, "detect_person", flaky)
    out = tmp_path / "rendered.h5"
    argv = [a for f in files for a in ("--data", str(f))]
    argv += ["--sequences", "3", "--frames", "6", "--min-frames", "3", "--out", str(out)]
    assert rt.main(argv) == 1  # some failed: the file is written, the exit status says so
    printed = capsys.readouterr().out
    assert "1 failed and skipped:\n  bandai:dataset-1_walk_001: RuntimeError: decoder broke\n" in printed
    with open_dataset(out) as ds:
        assert sorted(ds.names()) == sorted(n for n in ds.names() if not n.startswith("bandai")) and len(ds) == 2


def test_unswap_sides_puts_a_swapped_leg_pair_right_and_leaves_the_rest():
    """Frame 0 as detected (3 px off), frame 1 with the legs exchanged (and their confidences), frame 2 with the
    arms exchanged and one left arm joint missed: only the exchanged pairs of frames 1 and 2 change."""
    truth = np.zeros((3, 17, 2))
    truth[:, 1:4, 0], truth[:, 4:7, 0] = 100.0, 200.0  # right leg at x 100, left at x 200
    truth[:, 11:14, 0], truth[:, 14:17, 0] = 300.0, 400.0  # left arm 300, right arm 400
    truth[..., 1] = np.arange(17) * 10.0
    kp = np.concatenate([truth + 3.0, np.ones((3, 17, 1))], axis=-1)
    kp[:, 1:4, 2] = 0.9  # right leg's confidence, to see it travel
    kp[1, 1:4], kp[1, 4:7] = kp[0, 4:7], kp[0, 1:4]
    kp[2, 11:14], kp[2, 14:17] = kp[0, 14:17], kp[0, 11:14]
    kp[2, 16] = 0.0  # a missed joint (x = y = conf = 0) travels too
    out, swapped = dp.unswap_sides(kp, truth)
    assert swapped["legs"].tolist() == [False, True, False]
    assert swapped["arms"].tolist() == [False, False, True]
    np.testing.assert_array_equal(out[0], kp[0])
    np.testing.assert_array_equal(out[1], kp[0])  # legs back, with the right leg's 0.9
    expected = kp[0].copy()
    expected[13] = 0.0  # the missed joint, now on its true side (the left wrist is index 13)
    np.testing.assert_array_equal(out[2], expected)
    np.testing.assert_array_equal(dp.unswap_sides(kp[:1], truth[:1])[0], kp[:1])  # nothing to do: unchanged
