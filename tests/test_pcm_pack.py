"""AUDIO_PACKED: the packed PCM format has one definition (qsnnkit/pcm_pack.py) and the
device's decoder (proto_audio_open / proto_audio_next in firmware/src/proto.c, through ctypes)
gives back exactly the samples the host packed, refuses exactly what the host's decoder
refuses, and the emulated board computes the same clip from packed and plain AUDIO."""
from __future__ import annotations

import ctypes as ct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qsnnkit import pcm_pack, spec
from qsnnkit import protocol as P
from qsnnkit.paths import FIRMWARE_DIR

sys.path.insert(0, str(Path(__file__).resolve().parent))
import firmware_support as fw  # noqa: E402

MAX_SAMPLES = spec.MAX_PAYLOAD // 2


@pytest.fixture(scope="module")
def cdec(tmp_path_factory: pytest.TempPathFactory) -> ct.CDLL:
    so = tmp_path_factory.mktemp("pack") / "libproto.so"
    cmd = ["cc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fPIC", "-shared",
           "-I", str(FIRMWARE_DIR / "include"), str(FIRMWARE_DIR / "src" / "proto.c"), "-o", str(so)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lib = ct.CDLL(str(so))
    lib.proto_audio_open.argtypes = [ct.c_void_p, ct.c_uint8, ct.c_char_p, ct.c_uint32, ct.c_uint32]
    lib.proto_audio_open.restype = ct.c_uint32
    lib.proto_audio_next.argtypes = [ct.c_void_p]
    lib.proto_audio_next.restype = ct.c_int16
    return lib


def c_unpack(lib: ct.CDLL, payload: bytes, type_: int = int(P.Msg.AUDIO_PACKED),
             max_samples: int = MAX_SAMPLES) -> np.ndarray | None:
    """The device's samples of a payload, or None when it refuses it."""
    a = ct.create_string_buffer(128)  # larger than proto_audio_t
    buf = ct.create_string_buffer(payload, len(payload))  # the payload stays alive while decoding
    n = lib.proto_audio_open(a, type_, buf, len(payload), max_samples)
    if n == 0:
        return None
    return np.array([lib.proto_audio_next(a) for _ in range(n)], np.int16)


def py_unpack(payload: bytes) -> np.ndarray | None:
    try:
        return pcm_pack.unpack(payload)
    except pcm_pack.PackError:
        return None


def test_real_speech_round_trips_both_sides_and_packs_about_twice(cdec: ct.CDLL, data_root: Path) -> None:
    from qsnnkit.dataset import load_split

    split = load_split(data_root, "test", limit=6)
    raw = packed = 0
    for hop in (np.asarray(p, np.int16)[i:i + 320] for p in split.pcm for i in range(0, len(p), 320)):
        payload = pcm_pack.pack(hop)
        assert np.array_equal(pcm_pack.unpack(payload), hop)
        got = c_unpack(cdec, payload)
        assert got is not None and np.array_equal(got, hop)
        raw += 2 * hop.size
        packed += min(len(payload), 2 * hop.size)
    assert raw / packed > 1.5, (raw, packed)  # speech: about 2x (docs/protocol.md)


@pytest.mark.parametrize("order", range(pcm_pack.MAX_ORDER + 1))
@pytest.mark.parametrize("k", [0, 3, pcm_pack.MAX_K])
def test_every_order_and_k_round_trips_extremes_and_escapes(cdec: ct.CDLL, order: int, k: int) -> None:
    """Full-scale swings (the largest residuals, escapes) and silence, at every order and k."""
    rng = np.random.default_rng(order * 100 + k)
    for x in (np.array([32767, -32768] * 160, np.int16), np.zeros(1, np.int16),
              rng.integers(-32768, 32768, MAX_SAMPLES).astype(np.int16),
              np.array([-32768, -32768, 32767, 32767, -32768], np.int16)):
        payload = pcm_pack.pack(x, order=order, k=k)
        assert np.array_equal(pcm_pack.unpack(payload), x)
        got = c_unpack(cdec, payload)
        assert got is not None and np.array_equal(got, x)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=st.lists(st.integers(-32768, 32767), min_size=1, max_size=MAX_SAMPLES), order=st.integers(0, 2),
       k=st.integers(0, 15), flips=st.lists(st.integers(0, 10_000), max_size=3), cut=st.integers(-3, 2))
