"""Python binding of the event binner (firmware/lib/qsnn/src/qsnn_events.c).

Address events (x, y, polarity, timestamp in microseconds) become the per-step uint8 input
frames a network reads. Python never re-implements the rules: training, the integer
reference and the device all bin through this C code (docs/contract.md section 12).
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from qsnnkit import clib
from qsnnkit.spec import EV_ADD, EV_MAX_POOL_SHIFT, EV_MAX_SIDE, EV_MAX_WINDOW_US, EV_STATUS, NMNIST_SIDE

#: Structured dtype of an event stream (the N-MNIST readers return it).
EVENT_DTYPE = np.dtype([("x", np.uint16), ("y", np.uint16), ("p", np.uint8), ("t", np.uint32)])
ADDED, LATER, DROPPED, BEYOND, FRAME = (EV_ADD[k][0] for k in ("ADDED", "LATER", "DROPPED", "BEYOND", "FRAME"))
_STATUS = {code: f"{name}: {doc}" for name, (code, doc) in EV_STATUS.items()}
_U8P = ctypes.POINTER(ctypes.c_uint8)
_U16P = ctypes.POINTER(ctypes.c_uint16)
_U32P = ctypes.POINTER(ctypes.c_uint32)


class EvCfg(ctypes.Structure):
    """Mirror of qsnn_ev_cfg_t."""

    _fields_ = [("width", ctypes.c_uint16), ("height", ctypes.c_uint16), ("pool_shift", ctypes.c_uint8),
                ("cap", ctypes.c_uint8), ("window_us", ctypes.c_uint32)]


class EvStats(ctypes.Structure):
    """Mirror of qsnn_ev_stats_t."""

    _fields_ = [("dropped", ctypes.c_uint32), ("late", ctypes.c_uint32), ("beyond", ctypes.c_uint32)]


class EvState(ctypes.Structure):
    """Mirror of qsnn_ev_state_t."""

    _fields_ = [("cfg", EvCfg), ("wb", ctypes.c_uint32), ("hb", ctypes.c_uint32), ("n_inputs", ctypes.c_uint32),
                ("step_start", ctypes.c_uint32), ("steps", ctypes.c_uint32), ("dropped", ctypes.c_uint32),
                ("late", ctypes.c_uint32), ("beyond", ctypes.c_uint32), ("counts", _U8P)]


@lru_cache(maxsize=None)
def _lib() -> ctypes.CDLL:
    """The shared library (clib.load, one per process) with the binner's signatures set, once."""
    lib = clib.load()
    lib.qsnn_ev_inputs.argtypes = [ctypes.POINTER(EvCfg)]
    lib.qsnn_ev_inputs.restype = ctypes.c_uint32
    lib.qsnn_ev_init.argtypes = [ctypes.POINTER(EvState), ctypes.POINTER(EvCfg), _U8P, ctypes.c_size_t,
                                 ctypes.c_uint32]
    lib.qsnn_ev_init.restype = ctypes.c_int
    lib.qsnn_ev_add.argtypes = [ctypes.POINTER(EvState), *[ctypes.c_uint32] * 4]
    lib.qsnn_ev_add.restype = ctypes.c_int
    lib.qsnn_ev_close.argtypes = [ctypes.POINTER(EvState), _U8P]
    lib.qsnn_ev_close.restype = None
    lib.qsnn_ev_feed.argtypes = [ctypes.POINTER(EvState), ctypes.c_uint32, *[ctypes.c_uint32] * 4, _U8P]
    lib.qsnn_ev_feed.restype = ctypes.c_int
    lib.qsnn_ev_finish.argtypes = [ctypes.POINTER(EvState), ctypes.c_uint32, _U8P]
    lib.qsnn_ev_finish.restype = ctypes.c_int
    lib.qsnn_ev_bin.argtypes = [ctypes.POINTER(EvCfg), _U16P, _U16P, _U8P, _U32P, ctypes.c_size_t,
                                ctypes.c_uint32, ctypes.c_uint32, _U8P, _U8P, ctypes.c_size_t,
                                ctypes.POINTER(EvStats)]
    lib.qsnn_ev_bin.restype = ctypes.c_int
    return lib


@dataclass(frozen=True)
class EventConfig:
    """How events become input frames: the sensor, the pooling, the count cap, the step length."""

    width: int = NMNIST_SIDE
    height: int = NMNIST_SIDE
    pool_shift: int = 0  # one input per 2^s x 2^s pixel block and polarity
    cap: int = 1  # counts saturate here (1: binary spikes)
    window_us: int = 10_000

    def __post_init__(self) -> None:
        problems = []
        if not (1 <= self.width <= EV_MAX_SIDE and 1 <= self.height <= EV_MAX_SIDE):
            problems.append(f"sensor {self.width}x{self.height} (each side 1..{EV_MAX_SIDE})")
        if not 0 <= self.pool_shift <= EV_MAX_POOL_SHIFT:
            problems.append(f"pool_shift {self.pool_shift} (0..{EV_MAX_POOL_SHIFT})")
        if not 1 <= self.cap <= 255:
            problems.append(f"cap {self.cap} (1..255)")
        if not 1 <= self.window_us <= EV_MAX_WINDOW_US:
            problems.append(f"window_us {self.window_us} (1..{EV_MAX_WINDOW_US})")
        if problems:
            raise ValueError("event binning configuration out of range: " + ", ".join(problems))

    def c(self) -> EvCfg:
        return EvCfg(self.width, self.height, self.pool_shift, self.cap, self.window_us)

    @property
    def inputs(self) -> int:
        """Inputs per step: 2 polarities x ceil(height / 2^s) x ceil(width / 2^s)."""
        n = int(_lib().qsnn_ev_inputs(ctypes.byref(self.c())))
        assert n > 0, "EventConfig validated a configuration the C binner refuses"
        return n


