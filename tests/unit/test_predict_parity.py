"""Parity of the five windowed callers with their outputs before they shared one predictor (``mocli.predict``).

``tests/fixtures/predict_parity.npz`` holds what the separate loops of ``lift.py``, ``evaluation/runner.py``,
``actions.py`` (and ``evaluation/ntu.py``), ``mesh/meshes.py`` and ``evaluation/mesh.py`` returned for small
random-weight models (fixed seeds) on fixed inputs; it was written by this module's ``record()`` run on the code
before the refactoring (``python -m tests.unit.test_predict_parity --record``). Outputs are compared within 1e-6:
with one thread they matched bit for bit; other thread counts may reorder a matmul's float sums.

The ``lift_*`` entries were re-recorded once, on purpose, when ``lift_keypoints`` started to take each window's
metric scale from the frames with the person only (the input here has two missing frames; tests/unit/test_lift.py
checks that change with a hand-computable model). Every other entry is still the pre-refactoring output.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "predict_parity.npz"


def _keypoints(rng: np.random.Generator, T: int, missing: tuple[int, ...] = ()) -> np.ndarray:
    """(T,17,3) pixels + confidence of a wobbling body, NaN frames at ``missing`` and a few confidence-0 joints."""
    base = rng.uniform(200, 600, (1, 17, 2)) + np.cumsum(rng.normal(0, 3, (T, 1, 2)), axis=0)
    kp = np.concatenate([base + rng.normal(0, 2, (T, 17, 2)), rng.uniform(0.3, 1.0, (T, 17, 1))], axis=-1)
    kp[rng.integers(0, T, 5), rng.integers(0, 17, 5), 2] = 0.0
    kp[list(missing)] = np.nan
    return kp.astype(np.float32)


def _lifter(seed: int = 0):
    from mocli.models.registry import create_model

    torch.manual_seed(seed)
    return create_model("dstformer-tiny", maxlen=27).eval()


def _stmo(seed: int = 1):
    from mocli.models.registry import create_model
    from mocli.models.stmo import ManyToOne

    torch.manual_seed(seed)
    return ManyToOne(create_model("stmo-tiny", maxlen=9).eval(), chunk=7).eval()


def _lift(out: dict[str, np.ndarray]) -> None:
    from mocli.lift import LiftOptions, lift_keypoints

    kp = _keypoints(np.random.default_rng(10), 23, missing=(4, 5))
    model, stmo = _lifter(), _stmo()
    out["lift_fixed"] = lift_keypoints(model, kp, LiftOptions(clip_len=8, batch_size=2))
    out["lift_free_noflip"] = lift_keypoints(model, kp, LiftOptions(clip_len=9, stride=4, flip=False, batch_size=3,
                                                                     bones="free", min_conf=0.5))  # fmt: skip
    out["lift_short"] = lift_keypoints(model, kp[:5], LiftOptions(clip_len=8))
    out["lift_stmo"] = lift_keypoints(stmo, kp, LiftOptions(clip_len=9, batch_size=2))


def _runner(out: dict[str, np.ndarray]) -> None:
    from mocli.evaluation.h36m_protocol import Convention, predict_video
    from mocli.evaluation.runner import RunOptions, plan_reference_clips, predict_clips, predict_sequence

    rng = np.random.default_rng(11)
    x = np.concatenate([rng.uniform(-1, 1, (21, 17, 2)), rng.uniform(0, 1, (21, 17, 1))], axis=-1)
    model, stmo = _lifter(), _stmo()
    opts = RunOptions(clip_len=8, flip=True, batch_size=2)
    out["runner_all"] = predict_sequence(model, x, opts)
    out["runner_all_short"] = predict_sequence(model, x[:5], RunOptions(clip_len=8, flip=False, batch_size=1))
    out["runner_all_stmo"] = predict_sequence(stmo, x, opts)
    out["runner_ref"] = predict_clips(model, x, plan_reference_clips(21, 8), opts)
    out["runner_ref_short"] = predict_clips(model, x[:5], plan_reference_clips(5, 8), opts)
    out["runner_ref_stmo"] = predict_clips(stmo, x, plan_reference_clips(21, 8), opts)
    conv = Convention(rootrel=True, gt_2d=True, no_conf=False)
    video = predict_video(model, x, conv, "reference", RunOptions(clip_len=8, flip=False, batch_size=3))
    out["runner_video_frames"], out["runner_video"] = video.frames, video.joints


def _mocap(out: dict[str, np.ndarray]) -> None:
    from mocli.data.cameras import identity_camera
    from mocli.data.noise import load_noise_model
    from mocli.evaluation.mocap import MocapOptions, MocapSequence, build_windows, sequence_errors
    from mocli.evaluation.runner import RunOptions, predict_windows

    rng = np.random.default_rng(12)
    joints = rng.normal(0, 0.3, (1, 17, 3)) + np.cumsum(rng.normal(0, 0.01, (19, 17, 3)), axis=0)
    joints[..., 2] += 4.0
    seq = MocapSequence("s", "src", "walk", 30.0, joints, frame="camera")
    opts = MocapOptions(clip_len=8, box_ratio=1.5, seed=3)
    windows = build_windows(seq, identity_camera(opts.view), opts, load_noise_model())
    pred = predict_windows(_lifter(), windows.inputs, RunOptions(clip_len=8, flip=True, batch_size=2))
    errors = sequence_errors(pred, windows)
    out["mocap_pred"], out["mocap_mpjpe"], out["mocap_pa"] = pred, errors["mpjpe"], errors["pa_mpjpe"]


def _action_models():
    from mocli.actions import ActionModel
    from mocli.config import RunConfig
    from mocli.models.action_text import ActionTextModel, build_head
    from mocli.models.heads import ActionHead, HeadModel, OneShotHead
    from mocli.models.registry import create_model
    from mocli.pretexts.action_text import _head_config
    from mocli.text import HashEmbedder, label_text

    names = ["walk", "run", "wave", "bow"]
    torch.manual_seed(2)
    enc = create_model("dstformer-tiny", maxlen=27)
    head = ActionHead(dim_rep=32, num_classes=4, hidden_dim=16, dropout=0.0)
    classifier = HeadModel(enc, head, "action", "action", {}, names).eval()
    oneshot = HeadModel(enc, OneShotHead(dim_rep=32, hidden_dim=8), "action-oneshot", "action-oneshot", {}).eval()
    torch.manual_seed(3)
    cfg = RunConfig().text
    cfg.model = "hash"
    text_enc = create_model("dstformer-tiny", maxlen=27)
    emb = torch.from_numpy(HashEmbedder().embed([label_text(n) for n in names]))
    config = _head_config(text_enc, cfg, emb.shape[1], len(names))
    text_head = build_head(config)
    text_head.label_emb.copy_(emb)
    text = ActionTextModel(text_enc, text_head, config, names).eval()
    return (ActionModel(classifier, names, 9, 2, 2.0), ActionModel(oneshot, [], 9, 2, 2.0, kind="action-oneshot"),
            ActionModel(text, names, 9, 1, 1.5, kind="action-text", window_len=12))  # fmt: skip


def _actions(out: dict[str, np.ndarray]) -> None:
    from mocli.actions import ActionRecogniser, action_windows, window_inputs
    from mocli.evaluation.ntu import NtuSample, model_predict

    classifier, oneshot, text = _action_models()
    kp = _keypoints(np.random.default_rng(13), 30, missing=(7,))
    for key, action in (("action", classifier), ("action_text", text)):
        rec = ActionRecogniser(action, top_k=2, batch_size=2)
        report = rec.recognise(kp, np.array([7]), 30.0)
        span = action.window_len or action.clip_len
        windows = action_windows(len(kp), span, max(1, span // 2))
        out[f"{key}_windows"] = np.array(windows)
        out[f"{key}_probs"] = rec.probs(window_inputs(kp, windows, action.clip_len, action.max_persons,
                                                      action.box_ratio))  # fmt: skip
        out[f"{key}_clip_top"] = np.array([r["score"] for r in report["clip"]["top"]])
    rng = np.random.default_rng(14)
    samples = [NtuSample(f"s{i}", i % 4, np.stack([_keypoints(rng, 11 + 3 * i), _keypoints(rng, 11 + 3 * i)]))
               for i in range(5)]  # fmt: skip
    out["ntu_logits"] = model_predict(classifier, batch_size=2)(samples)
    out["ntu_embeddings"] = model_predict(oneshot, batch_size=3)(samples)


def _mesh_models():
    from mocli.models.heads import MeshHead
    from mocli.models.registry import create_model

    torch.manual_seed(4)
    encoder = create_model("dstformer-tiny", maxlen=27).eval()
    head = MeshHead(dim_rep=32, num_joints=17, hidden_dim=16)
    with torch.no_grad():  # visible outputs: the head's last layers away from zero
        head.head_pose.weight.normal_(0, 0.05)
        head.head_shape.weight.normal_(0, 0.05)
    return encoder, head.eval()


def _mesh(out: dict[str, np.ndarray]) -> None:
    from mocli.evaluation.mesh import MeshTestSequence, head_predictor
    from mocli.evaluation.runner import RunOptions
    from mocli.mesh.meshes import predict_smpl

    encoder, head = _mesh_models()
    kp = _keypoints(np.random.default_rng(15), 19, missing=(3,))
    rot, betas = predict_smpl(encoder, head, kp, 8, ratio=1.5, batch_size=2)
    out["mesh_infer_rot"], out["mesh_infer_betas"] = rot.numpy(), betas.numpy()
    rot, betas = predict_smpl(encoder, head, kp[:5], 8)
    out["mesh_infer_short_rot"], out["mesh_infer_short_betas"] = rot.numpy(), betas.numpy()
    seq = MeshTestSequence("s", kp, np.zeros((19, 72), np.float32), np.zeros((19, 10), np.float32))
    rot, betas = head_predictor(encoder, head, RunOptions(clip_len=8, flip=False, batch_size=2), 1.5)(seq)
    out["mesh_eval_rot"], out["mesh_eval_betas"] = rot.numpy(), betas.numpy()


CALLERS = {"lift": _lift, "runner": _runner, "mocap": _mocap, "actions": _actions, "mesh": _mesh}


def record() -> dict[str, np.ndarray]:
    """Every caller's outputs on the fixed inputs and models, by name."""
    out: dict[str, np.ndarray] = {}
    with torch.random.fork_rng():
        for fn in CALLERS.values():
            fn(out)
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    assert FIXTURE.is_file(), f"{FIXTURE} is missing: it holds the outputs recorded before the refactoring"
    with np.load(FIXTURE) as data:
        return dict(data)


@pytest.mark.parametrize("caller", sorted(CALLERS))
def test_outputs_equal_those_recorded_before_one_predictor(caller, expected):
    out: dict[str, np.ndarray] = {}
    with torch.random.fork_rng():
        CALLERS[caller](out)
    assert out, caller
    for key, value in out.items():
        want = expected[key]
        assert value.shape == want.shape and value.dtype == want.dtype, (key, value.shape, want.shape)
        # float rounding only: kernels differ between CPUs (mocap_mpjpe moved by 5e-9 relative on an AMD EPYC)
        np.testing.assert_allclose(value, want, rtol=1e-7, atol=1e-6, err_msg=key)


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python -m tests.unit.test_predict_parity --record")
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    tmp = FIXTURE.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **record())
    tmp.replace(FIXTURE)
    print(f"wrote {FIXTURE}")
