"""The serial protocol: one definition on two sides (qsnnkit/protocol.py and
firmware/src/proto.c, the latter called through ctypes), the same test vectors on both,
and the real device on QEMU answering bad frames with error frames and resyncing."""
from __future__ import annotations

import ctypes as ct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qsnnkit import protocol as P
from qsnnkit import spec
from qsnnkit.host.transport import Transport
from qsnnkit.paths import FIRMWARE_DIR

sys.path.insert(0, str(Path(__file__).resolve().parent))
import firmware_support as fw  # noqa: E402

CRC_VECTOR = (b"123456789", 0x29B1)  # CRC-16/CCITT-FALSE check value
# Wire bytes pinned in docs/protocol.md: HELLO seq 1 (body 01 01 01 00 01, CRC 0xEAF8) and
# AUDIO seq 2 carrying the samples 0x0100 and 0x7FFF (bytes 00 01 FF 7F).
WIRE_VECTORS = [
    ((P.Msg.HELLO, 1, b"\x01"), bytes.fromhex("04 01 01 01 04 01 f8 ea 00")),
    ((P.Msg.AUDIO, 2, bytes.fromhex("00 01 ff 7f")), bytes.fromhex("04 03 02 04 01 06 01 ff 7f be 24 00")),
]


class CFrame(ct.Structure):
    _fields_ = [("type", ct.c_uint8), ("seq", ct.c_uint8), ("len", ct.c_uint16), ("payload", ct.POINTER(ct.c_uint8))]


