"""Firmware cost per model on the emulated boards: builds the firmware for each converted
model (offline PlatformIO), runs host/eval.py on the test split, and writes one row per
model and target (qemu:m4, the STM32F405; qemu:m0, the nRF51822; qemu:m7, the MPS2 AN500;
qemu:rv32, the FE310; qemu:lx106, the Xtensa lx106 on QEMU's sim machine) to
docs/results/firmware.json and a table to stdout:

    python benchmarks/firmware_cost.py [MODEL_DIR ...] [--target qemu:m4|m0|m7|rv32|lx106] [--limit N]
                                       [--out docs/results/firmware.json]

MODEL_DIR holds model.npz, qsnn_model.h and qsnn_model.c (qsnn-convert's output); default:
firmware/models/default. Rows: model, target, flash_bytes, ram_static_bytes,
stack_peak_bytes, state_bytes, frontend_instructions_per_clip,
network_instructions_per_clip (medians over the clips run), sops_per_inference (integer
reference, the same clips), worst_hop_instructions (the slowest 20 ms hop of any clip, front
end plus network) and worst_hop_ms_floor_at_clock (that many instructions at one cycle each
at the real chip's clock: a floor, since QEMU counts instructions, not cycles),
counter_unit, counter_resolution, agreement, samples, model_hash, command, commit. Instruction counts are QEMU's (-icount shift=0), not cycles;
on the M0 they come from 16 MHz timer ticks, 62.5 instructions each (counter_resolution).
Existing rows for other models or targets are kept; a row for the same model and target is
replaced.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import firmware_support as fw  # noqa: E402

from qsnnkit import reference  # noqa: E402
from qsnnkit.host.eval import spread  # noqa: E402
from qsnnkit.dataset import features, load_split  # noqa: E402
from qsnnkit.model import load_converted  # noqa: E402
from qsnnkit.train.sweep import git_commit  # noqa: E402

#: target -> (PlatformIO env, board name, instructions per counter tick). Under QEMU's
#: -icount shift=0 each guest instruction is 1 ns: TIM2 at 1 GHz (M4) counts instructions,
#: TIMER0 at 16 MHz (M0) one tick per 62.5 instructions, the MPS2's at 25 MHz (M7) per 40.
TARGETS = {"qemu:m4": ("qemu_m4", "qemu-netduinoplus2-stm32f405", 1.0),
           "qemu:m0": ("qemu_m0", "qemu-microbit-nrf51822", 62.5),
           "qemu:m7": ("qemu_m7", "qemu-mps2-an500-cortex-m7", 40.0),
           "qemu:rv32": ("qemu_rv32", "qemu-sifive-e-fe310-rv32imac", 1.0),
           "qemu:lx106": ("qemu_lx106", "qemu-xtensa-sim-lx106", 25.0)}  # CCOUNT at 40 MHz
#: The real chip's clock (Hz): STM32F405 at 168 MHz, nRF51822 at 16 MHz. A hop of N instructions
#: takes at least N cycles, so N / clock is a floor on its time there (QEMU counts instructions).
CLOCK_HZ = {"qemu:m4": 168_000_000, "qemu:m0": 16_000_000, "qemu:m7": 25_000_000,  # MPS2: a 25 MHz FPGA
            "qemu:rv32": 320_000_000,  # FE310 (HiFive1) up to 320 MHz
            "qemu:lx106": 80_000_000}  # ESP8266 at its default 80 MHz
HOP_MS = 20.0


def measure(model_dir: Path, target: str, limit: int | None) -> dict[str, object]:
    env_name, board, resolution = TARGETS[target]
    elf, res = fw.build_firmware(model_dir, env_name)
    if res.returncode != 0:
        raise RuntimeError(f"pio run -e {env_name} failed for {model_dir}:\n{res.stdout[-2000:]}{res.stderr[-2000:]}")
    model = load_converted(model_dir / "model.npz")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "eval.json"
        cmd = [sys.executable, str(REPO / "host" / "eval.py"), "--port", target, "--elf", str(elf), "--model",
               str(model_dir / "model.npz"), "--split", "test", "--json", str(out), "--quiet"]
        if limit is not None:
            cmd += ["--limit", str(limit)]
        r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
        if r.returncode not in (0, 3):
            raise RuntimeError(f"eval failed for {model_dir}: {r.stderr[-2000:]}")
        s = json.loads(out.read_text())
    sp = load_split(None, "test")
    idx = spread(list(range(len(sp.labels))), limit)  # the clips host/eval.py --limit picks
    _, tr = reference.run_batch(model, features(sp.pcm[idx]), trace=True)
    assert tr is not None
    ops = reference.operation_counts(model, tr)
    report = json.loads((model_dir / "report.json").read_text()) if (model_dir / "report.json").exists() else {}
    name = str(model_dir.relative_to(REPO) if model_dir.is_relative_to(REPO) else model_dir)
    return {
        "model": name,
        "target": target, "board": board, "flash_bytes": s["flash_bytes"], "ram_static_bytes": s["ram_bytes"]["static"],
        "stack_peak_bytes": s["ram_bytes"]["stack_peak"], "state_bytes": s["ram_bytes"]["arena"],
        "frontend_instructions_per_clip": s["latency"]["frontend"]["median"] * resolution,
        "network_instructions_per_clip": s["latency"]["network"]["median"] * resolution,
        "network_instructions_per_clip_p95": s["latency"]["network"]["p95"] * resolution,
        "worst_hop_instructions": s["latency"]["worst_hop"] * resolution,
        "worst_hop_ms_floor_at_clock": s["latency"]["worst_hop"] * resolution / CLOCK_HZ[target] * 1e3,
        "clock_hz": CLOCK_HZ[target], "hop_ms": HOP_MS,
        "sops_per_inference": ops["sops_per_inference"], "macs_per_inference": ops["macs_per_inference"],
        "counter_unit": s["latency"]["unit"], "counter_resolution": resolution,
        "agreement": s["agreement"], "samples": s["samples"], "model_hash": model.short_hash,
        "kernels": report.get("kernels"),
        "command": f"python benchmarks/firmware_cost.py {name} --target {target}" + (f" --limit {limit}" if limit else ""),
        "commit": git_commit(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", type=Path, default=[fw.DEFAULT_MODEL_DIR])
    ap.add_argument("--target", choices=sorted(TARGETS), default="qemu:m4")
    ap.add_argument("--limit", type=int, default=None, help="clips of the test split (default: all 372)")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "results" / "firmware.json")
    a = ap.parse_args(argv)
    rows = json.loads(a.out.read_text()) if a.out.exists() else []
    print(f"{'model':48s} {'flash':>7s} {'static':>7s} {'stack':>6s} {'state':>6s} {'front end':>10s} "
          f"{'network':>11s} {'agree':>6s}")
    for m in a.models:
        row = measure(m.resolve(), a.target, a.limit)
        rows = [r for r in rows if not (r["model"] == row["model"] and r["target"] == row["target"])] + [row]
        print(f"{row['model']:48s} {row['flash_bytes']:7d} {row['ram_static_bytes']:7d} {row['stack_peak_bytes']:6d} "
              f"{row['state_bytes']:6d} {row['frontend_instructions_per_clip']:10.0f} "
              f"{row['network_instructions_per_clip']:11.0f} {row['agreement']:6.3f}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
