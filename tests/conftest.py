"""Shared fixtures: dataset root, test-split features (from the C front end), default model."""
from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np
import pytest

from qsnnkit.paths import REPO_ROOT

DEFAULT_MODEL = REPO_ROOT / "firmware" / "models" / "default" / "model.npz"


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000, channels: int = 1, width: int = 2) -> Path:
    """Write raw samples as a WAV file (any format, so tests can make bad ones too)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = Path(os.environ.get("QSNN_DATA_ROOT", REPO_ROOT.parent / "shared" / "data"))
    if not root.is_dir():
        pytest.fail(f"dataset root {root} missing: set QSNN_DATA_ROOT (CI uses ../shared/data)")
    return root


@pytest.fixture(scope="session")
def test_split(data_root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pcm int16 [N,16000], features uint8 [N,49,40], labels) of the whole test split."""
    from qsnnkit.dataset import features, load_split

    sp = load_split(data_root, "test")
    return sp.pcm, features(sp.pcm), sp.labels
