"""The qsnnkit serial protocol: the host side (docs/protocol.md).

The device side is firmware/src/proto.c and main.c; tests check both against the same
wire vectors. Version, message ids, error codes and every payload layout come from
qsnnkit.spec, the one definition the device's proto_spec.h is generated from.

A frame on the wire is ``COBS(body) + b"\\x00"`` with

    body = type u8 | seq u8 | len u16 LE | payload[len] | crc u16 LE

and ``crc`` the CRC-16/CCITT-FALSE of type..payload (``crc16(b"123456789") == 0x29B1``).
COBS removes every 0x00 from the body, so a 0x00 always ends a frame: after a lost or
corrupted byte the receiver drops one frame and is back in step at the next 0x00.

Every host request gets exactly one response frame with the same ``seq``: IDENT, ACK,
RESULT, or ERROR (errors are never silent). The device's IDENT says how many requests
may be outstanding (its receive window); the host never exceeds it, so the device's
receive ring buffer cannot overflow.
"""
from __future__ import annotations

import struct
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from qsnnkit import spec

if TYPE_CHECKING:  # numpy is imported where samples are encoded: the protocol alone stays light
    import numpy as np
    import numpy.typing as npt

PROTOCOL_VERSION = spec.PROTOCOL_VERSION
MAX_PAYLOAD = spec.MAX_PAYLOAD
HEADER_BYTES = spec.HEADER_BYTES
CRC_BYTES = spec.CRC_BYTES
MAX_BODY = spec.MAX_BODY
#: Longest encoded frame without its 0x00 delimiter (COBS: one code byte per 254 bytes, plus one).
MAX_ENCODED = spec.MAX_ENCODED
#: Samples per AUDIO message the device accepts (payload bytes / 2).
MAX_AUDIO_SAMPLES = MAX_PAYLOAD // 2

#: Message ids and error codes: their one definition is qsnnkit.spec (each member's ``meaning`` too).
Msg = spec.Msg
Err = spec.Err

#: IDENT input_kind code -> name ("audio" | "events").
INPUT_KINDS = {code: name.lower() for name, (code, _) in spec.INPUT_KINDS.items()}
#: Events per EVENTS message the device accepts.
EVENTS_MAX_PER_FRAME = spec.EVENTS_MAX_PER_FRAME
#: IDENT counter_unit code -> name ("instructions" | "cycles").
COUNTER_UNITS = {code: name.lower() for name, (code, _) in spec.COUNTER_UNITS.items()}


class ProtocolError(RuntimeError):
    """A malformed frame, or a response that breaks the protocol."""


# -- CRC and COBS ---------------------------------------------------------------------------

def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ spec.CRC_POLY) if c & 0x8000 else (c << 1)
        table.append(c & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor."""
    crc = spec.CRC_INIT
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[((crc >> 8) ^ b) & 0xFF]
    return crc


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the result has no 0x00 byte."""
    out = bytearray([0])
    code_at, code = 0, 1
    for b in data:
        if b == 0:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
        else:
            out.append(b)
            code += 1
            if code == 0xFF:
                out[code_at] = code
                code_at, code = len(out), 1
                out.append(0)
    out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        i += 1
        if code == 0 or i + code - 1 > n:
            raise ProtocolError(f"COBS: bad code byte {code} at offset {i - 1} of {n}")
        out += data[i:i + code - 1]
        i += code - 1
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)


# -- frames -----------------------------------------------------------------------------------

