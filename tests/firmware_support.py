"""Shared by the firmware tests: the offline PlatformIO environment, a model to build with,
and a firmware build (incremental, in the project's ignored cache)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from qsnnkit.paths import FIRMWARE_DIR, REPO_ROOT, cache_dir

DEFAULT_MODEL_DIR = FIRMWARE_DIR / "models" / "default"
MODEL_FILES = ("model.npz", "qsnn_model.h", "qsnn_model.c")


def pio_exe() -> str:
    exe = shutil.which("pio") or shutil.which("platformio")
    if exe is None:
        raise RuntimeError("PlatformIO (pio) is not installed: pip install platformio==6.2.0")
    return exe


def pio_env(core_dir: Path | None = None, build_dir: Path | None = None, model_dir: Path | None = None) -> dict[str, str]:
    """Environment for an offline `pio run`: no upgrade check, no telemetry, the repo's core dir."""
    env = dict(os.environ)
    env["PLATFORMIO_DISABLE_UPGRADE_CHECK"] = "true"
    env["PLATFORMIO_SETTING_ENABLE_TELEMETRY"] = "No"
    env["PLATFORMIO_CORE_DIR"] = str(core_dir or REPO_ROOT / ".cache" / "platformio")
    if build_dir is not None:
        env["PLATFORMIO_BUILD_DIR"] = str(build_dir)
    if model_dir is not None:
        env["QSNN_MODEL_DIR"] = str(model_dir)
    return env


def random_model(out_dir: Path, seed: int = 0) -> Path:
    """A random but lively converted model (spikes in both layers), written with the converter's
    own code generator: model.npz + qsnn_model.h/.c. Used when no trained default model exists."""
    from qsnnkit.convert import codegen
    from qsnnkit.model import ConvertedModel, IntLayer

    rng = np.random.default_rng(seed)
    nb, h1, h2, nc = 40, 64, 48, 12
    i32 = np.int32
    l0 = IntLayer(w_bits=8, mem_bits=4, leak_shift=2, w=rng.integers(-127, 128, (h1, nb)).astype(i32),
                  sh_ff=np.full(h1, 5, i32), bias=rng.integers(-50, 50, h1).astype(i32),
                  w_rec=rng.choice([-1, 1], (h1, h1)).astype(i32), sh_rec=np.full(h1, -4, i32))
    l1 = IntLayer(w_bits=1, mem_bits=4, leak_shift=2, w=rng.choice([-1, 1], (h2, h1)).astype(i32),
                  sh_ff=np.full(h2, -5, i32), bias=rng.integers(-50, 50, h2).astype(i32))
    m = ConvertedModel(feat_mu=rng.integers(60, 120, nb).astype(i32), layers=[l0, l1],
                       w_out=rng.integers(-127, 128, (nc, h2)).astype(i32),
                       b_out=rng.integers(-100, 100, nc).astype(i32), classes=[f"c{i}" for i in range(nc)])
    out_dir.mkdir(parents=True, exist_ok=True)
    m.save(out_dir / "model.npz")
    m.provenance = {"note": f"random test model, seed {seed}"}
    codegen.emit(m, out_dir)
    return out_dir


def random_conv_model(out_dir: Path, seed: int = 0, conv_bits: int = 1, dense_bits: int = 1) -> Path:
    """A random but lively streaming-convolution model (conv 8-bit -> conv on spikes -> dense
    recurrent with adaptive LIF -> readout), written with the converter's code generator. The
    two hidden layers' weights are binary by default; ``conv_bits`` / ``dense_bits`` of 2, 4 or
    8 make them wider (symmetric values, a twentieth of them the code's most negative value)."""
    from qsnnkit.convert import codegen
    from qsnnkit.model import ConvertedModel, IntLayer
    from qsnnkit.packing import value_range

    rng = np.random.default_rng(seed)
    i32 = np.int32

    def hidden(bits: int, shape: tuple[int, int]) -> tuple[np.ndarray, int]:
        """Weights, and how many fewer left shifts keep their sums at the binary layer's scale."""
        if bits == 1:
            return rng.choice([-1, 1], shape).astype(i32), 0
        lo, hi = value_range(bits)
        w = rng.integers(-hi, hi + 1, shape)
        w[rng.random(shape) < 0.05] = lo
        return w.astype(i32), int(hi).bit_length() - 2

    # 7 channels: the M4 kernel's last group of four has a padding channel
    c0 = IntLayer(w_bits=8, mem_bits=4, leak_shift=1, w=rng.integers(-127, 128, (7, 25)).astype(i32),
                  sh_ff=np.full(7, 7, i32), bias=rng.integers(-40, 80, 7).astype(i32),
                  kind="conv", c_in=1, f_in=40, kt=5, kf=5, stride=2)
    w1, e1 = hidden(conv_bits, (16, 7 * 3 * 5))
    c1 = IntLayer(w_bits=conv_bits, mem_bits=4, leak_shift=1, w=w1,
                  sh_ff=np.full(16, -5 + e1, i32), bias=rng.integers(-40, 120, 16).astype(i32),
                  kind="conv", c_in=7, f_in=20, kt=3, kf=5, stride=2)
    w2, e2 = hidden(dense_bits, (32, 160))
    d0 = IntLayer(w_bits=dense_bits, mem_bits=4, leak_shift=1, w=w2,
                  sh_ff=np.full(32, -4 + e2, i32), bias=rng.integers(-50, 100, 32).astype(i32),
                  w_rec=rng.choice([-1, 1], (32, 32)).astype(i32), sh_rec=np.full(32, -4, i32),
                  adapt_shift=3, adapt_beta=8)
    m = ConvertedModel(feat_mu=rng.integers(60, 120, 40).astype(i32), layers=[c0, c1, d0],
                       w_out=rng.integers(-127, 128, (12, 32)).astype(i32),
                       b_out=rng.integers(-100, 100, 12).astype(i32), classes=[f"c{i}" for i in range(12)])
    out_dir.mkdir(parents=True, exist_ok=True)
    m.save(out_dir / "model.npz")
    m.provenance = {"note": f"random conv test model, seed {seed}, hidden weight bits {conv_bits}/{dense_bits}"}
    codegen.emit(m, out_dir)
    return out_dir


def model_dir_for_tests() -> Path:
    """The committed default model when it is there, else a random model in the cache."""
    if all((DEFAULT_MODEL_DIR / f).is_file() for f in MODEL_FILES):
        return DEFAULT_MODEL_DIR
    d = cache_dir() / "test-models" / "random-0"
    if not all((d / f).is_file() for f in MODEL_FILES):
        random_model(d, 0)
    return d


def build_firmware(model_dir: Path, env_name: str = "qemu_m4", build_dir: Path | None = None,
                   core_dir: Path | None = None) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`pio run -e <env>` with this model; returns (firmware.elf, the completed process)."""
    key = model_dir.resolve().as_posix().replace("/", "_").strip("_")[-80:]
    build_dir = build_dir or cache_dir() / "test-firmware" / key
    res = subprocess.run(
        [pio_exe(), "run", "-e", env_name], cwd=REPO_ROOT, capture_output=True, text=True,
        env=pio_env(core_dir=core_dir, build_dir=build_dir, model_dir=model_dir), timeout=300,
    )
    return build_dir / env_name / "firmware.elf", res


def built_firmware(model_dir: Path, env_name: str = "qemu_m4") -> Path:
    elf, res = build_firmware(model_dir, env_name)
    if res.returncode != 0:
        raise AssertionError(f"pio run -e {env_name} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return elf
