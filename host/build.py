"""Firmware for a given model and emulated target, built on demand and cached.

    python -m qsnnkit.host.build --model build/model/model.npz --port qemu:m0

``qsnn-eval --port qemu[:target]`` calls :func:`firmware_for`: the firmware is built with
``pio run -e <env>`` (offline, the in-repo platforms) for the model's C sources, in the
project cache under a key made of the model's hash, the C sources it compiles, the target's
PlatformIO env and a hash of every firmware source, linker script, platform file and
``platformio.ini`` (where the build flags live). A second call with the same key reuses the
build; an edit to any of them builds again. Nothing is written next to the model.

The model's C sources are ``qsnn_model.h`` / ``qsnn_model.c`` beside MODEL.npz, as the
converter writes them (they may name per-layer kernels). The device reports the hash its
model was built from, and qsnn-eval refuses a device whose hash is not MODEL's.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from qsnnkit.paths import FIRMWARE_DIR, REPO_ROOT, cache_dir

MODEL_C_FILES = ("qsnn_model.h", "qsnn_model.c")
#: What a firmware build reads besides the model: hashed into the cache key.
SOURCE_DIRS = ("src", "lib", "include", "ld", "platforms", "scripts", "tools")
SOURCE_FILES = (REPO_ROOT / "platformio.ini",)
#: Builds kept in the cache (oldest removed first).
KEEP_BUILDS = 24


def source_hash() -> str:
    """SHA-256 of every file a firmware build reads besides the model (paths and contents)."""
    h = hashlib.sha256()
    files = [p for d in SOURCE_DIRS for p in sorted((FIRMWARE_DIR / d).rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"]
    for p in [*files, *SOURCE_FILES]:
        h.update(p.relative_to(REPO_ROOT).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def model_sources(model_path: Path) -> Path:
    """The folder holding the model's C sources, beside MODEL.npz (qsnn-convert writes them
    there); FileNotFoundError naming what is missing otherwise."""
    folder = model_path.parent
    missing = [f for f in MODEL_C_FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} holds {model_path.name} but not {', '.join(missing)}: the firmware is built "
                                "from the C sources qsnn-convert writes beside the model (qsnn-convert CHECKPOINT "
                                f"--out {folder})")
    return folder


def _pio() -> str:
    exe = shutil.which("pio") or shutil.which("platformio")
    if exe is None:
        raise FileNotFoundError("PlatformIO (pio) is not installed: run scripts/setup.sh (pip install platformio)")
    return exe


def _pio_env(model_dir: Path, build_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PLATFORMIO_DISABLE_UPGRADE_CHECK", "true")
    env.setdefault("PLATFORMIO_SETTING_ENABLE_TELEMETRY", "No")
    env.setdefault("PLATFORMIO_CORE_DIR", str(REPO_ROOT / ".cache" / "platformio"))
    env["PLATFORMIO_BUILD_DIR"] = str(build_dir)
    env["QSNN_MODEL_DIR"] = str(model_dir)
    return env


def firmware_for(model_path: str | Path, target: str, quiet: bool = False) -> Path:
    """The firmware.elf of MODEL for an emulated target (``m4``, ``m0``, ... of
    qsnnkit.host.qemu.TARGETS), built now or reused from the cache."""
    from qsnnkit.host.qemu import TARGETS
    from qsnnkit.model import load_converted

    if target not in TARGETS:
        raise ValueError(f"unknown emulated target {target!r}; choose from {', '.join(TARGETS)}")
    model_path = Path(model_path)
    model = load_converted(model_path)  # refuses a file that is not a valid converted model
    env_name = TARGETS[target][1]
    root = cache_dir() / "firmware"
    root.mkdir(parents=True, exist_ok=True)
    src = model_sources(model_path)
    h = hashlib.sha256()
    h.update(model.hash_hex.encode())
    for f in MODEL_C_FILES:
        h.update(hashlib.sha256((src / f).read_bytes()).digest())
    h.update(env_name.encode())
    h.update(source_hash().encode())
    key = f"{model.hash_hex[:16]}-{env_name}-{h.hexdigest()[:16]}"
    out = root / key
    elf = out / "build" / env_name / "firmware.elf"
    if elf.is_file():
        os.utime(out)
        return elf
    model_dir = out / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    for f in MODEL_C_FILES:  # the build reads a private copy: later edits beside MODEL change the key
        shutil.copyfile(src / f, model_dir / f)
    if not quiet:
        print(f"building the firmware for {model_path} ({model.hash_hex[:16]}) on {env_name} ...", file=sys.stderr)
    res = subprocess.run([_pio(), "run", "-e", env_name, "-d", str(REPO_ROOT)], cwd=REPO_ROOT, capture_output=True,
                         text=True, env=_pio_env(model_dir, out / "build"))
    if res.returncode != 0 or not elf.is_file():
        shutil.rmtree(out, ignore_errors=True)
        raise RuntimeError(f"pio run -e {env_name} failed for {model_path}:\n{res.stdout[-3000:]}\n{res.stderr[-2000:]}")
    _prune(root)
    return elf


def _prune(root: Path) -> None:
    builds = sorted((p for p in root.iterdir() if p.is_dir()),
                    key=lambda p: p.stat().st_mtime)
    for old in builds[:-KEEP_BUILDS]:
        shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m qsnnkit.host.build",
                                 description="Build (or reuse from the cache) the firmware of a converted model for "
                                             "an emulated target; prints the firmware.elf path.")
    ap.add_argument("--model", type=Path, default=FIRMWARE_DIR / "models" / "default" / "model.npz",
                    help="converted model (.npz) (default: firmware/models/default/model.npz)")
    ap.add_argument("--port", default="qemu", help="emulated target: qemu (the M4), qemu:m0, qemu:m7, qemu:rv32, "
                                                   "qemu:lx106 (default: qemu)")
    args = ap.parse_args(argv)
    from qsnnkit.host.qemu import parse_port

    try:
        target = parse_port(args.port)
        if target is None:
            raise ValueError(f"--port {args.port} is not an emulated target: flash a real board with "
                             "`pio run -e <env> -t upload` (docs/firmware.md)")
        print(firmware_for(args.model, target))
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"qsnn-build: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
