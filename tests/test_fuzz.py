"""The firmware's input side under libFuzzer with AddressSanitizer and UBSan (tests/fuzz/):
the frame receiver, the message handlers with their session state (the real app.c, front end
and default model), and the audio front end. CI replays the committed seeds and every
regression input, then fuzzes each harness for a bounded time; the long runs are
benchmarks/fuzz.py (docs/results/fuzz.json)."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import fuzz_support as fz

#: Seconds of fuzzing per harness in CI. The harnesses fuzz side by side, one per core, so
#: the five take about a minute on CI's two cores and each gets its full 20 s of a core.
CI_SECONDS = 20


@pytest.mark.parametrize("harness", sorted(fz.HARNESSES))
def test_seeds_and_regressions_replay_clean(harness: str) -> None:
    dirs = fz.seed_dirs(harness)
    assert dirs and any(dirs[0].iterdir()), f"no committed seed corpus for {harness}"
    r = fz.replay(harness, dirs)
    assert r.returncode == 0, r.stderr[-3000:]
    n = sum(1 for d in dirs for f in d.iterdir() if f.is_file() and not f.name.endswith(".md"))
    assert r.stderr.count("Executed ") == n, r.stderr[-3000:]


@pytest.fixture(scope="module")
def bounded_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, fz.RunStats]:
    """Every harness's bounded run, as many at once as there are cores (each run is one
    single-threaded libFuzzer process, bounded by wall time)."""
    names = sorted(fz.HARNESSES)
    for h in names:  # build first, one at a time, so that no run's time goes to a compiler
        fz.build(h)
    work = tmp_path_factory.mktemp("fuzz")
    with ThreadPoolExecutor(max_workers=max(1, min(len(names), os.cpu_count() or 1))) as pool:
        runs = pool.map(lambda h: fz.fuzz(h, seconds=CI_SECONDS, work=work / h), names)
        return dict(zip(names, runs))


@pytest.mark.parametrize("harness", sorted(fz.HARNESSES))
def test_bounded_fuzz_run_finds_nothing(harness: str, bounded_runs: dict[str, fz.RunStats]) -> None:
    s = bounded_runs[harness]
    assert s.ok, f"{harness}: crash inputs {s.crashes}\n{s.log_tail}"
    assert s.executions > 1000 and s.edges_covered > 0, s.log_tail


def test_harness_checks_can_fail(tmp_path: Path) -> None:
    """The harnesses are not vacuous: a receiver that accepts a frame with a wrong CRC (a
    mutant of proto.c) is caught by the frame harness's round-trip check on the seeds."""
    src = (fz.FW / "src" / "proto.c").read_text()
    assert "return (int)ERR_BAD_CRC;" in src
    mutant = tmp_path / "proto.c"
    mutant.write_text(src.replace("return (int)ERR_BAD_CRC;", ";"))
    saved = fz.HARNESSES["frame"]
    try:
        fz.HARNESSES["frame"] = [fz.FUZZ_DIR / "fuzz_frame.c", mutant]
        r = fz.replay("frame", fz.seed_dirs("frame"))
    finally:
        fz.HARNESSES["frame"] = saved
    assert r.returncode != 0 and "deadly signal" in r.stderr


def test_session_harness_catches_a_request_done_twice(tmp_path: Path) -> None:
    """A device without the re-send cache (a mutant of app.c that handles every intact frame
    afresh) processes a re-sent AUDIO twice: the session harness's cache check catches it on
    the seed that re-sends each request of a clip."""
    src = (fz.FW / "src" / "app.c").read_text()
    guard = "if (last.valid && f.type == last.type && f.seq == last.seq && f.crc == last.crc) {"
    assert guard in src
    mutant = tmp_path / "app.c"
    mutant.write_text(src.replace(guard, "if (0) {"))
    saved = fz.HARNESSES["session"]
    try:
        fz.HARNESSES["session"] = [mutant if Path(f).name == "app.c" else f for f in saved]
        r = fz.replay("session", [fz.seed_dirs("session")[0] / "clip_resent"])
    finally:
        fz.HARNESSES["session"] = saved
    assert r.returncode != 0 and "deadly signal" in r.stderr, r.stderr[-2000:]