class FrameError(ProtocolError):
    """A received frame that had to be dropped; ``code`` is the error the device would report."""

    def __init__(self, code: Err, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Frame:
    type: int
    seq: int
    payload: bytes


def encode_frame(type_: int, seq: int, payload: bytes = b"") -> bytes:
    """One frame as sent on the wire, delimiter included."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    head = struct.pack("<BBH", type_ & 0xFF, seq & 0xFF, len(payload)) + payload
    return cobs_encode(head + struct.pack("<H", crc16(head))) + b"\x00"


def decode_body(encoded: bytes) -> Frame:
    """Decode one frame given without its delimiter; FrameError (with its Err code) when it is bad."""
    try:
        body = cobs_decode(encoded)
    except ProtocolError as e:
        raise FrameError(Err.FRAMING, str(e)) from e
    if len(body) < HEADER_BYTES + CRC_BYTES:
        raise FrameError(Err.BAD_LENGTH, f"frame body of {len(body)} bytes is shorter than a header and CRC")
    (crc,) = struct.unpack_from("<H", body, len(body) - 2)
    if crc16(body[:-2]) != crc:
        raise FrameError(Err.BAD_CRC, f"CRC {crc:#06x} does not match {crc16(body[:-2]):#06x}")
    type_, seq, length = struct.unpack_from("<BBH", body, 0)
    if length != len(body) - HEADER_BYTES - CRC_BYTES:
        raise FrameError(Err.BAD_LENGTH, f"length field {length}, frame carries {len(body) - 6} payload bytes")
    return Frame(type_, seq, bytes(body[HEADER_BYTES:-CRC_BYTES]))


class FrameReader:
    """Incremental decoder: feed bytes, get frames (and FrameErrors for dropped frames)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        out: list[Frame | FrameError] = []
        for b in data:
            if b == 0:
                buf, skipping = bytes(self._buf), self._skipping
                self._buf.clear()
                self._skipping = False
                if skipping or not buf:
                    continue
                try:
                    out.append(decode_body(buf))
                except FrameError as e:
                    out.append(e)
            elif not self._skipping:
                if len(self._buf) >= MAX_ENCODED:
                    self._skipping = True
                    self._buf.clear()
                    out.append(FrameError(Err.TOO_LONG, f"no frame delimiter within {MAX_ENCODED} bytes"))
                else:
                    self._buf.append(b)
        return out


# -- messages ---------------------------------------------------------------------------------

def hello(version: int = PROTOCOL_VERSION) -> bytes:
    return struct.pack(spec.LAYOUTS["HELLO"].fmt, version)


def clip_begin(n_samples: int) -> bytes:
    return struct.pack(spec.LAYOUTS["CLIP_BEGIN"].fmt, n_samples)


def audio(samples: npt.ArrayLike) -> bytes:
    import numpy as np

    a = np.asarray(samples)
    if a.dtype != np.int16:
        raise ValueError(f"AUDIO carries int16 samples, got {a.dtype}")
    if not 1 <= a.size <= MAX_AUDIO_SAMPLES:
        raise ValueError(f"AUDIO carries 1..{MAX_AUDIO_SAMPLES} samples, got {a.size}")
    return a.astype("<i2").tobytes()


def audio_request(samples: npt.ArrayLike, pack: bool = True) -> tuple[Msg, bytes]:
    """The request that carries these samples in the fewest bytes: AUDIO_PACKED
    (qsnnkit/pcm_pack.py, lossless) when it is smaller, else plain AUDIO (``pack=False``:
    always AUDIO). The device computes the same from either."""
    plain = audio(samples)
    if pack:
        from qsnnkit import pcm_pack

        packed = pcm_pack.pack(samples)
        if len(packed) < len(plain):
            return Msg.AUDIO_PACKED, packed
    return Msg.AUDIO, plain


def events_begin(n_events: int, t0: int) -> bytes:
    """EVENTS_BEGIN payload: an event sample of n_events events whose first step begins at t0."""
    return struct.pack(spec.LAYOUTS["EVENTS_BEGIN"].fmt, n_events, t0 & 0xFFFFFFFF)


_EVENTS_HEAD = struct.Struct(spec.LAYOUTS["EVENTS"].fmt)
_EVENT_REC = struct.Struct("<" + "".join(spec.FIELD_TYPES[t] for _, t, _ in spec.EVENT_RECORD_FIELDS))
assert _EVENT_REC.size == spec.EVENT_RECORD_BYTES


def events_payloads(events: np.ndarray, max_per_frame: int = EVENTS_MAX_PER_FRAME) -> list[bytes]:
    """The EVENTS payloads of one sample's events (a structured array with fields x, y, p, t,
    in arrival order), in order: each carries up to ``max_per_frame`` events as
    ``u32 t_base`` then 6-byte records ``u16 dt, u16 x | p << 15, u16 y`` with
    ``t = (t_base + dt) mod 2^32``. A payload ends early where its events would span more
    than 65,535 us; t_base is the earliest of its timestamps (differences read modulo 2^32
    as signed, like the binner's), so out-of-order and wrapped timestamps travel unchanged.
    ValueError for an event the records cannot carry (x > 32767, y > 65535, p > 1)."""
    import numpy as np

    if not 1 <= max_per_frame <= EVENTS_MAX_PER_FRAME:
        raise ValueError(f"max_per_frame must be 1..{EVENTS_MAX_PER_FRAME}, got {max_per_frame}")
    x = np.asarray(events["x"], dtype=np.int64)
    y = np.asarray(events["y"], dtype=np.int64)
    p = np.asarray(events["p"], dtype=np.int64)
    t = np.asarray(events["t"], dtype=np.int64) & 0xFFFFFFFF
    bad = (x < 0) | (x > spec.EVENT_MAX_X) | (y < 0) | (y > 0xFFFF) | (p < 0) | (p > 1)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"event {i} (x {x[i]}, y {y[i]}, p {p[i]}) cannot be sent: EVENTS carries "
                         f"x <= {spec.EVENT_MAX_X}, y <= 65535 and polarity 0 or 1")
    out: list[bytes] = []
    i, n = 0, len(t)
    while i < n:
        first = int(t[i])
        lo = hi = 0  # span of the chunk's timestamps, as signed differences from its first
        j = i
        while j < n and j - i < max_per_frame:
            d = (int(t[j]) - first) & 0xFFFFFFFF
            d = d - (1 << 32) if d >= 1 << 31 else d
            if max(hi, d) - min(lo, d) > spec.EVENT_MAX_DT:
                break
            lo, hi = min(lo, d), max(hi, d)
            j += 1
        base = (first + lo) & 0xFFFFFFFF
        dt = (t[i:j] - base) & 0xFFFFFFFF
        recs = np.empty((j - i, 3), dtype="<u2")
        recs[:, 0] = dt
        recs[:, 1] = x[i:j] | (p[i:j] << 15)
        recs[:, 2] = y[i:j]
        out.append(_EVENTS_HEAD.pack(base) + recs.tobytes())
        i = j
    return out


