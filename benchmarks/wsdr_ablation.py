"""WS-DR spike-rate regulation ablation: train with and without the rate loss over several
seeds, convert each model, and measure test accuracy (integer reference), firing rates and
synaptic events. Prints a markdown table and writes JSON.

  python benchmarks/wsdr_ablation.py make-bank --out build/bank.npz --copies 10
  python benchmarks/wsdr_ablation.py run --bank build/bank.npz --seeds 0,1,2,3 --lambdas 0.005,0 --jobs 8

`run` needs only the feature bank (no dataset, no C compiler), so it can run on a lent
machine with many cores; each job uses --threads torch threads.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


#: Named variants of the default setup (architecture / training), for sweeps.
VARIANTS: dict[str, dict[str, object]] = {
    "default": {},  # today's TrainSettings / QSNNConfig defaults
    # the variants of docs/results.md, spelled out so they keep their meaning as defaults move
    "base": {"augment": True, "binary_init_std": 0.0},
    "noaug": {"augment": False, "binary_init_std": 0.0},
    "rec2": {"augment": True, "binary_init_std": 0.0, "recurrent": (True, True)},
    "mem8": {"augment": True, "binary_init_std": 0.0, "mem_bits": 8},
    "mem2": {"augment": True, "binary_init_std": 0.0, "mem_bits": 2},
    "noaug_gain0.1": {"augment": False, "binary_init_std": 0.0, "gain_lr_scale": 0.1},
    "noaug_gainfixed": {"augment": False, "binary_init_std": 0.0, "gain_lr_scale": 0.0},
    "noaug_init1": {"augment": False, "binary_init_std": 1.0},
    "init1": {"augment": True, "binary_init_std": 1.0},
    "init3": {"augment": True, "binary_init_std": 3.0},
    "init1_lr5e-3": {"augment": True, "binary_init_std": 1.0, "lr": 5e-3},
}
CFG_KEYS = ("hidden", "recurrent", "mem_bits", "leak_shift")


def _job(args: tuple[str, int, float, int, int, str, str, str]) -> dict[str, object]:
    bank_path, seed, lam, epochs, threads, out_dir, device, variant = args
    from qsnnkit import data
    from qsnnkit import reference
    from qsnnkit.convert.integerize import integerize
    from qsnnkit.train.model import QSNNConfig
    from qsnnkit.train.trainer import FeatureBank, TrainSettings, train

    bank = FeatureBank.load(bank_path)
    var = VARIANTS[variant]
    # The recorded runs are of the dense network with the loss on the readout's mean (the
    # defaults when they were made): spelled out, so later defaults do not change them.
    st = TrainSettings(epochs=epochs, lambda_sr=lam, seed=seed, threads=threads, device=device,
                       **{"loss_on": "mean", **{k: v for k, v in var.items() if k not in CFG_KEYS}})  # type: ignore[arg-type]
    cfg = QSNNConfig(**{"conv": (), "hidden": (256, 256), "recurrent": (True, False),
                        **{k: v for k, v in var.items() if k in CFG_KEYS}})  # type: ignore[arg-type]
    t0 = time.time()
    import os
    os.environ["TQDM_DISABLE"] = "1"
    res = train(cfg, st, None, Path(out_dir) / f"{variant}_s{seed}_l{lam}", bank=bank)
    from qsnnkit.train import checkpoint
    model, _ = checkpoint.load(res.checkpoint)
    cm = integerize(model, list(data.CLASSES))
    out, tr = reference.run_batch(cm, bank.test, trace=True)
    assert tr is not None
    acc = float((reference.predict(out) == bank.test_labels).mean())
    rates = [float(s.mean()) for s in tr.spk]
    return {"variant": variant, "seed": seed, "lambda_sr": lam, "epochs": epochs, "test_accuracy": acc,
            "val_accuracy": res.val_accuracy, "best_epoch": res.best_epoch, "firing_rates": rates,
            "train_seconds": round(time.time() - t0, 1), "model_hash": cm.short_hash}


def print_tables(rows: list[dict[str, Any]]) -> None:
    rows = sorted(rows, key=lambda r: (str(r.get("variant", "base")), -float(r["lambda_sr"]), int(r["seed"])))
    print("\n| variant | lambda_sr | seed | test acc | val acc | rate L1 | rate L2 | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for r_ in rows:
        fr = r_["firing_rates"]
        print(f"| {r_.get('variant', 'base')} | {r_['lambda_sr']} | {r_['seed']} | {r_['test_accuracy']:.4f} | "
              f"{r_['val_accuracy']:.4f} | {fr[0]:.3f} | {fr[1]:.3f} | {r_['train_seconds']} |")
    print("\n| variant | lambda_sr | runs | mean test acc | std | mean rate L1 | mean rate L2 |")
    print("|---|---|---|---|---|---|---|")
    for key in sorted({(str(r_.get("variant", "base")), float(r_["lambda_sr"])) for r_ in rows}):
        g = [r_ for r_ in rows if (str(r_.get("variant", "base")), float(r_["lambda_sr"])) == key]
        acc = np.array([r_["test_accuracy"] for r_ in g])
        fr = np.array([r_["firing_rates"] for r_ in g])
        print(f"| {key[0]} | {key[1]} | {len(g)} | {acc.mean():.4f} | {acc.std(ddof=1) if len(g) > 1 else 0:.4f} | "
              f"{fr[:, 0].mean():.3f} | {fr[:, 1].mean():.3f} |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    mb = sub.add_parser("make-bank", help="precompute features (C front end) with K augmented train copies")
    mb.add_argument("--out", type=Path, required=True)
    mb.add_argument("--copies", type=int, default=10)
    mb.add_argument("--data-root", default=None)
    r = sub.add_parser("run", help="train/convert/evaluate each (seed, lambda)")
    r.add_argument("--bank", type=Path, required=True)
    r.add_argument("--seeds", default="0,1,2,3")
    r.add_argument("--lambdas", default="0.005,0")
    r.add_argument("--epochs", type=int, default=60)
    r.add_argument("--variants", default="base", help=f"comma-separated, from {sorted(VARIANTS)}")
    r.add_argument("--jobs", type=int, default=2)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--device", default="cpu")
    r.add_argument("--out", type=Path, default=Path("build/ablation"))
    r.add_argument("--json", type=Path, default=None)
    t = sub.add_parser("table", help="print the tables of a results JSON")
    t.add_argument("json", type=Path)
    a = p.parse_args(argv)
    if a.cmd == "table":
        print_tables(json.loads(a.json.read_text()))
        return 0
    if a.cmd == "make-bank":
        from qsnnkit.train.trainer import make_bank
        make_bank(a.data_root, a.copies).save(a.out)
        print(f"wrote {a.out}")
        return 0
    jobs = [(str(a.bank), int(s), float(lam), a.epochs, a.threads, str(a.out), a.device, v)
            for v in a.variants.split(",") for lam in a.lambdas.split(",") for s in a.seeds.split(",")]
    with mp.get_context("spawn").Pool(a.jobs) as pool:
        rows = []
        for row in pool.imap_unordered(_job, jobs):
            rows.append(row)
            print(json.dumps(row), flush=True)
    print_tables(rows)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
