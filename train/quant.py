"""Training-time quantizers that put every value on the integer grids of docs/contract.md.

Each function returns a float tensor whose values are exactly representable integers times
a power of two, so the PyTorch evaluation forward computes the same numbers as the integer
reference and the C core. Gradients use straight-through or surrogate estimators.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from qsnnkit.spec import ADAPT_FRAC, ADAPT_MAX, FRAC_BITS  # fine units: 2^-FRAC_BITS of the firing threshold
I16_MIN, I16_MAX = -32768, 32767

#: Range of the per-row weight exponent e (first layer, later layers): it keeps the layer's
#: shift in SHIFT_MIN..SHIFT_MAX (first layer sh = in_shift - e - F, later layers sh = -(e + F)).
EXP_RANGE_FIRST = (-26.0, 12.0)
EXP_RANGE_HIDDEN = (-30.0, 7.0)


def round_half_up(x: Tensor) -> Tensor:
    """floor(x + 0.5) with a straight-through gradient: the contract's only rounding rule."""
    return x + (torch.floor(x + 0.5) - x).detach()


def to_fine_grid(x: Tensor) -> Tensor:
    """Round to multiples of 2^-F (half up), as qsnn_scale does on the accumulator."""
    s = float(2**FRAC_BITS)
    return round_half_up(x * s) / s


def sat16_fine(x: Tensor) -> Tensor:
    """Saturate a current (in threshold units) to the int16 range of fine units."""
    s = float(2**FRAC_BITS)
    return torch.clamp(x, I16_MIN / s, I16_MAX / s)


class _SignSTE(torch.autograd.Function):
    """sign with the Q-SNN backward k * t * (1 - tanh^2(t w)); sign(0) = +1."""

    @staticmethod
    def forward(ctx: Any, w: Tensor, t: float) -> Tensor:
        ctx.save_for_backward(w)
        ctx.t = t
        return torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None]:
        (w,) = ctx.saved_tensors
        t = ctx.t
        k = max(1.0, 1.0 / t)
        return g * k * t * (1 - torch.tanh(t * w) ** 2), None


def binary_weight(w: Tensor, log2_gain: Tensor, t: float, regulate: bool = True) -> tuple[Tensor, Tensor, Tensor]:
    """WS-DR weight regulation: per output channel standardise, binarise, power-of-two scale.

    Returns (effective weight alpha * sign, signs in {-1, +1}, integer exponent of alpha).
    alpha = 2^(round(log2 mean|w_std|) + round(log2_gain)): the first factor is the official
    detached WS-DR scale, the second a learnable per-channel power-of-two gain (an FC network
    has no batch norm to set the current's scale). ``regulate=False`` is the ablation's naive
    binarisation: the signs and the scale of the latent weights as they are (no centring, no
    standardisation), everything else the same.
    """
    if regulate:
        mu = w.mean(dim=1, keepdim=True)
        sd = w.std(dim=1, keepdim=True) + 1e-8
        w_std = (w - mu) / sd
    else:
        w_std = w
    signs = _SignSTE.apply(w_std, t)
    base = torch.round(torch.log2(w_std.abs().mean(dim=1, keepdim=True))).detach()
    expo = base + round_half_up(log2_gain.view(-1, 1))
    expo = torch.clamp(expo, *EXP_RANGE_HIDDEN)
    alpha = torch.pow(2.0, expo)
    return alpha * signs, signs.detach(), expo.detach().view(-1)


def int8_pow2_weight(w: Tensor, per_channel: bool) -> tuple[Tensor, Tensor, Tensor]:
    """8-bit weights with a power-of-two scale (per output channel or per tensor).

    W_int = clamp(round_half_up(w / 2^e), -127, 127), e = ceil(log2(max|w| / 127)).
    Returns (effective weight W_int * 2^e, W_int, e).
    """
    if per_channel:
        mx = w.detach().abs().amax(dim=1, keepdim=True)
    else:
        mx = w.detach().abs().amax().view(1, 1).expand(w.shape[0], 1)
    e = torch.ceil(torch.log2(torch.clamp(mx, min=1e-12) / 127.0))
    e = torch.clamp(e, *EXP_RANGE_FIRST)
    scale = torch.pow(2.0, e)
    q = torch.clamp(round_half_up(w / scale), -127, 127)
    return q * scale, q.detach(), e.detach().view(-1)


#: Clipping range of b-bit weights in standard deviations of their row (2 bits: ternary,
#: threshold about half a standard deviation; wider ranges for more levels).
CLIP_SIGMAS = {2: 1.0, 4: 2.5, 8: 4.0}


