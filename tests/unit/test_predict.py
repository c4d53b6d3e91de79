"""mocli.predict: the one windowed predictor, on models whose outputs are known by hand (the input itself, the
position in the window, the mean over the window), and the batching, flip, precision and padding it owns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mocli.predict import Runtime, plan_sequence, predict, read_frames, run_batches, window_inputs


def _frames(T: int) -> np.ndarray:
    """(T,17,3) whose every value is the frame index."""
    return np.repeat(np.arange(T, dtype=np.float64), 17 * 3).reshape(T, 17, 3)


def identity(x: torch.Tensor) -> torch.Tensor:
    return x[..., :3]


def position(x: torch.Tensor) -> torch.Tensor:
    """(B,L,J,C) -> (B,L,J,3): every value the frame's position in its window."""
    B, L, J, _ = x.shape
    return torch.arange(L, dtype=x.dtype).reshape(1, L, 1, 1).expand(B, L, J, 3)


def window_mean(x: torch.Tensor) -> torch.Tensor:
    return x[..., :3].mean(dim=1, keepdim=True).expand(-1, x.shape[1], -1, -1)


def _first(out: np.ndarray) -> np.ndarray:
    return out[:, 0, 0]


def test_blend_merges_overlaps_with_the_raised_cosine_weights():
    # T=5, L=4, stride 2: windows (0,4), (1,5); ramp 1 -> weights [0.5, 1, 1, 0.5]
    plan = plan_sequence(5, 4, "blend", stride=2)
    assert plan.windows == [(0, 4), (1, 5)] and plan.ramp == 1
    out = predict(position, plan, x=_frames(5))
    # frame 1: (1 * 1 + 0.5 * 0) / 1.5; frame 2: (2 + 1) / 2; frame 3: (0.5 * 3 + 1 * 2) / 1.5
    np.testing.assert_allclose(_first(out), [0, 2 / 3, 1.5, 7 / 3, 3], rtol=0, atol=1e-6)
    np.testing.assert_allclose(_first(predict(identity, plan, x=_frames(5))), np.arange(5), atol=1e-6)


def test_every_frame_reads_each_frame_from_the_window_whose_centre_is_nearest():
    # T=10, L=4: windows (0,4), (4,8), (6,10) with centres 1.5, 5.5, 7.5
    plan = plan_sequence(10, 4, "every-frame")
    assert plan.windows == [(0, 4), (4, 8), (6, 10)]
    np.testing.assert_array_equal(_first(predict(position, plan, x=_frames(10))), [0, 1, 2, 3, 0, 1, 2, 1, 2, 3])
    np.testing.assert_array_equal(_first(predict(identity, plan, x=_frames(10))), np.arange(10))


def test_reference_clips_leave_the_tail_out_and_resample_a_short_video():
    plan = plan_sequence(10, 4, "reference")
    assert plan.left_out == 2 and plan.windows == [(0, 4), (4, 8)]
    np.testing.assert_array_equal(plan.frames, np.arange(8))
    np.testing.assert_array_equal(_first(predict(position, plan, x=_frames(10))), [0, 1, 2, 3, 0, 1, 2, 3])
    short = plan_sequence(3, 4, "reference")  # indices floor(k * 3 / 4) = [0, 0, 1, 2]
    np.testing.assert_array_equal(short.clips, [[0, 0, 1, 2]])
    np.testing.assert_array_equal(_first(predict(position, short, x=_frames(3))), [1, 2, 3])  # last positions
    np.testing.assert_array_equal(_first(predict(identity, short, x=_frames(3))), [0, 1, 2])


def test_many_to_one_runs_the_whole_sequence_as_one_window_and_reads_the_policys_frames():
    for policy, frames in (("every-frame", np.arange(10)), ("reference", np.arange(8))):
        plan = plan_sequence(10, 4, policy, many_to_one=True)
        assert plan.policy == "whole" and plan.clips.shape == (1, 10)
        np.testing.assert_array_equal(plan.frames, frames)
        np.testing.assert_allclose(_first(predict(window_mean, plan, x=_frames(10))), np.full(len(frames), 4.5))


def test_short_windows_are_padded_with_their_last_frame_and_only_real_frames_read():
    plan = plan_sequence(3, 5, "every-frame")
    np.testing.assert_array_equal(window_inputs(plan, x=_frames(3))[0, :, 0, 0], [0, 1, 2, 2, 2])
    made = window_inputs(plan, make=lambda frames: _frames(3)[frames] * 10)  # per-window input, padded after
    np.testing.assert_array_equal(made[0, :, 0, 0], [0, 10, 20, 20, 20])
    # the window mean includes the padding (0 + 1 + 2 + 2 + 2) / 5; three frames come back
    np.testing.assert_allclose(_first(predict(window_mean, plan, x=_frames(3))), [1.4] * 3)
    blend = plan_sequence(3, 5, "blend")
    np.testing.assert_allclose(_first(predict(identity, blend, x=_frames(3))), [0, 1, 2])


