"""SCons build script of the offline `qemu-cortex-m` dev-platform.

Compiles with the arm-none-eabi toolchain found on the PATH (Debian's gcc-arm-none-eabi),
links with the board's linker script (board_build.ldscript, a path relative to the
project), and adds two targets:

  pio run -e <env> -t upload   boots firmware.elf in qemu-system-arm, serial on TCP
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
cpu = board.get("build.cpu", "cortex-m4")

for tool in ("arm-none-eabi-gcc", "arm-none-eabi-objcopy", "arm-none-eabi-size"):
    if shutil.which(tool) is None:
        sys.stderr.write(
            f"Error: {tool} not found on PATH. Install the Arm bare-metal toolchain, e.g.\n"
            "  apt-get install --no-install-recommends gcc-arm-none-eabi "
            "libnewlib-arm-none-eabi binutils-arm-none-eabi\n"
        )
        env.Exit(1)

env.Replace(
    AR="arm-none-eabi-ar",
    AS="arm-none-eabi-gcc",
    CC="arm-none-eabi-gcc",
    CXX="arm-none-eabi-g++",
    LINK="arm-none-eabi-gcc",
    OBJCOPY="arm-none-eabi-objcopy",
    RANLIB="arm-none-eabi-ranlib",
    SIZETOOL="arm-none-eabi-size",
    ARFLAGS=["rc"],
    SIZEPROGREGEXP=r"^(?:\.isr_vector|\.text|\.rodata|\.data)\s+([0-9]+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.stack)\s+([0-9]+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
)

machine_flags = [f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=soft"]
env.Append(
    ASFLAGS=machine_flags,
    ASPPFLAGS=["-x", "assembler-with-cpp"],
    CCFLAGS=machine_flags + ["-ffunction-sections", "-fdata-sections", "-ffreestanding"],
    LINKFLAGS=machine_flags
    + [
        "-nostartfiles",
        "--specs=nano.specs",
        "-Wl,--gc-sections",
        "-Wl,--print-memory-usage",
        "-Wl,-Map,${BUILD_DIR}/firmware.map",
    ],
    LIBS=["c", "gcc"],
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
    exe = shutil.which("qemu-system-arm")
    if exe is None:
        sys.stderr.write("Error: qemu-system-arm not found; apt-get install --no-install-recommends qemu-system-arm\n")
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
