"""The converted (integer) model: its fields, its hash, and its file format.

A converted model holds only integers plus the settings that define what the device computes
(docs/contract.md). It is saved as an `.npz` of integer arrays, each in the one dtype the
format gives it (``ARRAY_DTYPES``), plus one JSON metadata string (loaded with
allow_pickle=False: no code is ever unpickled). The model hash is the SHA-256 of everything
that decides the device's answer: the format version, the contract's fixed-point setting,
the front-end specification (its algorithm version, geometry and a digest of every table,
qsnnkit.frontend_tables.specification()), the layer settings, the class names and every
array with its name, dtype and shape. The firmware carries its first 8 bytes and reports
them over the serial protocol.

This module is the shared layer's definition of the format: the converter writes it, the
host and the tests read it; neither needs torch.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qsnnkit.events import EventConfig
from qsnnkit.frontend_tables import specification as frontend_specification
from qsnnkit.spec import (ADAPT_MAX, ADAPT_SHIFT_MAX, ADAPT_SHIFT_MIN, CLIP_FRAMES, CONV_MAX_FOUT, CONV_MAX_KF,
                          CONV_MAX_KT, EVENTS_VERSION, FORMAT_VERSION, FRAC_BITS, MAX_STEPS, SHIFT_MAX, SHIFT_MIN)

#: The dtype every array of the format is stored (and hashed) in; an .npz holding another
#: dtype is refused. Per layer i the names are l{i}.w, l{i}.sh_ff, l{i}.bias, l{i}.w_rec, l{i}.sh_rec.
ARRAY_DTYPES: dict[str, str] = {
    "feat_mu": "|u1", "w": "|i1", "sh_ff": "|i1", "bias": "<i2", "w_rec": "|i1", "sh_rec": "|i1",
    "w_out": "|i1", "b_out": "<i4",
}


def _dtype_of(name: str) -> np.dtype:
    return np.dtype(ARRAY_DTYPES[name.split(".")[-1]])




@dataclass
class IntLayer:
    """One spiking layer. ``kind="dense"``: ``w`` is [n_out, n_in], one row per neuron.
    ``kind="conv"`` (streaming convolution, docs/contract.md section 4): the input is a map
    of ``c_in`` channels x ``f_in`` positions per step (features: 1 x n_bands; spikes of a
    conv layer below: its channels x positions, channel-major); ``w`` is [c_out, c_in*kt*kf]
    with columns ordered (ci, dt, df), dt = 0 the oldest of the kt frames; ``sh_ff`` and
    ``bias`` are per output channel; neuron (c, f) is n = c * f_out + f."""

    w_bits: int
    mem_bits: int
    leak_shift: int
    w: np.ndarray  # int [rows, fan_in]: int8 codes, or -1/+1 for 1 bit
    sh_ff: np.ndarray  # int [rows], SHIFT_MIN..SHIFT_MAX
    bias: np.ndarray  # int [rows], int16 range
    w_rec: np.ndarray | None = None  # int [n_out, n_out], -1/+1 (dense only)
    sh_rec: np.ndarray | None = None  # int [n_out]
    kind: str = "dense"
    c_in: int = 1
    f_in: int = 0
    kt: int = 1
    kf: int = 1
    stride: int = 1
    #: adaptive LIF (docs/contract.md section 5): decay shift 1..8 and growth per spike 1..255
    #: (units of 2^-ADAPT_FRAC of the threshold); 0 and 0: plain LIF
    adapt_shift: int = 0
    adapt_beta: int = 0

    @property
    def adaptive(self) -> bool:
        return self.adapt_shift > 0

    @property
    def is_conv(self) -> bool:
        return self.kind == "conv"

    @property
    def rows(self) -> int:
        """Weight rows (and entries of sh_ff / bias): neurons (dense) or output channels (conv)."""
        return int(self.w.shape[0])

    @property
    def pad(self) -> int:
        """Zero padding on each side of the frequency axis (conv)."""
        return self.kf // 2

    @property
    def f_out(self) -> int:
        """Output positions per channel (conv); 1 for dense."""
        if not self.is_conv:
            return 1
        return (self.f_in + 2 * self.pad - self.kf) // self.stride + 1

    @property
    def n_in(self) -> int:
        return self.c_in * self.f_in if self.is_conv else int(self.w.shape[1])

    @property
    def n_out(self) -> int:
        return self.rows * self.f_out

    @property
    def recurrent(self) -> bool:
        return self.w_rec is not None


def _layer_meta(L: IntLayer) -> dict[str, object]:
    m: dict[str, object] = {"w_bits": L.w_bits, "mem_bits": L.mem_bits, "leak_shift": L.leak_shift,
                            "n_in": L.n_in, "n_out": L.n_out, "recurrent": L.recurrent}
    if L.is_conv:  # dense layers keep the keys (and hashes) they always had
        m.update(kind="conv", c_in=L.c_in, f_in=L.f_in, kt=L.kt, kf=L.kf, stride=L.stride)
    if L.adaptive:  # plain LIF layers keep the keys (and hashes) they always had
        m.update(adapt_shift=L.adapt_shift, adapt_beta=L.adapt_beta)
    return m


#: Longest class name a model may carry (it is written into C sources, reports and tables).
MAX_CLASS_NAME = 64
#: Keys of an event model's input specification (its ``frontend`` entry; audio models keep the
#: front end's own specification there, unchanged, so their hashes are those of before).
EVENT_INPUT_KEYS = ("input", "events_version", "dataset", "width", "height", "pool_shift", "cap", "window_us", "steps")


def events_specification(cfg: EventConfig, steps: int, dataset: str) -> dict[str, object]:
    """The input specification of a model that reads binned address events (hashed)."""
    return {"input": "events", "events_version": EVENTS_VERSION, "dataset": dataset, "width": cfg.width,
            "height": cfg.height, "pool_shift": cfg.pool_shift, "cap": cfg.cap, "window_us": cfg.window_us,
            "steps": steps}


@dataclass
class ConvertedModel:
    feat_mu: np.ndarray  # int32 [n_bands], 0..255
    layers: list[IntLayer]
    w_out: np.ndarray  # int32 [n_classes, n_last], -127..127
    b_out: np.ndarray  # int32 [n_classes]
    classes: list[str]
    readout_exp: int = 0  # float logits = 2^readout_exp * integer outputs (not used by the device)
    frontend: dict[str, object] = field(default_factory=frontend_specification)
    format_version: int = FORMAT_VERSION
    provenance: dict[str, object] = field(default_factory=dict)  # not hashed

    @property
    def n_bands(self) -> int:
        return int(self.feat_mu.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.w_out.shape[0])

    @property
    def input_kind(self) -> str:
        """"audio" (features from the C front end) or "events" (frames from the C binner)."""
        return "events" if self.frontend.get("input") == "events" else "audio"

    @property
    def dataset(self) -> str:
        """What the model was trained on: an event model's specification names it; an audio
        model's is in its provenance (the training settings; not hashed: the device computes the
        same either way), "speech_commands" when none is recorded."""
        if self.input_kind == "events":
            return str(self.frontend["dataset"])
        st = self.provenance.get("train_settings")
        return str(st.get("dataset", "speech_commands")) if isinstance(st, dict) else "speech_commands"

    def event_config(self) -> EventConfig:
        """The event binning of an event model (ValueError for an audio model)."""
        if self.input_kind != "events":
            raise ValueError("an audio model has no event binning")
        f = self._frontend_int
        return EventConfig(width=f("width"), height=f("height"), pool_shift=f("pool_shift"), cap=f("cap"),
                           window_us=f("window_us"))

    @property
    def steps(self) -> int:
        """Network steps per sample: 49 frames of a 1 s clip, or the event model's steps."""
        return self._frontend_int("steps") if self.input_kind == "events" else CLIP_FRAMES

    def _frontend_int(self, key: str) -> int:
        """An integer entry of the input specification (ValueError naming it when it is not one)."""
        v = self.frontend.get(key)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise ValueError(f"input specification {key!r} is {v!r}, not an integer")
        return int(v)

    # -- validation ------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ValueError if any value breaks the contract's types and ranges."""

        def rng(name: str, a: np.ndarray, lo: int, hi: int) -> None:
            if not isinstance(a, np.ndarray) or not np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
                raise ValueError(f"{name}: must be an integer array, got {getattr(a, 'dtype', type(a).__name__)}")
            if a.size and (int(a.min()) < lo or int(a.max()) > hi):
                raise ValueError(f"{name}: values {int(a.min())}..{int(a.max())} outside {lo}..{hi}")

        if self.format_version != FORMAT_VERSION:
            raise ValueError(f"format version {self.format_version}, this tool reads {FORMAT_VERSION}")
        if self.feat_mu.ndim != 1:
            raise ValueError(f"feat_mu must be one-dimensional, got shape {self.feat_mu.shape}")
        if not self.layers:
            raise ValueError("a model needs at least one spiking layer")
        rng("feat_mu", self.feat_mu, 0, 255)
        n_prev = self.n_bands
        for i, L in enumerate(self.layers):
            p = f"layer {i}"
            if L.w.ndim != 2:
                raise ValueError(f"{p}: weights must be a matrix, got shape {L.w.shape}")
            if L.kind not in ("dense", "conv"):
                raise ValueError(f"{p}: unknown layer kind {L.kind!r}")
            if L.is_conv:
                if not (1 <= L.kt <= CONV_MAX_KT and 1 <= L.kf <= CONV_MAX_KF and 1 <= L.stride <= L.kf
                        and L.c_in >= 1 and L.f_in >= 1 and 1 <= L.f_out <= CONV_MAX_FOUT):
                    raise ValueError(f"{p}: conv geometry c_in {L.c_in} f_in {L.f_in} kt {L.kt} kf {L.kf} stride "
                                     f"{L.stride} breaks the contract (1 <= kt, kf <= {CONV_MAX_KT}, 1 <= stride <= kf, "
                                     f"1 <= f_out <= {CONV_MAX_FOUT})")
                if L.w.shape[1] != L.c_in * L.kt * L.kf:
                    raise ValueError(f"{p}: conv weights {L.w.shape} need c_in*kt*kf = {L.c_in * L.kt * L.kf} columns")
                if L.recurrent:
                    raise ValueError(f"{p}: a conv layer has no recurrent weights")
                below = self.layers[i - 1] if i else None
                if i == 0 and L.c_in != 1:
                    raise ValueError(f"{p}: a first conv layer reads 1 channel of {self.n_bands} features")
                if below is not None and (not below.is_conv or (below.rows, below.f_out) != (L.c_in, L.f_in)):
                    raise ValueError(f"{p}: a conv layer reads the channels x positions of a conv layer below")
            if L.n_in != n_prev:
                raise ValueError(f"{p}: {L.n_in} inputs, the layer below has {n_prev} outputs")
            if L.w_bits not in (1, 2, 4, 8) or (i == 0 and L.w_bits == 1):
                raise ValueError(f"{p}: unsupported weight width {L.w_bits}")
            if L.w_bits == 1:
                if not np.all(np.abs(L.w) == 1):
                    raise ValueError(f"{p}: 1-bit weights must be -1 or +1")
            else:
                lo = -127 if L.w_bits == 8 else -(1 << (L.w_bits - 1))
                rng(f"{p} weights", L.w, lo, (1 << (L.w_bits - 1)) - 1)
            if not 2 <= L.mem_bits <= 8 or not 1 <= L.leak_shift <= FRAC_BITS - L.mem_bits + 1:
                raise ValueError(f"{p}: mem_bits {L.mem_bits} / leak_shift {L.leak_shift} break the contract")
            if L.sh_ff.shape != (L.rows,) or L.bias.shape != (L.rows,):
                raise ValueError(f"{p}: sh_ff {L.sh_ff.shape} and bias {L.bias.shape} must be ({L.rows},)")
            rng(f"{p} sh_ff", L.sh_ff, SHIFT_MIN, SHIFT_MAX)
            if (L.adapt_shift, L.adapt_beta) != (0, 0) and not (
                    ADAPT_SHIFT_MIN <= L.adapt_shift <= ADAPT_SHIFT_MAX and 1 <= L.adapt_beta <= ADAPT_MAX):
                raise ValueError(f"{p}: adaptation shift {L.adapt_shift} / beta {L.adapt_beta} break the contract "
                                 f"(shift {ADAPT_SHIFT_MIN}..{ADAPT_SHIFT_MAX} and beta 1..{ADAPT_MAX}, or both 0)")
            rng(f"{p} bias", L.bias, -32768, 32767)
            if L.recurrent:
                assert L.w_rec is not None and L.sh_rec is not None
                if L.w_rec.shape != (L.n_out, L.n_out) or not np.all(np.abs(L.w_rec) == 1):
                    raise ValueError(f"{p}: recurrent weights must be a square matrix of -1/+1")
                if L.sh_rec.shape != (L.n_out,):
                    raise ValueError(f"{p}: sh_rec {L.sh_rec.shape} must be ({L.n_out},)")
                rng(f"{p} sh_rec", L.sh_rec, SHIFT_MIN, SHIFT_MAX)
            n_prev = L.n_out
        if self.w_out.ndim != 2 or self.w_out.shape[1] != n_prev or self.b_out.shape != (self.w_out.shape[0],):
            raise ValueError(f"readout weights {self.w_out.shape} / bias {self.b_out.shape} do not fit "
                             f"a last layer of {n_prev} outputs")
        rng("readout weights", self.w_out, -127, 127)
        rng("readout bias", self.b_out, -(2**31), 2**31 - 1)
        if len(self.classes) != self.n_classes:
            raise ValueError(f"{len(self.classes)} class names for {self.n_classes} outputs")
        if self.input_kind == "events":
            if sorted(self.frontend) != sorted(EVENT_INPUT_KEYS):
                raise ValueError(f"event input specification has keys {sorted(self.frontend)}, expected "
                                 f"{sorted(EVENT_INPUT_KEYS)}")
            try:
                n_in = self.event_config().inputs
            except (TypeError, ValueError) as e:
                raise ValueError(f"event input specification: {e}") from e
            if n_in != self.n_bands:
                raise ValueError(f"its event binning gives {n_in} inputs per step, its first layer reads {self.n_bands}")
            if not 1 <= self.steps <= MAX_STEPS:
                raise ValueError(f"steps {self.frontend['steps']} outside 1..{MAX_STEPS}")
        for i, name in enumerate(self.classes):
            if not isinstance(name, str) or not 1 <= len(name) <= MAX_CLASS_NAME:
                raise ValueError(f"class {i}: a name is a string of 1..{MAX_CLASS_NAME} characters, got {name!r}")
            if any(not ch.isprintable() for ch in name):
                raise ValueError(f"class {i}: name {name!r} holds control characters (newlines, NUL, ...)")

    # -- hash ------------------------------------------------------------------------------
    def _meta(self) -> dict[str, object]:
        return {
            "format_version": self.format_version,
            "frac_bits": FRAC_BITS,
            "classes": list(self.classes),
            "frontend": self.frontend,
            "readout_exp": int(self.readout_exp),
            "layers": [_layer_meta(L) for L in self.layers],
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """All integer arrays under stable names, each in its format dtype (ARRAY_DTYPES), in the
        order of the hash. Call validate() first: the cast relies on the ranges it checks."""
        a: dict[str, np.ndarray] = {"feat_mu": self.feat_mu}
        for i, L in enumerate(self.layers):
            a[f"l{i}.w"] = L.w
            a[f"l{i}.sh_ff"] = L.sh_ff
            a[f"l{i}.bias"] = L.bias
            if L.recurrent:
                assert L.w_rec is not None and L.sh_rec is not None
                a[f"l{i}.w_rec"] = L.w_rec
                a[f"l{i}.sh_rec"] = L.sh_rec
        a["w_out"] = self.w_out
        a["b_out"] = self.b_out
        return {k: np.ascontiguousarray(v, dtype=_dtype_of(k)) for k, v in a.items()}

    @property
    def hash_hex(self) -> str:
        """SHA-256 over the canonical metadata JSON (format version, contract, front-end
        specification, layers, classes) and every array (name, dtype, shape, bytes)."""
        self.validate()
        h = hashlib.sha256(b"qsnnkit-model\0")
        h.update(json.dumps(self._meta(), sort_keys=True, separators=(",", ":")).encode())
        for name, arr in self.arrays().items():
            h.update(f"\0{name}:{arr.dtype.str}:{arr.shape}\0".encode())
            h.update(arr.tobytes())
        return h.hexdigest()

    @property
    def hash8(self) -> bytes:
        """The 8 bytes the firmware carries and reports (first 8 bytes of the SHA-256)."""
        return bytes.fromhex(self.hash_hex[:16])

    @property
    def short_hash(self) -> str:
        return self.hash_hex[:16]

    # -- files -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        self.validate()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = dict(self._meta())
        meta["provenance"] = self.provenance
        meta["hash"] = self.hash_hex
        blob = np.frombuffer(json.dumps(meta, sort_keys=True, indent=1).encode(), dtype=np.uint8)
        tmp = path.with_name(path.name + ".tmp.npz")
        # Any: numpy's stub would take one of the keys for savez's allow_pickle
        arrays: dict[str, Any] = {"__meta__": blob, **self.arrays()}
        np.savez(tmp, **arrays)
        tmp.replace(path)
        return path


def _refuse(path: Path, why: str) -> ValueError:
    return ValueError(f"{path}: {why}")


def load_converted(path: str | Path) -> ConvertedModel:
    """Read a converted model. Refuses (ValueError naming the file and the problem) a file that
    is not one, another format version, an array missing, extra or of another dtype, values
    outside the contract, a front-end specification other than this checkout's, or contents
    that do not match the stored hash."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"converted model {path} not found (make one with qsnn-convert)")
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":  # np.load would try other formats and blame pickles
            raise _refuse(path, "not a converted qsnnkit model (.npz): no zip archive header")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as e:  # zipfile.BadZipFile, OSError, ValueError, EOFError: all mean "not an npz"
        raise _refuse(path, f"not a converted qsnnkit model (.npz): {e}") from e
    if "__meta__" not in data:
        raise _refuse(path, "no qsnnkit metadata: not a converted model")
    try:
        meta = json.loads(bytes(data.pop("__meta__")).decode())
        version = meta.get("format_version")
    except (ValueError, UnicodeDecodeError, AttributeError) as e:
        raise _refuse(path, f"unreadable metadata: {e}") from e
    if version != FORMAT_VERSION:
        raise _refuse(path, f"model format version {version}; this tool reads format {FORMAT_VERSION} "
                            "(convert the checkpoint again with this qsnn-convert)")
    try:
        layer_meta = [(int(m["w_bits"]), int(m["mem_bits"]), int(m["leak_shift"]), bool(m["recurrent"]))
                      for m in meta["layers"]]
        adaptation = [{"adapt_shift": int(m.get("adapt_shift", 0)), "adapt_beta": int(m.get("adapt_beta", 0))}
                      for m in meta["layers"]]
        geometry = [{k: (str(m[k]) if k == "kind" else int(m[k])) for k in ("kind", "c_in", "f_in", "kt", "kf", "stride")}
                    if m.get("kind", "dense") != "dense" else {} for m in meta["layers"]]
        classes = [str(c) for c in meta["classes"]]
        readout_exp = int(meta["readout_exp"])
        frontend = dict(meta["frontend"])
    except (KeyError, TypeError, ValueError) as e:
        raise _refuse(path, f"metadata lacks a field or has a wrong one: {e!r}") from e
    expected = ["feat_mu"]
    for i, (_, _, _, rec) in enumerate(layer_meta):
        expected += [f"l{i}.w", f"l{i}.sh_ff", f"l{i}.bias"] + ([f"l{i}.w_rec", f"l{i}.sh_rec"] if rec else [])
    expected += ["w_out", "b_out"]
    missing = [k for k in expected if k not in data]
    extra = sorted(set(data) - set(expected))
    if missing or extra:
        raise _refuse(path, f"arrays missing {missing} / unexpected {extra} for its {len(layer_meta)} layers")
    for k in expected:
        if data[k].dtype != _dtype_of(k):
            raise _refuse(path, f"array {k} has dtype {data[k].dtype}, format {FORMAT_VERSION} stores "
                                f"{_dtype_of(k)}")
    layers = [
        IntLayer(w_bits=wb, mem_bits=mb, leak_shift=ls, w=data[f"l{i}.w"], sh_ff=data[f"l{i}.sh_ff"],
                 bias=data[f"l{i}.bias"], w_rec=data.get(f"l{i}.w_rec"), sh_rec=data.get(f"l{i}.sh_rec"),
                 **geometry[i], **adaptation[i])  # type: ignore[arg-type]
        for i, (wb, mb, ls, _) in enumerate(layer_meta)
    ]
    m = ConvertedModel(
        feat_mu=data["feat_mu"], layers=layers, w_out=data["w_out"], b_out=data["b_out"], classes=classes,
        readout_exp=readout_exp, frontend=frontend, format_version=version, provenance=meta.get("provenance", {}),
    )
    try:
        m.validate()
    except ValueError as e:
        raise _refuse(path, str(e)) from e
    if m.hash_hex != meta.get("hash"):
        raise _refuse(path, f"stored hash {meta.get('hash')} does not match its contents ({m.hash_hex}): "
                            "file corrupted or edited")
    if m.input_kind == "events":
        if frontend.get("events_version") != EVENTS_VERSION:
            raise _refuse(path, f"made for event binning version {frontend.get('events_version')}; this checkout "
                                f"bins by version {EVENTS_VERSION}: retrain or use the matching qsnnkit version")
        return m
    current = frontend_specification()
    if frontend != current:
        diff = sorted(k for k in set(frontend) | set(current) if frontend.get(k) != current.get(k))
        raise _refuse(path, f"made for another front end (differs in {', '.join(diff)}): its features are not "
                            "this checkout's; retrain or use the matching qsnnkit version")
    return m
