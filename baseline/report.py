"""Rows, table and plots of the side-by-side (benchmarks/side_by_side.py): the int8 DS-CNN
(measured here, and the Cortex-M figures cited from the same emulator) and the Q-SNN (read
from docs/results/kws_pareto.json and docs/results/firmware.json, so later models appear
without editing this file)."""
from __future__ import annotations

import json
import math
import platform
from pathlib import Path
from statistics import mean, stdev
from typing import Any

#: Energy per inference on a Cortex-M4 = instructions / f * VDD * IDD, taking one instruction
#: per cycle (QEMU counts instructions; the real CPI on an M4 with flash wait states is higher,
#: so this is a floor). IDD: STM32F405xx/407xx datasheet (ST DS8626), typical supply current
#: in Run mode, code with data processing running from flash with the ART accelerator on,
#: fHCLK = 168 MHz, all peripherals disabled, TA = 25 C.
ENERGY: dict[str, Any] = {"idd_a": 0.040, "vdd_v": 3.3, "f_hz": 168_000_000,
                          "source": "ST DS8626 (STM32F405xx/STM32F407xx datasheet), Run mode from flash, ART "
                                    "accelerator on, 168 MHz, all peripherals disabled, typical 40 mA at 25 C; "
                                    "VDD 3.3 V; one instruction per cycle"}

#: Measured elsewhere on the same emulator as the project's firmware (QEMU netduinoplus2,
#: -icount shift=0, GCC 12.2 -O2): the MLPerf Tiny DS-CNN on its own 49 x 10 MFCC input, and
#: its accuracy trained on this split's training clips with MFCC features and no extra data
#: (../shared/notes/kws-measurements.md).
CITED: list[dict[str, Any]] = [
    {"model": "dscnn-mlperf-49x10", "runtime": "tflm + cmsis-nn (Cortex-M4)", "instructions_cortex_m": 7_701_464,
     "flash_bytes": 162_729},
    {"model": "dscnn-mlperf-49x10", "runtime": "tflm reference kernels (Cortex-M4)",
     "instructions_cortex_m": 43_085_754, "flash_bytes": 116_697},
]
CITED_COMMON = {"kind": "dscnn-int8", "accuracy": 0.844, "accuracies": None, "std": None, "model_bytes": None,
                "ram_bytes": 22_772, "instructions_x86": None, "ops": 2_660_000, "source": "cited",
                "input": "49 x 10 MFCC (MLPerf Tiny preprocessing)",
                "note": "arena_used 22,772 B; application flash; 2.66 M MACs; 84.4% on this test split "
                        "(train split only, time-shift and noise augmentation, no synthetic speech)"}


def energy_uj(instructions: float | None) -> float | None:
    if instructions is None:
        return None
    return instructions / ENERGY["f_hz"] * ENERGY["vdd_v"] * ENERGY["idd_a"] * 1e6


def _std(xs: list[float]) -> float | None:
    return stdev(xs) if len(xs) > 1 else None


def dscnn_rows(plan: dict[str, dict], measures: dict[str, dict], macs: dict[str, int], command: str,
               commit: str) -> list[dict]:
    """One row per DS-CNN width and runtime: accuracy over the final seeds."""
    rows = []
    for label, p in plan.items():
        ms = [measures[n] for n in p["finals"] if n in measures]
        if not ms:
            continue
        first = ms[0]
        for rt in ("litert-xnnpack", "litert-builtin", "tflm"):
            accs = [m["accuracy"][rt] for m in ms]
            x86 = first.get("instructions_x86", {}).get(rt)
            rows.append({
                "model": label, "kind": "dscnn-int8", "runtime": {"litert-xnnpack": "litert (xnnpack)",
                                                                  "litert-builtin": "litert (built-in kernels)",
                                                                  "tflm": "tflm (host, reference kernels)"}[rt],
                "accuracy": mean(accs), "accuracies": accs, "std": _std(accs),
                "model_bytes": first["model_bytes"],
                "ram_bytes": first["arena_bytes"] if rt == "tflm" else None,
                "instructions_x86": x86, "instructions_cortex_m": None, "ops": macs[label],
                "energy_uj": None, "source": "measured", "input": "49 x 40 log-mel (the project's front end)",
                "seeds": len(ms), "lr": p["lr"], "lr_search": p["grid"],
                "outputs_equal_tflm": [m["outputs_equal_tflm"][rt] for m in ms],
                "predictions_equal_tflm": [m["predictions_equal_tflm"][rt] for m in ms],
                "max_abs_diff_tflm": [m["max_abs_diff_tflm"][rt] for m in ms],
                "samples": first["samples"], "command": command, "commit": commit})
    return rows


def cited_rows(command: str, commit: str) -> list[dict]:
    return [{**CITED_COMMON, **c, "energy_uj": energy_uj(c["instructions_cortex_m"]), "command": command,
             "commit": commit} for c in CITED]


def _recipe(command: str) -> list[str]:
    """A training command without its seed and thread count (a recipe's runs differ only there)."""
    out, skip = [], False
    for tok in command.split():
        if skip:
            skip = False
            continue
        if tok in ("--seed", "--threads"):
            skip = True
            continue
        out.append(tok)
    return out


