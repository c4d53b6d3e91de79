"""Test-time augmentation for pose models: horizontal flip averaging and upright rolling of lying bodies.

Upright rolling. A camera rolled about its optical axis rotates the image about the principal point and the
camera-frame 3D about the optical axis, by the same angle: lifting commutes with that rotation. A body lying across
the image (on the floor, seen from the side) is, after rolling the view so that the body points up the image, a
standing body seen by an ordinary camera, which is what a lifter has seen most of. ``upright`` rolls each window
whose body lies across the image, lifts it, and rolls the 3D back:

    a        = the window's body angle from image-up: the angle of t/|t| + l/|l|, where t (pelvis -> thorax) and
               l (mid-ankle -> pelvis) are summed over the window's frames, weighted by their joints' confidence
    rolled   = a != 0 only when t and l are both more than ``min_tilt_deg`` from up and agree within 60 degrees
               (a bent-over or sitting body, with one of them upright, is left as it is)
    x'[..,:2] = R(a) (x - c) + c,  c = the centre of the window's 2D box   (R: rotation in the image plane)
    y[..,:2]  = R(-a) (model(x') - c) + c,  depth unchanged

The roll is about the centre of the box around the window's seen joints (all frames) rather than the principal
point: exact under weak perspective (the approximation a lifter's normalised input already makes), and a body that
filled a box centred on 0, as crop-scale normalisation makes it, still fills it once rolled.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from mocli.skeleton import H36M_17, Skeleton, flip_keypoints

__all__ = ["flip_average", "mirrored", "body_roll", "box_centre", "roll_image_plane", "upright"]

AGREE_COS = 0.5  # torso and legs within 60 degrees of each other


def flip_average(
    model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, skeleton: Skeleton = H36M_17
) -> torch.Tensor:
    """Horizontal-flip TTA: the mean of model(x) and flip(model(flip(x))).

    Args:
        model: maps (B,T,J,C_in) normalised input to (B,T,J,C_out) with x in channel 0 (e.g. DSTformer).
        x: (B,T,J,C_in) normalised 2D + confidence (x mirrored about 0).
    Returns:
        (B,T,J,C_out). The flipped copy runs in the same batch as the original (one forward pass of 2B).
    """
    both = model(torch.cat([x, flip_keypoints(x, skeleton)], dim=0))
    out, out_flipped = both.chunk(2, dim=0)
    return (out + flip_keypoints(out_flipped, skeleton)) / 2


def mirrored(
    model: Callable[[torch.Tensor], torch.Tensor], skeleton: Skeleton = H36M_17
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The other half of ``flip_average``: x -> flip(model(flip(x))), the lift of the mirror image mirrored back
    ((B,T,J,C_in) -> (B,T,J,C_out), x in channel 0). (model(x) + mirrored(model)(x)) / 2 is flip_average(model, x);
    how far the two halves disagree measures the model's uncertainty (``mocli.lift.detector_3d_weights``)."""

    def run(x: torch.Tensor) -> torch.Tensor:
        return flip_keypoints(model(flip_keypoints(x, skeleton)), skeleton)

    return run


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def _angle_from_up(v: torch.Tensor) -> torch.Tensor:
    """Signed angle (radians) of image vectors (..., 2) from image-up (y points down): + when leaning right."""
    return torch.atan2(v[..., 0], -v[..., 1])


