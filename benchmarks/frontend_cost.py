"""Cost of the integer audio front end per 20 ms frame: operations counted analytically,
instructions measured (host x86-64 under valgrind's callgrind; Cortex-M4 under
`qemu-system-arm -M netduinoplus2 -icount shift=0`, where TIM2 counts one tick per
instruction), state bytes, stack bytes (-fstack-usage per target, and stack painting on the
emulated Cortex-M4) and table/code bytes per target.

    python benchmarks/frontend_cost.py                 # print the tables
    python benchmarks/frontend_cost.py --update-doc    # also rewrite the block in docs/frontend.md

The input is one real clip of the Speech Commands test split (the first in the split's
order), or a synthetic chirp if the dataset is not available. Every measured build is
checked for correct features (the Cortex-M4 run compares against the host's features).
"""
from __future__ import annotations

import argparse
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qsnnkit import frontend, frontend_tables
from qsnnkit.clib import STRICT_CFLAGS
from qsnnkit.paths import QSNN_INCLUDE_DIR, QSNN_SRC_DIR, REPO_ROOT

FE_C = QSNN_SRC_DIR / "qsnn_frontend.c"
DOC = REPO_ROOT / "docs" / "frontend.md"
DOC_BEGIN = "<!-- frontend_cost:begin (written by benchmarks/frontend_cost.py --update-doc) -->"
DOC_END = "<!-- frontend_cost:end -->"
TARGET_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-ffreestanding", "-O2"]
TARGETS: dict[str, tuple[list[str], str]] = {
    "host x86-64 (gcc)": (["cc"], "size"),
    "Cortex-M4 (arm-none-eabi-gcc)": (["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb"], "arm-none-eabi-size"),
    "RV32IMC (riscv64-unknown-elf-gcc)": (["riscv64-unknown-elf-gcc", "-march=rv32imc", "-mabi=ilp32"],
                                          "riscv64-unknown-elf-size"),
    "Xtensa LX106 (xtensa-lx106-elf-gcc)": (["xtensa-lx106-elf-gcc", "-mtext-section-literals"],
                                            "xtensa-lx106-elf-size"),
}


# --- analytic operation count -------------------------------------------------------------

@dataclass
class Ops:
    """Arithmetic operations per frame, by kind (loads, stores and loop control not counted)."""

    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, n: int) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + n


def count_ops(sh_negative: bool = True) -> dict[str, Ops]:
    """Walk the loops of qsnn_fe_frame (same bounds as the C code) and count operations."""
    t = frontend_tables.build()
    steps: dict[str, Ops] = {}

    o = steps.setdefault("1 window", Ops())
    o.add("mul 16x16->32", 480)
    o.add("add/abs/or 32", 2 * 480)

    o = steps.setdefault("2 normalise", Ops())
    o.add("shift 32", 512)
    if sh_negative:
        o.add("add 32", 512)

    o = steps.setdefault("3 FFT 256 complex", Ops())
    length = 2
    while length <= 256:
        half = length // 2
        for j in range(half):
            n_bfly = 256 // length
            if j == 0:
                o.add("add 32", 4 * n_bfly)
            else:
                o.add("mul 32x16->64", 4 * n_bfly)
                o.add("add 64", 4 * n_bfly)          # two product sums + two rounding constants
                o.add("shift 64", 2 * n_bfly)
                o.add("add 32", 4 * n_bfly)
        length *= 2

    nb = len(t.mel_band)
    o = steps.setdefault("4 split (bins 1..127)", Ops())
    o.add("add 32", 4 * nb + 2 * nb)
    o.add("mul 32x16->64", 4 * nb)
    o.add("add 64", 4 * nb)
    o.add("shift 64", 2 * nb)

    o = steps.setdefault("5 power + mel", Ops())
    o.add("mul 32x32->64", 2 * nb)
    o.add("add 64", nb)
    o.add("shift 64", nb)
    o.add("mul 64x16->64", 2 * nb)
    o.add("add 64", 2 * nb)
    o.add("add 32", nb)                                # 32768 - w

    o = steps.setdefault("6 log + clamp", Ops())
    o.add("compare/shift 64", 40 * (6 + 3 * 2))        # msb search, 3 threshold shifts + compares
    o.add("add 32", 40 * 5)
    return steps