@pytest.fixture(scope="module")
def cproto(tmp_path_factory: pytest.TempPathFactory) -> ct.CDLL:
    """firmware/src/proto.c built for the host with the project's strict flags."""
    so = tmp_path_factory.mktemp("proto") / "libproto.so"
    src = FIRMWARE_DIR / "src" / "proto.c"
    cmd = ["cc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fPIC", "-shared",
           "-I", str(FIRMWARE_DIR / "include"), str(src), "-o", str(so)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lib = ct.CDLL(str(so))
    lib.proto_crc16.argtypes = [ct.c_char_p, ct.c_size_t]
    lib.proto_crc16.restype = ct.c_uint16
    lib.proto_encode.argtypes = [ct.c_uint8, ct.c_uint8, ct.c_char_p, ct.c_uint16, ct.c_char_p]
    lib.proto_encode.restype = ct.c_size_t
    lib.proto_rx_init.argtypes = [ct.c_void_p]
    lib.proto_rx_byte.argtypes = [ct.c_void_p, ct.c_uint8, ct.POINTER(CFrame)]
    lib.proto_rx_byte.restype = ct.c_int
    return lib


def c_encode(lib: ct.CDLL, type_: int, seq: int, payload: bytes) -> bytes:
    buf = ct.create_string_buffer(P.MAX_ENCODED + 1)
    n = lib.proto_encode(type_, seq, payload, len(payload), buf)
    return buf.raw[:n]


def c_receive(lib: ct.CDLL, wire: bytes) -> list[tuple[int, int, int, bytes]]:
    """Feed bytes to the C receiver: list of (result, type, seq, payload) for every non-MORE result."""
    rx = ct.create_string_buffer(4096)  # larger than proto_rx_t
    lib.proto_rx_init(rx)
    out = []
    f = CFrame()
    for b in wire:
        r = lib.proto_rx_byte(rx, b, ct.byref(f))
        if r == -1:
            out.append((r, f.type, f.seq, ct.string_at(f.payload, f.len)))
        elif r != 0:
            out.append((r, f.type, f.seq, b""))
    return out


def test_crc_vector_both_sides(cproto: ct.CDLL) -> None:
    data, crc = CRC_VECTOR
    assert P.crc16(data) == crc
    assert cproto.proto_crc16(data, len(data)) == crc


@pytest.mark.parametrize("msg,wire", WIRE_VECTORS)
def test_wire_vectors_both_sides(cproto: ct.CDLL, msg: tuple[int, int, bytes], wire: bytes) -> None:
    assert P.encode_frame(*msg) == wire
    assert c_encode(cproto, *msg) == wire
    assert c_receive(cproto, wire) == [(-1, *msg)]


def test_cobs_edges() -> None:
    for data in [b"", b"\x00", b"\x00\x00", b"\x11\x22\x00\x33", bytes(range(1, 255)), bytes(range(1, 256)) * 3,
                 b"\x00" * 300, bytes(range(256)) * 4]:
        enc = P.cobs_encode(data)
        assert 0 not in enc
        assert P.cobs_decode(enc) == data
        assert len(enc) <= len(data) + len(data) // 254 + 1


@pytest.mark.parametrize("n", [0, 1, 2, 249, 250, 251, 252, 253, 254, 255, 508, 640, P.MAX_PAYLOAD])
def test_round_trip_and_identical_bytes(cproto: ct.CDLL, n: int) -> None:
    rng = np.random.default_rng(n)
    payload = rng.integers(0, 256, n).astype(np.uint8).tobytes()
    if n > 2:
        payload = payload[:1] + b"\x00" + payload[2:]  # zeros must survive too
    py = P.encode_frame(P.Msg.AUDIO, 200, payload)
    c = c_encode(cproto, P.Msg.AUDIO, 200, payload)
    assert py == c, "host and device encoders must produce the same bytes"
    assert py.count(0) == 1 and py[-1] == 0 and len(py) <= P.MAX_ENCODED + 1
    assert P.FrameReader().feed(py) == [P.Frame(P.Msg.AUDIO, 200, payload)]
    assert c_receive(cproto, py) == [(-1, P.Msg.AUDIO, 200, payload)]


def test_payload_too_long_is_refused() -> None:
    with pytest.raises(ValueError):
        P.encode_frame(P.Msg.AUDIO, 1, bytes(P.MAX_PAYLOAD + 1))


def _corrupt(frame: bytes, at: int) -> bytes:
    b = bytearray(frame)
    b[at] ^= 0x10 if b[at] != 0x10 else 0x20  # never turns a byte into 0x00
    return bytes(b)


def test_corrupted_frame_is_an_error_on_both_sides_and_both_resync(cproto: ct.CDLL) -> None:
    good = P.encode_frame(P.Msg.HELLO, 7, P.hello())
    payload_byte = 5  # inside the COBS-encoded body: header/payload, not a code byte
    bad = _corrupt(P.encode_frame(P.Msg.AUDIO, 9, bytes(range(1, 41))), payload_byte)
    stream = bad + good
    py = P.FrameReader().feed(stream)
    assert isinstance(py[0], P.FrameError) and py[0].code == P.Err.BAD_CRC, py
    assert py[1] == P.Frame(P.Msg.HELLO, 7, P.hello())
    c = c_receive(cproto, stream)
    assert c[0][0] == P.Err.BAD_CRC and c[1] == (-1, P.Msg.HELLO, 7, P.hello()), c


def test_length_field_mismatch_and_framing_errors(cproto: ct.CDLL) -> None:
    import struct

    head = struct.pack("<BBH", P.Msg.AUDIO, 3, 5) + b"\x01\x02"  # says 5 bytes, carries 2
    wire = P.cobs_encode(head + struct.pack("<H", P.crc16(head))) + b"\x00"
    assert c_receive(cproto, wire)[0][0] == P.Err.BAD_LENGTH
    assert P.FrameReader().feed(wire)[0].code == P.Err.BAD_LENGTH  # type: ignore[union-attr]
    broken = b"\x09\x01\x02\x00"  # COBS code points past the end of the frame
    assert c_receive(cproto, broken)[0][0] == P.Err.FRAMING
    assert P.FrameReader().feed(broken)[0].code == P.Err.FRAMING  # type: ignore[union-attr]
    short = b"\x03\x01\x02\x00"  # decodes to 2 bytes: no room for header and CRC
    assert c_receive(cproto, short)[0][0] == P.Err.BAD_LENGTH


def test_too_long_frame_then_resync(cproto: ct.CDLL) -> None:
    junk = bytes([0x41]) * (P.MAX_ENCODED + 10)
    good = P.encode_frame(P.Msg.CLIP_END, 1)
    c = c_receive(cproto, junk + b"\x00" + good)
    assert [r[0] for r in c] == [P.Err.TOO_LONG, -1], c
    py = P.FrameReader().feed(junk + b"\x00" + good)
    assert isinstance(py[0], P.FrameError) and py[0].code == P.Err.TOO_LONG
    assert isinstance(py[1], P.Frame) and py[1].type == P.Msg.CLIP_END


def test_message_pack_unpack() -> None:
    ident = P.Ident(1, "instructions", 1, 0, 0, 1, "0123456789abcdef", 12, 40, 320, 1024, 264, 6520, 12696, 8192,
                    "events", 162, "qsnnkit", "0.1.0", "board")
    assert P.Ident.unpack(ident.pack()) == ident
    bad_kind = bytearray(ident.pack())
    bad_kind[spec.LAYOUTS["IDENT"].offset("input_kind")] = 7
    with pytest.raises(P.ProtocolError, match="unknown input kind 7"):
        P.Ident.unpack(bytes(bad_kind))
    res = P.Result(3, 49, 16000, 2**33 + 5, 17, 1, 2, 3, 2**32 - 1, [-(2**31), 2**31 - 1, 0])
    assert P.Result.unpack(res.pack()) == res
    with pytest.raises(P.ProtocolError):
        P.Result.unpack(res.pack()[:-1])
    err = P.ErrorMsg(P.Err.BAD_CRC, P.Msg.AUDIO, 99)
    assert P.ErrorMsg.unpack(err.pack()) == err and "BAD_CRC" in err.describe()


def test_events_payloads_carry_every_event_exactly() -> None:
    from qsnnkit.events import as_events

    rng = np.random.default_rng(3)
    n = 1000
    # increasing times with gaps beyond a u16, out-of-order events, and a 32-bit wrap
    dt = rng.choice([0, 1, 7, 300, 70_000, -2_000], size=n, p=[0.3, 0.3, 0.2, 0.15, 0.03, 0.02])
    t = (2**32 - 200_000 + np.cumsum(dt)) & 0xFFFFFFFF
    ev = as_events(rng.integers(0, 1024, n), rng.integers(0, 1024, n), rng.integers(0, 2, n), t)
    payloads = P.events_payloads(ev)
    assert all(len(p) <= spec.MAX_PAYLOAD for p in payloads)
    back = [e for p in payloads for e in P.decode_events(p)]
    assert back == list(zip(ev["x"].tolist(), ev["y"].tolist(), ev["p"].tolist(), ev["t"].tolist()))
    full = P.events_payloads(as_events(np.zeros(400), np.zeros(400), np.zeros(400), np.arange(400)))
    assert [len(p) for p in full] == [4 + 6 * 170] * 2 + [4 + 6 * 60]  # 170 per frame fill the payload
    assert P.events_payloads(as_events(*(np.zeros(0),) * 4)) == []
    with pytest.raises(ValueError, match="polarity 0 or 1"):
        P.events_payloads(as_events(np.array([1]), np.array([1]), np.array([2]), np.array([5])))
    with pytest.raises(ValueError, match="x <= 32767"):
        # a plain mapping of fields: EVENT_DTYPE's x could not hold 40000
        P.events_payloads({"x": np.array([40000]), "y": np.array([1]), "p": np.array([0]),  # type: ignore[arg-type]
                           "t": np.array([5])})
    with pytest.raises(P.ProtocolError, match="whole 6-byte records"):
        P.decode_events(b"\x00\x00\x00\x00\x01")


# --- the real device (QEMU) ------------------------------------------------------------------

@pytest.fixture(scope="module")
def qemu_elf() -> Path:
    return fw.built_firmware(fw.model_dir_for_tests())


def _exchange(t: Transport, wire: bytes, n: int = 1, timeout: float = 10.0) -> list:
    """Send bytes, collect n frames (or errors) from the device."""
    import time

    t.write(wire)
    reader = P.FrameReader()
    got: list = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += reader.feed(t.read(deadline - time.monotonic()))
    assert len(got) >= n, f"device sent {got}, expected {n} frames"
    return got


def _error(frame: P.Frame) -> P.ErrorMsg:
    assert frame.type == P.Msg.ERROR, frame
    return P.ErrorMsg.unpack(frame.payload)


def test_device_answers_bad_frames_with_errors_and_resyncs(qemu_elf: Path) -> None:
    from qsnnkit.host.device import Device
    from qsnnkit.host.qemu import QemuBoard

    with QemuBoard(qemu_elf) as qb:
        t = qb.transport
        assert t is not None  # started by the with
        dev = Device(t)
        ident = dev.connect()
        assert ident.protocol_version == P.PROTOCOL_VERSION and ident.model_status == 0
        assert ident.counter_unit == "instructions" and ident.rx_window >= 1
        # bad CRC: an error frame, and the next good frame is understood
        bad = _corrupt(P.encode_frame(P.Msg.HELLO, 11, P.hello()), 3)
        e = _error(_exchange(t, bad)[0])
        assert e.code == P.Err.BAD_CRC
        f = _exchange(t, P.encode_frame(P.Msg.HELLO, 12, P.hello()))[0]
        assert f.type == P.Msg.IDENT and f.seq == 12
        # unknown type, wrong state, wrong payload, wrong version, over-long frame
        assert _error(_exchange(t, P.encode_frame(0x42, 13))[0]).code == P.Err.UNKNOWN_TYPE
        e = _error(_exchange(t, P.encode_frame(P.Msg.AUDIO, 14, P.audio(np.zeros(320, np.int16))))[0])
        assert (e.code, e.about) == (P.Err.BAD_STATE, P.Msg.AUDIO)
        assert _error(_exchange(t, P.encode_frame(P.Msg.CLIP_BEGIN, 15, b"\x01"))[0]).code == P.Err.BAD_PAYLOAD
        e = _error(_exchange(t, P.encode_frame(P.Msg.HELLO, 16, P.hello(P.PROTOCOL_VERSION + 1)))[0])
        assert (e.code, e.detail) == (P.Err.VERSION, P.PROTOCOL_VERSION)
        assert _error(_exchange(t, bytes([0x41]) * (P.MAX_ENCODED + 5))[0]).code == P.Err.TOO_LONG
        f = _exchange(t, b"\x00" + P.encode_frame(P.Msg.HELLO, 17, P.hello()))[0]
        assert f.type == P.Msg.IDENT and f.seq == 17
        # a clip with fewer samples than announced is refused at CLIP_END
        dev.request(P.Msg.CLIP_BEGIN, P.clip_begin(640))
        dev.request(P.Msg.AUDIO, P.audio(np.ones(320, np.int16)))
        with pytest.raises(P.DeviceError) as ei:
            dev.request(P.Msg.CLIP_END, b"", expect=P.Msg.RESULT)
        assert ei.value.err.code == P.Err.SAMPLE_COUNT
        # ... and a full clip still works after all that, then BYE ends QEMU with its code
        res = dev.run_clip(np.zeros(16000, np.int16))
        assert res.frames == 49 and res.samples == 16000 and len(res.outputs) == ident.n_classes
        dev.bye(5)
        assert qb.wait(10) == 5
