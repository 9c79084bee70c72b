"""Long fuzz runs of the firmware's input side (tests/fuzz/: frame receiver, message handlers
with session state, audio front end), each built with libFuzzer + ASan + UBSan, started from
the committed seeds and regression inputs; prints a table and writes one row per harness to
docs/results/fuzz.json (executions, seconds, edges covered of the instrumented total,
features, corpus size, crashes, command, commit):

    python benchmarks/fuzz.py [--harness frame,session,frontend] [--runs 10000000] [--seconds S]
                              [--json docs/results/fuzz.json]

A crash input is left in build/fuzz/run_<harness>/artifacts/ and the run exits 1: copy it to
tests/fuzz/regressions/<harness>/ with a line in its README, and fix the firmware.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import fuzz_support as fz  # noqa: E402

from qsnnkit.train.sweep import git_commit  # noqa: E402


def run_workers(harness: str, args: argparse.Namespace) -> tuple["fz.RunStats", list["fz.RunStats"]]:
    """args.workers fuzz runs of one harness in parallel; their combined stats and each one's."""
    if args.workers == 1:
        s = fz.fuzz(harness, seconds=args.seconds, runs=args.runs or None, seed=args.seed)
        return s, [s]
    from concurrent.futures import ThreadPoolExecutor

    runs = -(-args.runs // args.workers) if args.runs else None
    with ThreadPoolExecutor(args.workers) as pool:
        futs = [pool.submit(fz.fuzz, harness, seconds=args.seconds, runs=runs, seed=args.seed + k,
                            work=fz.BUILD / f"run_{harness}_w{k}") for k in range(args.workers)]
        ws = [f.result() for f in futs]
    total = fz.RunStats(harness, max(w.returncode for w in ws), sum(w.executions for w in ws),
                        max(w.seconds for w in ws), max(w.edges_covered for w in ws), ws[0].edges_total,
                        max(w.features for w in ws), max(w.corpus_inputs for w in ws),
                        [c for w in ws for c in w.crashes], "\n".join(w.log_tail for w in ws if not w.ok))
    return total, ws


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/fuzz.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--harness", default=",".join(sorted(fz.HARNESSES)), help="comma-separated harnesses")
    ap.add_argument("--runs", type=int, default=10_000_000, help="executions per harness (0: no limit)")
    ap.add_argument("--seconds", type=int, default=None, help="time limit per harness")
    ap.add_argument("--seed", type=int, default=1, help="libFuzzer's random seed (worker k uses seed + k)")
    ap.add_argument("--workers", type=int, default=1,
                    help="independent libFuzzer processes per harness, in parallel (each with its own seed and "
                         "work corpus, grown from the same seeds); --runs is split between them and their "
                         "executions are summed")
    ap.add_argument("--json", type=Path, default=REPO / "docs" / "results" / "fuzz.json",
                    help="results file (rows of other harnesses are kept)")
    args = ap.parse_args(argv)
    if args.workers < 1:
        ap.error("--workers must be at least 1")
    names = [h for h in args.harness.split(",") if h]
    bad = [h for h in names if h not in fz.HARNESSES]
    if bad:
        ap.error(f"unknown harness(es) {bad}; choose from {sorted(fz.HARNESSES)}")
    command = "python benchmarks/fuzz.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    rows = {}
    if args.json.exists():
        rows = {r["harness"]: r for r in json.loads(args.json.read_text()).get("rows", [])}
    commit = git_commit()  # what is built and fuzzed: the tree as the run starts, not as it ends
    failed = False
    print(f"{'harness':10} {'executions':>12} {'seconds':>8} {'exec/s':>8} {'edges':>11} {'features':>9} {'corpus':>7}  crashes")
    for h in names:
        s, per_worker = run_workers(h, args)
        rate = s.executions / s.seconds if s.seconds else 0.0
        print(f"{h:10} {s.executions:>12,} {s.seconds:>8.0f} {rate:>8,.0f} {s.edges_covered:>5}/{s.edges_total:<5} "
              f"{s.features:>9} {s.corpus_inputs:>7}  {len(s.crashes)}", flush=True)
        if not s.ok:
            failed = True
            print(f"  {h}: returncode {s.returncode}, crash inputs {s.crashes}\n{s.log_tail}", file=sys.stderr)
        rows[h] = {"harness": h, "executions": s.executions, "seconds": s.seconds, "edges_covered": s.edges_covered,
                   "edges_total": s.edges_total, "features": s.features, "corpus_inputs": s.corpus_inputs,
                   "crashes": len(s.crashes), "ok": s.ok, "sanitizers": "address,undefined (no recover)",
                   "engine": "libFuzzer (clang 14)", "max_len": fz.MAX_LEN[h], "seed": args.seed,
                   "command": command, "commit": commit}
        if args.workers > 1:
            rows[h]["seed"] = [args.seed + k for k in range(args.workers)]
            rows[h]["workers"] = [{"seed": args.seed + k, "executions": w.executions, "seconds": w.seconds,
                                   "edges_covered": w.edges_covered, "features": w.features,
                                   "corpus_inputs": w.corpus_inputs, "crashes": len(w.crashes)}
                                  for k, w in enumerate(per_worker)]
            rows[h]["note"] = (f"{args.workers} libFuzzer processes in parallel, seeds {args.seed}.."
                               f"{args.seed + args.workers - 1}, each from the committed seeds with its own work corpus; "
                               "executions and crashes summed, seconds the longest, edges/features/corpus the largest "
                               "of one worker")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    if args.json.exists():  # merge with rows another run wrote meanwhile (harnesses run in parallel)
        rows = {r["harness"]: r for r in json.loads(args.json.read_text()).get("rows", [])} | {h: rows[h] for h in names}
    args.json.write_text(json.dumps({"about": "fuzz runs of the firmware's input side (benchmarks/fuzz.py)",
                                     "rows": [rows[k] for k in sorted(rows)]}, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
