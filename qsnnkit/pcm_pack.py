"""Packed PCM: the AUDIO_PACKED payload, lossless (docs/protocol.md, "AUDIO_PACKED").

The emulated boards' UARTs move a byte per emulator main-loop pass, so a clip's 32 kB of PCM
is what an evaluation waits for. Speech is predictable sample to sample: a fixed polynomial
predictor and Rice codes of its residuals carry the same samples in fewer bytes, which the
device decodes exactly (``proto_audio_open`` / ``proto_audio_next`` in firmware/src/proto.c,
outside every measured section).

Payload: the head (spec.LAYOUTS["AUDIO_PACKED"]: u16 n_samples, u8 order, u8 k), then the
residuals, one Rice code each, bits MSB first, the last byte padded with zero bits:

- prediction (order 0, 1, 2; the samples before the payload's first count as 0):
  p = 0, x[i-1], 2 x[i-1] - x[i-2]; residual r = x[i] - p;
- zigzag u = 2 r for r >= 0, -2 r - 1 for r < 0;
- q = u >> k below ESCAPE_Q: q one bits, a zero bit, then the k low bits of u;
  otherwise ESCAPE_Q one bits, then u in RAW_BITS bits (|r| <= 131070 for any int16 input,
  so u < 2^18).

One encoding per content: a decoder refuses an escape whose u would have had a short code,
non-zero padding, trailing bytes, and any sample outside int16. This module is the format's
one definition on the host; tests hold proto.c to it.
"""
from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt

from qsnnkit import spec

ESCAPE_Q = spec.PCM_PACK_ESCAPE_Q
RAW_BITS = spec.PCM_PACK_RAW_BITS
MAX_ORDER = spec.PCM_PACK_MAX_ORDER
MAX_K = spec.PCM_PACK_MAX_K
HEAD = struct.Struct(spec.LAYOUTS["AUDIO_PACKED"].fmt)


def residuals(x: np.ndarray, order: int) -> np.ndarray:
    """Residuals of the order's predictor (int64), the samples before x[0] taken as 0."""
    v = np.concatenate([np.zeros(2, np.int64), x.astype(np.int64)])
    if order == 0:
        return v[2:]
    if order == 1:
        return v[2:] - v[1:-1]
    if order == 2:
        return v[2:] - 2 * v[1:-1] + v[:-2]
    raise ValueError(f"order must be 0..{MAX_ORDER}, got {order}")


def zigzag(r: np.ndarray) -> np.ndarray:
    return np.where(r >= 0, 2 * r, -2 * r - 1).astype(np.int64)


def code_bits(u: np.ndarray, k: int) -> int:
    """Bits of the Rice codes of u with parameter k (escapes included)."""
    q = u >> k
    short = q < ESCAPE_Q
    return int(np.sum(np.where(short, q + 1 + k, ESCAPE_Q + RAW_BITS)))


def best(x: np.ndarray) -> tuple[int, int, int]:
    """(order, k, payload bytes) of the smallest packing of x (ties: lowest order, then k)."""
    choice = None
    for order in range(MAX_ORDER + 1):
        u = zigzag(residuals(x, order))
        for k in range(MAX_K + 1):
            n = HEAD.size + (code_bits(u, k) + 7) // 8
            if choice is None or n < choice[2]:
                choice = (order, k, n)
    assert choice is not None
    return choice


def pack(samples: npt.ArrayLike, order: int | None = None, k: int | None = None) -> bytes:
    """The AUDIO_PACKED payload of 1..MAX_AUDIO_SAMPLES int16 samples (order and k: the
    smallest packing unless given)."""
    x = np.asarray(samples)
    if x.dtype != np.int16:
        raise ValueError(f"AUDIO_PACKED carries int16 samples, got {x.dtype}")
    if not 1 <= x.size <= spec.MAX_PAYLOAD // 2:
        raise ValueError(f"AUDIO_PACKED carries 1..{spec.MAX_PAYLOAD // 2} samples, got {x.size}")
    if order is None or k is None:
        order, k, _ = best(x)
    if not (0 <= order <= MAX_ORDER and 0 <= k <= MAX_K):
        raise ValueError(f"order must be 0..{MAX_ORDER} and k 0..{MAX_K}, got {order}, {k}")
    u = zigzag(residuals(x, order))
    q = np.minimum(u >> k, ESCAPE_Q)
    short = q < ESCAPE_Q
    # each code as (value, length): q ones, a zero, k bits; or ESCAPE_Q ones and RAW_BITS bits
    value = np.where(short, (((1 << q) - 1) << (k + 1)) | (u & ((1 << k) - 1)),
                     (((1 << ESCAPE_Q) - 1) << RAW_BITS) | u).astype(np.uint64)
    length = np.where(short, q + 1 + k, ESCAPE_Q + RAW_BITS).astype(np.int64)
    which = np.repeat(np.arange(x.size), length)
    at = np.arange(which.size) - np.repeat(np.cumsum(length) - length, length)
    bits = (value[which] >> (length[which] - 1 - at).astype(np.uint64)) & np.uint64(1)
    return HEAD.pack(x.size, order, k) + np.packbits(bits.astype(np.uint8)).tobytes()


class PackError(ValueError):
    """A payload that is not the one encoding of any samples."""


def unpack(payload: bytes) -> np.ndarray:
    """The samples of an AUDIO_PACKED payload (the device's rule, refusing what it refuses)."""
    if len(payload) < HEAD.size:
        raise PackError("shorter than the head")
    n, order, k = HEAD.unpack(payload[:HEAD.size])
    if not (1 <= n <= spec.MAX_PAYLOAD // 2 and order <= MAX_ORDER and k <= MAX_K):
        raise PackError(f"bad head: n_samples {n}, order {order}, k {k}")
    bits = np.unpackbits(np.frombuffer(payload[HEAD.size:], np.uint8)).tolist()
    pos = 0
    out = np.zeros(n, np.int16)
    x1 = x2 = 0

    def take(m: int) -> int:
        nonlocal pos
        if pos + m > len(bits):
            raise PackError("ends inside a code")
        v = 0
        for b in bits[pos:pos + m]:
            v = (v << 1) | b
        pos += m
        return v

    for i in range(n):
        q = 0
        while q < ESCAPE_Q and take(1) == 1:
            q += 1
        if q < ESCAPE_Q:
            u = (q << k) | take(k)
        else:
            u = take(RAW_BITS)
            if (u >> k) < ESCAPE_Q:
                raise PackError("an escape for a value with a short code")
        r = (u >> 1) ^ -(u & 1)
        p = 0 if order == 0 else (x1 if order == 1 else 2 * x1 - x2)
        x = p + r
        if not -32768 <= x <= 32767:
            raise PackError(f"sample {i} outside int16")
        out[i] = x
        x2, x1 = x1, x
    if (len(bits) - pos) >= 8 or any(bits[pos:]):
        raise PackError("trailing bytes or non-zero padding")
    return out