def decode_events(payload: bytes) -> list[tuple[int, int, int, int]]:
    """(x, y, p, t) of each event in an EVENTS payload (what the device reads)."""
    if len(payload) < _EVENTS_HEAD.size or (len(payload) - _EVENTS_HEAD.size) % _EVENT_REC.size:
        raise ProtocolError(f"EVENTS of {len(payload)} bytes is not a u32 and whole 6-byte records")
    (base,) = _EVENTS_HEAD.unpack_from(payload, 0)
    out = []
    for off in range(_EVENTS_HEAD.size, len(payload), _EVENT_REC.size):
        dt, xp, y = _EVENT_REC.unpack_from(payload, off)
        out.append((xp & 0x7FFF, y, xp >> 15, (base + dt) & 0xFFFFFFFF))
    return out


def bye(code: int = 0) -> bytes:
    return struct.pack(spec.LAYOUTS["BYE"].fmt, code)


_IDENT_HEAD = struct.Struct(spec.LAYOUTS["IDENT"].fmt)
_IDENT_NAMES = spec.LAYOUTS["IDENT"].names


@dataclass(frozen=True)
class Ident:
    protocol_version: int
    counter_unit: str  # "instructions" | "cycles"
    rx_window: int  # requests the host may have outstanding
    model_status: int  # qsnn_model_check() result, 0 = OK
    counter_hz: int  # core clock for cycles, 0 for instructions
    format_version: int
    model_hash: str  # 16 hex digits
    n_classes: int
    n_bands: int
    hop_len: int
    max_payload: int
    arena_bytes: int
    static_ram_bytes: int
    flash_bytes: int
    stack_bytes: int
    input_kind: str  # "audio" | "events": what the compiled-in model reads
    n_inputs: int  # inputs per network step
    firmware: str
    firmware_version: str
    board: str

    def pack(self) -> bytes:
        v = asdict(self)
        v["counter_unit"] = {name: code for code, name in COUNTER_UNITS.items()}[self.counter_unit]
        v["model_hash"] = bytes.fromhex(self.model_hash)
        v["input_kind"] = {name: code for code, name in INPUT_KINDS.items()}[self.input_kind]
        v["reserved"] = 0
        out = _IDENT_HEAD.pack(*(v[name] for name in _IDENT_NAMES))
        for s in (self.firmware, self.firmware_version, self.board):
            b = s.encode()
            out += bytes([len(b)]) + b
        return out

    @staticmethod
    def unpack(p: bytes) -> "Ident":
        if len(p) < _IDENT_HEAD.size:
            raise ProtocolError(f"IDENT of {len(p)} bytes, expected at least {_IDENT_HEAD.size}")
        f = _IDENT_HEAD.unpack_from(p, 0)
        strs: list[str] = []
        i = _IDENT_HEAD.size
        for _ in range(3):
            if i >= len(p) or i + 1 + p[i] > len(p):
                raise ProtocolError("IDENT: truncated string field")
            strs.append(p[i + 1:i + 1 + p[i]].decode("ascii", "replace"))
            i += 1 + p[i]
        v = dict(zip(_IDENT_NAMES, f))
        if v["counter_unit"] not in COUNTER_UNITS:
            raise ProtocolError(f"IDENT: unknown counter unit {v['counter_unit']}")
        v["counter_unit"] = COUNTER_UNITS[v["counter_unit"]]
        if v["input_kind"] not in INPUT_KINDS:
            raise ProtocolError(f"IDENT: unknown input kind {v['input_kind']}")
        v["input_kind"] = INPUT_KINDS[v["input_kind"]]
        del v["reserved"]
        v["model_hash"] = v["model_hash"].hex()
        return Ident(**v, firmware=strs[0], firmware_version=strs[1], board=strs[2])


