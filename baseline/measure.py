"""The measures of the side-by-side (benchmarks/side_by_side.py), for one int8 DS-CNN or for
the deployed Q-SNN: test accuracy through each runtime, their clip-by-clip agreement, bytes,
RAM, x86-64 instructions per inference (baseline/instructions.py). Results are cached in
.cache/baseline/measure/ by the model file's SHA-256, so a re-run measures only what changed."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from qsnnkit.baseline import instructions, runtimes
from qsnnkit.paths import cache_dir

#: runtime label -> how the DS-CNN is run
RUNTIMES = ("litert-xnnpack", "litert-builtin", "tflm")


def _cache(key: str) -> Path:
    d = cache_dir() / "baseline" / "measure"
    d.mkdir(parents=True, exist_ok=True)
    return d / f"{key}.json"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dscnn(tflite: Path, test_feats: np.ndarray, test_labels: np.ndarray, cg_inputs: np.ndarray,
          count_x86: bool) -> dict:
    """Test outputs through LiteRT (XNNPACK, built-in) and TFLM, accuracy and agreement of each,
    the TFLM arena, and (count_x86) instructions per inference under callgrind."""
    flat = tflite.read_bytes()
    key = f"dscnn-{_sha(flat)[:20]}-{len(test_labels)}-{_sha(test_feats.tobytes())[:12]}"
    f = _cache(key)
    rec = json.loads(f.read_text()) if f.exists() else {}
    if "accuracy" not in rec:
        outs = {"litert-xnnpack": runtimes.LiteRT(flat, kernels="xnnpack").outputs(test_feats),
                "litert-builtin": runtimes.LiteRT(flat, kernels="builtin").outputs(test_feats)}
        tflm = runtimes.TFLM(flat)
        outs["tflm"] = tflm.outputs(test_feats)
        ref = outs["tflm"]
        rec = {"model": tflite.name, "sha256": _sha(flat), "model_bytes": len(flat), "samples": len(test_labels),
               "arena_bytes": tflm.arena_used(),
               "accuracy": {k: float((o.argmax(1) == test_labels).mean()) for k, o in outs.items()},
               # against TFLM, clip by clip: identical int8 outputs, and the same predicted class
               "outputs_equal_tflm": {k: float((o == ref).all(1).mean()) for k, o in outs.items()},
               "predictions_equal_tflm": {k: float((o.argmax(1) == ref.argmax(1)).mean()) for k, o in outs.items()},
               "max_abs_diff_tflm": {k: int(np.abs(o.astype(np.int16) - ref).max()) for k, o in outs.items()}}
        f.write_text(json.dumps(rec, indent=1))
    if count_x86 and "instructions_x86" not in rec:
        rec["instructions_x86"] = {}
        for k in RUNTIMES:
            c = instructions.count(k, tflite, cg_inputs)
            rec["instructions_x86"][k] = c.instructions
        rec["callgrind"] = {"inferences": len(cg_inputs) - 1, "valgrind": c.valgrind,
                            "functions": {k: instructions.FUNCTIONS[k] for k in RUNTIMES}}
        f.write_text(json.dumps(rec, indent=1))
    return rec


def qsnn(model_dir: Path, cg_inputs: np.ndarray, cg_pcm: np.ndarray) -> dict:
    """The deployed Q-SNN's x86-64 instructions per clip (network, and the front end apart)."""
    src = (model_dir / "qsnn_model.c").read_bytes()
    key = f"qsnn-{_sha(src + (model_dir / 'qsnn_model.h').read_bytes())[:20]}-{_sha(cg_inputs.tobytes())[:12]}"
    f = _cache(key)
    if f.exists():
        return json.loads(f.read_text())
    net = instructions.count("qsnn", model_dir, cg_inputs)
    fe = instructions.count("frontend", model_dir, cg_pcm)
    rec = {"model_dir": str(model_dir), "network_x86": net.instructions, "frontend_x86": fe.instructions,
           "inferences": net.inferences, "valgrind": net.valgrind,
           "functions": {"network": net.function, "frontend": fe.function}}
    f.write_text(json.dumps(rec, indent=1))
    return rec
