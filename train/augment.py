"""Training-time augmentation. Audio kinds act on the PCM before the C front end (so the
network only ever sees features the device's front end computes); the spectral mask acts on
the front end's integer output.

Kinds (`--augment` takes a comma-separated list of them; `--augment` alone is "shift,noise"):

- ``speed``: resample by a factor drawn in [1 - SPEED, 1 + SPEED] (linear interpolation),
  centred and cut or zero-padded back to one clip: pitch and tempo change together;
- ``volume``: gain drawn log-uniformly in +-VOLUME_DB;
- ``shift``: time shift, zero filled, up to +-100 ms;
- ``noise``: a training-split ``_silence_`` clip mixed in at a random gain (80% of clips);
- ``mask``: SpecAugment-style masking of the features: up to two bands and two time spans
  set to the band's training-split centre (what the network subtracts, so "no information").

Applied in that order; every clip saturates to int16 before the front end.
"""
from __future__ import annotations

import numpy as np

from qsnnkit.spec import CLIP_LEN as CLIP_SAMPLES

#: the kinds in the order they are applied
KINDS = ("speed", "volume", "shift", "noise", "mask")
#: what a bare --augment means (the kinds measured first, before the others existed)
DEFAULT_KINDS = "shift,noise"
SPEED = 0.1
VOLUME_DB = 6.0
#: masks per clip and their largest widths (bands of 40, frames of 49)
FREQ_MASKS, FREQ_MASK_MAX = 2, 6
TIME_MASKS, TIME_MASK_MAX = 2, 6


def parse_kinds(text: str | bool) -> str:
    """Canonical comma-separated kinds ('' for none) from a list in any order; True stands for
    DEFAULT_KINDS (checkpoints written before kinds existed). ValueError names unknown kinds."""
    if isinstance(text, bool):
        return DEFAULT_KINDS if text else ""
    asked = [k.strip() for k in text.split(",") if k.strip()]
    unknown = sorted(set(asked) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown augmentation {', '.join(map(repr, unknown))}: choose from {', '.join(KINDS)}")
    return ",".join(k for k in KINDS if k in asked)


def _speed(pcm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n: int = pcm.shape[0]
    factors = rng.uniform(1.0 - SPEED, 1.0 + SPEED, size=n)
    out = np.zeros((n, CLIP_SAMPLES), dtype=np.float64)
    src = np.arange(CLIP_SAMPLES, dtype=np.float64)
    for i in range(n):
        m = int(round(CLIP_SAMPLES / factors[i]))  # output length of the resampled clip
        y = np.interp(np.arange(m) * factors[i], src, pcm[i].astype(np.float64))
        if m >= CLIP_SAMPLES:
            a = (m - CLIP_SAMPLES) // 2
            out[i] = y[a:a + CLIP_SAMPLES]
        else:
            a = (CLIP_SAMPLES - m) // 2
            out[i, a:a + m] = y
    return out


def augment(pcm: np.ndarray, noise: np.ndarray, rng: np.random.Generator, kinds: str = DEFAULT_KINDS,
            max_shift: int = 1600, noise_prob: float = 0.8, max_noise_gain: float = 0.3) -> np.ndarray:
    """The audio kinds of `kinds` applied to int16 [N, CLIP_LEN] clips (`noise`: train-split
    _silence_ clips), saturated to int16. 'mask' is not an audio kind: see mask_features."""
    ks = parse_kinds(kinds).split(",")
    n: int = pcm.shape[0]
    x: np.ndarray = _speed(pcm, rng) if "speed" in ks else pcm.astype(np.float64)
    if "volume" in ks:
        x = x * (10.0 ** (rng.uniform(-VOLUME_DB, VOLUME_DB, size=n) / 20.0))[:, None]
    if "speed" in ks or "volume" in ks:
        x = np.clip(np.round(x), -32768, 32767)
    out = x.astype(np.int32)
    if "shift" in ks:
        shifted = np.zeros_like(out)
        shifts = rng.integers(-max_shift, max_shift + 1, size=n)
        for i in range(n):
            s = int(shifts[i])
            if s >= 0:
                shifted[i, s:] = out[i, : CLIP_SAMPLES - s]
            else:
                shifted[i, :s] = out[i, -s:]
        out = shifted
    if "noise" in ks and len(noise):
        pick = rng.integers(0, len(noise), size=n)
        gain = rng.uniform(0.0, max_noise_gain, size=n) * (rng.random(n) < noise_prob)
        out = out + (noise[pick].astype(np.float64) * gain[:, None]).astype(np.int32)
    return np.clip(out, -32768, 32767).astype(np.int16)


def feature_mean(feats: np.ndarray) -> np.ndarray:
    """Per-band integer centre (round half up of the train-split mean), 0..255: what the network
    subtracts, and so what a mask fills in."""
    return np.clip(np.floor(feats.reshape(-1, feats.shape[-1]).mean(0) + 0.5), 0, 255)


def mask_features(feats: np.ndarray, centre: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SpecAugment-style masks on uint8 [N, frames, bands] features: FREQ_MASKS band spans and
    TIME_MASKS frame spans per clip, each 0..MAX wide, set to `centre` (per band, uint8)."""
    out = feats.copy()
    n, frames, bands = feats.shape
    fill = np.broadcast_to(np.asarray(centre, dtype=feats.dtype), (frames, bands))
    for i in range(n):
        for _ in range(FREQ_MASKS):
            w = int(rng.integers(0, FREQ_MASK_MAX + 1))
            f0 = int(rng.integers(0, bands - w + 1))
            out[i, :, f0:f0 + w] = fill[:, f0:f0 + w]
        for _ in range(TIME_MASKS):
            w = int(rng.integers(0, TIME_MASK_MAX + 1))
            t0 = int(rng.integers(0, frames - w + 1))
            out[i, t0:t0 + w, :] = fill[t0:t0 + w, :]
    return out
