"""End to end: build the firmware, boot it in QEMU, and run the real CLI (host/eval.py as a
subprocess) on 100 test clips through the emulated serial port (one run, shared with the
faulty-line test: conftest.clean_m4_eval). The device's per-class
outputs must equal the integer reference's exactly on every clip."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qsnnkit.model import load_converted
from qsnnkit.paths import REPO_ROOT

sys.path.insert(0, str(Path(__file__).resolve().parent))
import firmware_support as fw  # noqa: E402
from conftest import CLEAN_M4_CLIPS, EvalRun  # noqa: E402

N_OTHER = 25
KEYS = {"samples", "accuracy", "reference_accuracy", "agreement", "latency", "ram_bytes", "flash_bytes",
        "model_hash", "target", "wall_s_per_clip"}


def test_eval_on_qemu_is_bit_exact(clean_m4_eval: EvalRun) -> None:
    model = load_converted(fw.model_dir_for_tests() / "model.npz")
    s, out = clean_m4_eval.summary, clean_m4_eval.json_path
    assert KEYS <= set(s), KEYS - set(s)
    assert s["samples"] == CLEAN_M4_CLIPS
    if s["agreement"] != 1.0:
        m = s["mismatches"][0]
        raise AssertionError(f"first mismatch {m['path']}: device {m['device_outputs']} != "
                             f"reference {m['reference_outputs']}")
    assert s["label_agreement"] == 1.0 and s["accuracy"] == s["reference_accuracy"]
    assert s["model_hash"] == model.short_hash
    lat = s["latency"]
    assert lat["unit"] == "instructions"
    for part in ("frontend", "network", "total"):
        assert set(lat[part]) >= {"median", "p95"} and lat[part]["median"] > 0
    assert abs(lat["total"]["mean"] - lat["frontend"]["mean"] - lat["network"]["mean"]) < 1e-6 * lat["total"]["mean"]
    # the slowest hop: more than an average hop, less than a whole clip
    assert lat["total"]["median"] / 50 < lat["worst_hop"] < lat["total"]["median"]
    ram = s["ram_bytes"]
    assert 0 < ram["static"] < 128 * 1024 and 0 < ram["stack_peak"] <= ram["stack_reserved"]
    assert 0 < s["flash_bytes"] < 1024 * 1024
    assert s["target"].startswith("qemu:")
    # the report follows the shared results schema (../shared/tools/check_results.py)
    checker = REPO_ROOT.parent / "shared" / "tools" / "check_results.py"
    chk = subprocess.run([sys.executable, str(checker), str(out.parent), str(out)], capture_output=True, text=True)
    assert chk.returncode == 0, chk.stdout + chk.stderr
    # every clip is in the report, and the confusion matrix counts each once
    assert len(s["clips"]) == CLEAN_M4_CLIPS and sum(map(sum, s["confusion"])) == CLEAN_M4_CLIPS
    assert sum(s["confusion"][k][k] for k in range(len(s["confusion"]))) == round(s["accuracy"] * CLEAN_M4_CLIPS)


@pytest.mark.parametrize("target,env,board,hz,ram,clips", [
    # every other target runs 25 clips spread over the test split in CI (the whole split on
    # every target: benchmarks/firmware_cost.py, docs/results/firmware.json)
    ("m0", "qemu_m0", "qemu-microbit-nrf51822", 16_000_000, 16 * 1024, N_OTHER),
    ("m7", "qemu_m7", "qemu-mps2-an500-cortex-m7", 25_000_000, 128 * 1024, N_OTHER),
    ("rv32", "qemu_rv32", "qemu-sifive-e-fe310-rv32imac", 0, 16 * 1024, N_OTHER),
    # Xtensa lx106 on QEMU's sim machine: semihosting console over a pipe (fast), CCOUNT at 40 MHz
    ("lx106", "qemu_lx106", "qemu-xtensa-sim-lx106", 40_000_000, 128 * 1024, N_OTHER),
])
def test_eval_on_other_cores_is_bit_exact(tmp_path: Path, target: str, env: str, board: str, hz: int,
                                          ram: int, clips: int, clean_m4_eval: EvalRun) -> None:
    """The same model, on the same clips as the M4's run (tests/conftest.py clean_m4_eval), on QEMU's microbit (nRF51822, Cortex-M0: no DSP extension, no 64-bit
    multiply instruction, 16 KB of RAM), mps2-an500 (Cortex-M7) and sifive_e (FE310, rv32imac,
    16 KB) and sim (Xtensa lx106: no 32-bit divide or 64-bit multiply in its libgcc, the
    project's own helpers), through `--port qemu:<core>`: the same outputs as the reference on
    every clip; the Cortex-M counters are timers (16 MHz: 62.5 instructions per tick; 25 MHz:
    40), the RISC-V's is mcycle (one per instruction under -icount), the lx106's CCOUNT at
    40 MHz (25 instructions per tick), reported as such."""
    model_dir = fw.model_dir_for_tests()
    elf = fw.built_firmware(model_dir, env)
    out = tmp_path / "eval.json"
    cmd = [sys.executable, str(REPO_ROOT / "host" / "eval.py"), "--port", f"qemu:{target}", "--elf", str(elf),
           "--model", str(model_dir / "model.npz"), "--split", "test", "--limit", str(clips),
           "--jobs", "2", "--json", str(out), "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert res.returncode == 0, f"eval failed ({res.returncode}):\n{res.stdout}\n{res.stderr[-4000:]}"
    s = json.loads(out.read_text())
    assert s["samples"] == clips and s["agreement"] == 1.0, s.get("mismatches", [None])[0]
    assert s["target"] == f"qemu:{board}" and s["latency"]["unit"] == ("timer" if hz else "instructions")
    assert s["latency"]["counter_hz"] == hz and s["latency"]["network"]["median"] > 0
    assert 0 < s["ram_bytes"]["static"] + s["ram_bytes"]["stack_reserved"] <= ram
    # the same clips as the M4's run (25 spread clips are every fourth of its 100), and the same outputs
    m4 = {c["id"]: c for c in clean_m4_eval.summary["clips"]}
    for c in s["clips"]:
        assert c["id"] in m4, f"{c['id']} is not among the M4 run's clips"
        assert c["outputs"] == m4[c["id"]]["outputs"] and c["predicted"] == m4[c["id"]]["predicted"], c["id"]


def test_eval_refuses_an_unknown_emulated_target(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, str(REPO_ROOT / "host" / "eval.py"), "--port", "qemu:z80"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "unknown emulated target 'z80'" in res.stderr and "qemu:m0" in res.stderr


def test_eval_refuses_a_device_built_with_another_model(tmp_path: Path) -> None:
    elf = fw.built_firmware(fw.model_dir_for_tests())
    other = fw.random_model(tmp_path / "other", seed=12345)
    cmd = [sys.executable, str(REPO_ROOT / "host" / "eval.py"), "--elf", str(elf), "--model",
           str(other / "model.npz"), "--limit", "2", "--jobs", "1", "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "device runs model" in res.stderr and load_converted(other / "model.npz").short_hash in res.stderr


def test_eval_says_how_to_build_a_missing_firmware(tmp_path: Path) -> None:
    cmd = [sys.executable, str(REPO_ROOT / "host" / "eval.py"), "--elf", str(tmp_path / "none.elf"),
           "--model", str(fw.model_dir_for_tests() / "model.npz"), "--limit", "1", "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "none.elf not found" in res.stderr and "leave --elf out" in res.stderr, res.stderr


@pytest.mark.parametrize("conv_bits,dense_bits,kernels", [
    (1, 1, ["CONV_W8", "CONV_B1_COLUMN", "B1_COLUMN"]),
    (2, 4, ["CONV_W8", "CONV_BN_COLUMN", "BN_COLUMN"]),  # wider hidden weights: the bit-plane column kernels
])
def test_streaming_conv_model_on_qemu_is_bit_exact(tmp_path: Path, conv_bits: int, dense_bits: int,
                                                   kernels: list[str]) -> None:
    """A streaming-convolution model (conv 8-bit -> conv on spikes -> dense recurrent with
    adaptive LIF; binary hidden weights, or 2-bit conv and 4-bit dense ones) on the emulated
    Cortex-M4: the device's outputs equal the integer reference's on every clip, and both hidden
    layers spike on those clips (so the kernels under test did work)."""
    from qsnnkit import reference
    from qsnnkit.ccore import CCore
    from qsnnkit.dataset import features, load_split
    from qsnnkit.paths import cache_dir

    model_dir = fw.random_conv_model(cache_dir() / "test-models" / f"random-conv-0-w{conv_bits}-{dense_bits}", seed=0,
                                     conv_bits=conv_bits, dense_bits=dense_bits)
    model = load_converted(model_dir / "model.npz")
    assert CCore(model).layer_kernels() == kernels
    sp = load_split(None, "test")
    _, tr = reference.run_batch(model, features(sp.pcm[:20]), trace=True)
    assert tr is not None
    assert all(float(s.mean()) > 0.01 for s in tr.spk[1:]), [float(s.mean()) for s in tr.spk]
    elf = fw.built_firmware(model_dir)
    out = tmp_path / "eval.json"
    cmd = [sys.executable, str(REPO_ROOT / "host" / "eval.py"), "--port", "qemu", "--elf", str(elf),
           "--model", str(model_dir / "model.npz"), "--split", "test", "--limit", "20",
           "--jobs", "2", "--json", str(out), "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert res.returncode == 0, f"eval failed ({res.returncode}):\n{res.stdout}\n{res.stderr[-4000:]}"
    s = json.loads(out.read_text())
    assert s["samples"] == 20
    if s["agreement"] != 1.0:
        m = s["mismatches"][0]
        raise AssertionError(f"first mismatch {m['path']}: device {m['device_outputs']} != "
                             f"reference {m['reference_outputs']}")
    assert s["model_hash"] == load_converted(model_dir / "model.npz").short_hash



@pytest.mark.parametrize("c_out,kt,kf,stride", [(5, 3, 3, 2), (9, 2, 4, 2), (6, 4, 5, 1)])
def test_m4_first_conv_layer_kernels_on_odd_geometries(tmp_path: Path, c_out: int, kt: int, kf: int,
                                                        stride: int) -> None:
    """The Cortex-M4's int16-pair conv kernel (channel counts that are not a multiple of four,
    odd and even kernel widths) and its fallback (an odd stride) on the emulated M4: every
    per-class output equals the integer reference's (benchmarks/network_cost.py raises on the
    first difference)."""
    import numpy as np

    from qsnnkit.convert import codegen
    from qsnnkit.model import ConvertedModel, IntLayer

    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    import network_cost

    rng = np.random.default_rng(c_out)
    i32 = np.int32
    c0 = IntLayer(w_bits=8, mem_bits=4, leak_shift=1, w=rng.integers(-127, 128, (c_out, kt * kf)).astype(i32),
                  sh_ff=np.full(c_out, 7, i32), bias=rng.integers(-40, 80, c_out).astype(i32),
                  kind="conv", c_in=1, f_in=40, kt=kt, kf=kf, stride=stride)
    d0 = IntLayer(w_bits=1, mem_bits=4, leak_shift=1, w=rng.choice([-1, 1], (16, c0.n_out)).astype(i32),
                  sh_ff=np.full(16, -4, i32), bias=rng.integers(-50, 100, 16).astype(i32))
    m = ConvertedModel(feat_mu=rng.integers(60, 120, 40).astype(i32), layers=[c0, d0],
                       w_out=rng.integers(-127, 128, (12, 16)).astype(i32),
                       b_out=rng.integers(-100, 100, 12).astype(i32), classes=[f"c{i}" for i in range(12)])
    m.save(tmp_path / "model.npz")
    codegen.emit(m, tmp_path)
    assert "w_quads" in (tmp_path / "qsnn_model.c").read_text()
    from qsnnkit import reference
    from qsnnkit.dataset import features, load_split

    _, tr = reference.run_batch(m, features(load_split(None, "test").pcm[:2]), trace=True)
    assert tr is not None and 0.05 < tr.spk[0].mean() < 0.95  # lively: the outputs depend on the kernel
    r = network_cost.measure(tmp_path, clips=2)
    assert r["agreement"] == 1.0 and r["parts"][0]["kernel"] == "CONV_W8"
    # each layer splits into its sums and its neuron loops, both measured
    for part in r["parts"][:2]:
        assert 0 < part["neuron_instructions_per_frame"] < part["instructions_per_frame"], part
        assert part["per_step"]["neurons_min"] > 0 and part["per_step"]["sums_min"] > 0, part


def test_throughput_benchmark_holds_its_settings_to_identical_clips(tmp_path: Path) -> None:
    """benchmarks/eval_throughput.py at its smallest: plain and packed frames on 2 clips, the same
    per-clip numbers from both (the benchmark's own check), its JSON as documented; a baseline
    revision that does not exist is refused before any board boots."""
    bench = REPO_ROOT / "benchmarks" / "eval_throughput.py"
    out = tmp_path / "tp.json"
    bad = subprocess.run([sys.executable, str(bench), "--limit", "2", "--settings", "1x320", "--baseline",
                          "no-such-revision", "--json", str(out)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "--baseline: 'no-such-revision' is not a revision" in bad.stderr
    assert not out.exists()
    res = subprocess.run([sys.executable, str(bench), "--limit", "2", "--settings", "1x320raw,1x320", "--json",
                          str(out)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert [(r["frames"], r["clips"], r["identical_to_first"]) for r in doc["rows"]] == [("AUDIO", 2, True),
                                                                                       ("packed", 2, True)]
    assert doc["rows"][0]["agreement"] == 1.0 and "baseline" not in doc