def test_damaged_payloads_are_refused_alike_and_valid_ones_decode_alike(cdec: ct.CDLL, x: list[int], order: int,
                                                                        k: int, flips: list[int], cut: int) -> None:
    """Bit flips, truncation and extra bytes: the device accepts a payload exactly when the
    host's decoder does, and then gives the same samples (one encoding per content)."""
    payload = bytearray(pcm_pack.pack(np.array(x, np.int16), order=order, k=k))
    for f in flips:
        payload[f % len(payload)] ^= 1 << (f % 8)
    if cut < 0:
        payload = payload[:cut]
    else:
        payload += bytes(cut)
    want = py_unpack(bytes(payload))
    got = c_unpack(cdec, bytes(payload))
    assert (want is None) == (got is None), (bytes(payload).hex(), want, got)
    if want is not None:
        assert got is not None and np.array_equal(want, got)
        assert pcm_pack.pack(want, order=payload[2], k=payload[3]) == bytes(payload)


def test_head_limits_are_refused(cdec: ct.CDLL) -> None:
    x = np.arange(10, dtype=np.int16)
    good = pcm_pack.pack(x, order=1, k=2)
    assert c_unpack(cdec, good, max_samples=9) is None  # more samples than the device takes
    assert c_unpack(cdec, good, max_samples=10) is not None
    for i, v in ((2, 3), (3, 16)):  # order, k out of range
        bad = bytearray(good)
        bad[i] = v
        assert c_unpack(cdec, bytes(bad)) is None and py_unpack(bytes(bad)) is None
    assert c_unpack(cdec, good[:3]) is None
    zero = bytearray(good)
    zero[0:2] = b"\x00\x00"
    assert c_unpack(cdec, bytes(zero)) is None and py_unpack(bytes(zero)) is None
    with pytest.raises(ValueError):
        pcm_pack.pack(np.zeros(MAX_SAMPLES + 1, np.int16))
    with pytest.raises(ValueError):
        pcm_pack.pack(np.zeros(4, np.int32))


def test_plain_audio_through_the_same_reader(cdec: ct.CDLL) -> None:
    x = np.array([1, -2, 32767, -32768], np.int16)
    got = c_unpack(cdec, P.audio(x), type_=int(P.Msg.AUDIO))
    assert got is not None and np.array_equal(got, x)
    assert c_unpack(cdec, P.audio(x)[:-1], type_=int(P.Msg.AUDIO)) is None  # odd length
    assert c_unpack(cdec, P.audio(x), type_=int(P.Msg.AUDIO), max_samples=3) is None


def test_the_board_computes_the_same_clip_from_packed_and_plain_audio(data_root: Path) -> None:
    """Three test clips on the emulated M4, packed and plain: the same RESULT (label, outputs,
    frames, instruction counts), and a damaged packed payload (intact frame) is refused."""
    from qsnnkit.dataset import load_split
    from qsnnkit.host.device import Device
    from qsnnkit.host.qemu import QemuBoard

    split = load_split(data_root, "test", limit=3)
    with QemuBoard(fw.built_firmware(fw.model_dir_for_tests())) as qb:
        assert qb.transport is not None  # started by the with
        dev = Device(qb.transport)
        dev.connect()
        for pcm in split.pcm:
            dev.pack = True
            packed = dev.run_clip(np.asarray(pcm, np.int16))
            dev.pack = False
            plain = dev.run_clip(np.asarray(pcm, np.int16))
            assert packed == plain
        dev.request(P.Msg.CLIP_BEGIN, P.clip_begin(320))
        bad = bytearray(pcm_pack.pack(np.asarray(split.pcm[0][:320], np.int16)))
        bad += b"\x00"  # a whole byte after the last code
        with pytest.raises(P.DeviceError, match="BAD_PAYLOAD"):
            dev.request(P.Msg.AUDIO_PACKED, bytes(bad))
        dev.bye(0)