_RESULT_HEAD = struct.Struct(spec.LAYOUTS["RESULT"].fmt)
_RESULT_NAMES = spec.LAYOUTS["RESULT"].names


@dataclass(frozen=True)
class Result:
    label: int  # argmax of the outputs, ties to the lowest index
    frames: int
    samples: int
    frontend_ticks: int
    network_ticks: int
    static_ram_bytes: int
    stack_peak_bytes: int
    flash_bytes: int
    worst_hop_ticks: int  # the slowest hop: front end + the network step it fed
    outputs: list[int] = field(default_factory=list)  # int32 per class

    def pack(self) -> bytes:
        v = asdict(self)
        v["n_classes"] = len(self.outputs)
        return _RESULT_HEAD.pack(*(v[name] for name in _RESULT_NAMES)) + struct.pack(
            f"<{len(self.outputs)}i", *self.outputs)

    @staticmethod
    def unpack(p: bytes) -> "Result":
        if len(p) < _RESULT_HEAD.size:
            raise ProtocolError(f"RESULT of {len(p)} bytes, expected at least {_RESULT_HEAD.size}")
        v = dict(zip(_RESULT_NAMES, _RESULT_HEAD.unpack_from(p, 0)))
        nc = v.pop("n_classes")
        if len(p) != _RESULT_HEAD.size + 4 * nc:
            raise ProtocolError(f"RESULT of {len(p)} bytes for {nc} classes")
        return Result(**v, outputs=list(struct.unpack_from(f"<{nc}i", p, _RESULT_HEAD.size)))


_STREAM_BEGIN = struct.Struct(spec.LAYOUTS["STREAM_BEGIN"].fmt)


def stream_begin(threshold: int, refractory: int, class_mask: int, smooth_shift: int) -> bytes:
    """STREAM_BEGIN payload: the detector's configuration (docs/contract.md section 11)."""
    return _STREAM_BEGIN.pack(threshold, refractory, class_mask, smooth_shift)


