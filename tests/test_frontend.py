"""The integer audio front end: C (ctypes) against the independent numpy mirror, streaming,
generated tables, edge cases, and strict cross-compilation for the three MCU targets."""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from conftest import write_wav

from qsnnkit import frontend, frontend_tables
from qsnnkit.paths import QSNN_INCLUDE_DIR, QSNN_SRC_DIR, REPO_ROOT

sys.path.insert(0, str(Path(__file__).resolve().parent))
import frontend_mirror as mirror  # noqa: E402

FE_C = QSNN_SRC_DIR / "qsnn_frontend.c"
CLASSES = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_")


# --- data --------------------------------------------------------------------------------

def _data_root() -> Path:
    return Path(os.environ.get("QSNN_DATA_ROOT", REPO_ROOT.parent / "shared" / "data"))


def _local_list_test(root: Path) -> list[tuple[Path, int]]:
    """Test split by the speaker rule of the data README (used if qsnnkit.data is absent)."""
    sc = root / "speech_commands_v2_test12" if (root / "speech_commands_v2_test12").is_dir() else root
    out = []
    for label, name in enumerate(CLASSES):
        for f in sorted((sc / name).glob("*.wav")):
            if name == "_silence_":
                spk = f.name
            elif name == "_unknown_":
                spk = f.name.split("_nohash_")[0].split("_", 1)[1]
            else:
                spk = f.name.split("_nohash_")[0]
            if int(hashlib.sha1(spk.encode()).hexdigest(), 16) % 10 == 1:
                out.append((f, label))
    return out


def _test_split() -> list[tuple[Path, int]]:
    root = _data_root()
    if not root.is_dir():
        pytest.skip(f"dataset root {root} not found (set QSNN_DATA_ROOT)")
    try:
        from qsnnkit.data import list_split
    except ImportError:
        return _local_list_test(root)
    return list_split(root, "test")


def _read(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000), path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)


@pytest.fixture(scope="module")
def test_clips() -> list[tuple[str, np.ndarray]]:
    items = _test_split()
    assert len(items) == 372, f"test split has {len(items)} clips, expected 372"
    return [(f"{p.parent.name}/{p.name}", frontend.fit_clip(_read(p))) for p, _ in items]


def _first_mismatch(c: np.ndarray, m: np.ndarray) -> str:
    t, b = np.argwhere(c != m)[0]
    return f"frame {t}, band {b}: C {c[t, b]} vs mirror {m[t, b]} ({int((c != m).sum())} values differ)"


def _assert_c_equals_mirror(name: str, pcm: np.ndarray) -> np.ndarray:
    c = frontend.clip_features(pcm)
    m = mirror.clip_features(frontend.fit_clip(pcm))
    assert c.shape == m.shape == (49, 40)
    if not np.array_equal(c, m):
        pytest.fail(f"{name}: {_first_mismatch(c, m)}")
    return c


# --- (a) C == mirror on every test clip ---------------------------------------------------

def test_c_equals_mirror_on_every_test_clip(test_clips: list[tuple[str, np.ndarray]]) -> None:
    for name, pcm in test_clips:
        _assert_c_equals_mirror(name, pcm)


def test_features_track_a_float_log_mel(test_clips: list[tuple[str, np.ndarray]]) -> None:
    """The integer pipeline is a faithful log-mel: within one step (0.75 dB) of the floor of a
    float64 log-mel of the same frames wherever that is >= 1, correlation > 0.999 per clip."""
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(480) / 480)
    mel = mirror.mel_matrix() / 32768.0
    for name, pcm in test_clips[::31]:
        fr = mirror.frames_of(pcm).astype(np.float64)
        e = (np.abs(np.fft.rfft(fr * win, 512)) ** 2) @ mel.T * 2.0**mirror.GAIN_LOG2
        ref = np.floor(4 * np.log2(np.maximum(e, 1e-300)))
        got = frontend.clip_features(pcm).astype(np.float64)
        live = ref >= 1
        worst = np.abs(got - ref)[live].max(initial=0)
        assert worst <= 1, f"{name}: integer feature {worst} steps from the float log-mel"
        assert np.corrcoef(got[live], ref[live])[0, 1] > 0.999, name


