from __future__ import annotations

import pytest
import torch

from mocli import create_model
from mocli.errors import MocliError
from mocli.models.dstformer import Attention, Block, explicit_attention
from mocli.models.tta import flip_average
from mocli.skeleton import flip_keypoints


def _randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random values in every tensor (fusion and norms included) so equalities are not trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model


@pytest.mark.parametrize(("name", "params"), [("dstformer", 42_466_317), ("dstformer-lite", 16_001_549)])
def test_preset_parameter_counts(name, params):
    model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) == params
    assert len(model.state_dict()) == 260


def test_fusion_starts_as_equal_mix():
    model = create_model("dstformer-tiny")
    for level in model.levels:
        assert torch.all(level.fuse.weight == 0) and torch.all(level.fuse.bias == 0.5)


def test_create_model_overrides_and_errors():
    model = create_model("dstformer-tiny", maxlen=27, dim_rep=16)
    assert model.time_pos.shape == (1, 27, 1, 32) and model.pre_logits.out_features == 16
    with pytest.raises(MocliError, match="unknown DSTformer option"):
        create_model("dstformer-tiny", width=3)
    with pytest.raises(MocliError, match="unknown architecture"):
        create_model("transformer-xl")


@pytest.mark.parametrize("T", [1, 7, 81])
def test_any_clip_length_up_to_maxlen(T):
    model = _randomise(create_model("dstformer-tiny")).eval()
    x = torch.randn(2, T, 17, 3)
    feats = model.forward_features(x)
    assert feats.shape == (2, T, 17, 32) and feats.abs().max() <= 1  # tanh representation
    out = model(x)
    assert out.shape == (2, T, 17, 3)
    torch.testing.assert_close(out, model.forward_head(feats))
    with pytest.raises(ValueError, match="maxlen"):
        model(torch.randn(1, 82, 17, 3))


def test_sdpa_equals_explicit_softmax_attention():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 8, 243, 16).unbind(0)
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(fused, explicit_attention(q, k, v), rtol=1e-5, atol=1e-5)
    model = _randomise(create_model("dstformer-lite", depth=2, maxlen=64)).eval()
    x = torch.randn(2, 64, 17, 3)
    with torch.no_grad():
        fused_out = model(x)
        explicit_out = model.set_explicit_attention(True)(x)
    torch.testing.assert_close(fused_out, explicit_out, rtol=1e-4, atol=1e-5)


def test_spatial_attention_stays_within_a_frame_and_temporal_within_a_joint():
    torch.manual_seed(0)
    spatial, temporal = Block(16, 2, 2.0, "spatial", 1e-6), Block(16, 2, 2.0, "temporal", 1e-6)
    x = torch.randn(1, 5, 17, 16)
    y = x.clone()
    y[:, 3, 4] += torch.randn(16)  # change one joint in one frame
    ds = (spatial(y) - spatial(x)).abs().sum(-1)[0]  # (T,J)
    dt = (temporal(y) - temporal(x)).abs().sum(-1)[0]
    assert ds[3].gt(0).all() and ds[[0, 1, 2, 4]].eq(0).all()  # every joint of frame 3, no other frame
    assert dt[:, 4].gt(0).all() and dt[:, [j for j in range(17) if j != 4]].eq(0).all()  # joint 4 at all frames


def test_attention_rejects_bad_configs():
    with pytest.raises(ValueError):
        Attention(10, 3, "spatial")
    with pytest.raises(ValueError):
        Attention(8, 2, "diagonal")


def test_flip_average_identity_and_equivariance():
    torch.manual_seed(0)
    x = torch.randn(2, 9, 17, 3)
    torch.testing.assert_close(flip_average(lambda t: t, x), x)
    model = _randomise(create_model("dstformer-tiny")).eval()
    with torch.no_grad():
        a = flip_average(model, flip_keypoints(x))
        b = flip_keypoints(flip_average(model, x))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_bf16_autocast_close_to_fp32():
    model = _randomise(create_model("dstformer-tiny")).eval()
    x = torch.randn(1, 27, 17, 3)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().max() < 0.05 * ref.abs().max() + 1e-3


