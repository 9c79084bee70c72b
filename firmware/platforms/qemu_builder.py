"""The part of the offline QEMU dev-platforms' SCons builders (qemu-cortex-m, qemu-riscv) that
does not depend on the architecture: toolchain check, tools and flags, the board's linker
script, ELF -> BIN, and the `size` and `upload` targets (`upload` boots firmware.elf in the
board's QEMU, serial on TCP, waiting for a client first). Each platform's builder/main.py
calls configure() with its toolchain prefix, machine flags and QEMU executable.
"""
import os
import shutil
import subprocess
import sys

from SCons.Script import AlwaysBuild, Builder, Default  # pylint: disable=import-error


def configure(env, prefix, machine_flags, link_flags, libs, qemu_exe, qemu_package, toolchain_hint, size_prog_regexp):
    """Set up env for bare-metal firmware built with the `prefix` toolchain and add the targets."""
    board = env.BoardConfig()
    for tool in (prefix + "gcc", prefix + "objcopy", prefix + "size"):
        if shutil.which(tool) is None:
            sys.stderr.write(f"Error: {tool} not found on PATH. Install the toolchain, e.g.\n  {toolchain_hint}\n")
            env.Exit(1)

    env.Replace(
        AR=prefix + "ar",
        AS=prefix + "gcc",
        CC=prefix + "gcc",
        CXX=prefix + "g++",
        LINK=prefix + "gcc",
        OBJCOPY=prefix + "objcopy",
        RANLIB=prefix + "ranlib",
        SIZETOOL=prefix + "size",
        ARFLAGS=["rc"],
        SIZEPROGREGEXP=size_prog_regexp,
        SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.stack)\s+([0-9]+).*",
        SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
        SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
        PROGNAME="firmware",
        PROGSUFFIX=".elf",
    )
    env.Append(
        ASFLAGS=machine_flags,
        ASPPFLAGS=["-x", "assembler-with-cpp"],
        CCFLAGS=machine_flags + ["-ffunction-sections", "-fdata-sections", "-ffreestanding"],
        LINKFLAGS=machine_flags + ["-nostartfiles"] + link_flags
        + ["-Wl,--gc-sections", "-Wl,--print-memory-usage", "-Wl,-Map,${BUILD_DIR}/firmware.map"],
        LIBS=libs,
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
        exe = shutil.which(qemu.get("executable", qemu_exe))
        if exe is None:
            sys.stderr.write(f"Error: {qemu_exe} not found; apt-get install --no-install-recommends {qemu_package}\n")
            return 1
        port = (env.subst("$UPLOAD_PORT") or "4444").rsplit(":", 1)[-1]
        if not port.isdigit():
            sys.stderr.write(f"Error: upload_port for QEMU is a TCP port number, got {port!r}\n")
            return 1
        if qemu.get("console") == "semihosting":  # no UART: QEMU's stdin/stdout, relayed to TCP
            cmd = [exe, "-M", qemu["machine"], *qemu.get("args", []), "-kernel", str(source[0])]
            return _relay_stdio(cmd, int(port))
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


def _relay_stdio(cmd, port):
    """Wait for a TCP client on 127.0.0.1:port, then boot QEMU with its stdin/stdout (the
    board's semihosting console) relayed to that client until either side ends."""
    import socket
    import threading

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1)
    print(" ".join(cmd))
    print(f"QEMU starts when a client connects to socket://127.0.0.1:{port}, e.g.\n"
          f"  python host/eval.py --port socket://127.0.0.1:{port}\nStop it with Ctrl-C.", flush=True)
    try:
        conn, _ = srv.accept()
    except KeyboardInterrupt:
        return 0
    finally:
        srv.close()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)

    def to_board():
        try:
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                proc.stdin.write(data)
        except OSError:
            pass
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    threading.Thread(target=to_board, daemon=True).start()
    try:
        while True:
            data = os.read(proc.stdout.fileno(), 4096)
            if not data:
                break
            conn.sendall(data)
    except (OSError, KeyboardInterrupt):
        proc.terminate()
    finally:
        conn.close()
    return proc.wait()
