"""x86-64 instructions per inference, counted the same way for every runtime: valgrind's
callgrind with collection switched on only inside one function, the runtime's own inference
call, and off everywhere else (Python, data handling, the set-up):

- LiteRT: ``tflite::Subgraph::Invoke()`` (what ``Interpreter::Invoke`` runs; XNNPACK or
  its built-in kernels);
- TFLM: ``tflite::micro::MicroInterpreter::Invoke()``;
- the Q-SNN: ``count_network`` in baseline/cg_harness.c, one clip's 49 ``qsnn_step`` calls
  (the C core's fast kernels and the firmware's generated model, built for the host with
  the core's own flags, -O2);
- the front end, counted once and separately: ``count_frontend`` (``qsnn_fe_clip``, one
  clip's 49 frames).

Each probe makes one warm-up inference (lazy set-up inside the first call is not an
inference's cost), zeroes callgrind's counters through a client request, then runs N. The
Python probes (``python -m qsnnkit.baseline.instructions PROBE ...``) drive LiteRT and TFLM;
the Q-SNN runs in a small C program, because a function called through ctypes is not seen
by --toggle-collect (measured: nothing collected).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: probe -> the function inside which instructions are collected
FUNCTIONS = {
    "litert-xnnpack": "tflite::Subgraph::Invoke()",
    "litert-builtin": "tflite::Subgraph::Invoke()",
    "tflm": "tflite::micro::MicroInterpreter::Invoke()",
    "qsnn": "count_network",
    "frontend": "count_frontend",
}
#: the probes that run in the C harness, and its mode for each
HARNESS_MODES = {"qsnn": "network", "frontend": "frontend"}
_CTL = r"""
#include <valgrind/callgrind.h>
void qsnn_callgrind_zero(void) { CALLGRIND_ZERO_STATS; }
"""


@dataclass
class Count:
    probe: str
    function: str
    inferences: int
    instructions: float  # per inference
    valgrind: str
    answers: list[int]  # the harness's argmax per clip, warm-up first (empty for the Python probes)


def _ctl_lib() -> Path:
    from qsnnkit.paths import cache_dir

    out = cache_dir() / "callgrind" / "libqsnn_cgctl.so"
    if not out.exists():
        if not Path("/usr/include/valgrind/callgrind.h").exists():
            raise RuntimeError("valgrind's callgrind.h is missing: apt-get install valgrind")
        out.parent.mkdir(parents=True, exist_ok=True)
        src = out.with_suffix(".c")
        src.write_text(_CTL)
        subprocess.run(["gcc", "-O2", "-fPIC", "-shared", str(src), "-o", str(out)], check=True)
    return out


def _zero() -> None:
    import ctypes

    ctypes.CDLL(str(_ctl_lib())).qsnn_callgrind_zero()


def _probe(kind: str, model: str, inputs: str) -> None:
    """Inside valgrind (LiteRT, TFLM): one warm-up inference, counters zeroed, then the rest."""
    x = np.load(inputs, allow_pickle=False)
    from qsnnkit.baseline import runtimes

    flat = Path(model).read_bytes()
    rt: runtimes.LiteRT | runtimes.TFLM
    if kind == "tflm":
        rt = runtimes.TFLM(flat)
    else:
        rt = runtimes.LiteRT(flat, kernels="xnnpack" if kind == "litert-xnnpack" else "builtin")
    rt.outputs(x[:1])
    _zero()
    rt.outputs(x[1:])


def harness(model_dir: str | Path) -> Path:
    """baseline/cg_harness.c linked with the C core and a converted model's qsnn_model.c,
    built with the core's own flags (cached by sources and flags)."""
    import hashlib

    from qsnnkit import clib
    from qsnnkit.paths import QSNN_INCLUDE_DIR, cache_dir

    model_dir = Path(model_dir)
    srcs = [Path(__file__).with_name("cg_harness.c"), *clib.c_sources(), model_dir / "qsnn_model.c"]
    missing = [str(p) for p in srcs if not p.exists()]
    if missing:
        raise FileNotFoundError(f"cannot build the callgrind harness: missing {', '.join(missing)}")
    flags = list(clib.STRICT_CFLAGS)
    h = hashlib.sha256(" ".join(flags).encode())
    for p in srcs + [model_dir / "qsnn_model.h"]:
        h.update(p.read_bytes())
    out = cache_dir() / "callgrind" / f"cg_harness-{h.hexdigest()[:16]}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        subprocess.run(["gcc", *flags, "-I", str(QSNN_INCLUDE_DIR), "-I", str(model_dir), *map(str, srcs),
                        "-o", str(tmp)], check=True)
        tmp.replace(out)
    return out


def _total_ir(out_file: Path) -> int:
    text = out_file.read_text(errors="replace")
    m = re.search(r"^(?:totals|summary):\s+(\d+)", text, re.M)
    if m is None:
        raise RuntimeError(f"no totals in {out_file}")
    return int(m.group(1))


def count(kind: str, model: str | Path, inputs: np.ndarray, timeout: float = 3600) -> Count:
    """Instructions per inference of `kind` on `inputs` (the first is the warm-up): uint8
    features [n + 1, 49, 40], or int16 PCM [n + 1, 16000] for the front end. `model`: the
    .tflite file, or the converted Q-SNN's folder (qsnn_model.c; any folder for the front end)."""
    if kind not in FUNCTIONS:
        raise ValueError(f"unknown probe {kind!r}: choose from {', '.join(FUNCTIONS)}")
    if len(inputs) < 2:
        raise ValueError("count needs a warm-up input and at least one counted input")
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed: apt-get install valgrind")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", "--collect-atstart=no", f"--toggle-collect={FUNCTIONS[kind]}",
               f"--callgrind-out-file={out}"]
        if kind in HARNESS_MODES:  # model: the converted model's folder (qsnn_model.c)
            inp = Path(tmp) / "inputs.bin"
            want = np.uint8 if kind == "qsnn" else np.int16
            np.ascontiguousarray(inputs, dtype=want).tofile(inp)
            cmd += [str(harness(model)), HARNESS_MODES[kind], str(inp), str(len(inputs))]
        else:
            _ctl_lib()
            inp = Path(tmp) / "inputs.npy"
            np.save(inp, inputs)
            cmd += [sys.executable, "-m", "qsnnkit.baseline.instructions", kind, str(model), str(inp)]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", OMP_NUM_THREADS="1")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"callgrind run of {kind} failed ({r.returncode}): {r.stderr[-2000:]}")
        total = _total_ir(out)
        ver = subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip()
    n = len(inputs) - 1
    answers = [int(t) for t in r.stdout.split()] if kind == "qsnn" else []
    return Count(kind, FUNCTIONS[kind], n, total / n, ver, answers)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="callgrind probe (run by count() under valgrind)")
    p.add_argument("kind", choices=sorted(set(FUNCTIONS) - set(HARNESS_MODES)))
    p.add_argument("model", help="the .tflite file")
    p.add_argument("inputs", help=".npy inputs, the first one the warm-up")
    a = p.parse_args(argv)
    _probe(a.kind, a.model, a.inputs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
