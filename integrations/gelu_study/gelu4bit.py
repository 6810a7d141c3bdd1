"""A 4-bit GELU: the forward pass is GELU; the backward pass keeps 4 bits per element instead of the input.

For the backward pass the input is not saved: each element is replaced by the index (0–15) of the
bucket it falls in, two indices packed per byte (8× less than a float32 input), and the gradient
uses a 16-level piecewise-constant approximation of GELU's derivative: 0 below −2.5, 1 above 2.5, and in
each of the 14 equal buckets in between the mean derivative over the bucket, (GELU(b) − GELU(a)) / (b − a).

Documented error: |approximate − exact derivative| ≤ 0.14 everywhere (0.1395 at worst, measured on a
float64 grid of 2 million points over [−8, 8]).
"""

from __future__ import annotations

import torch

MAX_GRADIENT_ERROR = 0.14
BOUNDARIES = torch.linspace(-2.5, 2.5, 15)  # 15 boundaries → 16 buckets


def _levels() -> torch.Tensor:
    b = BOUNDARIES.double()
    gelu = torch.nn.functional.gelu(b)
    inner = (gelu[1:] - gelu[:-1]) / (b[1:] - b[:-1])
    return torch.cat([torch.zeros(1, dtype=torch.float64), inner, torch.ones(1, dtype=torch.float64)]).float()


LEVELS = _levels()


def pack(codes: torch.Tensor) -> torch.Tensor:
    """uint8 codes in 0..15 → half as many bytes (two codes per byte)."""
    flat = codes.flatten()
    if flat.numel() % 2:
        flat = torch.cat([flat, flat.new_zeros(1)])
    return flat[0::2] | (flat[1::2] << 4)


def unpack(packed: torch.Tensor, numel: int) -> torch.Tensor:
    return torch.stack([packed & 0x0F, packed >> 4], dim=1).flatten()[:numel]


class _Gelu4Bit(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        codes = torch.bucketize(x.detach(), BOUNDARIES.to(x.device)).to(torch.uint8)
        ctx.save_for_backward(pack(codes))
        ctx.shape = x.shape
        return torch.nn.functional.gelu(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: ANN001
        (packed,) = ctx.saved_tensors
        codes = unpack(packed, grad.numel()).long().view(ctx.shape)
        return grad * LEVELS.to(grad.device, grad.dtype)[codes]


class Gelu4Bit(torch.nn.Module):
    """Drop-in for ``torch.nn.GELU()`` with a 4-bit backward pass."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Gelu4Bit.apply(x)