@dataclass
class BinStats:
    dropped: int  # outside the sensor or polarity > 1
    late: int  # out of order, counted in the step they arrived in
    beyond: int  # at or after the last step's end: not counted


def as_events(x: np.ndarray, y: np.ndarray, p: np.ndarray, t: np.ndarray) -> np.ndarray:
    """A structured event array (EVENT_DTYPE) from four equally long arrays."""
    ev = np.empty(len(t), dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"], ev["t"] = x, y, p, t
    return ev


def bin_events(events: np.ndarray, cfg: EventConfig, steps: int, t0: int = 0) -> tuple[np.ndarray, BinStats]:
    """uint8 [steps, cfg.inputs] frames of one sample's events (in arrival order), the first
    step starting at t0, through the C binner; and what it did not count normally."""
    if events.dtype.names is None or not {"x", "y", "p", "t"} <= set(events.dtype.names):
        raise TypeError(f"events must be a structured array with fields x, y, p, t, got {events.dtype}")
    if not 0 <= steps <= 1 << 20:
        raise ValueError(f"steps must be 0..{1 << 20}, got {steps}")
    n_in = cfg.inputs
    x = np.ascontiguousarray(events["x"], dtype=np.uint16)
    y = np.ascontiguousarray(events["y"], dtype=np.uint16)
    p = np.ascontiguousarray(events["p"], dtype=np.uint8)
    t = np.ascontiguousarray(events["t"], dtype=np.uint32)
    frames = np.zeros((steps, n_in), dtype=np.uint8)
    counts = np.zeros(n_in, dtype=np.uint8)
    st = EvStats()
    rc = _lib().qsnn_ev_bin(ctypes.byref(cfg.c()), x.ctypes.data_as(_U16P), y.ctypes.data_as(_U16P),
                            p.ctypes.data_as(_U8P), t.ctypes.data_as(_U32P), len(t), t0 & 0xFFFFFFFF, steps,
                            frames.ctypes.data_as(_U8P), counts.ctypes.data_as(_U8P), n_in, ctypes.byref(st))
    if rc != 0:
        raise ValueError(f"qsnn_ev_bin refused the call: {_STATUS.get(rc, rc)}")
    return frames, BinStats(st.dropped, st.late, st.beyond)


class EventBinner:
    """The incremental interfaces (qsnn_ev_add / qsnn_ev_close, and qsnn_ev_feed /
    qsnn_ev_finish, which the device runs), for tests and for streaming events on the host."""

    def __init__(self, cfg: EventConfig, t0: int = 0) -> None:
        self.cfg = cfg
        self._counts = np.zeros(cfg.inputs, dtype=np.uint8)
        self._st = EvState()
        rc = _lib().qsnn_ev_init(ctypes.byref(self._st), ctypes.byref(cfg.c()), self._counts.ctypes.data_as(_U8P),
                                 self._counts.size, t0 & 0xFFFFFFFF)
        if rc != 0:
            raise ValueError(f"qsnn_ev_init refused the configuration: {_STATUS.get(rc, rc)}")

    def add(self, x: int, y: int, p: int, t: int) -> int:
        """ADDED, LATER (nothing changed: close the step first) or DROPPED."""
        return int(_lib().qsnn_ev_add(ctypes.byref(self._st), x & 0xFFFFFFFF, y & 0xFFFFFFFF, p & 0xFFFFFFFF,
                                      t & 0xFFFFFFFF))

    def close(self) -> np.ndarray:
        """The current step's frame; the next step begins."""
        frame = np.zeros(self.cfg.inputs, dtype=np.uint8)
        _lib().qsnn_ev_close(ctypes.byref(self._st), frame.ctypes.data_as(_U8P))
        return frame

    def feed(self, steps: int, x: int, y: int, p: int, t: int) -> tuple[int, np.ndarray | None]:
        """One event of a sample of ``steps`` steps: (FRAME, the closed step's frame: feed the
        event again), or (ADDED | DROPPED | BEYOND, None)."""
        frame = np.zeros(self.cfg.inputs, dtype=np.uint8)
        r = int(_lib().qsnn_ev_feed(ctypes.byref(self._st), steps, x & 0xFFFFFFFF, y & 0xFFFFFFFF,
                                    p & 0xFFFFFFFF, t & 0xFFFFFFFF, frame.ctypes.data_as(_U8P)))
        return r, (frame if r == FRAME else None)

    def finish(self, steps: int) -> np.ndarray | None:
        """After the sample's last event: the next of its remaining steps' frames, None when all are out."""
        frame = np.zeros(self.cfg.inputs, dtype=np.uint8)
        return frame if _lib().qsnn_ev_finish(ctypes.byref(self._st), steps, frame.ctypes.data_as(_U8P)) else None

    @property
    def beyond(self) -> int:
        return int(self._st.beyond)

    @property
    def step_start(self) -> int:
        return int(self._st.step_start)

    @property
    def steps(self) -> int:
        return int(self._st.steps)

    @property
    def dropped(self) -> int:
        return int(self._st.dropped)

    @property
    def late(self) -> int:
        return int(self._st.late)
