"""SCons build script of the offline `qemu-riscv` dev-platform.

Compiles with the riscv64-unknown-elf toolchain found on the PATH (Debian's
gcc-riscv64-unknown-elf, rv32 multilibs; no libc), links with the board's linker script
(board_build.ldscript, a path relative to the project), and adds two targets:

  pio run -e <env> -t upload   boots firmware.elf in qemu-system-riscv32, serial on TCP
                               (upload_port, default 4444), waits for a client first
  pio run -e <env> -t size     section sizes

The QEMU machine and its arguments come from the board JSON ("qemu" section), the one
place host/qemu.py also reads them from. Shared with qemu-cortex-m: ../qemu_builder.py.
"""
import importlib.util
import os

from SCons.Script import DefaultEnvironment  # pylint: disable=import-error

env = DefaultEnvironment()

# The architecture-independent part lives beside the platforms (firmware/platforms/qemu_builder.py).
_spec = importlib.util.spec_from_file_location(
    "qemu_builder", os.path.join(env.PioPlatform().get_dir(), os.pardir, "qemu_builder.py"))
qemu_builder = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(qemu_builder)

board = env.BoardConfig()
arch, abi = board.get("build.cpu", "rv32imac_zicsr"), board.get("build.mabi", "ilp32")
# -mno-relax: no linker relaxation against gp, so the startup code need not set it up.
qemu_builder.configure(
    env, "riscv64-unknown-elf-", [f"-march={arch}", f"-mabi={abi}", "-mcmodel=medany", "-mno-relax"], ["-nostdlib"],
    ["gcc"], "qemu-system-riscv32", "qemu-system-misc",
    "apt-get install --no-install-recommends gcc-riscv64-unknown-elf",
    r"^(?:\.text|\.rodata|\.data)\s+([0-9]+).*",
)
