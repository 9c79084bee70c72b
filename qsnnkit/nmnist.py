"""N-MNIST samples as network input: each sample's events binned by the C binner
(qsnnkit.events, docs/contract.md section 12) into uint8 [steps, inputs] frames, cached in the
project's ignored cache keyed by the binning rules' version, the configuration and the files
(path, size, mtime), so training, conversion reports and evaluation read the same frames."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qsnnkit import data
from qsnnkit.events import EventConfig, bin_events
from qsnnkit.paths import cache_dir
from qsnnkit.spec import EVENTS_VERSION, MAX_STEPS

CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
#: The default binning: 4x4-pixel blocks per polarity (2 x 9 x 9 = 162 inputs), binary spikes
#: (cap 1), 10 ms steps, 32 steps (320 ms: every N-MNIST sample's three saccades). Chosen on
#: validation (docs/results.md, "N-MNIST"): binary 86.0% against 83.3% for counts capped at 3.
DEFAULT_EVENTS = EventConfig(pool_shift=2, cap=1, window_us=10_000)
DEFAULT_STEPS = 32


@dataclass
class EventSplit:
    frames: np.ndarray  # uint8 [N, steps, inputs]
    labels: np.ndarray  # int64 [N]
    paths: list[Path]


def load_frames(root: str | Path | None, split: str, cfg: EventConfig = DEFAULT_EVENTS,
                steps: int = DEFAULT_STEPS, limit: int | None = None) -> EventSplit:
    """The binned frames of one N-MNIST split (train, val, test, all), optionally only the first
    ``limit`` samples; malformed files are refused by the reader (qsnnkit.data.read_nmnist)."""
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps must be 1..{MAX_STEPS} (the overflow proof covers {MAX_STEPS}), got {steps}")
    items = data.list_nmnist(root, split)  # type: ignore[arg-type]
    if limit is not None:
        items = items[:limit]
    if not items:
        raise ValueError(f"no N-MNIST samples in split {split!r}")
    h = hashlib.sha256(f"{EVENTS_VERSION}:{cfg}:{steps}".encode())
    for p, lab in items:
        st = p.stat()
        h.update(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}:{lab}\n".encode())
    f = cache_dir() / "events" / f"nmnist-{h.hexdigest()[:24]}.npz"
    labels = np.array([lab for _, lab in items], np.int64)
    if f.exists():
        with np.load(f, allow_pickle=False) as z:
            frames = z["frames"]
        if frames.shape == (len(items), steps, cfg.inputs) and frames.dtype == np.uint8:
            return EventSplit(frames, labels, [p for p, _ in items])
    frames = np.zeros((len(items), steps, cfg.inputs), np.uint8)
    for i, (p, _) in enumerate(tqdm(items, desc=f"binning {split} events", unit="sample", disable=len(items) < 50)):
        frames[i] = bin_events(data.read_nmnist(p), cfg, steps)[0]
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_name(f"{f.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, frames=frames)
    tmp.replace(f)
    return EventSplit(frames, labels, [p for p, _ in items])
