"""Write the committed seed corpus of the fuzz harnesses (tests/fuzz/corpus/<harness>/).

Deterministic, from the protocol's own encoder and synthetic audio (a tone, a chirp, the int16
extremes, silence), so the seeds need no dataset: `python tests/fuzz/make_corpus.py`.
The record format of the session seeds is described in fuzz_session.c.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from qsnnkit import protocol, spec

HERE = Path(__file__).parent
REQUESTS = [name for name, (mid, _) in spec.MESSAGES.items() if mid < 0x80]


def tone(n: int, f0: float = 440.0, f1: float | None = None, amp: float = 8000.0) -> np.ndarray:
    t = np.arange(n) / spec.SAMPLE_RATE
    f = f0 if f1 is None else f0 + (f1 - f0) * t / t[-1] / 2
    return np.round(amp * np.sin(2 * np.pi * f * t)).astype(np.int16)


def frame_record(name: str | int, seq: int, payload: bytes) -> bytes:
    """op 0: a well-formed frame of a request type (by name) or a raw type (int, high bit set)."""
    t = REQUESTS.index(name) if isinstance(name, str) else name
    return bytes([0, t, seq]) + struct.pack("<H", len(payload)) + payload


def session_seeds() -> dict[str, bytes]:
    audio = tone(640, 300, 3000)
    clip = (bytes([3, 20])  # CLIP_BEGIN 20 * 32 = 640 samples
            + frame_record("AUDIO", 2, protocol.audio(audio[:320]))
            + frame_record("AUDIO", 3, protocol.audio(audio[320:]))
            + frame_record("CLIP_END", 4, b""))
    return {
        "hello": frame_record("HELLO", 1, protocol.hello()),
        "hello_wrong_version": frame_record("HELLO", 1, bytes([7])),
        "clip": frame_record("HELLO", 1, protocol.hello()) + clip + frame_record("BYE", 5, protocol.bye(0)),
        "clip_short": bytes([3, 20]) + frame_record("AUDIO", 2, protocol.audio(audio[:100]))
        + frame_record("CLIP_END", 3, b""),
        "audio_outside_clip": frame_record("AUDIO", 9, protocol.audio(audio[:8])),
        "unknown_type": frame_record(0x80 | 0x33, 1, b"xyz"),
        "garbage_then_frame": bytes([1, 6]) + b"\x05\x01\x02\x00\xff\x00" + frame_record("HELLO", 1, protocol.hello()),
        "overflow_then_clip": bytes([2]) + bytes([1, 1, 0]) + clip,
        "clip_begin_twice": bytes([3, 20, 3, 21]),
        # every request of a clip sent twice (op 0x82: the last frame again), as a host
        # re-sends when an answer is lost: answered from the cache, the clip still adds up
        "clip_resent": bytes([3, 20, 0x82]) + frame_record("AUDIO", 2, protocol.audio(audio[:320])) + bytes([0x82])
        + frame_record("AUDIO", 3, protocol.audio(audio[320:])) + bytes([0x82])
        + frame_record("CLIP_END", 4, b"") + bytes([0x82]),
    }


def session_events_seeds() -> dict[str, bytes]:
    """For the firmware built with an event model: samples of events (EVENTS_BEGIN, EVENTS with
    6-byte records, CLIP_END), late and out-of-sensor events, a re-sent EVENTS, audio refused."""
    from qsnnkit.events import as_events

    rng = np.random.default_rng(1)
    n = 40
    t = np.sort(rng.integers(0, 330_000, n))
    t[5] = t[4] - 3000  # out of order
    ev = as_events(rng.integers(0, 36, n), rng.integers(0, 36, n), rng.integers(0, 2, n), t)  # some outside 34x34
    chunks = protocol.events_payloads(ev, 16)
    begin = frame_record("EVENTS_BEGIN", 2, protocol.events_begin(n, 0))
    body = b"".join(frame_record("EVENTS", 3 + k, c) for k, c in enumerate(chunks))
    end = frame_record("CLIP_END", 9, b"")
    hello = frame_record("HELLO", 1, protocol.hello())
    return {
        "hello": hello,
        "sample": hello + begin + body + end + frame_record("BYE", 10, protocol.bye(0)),
        "sample_resent": begin + bytes([0x82]) + b"".join(frame_record("EVENTS", 3 + k, c) + bytes([0x82])
                                                          for k, c in enumerate(chunks)) + end + bytes([0x82]),
        "short_sample": frame_record("EVENTS_BEGIN", 2, protocol.events_begin(n + 5, 0)) + body + end,
        "events_outside_sample": frame_record("EVENTS", 4, chunks[0]),
        "audio_refused": bytes([3, 20]) + frame_record("AUDIO", 2, protocol.audio(tone(64))),
        "op3_then_events": bytes([3, 4]) + frame_record("EVENTS", 3, chunks[0]) + end,
    }


def frame_seeds() -> dict[str, bytes]:
    h = protocol.encode_frame(spec.MESSAGES["HELLO"][0], 1, protocol.hello())
    a = protocol.encode_frame(spec.MESSAGES["AUDIO"][0], 2, protocol.audio(tone(160)))
    e = protocol.encode_frame(spec.MESSAGES["CLIP_END"][0], 3)
    big = protocol.encode_frame(spec.MESSAGES["AUDIO"][0], 4, protocol.audio(tone(spec.MAX_PAYLOAD // 2)))
    bad_crc = bytearray(h)
    bad_crc[2] ^= 0x40
    return {"hello": h, "audio": a, "clip_end": e, "max_payload": big, "three": h + a + e,
            "bad_crc": bytes(bad_crc), "empty_frames": b"\x00\x00" + e, "no_delimiter": b"\x01" * 1100 + b"\x00" + h}


def frontend_seeds() -> dict[str, bytes]:
    hop = spec.HOP_LEN
    ext = np.tile(np.array([-32768, 32767], np.int16), 2 * hop // 2 * 2)[: 3 * hop]
    return {"tone": tone(4 * hop).astype("<i2").tobytes(), "chirp": tone(6 * hop, 100, 7000, 20000).astype("<i2").tobytes(),
            "extremes": ext.astype("<i2").tobytes(), "silence": bytes(2 * 3 * hop),
            "partial_hop": tone(hop + 100).astype("<i2").tobytes()}


def events_seeds() -> dict[str, bytes]:
    def head(w: int, h: int, s: int, cap: int, steps: int, window: int, t0: int) -> bytes:
        return struct.pack("<HHBBBBII", w, h, s, cap, steps, 0, window, t0)

    def evs(items: list[tuple[int, int, int, int]]) -> bytes:
        return b"".join(struct.pack("<HHBI", x, y, p, t & 0xFFFFFFFF) for x, y, p, t in items)

    rng = np.random.default_rng(0)
    saccade = sorted((int(rng.integers(0, 34)), int(rng.integers(0, 34)), int(rng.integers(0, 2)),
                      int(rng.integers(0, 30000))) for _ in range(120))
    saccade = [(x, y, p, t) for x, y, p, t in sorted(saccade, key=lambda e: e[3])]
    return {
        "nmnist_like": head(34, 34, 2, 3, 3, 10000, 0) + evs(saccade),
        "binary_full_res": head(34, 34, 0, 1, 4, 5000, 0) + evs(saccade),
        "wrap": head(34, 34, 1, 255, 6, 1000, 0xFFFFF000) + evs([(1, 1, 0, 0xFFFFF100), (2, 2, 1, 0xFFFFFFF0),
                                                                  (3, 3, 0, 0x10), (4, 4, 1, 0x900)]),
        "out_of_range_and_late": head(34, 34, 0, 2, 3, 100, 50) + evs([(40, 1, 0, 60), (1, 40, 0, 61), (1, 1, 2, 62),
                                                                      (5, 5, 1, 10), (6, 6, 0, 400), (7, 7, 0, 160)]),
        "bad_config": head(0, 34, 9, 0, 3, 0, 0) + evs(saccade[:4]),
        "huge_sensor": head(1024, 1024, 4, 1, 2, 10, 0) + evs(saccade[:4]),
        "wide_sensor": head(80, 70, 3, 2, 3, 1000, 0) + evs([(79, 69, 1, 5), (300, 2, 0, 6), (2, 1000, 0, 7),
                                                              (65535, 65535, 1, 8), (40, 40, 0, 2500)]),
    }


def main() -> None:
    for harness, seeds in (("session", session_seeds()), ("session_events", session_events_seeds()),
                           ("frame", frame_seeds()), ("frontend", frontend_seeds()), ("events", events_seeds())):
        d = HERE / "corpus" / harness
        d.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (d / name).write_bytes(data)
        print(f"{harness}: {len(seeds)} seeds in {d}")


if __name__ == "__main__":
    main()