def body_roll(x: torch.Tensor, min_tilt_deg: float = 45.0, skeleton: Skeleton = H36M_17) -> torch.Tensor:
    """The roll that stands each window's body up the image (see the module docstring), 0 where it is not lying.

    Args:
        x: (B,T,J,C) normalised x, y (y down) and, when C > 2, confidence in channel 2 (0: missing joint).
        min_tilt_deg: torso and legs must both lean further than this from image-up.
    Returns:
        (B,) float angle a in radians (``roll_image_plane(x, a, c)`` makes the body point up).
    """
    xy = x[..., :2].float()
    conf = x[..., 2].float() if x.shape[-1] > 2 else torch.ones_like(xy[..., 0])
    j = {n: skeleton.index(n) for n in ("pelvis", "thorax", "right_ankle", "left_ankle")}
    torso = xy[:, :, j["thorax"]] - xy[:, :, j["pelvis"]]
    legs = xy[:, :, j["pelvis"]] - (xy[:, :, j["right_ankle"]] + xy[:, :, j["left_ankle"]]) / 2
    w_torso = torch.minimum(conf[:, :, j["thorax"]], conf[:, :, j["pelvis"]])
    w_legs = torch.minimum(
        conf[:, :, j["pelvis"]], torch.minimum(conf[:, :, j["right_ankle"]], conf[:, :, j["left_ankle"]])
    )
    t = (torso * w_torso[..., None]).sum(1)  # (B,2)
    lg = (legs * w_legs[..., None]).sum(1)
    seen = (t.norm(dim=-1) > 1e-6) & (lg.norm(dim=-1) > 1e-6)
    t, lg = _unit(t), _unit(lg)
    limit = math.radians(min_tilt_deg)
    lying = (
        seen & (_angle_from_up(t).abs() > limit) & (_angle_from_up(lg).abs() > limit) & ((t * lg).sum(-1) > AGREE_COS)
    )
    return torch.where(lying, _angle_from_up(t + lg), torch.zeros_like(t[:, 0]))


def box_centre(x: torch.Tensor) -> torch.Tensor:
    """(B,2) the centre of each window's 2D box: the extent of its joints with confidence > 0 over all frames (all
    joints when C == 2); 0 for a window without any.

    Args:
        x: (B,T,J,C) normalised x, y and, when C > 2, confidence in channel 2.
    """
    xy = x[..., :2].float()
    seen = (x[..., 2] > 0) if x.shape[-1] > 2 else torch.ones_like(xy[..., 0], dtype=torch.bool)
    inf = torch.tensor(float("inf"), dtype=xy.dtype, device=xy.device)
    lo = torch.where(seen[..., None], xy, inf).amin(dim=(1, 2))
    hi = torch.where(seen[..., None], xy, -inf).amax(dim=(1, 2))
    return torch.where(seen.flatten(1).any(1)[:, None], (lo + hi) / 2, torch.zeros_like(lo))


def roll_image_plane(p: torch.Tensor, angle: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """Rotate image-plane points about a centre, per window; a positive angle turns a body leaning right upright.

    Args:
        p: (B,T,J,C>=2) points with x, y (y down) in channels 0, 1; other channels are copied.
        angle: (B,) radians.
        centre: (B,2) the centre of each window's rotation.
    Returns:
        (B,T,J,C) a new tensor; ``roll_image_plane(roll_image_plane(p, a, c), -a, c)`` gives p back.
    """
    cos = torch.cos(angle).to(p.dtype)[:, None, None]
    sin = torch.sin(angle).to(p.dtype)[:, None, None]
    c = centre.to(p.dtype)[:, None, None, :]
    dx, dy = p[..., 0] - c[..., 0], p[..., 1] - c[..., 1]
    out = p.clone()
    out[..., 0] = dx * cos + dy * sin + c[..., 0]
    out[..., 1] = -dx * sin + dy * cos + c[..., 1]
    return out


def upright(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    min_tilt_deg: float = 45.0,
    skeleton: Skeleton = H36M_17,
) -> torch.Tensor:
    """Upright-rolling TTA: model(x) for upright windows, R(-a) model(R(a) x) for lying ones (module docstring).

    Args:
        model: maps (B,T,J,C_in) normalised 2D (+ confidence) to (B,T,J,3) normalised 3D whose x, y follow the
            input's image axes.
        x: (B,T,J,C_in) normalised input.
    Returns:
        (B,T,J,3); windows that are not lying get model(x) as it is.
    """
    angle = body_roll(x, min_tilt_deg, skeleton)
    lying = (angle != 0)[:, None, None, None]
    if not bool(lying.any()):
        return model(x)
    centre = box_centre(x)
    y = model(torch.where(lying, roll_image_plane(x, angle, centre), x))
    return torch.where(lying, roll_image_plane(y, -angle, centre), y)
