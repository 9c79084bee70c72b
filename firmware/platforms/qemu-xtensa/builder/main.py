"""SCons build script of the offline `qemu-xtensa` dev-platform.

Compiles with the xtensa-lx106-elf toolchain found on the PATH (Debian's gcc-xtensa-lx106; no
libc, and a libgcc without 32-bit division: the firmware brings its own, firmware/src/xtensa/),
links with the board's linker script (board_build.ldscript) and adds the `size` and `upload`
targets. The sim machine has no UART: its console is the semihosting channel (QEMU's stdin
and stdout), which `upload` relays to a TCP port (upload_port). Shared: ../qemu_builder.py.
"""
import importlib.util
import os

from SCons.Script import DefaultEnvironment  # pylint: disable=import-error

env = DefaultEnvironment()

_spec = importlib.util.spec_from_file_location(
    "qemu_builder", os.path.join(env.PioPlatform().get_dir(), os.pardir, "qemu_builder.py"))
qemu_builder = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(qemu_builder)

# -mtext-section-literals: literals beside the code that reads them (one ROM region);
# -mlongcalls: calls may span the whole image.
qemu_builder.configure(
    env, "xtensa-lx106-elf-", ["-mtext-section-literals", "-mlongcalls"], ["-nostdlib"],
    ["gcc"], "qemu-system-xtensa", "qemu-system-misc",
    "apt-get install --no-install-recommends gcc-xtensa-lx106",
    r"^(?:\.text|\.rodata|\.data)\s+([0-9]+).*",
)
