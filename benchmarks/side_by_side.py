"""Side by side with TensorFlow Lite Micro: the MLPerf Tiny int8 DS-CNN against the project's
Q-SNN on the same clips, the same features and the same measures, in one command:

    python benchmarks/side_by_side.py [--phase all|train|report] [--data-root DIR]
                                      [--widths 1,0.25,0.5] [--lrs 0.002,0.005,0.01]
                                      [--seeds 0,1,2] [--epochs 40] [--callgrind-clips 5]
                                      [--qsnn-model firmware/models/default]

Installs the ``[baseline]`` extra (tensorflow-cpu, ai-edge-litert, tflite-micro) when it is
missing. Phases:

- ``train``: per width, a learning-rate search on validation at seed 0 (every rate in
  --lrs), then the other seeds at the chosen rate; the DS-CNN gets the Q-SNN default's data
  (shared train split + espeak-ng keywords, the same augmentation through the project's C
  front end, 49 x 40 features) and epoch budget (baseline/train_tf.py). Runs live in
  .cache/baseline/runs and are not repeated: an interrupted train phase resumes.
- ``report`` (after ``train`` in ``all``; alone, on the runs finished so far, leaving out a
  width whose search is unfinished): measures each final model's int8 test accuracy (the test split read once per model)
  through LiteRT (XNNPACK, and its built-in kernels) and TFLM, whose int8 outputs are
  compared clip by clip; the TFLM arena; x86-64 instructions per inference under valgrind's
  callgrind, collected only inside the runtime's invoke (LiteRT, TFLM) or the Q-SNN's
  network steps, the front end counted once, separately (cached in .cache/baseline/measure
  by model hash). The Q-SNN rows are read from docs/results/kws_pareto.json and
  docs/results/firmware.json, so later models are picked up. Writes
  docs/results/benchmark.json (one row per model and runtime) and docs/BENCHMARKS.md (table,
  accuracy vs bytes and vs instructions plots, machine, versions, commit).

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


def plan_runs(args: argparse.Namespace, train: bool) -> dict[str, dict]:
    """Width label -> {"width", "lr", "grid", "finals", ...}. With train, runs what is missing;
    without, only reads finished runs: a width whose search is unfinished is left out, and its
    finals are the seeds finished so far."""
    from qsnnkit.baseline import dscnn, kwsdata, train_tf

    val: tuple | None = None
    loaded: dict[int, kwsdata.TrainData] = {}

    def run(spec: train_tf.RunSpec) -> dict | None:
        nonlocal val
        out = RUNS / spec.name
        if (out / "run.json").exists():
            return json.loads((out / "run.json").read_text())
        if not train:
            return None
        if val is None:
            val = kwsdata.split_features(args.data_root, "val")[:2]
        if spec.seed not in loaded:
            loaded.clear()  # one seed's clips at a time
            loaded[spec.seed] = kwsdata.load_train(args.data_root, spec.seed)
        return train_tf.train_run(spec, loaded[spec.seed], val[0], val[1], out)

    plan: dict[str, dict] = {}
    for w in args.widths:
        label = f"dscnn-w{dscnn.channels(w)}"
        first, rest = args.seeds[0], args.seeds[1:]
        got = [run(train_tf.RunSpec(w, lr, first, args.epochs)) for lr in args.lrs]
        grid = [g for g in got if g is not None]
        if len(grid) < len(got):
            print(f"{label}: learning-rate search unfinished ({len(grid)} of {len(got)} runs): left out", flush=True)
            continue
        lr = choose_lr(grid)
        finals = [g for g in grid if g["spec"]["lr"] == lr]
        finals += [r for r in (run(train_tf.RunSpec(w, lr, s, args.epochs)) for s in rest) if r is not None]
        plan[label] = {"width": w, "lr": lr, "epochs": args.epochs,
                       "grid": [{"lr": g["spec"]["lr"], "val_float": g["val_float"], "val_int8": g["val_int8"],
                                 "best_epoch": g["best_epoch"], "seconds": g["seconds"]} for g in grid],
                       "finals": [f["name"] for f in finals], "final_val": [f["val_float"] for f in finals]}
        print(f"{label}: learning rate {lr:g} (validation "
              + ", ".join(f"{g['spec']['lr']:g}: {g['val_float']:.3f}" for g in grid)
              + f"), {len(finals)} of {len(args.seeds)} seeds", flush=True)
    MODELS.mkdir(parents=True, exist_ok=True)
    for p in plan.values():
        for name in p["finals"]:
            (MODELS / f"{name}.tflite").write_bytes((RUNS / name / "model_int8.tflite").read_bytes())
    return plan


def measure_phase(args: argparse.Namespace, plan: dict[str, dict]) -> tuple[dict[str, dict], dict]:
    """Every final DS-CNN through the three runtimes on the whole test split; callgrind on the
    first seed's model of each width and on the deployed Q-SNN, on the same clips."""
    from qsnnkit.baseline import kwsdata, measure

    feats, labels, pcm = kwsdata.split_features(args.data_root, "test")
    n = args.callgrind_clips + 1  # + the warm-up
    cg_feats, cg_pcm = feats[:n], pcm[:n]
    measures: dict[str, dict] = {}
    for label, p in plan.items():
        for i, name in enumerate(p["finals"]):
            print(f"measuring {name}" + (" (+ callgrind)" if i == 0 else ""), flush=True)
            measures[name] = measure.dscnn(MODELS / f"{name}.tflite", feats, labels, cg_feats, count_x86=i == 0)
    print(f"measuring the Q-SNN in {args.qsnn_model} (callgrind)", flush=True)
    qm = measure.qsnn(Path(args.qsnn_model), cg_feats, cg_pcm)
    return measures, qm


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("tensorflow-cpu", "keras", "ai-edge-litert", "tflite-micro", "numpy", "torch", "matplotlib"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    for tool, cmd in (("gcc", ["gcc", "-dumpfullversion"]), ("valgrind", ["valgrind", "--version"])):
        try:
            out[tool] = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            out[tool] = "not found"
    return out


def report_phase(args: argparse.Namespace, plan: dict[str, dict], measures: dict[str, dict], qm: dict) -> None:
    from qsnnkit.baseline import dscnn, report
    from qsnnkit.train.sweep import git_commit

    commit = git_commit()
    command = "python benchmarks/side_by_side.py" + (f" {' '.join(args.argv)}" if args.argv else "")
    macs = {label: dscnn.macs(p["width"]) for label, p in plan.items()}
    pending = {label: p for label, p in plan.items() if len(p["finals"]) < len(args.seeds)}
    for label, p in pending.items():  # the results schema asks for every seed: reported when all are in
        print(f"{label}: {len(p['finals'])} of {len(args.seeds)} seeds finished: left out of the table", flush=True)
    plan = {label: p for label, p in plan.items() if label not in pending}
    rows = (report.qsnn_rows(RESULTS, Path(args.qsnn_model), qm, command, commit)
            + report.dscnn_rows(plan, measures, macs, command, commit)
            + report.cited_rows(command, commit))
    doc = {"rows": rows, "frontend_instructions_x86": qm["frontend_x86"],
           "callgrind": {"inferences": qm["inferences"], "valgrind": qm["valgrind"],
                         "functions": {**qm["functions"], "litert": "tflite::Subgraph::Invoke()",
                                       "tflm": "tflite::micro::MicroInterpreter::Invoke()"}},
           "energy_model": report.ENERGY, "machine": report.machine(), "versions": versions(),
           "plan": plan, "command": command, "commit": commit}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "benchmark.json").write_text(json.dumps(doc, indent=1) + "\n")
    pngs = report.plots(rows, REPO / "docs")
    (REPO / "docs" / "BENCHMARKS.md").write_text(markdown(doc, pngs))
    print(report.table(rows))
    print(f"wrote {RESULTS / 'benchmark.json'} and docs/BENCHMARKS.md", flush=True)


