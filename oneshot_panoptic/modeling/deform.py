"""Modulated deformable convolution (DCNv2) with a fast CPU path.

``torchvision.ops.deform_conv2d`` is the reference implementation and is used on CUDA. Its CPU
kernel, however, is slow (its backward pass loops over sampling points), which dominates a
supernet step on a CPU when deformable candidates are active. :func:`deform_conv2d` computes the
same function with vectorised operations: the deformed samples of every kernel tap are gathered
by bilinear interpolation (``F.grid_sample`` with ``align_corners=True`` and zero padding, which is
exactly torchvision's sampling rule), modulated by the mask, and reduced with one matrix product.
Outputs and gradients agree with torchvision's op to floating-point precision (tested).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import deform_conv2d as tv_deform_conv2d

__all__ = ["deform_conv2d", "deform_conv2d_sampled"]


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def deform_conv2d_sampled(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: Tensor | None = None,
) -> Tensor:
    """Deformable convolution by bilinear sampling + matmul; same contract as torchvision's op.

    Args:
        input: ``(N, C, H, W)``.
        offset: ``(N, 2 * G * kh * kw, H_out, W_out)``; for kernel tap ``k`` of offset group
            ``g``, channel ``2 * (g * kh * kw + k)`` is the vertical and ``+ 1`` the horizontal
            offset.
        weight: ``(C_out, C / groups, kh, kw)``.
        bias: ``(C_out,)`` or ``None``.
        mask: ``(N, G * kh * kw, H_out, W_out)`` modulation scalars, or ``None``.

    Returns:
        ``(N, C_out, H_out, W_out)``.
    """
    n, c, h, w = input.shape
    c_out, c_per_group, kh, kw = weight.shape
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    ho, wo = offset.shape[-2:]
    k = kh * kw
    g_off = offset.shape[1] // (2 * k)
    groups = c // c_per_group
    if h == 1 or w == 1:
        # grid_sample's align_corners=True normalisation degenerates for a single row/column.
        return tv_deform_conv2d(input, offset, weight, bias, stride, padding, dilation, mask)

    device, dtype = input.device, input.dtype
    rows = torch.arange(ho, device=device, dtype=dtype) * sh - ph
    cols = torch.arange(wo, device=device, dtype=dtype) * sw - pw
    tap_y = (torch.arange(kh, device=device, dtype=dtype) * dh).repeat_interleave(kw)
    tap_x = (torch.arange(kw, device=device, dtype=dtype) * dw).repeat(kh)
    off = offset.view(n, g_off, k, 2, ho, wo)
    y = rows.view(1, 1, 1, ho, 1) + tap_y.view(1, 1, k, 1, 1) + off[:, :, :, 0]
    x = cols.view(1, 1, 1, 1, wo) + tap_x.view(1, 1, k, 1, 1) + off[:, :, :, 1]
    grid = torch.stack((x * (2.0 / (w - 1)) - 1.0, y * (2.0 / (h - 1)) - 1.0), dim=-1)
    grid = grid.view(n * g_off, k * ho, wo, 2)
    sampled = F.grid_sample(
        input.reshape(n * g_off, c // g_off, h, w), grid, mode="bilinear", padding_mode="zeros", align_corners=True
    ).view(n, g_off, c // g_off, k, ho, wo)
    if mask is not None:
        sampled = sampled * mask.view(n, g_off, 1, k, ho, wo)
    columns = sampled.reshape(n, groups, c_per_group * k, ho * wo)
    out = torch.matmul(weight.reshape(groups, c_out // groups, c_per_group * k), columns)
    out = out.reshape(n, c_out, ho, wo)
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1)
    return out


def deform_conv2d(
    input: Tensor,
    offset: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: Tensor | None = None,
) -> Tensor:
    """Modulated deformable convolution: torchvision's kernel on CUDA, the vectorised one on CPU."""
    if input.is_cuda:
        return tv_deform_conv2d(input, offset, weight, bias, stride, padding, dilation, mask)
    return deform_conv2d_sampled(input, offset, weight, bias, stride, padding, dilation, mask)
