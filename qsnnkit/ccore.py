"""ctypes binding of the C core (firmware/lib/qsnn/src/qsnn_core.c) built for the host.

Builds the same qsnn_model_t descriptor the generated firmware header holds, from a
ConvertedModel, with weights packed by qsnnkit.packing (the one packing definition).
Used by the converter (state bytes and the kernel of each layer, read from the C library)
and by tests (three-way agreement, per-step traces of every kernel). The ctypes structs
mirror qsnn_core.h; tests/test_spec.py checks their sizeof and every offsetof against the
C compiler's.
"""
from __future__ import annotations

import ctypes as ct
from typing import Literal, TypeAlias, overload

import numpy as np

from qsnnkit import bounds, clib, packing
from qsnnkit.model import ConvertedModel
from qsnnkit.spec import CORE_STATUS, KERNELS, LAYER_KINDS, MAX_LAYERS

#: run_clip(trace=True): outputs [C], then per layer membranes [T, N] and spikes [T, N]
Trace: TypeAlias = "tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]"

#: Kernel id -> name ("REF", "W8_DENSE", ...), from qsnnkit.spec.
KERNEL_NAMES = {kid: name for name, (kid, _) in KERNELS.items()}


class _Layer(ct.Structure):
    _fields_ = [
        ("n_in", ct.c_uint16), ("n_out", ct.c_uint16), ("w_bits", ct.c_uint8), ("recurrent", ct.c_uint8),
        ("mem_bits", ct.c_uint8), ("leak_shift", ct.c_uint8), ("kernel", ct.c_uint8), ("kind", ct.c_uint8),
        ("kt", ct.c_uint8), ("kf", ct.c_uint8), ("stride", ct.c_uint8), ("adapt_shift", ct.c_uint8),
        ("adapt_beta", ct.c_uint8), ("c_in", ct.c_uint16), ("f_in", ct.c_uint16),
        ("c_out", ct.c_uint16), ("f_out", ct.c_uint16),
        ("w", ct.POINTER(ct.c_uint32)), ("sh_ff", ct.POINTER(ct.c_int8)),
        ("w_rec", ct.POINTER(ct.c_uint32)), ("sh_rec", ct.POINTER(ct.c_int8)), ("bias", ct.POINTER(ct.c_int16)),
        ("w_cols", ct.POINTER(ct.c_uint32)), ("w_rec_cols", ct.POINTER(ct.c_uint32)),
        ("w_quads", ct.POINTER(ct.c_uint32)),
    ]


class _Model(ct.Structure):
    _fields_ = [
        ("format_version", ct.c_uint32), ("hash", ct.c_uint8 * 8), ("n_bands", ct.c_uint16),
        ("feat_mu", ct.POINTER(ct.c_uint8)), ("n_layers", ct.c_uint8), ("layers", ct.POINTER(_Layer)),
        ("n_classes", ct.c_uint16), ("w_out", ct.POINTER(ct.c_uint32)), ("b_out", ct.POINTER(ct.c_int32)),
    ]


class _State(ct.Structure):
    _fields_ = [
        ("model", ct.POINTER(_Model)), ("mem", ct.POINTER(ct.c_uint8)),
        ("spk", ct.POINTER(ct.c_uint32) * MAX_LAYERS), ("prev", ct.POINTER(ct.c_uint32) * MAX_LAYERS),
        ("x", ct.POINTER(ct.c_int16)), ("hist_feat", ct.POINTER(ct.c_uint8)),
        ("hist_s", ct.POINTER(ct.c_uint32) * MAX_LAYERS), ("adapt", ct.POINTER(ct.c_uint8) * MAX_LAYERS),
        ("out", ct.POINTER(ct.c_int32)), ("steps", ct.c_uint32),
    ]


def _setup(lib: ct.CDLL) -> None:
    lib.qsnn_model_check.argtypes = [ct.POINTER(_Model)]
    lib.qsnn_model_check.restype = ct.c_int
    lib.qsnn_state_bytes.argtypes = [ct.POINTER(_Model)]
    lib.qsnn_state_bytes.restype = ct.c_size_t
    lib.qsnn_state_init.argtypes = [ct.POINTER(_State), ct.POINTER(_Model), ct.c_void_p, ct.c_size_t]
    lib.qsnn_state_init.restype = ct.c_int
    lib.qsnn_reset.argtypes = [ct.POINTER(_State)]
    for f in (lib.qsnn_step_ref, lib.qsnn_step):
        f.argtypes = [ct.POINTER(_State), ct.POINTER(ct.c_uint8)]
        f.restype = None
    lib.qsnn_layer_kernel.argtypes = [ct.POINTER(_Model), ct.c_uint32]
    lib.qsnn_layer_kernel.restype = ct.c_uint32
    lib.qsnn_layer_membranes.argtypes = [ct.POINTER(_State), ct.c_uint32, ct.POINTER(ct.c_int8)]
    lib.qsnn_layer_membranes.restype = None


