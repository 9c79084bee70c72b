"""SCons build script of the offline `qemu-cortex-m` dev-platform.

Compiles with the arm-none-eabi toolchain found on the PATH (Debian's gcc-arm-none-eabi),
links with the board's linker script (board_build.ldscript, a path relative to the
project), and adds two targets:

  pio run -e <env> -t upload   boots firmware.elf in qemu-system-arm, serial on TCP
                               (upload_port, default 4444), waits for a client first
  pio run -e <env> -t size     section sizes

The QEMU machine and its arguments come from the board JSON ("qemu" section), the one
place host/qemu.py also reads them from. Shared with qemu-riscv: ../qemu_builder.py.
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

cpu = env.BoardConfig().get("build.cpu", "cortex-m4")
qemu_builder.configure(
    env, "arm-none-eabi-", [f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=soft"], ["--specs=nano.specs"], ["c", "gcc"],
    "qemu-system-arm", "qemu-system-arm",
    "apt-get install --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi",
    r"^(?:\.isr_vector|\.text|\.rodata|\.data)\s+([0-9]+).*",
)