# --- (b) streaming -------------------------------------------------------------------------

def test_streaming_equals_whole_clip_and_reset(test_clips: list[tuple[str, np.ndarray]]) -> None:
    fe = frontend.StreamingFrontEnd()
    assert not fe.primed and not fe.history.any()
    for (name, a), (_, b) in zip(test_clips[:12:2], test_clips[1:12:2]):
        fe.reset()
        assert not fe.primed and not fe.history.any()
        assert fe.push(a[:320]) is None, "the first hop after a reset must not yield a frame"
        assert fe.primed
        rows = [fe.push(a[i:i + 320]) for i in range(320, 16000, 320)]
        assert all(r is not None for r in rows)
        stream = np.stack(rows)
        whole = frontend.clip_features(a)
        if not np.array_equal(stream, whole):
            pytest.fail(f"{name}: streaming vs whole clip, {_first_mismatch(stream, whole)}")
        assert np.array_equal(fe.history, a[16000 - 160:])
        # without a reset, the next clip's first hop continues the old history ...
        cont = fe.push(b[:320])
        assert cont is not None
        assert np.array_equal(cont, frontend.frame_features(np.concatenate([a[-160:], b[:320]])))
        # ... and after a reset the state is that of a fresh front end
        fe.reset()
        assert np.array_equal(fe.push_many(b), frontend.clip_features(b))


def test_frame_api_matches_clip_frames(test_clips: list[tuple[str, np.ndarray]]) -> None:
    name, pcm = test_clips[0]
    feats = frontend.clip_features(pcm)
    for t in (0, 17, 48):
        assert np.array_equal(frontend.frame_features(pcm[320 * t + 160:320 * t + 640]), feats[t]), (name, t)


def test_batch_helper(test_clips: list[tuple[str, np.ndarray]]) -> None:
    pcms = np.stack([p for _, p in test_clips[:5]])
    batch = frontend.batch_features(pcms)
    assert batch.shape == (5, 49, 40) and batch.dtype == np.uint8
    for i in range(5):
        assert np.array_equal(batch[i], frontend.clip_features(pcms[i]))
    assert frontend.batch_features([]).shape == (0, 49, 40)


# --- (c) generated tables -------------------------------------------------------------------

def test_committed_tables_header_is_current() -> None:
    assert frontend_tables.HEADER_PATH.read_text() == frontend_tables.render(), (
        "qsnn_frontend_tables.h is stale: run python -m qsnnkit.generated --write")
    assert frontend_tables.main(["--check"]) == 0


def test_mirror_recomputes_the_same_tables() -> None:
    t = frontend_tables.build()
    w = mirror.window()
    assert list(w[:241]) == t.win and np.array_equal(w[241:], w[1:240][::-1])
    c, s = mirror.twiddles(np.arange(256))
    assert list(s[:129]) == t.sin_q and list(c[:129]) == t.sin_q[::-1]
    assert list(mirror.bitrev8()) == t.bitrev
    dense = np.zeros((40, 257), dtype=np.int64)
    for q, (b, wt) in enumerate(zip(t.mel_band, t.mel_w)):
        k = t.mel_k0 + q
        if b >= 0:
            dense[b, k] = 32768 - wt
        if b + 1 < 40:
            dense[b + 1, k] = wt
    assert np.array_equal(dense, mirror.mel_matrix())
    assert (dense > 0).any(axis=1).all(), "every mel band gets at least one bin"
    for j, q in enumerate(t.log_q62, start=1):
        assert q**4 <= 2 ** (248 + j) < (q + 1) ** 4


# --- (d) edge cases ---------------------------------------------------------------------------

