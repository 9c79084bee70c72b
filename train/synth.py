"""Synthetic keywords spoken by espeak-ng, for the training split only.

Each clip: one word spoken by an espeak-ng voice (an English accent with a male or female
variant) at a random rate and pitch, resampled from espeak-ng's 22,050 Hz to 16 kHz
(band-limited, by FFT), trimmed of leading and trailing silence, scaled to a random peak
level, placed at a random offset inside 1 s and mixed with a training-split ``_silence_``
clip at a random gain. Keyword classes get their word; ``_unknown_`` gets the Speech
Commands v2 auxiliary words. Validation and test clips never enter: the noise comes from
the training split's own ``_silence_`` clips.

The clips depend only on (clips per word, seed, noise clips, espeak-ng version) and are
cached in the project's ignored cache. ``python -m qsnnkit.train.synth --out DIR`` writes
them as WAV files in the Speech Commands layout, to listen to.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qsnnkit import data
from qsnnkit.paths import cache_dir
from qsnnkit.spec import CLIP_LEN, SAMPLE_RATE

ESPEAK = "espeak-ng"
ESPEAK_RATE = 22050
#: English accents of espeak-ng 1.51 (no mbrola voices: they need a separate package)
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")
RATES = (120, 200)  # words per minute
PITCHES = (25, 75)  # espeak-ng pitch, 0..99
PEAK_DBFS = (-20.0, -3.0)
NOISE_GAIN = 0.3  # largest gain of the mixed _silence_ clip (the --augment noise range)
#: Speech Commands v2's auxiliary words, the ones in the dataset's _unknown_ class
UNKNOWN_WORDS = ("backward", "bed", "bird", "cat", "dog", "eight", "five", "follow", "forward", "four",
                 "happy", "house", "learn", "marvin", "nine", "one", "seven", "sheila", "six", "three",
                 "tree", "two", "visual", "wow", "zero")
KEYWORDS = tuple(c for c in data.CLASSES if not c.startswith("_"))


class SynthError(RuntimeError):
    """espeak-ng is missing or wrote something unusable."""


def espeak_version() -> str:
    """espeak-ng's version line; RuntimeError with the install command when it is missing."""
    if shutil.which(ESPEAK) is None:
        raise SynthError("synthetic keywords need espeak-ng: apt-get install espeak-ng")
    return subprocess.run([ESPEAK, "--version"], capture_output=True, text=True, check=True).stdout.strip()


