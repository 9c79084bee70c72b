"""Audio in from files: any PCM WAV to mono float, resampling to the front end's 16 kHz, and
the rule that fits a recording of any length into one clip. One definition for every stage
(host/listen.py streams files through it; the FSDD dataset is read through it)."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from qsnnkit import spec

#: Kaiser-windowed sinc low-pass: taps each side, window beta, cutoff as a fraction of the
#: lower of the two rates' Nyquist frequency (x 2: of the lower rate)
LOWPASS_HALF_TAPS = 64
LOWPASS_BETA = 8.0
LOWPASS_CUTOFF = 0.45


def read_audio(path: Path) -> tuple[np.ndarray, int]:
    """A PCM WAV file (8/16/24/32-bit, any rate, any channels) as float64 mono in int16
    units, and its sample rate."""
    try:
        with wave.open(str(path), "rb") as w:
            ch, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError, OSError) as e:
        raise ValueError(f"{path}: not a readable PCM WAV file ({e})") from e
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) * 256.0
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float64)
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.float64) / 256.0
    elif width == 4:
        x = np.frombuffer(raw, "<i4").astype(np.float64) / 65536.0
    else:
        raise ValueError(f"{path}: {8 * width}-bit samples are not supported")
    if x.size % ch:
        raise ValueError(f"{path}: truncated (the last frame of {ch} channels is incomplete)")
    return x.reshape(-1, ch).mean(axis=1), rate


def _lowpass(x: np.ndarray, cutoff: float) -> np.ndarray:
    """`cutoff` in cycles per sample of x."""
    taps = np.arange(-LOWPASS_HALF_TAPS, LOWPASS_HALF_TAPS + 1)
    h = 2 * cutoff * np.sinc(2 * cutoff * taps) * np.kaiser(taps.size, LOWPASS_BETA)
    return np.convolve(x, h / h.sum(), mode="same")


def to_16k(x: np.ndarray, rate: int) -> np.ndarray:
    """Resample float samples to 16 kHz int16, band-limited both ways: going down, low-pass
    (Kaiser-windowed sinc at 0.45 of the lower rate) then linear interpolation; going up,
    linear interpolation then the same low-pass (which removes the interpolation's images above
    the source's band). Rounded and clipped."""
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")
    target = spec.SAMPLE_RATE
    if rate != target and x.size:
        if rate > target:
            x = _lowpass(x, LOWPASS_CUTOFF * target / rate)
        t_out = np.arange(int(x.size * target / rate)) * (rate / target)
        x = np.interp(t_out, np.arange(x.size), x)
        if rate < target:
            x = _lowpass(x, LOWPASS_CUTOFF * rate / target)
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def centre_clip(x: np.ndarray, n: int = spec.CLIP_LEN) -> np.ndarray:
    """One clip of n samples: a shorter recording centred in zeros (it starts at
    (n - len) // 2), a longer one cut to its centred n samples (from (len - n) // 2)."""
    x = np.asarray(x)
    if x.size >= n:
        a = (x.size - n) // 2
        return x[a:a + n].copy()
    out = np.zeros(n, dtype=x.dtype)
    a = (n - x.size) // 2
    out[a:a + x.size] = x
    return out
