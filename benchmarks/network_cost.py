"""Where a model's network instructions go on the emulated Cortex-M4, layer by layer.

    python benchmarks/network_cost.py [MODEL_DIR ...] [--clips 8] [--kernels K0,K1,...] [--json docs/results/network_cost.json]

Builds a bare-metal ELF (QEMU netduinoplus2, -icount shift=0: TIM2 counts instructions)
with the model's C as this converter generates it from MODEL_DIR/model.npz (a folder's own
C may be older), the core built with -DQSNN_PROFILE (a hook after every layer, and around
the fast kernels' neuron loops) and, for the same test clips, the features and
outputs the integer reference expects; runs every step of every clip and prints, per layer
and kernel, the mean instructions per frame and per 1 s clip (49 frames), the readout and the
step's own overhead, with the hook's cost subtracted. Each layer splits into its sums (the
synaptic work) and its neuron updates, set against the operations the reference counts on the
same clips (8-bit MACs, or active input taps and the synapses they drive): instructions per
operation, per tap and per neuron update. Per step, the sums are fitted as fixed + per tap x
active taps: the fixed part is the kernel's measured floor, what it costs when no input is
active. The run fails if any clip's outputs differ from the reference. Default model:
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
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from frontend_cost import M4_LD, M4_RUNTIME_HEAD, M4_RUNTIME_TAIL, _run  # noqa: E402

from qsnnkit import nmnist, reference  # noqa: E402
from qsnnkit.dataset import features, load_split  # noqa: E402
from qsnnkit.host.eval import spread  # noqa: E402
from qsnnkit.convert import codegen  # noqa: E402
from qsnnkit.model import ConvertedModel, load_converted  # noqa: E402
from qsnnkit.paths import QSNN_INCLUDE_DIR, QSNN_SRC_DIR  # noqa: E402
from qsnnkit.spec import MAX_LAYERS  # noqa: E402

BENCH = r"""
static uint32_t arena[(QSNN_MODEL_ARENA_BYTES + 3u) / 4u];
static uint32_t last, ovh, depth, pend_all, pend_fire, nstep;
static uint32_t acc[QSNN_MAX_LAYERS + 2u], fire[QSNN_MAX_LAYERS + 2u];
/* per step and point: all instructions and those in neuron loops */
static uint32_t step_all[BENCH_CLIPS * BENCH_FRAMES][QSNN_MAX_LAYERS + 2u];
static uint32_t step_fire[BENCH_CLIPS * BENCH_FRAMES][QSNN_MAX_LAYERS + 2u];

/* Each interval between two marks (less the hook's own cost) goes to the layer point that
 * ends it; the part spent inside neuron loops (between FIRE_BEGIN and FIRE_END, which may
 * nest) is also counted in fire[]. */
