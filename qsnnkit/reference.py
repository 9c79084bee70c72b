"""The Python integer reference: exactly what the device computes (docs/contract.md).

Plain numpy integer arithmetic, written from the contract (not from the C): it is the
oracle the PyTorch evaluation forward and the C core are both compared against. Batched
over clips; optionally records every step's stored membranes and spikes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qsnnkit.model import ConvertedModel, IntLayer
from qsnnkit.spec import ADAPT_FRAC, ADAPT_MAX, FRAC_BITS

THETA = 1 << FRAC_BITS
I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def scale(acc: np.ndarray, sh: np.ndarray) -> np.ndarray:
    """Contract scale(): round half up by an arithmetic right shift if sh > 0, else exact multiply."""
    acc = acc.astype(np.int64)
    sh = np.broadcast_to(sh.astype(np.int64), acc.shape)
    pos = np.maximum(sh, 1)
    right = (acc + (np.int64(1) << (pos - 1))) >> pos
    left = acc * (np.int64(1) << np.maximum(-sh, 0))
    return np.where(sh > 0, right, left)


def lif_step(v: np.ndarray, c: np.ndarray, leak_shift: int, mem_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """One LIF step on stored membranes v (int) and currents c: charge, fire (>), reset, store."""
    ms = FRAC_BITS - mem_bits + 1
    u = v.astype(np.int64) << ms
    m = u - (u >> leak_shift) + c
    s = m > THETA
    m = np.where(s, 0, m)
    q = scale(m, np.full(m.shape, ms))
    v_new = np.clip(q, -(1 << (mem_bits - 1)), (1 << (mem_bits - 1)) - 1)
    return v_new, s


def adapt_step(a: np.ndarray, s: np.ndarray, shift: int, beta: int) -> np.ndarray:
    """The adaptation state after a step: a - ceil(a / 2^shift) + beta * s, saturated to 0..ADAPT_MAX."""
    a = a.astype(np.int64)
    return np.clip(a - ((a + (1 << shift) - 1) >> shift) + beta * s.astype(np.int64), 0, ADAPT_MAX)


@dataclass
class Trace:
    """Per step and layer: stored membrane codes [B, T, N] and spikes [B, T, N]."""

    mem: list[np.ndarray] = field(default_factory=list)
    spk: list[np.ndarray] = field(default_factory=list)


def conv_sums(L: IntLayer, hist: np.ndarray) -> np.ndarray:
    """Synaptic sums [B, c_out * f_out] (channel-major) of a streaming convolution over its
    input history [B, kt, c_in, f_in] (slot kt-1 = this step, slot 0 the oldest), frequency
    zero-padded by kf // 2 on each side (contract section 4)."""
    B = hist.shape[0]
    padded = np.zeros((B, L.kt, L.c_in, L.f_in + 2 * L.pad), np.int64)
    padded[:, :, :, L.pad:L.pad + L.f_in] = hist
    # patches [B, f_out, c_in, kt, kf] -> columns ordered (ci, dt, df) like the weight rows
    idx = np.arange(L.f_out)[:, None] * L.stride + np.arange(L.kf)[None, :]  # [f_out, kf]
    patches = padded[:, :, :, idx]  # [B, kt, c_in, f_out, kf]
    patches = patches.transpose(0, 3, 2, 1, 4).reshape(B, L.f_out, L.c_in * L.kt * L.kf)
    acc = patches @ L.w.astype(np.int64).T  # [B, f_out, c_out]
    return acc.transpose(0, 2, 1).reshape(B, L.rows * L.f_out)