def _ptr(a: np.ndarray, ctype: type) -> ct._Pointer:
    return a.ctypes.data_as(ct.POINTER(ctype))


def _describe(model: ConvertedModel, kernels: list[str] | None,
              hash8: bytes) -> tuple[_Model, ct.Array[_Layer], list[np.ndarray]]:
    """The C descriptor (qsnn_model_t, its layers and the arrays they point into) of a model, as
    is: nothing is validated here, so tests can hand the C check models Python would refuse."""
    keep: list[np.ndarray] = []

    def arr(a: np.ndarray, dtype: type) -> np.ndarray:
        b: np.ndarray = np.ascontiguousarray(a, dtype=dtype)
        keep.append(b)
        return b

    layers = (_Layer * len(model.layers))()
    for i, L in enumerate(model.layers):
        d = layers[i]
        d.n_in, d.n_out, d.w_bits, d.recurrent = L.n_in, L.n_out, L.w_bits, int(L.recurrent)
        d.mem_bits, d.leak_shift = L.mem_bits, L.leak_shift
        d.kernel = KERNELS[kernels[i] if kernels else "AUTO"][0]
        d.kind = LAYER_KINDS["CONV" if L.is_conv else "DENSE"][0]
        d.kt, d.kf, d.stride = L.kt, L.kf, L.stride
        d.adapt_shift, d.adapt_beta = L.adapt_shift, L.adapt_beta
        d.c_in, d.f_in = (L.c_in, L.f_in) if L.is_conv else (1, L.n_in)
        d.c_out, d.f_out = L.rows, L.f_out
        d.w = _ptr(arr(packing.pack_rows(L.w, L.w_bits), np.uint32), ct.c_uint32)
        d.sh_ff = _ptr(arr(L.sh_ff, np.int8), ct.c_int8)
        d.bias = _ptr(arr(L.bias, np.int16), ct.c_int16)
        if L.recurrent:
            assert L.w_rec is not None and L.sh_rec is not None
            d.w_rec = _ptr(arr(packing.pack_rows(L.w_rec, 1), np.uint32), ct.c_uint32)
            d.sh_rec = _ptr(arr(L.sh_rec, np.int8), ct.c_int8)
        copies = packing.layer_columns(L.w, L.w_bits, L.w_rec, spikes_in=i > 0)
        if copies is not None:
            d.w_cols = _ptr(arr(copies[0], np.uint32), ct.c_uint32)
            if copies[1] is not None:
                d.w_rec_cols = _ptr(arr(copies[1], np.uint32), ct.c_uint32)
        quads = packing.conv_w8_quads(L.w, L.w_bits, L.c_in, L.kt, L.kf) if L.is_conv else None
        if quads is not None:
            d.w_quads = _ptr(arr(quads, np.uint32), ct.c_uint32)
    m = _Model()
    m.format_version = model.format_version
    m.hash[:] = list(hash8)
    m.n_bands = model.n_bands
    m.feat_mu = _ptr(arr(model.feat_mu, np.uint8), ct.c_uint8)
    m.n_layers = len(model.layers)
    m.layers = ct.cast(layers, ct.POINTER(_Layer))
    m.n_classes = model.n_classes
    m.w_out = _ptr(arr(packing.pack_rows(model.w_out, 8), np.uint32), ct.c_uint32)
    m.b_out = _ptr(arr(model.b_out, np.int32), ct.c_int32)
    return m, layers, keep


def c_model_check(model: ConvertedModel, kernels: list[str] | None = None) -> int:
    """qsnn_model_check() of the host-built core on `model`, without Python's validation first
    (0 = QSNN_OK; the codes are spec.CORE_STATUS)."""
    lib = clib.load()
    _setup(lib)
    m, _layers, _keep = _describe(model, kernels, bytes(8))
    return int(lib.qsnn_model_check(ct.byref(m)))


