"""Where the time of a device evaluation goes, and how fast the whole test split runs.

    python benchmarks/eval_throughput.py                      # whole test split, each setting
    python benchmarks/eval_throughput.py --limit 60 --settings 2x320raw,2x320,4x320

Each setting is JOBSxCHUNK, optionally followed by ``raw``: parallel emulated boards, samples
per audio frame (320: one hop per round trip, the most the audio firmware accepts since its
receive buffers hold one hop), and ``raw`` for plain AUDIO frames only (``host/eval.py
--no-pack``; without it each frame goes as AUDIO_PACKED when that is smaller). Every
setting must give identical per-clip results (labels, outputs, instruction counts): the
speed-up may not change a number. Prints a table and writes docs/results/eval_throughput.json
with the machine's cores, the wall time per setting and the byte rate of the emulated UART.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAME = ("id", "label", "predicted", "outputs", "frames", "frontend_ticks", "network_ticks", "worst_hop_ticks")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/eval_throughput.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--settings", default="2x320raw,2x320,4x320", help="JOBSxCHUNK[raw], comma-separated")
    ap.add_argument("--limit", type=int, default=None, help="clips (default: the whole test split)")
    ap.add_argument("--port", default="qemu")
    ap.add_argument("--json", type=Path, default=REPO / "docs" / "results" / "eval_throughput.json")
    args = ap.parse_args(argv)
    rows, first = [], None
    print(f"{'jobs':>4} {'chunk':>6} {'frames':>7} {'clips':>6} {'wall s':>8} {'clips/s':>8} {'PCM kB/s per board':>19}"
          "  identical")
    for setting in args.settings.split(","):
        setting = setting.strip().lower()
        raw = setting.endswith("raw")
        try:
            jobs, chunk = (int(v) for v in setting.removesuffix("raw").split("x"))
        except ValueError:
            ap.error(f"--settings: {setting!r} is not JOBSxCHUNK or JOBSxCHUNKraw")
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "eval.json"
            cmd = [sys.executable, str(REPO / "host" / "eval.py"), "--port", args.port, "--jobs", str(jobs),
                   "--chunk", str(chunk), "--json", str(out), "--quiet"]
            if raw:
                cmd.append("--no-pack")
            if args.limit:
                cmd += ["--limit", str(args.limit)]
            t0 = time.perf_counter()
            res = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if res.returncode != 0:
                print(res.stderr[-3000:], file=sys.stderr)
                return 1
            s = json.loads(out.read_text())
        clips = {c["id"]: tuple(c[k] for k in SAME) for c in s["clips"]}
        first = first or clips
        same = clips == first
        n = len(clips)
        # PCM bytes per board-second: the samples' plain size over the time (a packed frame carries
        # more of them per byte on the line; COBS and headers left out)
        rate = n * 32000 / wall / jobs / 1000
        frames = "AUDIO" if raw else "packed"
        rows.append({"jobs": jobs, "chunk": chunk, "frames": frames, "clips": n, "wall_s": round(wall, 1), "clips_per_s": round(n / wall, 3),
                     "pcm_kB_per_s_per_board": round(rate, 1), "identical_to_first": same,
                     "accuracy": s["accuracy"], "agreement": s["agreement"]})
        print(f"{jobs:>4} {chunk:>6} {frames:>7} {n:>6} {wall:>8.1f} {n / wall:>8.2f} {rate:>19.1f}  {same}", flush=True)
    base = rows[0]["wall_s"]
    for r in rows:
        r["speedup_vs_first"] = round(base / r["wall_s"], 2)
    result = {"about": "device evaluation throughput on the emulated board (benchmarks/eval_throughput.py)",
              "command": "python benchmarks/eval_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "cpu_cores": os.cpu_count(), "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if all(r["identical_to_first"] for r in rows) else 3


if __name__ == "__main__":
    sys.exit(main())