_STREAM_HEAD = struct.Struct(spec.LAYOUTS["STREAM"].fmt)
_STREAM_NAMES = spec.LAYOUTS["STREAM"].names
_DETECTION = struct.Struct("<" + "".join(spec.FIELD_TYPES[t] for _, t, _ in spec.STREAM_DETECTION_FIELDS))
assert _DETECTION.size == spec.STREAM_DETECTION_BYTES


@dataclass(frozen=True)
class StreamStatus:
    """The answer to AUDIO in a stream: scores after its last frame, detections it produced."""

    frames: int  # frames since the stream began
    ticks: int  # counter ticks spent on this AUDIO
    lost: int  # detections dropped since the stream began
    scores: list[int] = field(default_factory=list)  # S_k, int32 per class
    detections: list[tuple[int, int, int]] = field(default_factory=list)  # (frame, class, margin)

    def pack(self) -> bytes:
        head = _STREAM_HEAD.pack(self.frames, self.ticks, self.lost, len(self.scores), len(self.detections), 0)
        return head + struct.pack(f"<{len(self.scores)}i", *self.scores) + b"".join(
            _DETECTION.pack(f, k, 0, m) for f, k, m in self.detections)

    @staticmethod
    def unpack(p: bytes) -> "StreamStatus":
        if len(p) < _STREAM_HEAD.size:
            raise ProtocolError(f"STREAM of {len(p)} bytes, expected at least {_STREAM_HEAD.size}")
        v = dict(zip(_STREAM_NAMES, _STREAM_HEAD.unpack_from(p, 0)))
        nc, nd = v["n_classes"], v["n_detections"]
        if len(p) != _STREAM_HEAD.size + 4 * nc + _DETECTION.size * nd:
            raise ProtocolError(f"STREAM of {len(p)} bytes for {nc} classes and {nd} detections")
        scores = list(struct.unpack_from(f"<{nc}i", p, _STREAM_HEAD.size))
        off = _STREAM_HEAD.size + 4 * nc
        dets = []
        for i in range(nd):
            f, k, _, m = _DETECTION.unpack_from(p, off + i * _DETECTION.size)
            dets.append((f, k, m))
        return StreamStatus(v["frames"], v["ticks"], v["lost"], scores, dets)


_ACK = struct.Struct(spec.LAYOUTS["ACK"].fmt)


@dataclass(frozen=True)
class Ack:
    about: int  # type of the acknowledged request
    credits: int

    def pack(self) -> bytes:
        return _ACK.pack(self.about, self.credits)

    @staticmethod
    def unpack(p: bytes) -> "Ack":
        if len(p) != _ACK.size:
            raise ProtocolError(f"ACK of {len(p)} bytes, expected {_ACK.size}")
        return Ack(*_ACK.unpack(p))


_ERROR = struct.Struct(spec.LAYOUTS["ERROR"].fmt)


@dataclass(frozen=True)
class ErrorMsg:
    code: int
    about: int  # type of the offending frame (0 when it could not be read)
    detail: int

    def pack(self) -> bytes:
        return _ERROR.pack(self.code, self.about, 0, self.detail)

    @staticmethod
    def unpack(p: bytes) -> "ErrorMsg":
        if len(p) != _ERROR.size:
            raise ProtocolError(f"ERROR of {len(p)} bytes, expected {_ERROR.size}")
        code, about, _, detail = _ERROR.unpack(p)
        return ErrorMsg(code, about, detail)

    def describe(self) -> str:
        try:
            name = Err(self.code).name
        except ValueError:
            name = f"code {self.code}"
        try:
            about = Msg(self.about).name
        except ValueError:
            about = f"type {self.about:#04x}"
        return f"{name} (about {about}, detail {self.detail})"


class DeviceError(RuntimeError):
    """The device answered with an ERROR frame."""

    def __init__(self, err: ErrorMsg):
        super().__init__(f"device reported {err.describe()}")
        self.err = err
