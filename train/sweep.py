"""qsnn-sweep: train a list of configurations x seeds, resumably, spread over the cores or GPUs.

    qsnn-sweep run CONFIG.json --out results.jsonl [--jobs N] [--gpus auto|none|0,1] [--work build/sweeps]
    qsnn-sweep summarize results.jsonl [--json pareto.json]

CONFIG.json holds ``{"runs": [{"name": "conv-32-64", "args": ["--conv", "32:5:5:2,64:3:5:2",
"--hidden", "128", "--recurrent", "1", "--epochs", "40"], "seeds": [0, 1, 2]}, ...]}``:
``args`` are qsnn-train arguments (everything but --seed, --out and --data-root). Each
(name, seed) is one job: ``qsnn-train`` then ``qsnn-convert --split val,test`` as
subprocesses (each with qsnn-train's torch threads: its --threads, 2 unless the args say
otherwise, part of the recipe since results depend on it), and one JSON line
appended to the results file when it finishes: validation and test accuracy of the integer
model (the test split is read once per finished candidate; select on validation), model
and state bytes, synaptic operations and 8-bit MACs per inference, firing rates, which test
samples it got right (``test_correct``, a 0/1 string in split order, for paired statistics),
hash, command and commit. A job whose line exists is skipped, so an interrupted sweep continues
where it stopped; a job that was running continues from its last finished stage: a trained
checkpoint (marked by trained.json beside it) is converted without retraining, and a training
run that was stopped continues from its last finished epoch (``qsnn-train --resume``, to the
same bits as an uninterrupted run; its train_seconds add the epochs finished before the stop).

``--gpus`` (default auto) places runs on CUDA devices: each run trains on one GPU of its own
(CUDA_VISIBLE_DEVICES, --device cuda unless its args name a device; the recorded command says
so), one run per GPU at a time; conversion stays on the CPU. Without a GPU, or with
``--gpus none``, runs train on the CPU and ``--jobs`` defaults to the cores divided by the
threads a run uses (one run at a time on 2 cores): runs that together ask for more threads than there are cores are far slower in total
than the same runs one after the other (measured on 2 cores with FSDD: 18 s per epoch alone,
about 100 s per epoch each with two at once).

``summarize`` prints one row per configuration (mean and standard deviation over its
seeds) and writes the shared results schema: model, model_hash (seed 0's, or the first),
dataset, accuracies (per seed), mean, std, model_bytes, state_bytes, sops_per_inference,
macs_per_inference, command, commit.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np
from tqdm import tqdm

from qsnnkit.data import dataset_name
from qsnnkit.paths import REPO_ROOT, build_dir


def git_commit() -> str:
    """HEAD of the checkout, with '-dirty' when tracked files differ from it ('unknown' outside git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def arg_value(args: list[str], flag: str) -> str | None:
    """The value a qsnn-train argument list gives FLAG (its last occurrence wins, as in
    argparse), or None when it does not give one."""
    at = [i for i, w in enumerate(args[:-1]) if w == flag]
    return args[at[-1] + 1] if at else None


def run_threads(args: list[str]) -> int:
    """The torch threads a run of these qsnn-train arguments uses (its --threads, else the default)."""
    given = arg_value(args, "--threads")
    if given is not None:
        return int(given)
    from qsnnkit.train.trainer import TrainSettings

    return TrainSettings().threads


def default_jobs(runs: Sequence[Mapping[str, Any]], cores: int | None = None, gpus: list[int] | None = None) -> int:
    """Runs at once: one per GPU when runs go to GPUs, else so that their threads do not
    outnumber the cores (at least one)."""
    if gpus:
        return len(gpus)
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max((run_threads(list(r["args"])) for r in runs), default=1))