def qsnn_rows(results: Path, default_dir: Path, qm: dict | None, command: str, commit: str) -> list[dict]:
    """Per model size, the Q-SNN recipe with the best validation mean in kws_pareto.json (its
    seeds' test accuracies). The recipe the deployed default was trained with also gets the
    default's measured costs: firmware.json's Cortex-M4 row (whole test split), RAM (static +
    painted stack) and the x86-64 count measured here."""
    fw_doc = json.loads((results / "firmware.json").read_text())
    fw = [r for r in (fw_doc["rows"] if isinstance(fw_doc, dict) else fw_doc)
          if r["target"] == "qemu:m4" and Path(r["model"]).resolve() == default_dir.resolve()]
    report = json.loads((default_dir / "report.json").read_text())
    deployed = _recipe(str(report["provenance"]["train_command"]))
    pareto = json.loads((results / "kws_pareto.json").read_text())
    best: dict[int, dict] = {}
    for r in pareto:
        b = r["model_bytes"]
        if b not in best or r["val_mean"] > best[b]["val_mean"]:
            best[b] = r
    rows: list[dict] = []
    for b in sorted(best):
        r = best[b]
        row = {
            "model": f"qsnn-{r['model']}", "kind": "qsnn", "runtime": "integer reference (= firmware)",
            "accuracy": r["mean"], "accuracies": r["accuracies"], "std": r["std"], "model_bytes": b,
            "ram_bytes": r.get("state_bytes"), "instructions_x86": None, "instructions_cortex_m": None,
            "ops": r["sops_per_inference"], "energy_uj": None, "source": "measured",
            "input": "49 x 40 log-mel (the project's front end)", "seeds": len(r["accuracies"]),
            "note": "recipe mean over seeds (kws_pareto.json, best validation mean at this size); RAM: network "
                    "state only", "command": r["command"], "commit": r["commit"]}
        if fw and _recipe(str(r["command"])) == deployed:
            f = fw[0]
            row.update({
                "runtime": "qsnn C core (firmware on the M4; host x86-64, -O2)",
                "ram_bytes": f["ram_static_bytes"] + f["stack_peak_bytes"],
                "instructions_x86": qm["network_x86"] if qm else None,
                "instructions_cortex_m": f["network_instructions_per_clip"],
                "energy_uj": energy_uj(f["network_instructions_per_clip"]),
                "deployed_model": f["model_hash"], "deployed_test_accuracy": report["test"]["reference_accuracy"],
                "state_bytes": f["state_bytes"], "flash_bytes": f["flash_bytes"],
                "note": "accuracy: the recipe's seeds (kws_pareto.json); costs: the deployed default "
                        f"({f['model_hash']}, seed 0 of this recipe, {100 * report['test']['reference_accuracy']:.1f}% "
                        "test): firmware.json's M4 row over the whole test split (median), RAM = the whole "
                        "firmware's static RAM + painted stack peak, x86-64 by callgrind here",
                "measured_by": f["command"]})
        rows.append(row)
    return rows


def _fmt(x: Any, kind: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if kind == "pct":
        return f"{100 * x:.1f}"
    if kind == "M":
        return f"{x / 1e6:.2f} M"
    if isinstance(x, float):
        return f"{x:,.0f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def table(rows: list[dict]) -> str:
    head = ("| model | runtime | input | accuracy % (mean of seeds) | std | model B | RAM B | x86-64 instr. | "
            "Cortex-M4 instr. | ops | energy uJ (M4) | source |")
    out = [head, "|" + "---|" * 12]
    for r in rows:
        std = "-" if r["std"] is None else f"{100 * r['std']:.1f}"
        accs = ", ".join(f"{100 * a:.1f}" for a in r["accuracies"]) if r["accuracies"] else "one figure"
        out.append(f"| {r['model']} | {r['runtime']} | {r.get('input', '-')} | {_fmt(r['accuracy'], 'pct')} "
                   f"({accs}) | {std} | {_fmt(r['model_bytes'])} | {_fmt(r['ram_bytes'])} | "
                   f"{_fmt(r['instructions_x86'], 'M')} | {_fmt(r['instructions_cortex_m'], 'M')} | "
                   f"{_fmt(r['ops'], 'M')} | {_fmt(r['energy_uj'])} | {r['source']} |")
    return "\n".join(out)


def plots(rows: list[dict], out_dir: Path) -> list[Path]:
    """accuracy vs model bytes, accuracy vs instructions (x86-64 and Cortex-M4): PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    specs = [("model_bytes", "model bytes (packed weights / .tflite)", "side_by_side_bytes.png"),
             ("instructions_x86", "x86-64 instructions per inference (callgrind)", "side_by_side_x86.png"),
             ("instructions_cortex_m", "Cortex-M4 instructions per inference (QEMU)", "side_by_side_m4.png")]
    for key, xlabel, name in specs:
        pts = [r for r in rows if r.get(key)]
        if not pts:
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for r in pts:
            colour = "tab:blue" if r["kind"] == "qsnn" else ("tab:orange" if r["source"] == "measured" else "tab:gray")
            marker = "o" if r["kind"] == "qsnn" else "s"
            ax.errorbar(r[key], 100 * r["accuracy"], yerr=None if r["std"] is None else 100 * r["std"],
                        fmt=marker, color=colour, capsize=3)
            ax.annotate(f"{r['model']}\n{r['runtime']}", (r[key], 100 * r["accuracy"]), fontsize=6,
                        xytext=(4, 2), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy % (shared split, mean of seeds)")
        ax.grid(True, alpha=0.3)
        ax.set_title("Q-SNN (blue) vs int8 DS-CNN (orange measured, grey cited)", fontsize=9)
        fig.tight_layout()
        p = out_dir / name
        fig.savefig(p, dpi=120)
        plt.close(fig)
        made.append(p)
    return made


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "system": platform.platform()}
