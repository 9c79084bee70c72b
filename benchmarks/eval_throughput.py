"""Where the time of a device evaluation goes, and how fast the whole test split runs.

    python benchmarks/eval_throughput.py                      # whole test split, each setting
    python benchmarks/eval_throughput.py --limit 60 --settings 2x320raw,2x320,4x320
    python benchmarks/eval_throughput.py --settings 2x320 --baseline cbb100d   # against older code

Each setting is JOBSxCHUNK, optionally followed by ``raw``: parallel emulated boards, samples
per audio frame (320: one hop per round trip, the most the audio firmware accepts since its
receive buffers hold one hop), and ``raw`` for plain AUDIO frames only (``host/eval.py
--no-pack``; without it each frame goes as AUDIO_PACKED when that is smaller). Every
setting must give identical per-clip results (labels, outputs, instruction counts): the
speed-up may not change a number. Prints a table and writes docs/results/eval_throughput.json
with the machine's cores, the wall time per setting and the byte rate of the emulated UART.

``--baseline REV`` first times the evaluation as the code at git revision REV did it, on this
machine: REV's tree (``git archive``, into a temporary folder, the repository untouched), its
own default model, firmware (built by its ``pio run -e qemu_m4`` when REV's host does not build
firmware itself) and host, at its default settings and the first setting's board count. Its
row is the ``baseline`` the speed-ups are taken against. Its per-clip numbers are not compared:
REV has its own model. A throughput target set against "today" is measured this way on the
machine at hand, since the emulated UART's speed depends on the host's system-call cost.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAME = ("id", "label", "predicted", "outputs", "frames", "frontend_ticks", "network_ticks", "worst_hop_ticks")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/eval_throughput.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--settings", default="2x320raw,2x320,4x320", help="JOBSxCHUNK[raw], comma-separated")
    ap.add_argument("--limit", type=int, default=None, help="clips (default: the whole test split)")
    ap.add_argument("--port", default="qemu")
    ap.add_argument("--json", type=Path, default=REPO / "docs" / "results" / "eval_throughput.json")
    ap.add_argument("--baseline", metavar="REV", default=None,
                    help="also time the evaluation of git revision REV (its code, model and firmware) on this machine")
    args = ap.parse_args(argv)
    settings: list[tuple[int, int, bool]] = []  # (boards, samples per frame, plain frames only)
    for setting in args.settings.split(","):
        setting = setting.strip().lower()
        try:
            jobs, chunk = (int(v) for v in setting.removesuffix("raw").split("x"))
        except ValueError:
            ap.error(f"--settings: {setting!r} is not JOBSxCHUNK or JOBSxCHUNKraw")
        settings.append((jobs, chunk, setting.endswith("raw")))
    rows, first = [], None
    print(f"{'jobs':>4} {'chunk':>6} {'frames':>7} {'clips':>6} {'wall s':>8} {'clips/s':>8} {'PCM kB/s per board':>19}"
          "  identical")
    baseline = None
    if args.baseline:
        baseline = time_revision(args.baseline, settings[0][0], args.limit, args.port)
        if baseline is None:
            return 1
        b = baseline
        print(f"{b['jobs']:>4} {'(rev)':>6} {b['frames']:>7} {b['clips']:>6} {b['wall_s']:>8.1f} {b['clips_per_s']:>8.2f} "
              f"{b['pcm_kB_per_s_per_board']:>19.1f}  (baseline {b['revision']})", flush=True)
    for jobs, chunk, raw in settings:
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
        if baseline is not None:
            r["speedup_vs_baseline"] = round(baseline["wall_s"] / r["wall_s"], 2)
    result: dict[str, Any] = {"about": "device evaluation throughput on the emulated board (benchmarks/eval_throughput.py)",
              "command": "python benchmarks/eval_throughput.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "cpu_cores": os.cpu_count(), "rows": rows}
    if baseline is not None:
        result["baseline"] = baseline
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if all(r["identical_to_first"] for r in rows) else 3


def time_revision(rev: str, jobs: int, limit: int | None, port: str) -> dict[str, object] | None:
    """Wall time of REV's own evaluation (its tree, default model, firmware and host) on this
    machine, or None after printing why it could not run."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", f"{rev}^{{commit}}"], check=True,
                                capture_output=True, text=True).stdout.strip()
    except subprocess.CalledProcessError as e:
        print(f"--baseline: {rev!r} is not a revision of {REPO}: {e.stderr.strip()}", file=sys.stderr)
        return None
    with tempfile.TemporaryDirectory(prefix=f"qsnn-baseline-{commit}-") as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
        # REV's own package, not this checkout's editable install: its subpackages live at the
        # tree's root as here, so link them in and run Python without site (no editable hook)
        for sub in ("host", "train", "convert", "baseline"):
            if (tree / sub).is_dir() and not (tree / "qsnnkit" / sub).exists():
                (tree / "qsnnkit" / sub).symlink_to(Path("..") / sub)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tree), *site.getsitepackages()]),
                   QSNN_MODEL_DIR=str(tree / "firmware" / "models" / "default"))
        if not (tree / "host" / "build.py").is_file():
            pio = shutil.which("pio") or shutil.which("platformio")
            if pio is None:
                print("--baseline: PlatformIO (pio) is not installed: run scripts/setup.sh", file=sys.stderr)
                return None
            res = subprocess.run([pio, "run", "-e", "qemu_m4", "-s", "-d", str(tree)], env=env, capture_output=True, text=True)
            if res.returncode != 0:
                print(f"--baseline: {commit}'s firmware did not build:\n{res.stdout[-2000:]}{res.stderr[-2000:]}", file=sys.stderr)
                return None
        out = Path(tmp) / "eval.json"
        cmd = [sys.executable, "-S", str(tree / "host" / "eval.py"), "--port", port, "--jobs", str(jobs),
               "--json", str(out), "--quiet"]
        if limit:
            cmd += ["--limit", str(limit)]
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tree)
        wall = time.perf_counter() - t0
        if res.returncode != 0:
            print(f"--baseline: {commit}'s evaluation failed:\n{res.stderr[-3000:]}", file=sys.stderr)
            return None
        s = json.loads(out.read_text())
    n = len(s["clips"]) if isinstance(s.get("clips"), list) else int(s["samples"])
    return {"revision": commit, "jobs": jobs, "frames": "AUDIO", "clips": n, "wall_s": round(wall, 1),
            "clips_per_s": round(n / wall, 3), "pcm_kB_per_s_per_board": round(n * 32000 / wall / jobs / 1000, 1),
            "accuracy": s["accuracy"], "agreement": s["agreement"], "model_hash": s.get("model_hash"),
            "command": f"python host/eval.py --port {port} --jobs {jobs}" + (f" --limit {limit}" if limit else "")}


if __name__ == "__main__":
    sys.exit(main())
