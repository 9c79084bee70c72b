"""The host side of the protocol under property-based fuzzing (hypothesis): whatever bytes the
line delivers, the host's frame reader and message parsers either give a frame / message or
raise the protocol's own error (ProtocolError), never anything else; what it accepts is exactly
what the device's encoder produces; and every encoding round-trips."""
from __future__ import annotations

import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qsnnkit import protocol as p
from qsnnkit import spec

SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
payloads = st.binary(max_size=spec.MAX_PAYLOAD)


@SETTINGS
@given(st.integers(0, 255), st.integers(0, 255), payloads)
def test_frame_round_trip(type_: int, seq: int, payload: bytes) -> None:
    wire = p.encode_frame(type_, seq, payload)
    assert wire[-1] == 0 and 0 not in wire[:-1] and len(wire) <= spec.MAX_ENCODED + 1
    frames = p.FrameReader().feed(wire)
    assert frames == [p.Frame(type_, seq, payload)]


@SETTINGS
@given(st.binary(max_size=3000))
def test_reader_on_arbitrary_bytes(data: bytes) -> None:
    """Arbitrary line noise: frames or FrameErrors only, and a delivered frame is exactly the
    canonical encoding of what it carries (no bad CRC, length or COBS block slips through)."""
    start = 0
    reader = p.FrameReader()
    for i, b in enumerate(data):
        for item in reader.feed(bytes([b])):
            if isinstance(item, p.Frame):
                assert p.encode_frame(item.type, item.seq, item.payload) == data[start:i + 1]
            else:
                assert isinstance(item, p.FrameError) and isinstance(item.code, int)
        if b == 0:
            start = i + 1


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=64)), min_size=1, max_size=8),
       st.data())
def test_one_corrupted_byte_spoils_at_most_its_frame(frames: list[tuple[int, int, bytes]], data: st.DataObject) -> None:
    """A corrupted byte costs the frame it hits (and the next one too when the byte was that
    frame's 0x00 delimiter: the two merge); every other frame still arrives, intact and in order."""
    wires = [p.encode_frame(*f) for f in frames]
    stream = bytearray(b"".join(wires))
    i = data.draw(st.integers(0, len(stream) - 1))
    was_delimiter = stream[i] == 0
    stream[i] = data.draw(st.integers(0, 255))
    ends = [sum(len(w) for w in wires[:k + 1]) for k in range(len(wires))]
    hit = next(k for k, e in enumerate(ends) if i < e)
    lost = {hit, hit + 1} if was_delimiter else {hit}
    got = iter([x for x in p.FrameReader().feed(bytes(stream)) if isinstance(x, p.Frame)])
    for k, f in enumerate(frames):
        if k not in lost:
            assert p.Frame(*f) in got, f"frame {k} lost (corrupted byte {i} in frame {hit})"  # in order


@SETTINGS
@given(st.binary(max_size=200))
def test_message_parsers_raise_only_protocol_errors(payload: bytes) -> None:
    for parse in (p.Ident.unpack, p.Result.unpack, p.Ack.unpack, p.ErrorMsg.unpack):
        try:
            parse(payload)
        except p.ProtocolError:
            pass


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(1, spec.RESULT_MAX_CLASSES), st.data())
def test_result_round_trip(frames: int, samples: int, nc: int, data: st.DataObject) -> None:
    outs = data.draw(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=nc, max_size=nc))
    r = p.Result(label=data.draw(st.integers(0, nc - 1)), frames=frames, samples=samples,
                 frontend_ticks=data.draw(st.integers(0, 2**64 - 1)), network_ticks=data.draw(st.integers(0, 2**64 - 1)),
                 static_ram_bytes=1, stack_peak_bytes=2, flash_bytes=3,
                 worst_hop_ticks=data.draw(st.integers(0, 2**32 - 1)), outputs=outs)
    assert p.Result.unpack(r.pack()) == r


def test_error_layout_is_the_spec() -> None:
    e = p.ErrorMsg(code=5, about=3, detail=77)
    assert e.pack() == struct.pack(spec.LAYOUTS["ERROR"].fmt, 5, 3, 0, 77)
