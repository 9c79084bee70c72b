"""The side-by-side's CI smoke version (benchmarks/side_by_side.py is the benchmark): the
committed int8 DS-CNNs run with ai-edge-litert and tflite-micro only (no TensorFlow) on a
few test clips, the int8 runtimes give the same answers, the rows in
docs/results/benchmark.json name models that are committed, and the callgrind harness runs
the deployed Q-SNN and gives its answers."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qsnnkit.baseline import instructions, kwsdata, runtimes
from qsnnkit.ccore import CCore
from qsnnkit.model import load_converted
from qsnnkit.paths import REPO_ROOT

MODELS = sorted((REPO_ROOT / "benchmarks" / "dscnn_models").glob("*.tflite"))
DEFAULT = REPO_ROOT / "firmware" / "models" / "default"
CLIPS = 8


@pytest.fixture(scope="module")
def test_clips() -> tuple[np.ndarray, np.ndarray]:
    feats, labels, _ = kwsdata.split_features(None, "test", CLIPS)
    return feats, labels


def test_models_are_committed() -> None:
    assert MODELS, "benchmarks/dscnn_models/ holds no .tflite: run benchmarks/side_by_side.py and commit its models"


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
def test_litert_and_tflm_agree(path: Path, test_clips: tuple[np.ndarray, np.ndarray]) -> None:
    """The three int8 runtimes give the same answer on every clip. Their logits may differ by a
    rounding (the benchmark measures how often and by how much over the whole test split:
    docs/BENCHMARKS.md), not their predicted class."""
    feats, _ = test_clips
    flat = path.read_bytes()
    tflm = runtimes.TFLM(flat).outputs(feats)
    assert tflm.shape == (CLIPS, 12) and tflm.dtype == np.int8
    for kernels in runtimes.LITERT_KERNELS:
        lite = runtimes.LiteRT(flat, kernels=kernels).outputs(feats)
        bad = np.flatnonzero(lite.argmax(1) != tflm.argmax(1))
        assert bad.size == 0, (f"{path.name}: clip {bad[0]}: TFLM says class {tflm[bad[0]].argmax()} "
                               f"({tflm[bad[0]].tolist()}), LiteRT ({kernels}) {lite[bad[0]].argmax()} "
                               f"({lite[bad[0]].tolist()})")


def test_benchmark_rows_name_committed_models() -> None:
    doc = json.loads((REPO_ROOT / "docs" / "results" / "benchmark.json").read_text())
    sizes = {p.stem: p.stat().st_size for p in MODELS}
    for label, plan in doc["plan"].items():
        for name in plan["finals"]:
            assert name in sizes, f"benchmark.json's {label} final {name} is not in benchmarks/dscnn_models/"
    for r in doc["rows"]:
        if r["kind"] == "dscnn-int8" and r["source"] == "measured":
            finals = doc["plan"][r["model"]]["finals"]
            assert r["model_bytes"] == sizes[finals[0]], r["model"]
            assert len(r["accuracies"]) == len(finals)


def test_runtimes_refuse_a_model_with_another_input_scale(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale"):
        runtimes._check_input({"dtype": np.int8, "quantization_parameters": {"scales": np.array([1.0]),
                                                                            "zero_points": np.array([0])}})


def test_callgrind_harness_runs_the_deployed_model(test_clips: tuple[np.ndarray, np.ndarray]) -> None:
    """The x86 count of the Q-SNN comes from a harness that computes the core's answers."""
    feats, _ = test_clips
    c = instructions.count("qsnn", DEFAULT, feats[:3])
    core = CCore(load_converted(DEFAULT / "model.npz"))
    want = [int(np.argmax(core.run_clip(f))) for f in feats[:3]]
    assert c.answers == want
    assert c.inferences == 2 and c.instructions > 0


def test_committed_results_follow_the_shared_schemas() -> None:
    """docs/results/*.json (benchmark.json, ablation-*.json, ...) pass ../shared/tools/check_results.py."""
    import subprocess
    import sys

    checker = REPO_ROOT.parent / "shared" / "tools" / "check_results.py"
    chk = subprocess.run([sys.executable, str(checker), str(REPO_ROOT / "docs" / "results")], capture_output=True,
                         text=True)
    assert chk.returncode == 0, chk.stdout + chk.stderr
