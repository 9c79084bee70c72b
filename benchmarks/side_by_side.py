"""Side by side with TensorFlow Lite Micro: the MLPerf Tiny int8 DS-CNN against the project's
Q-SNN on the same clips, the same features and the same measures, in one command:

    python benchmarks/side_by_side.py [--phase all|train|measure|report] [--data-root DIR]
                                      [--widths 1,0.25,0.5] [--lrs 0.002,0.005,0.01]
                                      [--seeds 0,1,2] [--epochs 40] [--callgrind-clips 3]

Installs the ``[baseline]`` extra (tensorflow-cpu, ai-edge-litert, tflite-micro) when it is
missing. Phases:

- ``train``: per width, a learning-rate search on validation at seed 0 (every rate in
  --lrs), then the other seeds at the chosen rate; the DS-CNN gets the Q-SNN default's data
  (shared train split + espeak-ng keywords, the same augmentation through the project's C
  front end, 49 x 40 features) and epoch budget (baseline/train_tf.py). Runs live in
  .cache/baseline/runs and are not repeated: an interrupted train phase resumes.
- ``measure``: each final model's int8 test accuracy (the test split read once per model)
  through LiteRT (XNNPACK, and its built-in kernels) and TFLM, whose int8 outputs are
  compared clip by clip; the TFLM arena; x86-64 instructions per inference under valgrind's
  callgrind, collected only inside the runtime's invoke (LiteRT, TFLM) or the Q-SNN's
  network steps, the front end counted once, separately. The Q-SNN rows are read from
  docs/results/kws_pareto.json and docs/results/firmware.json, so later models are picked up.
- ``report``: docs/results/benchmark.json (one row per model and runtime) and
  docs/BENCHMARKS.md (table, accuracy vs bytes and vs instructions plots, machine,
  versions, commit).

The final models are copied to benchmarks/dscnn_models/ (committed: the CI smoke test runs
them with LiteRT and TFLM on a few clips).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / ".cache" / "baseline" / "runs"
MODELS = REPO / "benchmarks" / "dscnn_models"
RESULTS = REPO / "docs" / "results"
EXTRA_MODULES = ("tensorflow", "ai_edge_litert", "tflite_micro")


def ensure_extra() -> None:
    """pip install -e '.[baseline]' when one of its packages is missing."""
    missing = [m for m in EXTRA_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        print(f"side_by_side: installing the [baseline] extra (missing: {', '.join(missing)})", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", f"{REPO}[baseline]"], check=True)


def floats(text: str) -> list[float]:
    return [float(t) for t in text.split(",") if t.strip()]


def ints(text: str) -> list[int]:
    return [int(t) for t in text.split(",") if t.strip()]


def choose_lr(grid: list[dict]) -> float:
    """The rate whose seed-0 run has the best float validation accuracy (ties: the smaller rate)."""
    best = max(grid, key=lambda r: (r["val_float"], -r["spec"]["lr"]))
    return float(best["spec"]["lr"])


def train_phase(args: argparse.Namespace) -> dict[str, dict]:
    """Run (or read back) every run; returns width label -> {"lr", "grid", "finals"}."""
    from qsnnkit.baseline import dscnn, kwsdata, train_tf

    val_feats, val_labels, _ = kwsdata.split_features(args.data_root, "val")
    loaded: dict[int, kwsdata.TrainData] = {}

    def data_for(seed: int) -> kwsdata.TrainData:
        if seed not in loaded:
            loaded.clear()  # one seed's clips at a time
            loaded[seed] = kwsdata.load_train(args.data_root, seed)
        return loaded[seed]

    def run(spec: train_tf.RunSpec) -> dict:
        out = RUNS / spec.name
        if (out / "run.json").exists():
            return json.loads((out / "run.json").read_text())
        return train_tf.train_run(spec, data_for(spec.seed), val_feats, val_labels, out)

    plan: dict[str, dict] = {}
    for w in args.widths:
        first, rest = args.seeds[0], args.seeds[1:]
        grid = [run(train_tf.RunSpec(w, lr, first, args.epochs)) for lr in args.lrs]
        lr = choose_lr(grid)
        finals = [g for g in grid if g["spec"]["lr"] == lr] + [run(train_tf.RunSpec(w, lr, s, args.epochs))
                                                               for s in rest]
        label = f"dscnn-w{dscnn.channels(w)}"
        plan[label] = {"width": w, "lr": lr, "grid": [{"lr": g["spec"]["lr"], "val_float": g["val_float"],
                                                       "val_int8": g["val_int8"]} for g in grid],
                       "finals": [f["name"] for f in finals]}
        print(f"{label}: learning rate {lr:g} (validation " +
              ", ".join(f"{g['spec']['lr']:g}: {g['val_float']:.3f}" for g in grid) + ")", flush=True)
    MODELS.mkdir(parents=True, exist_ok=True)
    for label, p in plan.items():
        for name in p["finals"]:
            (MODELS / f"{name}.tflite").write_bytes((RUNS / name / "model_int8.tflite").read_bytes())
    (RUNS.parent / "plan.json").write_text(json.dumps(plan, indent=1))
    return plan


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phase", choices=("all", "train", "measure", "report"), default="all")
    p.add_argument("--data-root", default=None, help="dataset root (default: $QSNN_DATA_ROOT, else ../shared/data)")
    p.add_argument("--widths", type=floats, default=[1.0, 0.25, 0.5], help="DS-CNN widths, trained in this order (default 1,0.25,0.5)")
    p.add_argument("--lrs", type=floats, default=[2e-3, 5e-3, 1e-2],
                   help="peak learning rates searched on validation (default 0.002,0.005,0.01)")
    p.add_argument("--seeds", type=ints, default=[0, 1, 2], help="seeds; the first is the search's (default 0,1,2)")
    p.add_argument("--epochs", type=int, default=40, help="epoch budget, the Q-SNN default's (default 40)")
    p.add_argument("--callgrind-clips", type=int, default=3,
                   help="inferences per model under callgrind (default 3; the count is per inference)")
    args = p.parse_args(argv)
    if args.epochs < 1 or not args.widths or not args.lrs or not args.seeds:
        p.error("--epochs must be >= 1 and --widths, --lrs, --seeds non-empty")
    ensure_extra()
    if args.phase in ("all", "train"):
        train_phase(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
