"""A layer's whole LIF sequence in one autograd node, for layers without recurrence or
adaptation (the convolutions of the default architectures), on the CPU.

The per-step path (model.py's time loop over train/quant.py's sat16_fine and fused LIF step)
runs about 20 tensor operations and two autograd nodes per time step; for a 640-neuron layer
over 50 steps that dispatch overhead is most of a training step's elementwise time. Here one
C function (train/csrc/lif_seq.c) runs the sequence forward and one runs it backward. It
computes the same float32 operations in the same order, so the spikes and every gradient
are bit-identical to the per-step path (tests/test_train.py compares them exactly), and
training results do not depend on which path ran.

Where the C library cannot be built (no compiler), ``available()`` is False and the model
keeps the per-step path: the same numbers, slower.
"""
from __future__ import annotations

import ctypes
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from qsnnkit import clib
from qsnnkit.spec import FRAC_BITS
from qsnnkit.train import quant

SOURCE = Path(__file__).resolve().parent / "csrc" / "lif_seq.c"
#: -ffp-contract=off: no fused multiply-add, so each float32 operation rounds as PyTorch's does;
#: -fno-trapping-math lets -O3 turn the selects into vector code (IEEE results unchanged)
FLAGS = ["-O3", "-ffp-contract=off", "-fno-trapping-math"]
_F = ctypes.POINTER(ctypes.c_float)
_I = ctypes.c_int32
_FL = ctypes.c_float


@lru_cache(maxsize=None)
def _lib() -> ctypes.CDLL | None:
    try:
        lib = ctypes.CDLL(str(clib.build_library("liblifseq", [SOURCE], FLAGS)))
    except (RuntimeError, OSError) as e:  # no compiler: the per-step path, same numbers
        warnings.warn(f"the C LIF sequence kernel is unavailable ({e}); training uses the slower per-step path")
        return None
    lib.qsnn_lif_seq_forward.argtypes = [_F, _F, _F, _F, _I, _I, _I, _FL, _FL, _I, _FL, _FL]
    lib.qsnn_lif_seq_backward.argtypes = [_F, _F, _F, _F, _F, _I, _I, _I, _FL, _FL, _I, _FL, _FL]
    lib.qsnn_lif_seq_forward.restype = None
    lib.qsnn_lif_seq_backward.restype = None
    return lib


def available() -> bool:
    return _lib() is not None


def _ptr(t: Tensor) -> "ctypes._Pointer[ctypes.c_float]":
    return ctypes.cast(t.data_ptr(), _F)


#: the current's saturation (quant.sat16_fine): int16 fine units, in threshold units
SAT_LO = quant.I16_MIN / float(2**FRAC_BITS)
SAT_HI = quant.I16_MAX / float(2**FRAC_BITS)


class _LIFSeq(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, cur: Tensor, leak: float, q: float, sat: bool) -> Tensor:
        lib = _lib()
        assert lib is not None
        cur = cur.detach().contiguous()
        B, T, N = cur.shape
        spikes = torch.empty_like(cur)
        m = torch.empty_like(cur)
        u = torch.empty(N, dtype=cur.dtype)
        lib.qsnn_lif_seq_forward(_ptr(cur), _ptr(spikes), _ptr(m), _ptr(u), B, T, N, leak, q, int(sat), SAT_LO, SAT_HI)
        ctx.save_for_backward(cur, m)
        ctx.args = (leak, q, sat)
        return spikes

    @staticmethod
    def backward(ctx: Any, g_s: Tensor) -> tuple[Tensor, None, None, None]:
        lib = _lib()
        assert lib is not None
        cur, m = ctx.saved_tensors
        leak, q, sat = ctx.args
        g_s = g_s.contiguous()
        B, T, N = cur.shape
        g_cur = torch.empty_like(cur)
        g_u = torch.empty(N, dtype=cur.dtype)
        lib.qsnn_lif_seq_backward(_ptr(g_s), _ptr(cur), _ptr(m), _ptr(g_cur), _ptr(g_u), B, T, N, leak, q, int(sat),
                                  SAT_LO, SAT_HI)
        return g_cur, None, None, None


def usable(cur: Tensor) -> bool:
    """True when this kernel can run the sequence: a float32 CPU tensor and a built library."""
    return cur.device.type == "cpu" and cur.dtype == torch.float32 and available()


def lif_seq(cur: Tensor, leak_shift: int, mem_bits: int | None, saturate: bool) -> Tensor:
    """Spikes [B, T, N] of a LIF layer from rest, fed the currents ``cur`` [B, T, N] (threshold
    units): each step saturates the current to int16 fine units (``saturate``), charges with
    the leak 2^-leak_shift, fires above 1 and resets to 0, then stores the membrane on the
    ``mem_bits`` grid (None: a float membrane). The spikes' gradient flows back as the per-step
    path's does (quant.py's surrogate and straight-through rules)."""
    q = 0.0 if mem_bits is None else float(2 ** (mem_bits - 1))
    return _LIFSeq.apply(cur, 2.0**-leak_shift, q, saturate)
