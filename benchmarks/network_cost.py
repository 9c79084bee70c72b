"""Where a model's network instructions go on the emulated Cortex-M4, layer by layer.

    python benchmarks/network_cost.py [MODEL_DIR ...] [--clips 8] [--json docs/results/network_cost.json]

Builds a bare-metal ELF (QEMU netduinoplus2, -icount shift=0: TIM2 counts instructions)
with the model's generated C, the core built with -DQSNN_PROFILE (a hook after every layer)
and, for the same test clips, the features and outputs the integer reference expects; runs
every step of every clip and prints, per layer and kernel, the mean instructions per frame
and per 1 s clip (49 frames), the readout and the step's own overhead, with the hook's cost
subtracted. The run fails if any clip's outputs differ from the reference. Default model:
firmware/models/default. An event model (N-MNIST) runs on its test samples' binned frames
(the binning itself is not in these counts).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from frontend_cost import M4_LD, M4_RUNTIME_HEAD, M4_RUNTIME_TAIL, _run  # noqa: E402

from qsnnkit import nmnist, reference  # noqa: E402
from qsnnkit.ccore import CCore  # noqa: E402
from qsnnkit.dataset import features, load_split  # noqa: E402
from qsnnkit.host.eval import spread  # noqa: E402
from qsnnkit.model import load_converted  # noqa: E402
from qsnnkit.paths import QSNN_INCLUDE_DIR, QSNN_SRC_DIR  # noqa: E402
from qsnnkit.spec import MAX_LAYERS  # noqa: E402

BENCH = r"""
static uint32_t arena[(QSNN_MODEL_ARENA_BYTES + 3u) / 4u];
static uint32_t last, ovh;
static uint32_t acc[QSNN_MAX_LAYERS + 2u];

void qsnn_profile_mark(uint32_t point)
{
    const uint32_t t = now();
    if (point != 0u) {
        acc[point] += t - last - ovh;
    }
    last = now();
}

