"""Build and run the firmware's libFuzzer harnesses (tests/fuzz/), shared by tests/test_fuzz.py
(seed corpus, regressions and a bounded run in CI) and benchmarks/fuzz.py (the long runs).

Each harness is built for the host with clang, libFuzzer, AddressSanitizer and
UndefinedBehaviorSanitizer (-fno-sanitize-recover=all: the first report stops the run)."""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from qsnnkit.paths import REPO_ROOT

FUZZ_DIR = REPO_ROOT / "tests" / "fuzz"
FW = REPO_ROOT / "firmware"
BUILD = REPO_ROOT / "build" / "fuzz"
MODEL_DIR = FW / "models" / "default"
EVENTS_MODEL_DIR = FW / "models" / "nmnist"
CC = "clang"
CFLAGS = ["-std=c99", "-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all",
          "-Wall", "-Wextra", "-Werror"]
INCLUDES = [FW / "include", FW / "src", FW / "lib" / "qsnn" / "include", FUZZ_DIR]

#: harness -> its sources (the harness itself first).
HARNESSES: dict[str, list[Path]] = {
    "frame": [FUZZ_DIR / "fuzz_frame.c", FW / "src" / "proto.c"],
    "session": [FUZZ_DIR / "fuzz_session.c", FUZZ_DIR / "host_board.c", FW / "src" / "app.c", FW / "src" / "proto.c",
                *sorted((FW / "lib" / "qsnn" / "src").glob("*.c")), MODEL_DIR / "qsnn_model.c"],
    # the same session harness on the firmware built for an event model (EVENTS_BEGIN, EVENTS)
    "session_events": [FUZZ_DIR / "fuzz_session.c", FUZZ_DIR / "host_board.c", FW / "src" / "app.c",
                       FW / "src" / "proto.c", *sorted((FW / "lib" / "qsnn" / "src").glob("*.c")),
                       EVENTS_MODEL_DIR / "qsnn_model.c"],
    "frontend": [FUZZ_DIR / "fuzz_frontend.c", FW / "lib" / "qsnn" / "src" / "qsnn_frontend.c"],
    "events": [FUZZ_DIR / "fuzz_events.c", FW / "lib" / "qsnn" / "src" / "qsnn_events.c"],
}
#: Longest input each harness tries: the frame receiver needs room for over-long frames
#: (> PROTO_MAX_ENCODED) and several frames; a session input of 2,048 bytes holds a full AUDIO
#: frame and the records around it; three hops (two frames of features) exercise the front
#: end's history; 1,024 bytes hold 144 events. Longer inputs mostly repeat work and slow the runs down.
MAX_LEN = {"frame": 4096, "session": 2048, "session_events": 2048, "frontend": 1920, "events": 1024}


def includes(harness: str) -> list[Path]:
    """Include folders of a harness: the firmware's, and the model folder its sources name."""
    models = [f.parent for f in HARNESSES[harness] if f.name == "qsnn_model.c"]
    return INCLUDES + models


def build(harness: str) -> Path:
    """The harness binary, rebuilt when a source, a header or the flags changed."""
    srcs = HARNESSES[harness]
    h = hashlib.sha256(" ".join([CC, *CFLAGS]).encode())
    for d in includes(harness):
        for f in sorted(d.glob("*.h")):
            h.update(f.name.encode() + f.read_bytes())
    for f in srcs:
        h.update(f.name.encode() + f.read_bytes())
    exe = BUILD / f"fuzz_{harness}_{h.hexdigest()[:12]}"
    if not exe.exists():
        BUILD.mkdir(parents=True, exist_ok=True)
        cmd = [CC, *CFLAGS, *[f"-I{d}" for d in includes(harness)], *map(str, srcs), "-o", str(exe)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"building the {harness} harness failed:\n{' '.join(cmd)}\n{r.stderr[-4000:]}")
    return exe


def seed_dirs(harness: str) -> list[Path]:
    """The committed seed corpus and regression inputs of a harness (those that exist)."""
    return [d for d in (FUZZ_DIR / "corpus" / harness, FUZZ_DIR / "regressions" / harness) if d.is_dir()]


@dataclass
class RunStats:
    harness: str
    returncode: int
    executions: int
    seconds: float
    edges_covered: int  # libFuzzer "cov:": instrumented edges reached
    edges_total: int  # inline 8-bit counters of the binary
    features: int  # libFuzzer "ft:"
    corpus_inputs: int
    crashes: list[str]
    log_tail: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.crashes


def _parse(harness: str, r: subprocess.CompletedProcess, artifacts: Path) -> RunStats:
    log = r.stderr
    done = re.findall(r"#(\d+)\s+(?:DONE|pulse|NEW|REDUCE|INITED)\s+cov: (\d+) ft: (\d+) corp: (\d+)", log)
    total = re.search(r"Loaded \d+ modules?\s+\((\d+) inline 8-bit counters\)", log)
    secs = re.search(r"Done (\d+) runs in (\d+) second", log)
    execs, cov, ft, corp = (int(v) for v in done[-1]) if done else (0, 0, 0, 0)
    if secs:
        execs = int(secs.group(1))
    units = re.search(r"stat::number_of_executed_units:\s+(\d+)", log)  # -print_final_stats, also on SIGUSR1
    if units:
        execs = max(execs, int(units.group(1)))
    crashes = sorted(str(p) for p in artifacts.glob("*-*") if p.name.split("-")[0] in ("crash", "leak", "timeout", "oom"))
    return RunStats(harness, r.returncode, execs, float(secs.group(2)) if secs else 0.0, cov,
                    int(total.group(1)) if total else 0, ft, corp, crashes, log[-3000:])


def replay(harness: str, files_or_dirs: list[Path]) -> subprocess.CompletedProcess:
    """Run every input once (no fuzzing); returncode 0 when none crashed."""
    exe = build(harness)
    files = [str(f) for d in files_or_dirs for f in (sorted(d.iterdir()) if d.is_dir() else [d])
             if Path(f).is_file() and not Path(f).name.endswith(".md")]
    return subprocess.run([str(exe), *files], capture_output=True, text=True, timeout=600)


def fuzz(harness: str, *, seconds: int | None = None, runs: int | None = None, seed: int = 1,
         work: Path | None = None) -> RunStats:
    """A fuzz run from the committed seeds (copied to a work corpus that grows), bounded by
    seconds and/or executions; crash inputs land in the work folder's artifacts/."""
    exe = build(harness)
    work = work or BUILD / f"run_{harness}"
    corpus, artifacts = work / "corpus", work / "artifacts"
    corpus.mkdir(parents=True, exist_ok=True)
    if artifacts.exists():
        shutil.rmtree(artifacts)
    artifacts.mkdir(parents=True)
    for d in seed_dirs(harness):
        for f in d.iterdir():
            if f.is_file() and not f.name.endswith(".md"):
                shutil.copy(f, corpus / f"seed_{d.name}_{f.name}")
    cmd = [str(exe), f"-seed={seed}", f"-max_len={MAX_LEN[harness]}", "-timeout=10", "-rss_limit_mb=2048",
           f"-artifact_prefix={artifacts}/", "-print_final_stats=1", str(corpus)]
    if seconds is not None:
        cmd.insert(1, f"-max_total_time={seconds}")
    if runs is not None:
        cmd.insert(1, f"-runs={runs}")
    r = subprocess.run(cmd, capture_output=True, text=True)
    return _parse(harness, r, artifacts)
