"""Bit-packed weight rows (docs/contract.md section 8); the C side is qsnn_pack.h.

Row-major ``[out][in]``; each row starts on a fresh 32-bit word and is padded to whole words
with zero bits. Element ``j`` of a row at ``bits`` bits (1, 2, 4, 8) sits in word
``j * bits // 32`` of the row at bit offset ``(j * bits) % 32``, least significant bit first.
Codes: two's complement in ``bits`` bits for bits >= 2 (8 bits: -127..127, -128 is rejected),
for 1 bit: bit 1 = +1, bit 0 = -1 (0 is not representable).

A 1-bit layer of at most ``COLUMN_MAX_ROWS`` rows also carries its weights column by column
(:func:`columns`: the rows of the transpose, packed by the same rule) for the C core's column
kernels, and so does a 2-, 4- or 8-bit layer on spikes, as one such binary copy per bit
plane of its codes; ``qsnn_model_check`` compares them with the rows bit by bit. An 8-bit conv layer on the features
(one input channel) also carries its weights as int16 pairs, four channels interleaved
(:func:`conv_w8_quads`), for the Cortex-M4 multiply-accumulate kernel; checked the same way.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from qsnnkit.spec import COLUMN_MAX_ROWS

if TYPE_CHECKING:  # qsnnkit.model imports this module
    from qsnnkit.model import ConvertedModel

BITS: tuple[int, ...] = (1, 2, 4, 8)


def _check_bits(bits: int) -> None:
    if bits not in BITS:
        raise ValueError(f"bits must be one of {BITS}, got {bits!r}")


def value_range(bits: int) -> tuple[int, int]:
    """Smallest and largest value a weight of ``bits`` bits may hold (1 bit: -1 and +1 only)."""
    _check_bits(bits)
    if bits == 1:
        return -1, 1
    if bits == 8:
        return -127, 127
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def row_words(n: int, bits: int) -> int:
    """32-bit words of a packed row of ``n`` elements (QSNN_ROW_WORDS in qsnn_core.h)."""
    _check_bits(bits)
    if n < 0:
        raise ValueError(f"row length must be >= 0, got {n}")
    return (n * bits + 31) // 32


def pack_rows(w: np.ndarray, bits: int) -> np.ndarray:
    """Pack a 2-D integer matrix ``[rows, cols]``; returns ``rows * row_words(cols, bits)`` uint32 words.

    Raises ValueError for a bad width, a non-integer or non-2-D input, or any value out of range
    (never wraps).
    """
    _check_bits(bits)
    a = np.asarray(w)
    if a.ndim != 2:
        raise ValueError(f"pack_rows needs a 2-D [rows, cols] matrix, got shape {a.shape}")
    if a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"pack_rows needs integer values, got dtype {a.dtype}")
    rows, cols = a.shape
    a = a.astype(np.int64)
    lo, hi = value_range(bits)
    if bits == 1:
        bad = (a != 1) & (a != -1)
    else:
        bad = (a < lo) | (a > hi)
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        allowed = "-1 or +1" if bits == 1 else f"{lo}..{hi}"
        raise ValueError(
            f"{int(bad.sum())} value(s) out of range for {bits}-bit weights ({allowed}); "
            f"first at [{r}, {c}] = {int(a[r, c])}"
        )
    codes = (a > 0).astype(np.uint64) if bits == 1 else (a & ((1 << bits) - 1)).astype(np.uint64)
    per = 32 // bits
    nw = row_words(cols, bits)
    padded = np.zeros((rows, nw * per), dtype=np.uint64)
    padded[:, :cols] = codes
    shifts = (np.arange(per, dtype=np.uint64) * np.uint64(bits))[None, None, :]
    words = np.bitwise_or.reduce(padded.reshape(rows, nw, per) << shifts, axis=2)
    return words.astype(np.uint32).reshape(-1)


def unpack_rows(words: np.ndarray, bits: int, rows: int, cols: int) -> np.ndarray:
    """Inverse of :func:`pack_rows`: int32 ``[rows, cols]``.

    Raises ValueError if the word count does not match, a padding bit is set, or (8 bits) a code
    is -128: such data does not follow the contract.
    """
    _check_bits(bits)
    wv = np.asarray(words)
    if not np.issubdtype(wv.dtype, np.integer) or wv.dtype == np.bool_:
        raise ValueError(f"unpack_rows needs integer words, got dtype {wv.dtype}")
    wv = wv.reshape(-1).astype(np.uint64)
    if wv.size and (wv.max() >= 1 << 32):
        raise ValueError("unpack_rows: words must be 32-bit")
    nw = row_words(cols, bits)
    if wv.size != rows * nw:
        raise ValueError(f"{rows} rows of {cols} {bits}-bit values take {rows * nw} words, got {wv.size}")
    per = 32 // bits
    shifts = (np.arange(per, dtype=np.uint64) * np.uint64(bits))[None, None, :]
    codes = (wv.reshape(rows, nw, 1) >> shifts) & np.uint64((1 << bits) - 1)
    codes = codes.reshape(rows, nw * per).astype(np.int64)
    if codes[:, cols:].any():
        r = int(np.argwhere(codes[:, cols:].any(axis=1))[0, 0])
        raise ValueError(f"padding bits set in row {r} ({cols} {bits}-bit values per row)")
    codes = codes[:, :cols]
    if bits == 1:
        vals = 2 * codes - 1
    else:
        half = 1 << (bits - 1)
        vals = (codes ^ half) - half
        if bits == 8 and (vals == -128).any():
            r, c = (int(i) for i in np.argwhere(vals == -128)[0])
            raise ValueError(f"8-bit code 0x80 (-128) at [{r}, {c}]: not allowed by the contract")
    return vals.astype(np.int32)


def model_bytes(model: ConvertedModel) -> dict[str, int]:
    """Bytes of a converted model's packed data in flash, by part: weights, recurrent weights,
    readout, per-row parameters (shifts, biases, thresholds, feature means, output biases)."""
    w = sum(4 * len(pack_rows(L.w, L.w_bits)) for L in model.layers)
    r = sum(4 * len(pack_rows(L.w_rec, 1)) for L in model.layers if L.w_rec is not None)
    o = 4 * len(pack_rows(model.w_out, 8))
    p = sum(L.rows * (1 + 2) + (L.n_out if L.recurrent else 0) for L in model.layers) + model.n_bands + 4 * model.n_classes
    return {"weights": w, "recurrent": r, "readout": o, "params": p, "total": w + r + o + p}


def columns(w: np.ndarray, bits: int, *, planes: bool = False) -> np.ndarray | None:
    """The column copy of a weight matrix ``[rows, cols]`` the firmware carries beside its rows,
    or None (the column kernels do not run the layer): for 1-bit weights of at most
    COLUMN_MAX_ROWS rows ``pack_rows(w.T, 1)`` (column j: bit r = w[r][j]); for 2-, 4- and
    8-bit weights, only when ``planes`` (layers on spikes: BN_COLUMN, CONV_BN_COLUMN) and at most
    COLUMN_MAX_ROWS rows, one such copy per bit plane of the two's-complement codes, plane 0
    (least significant) first: plane p, column j, bit r = bit p of w[r][j]'s code."""
    a = np.asarray(w)
    if a.ndim != 2 or a.shape[0] > COLUMN_MAX_ROWS:
        return None
    if bits == 1:
        return pack_rows(a.T, 1)
    if not planes:
        return None
    _check_bits(bits)
    codes = a.astype(np.int64) & ((1 << bits) - 1)
    return np.concatenate([pack_rows(np.where((codes.T >> p) & 1, 1, -1), 1) for p in range(bits)])


