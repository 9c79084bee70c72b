"""A host people can trust over a faulty line (docs/protocol.md, "Exactly once").

- The faulty serial peer (host/relay.py) itself: counts, seeded positions, clean pass-through.
- host/eval.py (the real CLI) through that peer at 0.1% faulty bytes each way, with board
  resets mid-clip, on 100 test clips of the emulated Cortex-M4: every clip counted exactly
  once, and per clip the label, the device's outputs and its instruction counts identical
  to a clean run; each fault kind fired at least 10 times in each direction.
- Bounded retries end in an error naming the clip.
- ``--resume``: an interrupted run, resumed, equals an uninterrupted one; a log of another
  run is refused.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qsnnkit.host.relay import DIRECTIONS, KINDS, FaultyRelay
from qsnnkit.paths import REPO_ROOT

sys.path.insert(0, str(Path(__file__).resolve().parent))
import firmware_support as fw  # noqa: E402
from conftest import CLEAN_M4_CLIPS, EvalRun, run_eval  # noqa: E402

#: clips through the faulty line in CI: the host issue's target, 100. Audio goes packed
#: (AUDIO_PACKED, about half the bytes), so 100 clips take about the time 60 took before, and
#: the device-to-host direction, which carries the same ACKs per clip either way, needs that
#: many to see every fault kind at least 10 times at 0.1% per byte (60 gave 9 in one kind).
N_FAULTY = CLEAN_M4_CLIPS
#: compared per clip between runs: what the device computed and counted
SAME = ("id", "label", "predicted", "outputs", "frames", "frontend_ticks", "network_ticks", "worst_hop_ticks")


# -- the faulty peer ------------------------------------------------------------------------
def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    a = socket.create_connection(srv.getsockname())
    b, _ = srv.accept()
    srv.close()
    return a, b


def _through(relay: FaultyRelay, data: bytes, device_end: socket.socket) -> bytes:
    """Send ``data`` host -> device through the relay; what the device end received."""
    host = socket.create_connection(("127.0.0.1", relay.port))
    host.sendall(data)
    host.shutdown(socket.SHUT_WR)
    got = b""
    device_end.settimeout(10)
    while True:
        chunk = device_end.recv(65536)
        if not chunk:
            break
        got += chunk
    host.close()
    return got


def test_relay_passes_bytes_unchanged_at_rate_zero() -> None:
    dev_relay_side, dev_end = _tcp_pair()
    data = bytes(range(256)) * 200
    with FaultyRelay(dev_relay_side, rate=0.0, seed=3) as r:
        assert _through(r, data, dev_end) == data
        assert sum(r.counts.values()) == 0


def test_relay_injects_every_kind_at_the_seeded_positions() -> None:
    data = bytes(range(1, 256)) * 400  # no zero bytes: a corrupted byte stands out
    outs, counts = [], []
    for _ in range(2):
        dev_relay_side, dev_end = _tcp_pair()
        with FaultyRelay(dev_relay_side, rate=0.01, seed=7, max_delay=0.001) as r:
            outs.append(_through(r, data, dev_end))
            counts.append(dict(r.counts))
    assert outs[0] == outs[1] and counts[0] == counts[1]  # same seed, same faults
    c = counts[0]
    for kind in KINDS:
        assert c.get(f"to_device.{kind}", 0) >= 150, c  # ~255 expected each
    # the length changes by exactly duplicates - drops
    assert len(outs[0]) == len(data) + c["to_device.duplicate"] - c["to_device.drop"]
    dev_relay_side, dev_end = _tcp_pair()
    with FaultyRelay(dev_relay_side, rate=0.01, seed=8, max_delay=0.001) as r:
        assert _through(r, data, dev_end) != outs[0]


def test_relay_refuses_bad_rates() -> None:
    a, b = _tcp_pair()
    with pytest.raises(ValueError, match="fault rates"):
        FaultyRelay(a, rate=1.5)
    with pytest.raises(ValueError, match="reset callback"):
        FaultyRelay(a, rate=0.0, reset_rate=0.1)
    a.close()
    b.close()


# -- the evaluator through it --------------------------------------------------------------
def _eval(tmp: Path, name: str, *extra: str, limit: int, check: bool = True) -> tuple[dict, subprocess.CompletedProcess]:
    s, res = run_eval(tmp / f"{name}.json", *extra, limit=limit)
    if check:
        assert res.returncode == 0, f"eval failed ({res.returncode}):\n{res.stdout}\n{res.stderr[-4000:]}"
    return s, res


def _per_clip(summary: dict) -> dict[str, tuple]:
    rows = summary["clips"]
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "a clip counted twice"
    return {r["id"]: tuple(r[k] for k in SAME) for r in rows}


@pytest.fixture(scope="module")
def clean_run(clean_m4_eval: EvalRun) -> dict:
    s = clean_m4_eval.summary
    assert s["agreement"] == 1.0 and s["samples"] == N_FAULTY
    assert sum(s["link"]["injected"].values()) == 0
    return s


def test_faulty_line_gives_the_clean_run_clip_for_clip(clean_run: dict, tmp_path: Path) -> None:
    # at 8e-6 resets per byte about one clip attempt in three is cut by a reset (a clip and its
    # re-sends are ~50 kB), so a clip may need several attempts: more than the default 4 retries
    s, res = _eval(tmp_path, "faulty", "--fault-rate", "0.001", "--fault-reset-rate", "8e-6",
                   "--fault-seed", "1", "--clip-retries", "12", limit=N_FAULTY)
    assert s["samples"] == N_FAULTY and s["agreement"] == 1.0
    clean, faulty = _per_clip(clean_run), _per_clip(s)
    assert set(faulty) == set(clean)
    for cid in clean:
        assert faulty[cid] == clean[cid], f"{cid}: faulty run {faulty[cid]} != clean run {clean[cid]}"
    link = s["link"]
    by_dir = link["injected_by_direction"]
    for d in DIRECTIONS:
        for kind in KINDS:
            assert by_dir[d][kind] >= 10, f"{d}.{kind} fired only {by_dir[d][kind]} times: {by_dir}"
    assert link["injected"]["reset"] >= 10, link
    assert link["events"].get("clip_restart", 0) >= 10, link  # every reset mid-clip restarted its clip
    assert "link:" in res.stdout
    # the report beside the JSON, and the two runs side by side: nothing changed
    md = (tmp_path / "faulty.md").read_text()
    assert "## Per class" in md and "faults injected" in md and "![faulty-confusion](faulty-confusion.png)" in md
    assert (tmp_path / "faulty-confusion.png").stat().st_size > 1000
    (tmp_path / "clean.json").write_text(json.dumps(clean_run))
    cmp = subprocess.run([sys.executable, str(REPO_ROOT / "host" / "eval.py"), "compare", str(tmp_path / "clean.json"),
                          str(tmp_path / "faulty.json")], capture_output=True, text=True)
    assert cmp.returncode == 0, cmp.stderr
    assert f"{N_FAULTY} clips in both runs (0 only in clean, 0 only in faulty); 0 changed" in cmp.stdout, cmp.stdout


def test_a_hopeless_line_ends_in_an_error_naming_the_clip(tmp_path: Path) -> None:
    s, res = _eval(tmp_path, "hopeless", "--fault-rate", "0.01", "--retries", "2", "--clip-retries", "1",
                   "--timeout", "0.5", limit=2, check=False)
    assert res.returncode == 1, res.stderr
    assert "qsnn-eval: error:" in res.stderr and ".wav: given up after 2 attempts" in res.stderr, res.stderr
    assert re.search(r"AUDIO(_PACKED)? \(seq \d+\)", res.stderr), res.stderr


def _wait_for_lines(path: Path, n: int, proc: subprocess.Popen, timeout: float = 300) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if path.is_file() and path.read_bytes().count(b"\n") >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"eval ended early ({proc.returncode}): {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {n} lines")


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    n = 12
    whole, _ = _eval(tmp_path, "whole", limit=n)
    model_dir = fw.model_dir_for_tests()
    out = tmp_path / "cut.json"
    cmd = [sys.executable, str(REPO_ROOT / "host" / "eval.py"), "--port", "qemu", "--elf",
           str(fw.built_firmware(model_dir)), "--model", str(model_dir / "model.npz"), "--split", "test",
           "--limit", str(n), "--jobs", "2", "--json", str(out), "--quiet"]
    # A shell's background job (`cmd &` without job control) starts with SIGINT ignored, and a
    # child inherits that: Python then installs no Ctrl-C handler and the run cannot be
    # interrupted. The user's Ctrl-C reaches a foreground process, so the child gets the default.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    log = out.with_suffix(".jsonl")
    _wait_for_lines(log, 1 + 4, proc)  # header and 4 clips
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err
    lines = log.read_bytes().splitlines()
    done = len(lines) - 1
    assert 4 <= done < n, done
    # a line cut short by the interruption: that clip is run again, not lost
    log.write_bytes(log.read_bytes()[:-7])

    bad, res = _eval(tmp_path, "cut", "--resume", "--split", "val", limit=n, check=False)
    assert res.returncode == 1 and "--resume: the log's split is 'test'" in res.stderr, res.stderr

    resumed, res = _eval(tmp_path, "cut", "--resume", limit=n)
    assert f"{done - 1} clips done" in res.stderr and "cut short" in res.stderr, res.stderr
    assert resumed["resumed_clips"] == done - 1
    assert _per_clip(resumed) == _per_clip(whole)
    assert resumed["confusion"] == whole["confusion"] and resumed["accuracy"] == whole["accuracy"]
    rows = [json.loads(x) for x in log.read_bytes().splitlines()]
    assert [r["kind"] for r in rows].count("run") == 1 and len(rows) == 1 + n