static int bench(void)
{
    qsnn_state_t st;
    uint32_t k, t, j, bad = 0u, t0, t1, sp, *p;
    REG(0x40023840u) |= 1u;
    REG(TIM2 + 0x28u) = 0u;
    REG(TIM2 + 0x2Cu) = 0xFFFFFFFFu;
    REG(TIM2 + 0x14u) = 1u;
    REG(TIM2 + 0x00u) = 1u;
    /* the hook's own cost: a mark right after a mark */
    ovh = 0u;
    qsnn_profile_mark(0u);
    t0 = now();
    qsnn_profile_mark(1u);
    t1 = now();
    ovh = acc[1];
    acc[1] = 0u;
    (void)t0;
    (void)t1;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (p = &_ebss; p < (uint32_t *)(sp - 64u); p++) *p = PAINT;
    if (qsnn_state_init(&st, &qsnn_model, arena, sizeof arena) != QSNN_OK) return 2;
    for (k = 0u; k < BENCH_CLIPS; k++) {
        qsnn_reset(&st);
        for (t = 0u; t < BENCH_FRAMES; t++) qsnn_step(&st, BENCH_FEAT[k][t]);
        for (j = 0u; j < QSNN_MODEL_N_CLASSES; j++) bad += st.out[j] != BENCH_OUT[k][j];
    }
    for (p = &_ebss; p < (uint32_t *)(sp - 64u) && *p == PAINT; p++) { }
    for (j = 1u; j < QSNN_MAX_LAYERS + 2u; j++) { put_kv("point", j); put_kv("instr", acc[j]); }
    put_kv("hook_overhead", ovh);
    put_kv("stack_painted", sp - (uint32_t)p);
    put_kv("mismatches", bad);
    return bad != 0u;
}
"""


def measure(model_dir: Path, clips: int) -> dict[str, object]:
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} not installed (scripts/setup.sh installs it)")
    model = load_converted(model_dir / "model.npz")
    if model.input_kind == "events":  # the samples' events through the C binner
        ev = nmnist.load_frames(None, "test", model.event_config(), model.steps)
        feats = ev.frames[spread(list(range(len(ev.labels))), clips)]
    else:
        sp = load_split(None, "test")
        idx = spread(list(range(len(sp.labels))), clips)  # the clips host/eval.py --limit picks
        feats = features(sp.pcm[idx])
    out, _ = reference.run_batch(model, feats)
    T = feats.shape[1]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        data = ["#include <stdint.h>", f"#define BENCH_CLIPS {clips}u", f"#define BENCH_FRAMES {T}u",
                f"static const uint8_t BENCH_FEAT[{clips}][{T}][{feats.shape[2]}] = {{"
                + ",".join("{" + ",".join("{" + ",".join(map(str, r)) + "}" for r in c.tolist()) + "}" for c in feats) + "};",
                f"static const int32_t BENCH_OUT[{clips}][{out.shape[1]}] = {{"
                + ",".join("{" + ",".join(f"({int(v)})" for v in r) + "}" for r in out) + "};"]
        (d / "bench_data.h").write_text("\n".join(data) + "\n")
        (d / "main.c").write_text('#include <stdint.h>\n#include "qsnn_model.h"\n#include "bench_data.h"\n'
                                  + M4_RUNTIME_HEAD + BENCH + M4_RUNTIME_TAIL)
        (d / "m4.ld").write_text(M4_LD)
        flags = ["-mcpu=cortex-m4", "-mthumb", "-std=c99", "-O2", "-ffreestanding", "-Wall", "-Wextra", "-Werror",
                 "-DQSNN_PROFILE", "-I", str(QSNN_INCLUDE_DIR), "-I", str(model_dir), "-I", str(d)]
        if not any(L.is_conv for L in model.layers):
            flags.append("-DQSNN_NO_CONV")
        objs = []
        for src in (QSNN_SRC_DIR / "qsnn_core.c", model_dir / "qsnn_model.c"):
            o = d / (src.stem + ".o")
            _run(["arm-none-eabi-gcc", *flags, "-c", str(src), "-o", str(o)])
            objs.append(str(o))
        _run(["arm-none-eabi-gcc", *flags[:2], "-std=gnu99", "-O2", "-ffreestanding", "-Wall", "-Wextra", "-Werror",
              "-I", str(QSNN_INCLUDE_DIR), "-I", str(model_dir), "-I", str(d), "-c", str(d / "main.c"), "-o",
              str(d / "main.o")])
        elf = d / "bench.elf"
        _run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-nostartfiles", "-T", str(d / "m4.ld"),
              str(d / "main.o"), *objs, "-lgcc", "-o", str(elf)])
        res = subprocess.run(["qemu-system-arm", "-M", "netduinoplus2", "-nographic", "-monitor", "none", "-serial",
                              "null", "-semihosting-config", "enable=on,target=native", "-icount", "shift=0",
                              "-kernel", str(elf)], capture_output=True, text=True, timeout=900)
    kv = re.findall(r"(\w+)=(\d+)", res.stdout + res.stderr)
    if res.returncode != 0 or not kv:
        raise RuntimeError(f"QEMU run failed (exit {res.returncode}): {(res.stdout + res.stderr)[-400:]}")
    points: dict[int, int] = {}
    last_point = None
    info: dict[str, int] = {}
    for k, v in kv:
        if k == "point":
            last_point = int(v)
        elif k == "instr" and last_point is not None:
            points[last_point] = int(v)
        else:
            info[k] = int(v)
    if info.get("mismatches", 1):
        raise RuntimeError(f"the Cortex-M4 outputs differ from the reference on {info.get('mismatches')} values")
    kernels = CCore(model).layer_kernels()
    steps = clips * T
    rows = []
    for li, L in enumerate(model.layers):
        rows.append({"part": f"layer {li}", "kind": L.kind, "w_bits": L.w_bits, "n_in": L.n_in, "n_out": L.n_out,
                     "recurrent": L.recurrent, "kernel": kernels[li],
                     "instructions_per_frame": points[1 + li] / steps})
    rows.append({"part": "readout", "instructions_per_frame": points[MAX_LAYERS + 1] / steps})
    total = sum(float(r["instructions_per_frame"]) for r in rows)  # type: ignore[arg-type]
    name = str(model_dir.relative_to(REPO)) if model_dir.is_relative_to(REPO) else str(model_dir)
    return {"model": name, "model_hash": model.short_hash, "clips": clips, "frames_per_clip": T,
            "parts": rows, "network_instructions_per_frame": total, "network_instructions_per_clip": total * T,
            "hook_overhead_subtracted": info.get("hook_overhead"), "stack_painted": info.get("stack_painted"),
            "agreement": 1.0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", type=Path, default=[REPO / "firmware" / "models" / "default"])
    ap.add_argument("--clips", type=int, default=8, help="test clips (spread over the split)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    a = ap.parse_args(argv)
    results = []
    for m in a.models:
        r = measure(m.resolve(), a.clips)
        results.append(r)
        print(f"\n{r['model']} ({r['model_hash']}), {a.clips} clips, Cortex-M4 instructions (QEMU icount):")
        print(f"{'part':10s} {'kind':6s} {'bits':>4s} {'in':>6s} {'out':>6s} {'kernel':18s} {'per frame':>10s} "
              f"{'per clip':>11s}")
        for p in r["parts"]:  # type: ignore[union-attr]
            print(f"{p['part']:10s} {p.get('kind', ''):6s} {p.get('w_bits', ''):>4} {p.get('n_in', ''):>6} "
                  f"{p.get('n_out', ''):>6} {p.get('kernel', ''):18s} {p['instructions_per_frame']:10.0f} "
                  f"{p['instructions_per_frame'] * r['frames_per_clip']:11.0f}")
        print(f"{'total':10s} {'':6s} {'':>4s} {'':>6s} {'':>6s} {'':18s} {r['network_instructions_per_frame']:10.0f} "
              f"{r['network_instructions_per_clip']:11.0f}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
