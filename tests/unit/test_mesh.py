"""Meshes: fitting a body model to 3D joints (known pose and shape recovered, smoothness), the mesh head over a
sequence, mesh.npz and OBJ files, and the mesh benchmark's metrics on fixtures whose answer is known."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from mocli.errors import MocliError
from mocli.evaluation.mesh import EVAL_JOINTS_14, load_mesh_test_set, score_mesh
from mocli.mesh.fit import FitOptions, FitWeights, fit_sequence, kabsch_rotation
from mocli.mesh.meshes import MeshExporter, fit_mesh, mesh_exporter
from mocli.mesh.outputs import CAMERA_TO_Y_UP, MeshSequence, write_mesh_npz, write_obj, write_obj_frames
from mocli.mesh.smpl_body import SmplBody
from mocli.models.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from mocli.models.smpl import BodyModel, find_smpl_files

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
# SMPL rest joints (metres, Y up, facing +Z, the body's left at +X)
SMPL_REST = np.array([
    [0, 0, 0], [0.09, -0.08, 0], [-0.09, -0.08, 0], [0, 0.10, 0], [0.10, -0.48, 0], [-0.10, -0.48, 0],
    [0, 0.23, 0], [0.10, -0.88, 0], [-0.10, -0.88, 0], [0, 0.28, 0], [0.10, -0.93, 0.10], [-0.10, -0.93, 0.10],
    [0, 0.50, 0], [0.07, 0.42, 0], [-0.07, 0.42, 0], [0, 0.60, 0.02], [0.17, 0.43, 0], [-0.17, 0.43, 0],
    [0.42, 0.43, 0], [-0.42, 0.43, 0], [0.67, 0.43, 0], [-0.67, 0.43, 0], [0.75, 0.43, 0], [-0.75, 0.43, 0],
])  # fmt: skip
# H36M-17 joint -> SMPL joint whose vertex group it averages (10 = the upper half of the head group)
H36M_TO_SMPL = [0, 2, 5, 8, 1, 4, 7, 6, 12, 15, 15, 16, 18, 20, 17, 19, 21]


def write_body_smpl(folder: Path, seed: int = 0) -> Path:
    """A synthetic model in the SMPL layout shaped like a body: 24 groups of vertices around the rest joints, each
    rigidly skinned to its joint; shape directions move whole groups (so betas change bone lengths); the SMPL and
    H36M regressors average vertex groups, so every joint is known exactly."""
    rng = np.random.default_rng(seed)
    V, F = 6890, 13776
    group = np.arange(V) % 24
    offsets = rng.normal(size=(V, 3)) * 0.03
    first = np.zeros(V, bool)  # the first 24 vertices of each group (read by the H36M regressor)
    for g in range(24):
        first[np.flatnonzero(group == g)[:24]] = True
    for g in range(24):  # centred offsets: each group's mean, and the mean of its first 24, is its joint
        for part in (first, ~first):
            offsets[(group == g) & part] -= offsets[(group == g) & part].mean(0)
    v_template = SMPL_REST[group] + offsets
    weights = np.eye(24)[group]
    j_reg = weights.T / weights.sum(0)[:, None]
    shapedirs = rng.normal(size=(24, 3, 10))[group] * 0.02 + rng.normal(size=(V, 3, 10)) * 0.002
    h36m = np.zeros((17, V))
    for j, g in enumerate(H36M_TO_SMPL):
        members = (group == g) & first  # sparse, like the real regressor: a few vertices per joint
        if j == 10:  # head top: the head group's vertices above the head joint
            members = (group == g) & ~first & (offsets[:, 1] > 0.02)
        h36m[j, members] = 1.0 / members.sum()
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(
        folder / "SMPL_NEUTRAL.npz", v_template=v_template, shapedirs=shapedirs,
        posedirs=rng.normal(size=(V, 3, 207)) * 1e-4, J_regressor=j_reg, weights=weights,
        kintree_table=np.stack([np.array(SMPL_PARENTS) % 2**32, np.arange(24)]).astype(np.int64),
        f=np.stack([np.flatnonzero(group == g)[rng.integers(0, 287, size=(F // 24, 3))] for g in range(24)]).reshape(
            F, 3),
    )  # fmt: skip
    np.savez(folder / "smpl_mean_params.npz", pose=np.tile([1.0, 0, 0, 1, 0, 0], 24), shape=np.zeros(10))
    np.save(folder / "J_regressor_h36m.npy", h36m)
    return folder


@pytest.fixture(scope="module")
def smpl_dir(tmp_path_factory) -> Path:
    return write_body_smpl(tmp_path_factory.mktemp("smpl"))


@pytest.fixture(scope="module")
def smpl_body(smpl_dir) -> SmplBody:
    return SmplBody(BodyModel.from_files(find_smpl_files(smpl_dir))).eval()


def _motion(T: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A smooth known motion: rotations (T, 24, 3, 3) with the root upright facing the camera (camera axes: a half
    turn about x from SMPL's Y up) and betas (10,)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(24, 3, generator=g) * 0.3
    swing = torch.randn(24, 3, generator=g) * 0.3
    phase = 0.1 * torch.arange(T, dtype=torch.float32)[:, None, None]  # 0.1 rad per frame: a brisk 30 fps motion
    aa = base + torch.sin(phase) * swing
    aa[:, 0] = 0.2 * torch.randn(3, generator=g) + torch.sin(phase[:, 0]) * 0.2
    rot = axis_angle_to_matrix(aa)
    rot[:, 0] = axis_angle_to_matrix(torch.tensor([np.pi, 0.0, 0.0])) @ rot[:, 0]
    return rot, torch.randn(10, generator=g) * 0.8


def test_smpl_joints_for_fitting_match_the_full_model(smpl_body):
    rot, betas = _motion(3, seed=2)
    with torch.no_grad():
        full = smpl_body.body(rot, betas.expand(3, 10)).joints
    torch.testing.assert_close(smpl_body.forward_joints(rot, betas), full - full[:, :1], atol=1e-5, rtol=0)


def test_kabsch_recovers_a_rotation():
    g = torch.Generator().manual_seed(1)
    pts = torch.randn(7, 3, generator=g)
    R = axis_angle_to_matrix(torch.tensor([0.3, -1.2, 2.0]))
    torch.testing.assert_close(kabsch_rotation(pts, pts @ R.T + 5.0), R, atol=1e-5, rtol=0)


def test_fit_recovers_known_pose_and_shape(smpl_body):
    rot, betas = _motion(8)
    with torch.no_grad():
        target = smpl_body.forward_joints(rot, betas).numpy()
    target[4] = np.nan  # a frame without the person: skipped, NaN out
    fit = fit_sequence(smpl_body.forward_joints, target, 24, 10, FitOptions(iterations=150, shape_iterations=90))
    valid = np.isfinite(target).all(axis=(1, 2))
    assert np.isnan(fit.error_mm[4]) and np.isnan(fit.rotmats[4]).all() and np.isfinite(fit.error_mm[valid]).all()
    assert fit.mean_error_mm < 5.0, fit.mean_error_mm  # millimetres (the pose prior costs 2-3 mm here)
    np.testing.assert_allclose(fit.shape, betas.numpy(), atol=0.3)  # bone lengths pin the shape down (the prior: 0)
    # the root rotation within about 4 degrees (the pose prior shares a little turn between the root and the spine)
    root_err = torch.linalg.matrix_norm(torch.from_numpy(fit.rotmats[valid, 0]) - rot[valid, 0])
    assert float(root_err.max()) < 0.1


def test_smoothness_reduces_acceleration_on_jittered_joints(smpl_body):
    rot, betas = _motion(12, seed=3)
    with torch.no_grad():
        clean = smpl_body.forward_joints(rot, betas).numpy()
    rng = np.random.default_rng(0)
    noisy = clean + rng.normal(0, 0.015, size=clean.shape)  # 1.5 cm jitter per joint and frame
    noisy = noisy - noisy[:, :1]

    def accel(j):  # mean joint acceleration, mm / frame^2
        return float(np.linalg.norm(j[2:] - 2 * j[1:-1] + j[:-2], axis=-1).mean() * 1000)

    def fit(**weights):
        opts = FitOptions(iterations=60, shape_iterations=20, weights=FitWeights(**weights))
        return fit_sequence(smpl_body.forward_joints, noisy, 24, 10, opts).joints

    def clean_err(j):
        return float(np.linalg.norm(j - clean, axis=-1).mean() * 1000)

    rough, default, strong = fit(pose_smooth=0.0, joint_accel=0.0), fit(), fit(pose_smooth=20.0, joint_accel=1.0)
    assert accel(clean) < 20 and accel(noisy) > 40  # the jitter's acceleration: about 1.5 cm * sqrt(6) * 1.6
    assert accel(rough) > 0.7 * accel(noisy)  # without the temporal terms the fit follows most of the jitter
    assert accel(strong) < accel(default) < 0.8 * accel(rough)  # more weight, smoother
    assert accel(strong) < 0.4 * accel(rough)
    assert max(clean_err(strong), clean_err(default)) < clean_err(rough)  # and closer to the clean motion


def test_obj_round_trip_with_trimesh(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    rng = np.random.default_rng(0)
    verts = rng.normal(size=(30, 3)).astype(np.float32)
    faces = rng.integers(0, 30, size=(40, 3))
    write_obj(verts, faces, tmp_path / "m.obj")
    mesh = trimesh.load(tmp_path / "m.obj", process=False, maintain_order=True)
    np.testing.assert_allclose(mesh.vertices, verts, atol=1e-6)
    np.testing.assert_array_equal(mesh.faces, faces)


def _mesh_sequence(T: int = 5, V: int = 12) -> MeshSequence:
    rng = np.random.default_rng(0)
    verts = rng.normal(size=(T, V, 3)).astype(np.float32)
    verts[2] = np.nan
    params = {"pose": np.zeros((T, 72)), "betas": np.zeros(10)}
    faces = rng.integers(0, V, size=(8, 3))
    return MeshSequence(verts, faces, np.zeros((T, 17, 3), np.float32), np.ones(T, np.float32), "smpl", "fit", params)


def test_obj_frames_skip_missing_frames_and_are_y_up(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    mesh = _mesh_sequence()
    (tmp_path / "mesh").mkdir()
    (tmp_path / "mesh" / "stale.obj").write_text("old")  # an older folder is replaced whole
    folder = write_obj_frames(mesh, tmp_path / "mesh")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["frame_00000.obj", "frame_00001.obj", "frame_00003.obj", "frame_00004.obj"]
    back = trimesh.load(folder / "frame_00003.obj", process=False, maintain_order=True)
    np.testing.assert_allclose(back.vertices, mesh.vertices[3] * CAMERA_TO_Y_UP, atol=1e-6)  # (x, -y, -z)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_mesh_npz_layout(tmp_path):
    mesh = _mesh_sequence()
    path = write_mesh_npz(mesh, tmp_path / "mesh.npz", fps=25.0, missing=np.array([2]))
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    assert data["vertices"].shape == (5, 12, 3) and data["faces"].dtype == np.int32
    assert str(data["body_model"]) == "smpl" and str(data["method"]) == "fit" and str(data["units"]) == "metres"
    assert data["pose"].shape == (5, 72) and data["betas"].shape == (10,) and float(data["fps"]) == 25.0
    assert np.isnan(data["vertices"][2]).all() and data["missing_frames"].tolist() == [2]


def test_fit_mesh_writes_smpl_parameters_that_reproduce_the_vertices(smpl_body, tmp_path):
    rot, betas = _motion(6, seed=5)
    with torch.no_grad():
        target = smpl_body.forward_joints(rot, betas).numpy()
    mesh = fit_mesh(smpl_body, target, "smpl", FitOptions(iterations=60, shape_iterations=30))
    assert mesh.vertices.shape == (6, 6890, 3) and mesh.params["pose"].shape == (6, 72)
    again = smpl_body.vertices(axis_angle_to_matrix(torch.from_numpy(mesh.params["pose"]).reshape(6, 24, 3)),
                               torch.from_numpy(mesh.params["betas"]))  # fmt: skip
    np.testing.assert_allclose(again.numpy(), mesh.vertices, atol=1e-4)  # the npz parameters give the npz mesh
    np.testing.assert_allclose(mesh.vertices[:, :, :].mean(), mesh.vertices.mean())  # finite everywhere
    assert mesh.info["fit_error_mm"] == pytest.approx(float(np.nanmean(mesh.error_mm)), abs=0.01)


def test_missing_or_wrong_smpl_files_are_one_line_errors(tmp_path, monkeypatch, smpl_dir):
    monkeypatch.delenv("MOCLI_SMPL_DIR", raising=False)
    with pytest.raises(MocliError, match="SMPL_NEUTRAL.pkl or SMPL_NEUTRAL.npz.*J_regressor_h36m.npy.*--smpl-dir"):
        mesh_exporter("smpl")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "SMPL_NEUTRAL.npz").write_bytes((smpl_dir / "SMPL_NEUTRAL.npz").read_bytes())
    with pytest.raises(MocliError, match=r"lacks smpl_mean_params.npz, J_regressor_h36m.npy") as e:
        mesh_exporter("auto", partial)
    assert "\n" not in str(e.value)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    for name in ("smpl_mean_params.npz", "J_regressor_h36m.npy"):
        (wrong / name).write_bytes((smpl_dir / name).read_bytes())
    np.savez(wrong / "SMPL_NEUTRAL.npz", v_template=np.zeros((10, 3)))
    with pytest.raises(MocliError, match="not an SMPL model file"):
        mesh_exporter("auto", wrong)
    monkeypatch.setenv("MOCLI_SMPL_DIR", str(smpl_dir))  # auto: the environment variable selects SMPL
    assert mesh_exporter("auto").body_model == "smpl"


# ------------------------------------------------------------------------------------------------ mesh benchmark


def _mesh_pkl(path: Path, rot: torch.Tensor, betas: torch.Tensor, sources: list[str]) -> Path:
    n = len(rot)
    rng = np.random.default_rng(0)
    part = {
        "joint_2d": rng.uniform(100, 500, size=(n, 17, 2)).astype(np.float32),
        "confidence": np.ones((n, 17, 1), np.float32),
        "source": np.array(sources),
        "smpl_pose": matrix_to_axis_angle(rot).reshape(n, 72).numpy(),
        "smpl_shape": np.tile(betas.numpy(), (n, 1)),
    }
    with open(path, "wb") as f:
        pickle.dump({"train": part, "test": part}, f)
    return path


def test_mesh_benchmark_known_errors_for_a_rotation_about_the_pelvis(smpl_dir, tmp_path):
    """Predictions = ground truth turned by 30 degrees about the vertical through the pelvis: MPVE and MPJPE equal the
    mean chord lengths computed directly from the ground-truth mesh, and PA-MPJPE is 0 (a similarity transform)."""
    body = BodyModel.from_files(find_smpl_files(smpl_dir))
    rot, betas = _motion(10, seed=7)
    sequences = load_mesh_test_set(_mesh_pkl(tmp_path / "m.pkl", rot, betas, ["a"] * 4 + ["b"] * 6))
    assert [s.name for s in sequences] == ["a", "b"] and sequences[1].keypoints.shape == (6, 17, 3)
    turn = axis_angle_to_matrix(torch.tensor([0.0, np.pi / 6, 0.0]))  # about camera y (vertical)

    def predict(seq):
        gt = axis_angle_to_matrix(torch.from_numpy(seq.pose).reshape(-1, 24, 3))
        gt[:, 0] = turn @ gt[:, 0]
        return gt, torch.from_numpy(seq.betas)

    report = score_mesh(sequences, predict, body, "3dpw")
    with torch.no_grad():
        gt = body(rot, betas.expand(10, 10))
    verts = (gt.verts - gt.joints[:, :1]).double().numpy() * 1000  # mm, pelvis at 0
    joints = (gt.joints - gt.joints[:, :1])[:, list(EVAL_JOINTS_14)].double().numpy() * 1000
    R = turn.double().numpy()
    expect_v = np.linalg.norm(verts @ R.T - verts, axis=-1).mean()
    expect_j = np.linalg.norm(joints @ R.T - joints, axis=-1).mean()
    head = report.headline
    assert head["MPVE (mm)"] == pytest.approx(expect_v, rel=1e-4) and expect_v > 50
    assert head["MPJPE (mm)"] == pytest.approx(expect_j, rel=1e-4)
    assert head["PA-MPJPE (mm)"] == pytest.approx(0.0, abs=1e-3)
    rows = {r.name: r for r in report.tables[0].rows}
    assert rows["a"].frames == 4 and rows["b"].frames == 6


def test_mesh_benchmark_betas_offset_changes_only_the_shape_terms(smpl_dir, tmp_path):
    """Same pose, other betas: the pelvis-aligned error is the distance between the two bodies, computed directly."""
    body = BodyModel.from_files(find_smpl_files(smpl_dir))
    rot, betas = _motion(3, seed=9)
    sequences = load_mesh_test_set(_mesh_pkl(tmp_path / "m.pkl", rot, betas, ["a"] * 3))
    offset = torch.zeros(10)
    offset[0] = 1.0
    report = score_mesh(sequences, lambda s: (rot, betas + offset), body, "h36m")
    with torch.no_grad():
        a, b = body(rot, betas.expand(3, 10)), body(rot, (betas + offset).expand(3, 10))
    va, vb = (a.verts - a.joints[:, :1]) * 1000, (b.verts - b.joints[:, :1]) * 1000
    assert report.headline["MPVE (mm)"] == pytest.approx(float((va - vb).norm(dim=-1).mean()), rel=1e-4)
    assert report.info["dataset"] == "h36m" and report.benchmark == "mesh-h36m"


def test_exporter_without_smpl_uses_anny_or_explains(monkeypatch):
    monkeypatch.delenv("MOCLI_SMPL_DIR", raising=False)
    try:
        import anny  # noqa: F401
    except ImportError:
        with pytest.raises(MocliError, match="pip install"):
            mesh_exporter("auto")
        return
    pytest.skip("anny is installed: covered by tests/unit/test_mesh_anny.py")


def test_exporter_is_a_plain_dataclass(smpl_body):
    exporter = MeshExporter("smpl", smpl_body)
    assert exporter.method == "fit"
