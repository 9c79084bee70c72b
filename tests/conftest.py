"""Shared fixtures: dataset root, test-split features (from the C front end), default model."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from qsnnkit.paths import REPO_ROOT

#: the test_split fixture: pcm int16 [N, 16000], features uint8 [N, 49, 40], labels [N]
Split3 = tuple[np.ndarray, np.ndarray, np.ndarray]

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
def test_split(data_root: Path) -> Split3:
    """(pcm int16 [N,16000], features uint8 [N,49,40], labels) of the whole test split."""
    from qsnnkit.dataset import features, load_split

    sp = load_split(data_root, "test")
    return sp.pcm, features(sp.pcm), sp.labels


#: test clips of the clean evaluation on the emulated M4 that the end-to-end test checks and the
#: faulty-line test compares against clip for clip (the host issue's target: 100 clips)
CLEAN_M4_CLIPS = 100


@dataclass
class EvalRun:
    """A finished ``host/eval.py`` run: its JSON summary, where it lies, and its console."""

    summary: dict
    json_path: Path
    stdout: str


def run_eval(out: Path, *extra: str, limit: int, timeout: int = 900) -> tuple[dict, subprocess.CompletedProcess]:
    """``host/eval.py`` on the emulated M4 (the test model's firmware, built if needed) over the
    first ``limit`` test clips, two boards, the JSON written to ``out``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import firmware_support as fw

    model_dir = fw.model_dir_for_tests()
    elf = fw.built_firmware(model_dir)
    cmd = [sys.executable, str(REPO_ROOT / "host" / "eval.py"), "--port", "qemu", "--elf", str(elf),
           "--model", str(model_dir / "model.npz"), "--split", "test", "--limit", str(limit),
           "--jobs", "2", "--json", str(out), "--quiet", *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=dict(os.environ))
    print(res.stdout, res.stderr[-2000:])
    return (json.loads(out.read_text()) if out.is_file() else {}), res


@pytest.fixture(scope="session")
def clean_m4_eval(tmp_path_factory: pytest.TempPathFactory) -> EvalRun:
    """One clean evaluation of CLEAN_M4_CLIPS test clips on the emulated M4, shared by the tests
    that check it (tests/test_e2e_qemu.py) and compare a faulty line with it (tests/test_faults.py)."""
    out = tmp_path_factory.mktemp("clean_m4") / "clean.json"
    s, res = run_eval(out, limit=CLEAN_M4_CLIPS)
    assert res.returncode == 0, f"eval failed ({res.returncode}):\n{res.stdout}\n{res.stderr[-4000:]}"
    return EvalRun(s, out, res.stdout)
