#!/usr/bin/env bash
# Set up a fresh Debian/Ubuntu machine for qsnnkit: Debian toolchains (Cortex-M compiler,
# newlib, QEMU for Arm and RISC-V; RISC-V and Xtensa cross compilers; clang with
# libFuzzer and the sanitizers for the fuzz harnesses; espeak-ng for synthetic training
# keywords; valgrind for the side-by-side benchmark's instruction counts) and a Python virtual environment in
# .venv with the project installed. Idempotent: quick when done.
# Source it (`. scripts/setup.sh`) to get the venv activated, or run it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

APT_PACKAGES=(gcc make python3-venv gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi
  qemu-system-arm gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf gcc-xtensa-lx106
  qemu-system-misc clang libclang-rt-14-dev espeak-ng valgrind)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.qsnnkit-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing Python packages into .venv (torch==2.13.0, platformio, ...)"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[dev,litert]'
  touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
export PLATFORMIO_DISABLE_UPGRADE_CHECK=true
# PlatformIO records symlinked packages by path: keep its core folder per checkout.
export PLATFORMIO_CORE_DIR="${PLATFORMIO_CORE_DIR:-$PWD/.cache/platformio}"
echo "setup: ready ($(.venv/bin/python -c 'import torch, platformio; print("torch", torch.__version__, "/ platformio", platformio.__version__)'))"
