"""Test-time augmentation for pose models."""

from __future__ import annotations

from collections.abc import Callable

import torch

from mocli.skeleton import H36M_17, Skeleton, flip_keypoints


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