def int_pow2_weight(w: Tensor, bits: int) -> tuple[Tensor, Tensor, Tensor]:
    """b-bit weights (b = 2, 4, 8) with a per-output-channel power-of-two scale: codes
    clamp(round_half_up(w / 2^e), -(2^(b-1) - 1), 2^(b-1) - 1), with e = round(log2(k_b * std(w) /
    (2^(b-1) - 1))) so the codes span k_b standard deviations (CLIP_SIGMAS). Symmetric, so
    b = 2 is ternary (-1, 0, +1). Returns (effective weight, codes, e)."""
    top = float(2 ** (bits - 1) - 1)
    sd = w.detach().std(dim=1, keepdim=True)
    e = torch.round(torch.log2(torch.clamp(sd * CLIP_SIGMAS[bits] / top, min=1e-12)))
    e = torch.clamp(e, *EXP_RANGE_HIDDEN)
    scale = torch.pow(2.0, e)
    q = torch.clamp(round_half_up(w / scale), -top, top)
    return q * scale, q.detach(), e.detach().view(-1)


class _LIFStep(torch.autograd.Function):
    """One LIF step fused (charge, fire, reset, store) to cut per-step autograd overhead.

    Forward values are exactly those of the unfused ops in docs/contract.md section 5:
    m = u - u*2^-k + c; s = m > 1; m = 0 where s; u' = clamp(floor(m*2^(b-1) + 1/2)) / 2^(b-1).
    Backward: triangular surrogate for s, straight-through for the store (zero where it
    saturates), reset treated as a constant (detached), as in the unfused version.
    """

    @staticmethod
    def forward(ctx: Any, u: Tensor, c: Tensor, leak: float, mem_bits: int) -> tuple[Tensor, Tensor]:
        m = u - u * leak + c
        s = (m > 1.0).to(m.dtype)
        mr = m * (1.0 - s)
        q = float(2 ** (mem_bits - 1))
        code = torch.floor(mr * q + 0.5)
        inside = (code >= -q) & (code <= q - 1)
        u_new = torch.clamp(code, -q, q - 1) / q
        ctx.save_for_backward(m, s, inside)
        ctx.leak = leak
        return u_new, s

    @staticmethod
    def backward(ctx: Any, g_u: Tensor, g_s: Tensor) -> tuple[Tensor, Tensor, None, None]:
        m, s, inside = ctx.saved_tensors
        g_m = g_s * torch.clamp(1.0 - (m - 1.0).abs(), min=0.0) + g_u * inside.to(g_u.dtype) * (1.0 - s)
        return g_m * (1.0 - ctx.leak), g_m, None, None


def lif_step(u: Tensor, c: Tensor, leak_shift: int, mem_bits: int) -> tuple[Tensor, Tensor]:
    """(stored membrane u', spikes s) of one contract LIF step, in threshold units."""
    return _LIFStep.apply(u, c, 2.0**-leak_shift, mem_bits)


class _LIFStepFloat(torch.autograd.Function):
    """The float twin's LIF step: the same charge, fire (m > 1) and hard reset as
    _LIFStep, with the membrane kept in float (no rounding, no saturation). Same surrogate."""

    @staticmethod
    def forward(ctx: Any, u: Tensor, c: Tensor, leak: float) -> tuple[Tensor, Tensor]:
        m = u - u * leak + c
        s = (m > 1.0).to(m.dtype)
        ctx.save_for_backward(m, s)
        ctx.leak = leak
        return m * (1.0 - s), s

    @staticmethod
    def backward(ctx: Any, g_u: Tensor, g_s: Tensor) -> tuple[Tensor, Tensor, None]:
        m, s = ctx.saved_tensors
        g_m = g_s * torch.clamp(1.0 - (m - 1.0).abs(), min=0.0) + g_u * (1.0 - s)
        return g_m * (1.0 - ctx.leak), g_m, None


def lif_step_float(u: Tensor, c: Tensor, leak_shift: int) -> tuple[Tensor, Tensor]:
    """(float membrane, spikes) of one LIF step of the float twin, in threshold units."""
    return _LIFStepFloat.apply(u, c, 2.0**-leak_shift)


def adapt_step(a: Tensor, s: Tensor, shift: int, beta: float) -> Tensor:
    """The adaptation state after a step (docs/contract.md section 5), in threshold units:
    a - ceil(a * 2^-shift) + beta * s on the 2^-ADAPT_FRAC grid, saturated to 0..ADAPT_MAX codes.
    Backward: straight-through for the ceiling (the decay's gradient is 1 - 2^-shift), zero
    where it saturates; the spike's surrogate gradient flows through beta * s."""
    unit = float(2**ADAPT_FRAC)
    dec = a * 2.0**-shift
    dec = dec + (torch.ceil(dec * unit) / unit - dec).detach()
    return torch.clamp(a - dec + beta * s, 0.0, ADAPT_MAX / unit)