def test_windows_policy_returns_one_output_per_window_unpadded():
    plan = plan_sequence(100, 40, "windows")
    assert plan.windows == [(0, 40), (20, 60), (40, 80), (60, 100)]
    out = predict(lambda x: x.mean(dim=1), plan, make=lambda frames: frames.astype(np.float64)[:, None])
    np.testing.assert_allclose(out[:, 0], [19.5, 39.5, 59.5, 79.5])


def test_batches_are_batch_size_windows_and_the_outputs_do_not_depend_on_it():
    sizes = []

    def record(x):
        sizes.append(len(x))
        return x * 2

    inputs = np.arange(7 * 2, dtype=np.float32).reshape(7, 2)
    np.testing.assert_array_equal(run_batches(record, inputs, Runtime(batch_size=3)), inputs * 2)
    assert sizes == [3, 3, 1]
    from mocli.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("dstformer-tiny", maxlen=27).eval()
    x = np.random.default_rng(0).uniform(-1, 1, (23, 17, 3))
    plan = plan_sequence(23, 8, "blend")
    outs = [predict(model, plan, Runtime(batch_size=b, flip=True), x=x) for b in (1, 2, 100)]
    for out in outs[1:]:
        np.testing.assert_allclose(out, outs[0], rtol=0, atol=1e-6)


def test_flip_averaging_of_an_equivariant_model_is_the_model_and_dict_outputs_are_read_per_key():
    x = np.random.default_rng(1).uniform(-1, 1, (2, 6, 17, 3)).astype(np.float32)
    np.testing.assert_allclose(run_batches(identity, x, Runtime(flip=True)), x, atol=1e-7)
    plan = plan_sequence(6, 4, "every-frame")
    out = predict(lambda t: {"a": identity(t), "b": 2 * identity(t)}, plan, x=_frames(6))
    np.testing.assert_array_equal(_first(out["a"]), np.arange(6))
    np.testing.assert_array_equal(_first(out["b"]), 2 * np.arange(6))


def test_precision_is_applied_in_one_place_bf16_rounds_a_matmul():
    x = np.full((1, 4), 1 + 2**-10, dtype=np.float32)  # not representable in bf16 (8 mantissa bits)
    eye = torch.eye(4)
    np.testing.assert_array_equal(run_batches(lambda t: t @ eye, x, Runtime(precision="bf16")), np.ones((1, 4)))
    np.testing.assert_array_equal(run_batches(lambda t: t @ eye, x, Runtime()), x)


def test_the_mesh_paths_run_under_autocast():
    from mocli.evaluation.mesh import MeshTestSequence, head_predictor
    from mocli.evaluation.runner import RunOptions
    from mocli.mesh.meshes import predict_smpl

    seen = []

    class Encoder:
        def forward_features(self, x):
            seen.append(torch.is_autocast_enabled("cpu"))
            return x

    def head(feats):
        B, T = feats.shape[:2]
        return {"rotmats": torch.eye(3).expand(B, T, 24, 3, 3), "betas": feats[:, :, 0, :1].expand(B, T, 10)}

    kp = np.concatenate([np.random.default_rng(2).uniform(0, 100, (9, 17, 2)), np.ones((9, 17, 1))], -1)
    rot, _ = predict_smpl(Encoder(), head, kp, 4, precision="bf16")
    seq = MeshTestSequence("s", kp, np.zeros((9, 72)), np.zeros((9, 10)))
    head_predictor(Encoder(), head, RunOptions(clip_len=4, precision="bf16"))(seq)
    head_predictor(Encoder(), head, RunOptions(clip_len=4))(seq)
    assert seen == [True, True, False] and rot.shape == (9, 24, 3, 3)
    np.testing.assert_allclose(rot.numpy(), np.broadcast_to(np.eye(3), (9, 24, 3, 3)), atol=1e-6)


def test_bad_plans_and_mismatched_outputs_are_errors():
    with pytest.raises(ValueError, match="policy"):
        plan_sequence(10, 4, "sliding")
    with pytest.raises(ValueError, match="num_frames"):
        plan_sequence(0, 4)
    plan = plan_sequence(10, 4, "every-frame")
    with pytest.raises(ValueError, match="window outputs"):
        read_frames(plan, [np.zeros((4, 1))])
    with pytest.raises(ValueError, match="exactly one"):
        window_inputs(plan)