def markdown(doc: dict, pngs: list[Path]) -> str:
    from qsnnkit.baseline import report

    rows = doc["rows"]
    v = doc["versions"]
    m = doc["machine"]
    e = doc["energy_model"]
    lr_lines = []
    for label, p in doc["plan"].items():
        grid = ", ".join(f"{g['lr']:g}: {100 * g['val_float']:.1f}% float / {100 * g['val_int8']:.1f}% int8"
                         for g in p["grid"])
        lr_lines.append(f"- {label}: validation at seed 0 by peak rate ({grid}); chosen {p['lr']:g}, "
                        f"final seeds: {len(p['finals'])}")
    agree = [f"- {r['model']}, {r['runtime']}: int8 outputs identical to TFLM on "
             f"{', '.join(f'{100 * a:.1f}%' for a in r['outputs_equal_tflm'])} of the test clips "
             f"({', '.join(str(d) for d in r['max_abs_diff_tflm'])}), the same predicted class on "
             f"{', '.join(f'{100 * a:.1f}%' for a in r['predictions_equal_tflm'])} (one figure per seed)"
             for r in rows if r["kind"] == "dscnn-int8" and r["source"] == "measured" and "litert" in r["runtime"]]
    plots = "\n".join(f"![{p.stem}]({p.name})" for p in pngs)
    full = [r for r in rows if r["model"] == "dscnn-w64" and r["source"] == "measured"]
    cmsis = [r for r in rows if r["source"] == "cited" and "cmsis" in r["runtime"]]
    scaled = (f"{cmsis[0]['instructions_cortex_m'] * full[0]['ops'] / cmsis[0]['ops'] / 1e6:.1f} M"
              if full and cmsis else "(no full-width model measured yet)")
    return f"""# Side by side: the Q-SNN and the int8 DS-CNN (TensorFlow Lite Micro)

Written by `{doc['command']}` at commit `{doc['commit']}`; machine-readable in
[results/benchmark.json](results/benchmark.json). Do not edit by hand: re-run the command.

**Machine.** {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['system']}.
**Versions.** TensorFlow {v['tensorflow-cpu']} (Keras {v['keras']}), ai-edge-litert {v['ai-edge-litert']},
tflite-micro {v['tflite-micro']}, NumPy {v['numpy']}, PyTorch {v['torch']}, GCC {v['gcc']}, {v['valgrind']}.

## Table

{report.table(rows)}

Accuracy is on the shared test split (372 clips, speakers unseen in training; one standard error
is about 2 points), each final model read once; `std` is over seeds. Bytes: the Q-SNN's packed
weights and parameters (what the firmware stores), the DS-CNN's `.tflite` flatbuffer. RAM: the
TFLM arena its interpreter reports after an inference (tensors only; the application's own
buffers are extra), the deployed Q-SNN's whole firmware (static RAM + painted stack peak), the
recipe rows' network state. Ops: the DS-CNN's multiply-accumulates, the Q-SNN's synaptic
operations (measured on the test split). x86-64 instructions: valgrind's callgrind, collected only
inside the inference call (LiteRT `{doc['callgrind']['functions']['litert']}`, TFLM
`{doc['callgrind']['functions']['tflm']}`, the Q-SNN's 49 `qsnn_step` calls of a clip in
`{doc['callgrind']['functions']['network']}`, built with the core's own `-std=c99 -O2` for
plain x86-64), mean over the first {doc['callgrind']['inferences']} test clips after a warm-up. The
front end both networks read is counted once, apart: **{doc['frontend_instructions_x86'] / 1e6:.2f} M
x86-64 instructions per clip** (`qsnn_fe_clip`). Cortex-M4 instructions: QEMU `netduinoplus2`,
`-icount shift=0` (the Q-SNN's from docs/results/firmware.json, the whole test split, median;
the DS-CNN's cited, see below). Energy per inference on the M4 (network only) = instructions /
{e['f_hz'] / 1e6:.0f} MHz x {e['vdd_v']} V x {1000 * e['idd_a']:.0f} mA: {e['source']}. A floor:
QEMU counts instructions, and flash wait states and stalls add cycles on the chip.

## What differs between the rows, on purpose and not

- **Input.** Every measured row reads the project's own integer front end (49 frames x 40
  log-mel bands, uint8). The DS-CNN takes them as int8 `feature - 128` at scale 1/64, exact. On
  40 bands its first conv leaves a 25 x 20 map, so it needs about four times the MACs of the
  MLPerf original on 49 x 10 MFCC.
- **Cortex-M figures for the 49 x 40 DS-CNN** are not in the table (unknown: TFLM cannot be
  built for Cortex-M offline here). Scaled from the cited CMSIS-NN count by MACs, the full-width
  model would need about {scaled} instructions per inference on the M4: an estimate, not a
  measurement.
- **Cited rows** (`source: cited`) are the MLPerf Tiny DS-CNN on its own 49 x 10 MFCC input,
  built and run on the same emulator as this project's firmware (QEMU `netduinoplus2`,
  `-icount shift=0`, GCC 12.2 `-O2`): TFLM with CMSIS-NN and with reference kernels. TFLM
  cannot be built for Cortex-M offline here, so these are not re-measured by this command.
  Their accuracy (84.4%) was measured on this split's training clips with MFCC features and no
  synthetic speech.
- **Training data.** The measured DS-CNNs get exactly the Q-SNN default's data: the shared train
  split plus the 1,100 espeak-ng keywords, each epoch perturbed by the same augmentation (speed,
  volume, shift, noise, spectral masks) through the same C front end, and the same 40-epoch
  budget; Adam with L2 1e-4 (MLPerf's recipe) under a one-cycle-like schedule, batch 64; best
  validation epoch kept; int8 by full-integer post-training quantisation on 512 training clips.
- **Learning rate**, searched on validation for each width:
{chr(10).join(lr_lines)}

## Do the int8 runtimes agree?

Clip by clip over the whole test split, against TFLM's reference kernels (largest difference
of any int8 logit in parentheses): the runtimes round some requantisations differently, so
the logits may differ by a least significant bit; what matters for accuracy is the predicted class.
{chr(10).join(agree)}

## Plots

{plots}
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phase", choices=("all", "train", "report"), default="all",
                   help="all (default), train only, or report on the runs finished so far")
    p.add_argument("--data-root", default=None, help="dataset root (default: $QSNN_DATA_ROOT, else ../shared/data)")
    p.add_argument("--widths", type=floats, default=[1.0, 0.25, 0.5], help="DS-CNN widths, trained in this order (default 1,0.25,0.5)")
    p.add_argument("--lrs", type=floats, default=[2e-3, 5e-3, 1e-2],
                   help="peak learning rates searched on validation (default 0.002,0.005,0.01)")
    p.add_argument("--seeds", type=ints, default=[0, 1, 2], help="seeds; the first is the search's (default 0,1,2)")
    p.add_argument("--epochs", type=int, default=40, help="epoch budget, the Q-SNN default's (default 40)")
    p.add_argument("--callgrind-clips", type=int, default=5,
                   help="inferences per model under callgrind, after one warm-up (default 5; the count is per "
                        "inference)")
    p.add_argument("--qsnn-model", default=str(REPO / "firmware" / "models" / "default"),
                   help="the deployed Q-SNN's converted model folder (default firmware/models/default)")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.epochs < 1 or not args.widths or not args.lrs or not args.seeds:
        p.error("--epochs must be >= 1 and --widths, --lrs, --seeds non-empty")
    if not 1 <= args.callgrind_clips <= 63:
        p.error("--callgrind-clips must be 1..63")
    ensure_extra()
    plan = plan_runs(args, train=args.phase in ("all", "train"))
    if args.phase in ("all", "report"):
        if not plan:
            raise SystemExit("side_by_side: no DS-CNN has finished its learning-rate search yet: run --phase train")
        measures, qm = measure_phase(args, plan)  # cached by model hash: only new models are measured
        report_phase(args, plan, measures, qm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