def parse_gpus(spec: str, visible: int | None = None) -> list[int]:
    """The GPUs runs go to: "none" (train on the CPU), "auto" (every CUDA device PyTorch sees;
    none on a machine without one) or a comma-separated list of device indices. ValueError
    for a malformed list or a device that is not there. ``visible``: the device count (tests)."""
    spec = spec.strip().lower()
    if spec == "none":
        return []
    if visible is None:
        import torch

        visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if spec == "auto":
        return list(range(visible))
    try:
        ids = [int(x) for x in spec.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--gpus: expected none, auto or device indices like 0,1; got {spec!r}") from None
    missing = [i for i in ids if not 0 <= i < visible]
    if not ids or missing or len(set(ids)) != len(ids):
        have = (f"this machine has {visible} CUDA device(s) (indices 0..{visible - 1})" if visible
                else "this machine has no CUDA device (--gpus none or auto train on the CPU)")
        raise ValueError(f"--gpus {spec}: {have}; "
                         f"{'not there: ' + ', '.join(map(str, missing)) if missing else 'each index once, at least one'}")
    return ids


def device_args(args: list[str], gpu: int | None) -> tuple[list[str], dict[str, str]]:
    """qsnn-train arguments and environment of a run placed on GPU ``gpu`` (None: as given):
    the process sees that one device (CUDA_VISIBLE_DEVICES) and trains with --device cuda,
    unless its arguments name a device themselves."""
    env = dict(os.environ)
    if gpu is None:
        return list(args), env
    env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    return (list(args) if arg_value(args, "--device") is not None else list(args) + ["--device", "cuda"]), env


class _RunName(TypedDict):
    name: str


class SweepRun(_RunName, total=False):
    """One configuration of a sweep file: qsnn-train's arguments and the seeds to run them at."""

    args: list[str]  # default: none (the recipe's defaults)
    seeds: list[int]  # default: [0]


def load_config(path: Path) -> list[SweepRun]:
    """The runs of a sweep file; ValueError naming the file and the problem."""
    try:
        cfg = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable JSON sweep file: {e}") from e
    runs = cfg.get("runs") if isinstance(cfg, dict) else None
    if not isinstance(runs, list) or not runs:
        raise ValueError(f'{path}: expected {{"runs": [{{"name": ..., "args": [...], "seeds": [...]}}, ...]}}')
    names = set()
    for i, r in enumerate(runs):
        if not (isinstance(r, dict) and isinstance(r.get("name"), str) and r["name"]
                and isinstance(r.get("args", []), list) and all(isinstance(a, str) for a in r.get("args", []))
                and isinstance(r.get("seeds", [0]), list) and all(isinstance(s, int) for s in r.get("seeds", [0]))):
            raise ValueError(f"{path}: run {i} needs a name, a list of string args and a list of integer seeds")
        if r["name"] in names:
            raise ValueError(f"{path}: run name {r['name']!r} appears twice")
        if any(a in ("--seed", "--out", "--data-root") for a in r.get("args", [])):
            raise ValueError(f"{path}: run {r['name']!r}: --seed, --out and --data-root are set by the sweep")
        names.add(r["name"])
    return runs


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Result rows of a sweep file (a torn last line from a crash is ignored)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


class Sweep:
    def __init__(self, runs: list[SweepRun], out: Path, work: Path, data_root: str | None,
                 limit: int | None, epochs: int | None, gpus: list[int] | None = None) -> None:
        self.runs, self.out, self.work = runs, out, work
        self.data_root, self.limit, self.epochs = data_root, limit, epochs
        self.lock = threading.Lock()
        self.commit = git_commit()
        #: free GPUs: a run takes one for its training and gives it back (empty: CPU runs)
        self.gpus: queue.Queue[int] = queue.Queue()
        self.use_gpus = bool(gpus)
        for g in gpus or []:
            self.gpus.put(g)

    def jobs(self) -> list[tuple[str, list[str], int]]:
        done = {(r.get("name"), r.get("seed")) for r in read_rows(self.out)}
        todo = []
        for r in self.runs:
            for seed in r.get("seeds", [0]):
                if (r["name"], seed) not in done:
                    todo.append((r["name"], list(r.get("args", [])), seed))
        return todo

    def _run(self, cmd: list[str], log: Path, env: dict[str, str] | None = None, append: bool = False) -> None:
        with log.open("a" if append else "w") as f:
            res = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                 env=env if env is not None else dict(os.environ))
        if res.returncode != 0:
            tail = log.read_text()[-1500:]
            raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}); log {log}:\n{tail}")

    def job(self, name: str, args: list[str], seed: int) -> dict[str, object]:
        d = self.work / name / f"seed{seed}"
        d.mkdir(parents=True, exist_ok=True)
        extra = ["--data-root", self.data_root] if self.data_root else []
        targs = list(args)
        if self.limit is not None:
            targs += ["--limit", str(self.limit)]
        if self.epochs is not None:
            targs += ["--epochs", str(self.epochs)]
        marker = d / "trained.json"  # written once training finished: a rerun converts again, no retraining
        job = {"args": targs, "seed": seed}
        done = json.loads(marker.read_text()) if marker.exists() else None
        if done is not None and done.get("job") == job and (d / "train" / "model.safetensors").exists():
            train_s = float(done.get("seconds", 0.0))
        else:
            marker.unlink(missing_ok=True)
            gpu = self.gpus.get() if self.use_gpus else None
            try:
                dargs, env = device_args(targs, gpu)
                t0 = time.time()
                # --resume: a run a stop interrupted continues from its last finished epoch
                # (train/resume.py; a state left by other settings or code is not continued)
                self._run([sys.executable, "-m", "qsnnkit.train.cli", *dargs, "--seed", str(seed), "--out",
                           str(d / "train"), "--resume", *extra], d / "train.log", env, append=True)
                summary = json.loads((d / "train" / "train_summary.json").read_text())
                # this attempt's wall time and the training the interrupted ones had finished
                train_s = time.time() - t0 + float(summary.get("seconds_before_resume", 0.0))
            finally:
                if gpu is not None:
                    self.gpus.put(gpu)
            marker.write_text(json.dumps({"job": job, "seconds": round(train_s, 1)}))
        ck = d / "train" / "model.safetensors"
        from qsnnkit.train import checkpoint

        trained, meta = checkpoint.load(ck)
        lever_only = trained.cfg.not_convertible
        if lever_only:  # a measured lever with no integer form: the PyTorch evaluation forward only
            self._run([sys.executable, "-m", "qsnnkit.train.evaluate", str(ck), "--split", "val,test",
                       "--json", str(d / "evaluate.json"), *extra], d / "evaluate.log")
            ev = json.loads((d / "evaluate.json").read_text())
            return {
                "name": name, "seed": seed, "model_hash": None, "not_convertible": lever_only,
                "dataset": dataset_name(str(meta.get("settings", {}).get("dataset", "speech_commands")),
                                        self.data_root),
                "val_accuracy": ev["val"]["torch_accuracy"], "test_accuracy": ev["test"]["torch_accuracy"],
                "torch_reference_agreement": None, "model_bytes": None, "state_bytes": None,
                "sops_per_inference": None, "macs_per_inference": None,
                "firing_rates": ev["test"]["firing_rates"], "train_seconds": round(train_s, 1),
                "test_correct": ev["test"].get("correct"),
                "command": json.loads((d / "train" / "train_summary.json").read_text())["command"],
                "commit": self.commit, "limit": self.limit, "model_dir": None,
            }
        self._run([sys.executable, "-m", "qsnnkit.convert.cli", str(ck), "--out",
                   str(d / "model"), "--split", "val,test", *extra], d / "convert.log")
        rep = json.loads((d / "model" / "report.json").read_text())
        val, test = rep["val"], rep["test"]
        return {
            "name": name, "seed": seed, "model_hash": rep["model_hash"][:16], "dataset": rep["provenance"]["data"],
            "val_accuracy": val["reference_accuracy"], "test_accuracy": test["reference_accuracy"],
            "torch_reference_agreement": min(val["torch_reference_agreement"], test["torch_reference_agreement"]),
            "model_bytes": rep["bytes"]["total"], "state_bytes": rep["state_bytes"],
            "sops_per_inference": test["sops_per_inference"], "macs_per_inference": test["macs_per_inference"],
            "firing_rates": test["firing_rates"], "train_seconds": round(train_s, 1),
            "test_correct": test.get("correct"),
            "command": rep["provenance"]["train_command"], "commit": self.commit, "limit": self.limit,
            "model_dir": str(d / "model"),
        }

    def append(self, row: dict[str, object]) -> None:
        with self.lock:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            torn = self.out.exists() and self.out.stat().st_size > 0 and not self.out.read_bytes().endswith(b"\n")
            with self.out.open("a") as f:
                f.write(("\n" if torn else "") + json.dumps(row, sort_keys=True) + "\n")  # a crash's torn line stays alone
                f.flush()
                os.fsync(f.fileno())

    def run(self, jobs: int) -> int:
        todo = self.jobs()
        failures = 0
        with tqdm(total=len(todo), desc="sweep jobs", unit="job") as bar, \
                ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
            futs = {ex.submit(self.job, *j): j for j in todo}
            for fut in as_completed(futs):
                name, _, seed = futs[fut]
                try:
                    row = fut.result()
                except RuntimeError as e:
                    failures += 1
                    print(f"qsnn-sweep: {name} seed {seed}: {e}", file=sys.stderr)
                else:
                    self.append(row)
                    bar.set_postfix_str(f"{name}/s{seed}: val {row['val_accuracy']:.3f}")
                bar.update(1)
        return failures


