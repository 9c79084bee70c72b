"""The converted (integer) model: its fields, its hash, and its file format.

A converted model holds only integers plus the settings that define what the device computes
(docs/contract.md). It is saved as an `.npz` of plain integer arrays plus one JSON metadata
string (loaded with allow_pickle=False: no code is ever unpickled). The model hash is the
SHA-256 of a canonical serialization of everything that changes the device's numbers; the
firmware carries its first 8 bytes and reports them over the serial protocol.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1  # QSNN_FORMAT_VERSION in qsnn_contract.h
FRAC_BITS = 8  # QSNN_FRAC_BITS

#: Front-end settings a model was trained with (docs/contract.md section 1). Part of the hash.
FRONTEND_SETTINGS: dict[str, object] = {
    "sample_rate": 16000,
    "frame_len": 480,
    "hop_len": 320,
    "fft_len": 512,
    "n_bands": 40,
    "fmin_hz": 20,
    "fmax_hz": 4000,
    "feature": "clamp(floor(4*log2(E)), 0, 255), E in 2^-16 LSB^2",
    "gain_log2": 16,
    "frames_per_clip": 49,
}


@dataclass
class IntLayer:
    w_bits: int
    mem_bits: int
    leak_shift: int
    w: np.ndarray  # int32 [n_out, n_in]: int8 codes, or -1/+1 for 1 bit
    sh_ff: np.ndarray  # int32 [n_out], -15..30
    bias: np.ndarray  # int32 [n_out], int16 range
    w_rec: np.ndarray | None = None  # int32 [n_out, n_out], -1/+1
    sh_rec: np.ndarray | None = None  # int32 [n_out]

    @property
    def n_in(self) -> int:
        return int(self.w.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.w.shape[0])

    @property
    def recurrent(self) -> bool:
        return self.w_rec is not None


@dataclass
class ConvertedModel:
    feat_mu: np.ndarray  # int32 [n_bands], 0..255
    layers: list[IntLayer]
    w_out: np.ndarray  # int32 [n_classes, n_last], -127..127
    b_out: np.ndarray  # int32 [n_classes]
    classes: list[str]
    readout_exp: int = 0  # float logits = 2^readout_exp * integer outputs (not used by the device)
    frontend: dict[str, object] = field(default_factory=lambda: dict(FRONTEND_SETTINGS))
    format_version: int = FORMAT_VERSION
    provenance: dict[str, object] = field(default_factory=dict)  # not hashed

    @property
    def n_bands(self) -> int:
        return int(self.feat_mu.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.w_out.shape[0])

    # -- validation ------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ValueError if any value breaks the contract's types and ranges."""

        def rng(name: str, a: np.ndarray, lo: int, hi: int) -> None:
            if a.size and (int(a.min()) < lo or int(a.max()) > hi):
                raise ValueError(f"{name}: values {int(a.min())}..{int(a.max())} outside {lo}..{hi}")

        if self.format_version != FORMAT_VERSION:
            raise ValueError(f"format version {self.format_version}, this tool reads {FORMAT_VERSION}")
        rng("feat_mu", self.feat_mu, 0, 255)
        n_prev = self.n_bands
        for i, L in enumerate(self.layers):
            p = f"layer {i}"
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
            rng(f"{p} sh_ff", L.sh_ff, -15, 30)
            rng(f"{p} bias", L.bias, -32768, 32767)
            if L.recurrent:
                assert L.w_rec is not None and L.sh_rec is not None
                if L.w_rec.shape != (L.n_out, L.n_out) or not np.all(np.abs(L.w_rec) == 1):
                    raise ValueError(f"{p}: recurrent weights must be a square matrix of -1/+1")
                rng(f"{p} sh_rec", L.sh_rec, -15, 30)
            n_prev = L.n_out
        if self.w_out.shape[1] != n_prev:
            raise ValueError(f"readout has {self.w_out.shape[1]} inputs, last layer {n_prev} outputs")
        rng("readout weights", self.w_out, -127, 127)
        rng("readout bias", self.b_out, -(2**31), 2**31 - 1)
        if len(self.classes) != self.n_classes:
            raise ValueError(f"{len(self.classes)} class names for {self.n_classes} outputs")

    # -- hash ------------------------------------------------------------------------------
    def _meta(self) -> dict[str, object]:
        return {
            "format_version": self.format_version,
            "frac_bits": FRAC_BITS,
            "classes": list(self.classes),
            "frontend": self.frontend,
            "readout_exp": int(self.readout_exp),
            "layers": [
                {"w_bits": L.w_bits, "mem_bits": L.mem_bits, "leak_shift": L.leak_shift,
                 "n_in": L.n_in, "n_out": L.n_out, "recurrent": L.recurrent}
                for L in self.layers
            ],
        }

    def arrays(self) -> dict[str, np.ndarray]:
        """All integer arrays under stable names, as int32 (the order of the hash)."""
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
        return {k: np.ascontiguousarray(v, dtype="<i4") for k, v in a.items()}

    @property
    def hash_hex(self) -> str:
        """SHA-256 over the canonical metadata JSON and every array (name, shape, int32 LE bytes)."""
        h = hashlib.sha256()
        h.update(json.dumps(self._meta(), sort_keys=True, separators=(",", ":")).encode())
        for name, arr in self.arrays().items():
            h.update(f"{name}:{arr.shape}".encode())
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
        np.savez(tmp, __meta__=blob, **self.arrays())
        tmp.replace(path)
        return path


def load_converted(path: str | Path) -> ConvertedModel:
    """Read a converted model; checks its format version and that its stored hash matches."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"converted model {path} not found (make one with qsnn-convert)")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not a converted qsnnkit model (.npz): {e}") from e
    if "__meta__" not in data:
        raise ValueError(f"{path} has no qsnnkit metadata: not a converted model")
    meta = json.loads(bytes(data["__meta__"]).decode())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: model format {meta.get('format_version')}, this tool reads {FORMAT_VERSION}")
    layers = []
    for i, lm in enumerate(meta["layers"]):
        layers.append(
            IntLayer(
                w_bits=lm["w_bits"], mem_bits=lm["mem_bits"], leak_shift=lm["leak_shift"],
                w=data[f"l{i}.w"], sh_ff=data[f"l{i}.sh_ff"], bias=data[f"l{i}.bias"],
                w_rec=data.get(f"l{i}.w_rec"), sh_rec=data.get(f"l{i}.sh_rec"),
            )
        )
    m = ConvertedModel(
        feat_mu=data["feat_mu"], layers=layers, w_out=data["w_out"], b_out=data["b_out"],
        classes=list(meta["classes"]), readout_exp=int(meta["readout_exp"]), frontend=meta["frontend"],
        format_version=meta["format_version"], provenance=meta.get("provenance", {}),
    )
    m.validate()
    if m.hash_hex != meta.get("hash"):
        raise ValueError(f"{path}: stored hash {meta.get('hash')} does not match its contents ({m.hash_hex}): file corrupted or edited")
    return m
