"""Speech Commands clips in memory: PCM (int16, exactly 1 s) and front-end features.

PCM is read once per split and cached as .npy in the project's cache; features always
come from the C front end (qsnnkit.frontend), the same code the device runs.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qsnnkit import data, frontend
from qsnnkit.paths import cache_dir

CLIP_SAMPLES = 16000


@dataclass
class Split:
    pcm: np.ndarray  # int16 [N, 16000]
    labels: np.ndarray  # int64 [N]
    paths: list[Path]


def load_split(root: str | Path | None, split: str, limit: int | None = None) -> Split:
    items = data.list_split(root, split)  # type: ignore[arg-type]
    if limit is not None:
        items = items[:limit]
    if not items:
        raise ValueError(f"no clips in split {split!r} under {data.resolve_root(root)}")
    key = hashlib.sha256("\n".join(f"{p}:{p.stat().st_size}:{y}" for p, y in items).encode()).hexdigest()[:16]
    f = cache_dir() / "pcm" / f"{split}-{key}.npy"
    labels = np.array([y for _, y in items], np.int64)
    if f.exists():
        pcm = np.load(f, allow_pickle=False)
    else:
        pcm = np.zeros((len(items), CLIP_SAMPLES), np.int16)
        for i, (p, _) in enumerate(tqdm(items, desc=f"reading {split} wavs", unit="clip")):
            pcm[i] = frontend.fit_clip(data.read_wav(p))
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_name(f.name + ".tmp.npy")
        np.save(tmp, pcm)
        tmp.replace(f)
    return Split(pcm=pcm, labels=labels, paths=[p for p, _ in items])


def features(pcm: np.ndarray, desc: str | None = None) -> np.ndarray:
    """uint8 [N, 49, 40] features of int16 [N, 16000] clips, from the C front end."""
    out = np.empty((len(pcm), 49, 40), np.uint8)
    step = 256
    for i in tqdm(range(0, len(pcm), step), desc=desc, unit="x256 clips", disable=desc is None):
        out[i:i + step] = frontend.batch_features(pcm[i:i + step])
    return out


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