void qsnn_profile_mark(uint32_t point)
{
    const uint32_t t = now();
    const uint32_t d = t - last - ovh;
    if (point == 0u) {
        pend_all = 0u;
        pend_fire = 0u;
        depth = 0u;
        nstep++;
    } else {
        pend_all += d;
        if (depth != 0u) pend_fire += d;
        if (point == 0x100u) {
            depth++;
        } else if (point == 0x101u) {
            depth--;
        } else {
            acc[point] += pend_all;
            fire[point] += pend_fire;
            if (nstep != 0u && nstep <= BENCH_CLIPS * BENCH_FRAMES) {
                step_all[nstep - 1u][point] = pend_all;
                step_fire[nstep - 1u][point] = pend_fire;
            }
            pend_all = 0u;
            pend_fire = 0u;
        }
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
    fire[1] = 0u;
    nstep = 0u;
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
    for (j = 1u; j < QSNN_MAX_LAYERS + 2u; j++) { put_kv("point", j); put_kv("instr", acc[j]); put_kv("fire", fire[j]); }
    for (k = 0u; k < BENCH_CLIPS * BENCH_FRAMES; k++) {
        for (j = 1u; j < QSNN_MAX_LAYERS + 2u; j++) { put_kv("sa", step_all[k][j]); put_kv("sf", step_fire[k][j]); }
    }
    put_kv("hook_overhead", ovh);
    put_kv("stack_painted", sp - (uint32_t)p);
    put_kv("mismatches", bad);
    return bad != 0u;
}
"""


def layer_operations(model: ConvertedModel,
                     tr: reference.Trace) -> tuple[list[dict[str, float | None]], list[np.ndarray | None]]:
    """What each layer (and the readout) receives per frame, from the integer reference's
    spikes (its trace over the benchmark's clips): its synaptic operations (8-bit MACs for a first layer on
    features, plus its recurrent synapses' operations if it has them; otherwise active input x synapses it drives, recurrence included, a conv
    layer's history spikes once per step they are read) and its active input taps (an input
    spike and one window reading it: the unit of work of the column kernels), as means and,
    for the taps, per step ([clips * frames], step-major within a clip; None for a layer on
    features)."""
    rows: list[dict[str, float | None]] = []
    per_step: list[np.ndarray | None] = []
    for li, L in enumerate(model.layers):
        if li == 0:
            if L.is_conv:
                macs = float(int(reference.input_reach(L).sum()) * L.kt * L.rows * L.c_in)
            else:
                macs = float(L.n_in * L.n_out)
            if L.recurrent:  # and its binary recurrence on the step before's spikes
                own = tr.spk[0].astype(np.int64).sum(axis=2)[:, :-1]
                macs += float(own.sum()) / (own.shape[0] * (own.shape[1] + 1)) * L.n_out
            rows.append({"synaptic_ops_per_frame": macs, "active_inputs_per_frame": None, "input_firing_rate": None})
            per_step.append(None)
            continue
        spk_in = tr.spk[li - 1].astype(np.int64)  # [B, T, n_in]
        if L.is_conv:  # the window holds this step's spikes and the kt - 1 before
            now = (spk_in * np.tile(reference.input_reach(L), L.c_in)).sum(axis=2)
            taps = np.zeros_like(now)
            for dt in range(L.kt):
                taps[:, dt:] += now[:, :now.shape[1] - dt]
            fan = L.rows
        else:
            taps = spk_in.sum(axis=2)
            fan = L.n_out
        sops = taps * fan
        if L.recurrent:  # the layer's own spikes of the step before
            own = np.zeros_like(taps)
            own[:, 1:] = tr.spk[li].astype(np.int64).sum(axis=2)[:, :-1]
            taps = taps + own
            sops = sops + own * L.n_out
        rows.append({"synaptic_ops_per_frame": float(sops.mean()), "active_inputs_per_frame": float(taps.mean()),
                     "input_firing_rate": float(spk_in.mean())})
        per_step.append(taps.reshape(-1).astype(np.float64))
    last = float(tr.spk[-1].astype(np.int64).sum(axis=2).mean())
    rows.append({"synaptic_ops_per_frame": last * model.n_classes, "active_inputs_per_frame": last,
                 "input_firing_rate": float(tr.spk[-1].mean())})
    return rows, per_step


def measure(model_dir: Path, clips: int, kernels: list[str] | None = None) -> dict[str, Any]:
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
    out, tr = reference.run_batch(model, feats, trace=True)  # the outputs to match, and the spikes for the operations
    assert tr is not None
    T = feats.shape[1]
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src_dir = d / "model"  # the model's C as this converter writes it (a folder's own may be older)
        codegen.emit(model, src_dir, kernels)
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
                 "-DQSNN_PROFILE", "-I", str(QSNN_INCLUDE_DIR), "-I", str(src_dir), "-I", str(d)]
        if not any(L.is_conv for L in model.layers):
            flags.append("-DQSNN_NO_CONV")
        if not any(L.mem_bits < 4 for L in model.layers):  # as the firmware build (firmware/scripts/pio_pre.py)
            flags.append("-DQSNN_NO_NARROW_MEM")
        # as the firmware build: only the kernels the model runs (firmware/scripts/pio_pre.py)
        mask = re.search(r"#define QSNN_MODEL_KERNELS (0x[0-9A-Fa-f]+)u", (src_dir / "qsnn_model.h").read_text())
        if mask:
            flags.append(f"-DQSNN_KERNELS_ONLY={mask.group(1)}u")
        objs = []
        for src in (QSNN_SRC_DIR / "qsnn_core.c", src_dir / "qsnn_model.c"):
            obj = d / (src.stem + ".o")
            _run(["arm-none-eabi-gcc", *flags, "-c", str(src), "-o", str(obj)])
            objs.append(str(obj))
        _run(["arm-none-eabi-gcc", *flags[:2], "-std=gnu99", "-O2", "-ffreestanding", "-Wall", "-Wextra", "-Werror",
              "-I", str(QSNN_INCLUDE_DIR), "-I", str(src_dir), "-I", str(d), "-c", str(d / "main.c"), "-o",
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
    fires: dict[int, int] = {}
    per_step: dict[str, list[int]] = {"sa": [], "sf": []}
    last_point = None
    info: dict[str, int] = {}
    for k, v in kv:
        if k == "point":
            last_point = int(v)
        elif k == "instr" and last_point is not None:
            points[last_point] = int(v)
        elif k == "fire" and last_point is not None:
            fires[last_point] = int(v)
        elif k in ("sa", "sf"):
            per_step[k].append(int(v))
        else:
            info[k] = int(v)
    if info.get("mismatches", 1):
        raise RuntimeError(f"the Cortex-M4 outputs differ from the reference on {info.get('mismatches')} values")
    run = codegen.layer_kernels(model, kernels)
    steps = clips * T
    ops, taps = layer_operations(model, tr)
    n_pts = MAX_LAYERS + 1
    if len(per_step["sa"]) != steps * n_pts or len(per_step["sf"]) != steps * n_pts:
        raise RuntimeError(f"expected {steps * n_pts} per-step counts, got {len(per_step['sa'])}")
    step_all = np.array(per_step["sa"], np.float64).reshape(steps, n_pts)
    step_fire = np.array(per_step["sf"], np.float64).reshape(steps, n_pts)
    for j in range(1, n_pts + 1):  # the per-step records are the totals, step by step
        if int(step_all[:, j - 1].sum()) != points.get(j, 0) or int(step_fire[:, j - 1].sum()) != fires.get(j, 0):
            raise RuntimeError(f"point {j}: per-step counts do not add up to the totals")
    rows = []
    for li, L in enumerate(model.layers):
        total, neurons = points[1 + li] / steps, fires.get(1 + li, 0) / steps
        o = ops[li]
        sums = step_all[:, li] - step_fire[:, li]
        # the measured floor: the sums' instructions per step against the step's active taps,
        # fitted as fixed + per_tap x taps (the fixed part is what the kernel costs when no
        # input is active); the neuron loops' fewest instructions in any step
        floor: dict[str, float | None] = {"sums_min": float(sums.min()), "sums_max": float(sums.max()),
                                          "neurons_min": float(step_fire[:, li].min()),
                                          "neurons_max": float(step_fire[:, li].max())}
        x = taps[li]
        if x is not None and np.ptp(x) > 0:
            slope, icpt = np.polyfit(x, sums, 1)
            pred = icpt + slope * x
            ss = float(((sums - sums.mean()) ** 2).sum())
            floor.update({"sums_fixed": float(icpt), "sums_per_tap": float(slope),
                          "fit_r2": 1.0 - float(((sums - pred) ** 2).sum()) / ss if ss else None,
                          "taps_min": float(x.min()), "taps_max": float(x.max())})
        rows.append({"part": f"layer {li}", "kind": L.kind, "w_bits": L.w_bits, "n_in": L.n_in, "n_out": L.n_out,
                     "recurrent": L.recurrent, "kernel": run[li],
                     "instructions_per_frame": total,
                     # the split: neuron loops (fire_group, fire_group2) and the rest (the sums)
                     "neuron_instructions_per_frame": neurons, "synaptic_instructions_per_frame": total - neurons,
                     **o,
                     "instructions_per_neuron_update": neurons / L.n_out if neurons else None,
                     "instructions_per_synaptic_op": (total - neurons) / o["synaptic_ops_per_frame"]
                     if o["synaptic_ops_per_frame"] else None,
                     "instructions_per_active_input": (total - neurons) / o["active_inputs_per_frame"]
                     if o["active_inputs_per_frame"] else None,
                     "per_step": floor})
    rows.append({"part": "readout", "instructions_per_frame": points[MAX_LAYERS + 1] / steps,
                 **ops[len(model.layers)],
                 "per_step": {"min": float(step_all[:, MAX_LAYERS].min()), "max": float(step_all[:, MAX_LAYERS].max())}})
    total = sum(float(r["instructions_per_frame"]) for r in rows)
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
    ap.add_argument("--kernels", default=None,
                    help="comma-separated kernel per layer (qsnn-convert --kernels; default AUTO, the core's choice), "
                         "e.g. AUTO,CONV_EVENT,EVENT to measure the event kernels on a model AUTO runs otherwise")
    a = ap.parse_args(argv)
    kernels = a.kernels.split(",") if a.kernels else None
    results = []
    for m in a.models:
        r = measure(m.resolve(), a.clips, kernels)
        results.append(r)
        print(f"\n{r['model']} ({r['model_hash']}), {a.clips} clips, Cortex-M4 instructions (QEMU icount):")
        print(f"{'part':10s} {'kind':6s} {'bits':>4s} {'in':>6s} {'out':>6s} {'kernel':18s} {'per frame':>10s} "
              f"{'per clip':>11s} {'sums':>9s} {'neurons':>9s} {'syn. ops':>9s} {'taps':>7s} {'/op':>6s} {'/tap':>6s} "
              f"{'/neuron':>7s}")

        def num(v: object, fmt: str) -> str:
            return "-" if v is None else format(v, fmt)

        for p in r["parts"]:
            print(f"{p['part']:10s} {p.get('kind', ''):6s} {p.get('w_bits', ''):>4} {p.get('n_in', ''):>6} "
                  f"{p.get('n_out', ''):>6} {p.get('kernel', ''):18s} {p['instructions_per_frame']:10.0f} "
                  f"{p['instructions_per_frame'] * r['frames_per_clip']:11.0f} "
                  f"{num(p.get('synaptic_instructions_per_frame'), '9.0f'):>9s} "
                  f"{num(p.get('neuron_instructions_per_frame'), '9.0f'):>9s} "
                  f"{num(p.get('synaptic_ops_per_frame'), '9.0f'):>9s} {num(p.get('active_inputs_per_frame'), '7.1f'):>7s} "
                  f"{num(p.get('instructions_per_synaptic_op'), '6.2f'):>6s} "
                  f"{num(p.get('instructions_per_active_input'), '6.1f'):>6s} "
                  f"{num(p.get('instructions_per_neuron_update'), '7.1f'):>7s}")
        print(f"{'total':10s} {'':6s} {'':>4s} {'':>6s} {'':>6s} {'':18s} {r['network_instructions_per_frame']:10.0f} "
              f"{r['network_instructions_per_clip']:11.0f}")
        print(f"\nper step ({r['clips'] * r['frames_per_clip']} steps): the sums' instructions fitted as fixed + "
              "per tap x active taps, and the neuron loops' range")
        print(f"{'part':10s} {'sums min':>9s} {'sums max':>9s} {'fixed':>9s} {'per tap':>8s} {'R^2':>6s} "
              f"{'taps min':>8s} {'taps max':>8s} {'neur. min':>9s} {'neur. max':>9s}")
        for p in r["parts"]:
            f = p.get("per_step", {})
            if "sums_min" not in f:
                continue
            print(f"{p['part']:10s} {f['sums_min']:9.0f} {f['sums_max']:9.0f} {num(f.get('sums_fixed'), '9.0f'):>9s} "
                  f"{num(f.get('sums_per_tap'), '8.2f'):>8s} {num(f.get('fit_r2'), '6.3f'):>6s} "
                  f"{num(f.get('taps_min'), '8.0f'):>8s} {num(f.get('taps_max'), '8.0f'):>8s} "
                  f"{f['neurons_min']:9.0f} {f['neurons_max']:9.0f}")
        print("sums: the layer's instructions outside its neuron loops; neurons: inside them (fire_group, "
              "fire_group2);\nsyn. ops: 8-bit MACs (first layer) or active input x synapses driven; taps: active "
              "input spikes x windows reading them")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
