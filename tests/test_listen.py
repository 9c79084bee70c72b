"""Live keyword spotting (host/listen.py, `qsnn-listen`) on the emulated board: a WAV file at
another rate and channel count streams through the device's stream mode; its scores after
every hop and its detections equal the integer reference's (qsnnkit/stream.py). Also the
file reading and resampling, and the stream states the device refuses."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from qsnnkit import protocol as P
from qsnnkit import spec
from qsnnkit import stream as S
from qsnnkit.audio import read_audio, to_16k
from qsnnkit.model import load_converted
from qsnnkit.paths import REPO_ROOT

sys.path.insert(0, str(Path(__file__).resolve().parent))
import firmware_support as fw  # noqa: E402


def _write_wav(path: Path, x: np.ndarray, rate: int, width: int = 2) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(x.shape[1] if x.ndim == 2 else 1)
        w.setsampwidth(width)
        w.setframerate(rate)
        if width == 1:
            w.writeframes((np.clip(np.round(x / 256), -128, 127) + 128).astype(np.uint8).tobytes())
        else:
            w.writeframes(np.asarray(x).astype("<i2").tobytes())


def _stream(seconds: float = 8.0) -> np.ndarray:
    from qsnnkit.data import list_split, read_wav

    items = list_split(None, "test")
    rng = np.random.default_rng(5)
    parts, n = [], 0
    while n < seconds * spec.SAMPLE_RATE:
        parts.append(rng.normal(0, 200, 8000).astype(np.int16))
        parts.append(read_wav(items[int(rng.integers(len(items)))][0]))
        n += parts[-1].size + 8000
    return np.concatenate(parts)[: int(seconds * spec.SAMPLE_RATE)]


def test_read_audio_any_rate_and_channels(tmp_path: Path) -> None:
    t = np.arange(48000) / 48000
    tone = np.round(8000 * np.sin(2 * np.pi * 440 * t))
    _write_wav(tmp_path / "st.wav", np.stack([tone, -tone * 0.5], 1), 48000)
    x, rate = read_audio(tmp_path / "st.wav")
    assert rate == 48000 and x.size == 48000 and np.allclose(x, tone * 0.25, atol=0.5)  # the channels' mean
    y = to_16k(x, rate)
    assert y.dtype == np.int16 and y.size == 16000
    ref = np.round(2000 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000))
    assert np.abs(y[200:-200].astype(float) - ref[200:-200]).max() < 60  # a 440 Hz tone survives, in phase
    _write_wav(tmp_path / "u8.wav", tone[:8000, None], 8000, width=1)
    x8, r8 = read_audio(tmp_path / "u8.wav")
    assert r8 == 8000 and to_16k(x8, r8).size == 16000
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00")
    with pytest.raises(ValueError, match="not a readable PCM WAV"):
        read_audio(tmp_path / "bad.wav")


def test_listen_on_the_emulated_board_equals_the_reference(tmp_path: Path) -> None:
    model_dir = fw.model_dir_for_tests()
    elf = fw.built_firmware(model_dir)
    model = load_converted(model_dir / "model.npz")
    pcm16 = _stream()
    # the user's file: 22.05 kHz stereo; the device gets what to_16k makes of it
    t_out = np.arange(int(pcm16.size * 22050 / 16000)) * (16000 / 22050)
    x = np.interp(t_out, np.arange(pcm16.size), pcm16.astype(float))
    wav = tmp_path / "speech.wav"
    _write_wav(wav, np.stack([x, x], 1).round(), 22050)
    xr, rate = read_audio(wav)
    cfg = S.DetectConfig(400, 50, S.keyword_mask(model.classes), 4)
    ref_scores, ref_dets = S.run_stream(model, to_16k(xr, rate), cfg)
    assert ref_dets, "the test stream should produce detections at this threshold"
    out = tmp_path / "listen.json"
    res = subprocess.run([sys.executable, str(REPO_ROOT / "host" / "listen.py"), str(wav), "--elf", str(elf),
                          "--model", str(model_dir / "model.npz"), "--threshold", "400", "--shift", "4",
                          "--json", str(out)],
                         capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(out.read_text())
    assert [(d["frame"], d["label"], d["margin"]) for d in got["detections"]] == \
        [(d.frame, d.label, d.margin) for d in ref_dets]
    assert got["frames"] == len(ref_scores) == got["frames_checked"] and got["reference_equal"] is True
    assert got["lost"] == 0
    for d in ref_dets[:3]:  # printed as they come, with the stream time
        assert f"{d.time_s:9.2f} s  {model.classes[d.label]}" in res.stdout


def test_device_refuses_bad_stream_requests() -> None:
    from qsnnkit.host.device import ClipLost, Device
    from qsnnkit.host.qemu import QemuBoard

    model_dir = fw.model_dir_for_tests()
    with QemuBoard(fw.built_firmware(model_dir)) as qb:
        assert qb.transport is not None  # started by the with
        dev = Device(qb.transport)
        dev.connect()
        with pytest.raises(P.DeviceError, match="BAD_PAYLOAD"):
            dev.stream_begin(0, 50, 1, 4)  # threshold 0
        with pytest.raises(P.DeviceError, match="BAD_PAYLOAD"):
            dev.stream_begin(10, 50, 1, spec.DETECT_MAX_SHIFT + 1)
        with pytest.raises(ClipLost):  # no stream: BAD_STATE
            dev.stream_end()
        dev.stream_begin(10, 50, 1, 4)
        assert dev.stream_audio(np.zeros(320, np.int16)).frames == 0  # the first hop only primes the history
        st = dev.stream_audio(np.zeros(320, np.int16))
        assert st.frames == 1 and len(st.scores) == 12 and st.detections == []
        # an audio firmware takes at most one hop per AUDIO (IDENT: max payload 640 bytes)
        assert dev.ident is not None and dev.ident.max_payload == 2 * spec.HOP_LEN
        with pytest.raises(ValueError, match="carries 1..320 samples on this device"):
            dev.stream_audio(np.zeros(321, np.int16))
        with pytest.raises(ClipLost):  # a clip inside a stream ends the stream
            dev.request(P.Msg.CLIP_BEGIN, P.clip_begin(16000))
        with pytest.raises(ClipLost):
            dev.stream_audio(np.zeros(320, np.int16))  # no clip, no stream: BAD_STATE
        dev.bye(0)
        assert qb.wait(10) == 0


def test_stream_status_packs_and_unpacks() -> None:
    st = P.StreamStatus(frames=7, ticks=123456, lost=0, scores=list(range(-6, 6)), detections=[(5, 3, 900), (6, 1, 2)])
    raw = st.pack()
    assert len(raw) == spec.LAYOUTS["STREAM"].size + 4 * 12 + spec.STREAM_DETECTION_BYTES * 2
    assert P.StreamStatus.unpack(raw) == st
    with pytest.raises(P.ProtocolError, match="STREAM of"):
        P.StreamStatus.unpack(raw[:-1])


def test_listen_defaults_are_the_measured_operating_point_of_its_model() -> None:
    """qsnn-listen's threshold and smoothing are the ones benchmarks/kws_stream.py chose on the
    validation stream for the model qsnn-listen runs by default (the stream-tuned one): a
    refreshed model without a rerun of the benchmark fails here instead of shipping its
    predecessor's operating point."""
    from qsnnkit.host import listen

    rec = json.loads((REPO_ROOT / "docs" / "results" / "kws_stream.json").read_text())
    model = load_converted(listen.DEFAULT_MODEL)
    assert rec["model_hash"] == model.short_hash
    assert (listen.DEFAULT_THRESHOLD, listen.DEFAULT_SHIFT) == (rec["listen_default"]["threshold"],
                                                                rec["listen_default"]["smooth_shift"])
    assert listen.DEFAULT_REFRACTORY == rec["refractory_frames"]