def ops_table(steps: dict[str, Ops]) -> list[tuple[str, int, int, int]]:
    rows = []
    for name, o in steps.items():
        mul = sum(v for k, v in o.counts.items() if k.startswith("mul"))
        add = sum(v for k, v in o.counts.items() if k.startswith("add"))
        other = sum(v for k, v in o.counts.items() if not k.startswith(("mul", "add")))
        rows.append((name, mul, add, other))
    return rows


# --- input ------------------------------------------------------------------------------------

def bench_clip() -> tuple[str, np.ndarray]:
    try:
        from qsnnkit import data

        items = data.list_split(None, "test")
        p = items[0][0]
        return f"{p.parent.name}/{p.name} (first clip of the test split)", frontend.fit_clip(data.read_wav(p))
    except Exception as e:  # noqa: BLE001 - any missing dataset: fall back to a synthetic clip
        t = np.arange(16000) / 16000
        x = 8000 * np.sin(2 * np.pi * (200 + 1800 * t) * t) + np.random.default_rng(0).normal(0, 300, 16000)
        return f"synthetic chirp + noise ({type(e).__name__}: dataset unavailable)", x.astype(np.int16)


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if res.returncode != 0:
        raise RuntimeError(" ".join(map(str, cmd)) + f"\nexit {res.returncode}\n" + res.stdout + res.stderr)
    return res


# --- per-target sizes and stack -------------------------------------------------------------------

SizeRow = tuple[str, int | None, int | None, int | None, int | None, str]


def target_sizes(work: Path) -> list[SizeRow]:
    """(target, .text bytes, .rodata bytes, stack of qsnn_fe_push + qsnn_fe_frame, of qsnn_fe_clip, note)."""
    rows: list[SizeRow] = []
    for name, (cc, size_tool) in TARGETS.items():
        if shutil.which(cc[0]) is None:
            rows.append((name, None, None, None, None, f"{cc[0]} not installed"))
            continue
        d = work / re.sub(r"\W+", "_", name)
        d.mkdir()
        obj = d / "qsnn_frontend.o"
        _run([*cc, *TARGET_FLAGS, "-fstack-usage", "-I", str(QSNN_INCLUDE_DIR), "-c", str(FE_C), "-o", str(obj)])
        su: dict[str, int] = {}
        for line in (d / "qsnn_frontend.su").read_text().splitlines():
            fn = line.split("\t")[0].split(":")[-1]
            su[fn] = int(line.split("\t")[1])
        secs = {}
        for line in _run([size_tool, "-A", str(obj)]).stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                secs[parts[0]] = int(parts[1])
        text = sum(v for k, v in secs.items() if k.startswith(".text") or k.startswith(".literal"))
        rodata = sum(v for k, v in secs.items() if k.startswith(".rodata"))
        undef = _run([size_tool.replace("size", "nm"), "-u", str(obj)]).stdout.split()
        helpers = sorted(s for s in undef if s != "U")
        note = ("needs " + ", ".join(helpers) + " from libgcc/ROM") if helpers else "no libgcc helpers"
        stack = su.get("qsnn_fe_push", 0) + su.get("qsnn_fe_frame", 0)
        rows.append((name, text, rodata, stack, su.get("qsnn_fe_clip", 0) + stack, note))
    return rows


# --- host: callgrind ---------------------------------------------------------------------------

