"""The overflow proof: no integer the device computes can leave its type, for a given model.

From a converted model's weights, fan-in, shifts, biases, the input ranges of the contract
(centred features |feat - mu| <= 255, spikes 0/1) and the longest sample (spec.MAX_STEPS
steps), :func:`prove` bounds every quantity of the contract (docs/contract.md sections 2-7),
per neuron or per class, and compares it with the range that keeps it inside its C type *and*
exact in float32 (so the PyTorch forward, the integer reference and the C core agree):

| quantity | bound | limit |
|---|---|---|
| feed-forward accumulator, row p | ``xmax * sum_j |W[p][j]|`` | ``ACC_BOUND`` (2^24) |
| recurrent accumulator | ``n_out`` (1-bit weights on 0/1 spikes) | ``ACC_BOUND`` |
| rounding intermediate of scale() | ``A + 2^(sh-1)`` for ``sh > 0`` | ``ACC_BOUND`` |
| current before sat16 | ``S(A_ff, sh_ff) + S(A_rec, sh_rec) + |bias|`` (+ ``ADAPT_MAX << (F - ADAPT_FRAC)`` if adaptive) | ``CURRENT_BOUND`` (2^23 - 1) |
| membrane during a step | ``THETA + 32768`` (stored ``|u| <= THETA``, current int16) | ``INT32_MAX`` |
| per-class output, a sample | ``MAX_STEPS * (|b_out| + sum_j |Wout[k][j]|)`` | ``READOUT_BOUND`` (2^24) |
| step counter (uint32) | ``MAX_STEPS`` per sample | ``UINT32_MAX`` |

with ``S(A, sh) = A << -sh`` for ``sh <= 0`` and ``(A + 2^(sh-1)) >> sh`` otherwise (the
largest magnitude scale() can return for ``|acc| <= A``). The C core checks the same bounds
at start-up (qsnn_model_check returns QSNN_ERR_BOUNDS); the converter refuses a model that
fails them, naming the layer, the neuron and the bound.

``COVERED_LAYER_KINDS`` and ``COVERED_STATE`` name what the proof covers; a test fails when
the contract gains a layer kind or the C state a field that is not listed here, so a new
neuron type cannot slip past the proof.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qsnnkit import spec
from qsnnkit.model import ConvertedModel, IntLayer

INT32_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1
I16_ABS_MAX = 32768

#: Layer kinds (spec.LAYER_KINDS) whose arithmetic :func:`prove` bounds.
COVERED_LAYER_KINDS = ("DENSE", "CONV")
#: Every field of the C core's qsnn_state_t and where its range comes from.
COVERED_STATE = {
    "model": "pointer, not arithmetic",
    "mem": "stored membranes: saturated to b bits by the LIF store (contract section 5)",
    "spk": "spike bits",
    "prev": "spike bits of the previous step",
    "x": "centred features |feat - mu| <= FEATURE_ABS_MAX in int16",
    "hist_feat": "past raw features (uint8), centred as read: the same range as x",
    "hist_s": "past spike bits",
    "adapt": "adaptation states: saturated to 0..ADAPT_MAX by their update (contract section 5); their "
             "share of the current is in 'current before int16 saturation'",
    "out": "per-class outputs: bounded by 'per-class output, a sample'",
    "steps": "step counter: bounded by 'step counter'",
}


@dataclass(frozen=True)
class Bound:
    """One proved (or failed) bound: the largest magnitude `worst` a quantity can reach."""

    where: str  # "layer 0", "readout", "core"
    quantity: str
    ctype: str
    worst: int
    limit: int
    index: int | None = None  # neuron row / output channel / class that reaches `worst`
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.worst <= self.limit

    def __str__(self) -> str:
        at = f" (row {self.index}{', ' + self.detail if self.detail else ''})" if self.index is not None else (
            f" ({self.detail})" if self.detail else "")
        rel = "<=" if self.ok else ">"
        return f"{self.where}: {self.quantity}{at} can reach {self.worst:,} {rel} {self.limit:,} ({self.ctype})"


class BoundsError(ValueError):
    """A model whose integers could overflow (or stop being exact in float32)."""

    def __init__(self, failed: list[Bound]) -> None:
        self.failed = failed
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        super().__init__(f"model refused, overflow not ruled out: {failed[0]}{more}")


def scaled_max(a: np.ndarray, sh: np.ndarray) -> np.ndarray:
    """Largest |scale(acc, sh)| for |acc| <= a (int64 arrays; contract section 3)."""
    a = a.astype(np.int64)
    sh = sh.astype(np.int64)
    left = a << np.clip(-sh, 0, 62)
    pos = np.maximum(sh, 1)
    right = (a + (np.int64(1) << (pos - 1))) >> pos
    return np.where(sh > 0, right, left)


def _abs_row_sums(w: np.ndarray) -> np.ndarray:
    return np.abs(w.astype(np.int64)).sum(axis=1)


def _worst(where: str, quantity: str, ctype: str, values: np.ndarray, limit: int,
           detail: Callable[[int], str] | None = None) -> Bound:
    i = int(np.argmax(values)) if values.size else 0
    worst = int(values[i]) if values.size else 0
    return Bound(where, quantity, ctype, worst, limit, i if values.size > 1 else None,
                 detail(i) if detail is not None and values.size else "")


def layer_bounds(L: IntLayer, index: int) -> list[Bound]:
    """The bounds of one spiking layer, each at its worst neuron (row)."""
    kind = L.kind.upper()
    if kind not in COVERED_LAYER_KINDS:
        raise ValueError(f"layer {index}: the overflow proof does not cover layer kind {L.kind!r}")
    where = f"layer {index} ({L.kind})"
    xmax = spec.FEATURE_ABS_MAX if index == 0 else 1
    a_ff = _abs_row_sums(L.w) * xmax
    sh_ff = L.sh_ff.astype(np.int64)
    out = [_worst(where, "feed-forward accumulator", "int32, float32-exact", a_ff, spec.ACC_BOUND)]
    round_ff = np.where(sh_ff > 0, a_ff + (np.int64(1) << np.clip(sh_ff - 1, 0, 62)), 0)
    out.append(_worst(where, "rounding intermediate acc + 2^(sh_ff-1)", "int32, float32-exact", round_ff,
                      spec.ACC_BOUND))
    cur = scaled_max(a_ff, sh_ff) + np.abs(L.bias.astype(np.int64))
    if L.recurrent:
        assert L.w_rec is not None and L.sh_rec is not None
        a_rec = _abs_row_sums(L.w_rec)
        sh_rec = L.sh_rec.astype(np.int64)
        out.append(_worst(where, "recurrent accumulator", "int32, float32-exact", a_rec, spec.ACC_BOUND))
        round_rec = np.where(sh_rec > 0, a_rec + (np.int64(1) << np.clip(sh_rec - 1, 0, 62)), 0)
        out.append(_worst(where, "rounding intermediate acc + 2^(sh_rec-1)", "int32, float32-exact", round_rec,
                          spec.ACC_BOUND))
        cur = cur + scaled_max(a_rec, sh_rec)
        detail = lambda i: f"sh_ff {int(L.sh_ff[i])}, sh_rec {int(L.sh_rec[i])}, bias {int(L.bias[i])}"  # noqa: E731
    else:
        detail = lambda i: f"sh_ff {int(L.sh_ff[i])}, bias {int(L.bias[i])}"  # noqa: E731
    if L.adaptive:
        cur = cur + (spec.ADAPT_MAX << (spec.FRAC_BITS - spec.ADAPT_FRAC))
    out.append(_worst(where, "current before int16 saturation", "int32, float32-exact fine units", cur,
                      spec.CURRENT_BOUND, detail))
    out.append(Bound(where, "membrane during a step", "int32", spec.THETA + I16_ABS_MAX, INT32_MAX))
    return out


def prove(model: ConvertedModel, steps: int = spec.MAX_STEPS) -> list[Bound]:
    """Every bound of the model (ok or not), layer by layer, then the readout and counters."""
    out: list[Bound] = []
    for i, L in enumerate(model.layers):
        out.extend(layer_bounds(L, i))
    per_step = _abs_row_sums(model.w_out) + np.abs(model.b_out.astype(np.int64))
    out.append(_worst("readout", f"per-class output summed over {steps} steps", "int32, float32-exact",
                      per_step * steps, spec.READOUT_BOUND))
    out.append(Bound("core", "step counter per sample", "uint32", steps, UINT32_MAX))
    return out


def check(model: ConvertedModel, steps: int = spec.MAX_STEPS) -> list[Bound]:
    """prove() and raise BoundsError unless every bound holds; returns the bounds."""
    bounds = prove(model, steps)
    failed = [b for b in bounds if not b.ok]
    if failed:
        raise BoundsError(failed)
    return bounds


def report(bounds: list[Bound]) -> str:
    """The proof as a table, one line per bound, with its headroom in bits."""
    lines = ["where | quantity | worst | limit | headroom (bits)", "---|---|---|---|---"]
    for b in bounds:
        head = np.log2(b.limit / b.worst) if b.worst > 0 else float("inf")
        lines.append(f"{b.where} | {b.quantity} | {b.worst:,} | {b.limit:,} | {head:.1f}")
    return "\n".join(lines)
