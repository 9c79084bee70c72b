"""One row of docs/results/kws_levers.json per finished training run: converts the run's
checkpoint (qsnn-convert, validation and test splits), then records its validation and test
accuracy (integer reference; the PyTorch forward must agree on every clip), bytes, state,
firing rates, synaptic operations and training command and time. A row for the same model
name and seed is replaced.

    python benchmarks/levers.py RUN_DIR --model NAME --lever TEXT [--json docs/results/kws_levers.json]

RUN_DIR is a qsnn-train --out folder (model.safetensors, train_summary.json). The test split
is read here once per finished candidate; levers are compared on validation.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qsnnkit.convert import cli as convert_cli

REPO = Path(__file__).resolve().parents[1]


def row(run: Path, model: str, lever: str, machine: str) -> dict[str, object]:
    out = run / "model"
    rc = convert_cli.main([str(run / "model.safetensors"), "--out", str(out), "--split", "val,test"])
    if rc != 0:
        raise SystemExit(f"levers: converting {run} failed (exit {rc})")
    rep = json.loads((out / "report.json").read_text())
    summ = json.loads((run / "train_summary.json").read_text())
    for split in ("val", "test"):
        if rep[split]["torch_reference_agreement"] != 1.0:
            raise SystemExit(f"levers: {run}: PyTorch and the integer reference disagree on {split}")
    return {"model": model, "lever": lever, "seed": int(rep["provenance"]["train_settings"]["seed"]),
            "model_hash": rep["model_hash"][:16], "val_accuracy": rep["val"]["reference_accuracy"],
            "test_accuracy": rep["test"]["reference_accuracy"], "torch_reference_agreement": 1.0,
            "best_epoch": summ["best_epoch"], "firing_rates_test": rep["test"].get("firing_rates"),
            "model_bytes": rep["bytes"]["total"], "state_bytes": rep["state_bytes"],
            "sops_per_inference": rep["test"]["sops_per_inference"],
            "macs_per_inference": rep["test"]["macs_per_inference"], "train_seconds": summ["seconds"],
            "command": summ["command"], "machine": machine}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/levers.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path, help="a qsnn-train output folder")
    ap.add_argument("--model", required=True, help="row name, e.g. 'conv-32-64-rec128 + bn'")
    ap.add_argument("--lever", required=True, help="what the run changes")
    ap.add_argument("--machine", default="this 2-core CPU, one torch thread, 2 jobs sharing the cores")
    ap.add_argument("--json", type=Path, default=REPO / "docs" / "results" / "kws_levers.json")
    a = ap.parse_args(argv)
    r = row(a.run, a.model, a.lever, a.machine)
    rows = json.loads(a.json.read_text()) if a.json.exists() else []
    rows = [x for x in rows if (x["model"], x["seed"]) != (r["model"], r["seed"])] + [r]
    a.json.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"{r['model']} seed {r['seed']}: validation {r['val_accuracy']:.4f}, test {r['test_accuracy']:.4f}, "
          f"{r['model_bytes']} B, state {r['state_bytes']} B, {r['sops_per_inference']:.3g} SOPs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
