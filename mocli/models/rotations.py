"""Rotation representations for the mesh head: 6D (two matrix columns), rotation matrices and axis-angle.

Pure torch functions, batched over any leading dimensions and differentiable everywhere (including the identity and
half turns). Angles are radians; matrices act on column vectors (``v' = R v``).

The 6D layout is MotionBERT's (and SPIN's): the first two columns of R written row by row, i.e. the (3, 2) matrix
``R[:, :2]`` flattened, ``[R00, R01, R10, R11, R20, R21]``. ``rot6d_to_matrix`` turns any 6 numbers into a rotation
by Gram-Schmidt (Zhou et al. 2019, "On the continuity of rotation representations").
"""

from __future__ import annotations

import torch

__all__ = ["rot6d_to_matrix", "matrix_to_rot6d", "axis_angle_to_matrix", "matrix_to_axis_angle"]

_EPS = 1e-6


def rot6d_to_matrix(rot6d: torch.Tensor) -> torch.Tensor:
    """(..., 6) 6D rotations -> (..., 3, 3) rotation matrices (Gram-Schmidt on the two columns).

    Column 1 = a1 / |a1|; column 2 = the part of a2 orthogonal to column 1, normalised; column 3 = their cross product.
    """
    cols = rot6d.reshape(*rot6d.shape[:-1], 3, 2)
    a1, a2 = cols[..., 0], cols[..., 1]  # (..., 3)
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 6): the first two columns, row by row (inverse of ``rot6d_to_matrix``)."""
    return matrix[..., :, :2].reshape(*matrix.shape[:-2], 6)


def _skew(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 3, 3) cross-product matrix [v]x."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*v.shape, 3)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle (unit axis times angle, radians) -> (..., 3, 3) rotation matrices (Rodrigues).

    ``R = I + sin(t)/t K + (1 - cos(t))/t^2 K^2`` with ``K = [aa]x`` and ``t = |aa|``; Taylor series near t = 0.
    """
    theta2 = (axis_angle * axis_angle).sum(-1)[..., None, None]  # (..., 1, 1)
    small = theta2 < _EPS**2
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)  # no 0/0 in the branch that is not taken
    theta = torch.sqrt(safe2)
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / safe2)
    k = _skew(axis_angle)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device).expand_as(k)
    return eye + a * k + b * (k @ k)


def _matrix_to_quaternion(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotations -> (..., 4) unit quaternions (w, x, y, z) with w >= 0 (Shepperd's method).

    Of the four closed forms (from the trace and from each diagonal element) the one with the largest denominator is
    used; the others are computed with a clamped denominator so no branch produces inf or NaN gradients.
    """
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    d = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1)
    s = 2 * torch.sqrt(d.clamp_min(0.1))  # the chosen branch has d >= 1 (the four sum to 4)
    s0, s1, s2, s3 = s.unbind(-1)
    candidates = torch.stack(
        [
            torch.stack([s0 / 4, (m21 - m12) / s0, (m02 - m20) / s0, (m10 - m01) / s0], dim=-1),
            torch.stack([(m21 - m12) / s1, s1 / 4, (m01 + m10) / s1, (m02 + m20) / s1], dim=-1),
            torch.stack([(m02 - m20) / s2, (m01 + m10) / s2, s2 / 4, (m12 + m21) / s2], dim=-1),
            torch.stack([(m10 - m01) / s3, (m02 + m20) / s3, (m12 + m21) / s3, s3 / 4], dim=-1),
        ],
        dim=-2,
    )  # (..., 4 branches, 4)
    best = d.argmax(dim=-1)[..., None, None].expand(*d.shape[:-1], 1, 4)
    q = torch.gather(candidates, -2, best).squeeze(-2)
    return torch.where(q[..., :1] < 0, -q, q)


def matrix_to_axis_angle(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle, angle in [0, pi] radians (via the unit quaternion)."""
    q = _matrix_to_quaternion(matrix)
    w, v = q[..., :1], q[..., 1:]
    n2 = (v * v).sum(-1, keepdim=True)
    small = n2 < _EPS**2
    n = torch.sqrt(torch.where(small, torch.ones_like(n2), n2))
    # angle = 2 atan2(|v|, w); axis-angle = v * angle / |v|, and -> 2 v / w as |v| -> 0 (w ~ 1 there)
    factor = torch.where(small, 2 / w.clamp_min(_EPS), 2 * torch.atan2(n, w) / n)
    return v * factor