HOST_DRIVER = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "qsnn_frontend.h"
int main(int argc, char **argv)
{
    static int16_t pcm[16000];
    uint8_t feat[QSNN_N_BANDS];
    unsigned sum = 0, frames = 0;
    int reps, r, h;
    unsigned i;
    struct timespec t0, t1;
    qsnn_fe_state_t st;
    FILE *f;
    if (argc != 3) return 2;
    reps = atoi(argv[2]);
    f = fopen(argv[1], "rb");
    if (!f || fread(pcm, 2, 16000, f) != 16000) return 2;
    fclose(f);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (r = 0; r < reps; r++) {
        qsnn_fe_reset(&st);
        for (h = 0; h < 50; h++) {
            if (qsnn_fe_push(&st, pcm + 320 * h, feat)) {
                frames++;
                for (i = 0; i < QSNN_N_BANDS; i++) sum += feat[i];
            }
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("frames=%u checksum=%u ns_per_frame=%.1f\n", frames, sum,
           ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / frames);
    return 0;
}
"""


def host_measure(work: Path, pcm: np.ndarray, expect: np.ndarray) -> dict[str, Any]:
    d = work / "host"
    d.mkdir()
    (d / "driver.c").write_text(HOST_DRIVER)
    (d / "clip.raw").write_bytes(pcm.astype("<i2").tobytes())
    exe = d / "driver"
    _run(["cc", *STRICT_CFLAGS, "-I", str(QSNN_INCLUDE_DIR), str(d / "driver.c"), str(FE_C), "-o", str(exe)])
    out: dict[str, object] = {}
    res = _run([str(exe), str(d / "clip.raw"), "2000"]).stdout
    m = re.search(r"frames=(\d+) checksum=(\d+) ns_per_frame=([\d.]+)", res)
    assert m, res
    if int(m.group(2)) != 2000 * int(expect.astype(np.int64).sum()):
        raise RuntimeError("host driver computed different features than the ctypes binding")
    out["ns_per_frame"] = float(m.group(3))
    out["cpu"] = platform.processor() or platform.machine()
    if shutil.which("valgrind"):
        cg = d / "callgrind.out"
        _run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}", "--toggle-collect=qsnn_fe_frame",
              str(exe), str(d / "clip.raw"), "1"])
        totals = [ln for ln in cg.read_text().splitlines() if ln.startswith(("totals:", "summary:"))]
        ir = int(totals[-1].split()[1])
        out["ir_per_frame"] = ir / expect.shape[0]
    return out


# --- Cortex-M4 under QEMU ------------------------------------------------------------------------

#: Bare-metal runtime for a benchmark ELF on QEMU netduinoplus2: semihosting output and exit,
#: TIM2 as an instruction counter (-icount shift=0), stack painting; the benchmark defines bench().
M4_RUNTIME_HEAD = r"""
extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
#define REG(a) (*(volatile uint32_t *)(a))
#define TIM2 0x40000000u
#define PAINT 0xC0FFEE11u

static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static void put_kv(const char *k, uint32_t v)
{
    char buf[64], digits[12];
    int n = 0, d = 0;
    while (*k) buf[n++] = *k++;
    buf[n++] = '=';
    do { digits[d++] = (char)('0' + v % 10u); v /= 10u; } while (v);
    while (d) buf[n++] = digits[--d];
    buf[n++] = '\n';
    buf[n] = 0;
    semihost(0x04, buf);
}

static void qemu_exit(int code)
{
    uint32_t blk[2] = {0x20026u, (uint32_t)code};
    semihost(0x20, blk);
    for (;;) { }
}

static inline uint32_t now(void) { return REG(TIM2 + 0x24u); }

"""

M4_RUNTIME_TAIL = r"""
void reset_handler(void)
{
    uint32_t *s = &_sidata, *d = &_sdata;
    while (d < &_edata) *d++ = *s++;
    for (d = &_sbss; d < &_ebss; d++) *d = 0u;
    qemu_exit(bench());
}

void fault_handler(void) { qemu_exit(99); }

__attribute__((section(".isr_vector"), used))
void (*const vectors[16])(void) = {
    (void (*)(void))(&_estack), reset_handler, fault_handler, fault_handler, fault_handler,
    fault_handler, fault_handler, 0, 0, 0, 0, fault_handler, fault_handler, 0, fault_handler, fault_handler,
};
"""

M4_MAIN = r"""
#include <stdint.h>
#include "qsnn_frontend.h"
#include "bench_data.h"

""" + M4_RUNTIME_HEAD + r"""
#ifdef QSNN_PROFILE
/* the front end's step marks (qsnn_fe_frame): each interval, less the hook's own cost, goes to
 * the step that ends it */
static uint32_t fe_last, fe_ovh, fe_acc[5], fe_frames;
void qsnn_fe_profile_mark(uint32_t point)
{
    const uint32_t t = now();
    if (point != 0u) {
        fe_acc[point] += t - fe_last - fe_ovh;
    } else {
        fe_frames++;
    }
    fe_last = now();
}
#endif

static int bench(void)
{
    qsnn_fe_state_t st;
    uint8_t feat[QSNN_N_BANDS];
    uint32_t t0, t1, ovh, c, total, mn, mx, frames, bad = 0u, h, i, k, sp, *p;

    REG(0x40023840u) |= 1u;                 /* RCC APB1ENR: TIM2 clock */
    REG(TIM2 + 0x28u) = 0u;                 /* PSC */
    REG(TIM2 + 0x2Cu) = 0xFFFFFFFFu;        /* ARR */
    REG(TIM2 + 0x14u) = 1u;                 /* EGR: update */
    REG(TIM2 + 0x00u) = 1u;                 /* CR1: CEN */
    t0 = now();
    t1 = now();
    ovh = t1 - t0;
#ifdef QSNN_PROFILE
    qsnn_fe_profile_mark(0u);
    qsnn_fe_profile_mark(1u);
    fe_ovh = fe_acc[1];
    fe_acc[1] = 0u;
    fe_frames = 0u;
#endif

    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (p = &_ebss; p < (uint32_t *)(sp - 64u); p++) *p = PAINT;

    for (k = 0u; k < BENCH_CLIPS; k++) {
        total = 0u;
        mn = 0xFFFFFFFFu;
        mx = 0u;
        frames = 0u;
        qsnn_fe_reset(&st);
        for (h = 0u; h < 50u; h++) {
            int made;
            t0 = now();
            made = qsnn_fe_push(&st, &BENCH_PCM[k][320u * h], feat);
            t1 = now();
            if (!made) continue;
            c = t1 - t0 - ovh;
            total += c;
            if (c < mn) mn = c;
            if (c > mx) mx = c;
            for (i = 0u; i < QSNN_N_BANDS; i++) bad += feat[i] != BENCH_EXPECT[k][frames][i];
            frames++;
        }
        put_kv("clip", k);
        put_kv("frames", frames);
        put_kv("instr_total", total);
        put_kv("instr_min", mn);
        put_kv("instr_max", mx);
    }
    for (p = &_ebss; p < (uint32_t *)(sp - 64u) && *p == PAINT; p++) { }
    put_kv("timer_overhead", ovh);
#ifdef QSNN_PROFILE
    for (i = 1u; i < 5u; i++) put_kv("fe_step", fe_acc[i]);
    put_kv("fe_frames", fe_frames);
    put_kv("fe_hook_overhead", fe_ovh);
#endif
    put_kv("stack_painted", sp - (uint32_t)p);
    put_kv("state_bytes", (uint32_t)sizeof(qsnn_fe_state_t));
    put_kv("mismatches", bad);
    return bad != 0u;
}

""" + M4_RUNTIME_TAIL

M4_LD = """
MEMORY {
  FLASH (rx) : ORIGIN = 0x08000000, LENGTH = 1024K
  RAM (rwx)  : ORIGIN = 0x20000000, LENGTH = 128K
}
_estack = ORIGIN(RAM) + LENGTH(RAM);
SECTIONS {
  .isr_vector : { KEEP(*(.isr_vector)) } > FLASH
  .text : { *(.text*) *(.rodata*) . = ALIGN(4); } > FLASH
  .data : { _sdata = .; *(.data*) . = ALIGN(4); _edata = .; } > RAM AT> FLASH
  _sidata = LOADADDR(.data);
  .bss : { _sbss = .; *(.bss*) *(COMMON) . = ALIGN(4); _ebss = .; } > RAM AT> RAM
}
"""


def m4_measure(work: Path, clips: list[np.ndarray], profile: bool = False) -> dict[str, Any] | str:
    """Instructions per frame for each 1 s clip, stack by painting, sizeof(state); raises if the
    emulated Cortex-M4 computes different features than the host. ``profile``: the front end
    built with -DQSNN_PROFILE, and the instructions of each of its steps summed over all frames
    (``fe_steps``: window, block floating point with the FFT's first two stages, the FFT's other
    six stages, split + power + mel + log)."""
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    d = work / ("m4_profile" if profile else "m4")
    d.mkdir()
    prof = ["-DQSNN_PROFILE"] if profile else []
    expect = [frontend.clip_features(c) for c in clips]
    data = ["#include <stdint.h>", f"#define BENCH_CLIPS {len(clips)}u",
            f"static const int16_t BENCH_PCM[{len(clips)}][16000] = {{"
            + ",".join("{" + ",".join(map(str, c.tolist())) + "}" for c in clips) + "};",
            f"static const uint8_t BENCH_EXPECT[{len(clips)}][49][40] = {{"
            + ",".join("{" + ",".join("{" + ",".join(map(str, r)) + "}" for r in e.tolist()) + "}" for e in expect)
            + "};"]
    (d / "bench_data.h").write_text("\n".join(data) + "\n")
    (d / "main.c").write_text(M4_MAIN)
    (d / "m4.ld").write_text(M4_LD)
    cpu = ["-mcpu=cortex-m4", "-mthumb"]
    _run(["arm-none-eabi-gcc", *cpu, *TARGET_FLAGS, *prof, "-I", str(QSNN_INCLUDE_DIR), "-c", str(FE_C),
          "-o", str(d / "fe.o")])
    _run(["arm-none-eabi-gcc", *cpu, "-std=gnu99", "-O2", "-ffreestanding", "-Wall", "-Wextra", "-Werror", *prof,
          "-I", str(QSNN_INCLUDE_DIR), "-I", str(d), "-c", str(d / "main.c"), "-o", str(d / "main.o")])
    elf = d / "bench.elf"
    _run(["arm-none-eabi-gcc", *cpu, "-nostdlib", "-nostartfiles", "-T", str(d / "m4.ld"), str(d / "main.o"),
          str(d / "fe.o"), "-lgcc", "-o", str(elf)])
    cmd = ["qemu-system-arm", "-M", "netduinoplus2", "-nographic", "-monitor", "none", "-serial", "null",
           "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", str(elf)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    pairs = re.findall(r"(\w+)=(\d+)", res.stdout + res.stderr)
    if res.returncode != 0 or not pairs:
        return f"QEMU run failed (exit {res.returncode}): {(res.stdout + res.stderr)[-400:]}"
    out: dict[str, Any] = {"clips": [], "fe_steps": []}
    for key, val in pairs:
        if key == "clip":
            out["clips"].append({})
        elif key == "fe_step":
            out["fe_steps"].append(int(val))
        elif out["clips"] and key in ("frames", "instr_total", "instr_min", "instr_max"):
            out["clips"][-1][key] = int(val)
        else:
            out[key] = int(val)
    if out["mismatches"]:
        raise RuntimeError(f"Cortex-M4 features differ from the host in {out['mismatches']} values")
    return out


# --- fidelity against a float64 log-mel ---------------------------------------------------------

def float_log_mel(pcm: np.ndarray) -> np.ndarray:
    """floor(4 log2(E * 2^16)) in float64 for the same frames, window, FFT and mel triangles."""
    t = frontend_tables.build()
    mel = np.zeros((40, 257))
    for q, (b, w) in enumerate(zip(t.mel_band, t.mel_w)):
        if b >= 0:
            mel[b, t.mel_k0 + q] = (32768 - w) / 32768
        if b + 1 < 40:
            mel[b + 1, t.mel_k0 + q] = w / 32768
    idx = 160 + 320 * np.arange(49)[:, None] + np.arange(480)[None, :]
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(480) / 480)
    e = (np.abs(np.fft.rfft(pcm.astype(np.float64)[idx] * win, 512)) ** 2) @ mel.T
    return np.floor(4 * np.log2(np.maximum(e * 2.0**16, 1e-300)))


def fidelity() -> str:
    try:
        from qsnnkit import data

        items = data.list_split(None, "test")
    except Exception as e:  # noqa: BLE001
        return f"Fidelity not measured: dataset unavailable ({e})."
    corr, same, within1, n, peaks = [], 0, 0, 0, []
    for p, _ in items:
        pcm = frontend.fit_clip(data.read_wav(p))
        got = frontend.clip_features(pcm).astype(np.float64)
        ref = float_log_mel(pcm)
        live = ref >= 1
        d = np.abs(got - ref)[live]
        same += int((d == 0).sum())
        within1 += int((d <= 1).sum())
        n += int(live.sum())
        corr.append(np.corrcoef(got[live], ref[live])[0, 1])
        peaks.append(int(np.abs(pcm.astype(np.int32)).max()))
    corr_a = np.array(corr)
    quiet = np.argsort(peaks)[:5]
    return (f"Against a float64 log-mel of the same frames (`floor(4 log2(E * 2^16))`, numpy FFT, same "
            f"triangles), over all {len(items)} test clips ({n:,} band values with float feature >= 1): "
            f"{100 * same / n:.2f}% identical, {100 * within1 / n:.3f}% within one step (0.75 dB); "
            f"per-clip correlation min {corr_a.min():.6f}, median {np.median(corr_a):.7f}. "
            f"The five quietest clips (peaks {', '.join(str(peaks[i]) for i in quiet)}) correlate at "
            f"{', '.join(f'{corr_a[i]:.7f}' for i in quiet)}.")


# --- report ---------------------------------------------------------------------------------------

def md_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def report() -> str:
    clip_name, pcm = bench_clip()
    expect = frontend.clip_features(pcm)
    t = frontend_tables.build()
    table_bytes = {
        "QSNN_FE_WIN (uint16)": 2 * len(t.win), "QSNN_FE_SIN (uint16)": 2 * len(t.sin_q),
        "QSNN_FE_BITREV (uint8)": len(t.bitrev), "QSNN_FE_MEL_BAND (int8)": len(t.mel_band),
        "QSNN_FE_MEL_W (uint16)": 2 * len(t.mel_w), "QSNN_FE_LOG_Q62 (uint64)": 8 * len(t.log_q62),
    }
    parts: list[str] = [f"Input: {clip_name}, 49 frames.", "", "**Fidelity:** " + fidelity(), ""]

    rows = ops_table(count_ops())
    tot = [sum(r[1] for r in rows), sum(r[2] for r in rows), sum(r[3] for r in rows)]
    parts += ["**Operations per frame (analytic, from the loop bounds of qsnn_fe_frame; right-shift path of "
              "step 2, the usual one for speech; the left-shift path has 512 adds fewer):**", "",
              md_table(["step", "multiplies", "adds", "shifts/compares"],
                       [[r[0], str(r[1]), str(r[2]), str(r[3])] for r in rows]
                       + [["**total**", f"**{tot[0]}**", f"**{tot[1]}**", f"**{tot[2]}**"]]), ""]
    mults = count_ops()
    kinds: dict[str, int] = {}
    for o in mults.values():
        for k, v in o.counts.items():
            if k.startswith("mul"):
                kinds[k] = kinds.get(k, 0) + v
    parts += ["Multiplies by width: " + ", ".join(f"{v} x {k[4:]}" for k, v in kinds.items()) + ".", ""]

    with tempfile.TemporaryDirectory(prefix="qsnn-fe-cost-") as tmp:
        work = Path(tmp)
        host = host_measure(work, pcm, expect)
        loud = np.random.default_rng(0).choice(np.array([-32768, 32767], dtype=np.int16), 16000)
        quiet = (pcm.astype(np.int32) >> 12).astype(np.int16)
        clip_labels = ["the speech clip", "full-scale noise", "the speech clip >> 12 (left-shift path)",
                       "all zeros (early exit)"]
        m4 = m4_measure(work, [pcm, loud, quiet, np.zeros(16000, dtype=np.int16)])
        m4_steps = m4_measure(work, [pcm], profile=True)
        sizes = target_sizes(work)

    meas = []
    if "ir_per_frame" in host:
        meas.append(["host x86-64, gcc -O2 (" + str(host["cpu"]) + ")", "valgrind callgrind, Ir inside qsnn_fe_frame",
                     f"{host['ir_per_frame']:,.0f}", "-"])
    meas.append(["host x86-64, gcc -O2", "wall clock, 2000 x 49 frames", "-",
                 f"{host['ns_per_frame'] / 1000:.2f} us/frame"])
    if isinstance(m4, dict):
        for label, r in zip(clip_labels, m4["clips"]):
            per = r["instr_total"] / r["frames"]
            meas.append([f"Cortex-M4, arm-none-eabi-gcc -O2, QEMU netduinoplus2 -icount shift=0; {label}",
                         "TIM2 ticks around qsnn_fe_push (= instructions)",
                         f"{per:,.0f} (min {r['instr_min']:,}, max {r['instr_max']:,})",
                         f"{per * 50 / 1e6:.2f} M instr per s of audio; features equal the host's"])
    else:
        meas.append(["Cortex-M4 QEMU", "not measured", "-", m4])
    parts += ["**Measured instructions per frame:**", "",
              md_table(["build", "method", "instructions / frame", "note"], meas), ""]
    if isinstance(m4_steps, dict) and m4_steps["fe_steps"]:
        frames = int(m4_steps["fe_frames"])
        per = [v / frames for v in m4_steps["fe_steps"]]
        names = ["1 window (480 products, bit-reversed placement, zero padding)",
                 "2 block floating point, with the FFT's first two stages (radix-4, exact)",
                 "3 FFT stages 3-8 (256 complex, 64-bit twiddle products)",
                 "4-6 split to 512-point bins 1..127, power, mel, log"]
        tot = sum(per)
        parts += [f"**Where a frame's instructions go** (Cortex-M4, the front end built with `-DQSNN_PROFILE`: "
                  f"marks between the steps of `qsnn_fe_frame`, the hook's own cost subtracted; the speech clip, "
                  f"{frames} frames; the rest of `qsnn_fe_push` is the history copy and the call):", "",
                  md_table(["step", "instructions / frame", "share"],
                           [[n, f"{v:,.0f}", f"{100 * v / tot:.1f}%"] for n, v in zip(names, per)]
                           + [["**qsnn_fe_frame**", f"**{tot:,.0f}**", "100%"]]), ""]

    state = m4["state_bytes"] if isinstance(m4, dict) else None
    parts += ["**Memory:**", "",
              f"- State: `sizeof(qsnn_fe_state_t)` = {frontend.ctypes.sizeof(frontend.FeState)} bytes on the host"
              + (f", {state} bytes on Cortex-M4" if state else "") + " (160 int16 of history + the primed flag).",
              "- Tables (flash): " + ", ".join(f"{k} {v} B" for k, v in table_bytes.items())
              + f"; **{sum(table_bytes.values())} B** in all.",
              ]
    if isinstance(m4, dict):
        parts.append(f"- Stack on the emulated Cortex-M4, by painting: {m4['stack_painted']} bytes below the "
                     "caller's stack pointer during qsnn_fe_push.")
    parts += ["", "**Per target (`-std=c99 -Wall -Wextra -Werror -ffreestanding -O2 -c`, `-fstack-usage`):**", "",
              md_table(["target", ".text B", ".rodata B (tables)", "stack push+frame B", "stack qsnn_fe_clip B",
                        "external symbols"],
                       [[r[0], *(str(v) if v is not None else "-" for v in r[1:5]), r[5]] for r in sizes]), ""]
    return "\n".join(parts)


def update_doc(text: str) -> None:
    doc = DOC.read_text()
    if DOC_BEGIN not in doc or DOC_END not in doc:
        raise SystemExit(f"{DOC} lacks the markers {DOC_BEGIN!r} ... {DOC_END!r}")
    head, rest = doc.split(DOC_BEGIN, 1)
    _, tail = rest.split(DOC_END, 1)
    DOC.write_text(head + DOC_BEGIN + "\n" + text.strip() + "\n" + DOC_END + tail)
    print(f"updated {DOC}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--update-doc", action="store_true", help=f"rewrite the measured block in {DOC.name}")
    args = ap.parse_args(argv)
    text = report()
    print(text)
    if args.update_doc:
        update_doc(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