def run_batch(model: ConvertedModel, feats: np.ndarray, trace: bool = False) -> tuple[np.ndarray, Trace | None]:
    """Per-class outputs int32 [B, C] for integer features uint8 [B, T, n_bands]."""
    feats = np.asarray(feats)
    if feats.ndim != 3 or feats.shape[2] != model.n_bands:
        raise ValueError(f"features must be [clips, frames, {model.n_bands}], got {feats.shape}")
    if feats.dtype != np.uint8:
        raise ValueError(f"features must be uint8, got {feats.dtype}")
    B, T, _ = feats.shape
    x_all = feats.astype(np.int64) - model.feat_mu.astype(np.int64)
    v = [np.zeros((B, L.n_out), np.int64) for L in model.layers]
    s = [np.zeros((B, L.n_out), np.int64) for L in model.layers]
    a = [np.zeros((B, L.n_out), np.int64) for L in model.layers]  # adaptation states (adaptive layers)
    out = np.zeros((B, model.n_classes), np.int64)
    tr = Trace(
        mem=[np.zeros((B, T, L.n_out), np.int8) for L in model.layers],
        spk=[np.zeros((B, T, L.n_out), np.uint8) for L in model.layers],
    ) if trace else None
    ws = [L.w.astype(np.int64) for L in model.layers]
    hist = [np.zeros((B, L.kt, L.c_in, L.f_in), np.int64) if L.is_conv else None for L in model.layers]
    wr = [None if L.w_rec is None else L.w_rec.astype(np.int64) for L in model.layers]
    w_out = model.w_out.astype(np.int64)
    b_out = model.b_out.astype(np.int64)
    for t in range(T):
        below = x_all[:, t]
        for li, L in enumerate(model.layers):
            if L.is_conv:
                h = hist[li]
                assert h is not None
                h[:, :-1] = h[:, 1:]  # the window moves by one frame
                h[:, -1] = below.reshape(B, L.c_in, L.f_in)
                per_neuron = np.repeat(np.arange(L.rows), L.f_out)  # channel of each neuron
                c = scale(conv_sums(L, h), L.sh_ff[per_neuron]) + L.bias.astype(np.int64)[per_neuron]
            else:
                c = scale(below @ ws[li].T, L.sh_ff) + L.bias.astype(np.int64)
            w_rec = wr[li]
            if w_rec is not None:
                assert L.sh_rec is not None
                c = c + scale(s[li] @ w_rec.T, L.sh_rec)  # own spikes of t-1
            if L.adaptive:
                c = c - (a[li] << (FRAC_BITS - ADAPT_FRAC))
            c = np.clip(c, -32768, 32767)
            v[li], spk = lif_step(v[li], c, L.leak_shift, L.mem_bits)
            s[li] = spk.astype(np.int64)
            if L.adaptive:
                a[li] = adapt_step(a[li], s[li], L.adapt_shift, L.adapt_beta)
            if tr is not None:
                tr.mem[li][:, t] = v[li]
                tr.spk[li][:, t] = s[li]
            below = s[li]
        out = np.clip(out + below @ w_out.T + b_out, I32_MIN, I32_MAX)
    return out.astype(np.int32), tr


def run_clip(model: ConvertedModel, feats: np.ndarray) -> np.ndarray:
    """Per-class outputs int32 [C] of one clip's features uint8 [T, n_bands]."""
    out, _ = run_batch(model, np.asarray(feats)[None])
    return out[0]


def predict(outputs: np.ndarray) -> np.ndarray:
    """argmax over classes, ties to the lowest index (np.argmax's rule, as the contract's)."""
    return np.argmax(outputs, axis=-1)


def fan_out(model: ConvertedModel, li: int) -> np.ndarray:
    """For each spike of layer li (index n), the synapses it drives in one step: the next
    layer's (dense: n_out; conv: channels x the positions whose window holds it), its own
    recurrence (n_out) and, for the last layer, the readout (n_classes)."""
    L = model.layers[li]
    out = np.zeros(L.n_out, np.int64)
    if L.recurrent:
        out += L.n_out
    if li + 1 == len(model.layers):
        return out + model.n_classes
    nxt = model.layers[li + 1]
    if not nxt.is_conv:
        return out + nxt.n_out
    return out + np.tile(input_reach(nxt), nxt.c_in) * nxt.rows * nxt.kt


def input_reach(L: IntLayer) -> np.ndarray:
    """For each input position of a conv layer, the output windows (f, df) that read it."""
    reach = np.zeros(L.f_in, np.int64)
    for f in range(L.f_out):
        for df in range(L.kf):
            p = f * L.stride - L.pad + df
            if 0 <= p < L.f_in:
                reach[p] += 1
    return reach


def operation_counts(model: ConvertedModel, trace: Trace, frames: int | None = None) -> dict[str, float]:
    """Mean per clip over a traced batch: synaptic operations (active spikes x fan-out, readout
    included; a spike in a conv layer's history counts once per step it is read, hence the
    factor kt) and the first layer's 8-bit MACs (every in-range tap, features are dense)."""
    T = trace.spk[0].shape[1] if frames is None else frames
    sops = 0.0
    for li in range(len(model.layers)):
        sops += float((trace.spk[li].astype(np.int64) * fan_out(model, li)).sum(axis=(1, 2)).mean())
    L0 = model.layers[0]
    if L0.is_conv:
        taps = sum(1 for f in range(L0.f_out) for df in range(L0.kf) if 0 <= f * L0.stride - L0.pad + df < L0.f_in)
        macs = taps * L0.kt * L0.rows * T
    else:
        macs = L0.n_in * L0.n_out * T
    return {"sops_per_inference": sops, "macs_per_inference": float(macs)}