class CCore:
    """The host-built C core running one converted model.

    ``kernel="ref"`` steps with qsnn_step_ref (the reference kernel everywhere, the oracle);
    ``"fast"`` with qsnn_step, each layer on its kernel: ``kernels`` names one per layer
    (``"AUTO"``, ``"REF"``, ``"W8_DENSE"``, ``"B1_POPCOUNT"``, ``"EVENT"``), default AUTO."""

    def __init__(self, model: ConvertedModel, kernel: Literal["ref", "fast"] = "fast",
                 kernels: list[str] | None = None) -> None:
        self.lib = clib.load()
        _setup(self.lib)
        self.model = model
        if kernels is not None:
            unknown = [k for k in kernels if k not in KERNELS]
            if len(kernels) != len(model.layers) or unknown:
                raise ValueError(f"kernels: one of {sorted(KERNELS)} per layer ({len(model.layers)}), got {kernels}")
        m, self._layers, self._keep = _describe(model, kernels, model.hash8)
        self._model = m
        rc = self.lib.qsnn_model_check(ct.byref(m))
        if rc != 0 and kernels is not None:
            for i in range(len(model.layers)):  # which choice does the core refuse?
                chosen = self._layers[i].kernel
                for j in range(len(model.layers)):
                    self._layers[j].kernel = chosen if j == i else KERNELS["AUTO"][0]
                bad = self.lib.qsnn_model_check(ct.byref(m)) != 0
                for j in range(len(model.layers)):
                    self._layers[j].kernel = KERNELS[kernels[j]][0]
                if bad:
                    L = model.layers[i]
                    what = f"{L.kind}, {L.w_bits}-bit weights, reads {'features' if i == 0 else 'spikes'}"
                    raise ValueError(f"kernel {kernels[i]} cannot run layer {i} ({what}): "
                                     f"qsnn_model_check returned {rc}")
        if rc == CORE_STATUS["ERR_BOUNDS"][0]:
            bounds.check(model)  # raises BoundsError naming the layer, row and bound
        if rc != 0:
            raise ValueError(f"the C core rejects this model: qsnn_model_check returned {rc}")
        self.state_bytes = int(self.lib.qsnn_state_bytes(ct.byref(m)))
        self._arena = np.zeros((self.state_bytes + 3) // 4, np.uint32)
        self._st = _State()
        rc = self.lib.qsnn_state_init(ct.byref(self._st), ct.byref(m), self._arena.ctypes.data, self._arena.nbytes)
        if rc != 0:
            raise RuntimeError(f"qsnn_state_init returned {rc}")
        self._step = self.lib.qsnn_step_ref if kernel == "ref" else self.lib.qsnn_step

    def layer_kernels(self) -> list[str]:
        """The kernel qsnn_step runs for each layer (qsnn_layer_kernel: AUTO resolved)."""
        return [KERNEL_NAMES[int(self.lib.qsnn_layer_kernel(ct.byref(self._model), i))]
                for i in range(len(self.model.layers))]

    def reset(self) -> None:
        self.lib.qsnn_reset(ct.byref(self._st))

    def outputs(self) -> np.ndarray:
        return np.ctypeslib.as_array(self._st.out, shape=(self.model.n_classes,)).copy()

    def membranes(self, layer: int) -> np.ndarray:
        out = np.zeros(self.model.layers[layer].n_out, np.int8)
        self.lib.qsnn_layer_membranes(ct.byref(self._st), layer, out.ctypes.data_as(ct.POINTER(ct.c_int8)))
        return out

    def spikes(self, layer: int) -> np.ndarray:
        n = self.model.layers[layer].n_out
        words = np.ctypeslib.as_array(self._st.spk[layer], shape=(packing.row_words(n, 1),)).copy()
        bits = (words[:, None] >> np.arange(32, dtype=np.uint32)) & 1
        return bits.reshape(-1)[:n].astype(np.uint8)

    @overload
    def run_clip(self, feats: np.ndarray, trace: Literal[False] = False) -> np.ndarray: ...

    @overload
    def run_clip(self, feats: np.ndarray, trace: Literal[True]) -> Trace: ...

    def run_clip(self, feats: np.ndarray, trace: bool = False) -> np.ndarray | Trace:
        """Outputs int32 [C] for one clip (uint8 [T, n_bands]); with trace also per-step
        (membranes [layers][T, N], spikes [layers][T, N])."""
        feats = np.ascontiguousarray(feats, dtype=np.uint8)
        self.reset()
        T = feats.shape[0]
        mems = [np.zeros((T, L.n_out), np.int8) for L in self.model.layers]
        spks = [np.zeros((T, L.n_out), np.uint8) for L in self.model.layers]
        for t in range(T):
            self._step(ct.byref(self._st), feats[t].ctypes.data_as(ct.POINTER(ct.c_uint8)))
            if trace:
                for li in range(len(self.model.layers)):
                    mems[li][t] = self.membranes(li)
                    spks[li][t] = self.spikes(li)
        if trace:
            return self.outputs(), mems, spks
        return self.outputs()
