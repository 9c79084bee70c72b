"""Training-time audio augmentation (on PCM, before the C front end)."""
from __future__ import annotations

import numpy as np

from qsnnkit.spec import CLIP_LEN as CLIP_SAMPLES


def augment(pcm: np.ndarray, noise: np.ndarray, rng: np.random.Generator,
            max_shift: int = 1600, noise_prob: float = 0.8, max_noise_gain: float = 0.3) -> np.ndarray:
    """Random time shift (zero filled, up to +-100 ms) and background noise mixed at a random
    gain from `noise` clips (train-split _silence_ clips), saturated to int16."""
    n = pcm.shape[0]
    out = np.zeros_like(pcm, dtype=np.int32)
    shifts = rng.integers(-max_shift, max_shift + 1, size=n)
    for i in range(n):
        s = int(shifts[i])
        if s >= 0:
            out[i, s:] = pcm[i, : CLIP_SAMPLES - s]
        else:
            out[i, :s] = pcm[i, -s:]
    if len(noise):
        pick = rng.integers(0, len(noise), size=n)
        gain = rng.uniform(0.0, max_noise_gain, size=n) * (rng.random(n) < noise_prob)
        out = out + (noise[pick].astype(np.float64) * gain[:, None]).astype(np.int32)
    return np.clip(out, -32768, 32767).astype(np.int16)