def _permuted_attention(attn: Attention, x: torch.Tensor) -> torch.Tensor:
    """The former Attention.forward: q, k, v and the output gathered by permuted copies. x (B,T,J,C)."""
    B, T, J, C = x.shape
    H = attn.num_heads
    qkv = attn.qkv(x).view(B, T, J, 3, H, C // H)
    if attn.axis == "spatial":
        qkv = qkv.permute(3, 0, 1, 4, 2, 5).reshape(3, B * T, H, J, C // H)
    else:
        qkv = qkv.permute(3, 0, 2, 4, 1, 5).reshape(3, B * J, H, T, C // H)
    out = explicit_attention(*qkv.unbind(0))
    if attn.axis == "spatial":
        out = out.view(B, T, H, J, C // H).transpose(2, 3)
    else:
        out = out.view(B, J, H, T, C // H).permute(0, 3, 1, 2, 4)
    return attn.proj(out.reshape(B, T, J, C))


@pytest.mark.parametrize("axis", ["spatial", "temporal"])
def test_strided_attention_equals_the_permuted_formulation(axis):
    """Outputs and gradients (input and weights) of the copy-free layout match the former permuted one."""
    torch.manual_seed(0)
    attn = _randomise(Attention(32, 4, axis), seed=1)
    x = torch.randn(2, 11, 17, 32, requires_grad=True)
    grad_out = torch.randn(2, 11, 17, 32)
    results = []
    for forward in (attn, lambda t: _permuted_attention(attn, t)):
        out = forward(x)
        grads = torch.autograd.grad((out * grad_out).sum(), [x, *attn.parameters()])
        results.append((out, grads))
    (out, grads), (ref, ref_grads) = results
    assert out.shape == (2, 11, 17, 32) and ref.abs().max() > 0.1
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)


def test_model_equals_the_permuted_attention_formulation(monkeypatch):
    model = _randomise(create_model("dstformer-tiny"), seed=2)
    x = torch.randn(2, 9, 17, 3, generator=torch.Generator().manual_seed(3))
    out = model(x)
    grads = torch.autograd.grad(out.square().sum(), list(model.parameters()))
    monkeypatch.setattr(Attention, "forward", _permuted_attention)
    ref = model(x)
    ref_grads = torch.autograd.grad(ref.square().sum(), list(model.parameters()))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for g, r in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)


def test_cpu_bf16_training_attention_paths():
    """Under CPU bf16 autocast with gradients, temporal attention is the fp32 kernel on the bf16 inputs (autocast
    would otherwise cast them back to bf16 and take the slow bf16 backward), rounded to bf16 once at the end;
    spatial attention is bf16 matmuls around a float32 softmax, within bf16 rounding of the fp32 result."""
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(6, 2, 81, 16, generator=g).bfloat16() for _ in range(3))
    qs, ks, vs = (t[..., :17, :] for t in (q, k, v))
    temporal, spatial = Attention(32, 2, "temporal"), Attention(32, 2, "spatial")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out_t, out_s = temporal._attend(q, k, v), spatial._attend(qs, ks, vs)
        low = torch.nn.functional.scaled_dot_product_attention(q, k, v)  # what autocast alone gives
    sdpa = torch.nn.functional.scaled_dot_product_attention
    fp32_t, fp32_s = sdpa(q.float(), k.float(), v.float()), sdpa(qs.float(), ks.float(), vs.float())
    assert out_t.dtype == out_s.dtype == torch.bfloat16
    torch.testing.assert_close(out_t, fp32_t.bfloat16(), rtol=0, atol=0)
    assert not torch.equal(low, out_t)  # the bf16 kernel is measurably different, so the check above can fail
    torch.testing.assert_close(out_s.float(), fp32_s, rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(explicit_attention(qs.float(), ks.float(), vs.float(), float_softmax=True), fp32_s)
