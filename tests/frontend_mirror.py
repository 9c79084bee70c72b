"""An independent numpy re-implementation of the integer front end, for tests only.

It follows the steps written in the header comment of firmware/lib/qsnn/src/qsnn_frontend.c
(the one definition) but shares no code or tables with it: the window, the twiddles and the
mel filter bank are recomputed here from their formulas (the mel bank as a dense
40 x 257 matrix instead of the C code's per-bin band index), the FFT is vectorised over
frames and butterflies, and floor(4 * log2(E)) is taken from Python integers as
bit_length(E^4) - 1. tests/test_frontend.py asserts that C and this mirror agree exactly.
"""
from __future__ import annotations

import numpy as np

FRAME, HOP, NFFT, NC, BANDS = 480, 320, 512, 256, 40
GAIN_LOG2 = 16           # features: floor(4 log2(E_true * 2^16))
PEAK_MSB = 19            # normalised peak < 2^20
POW_SHIFT = 16
Q15 = 32768
RND = 1 << 14


def _round_q15(v: np.ndarray) -> np.ndarray:
    return np.floor(np.asarray(v, dtype=np.float64) * Q15 + 0.5).astype(np.int64)


def window() -> np.ndarray:
    n = np.arange(FRAME)
    return _round_q15(0.5 - 0.5 * np.cos(2 * np.pi * n / FRAME))


def twiddles(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q15 cos and sin of pi*k/256."""
    t = np.pi * np.asarray(k, dtype=np.float64) / NC
    return _round_q15(np.cos(t)), _round_q15(np.sin(t))


def mel_matrix() -> np.ndarray:
    """Q15 triangular mel weights, (40, 257); falling slope = 32768 - rising of the next band."""
    def mel(f: np.ndarray) -> np.ndarray:
        return 1127.0 * np.log1p(np.asarray(f, dtype=np.float64) / 700.0)

    pts = np.linspace(mel(np.float64(20.0)), mel(np.float64(4000.0)), BANDS + 2)
    mu = mel(np.arange(NFFT // 2 + 1) * 16000.0 / NFFT)
    m = np.zeros((BANDS, NFFT // 2 + 1), dtype=np.int64)
    for b in range(BANDS):
        lo, ce, hi = pts[b], pts[b + 1], pts[b + 2]
        up = (mu > lo) & (mu < ce)
        m[b, up] = _round_q15((mu[up] - lo) / (ce - lo))
        down = (mu >= ce) & (mu < hi)
        m[b, down] = Q15 - _round_q15((mu[down] - ce) / (hi - ce))
    return m


def bitrev8() -> np.ndarray:
    i = np.arange(256)
    r = np.zeros(256, dtype=np.int64)
    for b in range(8):
        r |= ((i >> b) & 1) << (7 - b)
    return r


def frames_of(pcm: np.ndarray) -> np.ndarray:
    """Frames a hop-by-hop front end sees: frame t = pcm[320 t + 160 : 320 t + 640]."""
    x = np.asarray(pcm, dtype=np.int64)
    n_hops = x.size // HOP
    starts = HOP * np.arange(max(n_hops - 1, 0)) + (FRAME - HOP)
    return x[starts[:, None] + np.arange(FRAME)[None, :]] if starts.size else np.zeros((0, FRAME), np.int64)


def _log4(e: np.ndarray) -> np.ndarray:
    """floor(4 * log2(e)) for positive integers, exactly (bit length of e^4, minus one)."""
    f = np.frompyfunc(lambda v: (int(v) ** 4).bit_length() - 1, 1, 1)
    return f(e).astype(np.int64)


def frame_features(frames: np.ndarray) -> np.ndarray:
    """uint8 (F, 40) features of int frames (F, 480)."""
    x = np.asarray(frames, dtype=np.int64)
    nf = x.shape[0]
    y = np.zeros((nf, NFFT), dtype=np.int64)
    y[:, :FRAME] = x * window()[None, :]

    # block floating point: peak < 2^20
    peak = np.abs(y).max(axis=1)
    live = peak > 0
    msb = np.where(live, np.frexp(np.maximum(peak, 1).astype(np.float64))[1] - 1, 0)
    sh = np.where(live, PEAK_MSB - msb, 0)
    up = np.maximum(sh, 0)[:, None]
    dn = np.maximum(-sh, 0)[:, None]
    half = np.where(dn > 0, np.left_shift(1, np.maximum(dn - 1, 0)), 0)
    z = np.where(sh[:, None] >= 0, y << up, (y + half) >> dn)

    # complex packing in bit-reversed order, then radix-2 DIT stages
    br = bitrev8()
    re = np.zeros((nf, NC), dtype=np.int64)
    im = np.zeros((nf, NC), dtype=np.int64)
    re[:, br] = z[:, 0::2]
    im[:, br] = z[:, 1::2]
    length = 2
    while length <= NC:
        h = length // 2
        j = np.tile(np.arange(h), NC // length)
        a = np.repeat(np.arange(0, NC, length), h) + j
        b = a + h
        c, s = twiddles(j * (NFFT // length))
        tr = (re[:, b] * c + im[:, b] * s + RND) >> 15
        ti = (im[:, b] * c - re[:, b] * s + RND) >> 15
        ar, ai = re[:, a].copy(), im[:, a].copy()
        re[:, a], im[:, a] = ar + tr, ai + ti
        re[:, b], im[:, b] = ar - tr, ai - ti
        length *= 2

    # split into the real 512-point spectrum (2 X[k]) for k = 0..255
    k = np.arange(NC)
    nk = (NC - k) % NC
    a_re, a_im = re[:, k] + re[:, nk], im[:, k] - im[:, nk]
    d_re, d_im = im[:, k] + im[:, nk], re[:, nk] - re[:, k]
    c, s = twiddles(k)
    xr = a_re + ((d_re * c + d_im * s + RND) >> 15)
    xi = a_im + ((d_im * c - d_re * s + RND) >> 15)
    assert np.abs(xr).max(initial=0) < 2**31 and np.abs(xi).max(initial=0) < 2**31
    p = (xr * xr + xi * xi) >> POW_SHIFT

    e = p @ mel_matrix()[:, :NC].T             # (F, 40), exact int64
    assert (e >= 0).all()
    feat = np.zeros((nf, BANDS), dtype=np.int64)
    pos = e > 0
    if pos.any():
        off = np.broadcast_to((4 * (GAIN_LOG2 - 31 - 2 * sh))[:, None], e.shape)
        feat[pos] = np.clip(_log4(e[pos]) + off[pos], 0, 255)
    feat[~live] = 0
    return feat.astype(np.uint8)


def clip_features(pcm: np.ndarray) -> np.ndarray:
    """uint8 (frames, 40) for a pcm whose hops are fed one by one from a fresh state."""
    return frame_features(frames_of(pcm))
