"""Reports and comparisons of evaluations (host/report.py through `qsnn-eval report|compare`),
on a summary with the layout `host/eval.py --json` writes."""
from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from qsnnkit.host import report
from qsnnkit.paths import REPO_ROOT

EVAL = str(REPO_ROOT / "host" / "eval.py")


def _summary() -> dict:
    """Three classes, four clips: one wrong answer, one disagreement with the reference."""
    clips: list[dict[str, Any]] = []
    for i, (label, pred, ref_pred, agree) in enumerate([(0, 0, 0, True), (1, 1, 1, True), (1, 2, 2, True),
                                                         (2, 2, 1, False)]):
        out = [0, 0, 0]
        out[pred] = 5
        ref = list(out) if agree else [0, 5, 0]
        clips.append({"id": f"c{i}.wav", "label": label, "predicted": pred, "reference_predicted": ref_pred,
                      "outputs": out, "reference_outputs": ref, "agreement": agree, "frames": 49,
                      "frontend_ticks": 1000 + i, "network_ticks": 5000 + 10 * i, "worst_hop_ticks": 300 + i,
                      "stack_peak_bytes": 900, "wall_s": 1.0})
    conf = [[0] * 3 for _ in range(3)]
    for c in clips:
        conf[c["label"]][c["predicted"]] += 1
    lat = {"median": 6000.0, "p95": 6100.0, "mean": 6000.0}
    return {"samples": 4, "accuracy": 0.75, "reference_accuracy": 0.5, "agreement": 0.75, "target": "qemu:x",
            "split": "test", "model_hash": "00", "classes": ["yes", "no", "up"], "confusion": conf, "clips": clips,
            "latency": {"unit": "cycles", "counter_hz": 1_000_000, "frontend": lat, "network": lat, "total": lat,
                        "worst_hop": 303},
            "ram_bytes": {"static": 4000, "stack_peak": 900, "stack_reserved": 2048, "arena": 400},
            "flash_bytes": 40000, "model_bytes": 30000}


def test_per_class_and_markdown_with_plots(tmp_path: Path) -> None:
    s = _summary()
    rows = report.per_class(s)
    assert [(r["class"], r["clips"], r["correct"]) for r in rows] == [("yes", 1, 1), ("no", 2, 1), ("up", 1, 1)]
    path = tmp_path / "run.json"
    path.write_text(json.dumps(s))
    res = subprocess.run([sys.executable, EVAL, "report", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "no      2        1     0.500" in res.stdout
    assert "slowest hop: 303 cycles (0.30 ms of a 20 ms hop)" in res.stdout  # 1 MHz clock
    md = (tmp_path / "run.md").read_text()
    assert "| c3.wav | [0, 0, 5] | [0, 5, 0] |" in md  # the disagreeing clip with both outputs
    assert "| flash: of which the model (packed weights and tables) | 30,000 |" in md
    for plot in ("run-confusion.png", "run-latency.png"):
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_lists_changed_clips_and_class_deltas(tmp_path: Path) -> None:
    a = _summary()
    b = copy.deepcopy(a)
    b["clips"][2]["predicted"] = 1  # the wrong clip is now right
    b["clips"][0]["predicted"] = 2  # a right one now wrong
    b["confusion"] = [[0, 0, 1], [0, 2, 0], [0, 0, 1]]
    text, changed = report.compare(a, b, "a", "b")
    assert {c["id"] for c in changed} == {"c0.wav", "c2.wav"}
    assert "2 changed: 1 now right, 1 now wrong" in text
    assert "c0.wav: yes: yes -> up" in text
    assert "         yes        1.000        0.000   -1.000" in text
    pa, pb = tmp_path / "a.json", tmp_path / "b.json"
    pa.write_text(json.dumps(a))
    pb.write_text(json.dumps(b))
    res = subprocess.run([sys.executable, EVAL, "compare", str(pa), str(pb), "--json", str(tmp_path / "d.json")],
                         capture_output=True, text=True)
    assert res.returncode == 0 and "2 changed" in res.stdout, res.stderr
    assert len(json.loads((tmp_path / "d.json").read_text())["changed"]) == 2


def test_report_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text('{"samples": 3}')
    res = subprocess.run([sys.executable, EVAL, "report", str(bad)], capture_output=True, text=True)
    assert res.returncode == 1 and "not a qsnn-eval --json report" in res.stderr
    res = subprocess.run([sys.executable, EVAL, "compare", str(bad), str(tmp_path / "missing.json")],
                         capture_output=True, text=True)
    assert res.returncode == 1 and "qsnn-eval compare: error:" in res.stderr