def layer_columns(w: np.ndarray, bits: int, w_rec: np.ndarray | None, *,
                  spikes_in: bool = False) -> tuple[np.ndarray, np.ndarray | None] | None:
    """A layer's column copies as the firmware carries them (``qsnn_layer_t.w_cols`` and
    ``w_rec_cols``): its feed-forward weights' (bit planes for wider weights on spikes,
    ``spikes_in``: every layer but the first) and, when it is recurrent, its recurrent weights'
    (1-bit, the same number of rows); None when the layer has none (:func:`columns`)."""
    cols = columns(w, bits, planes=spikes_in)
    if cols is None:
        return None
    return cols, (None if w_rec is None else columns(w_rec, 1))


def conv_w8_quads(w: np.ndarray, bits: int, c_in: int, kt: int, kf: int) -> np.ndarray | None:
    """The int16-pair copy of an 8-bit conv layer on one input channel (``qsnn_layer_t.w_quads``),
    else None. Each frame row dt of a channel's ``kt x kf`` taps is padded to an even ``kfe``
    (a zero tap when kf is odd) and cut into ``kfe / 2`` pairs, so P = kt * kfe / 2 pairs per
    channel; channels go in groups of four (missing ones zero). Word ``(g * P + q) * 4 + k``
    holds pair q = dt * kfe / 2 + j of channel 4 g + k: tap (dt, 2 j) in its low and tap
    (dt, 2 j + 1) in its high 16 bits, two's complement: the operands of one SMLAD against two
    adjacent features."""
    a = np.asarray(w, dtype=np.int64)
    if bits != 8 or c_in != 1 or a.ndim != 2 or a.shape[1] != kt * kf:
        return None
    rows = a.shape[0]
    kfe = kf + (kf & 1)
    taps = np.zeros((4 * ((rows + 3) // 4), kt, kfe), dtype=np.int64)
    taps[:rows, :, :kf] = a.reshape(rows, kt, kf)
    pairs = taps.reshape(-1, kt * kfe // 2, 2) & 0xFFFF          # [channel, q, (low, high)]
    words = (pairs[:, :, 0] | (pairs[:, :, 1] << 16)).astype(np.uint32)  # [channel, q]
    g = words.reshape(-1, 4, kt * kfe // 2).transpose(0, 2, 1)    # [group, q, k]
    return np.ascontiguousarray(g).reshape(-1)