def summarize(rows: list[dict[str, Any]], dataset: str = "speech_commands_v2_test12") -> list[dict[str, Any]]:
    """One row per configuration in the shared results schema (mean and std over seeds); the
    dataset is the rows' own (rows written before they named it: `dataset`)."""
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(str(r["name"]), []).append(r)
    out = []
    for name, rs in by.items():
        rs = sorted(rs, key=lambda r: int(r["seed"]))
        acc = [float(r["test_accuracy"]) for r in rs]
        val = [float(r["val_accuracy"]) for r in rs]
        first = rs[0]
        out.append({
            "model": name, "model_hash": first["model_hash"], "dataset": first.get("dataset", dataset), "seeds": [r["seed"] for r in rs],
            "accuracies": acc, "mean": float(np.mean(acc)), "std": float(np.std(acc, ddof=1)) if len(acc) > 1 else 0.0,
            "val_accuracies": val, "val_mean": float(np.mean(val)),
            "model_bytes": first["model_bytes"], "state_bytes": first["state_bytes"],
            "sops_per_inference": (None if first["sops_per_inference"] is None else  # a lever with no integer form
                                   float(np.mean([float(r["sops_per_inference"]) for r in rs]))),
            "macs_per_inference": first["macs_per_inference"],
            "command": str(first["command"]).replace(f"--seed {first['seed']}", "--seed S"),
            "commit": first["commit"],
        })
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="qsnn-sweep", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run every (configuration, seed) not yet in the results file")
    r.add_argument("config", type=Path, help="sweep file (JSON, see above)")
    r.add_argument("--out", type=Path, required=True, help="results file (JSON lines; appended, resumable)")
    r.add_argument("--work", type=Path, default=None, help="where runs keep checkpoints and logs "
                                                           "(default: build/sweeps/<results file stem>)")
    r.add_argument("--jobs", type=int, default=None,
                   help="runs at once (default: one per GPU in use, else cores / the torch threads a run uses, "
                        "at least 1)")
    r.add_argument("--gpus", default="auto",
                   help="where runs train: auto (one run on each CUDA device PyTorch sees; the CPU when there is "
                        "none), none (the CPU), or device indices like 0,1")
    r.add_argument("--data-root", default=None, help="dataset root (default: $QSNN_DATA_ROOT or ../shared/data)")
    r.add_argument("--limit", type=int, default=None, help="train on the first N clips of each split (smoke runs)")
    r.add_argument("--epochs", type=int, default=None, help="override every run's epochs (smoke runs)")
    s = sub.add_parser("summarize", help="mean and std per configuration")
    s.add_argument("results", type=Path)
    s.add_argument("--json", type=Path, default=None, help="write the rows (shared results schema) here")
    s.add_argument("--min-seeds", type=int, default=3,
                   help="configurations with fewer finished seeds are printed but left out of --json "
                        "(the results schema asks for at least 3)")
    a = ap.parse_args(argv)
    if a.cmd == "run":
        try:
            runs = load_config(a.config)
        except ValueError as e:
            print(f"qsnn-sweep: {e}", file=sys.stderr)
            return 2
        try:
            gpus = parse_gpus(a.gpus)
        except ValueError as e:
            print(f"qsnn-sweep: {e}", file=sys.stderr)
            return 2
        work = a.work or build_dir() / "sweeps" / a.out.stem
        jobs = a.jobs if a.jobs is not None else default_jobs(runs, gpus=gpus)
        failures = Sweep(runs, a.out, work, a.data_root, a.limit, a.epochs, gpus).run(jobs)
        return 1 if failures else 0
    rows = read_rows(a.results)
    if not rows:
        print(f"qsnn-sweep: no result rows in {a.results}", file=sys.stderr)
        return 2
    table = summarize(rows)
    print(f"{'configuration':28s} {'seeds':>5s} {'val':>7s} {'test mean':>9s} {'std':>6s} {'bytes':>7s} "
          f"{'state':>6s} {'SOPs/inf':>10s} {'MACs/inf':>10s}")
    for t in sorted(table, key=lambda t: -float(t["val_mean"])):
        partial = "" if len(t["accuracies"]) >= a.min_seeds else f"  (< {a.min_seeds} seeds: not in --json)"
        if t["model_hash"] is None:
            partial += "  (a measured lever with no integer form: PyTorch accuracy, not in --json)"
        num = (lambda v, w, f: f"{'-':>{w}s}" if v is None else f"{v:{w}{f}}")  # noqa: E731
        print(f"{t['model']:28s} {len(t['accuracies']):5d} {t['val_mean']:7.3f} {t['mean']:9.3f} {t['std']:6.3f} "
              f"{num(t['model_bytes'], 7, 'd')} {num(t['state_bytes'], 6, 'd')} "
              f"{num(t['sops_per_inference'], 10, '.0f')} {num(t['macs_per_inference'], 10, '.0f')}{partial}")
    if a.json:
        kept = [t for t in table if len(t["accuracies"]) >= a.min_seeds
                and t["model_hash"] is not None]  # the results schema describes deployable models
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(kept, indent=1) + "\n")
        print(f"wrote {a.json} ({len(kept)} of {len(table)} configurations)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
