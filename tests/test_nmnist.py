"""N-MNIST end to end on the host: events -> C binner -> training -> integer model whose
descriptor names its dataset and binning -> PyTorch, integer reference and C core agree."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qsnnkit import data, nmnist, reference
from qsnnkit.ccore import CCore
from qsnnkit.model import load_converted


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    d = tmp_path_factory.mktemp("nmnist")
    train = [sys.executable, "-m", "qsnnkit.train.cli", "--dataset", "nmnist", "--epochs", "2", "--limit", "60",
             "--hidden", "32", "--ev-pool-shift", "3", "--ev-steps", "20", "--data-root", str(data_root),
             "--out", str(d / "train")]
    r = subprocess.run(train, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    conv = [sys.executable, "-m", "qsnnkit.convert.cli", str(d / "train" / "model.safetensors"), "--out",
            str(d / "model"), "--split", "val", "--data-root", str(data_root)]
    r = subprocess.run(conv, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return d / "model"


def test_the_converted_model_names_its_dataset_and_binning(trained: Path) -> None:
    m = load_converted(trained / "model.npz")
    assert (m.input_kind, m.dataset, m.steps, m.classes) == ("events", "nmnist", 20, list(nmnist.CLASSES))
    cfg = m.event_config()
    assert (cfg.width, cfg.height, cfg.pool_shift, cfg.cap, cfg.window_us) == (34, 34, 3, 1, 10_000)
    assert m.n_bands == cfg.inputs == 2 * 5 * 5
    rep = json.loads((trained / "report.json").read_text())
    assert "--dataset nmnist --ev-pool-shift 3 --ev-cap 1 --ev-window-us 10000 --ev-steps 20" in \
        rep["provenance"]["train_command"]
    assert rep["val"]["torch_reference_agreement"] == 1.0 and rep["val"]["samples"] == 100


def test_reference_and_c_core_agree_on_every_validation_sample(trained: Path, data_root: Path) -> None:
    m = load_converted(trained / "model.npz")
    ev = nmnist.load_frames(data_root, "val", m.event_config(), m.steps)
    ref, _ = reference.run_batch(m, ev.frames)
    for kernel in ("ref", "fast"):
        core = CCore(m, kernel=kernel)
        got = np.stack([core.run_clip(x) for x in ev.frames])
        if not np.array_equal(got, ref):
            i = int(np.argmax((got != ref).any(1)))
            raise AssertionError(f"{kernel} kernels: first mismatch at sample {i}: C {got[i]} reference {ref[i]}")


def test_an_edited_binning_is_refused(trained: Path, tmp_path: Path) -> None:
    m = load_converted(trained / "model.npz")
    m.frontend = {**m.frontend, "pool_shift": 2}  # 162 inputs for a first layer of 50
    with pytest.raises(ValueError, match="gives 162 inputs per step, its first layer reads 50"):
        m.validate()


def test_event_frames_are_cached_and_limited(data_root: Path) -> None:
    a = nmnist.load_frames(data_root, "test", limit=5)
    b = nmnist.load_frames(data_root, "test", limit=5)
    assert a.frames.shape == (5, nmnist.DEFAULT_STEPS, 162) and np.array_equal(a.frames, b.frames)
    assert a.labels.tolist() == [lab for _, lab in data.list_nmnist(data_root, "test")[:5]]
    with pytest.raises(ValueError, match="steps must be 1..64"):
        nmnist.load_frames(data_root, "test", steps=65)


def test_event_models_carry_their_binning_to_the_device_and_listen_refuses_them(trained: Path,
                                                                                data_root: Path) -> None:
    """A freshly trained event model with a non-default binning (8x8 blocks, 20 steps): its
    header carries the binning, qsnn-eval builds its firmware and runs it bit-exact on the
    emulated M4, and the keyword listener refuses it by name."""
    from qsnnkit.paths import REPO_ROOT

    hdr = (trained / "qsnn_model.h").read_text()
    for line in ("QSNN_MODEL_INPUT_EVENTS 1u", "QSNN_MODEL_EV_POOL_SHIFT 3u", "QSNN_MODEL_EV_CAP 1u",
                 "QSNN_MODEL_EV_WINDOW_US 10000u", "QSNN_MODEL_EV_STEPS 20u"):
        assert f"#define {line}" in hdr
    env = {**os.environ, "QSNN_DATA_ROOT": str(data_root)}
    out = trained / "eval.json"
    r = subprocess.run([sys.executable, str(REPO_ROOT / "host" / "eval.py"), "--model", str(trained / "model.npz"),
                        "--limit", "4", "--split", "val", "--jobs", "1", "--quiet", "--json", str(out)],
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]
    s = json.loads(out.read_text())
    assert s["agreement"] == 1.0 and s["samples"] == 4 and all(c["frames"] == 20 for c in s["clips"])
    r = subprocess.run([sys.executable, str(REPO_ROOT / "host" / "listen.py"), "--model", str(trained / "model.npz"),
                        str(REPO_ROOT / "tests" / "fuzz" / "corpus" / "frame" / "hello")],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode != 0 and "reads events (nmnist)" in r.stderr, r.stderr[-500:]