def test_all_zero_clip() -> None:
    f = _assert_c_equals_mirror("zeros", np.zeros(16000, dtype=np.int16))
    assert not f.any()


def _square(freq_hz: float, lo: int = -32768, hi: int = 32767, n: int = 16000) -> np.ndarray:
    t = np.arange(n)
    return np.where(np.sin(2 * np.pi * freq_hz * t / 16000 + 0.1) >= 0, hi, lo).astype(np.int16)


@pytest.mark.parametrize("freq", [31.25, 440.0, 1000.0, 3999.0, 7000.0])
def test_full_scale_square_waves(freq: float) -> None:
    f = _assert_c_equals_mirror(f"square {freq} Hz", _square(freq))
    assert f.max() <= 255 and f.max() >= 200, f"full scale should land near the top, max {f.max()}"


def test_clipping_extremes() -> None:
    _assert_c_equals_mirror("constant -32768", np.full(16000, -32768, dtype=np.int16))
    _assert_c_equals_mirror("constant 32767", np.full(16000, 32767, dtype=np.int16))
    rng = np.random.default_rng(1)
    noise = rng.choice(np.array([-32768, 32767], dtype=np.int16), 16000)
    f = _assert_c_equals_mirror("full-scale binary noise", noise)
    assert f.min() > 150
    # near the largest windowed sum: |x * w| flat wherever w >= 1/8, sign pattern at 1 kHz
    w = mirror.window().astype(np.int64)
    for freq in (0.0, 1000.0, 3000.0, 8000.0):  # the mirror asserts |2 X[k]| < 2^31 on all bins
        sign = np.where(np.cos(2 * np.pi * freq * np.arange(480) / 16000) >= 0, 1, -1)
        frame = (sign * np.minimum(32767, (32767 * 4096) // np.maximum(w, 1))).astype(np.int16)
        c, m = frontend.frame_features(frame), mirror.frame_features(frame[None, :])[0]
        assert np.array_equal(c, m), f"flat frame {freq} Hz: C {c} vs mirror {m}"
    hard = np.clip(_square(500).astype(np.int32) * 4, -32768, 32767).astype(np.int16)
    _assert_c_equals_mirror("clipped square", hard)


def test_quiet_signals_keep_their_shape_and_absolute_scale(test_clips: list[tuple[str, np.ndarray]]) -> None:
    """Block floating point: multiplying the input by 8 adds exactly 24 (three octaves of power)
    to every feature that is not clamped, so a quiet clip is computed with the same precision
    as a loud one and still follows the float log-mel closely."""
    words = [nc for nc in test_clips if not nc[0].startswith("_silence_")]
    name, pcm = min(words, key=lambda nc: int(np.abs(nc[1].astype(np.int32)).max()))
    peak = int(np.abs(pcm.astype(np.int32)).max())
    assert peak < 2**12, f"{name}: quietest word clip has peak {peak}"
    f1 = _assert_c_equals_mirror(name, pcm)
    f2 = frontend.clip_features((pcm.astype(np.int32) * 8).astype(np.int16))
    live = (f1 > 0) & (f2 < 255)
    assert live.mean() > 0.9
    assert np.array_equal(f2[live].astype(int), f1[live].astype(int) + 24)
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(480) / 480)
    e = (np.abs(np.fft.rfft(mirror.frames_of(pcm) * win, 512)) ** 2) @ (mirror.mel_matrix().T / 32768.0)
    ref = np.floor(4 * np.log2(np.maximum(e * 2.0**mirror.GAIN_LOG2, 1e-300)))
    ok = ref >= 1
    assert np.abs(f1[ok] - ref[ok]).max() <= 1 and np.corrcoef(f1[ok], ref[ok])[0, 1] > 0.999, name
    # the smallest signal there is: random +-1 LSB noise still gives a full, flat spectrum
    one_lsb = np.random.default_rng(7).integers(-1, 2, 16000).astype(np.int16)
    f = _assert_c_equals_mirror("1-LSB noise", one_lsb)
    assert f.min() > 40, f.min()


@pytest.mark.parametrize("n", [0, 1, 319, 320, 481, 8000, 15999])
def test_short_inputs_are_zero_padded(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.integers(-3000, 3000, n).astype(np.int16)
    padded = np.zeros(16000, dtype=np.int16)
    padded[:n] = x
    assert np.array_equal(frontend.fit_clip(x), padded)
    assert np.array_equal(frontend.clip_features(x), _assert_c_equals_mirror(f"short {n}", padded))


@pytest.mark.parametrize("n", [16001, 16320, 48000])
def test_long_inputs_are_cut_to_one_second(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.integers(-3000, 3000, n).astype(np.int16)
    assert np.array_equal(frontend.clip_features(x), frontend.clip_features(x[:16000]))
    # the device API itself processes every whole hop it is given
    stream = frontend.StreamingFrontEnd().push_many(x[: n - n % 320])
    assert stream.shape == (n // 320 - 1, 40)
    assert np.array_equal(stream, mirror.clip_features(x[: n - n % 320]))


def test_wrong_inputs_are_rejected() -> None:
    with pytest.raises(TypeError, match="int16"):
        frontend.clip_features(np.zeros(16000, dtype=np.float32))
    with pytest.raises(TypeError, match="int16"):
        frontend.clip_features(np.zeros(16000, dtype=np.int32))
    with pytest.raises(TypeError, match="int16"):
        frontend.clip_features([0] * 16000)
    with pytest.raises(ValueError, match="one-dimensional"):
        frontend.clip_features(np.zeros((2, 16000), dtype=np.int16))
    with pytest.raises(ValueError, match="n_clips, n_samples"):
        frontend.batch_features(np.zeros(16000, dtype=np.int16))
    fe = frontend.StreamingFrontEnd()
    with pytest.raises(ValueError, match="320"):
        fe.push(np.zeros(321, dtype=np.int16))
    with pytest.raises(ValueError, match="hops"):
        fe.push_many(np.zeros(500, dtype=np.int16))
    with pytest.raises(ValueError, match="480"):
        frontend.frame_features(np.zeros(479, dtype=np.int16))


def test_clip_api_counts_whole_hops_only() -> None:
    """qsnn_fe_clip never pads: 1 s gives 49 frames, a trailing partial hop is ignored,
    and max_frames is respected."""
    lib = frontend._lib()
    x = np.ones(16000 + 319, dtype=np.int16)
    out = np.full((60, 40), 7, dtype=np.uint8)
    u8 = ctypes.POINTER(ctypes.c_uint8)
    i16 = ctypes.POINTER(ctypes.c_int16)
    assert lib.qsnn_fe_clip(x.ctypes.data_as(i16), x.size, out.ctypes.data_as(u8), 60) == 49
    assert (out[49:] == 7).all()
    assert lib.qsnn_fe_clip(x.ctypes.data_as(i16), x.size, out.ctypes.data_as(u8), 10) == 10
    assert lib.qsnn_fe_clip(x.ctypes.data_as(i16), 319, out.ctypes.data_as(u8), 60) == 0
    assert lib.qsnn_fe_clip(x.ctypes.data_as(i16), 640, out.ctypes.data_as(u8), 60) == 1


def test_state_struct_layout() -> None:
    """The binding's FeState must match qsnn_fe_state_t: int16 hist[160] + uint8 primed."""
    assert ctypes.sizeof(frontend.FeState) == 322
    st = frontend.StreamingFrontEnd()
    hop = np.arange(320, dtype=np.int16)
    st.push(hop)
    assert st.primed and np.array_equal(st.history, hop[160:])


# --- (e) strict cross-compilation --------------------------------------------------------------

TARGETS = {
    "cortex-m4": (["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb"], "arm-none-eabi-nm"),
    "rv32imc": (["riscv64-unknown-elf-gcc", "-march=rv32imc", "-mabi=ilp32"], "riscv64-unknown-elf-nm"),
    "xtensa-lx106": (["xtensa-lx106-elf-gcc", "-mtext-section-literals"], "xtensa-lx106-elf-nm"),
}
# 64-bit multiply helpers the target's libgcc/ROM must supply; anything else is a failure
ALLOWED_HELPERS = {"cortex-m4": set(), "rv32imc": set(), "xtensa-lx106": {"__muldi3"}}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_cross_compiles_with_werror(target: str, tmp_path: Path) -> None:
    cc, nm = TARGETS[target]
    if shutil.which(cc[0]) is None:
        pytest.skip(f"{cc[0]} not installed (apt-get install the {target} cross compiler)")
    obj = tmp_path / "fe.o"
    cmd = [*cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-ffreestanding", "-O2",
           "-I", str(QSNN_INCLUDE_DIR), "-c", str(FE_C), "-o", str(obj)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, " ".join(cmd) + "\n" + res.stderr
    assert res.stderr == "", res.stderr
    if shutil.which(nm) is None:
        pytest.skip(f"{nm} not installed")
    undef = set(subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True, check=True).stdout.split())
    undef.discard("U")
    assert undef <= ALLOWED_HELPERS[target], f"{target}: unexpected external symbols {undef - ALLOWED_HELPERS[target]}"
    assert not any("div" in s or "mod" in s for s in undef), f"{target}: division helper used: {undef}"


# --- the feature cache (qsnnkit.dataset) --------------------------------------------------------

def test_wav_features_are_cached_and_keyed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qsnnkit import dataset

    monkeypatch.setenv("QSNN_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(3)
    clips = [rng.integers(-2000, 2000, n).astype(np.int16) for n in (16000, 12000, 17000)]
    paths = [write_wav(tmp_path / f"c{i}.wav", c) for i, c in enumerate(clips)]
    f = dataset.wav_features(paths)
    assert f.shape == (3, 49, 40) and f.dtype == np.uint8
    for i, c in enumerate(clips):
        assert np.array_equal(f[i], frontend.clip_features(c))
    pcm = np.stack([frontend.fit_clip(c) for c in clips])
    cache = dataset.feature_cache_path(pcm)
    assert cache.exists()
    with np.load(cache, allow_pickle=False) as z:
        assert str(z["source_hash"]) == dataset.source_hash()
        z_feats = z["features"]
    # a valid cache is what is returned: poison it and see the poisoned values come back
    poisoned = z_feats.copy()
    poisoned[0, 0, 0] ^= 1
    np.savez(cache, features=poisoned, source_hash=np.array(dataset.source_hash()))
    assert dataset.wav_features(paths)[0, 0, 0] == poisoned[0, 0, 0]
    assert dataset.features(pcm, cache=False)[0, 0, 0] == z_feats[0, 0, 0]
    # a changed file changes the PCM, hence the key: the features are recomputed
    write_wav(paths[0], clips[0][::-1].copy())
    os.utime(paths[0], ns=(1, 1))
    assert np.array_equal(dataset.wav_features(paths)[0], frontend.clip_features(clips[0][::-1]))
    # the key covers the front end: another source hash is another cache file
    monkeypatch.setattr(dataset, "source_hash", lambda: "0" * 16)
    assert dataset.feature_cache_path(pcm) != cache


@pytest.mark.parametrize("rate,width,channels,msg", [(8000, 2, 1, "Hz"), (16000, 1, 1, "16-bit"),
                                                       (16000, 2, 2, "mono")])
def test_wav_reader_rejects_other_formats(tmp_path: Path, rate: int, width: int, channels: int, msg: str) -> None:
    from qsnnkit import dataset

    pcm = np.zeros(1600 * channels, dtype=np.int16 if width == 2 else np.uint8)
    p = write_wav(tmp_path / "bad.wav", pcm, rate=rate, width=width, channels=channels)
    with pytest.raises(ValueError, match=msg):
        dataset.wav_features([p], cache=False)