def speak(word: str, voice: str, rate: int, pitch: int) -> np.ndarray:
    """float64 samples at ESPEAK_RATE of one word (espeak-ng --stdout writes a streaming WAV
    whose length fields are not filled in: the data chunk runs to the end)."""
    raw = subprocess.run([ESPEAK, "--stdout", "-v", voice, "-s", str(rate), "-p", str(pitch), word],
                         capture_output=True, check=True).stdout
    with wave.open(io.BytesIO(raw[:44])) as w:  # the header: format checks only
        if w.getframerate() != ESPEAK_RATE or w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise SynthError(f"espeak-ng wrote {w.getframerate()} Hz, {w.getsampwidth()} B, "
                               f"{w.getnchannels()} channels; expected {ESPEAK_RATE} Hz 16-bit mono")
    pos = raw.find(b"data")
    if pos < 0:
        raise SynthError(f"espeak-ng output for {word!r} has no data chunk")
    body = raw[pos + 8:]
    return np.frombuffer(body[: len(body) // 2 * 2], dtype="<i2").astype(np.float64)


def resample(x: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Band-limited resampling by FFT (the spectrum cut at the lower Nyquist frequency)."""
    m = int(round(len(x) * dst / src))
    spec = np.fft.rfft(x)
    keep = min(len(spec), m // 2 + 1)
    out_spec = np.zeros(m // 2 + 1, dtype=complex)
    out_spec[:keep] = spec[:keep]
    return np.fft.irfft(out_spec, m) * (m / len(x))


def trim(x: np.ndarray, rel: float = 0.02) -> np.ndarray:
    """Cut leading and trailing samples below `rel` of the peak."""
    peak = float(np.abs(x).max()) if len(x) else 0.0
    if peak <= 0:
        return x[:0]
    idx = np.flatnonzero(np.abs(x) > rel * peak)  # not empty: the peak itself is above rel * peak
    return x[idx[0]: idx[-1] + 1]


def plan(per_word: int, seed: int) -> list[tuple[str, int, str, int, int]]:
    """(word, label, voice, rate, pitch) of every clip: per_word clips of each keyword and
    per_word clips of _unknown_ spread over UNKNOWN_WORDS."""
    rng = np.random.default_rng(seed)
    unknown = data.CLASSES.index("_unknown_")
    words = [(w, data.CLASSES.index(w)) for w in KEYWORDS for _ in range(per_word)]
    words += [(UNKNOWN_WORDS[i % len(UNKNOWN_WORDS)], unknown) for i in range(per_word)]
    out = []
    for w, y in words:
        voice = f"{ACCENTS[rng.integers(len(ACCENTS))]}+{VARIANTS[rng.integers(len(VARIANTS))]}"
        out.append((w, y, voice, int(rng.integers(RATES[0], RATES[1] + 1)),
                    int(rng.integers(PITCHES[0], PITCHES[1] + 1))))
    return out


def synthesize(per_word: int, seed: int, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int16 [N, CLIP_LEN] clips and int64 [N] labels (N = 11 * per_word), cached."""
    if per_word <= 0:
        return np.zeros((0, CLIP_LEN), np.int16), np.zeros(0, np.int64)
    if noise.ndim != 2 or noise.shape[1] != CLIP_LEN or noise.dtype != np.int16:
        raise ValueError(f"noise clips must be int16 [n, {CLIP_LEN}], got {noise.dtype} {noise.shape}")
    h = hashlib.sha256(f"{per_word}:{seed}:{espeak_version()}:{ACCENTS}:{VARIANTS}:{RATES}:{PITCHES}:"
                       f"{PEAK_DBFS}:{NOISE_GAIN}:{UNKNOWN_WORDS}".encode())
    h.update(np.ascontiguousarray(noise, dtype="<i2").tobytes())
    f = cache_dir() / "synth" / f"synth-{h.hexdigest()[:24]}.npz"
    if f.exists():
        with np.load(f, allow_pickle=False) as z:
            return z["pcm"], z["labels"]
    items = plan(per_word, seed)
    rng = np.random.default_rng([seed, 1])
    pcm = np.zeros((len(items), CLIP_LEN), np.int16)
    for i, (word, _, voice, rate, pitch) in enumerate(tqdm(items, desc="espeak-ng keywords", unit="clip")):
        x = trim(resample(speak(word, voice, rate, pitch), ESPEAK_RATE, SAMPLE_RATE))[:CLIP_LEN]
        if not len(x):
            raise SynthError(f"espeak-ng produced silence for {word!r} ({voice}, rate {rate}, pitch {pitch})")
        peak = 32767.0 * 10 ** (rng.uniform(*PEAK_DBFS) / 20.0)
        x = x * (peak / np.abs(x).max())
        clip = np.zeros(CLIP_LEN)
        at = int(rng.integers(0, CLIP_LEN - len(x) + 1))
        clip[at:at + len(x)] = x
        if len(noise):
            clip += noise[rng.integers(len(noise))].astype(np.float64) * rng.uniform(0.0, NOISE_GAIN)
        pcm[i] = np.clip(np.round(clip), -32768, 32767).astype(np.int16)
    labels = np.array([y for _, y, *_ in items], np.int64)
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_name(f.stem + ".tmp.npz")
    np.savez_compressed(tmp, pcm=pcm, labels=labels)
    tmp.replace(f)
    return pcm, labels


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qsnnkit.train.synth", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="folder for LABEL/synth_N.wav (must not exist)")
    p.add_argument("--per-word", type=int, default=20, help="clips per keyword and for _unknown_")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-root", default=None, help="dataset root for the _silence_ noise clips "
                   "(default: $QSNN_DATA_ROOT or ../shared/data)")
    a = p.parse_args(argv)
    if a.out.exists():
        print(f"synth: {a.out} exists; choose a new folder", file=sys.stderr)
        return 2
    from qsnnkit.dataset import load_split
    try:
        tr = load_split(a.data_root, "train")
        pcm, labels = synthesize(a.per_word, a.seed, tr.pcm[tr.labels == data.SILENCE])
    except (SynthError, ValueError, FileNotFoundError) as e:
        print(f"synth: {e}", file=sys.stderr)
        return 2
    for i, (x, y) in enumerate(zip(pcm, labels)):
        d = a.out / data.CLASSES[int(y)]
        d.mkdir(parents=True, exist_ok=True)
        with wave.open(str(d / f"synth_{i:05d}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes(x.astype("<i2").tobytes())
    print(f"wrote {len(pcm)} clips under {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
