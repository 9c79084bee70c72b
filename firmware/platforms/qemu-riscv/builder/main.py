"""SCons build script of the offline `qemu-riscv` dev-platform.

Compiles with the riscv64-unknown-elf toolchain found on the PATH (Debian's
gcc-riscv64-unknown-elf, rv32 multilibs),
links with the board's linker script (board_build.ldscript, a path relative to the
project), and adds two targets:

  pio run -e <env> -t upload   boots firmware.elf in qemu-system-riscv32, serial on TCP
                               (upload_port, default 4444), waits for a client first
  pio run -e <env> -t size     section sizes

The QEMU machine and its arguments come from the board JSON ("qemu" section), the one
place host/qemu.py also reads them from.
"""
import os
import shutil
import subprocess
import sys

from SCons.Script import AlwaysBuild, Builder, Default, DefaultEnvironment  # pylint: disable=import-error

env = DefaultEnvironment()
board = env.BoardConfig()
arch = board.get("build.cpu", "rv32imac")
abi = board.get("build.mabi", "ilp32")
T = "riscv64-unknown-elf-"

for tool in (T + "gcc", T + "objcopy", T + "size"):
    if shutil.which(tool) is None:
        sys.stderr.write(
            f"Error: {tool} not found on PATH. Install the RISC-V bare-metal toolchain, e.g.\n"
            "  apt-get install --no-install-recommends gcc-riscv64-unknown-elf\n"
        )
        env.Exit(1)

env.Replace(
    AR=T + "ar",
    AS=T + "gcc",
    CC=T + "gcc",
    CXX=T + "g++",
    LINK=T + "gcc",
    OBJCOPY=T + "objcopy",
    RANLIB=T + "ranlib",
    SIZETOOL=T + "size",
    ARFLAGS=["rc"],
    SIZEPROGREGEXP=r"^(?:\.text|\.rodata|\.data)\s+([0-9]+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.stack)\s+([0-9]+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
)

# -mno-relax: no linker relaxation against gp, so the startup code need not set it up.
machine_flags = [f"-march={arch}", f"-mabi={abi}", "-mcmodel=medany", "-mno-relax"]
env.Append(
    ASFLAGS=machine_flags,
    ASPPFLAGS=["-x", "assembler-with-cpp"],
    CCFLAGS=machine_flags + ["-ffunction-sections", "-fdata-sections", "-ffreestanding"],
    LINKFLAGS=machine_flags
    + [
        "-nostartfiles",
        "-nostdlib",
        "-Wl,--gc-sections",
        "-Wl,--print-memory-usage",
        "-Wl,-Map,${BUILD_DIR}/firmware.map",
    ],
    LIBS=["gcc"],
)

# board_build.ldscript is relative to the project; make it absolute so the linker finds it.
ldscript = board.get("build.ldscript", "")
if ldscript and not os.path.isabs(ldscript):
    ldscript = os.path.join(env.subst("$PROJECT_DIR"), ldscript)
if not ldscript or not os.path.isfile(ldscript):
    sys.stderr.write(f"Error: linker script {ldscript!r} not found (board_build.ldscript)\n")
    env.Exit(1)
env.Replace(LDSCRIPT_PATH=ldscript)
env.Depends("$BUILD_DIR/${PROGNAME}.elf", ldscript)

env.Append(
    BUILDERS=dict(
        ElfToBin=Builder(
            action=env.VerboseAction("$OBJCOPY -O binary $SOURCES $TARGET", "Building $TARGET"),
            suffix=".bin",
        )
    )
)

target_elf = env.BuildProgram()
target_bin = env.ElfToBin(os.path.join("$BUILD_DIR", "${PROGNAME}"), target_elf)
env.Depends(target_bin, "checkprogsize")

AlwaysBuild(env.Alias("size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE")))


def qemu_boot(target, source, env):  # pylint: disable=unused-argument
    """Boot the ELF in QEMU with the serial port on TCP; runs until the firmware exits."""
    qemu = board.get("qemu", {})
    exe = shutil.which(qemu.get("executable", "qemu-system-riscv32"))
    if exe is None:
        sys.stderr.write("Error: qemu-system-riscv32 not found; apt-get install --no-install-recommends qemu-system-misc\n")
        return 1
    port = (env.subst("$UPLOAD_PORT") or "4444").rsplit(":", 1)[-1]
    if not port.isdigit():
        sys.stderr.write(f"Error: upload_port for QEMU is a TCP port number, got {port!r}\n")
        return 1
    chardev = f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on"
    cmd = [exe, "-M", qemu["machine"], *qemu.get("args", []), "-serial", chardev, "-kernel", str(source[0])]
    print(" ".join(cmd))
    print(f"QEMU waits for a client on socket://127.0.0.1:{port} before it starts the firmware, e.g.\n"
          f"  python host/eval.py --port socket://127.0.0.1:{port}\n"
          "Stop it with Ctrl-C.", flush=True)
    try:
        return subprocess.call(cmd)
    except KeyboardInterrupt:
        return 0


AlwaysBuild(env.Alias("upload", target_elf, env.VerboseAction(qemu_boot, "Booting $SOURCE in QEMU")))

Default([target_bin])
