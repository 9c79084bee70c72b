"""Python binding of the integer audio front end (firmware/lib/qsnn/src/qsnn_frontend.c).

Python never re-implements the front end: these functions call the C code through the
host build of the library (qsnnkit.clib), so features for training, evaluation and the
device are the same bytes. Contract: docs/contract.md section 1; details: docs/frontend.md.
"""
from __future__ import annotations

import ctypes
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from qsnnkit import clib
from qsnnkit.spec import CLIP_FRAMES, CLIP_LEN, FRAME_LEN, HISTORY_LEN, HOP_LEN, N_BANDS, SAMPLE_RATE

__all__ = ["CLIP_FRAMES", "CLIP_LEN", "FRAME_LEN", "HISTORY_LEN", "HOP_LEN", "N_BANDS", "SAMPLE_RATE",
           "FeState", "StreamingFrontEnd", "batch_features", "clip_features", "fit_clip", "frame_features"]

_I16P = ctypes.POINTER(ctypes.c_int16)
_U8P = ctypes.POINTER(ctypes.c_uint8)


class FeState(ctypes.Structure):
    """Mirror of qsnn_fe_state_t (qsnn_frontend.h); tests/test_spec.py checks sizeof and offsetof."""

    _fields_ = [("hist", ctypes.c_int16 * HISTORY_LEN), ("primed", ctypes.c_uint8)]


@lru_cache(maxsize=None)
def _lib() -> ctypes.CDLL:
    """The shared library (clib.load, one per process) with the front end's signatures set, once."""
    lib = clib.load()
    lib.qsnn_fe_reset.argtypes = [ctypes.POINTER(FeState)]
    lib.qsnn_fe_reset.restype = None
    lib.qsnn_fe_push.argtypes = [ctypes.POINTER(FeState), _I16P, _U8P]
    lib.qsnn_fe_push.restype = ctypes.c_int
    lib.qsnn_fe_frame.argtypes = [_I16P, _I16P, _U8P]
    lib.qsnn_fe_frame.restype = None
    lib.qsnn_fe_clip.argtypes = [_I16P, ctypes.c_uint32, _U8P, ctypes.c_uint32]
    lib.qsnn_fe_clip.restype = ctypes.c_uint32
    return lib


def _as_int16_1d(pcm: npt.ArrayLike, what: str = "pcm") -> np.ndarray:
    arr = np.asarray(pcm)
    if arr.dtype != np.int16:
        raise TypeError(f"{what} must be int16 PCM, got dtype {arr.dtype} (convert explicitly, e.g. from WAV bytes)")
    if arr.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional (mono samples), got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def fit_clip(pcm: npt.ArrayLike) -> np.ndarray:
    """Exactly 1 s: zero-pad at the end or cut after 16000 samples (contract section 1)."""
    x = _as_int16_1d(pcm)
    if x.size >= CLIP_LEN:
        return np.ascontiguousarray(x[:CLIP_LEN])
    out = np.zeros(CLIP_LEN, dtype=np.int16)
    out[: x.size] = x
    return out


def _ptr(a: np.ndarray, t: type) -> ctypes._Pointer:
    return a.ctypes.data_as(t)


def clip_features(pcm: npt.ArrayLike) -> np.ndarray:
    """Features of one clip: int16 PCM (any length, padded/cut to 1 s) -> uint8 (49, 40)."""
    x = fit_clip(pcm)
    out = np.zeros((CLIP_FRAMES, N_BANDS), dtype=np.uint8)
    got = _lib().qsnn_fe_clip(_ptr(x, _I16P), CLIP_LEN, _ptr(out, _U8P), CLIP_FRAMES)
    if got != CLIP_FRAMES:
        raise RuntimeError(f"qsnn_fe_clip produced {got} frames, expected {CLIP_FRAMES}")
    return out


def batch_features(clips: Iterable[npt.ArrayLike] | np.ndarray) -> np.ndarray:
    """Features of many clips: a sequence of int16 arrays or an int16 (n, samples) array
    -> uint8 (n, 49, 40)."""
    if isinstance(clips, np.ndarray) and clips.ndim != 2:
        raise ValueError(f"a batch array must be (n_clips, n_samples), got shape {clips.shape}")
    feats = [clip_features(c) for c in clips]
    if not feats:
        return np.zeros((0, CLIP_FRAMES, N_BANDS), dtype=np.uint8)
    return np.stack(feats)


def frame_features(frame: npt.ArrayLike) -> np.ndarray:
    """Features of one 480-sample frame (stateless qsnn_fe_frame) -> uint8 (40,)."""
    x = _as_int16_1d(frame, "frame")
    if x.size != FRAME_LEN:
        raise ValueError(f"a frame has {FRAME_LEN} samples, got {x.size}")
    head = np.ascontiguousarray(x[:HISTORY_LEN])
    tail = np.ascontiguousarray(x[HISTORY_LEN:])
    out = np.zeros(N_BANDS, dtype=np.uint8)
    _lib().qsnn_fe_frame(_ptr(head, _I16P), _ptr(tail, _I16P), _ptr(out, _U8P))
    return out


class StreamingFrontEnd:
    """The device's view: push one 320-sample hop at a time (qsnn_fe_push / qsnn_fe_reset).

    The state lives in a qsnn_fe_state_t owned by this object, exactly as on the device.
    """

    def __init__(self) -> None:
        self._lib = _lib()
        self._state = FeState()
        self.reset()

    def reset(self) -> None:
        """Start of a clip: the next hop yields no frame."""
        self._lib.qsnn_fe_reset(ctypes.byref(self._state))

    @property
    def primed(self) -> bool:
        return bool(self._state.primed)

    @property
    def history(self) -> np.ndarray:
        """Copy of the 160 samples kept from the last hop."""
        return np.array(self._state.hist, dtype=np.int16)

    def push(self, hop: npt.ArrayLike) -> np.ndarray | None:
        """Feed 320 int16 samples; the 40 features of the frame it completes, or None."""
        x = _as_int16_1d(hop, "hop")
        if x.size != HOP_LEN:
            raise ValueError(f"a hop has {HOP_LEN} samples, got {x.size}")
        out = np.zeros(N_BANDS, dtype=np.uint8)
        made = self._lib.qsnn_fe_push(ctypes.byref(self._state), _ptr(x, _I16P), _ptr(out, _U8P))
        return out if made else None

    def push_many(self, pcm: npt.ArrayLike) -> np.ndarray:
        """Feed every complete hop of pcm (length must be a multiple of 320) -> (frames, 40)."""
        x = _as_int16_1d(pcm)
        if x.size % HOP_LEN:
            raise ValueError(f"length {x.size} is not a whole number of {HOP_LEN}-sample hops")
        rows: list[np.ndarray] = []
        for i in range(0, x.size, HOP_LEN):
            f = self.push(x[i:i + HOP_LEN])
            if f is not None:
                rows.append(f)
        return np.stack(rows) if rows else np.zeros((0, N_BANDS), dtype=np.uint8)

