"""Boot the firmware on an emulated board (qemu-system-arm) and talk to it over TCP.

The QEMU executable, machine and arguments come from the board file of the in-repo PlatformIO
platforms (firmware/platforms/qemu-cortex-m|qemu-riscv/boards/<board>.json, "qemu" section), the
same place `pio run -e <env> -t upload` reads them from. The host listens on a free local
port and QEMU connects its first serial port to it (`server=off,nodelay=on`), so there is
no port race between parallel instances.
"""
from __future__ import annotations

import atexit
import json
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from qsnnkit.host.transport import PipeTransport, SocketTransport
from qsnnkit.paths import FIRMWARE_DIR, REPO_ROOT

#: The in-repo PlatformIO platforms whose board files carry a "qemu" section.
BOARDS_DIRS = [FIRMWARE_DIR / "platforms" / p / "boards" for p in ("qemu-cortex-m", "qemu-riscv", "qemu-xtensa")]
#: Emulated targets of `--port qemu:<name>`: name -> (board file, PlatformIO env).
TARGETS: dict[str, tuple[str, str]] = {
    "m4": ("netduinoplus2", "qemu_m4"),
    "m0": ("microbit", "qemu_m0"),
    "m7": ("mps2-an500", "qemu_m7"),
    "rv32": ("sifive_e", "qemu_rv32"),
    "lx106": ("xtensa_sim", "qemu_lx106"),
}
DEFAULT_TARGET = "m4"
DEFAULT_BOARD, DEFAULT_ENV = TARGETS[DEFAULT_TARGET]


def parse_port(port: str) -> str | None:
    """The emulated target a --port value names ('qemu' is the default target, 'qemu:m0' ...),
    or None for a real serial port; ValueError for an unknown target."""
    if port != "qemu" and not port.startswith("qemu:"):
        return None
    name = port.partition(":")[2] or DEFAULT_TARGET
    if name not in TARGETS:
        raise ValueError(f"--port {port}: unknown emulated target {name!r}; choose from "
                         f"{', '.join('qemu:' + t for t in TARGETS)}")
    return name

_live: set["QemuBoard"] = set()


@atexit.register
def _stop_all() -> None:
    """No QEMU outlives the Python process that started it (Ctrl-C, uncaught errors)."""
    for qb in list(_live):
        qb.stop()


def default_elf(env: str = DEFAULT_ENV) -> Path:
    return REPO_ROOT / ".pio" / "build" / env / "firmware.elf"


def qemu_config(board: str = DEFAULT_BOARD) -> dict:
    found = [d / f"{board}.json" for d in BOARDS_DIRS if (d / f"{board}.json").is_file()]
    if not found:
        raise FileNotFoundError(f"no emulated board {board!r} (no {board}.json in {', '.join(map(str, BOARDS_DIRS))})")
    path = found[0]
    cfg = json.loads(path.read_text())
    if "qemu" not in cfg:
        raise ValueError(f"{path} has no 'qemu' section")
    return cfg["qemu"]


def qemu_command(elf: Path, serial: str | None, board: str = DEFAULT_BOARD) -> list[str]:
    """QEMU's command line; ``serial`` None for a board whose console is semihosting (stdio)."""
    cfg = qemu_config(board)
    name = cfg.get("executable", "qemu-system-arm")
    exe = shutil.which(name)
    if exe is None:
        package = "qemu-system-arm" if name == "qemu-system-arm" else "qemu-system-misc"
        raise FileNotFoundError(f"{name} not found: apt-get install --no-install-recommends {package}")
    console = ["-serial", "none"] if serial is None else ["-serial", serial]
    return [exe, "-M", cfg["machine"], *cfg.get("args", []), *console, "-kernel", str(elf)]


class QemuBoard:
    """One emulated board: ``with QemuBoard(elf) as qb: Device(qb.transport)...``."""

    def __init__(self, elf: str | Path | None = None, board: str = DEFAULT_BOARD, boot_timeout: float = 15.0,
                 resettable: bool = False):
        env = next((e for b, e in TARGETS.values() if b == board), DEFAULT_ENV)
        self.elf = Path(elf) if elf else default_elf(env)
        if not self.elf.is_file():
            raise FileNotFoundError(
                f"firmware {self.elf} not found: build it first with `pio run -e {env}` "
                "(in the repository root)"
            )
        self.board = board
        self.boot_timeout = boot_timeout
        self.resettable = resettable
        self.proc: subprocess.Popen[bytes] | None = None
        self.transport: SocketTransport | PipeTransport | None = None
        self._log = tempfile.TemporaryFile()
        self._dir = tempfile.TemporaryDirectory(prefix="qsnn-qemu-")
        self._monitor_path = Path(self._dir.name) / "monitor.sock"
        self._monitor: socket.socket | None = None
        self.resets = 0

    def start(self) -> "SocketTransport | PipeTransport":
        if qemu_config(self.board).get("console") == "semihosting":
            return self._start_piped()
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.bind(("127.0.0.1", 0))
        srv.listen(1)
        srv.settimeout(self.boot_timeout)
        port = srv.getsockname()[1]
        cmd = qemu_command(self.elf, f"tcp:127.0.0.1:{port},server=off,nodelay=on", self.board)
        # QEMU's monitor on a private Unix socket: reset() reboots the board like its reset pin
        # (the board files say -no-reboot so that a firmware reset ends QEMU; a board that may
        # be reset on purpose reboots instead)
        if self.resettable:
            cmd = [a for a in cmd if a != "-no-reboot"]
        cmd += ["-monitor", f"unix:{self._monitor_path},server=on,wait=off"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        _live.add(self)
        try:
            conn, _ = srv.accept()
        except socket.timeout as e:
            self.stop()
            raise RuntimeError(f"QEMU did not connect its serial port within {self.boot_timeout} s: {self.output()}") from e
        finally:
            srv.close()
        self.transport = SocketTransport(conn, f"qemu:{self.elf.name}")
        return self.transport

    def _start_piped(self) -> PipeTransport:
        """A board without a UART: its semihosting console is QEMU's stdin/stdout."""
        cmd = qemu_command(self.elf, None, self.board)
        if self.resettable:
            cmd = [a for a in cmd if a != "-no-reboot"]
        cmd += ["-monitor", f"unix:{self._monitor_path},server=on,wait=off"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, bufsize=0)
        _live.add(self)
        self.transport = PipeTransport(self.proc, f"qemu:{self.elf.name}")
        return self.transport

    def reset(self) -> None:
        """Reboot the emulated board now (QEMU `system_reset`): the firmware starts from its
        reset vector with the ELF's image reloaded; the serial connection stays. Only for a
        board started with ``resettable=True`` (otherwise QEMU would exit: -no-reboot)."""
        if not self.resettable:
            raise RuntimeError("QemuBoard(resettable=True) is needed for reset()")
        if self._monitor is None:
            mon = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            mon.settimeout(5.0)
            mon.connect(str(self._monitor_path))
            self._monitor = mon
            self._monitor_read()  # the banner and first prompt
        self._monitor.sendall(b"system_reset\n")
        self._monitor_read()
        self.resets += 1

    def _monitor_read(self) -> str:
        assert self._monitor is not None
        buf = b""
        while not buf.endswith(b"(qemu) "):
            chunk = self._monitor.recv(4096)
            if not chunk:
                raise ConnectionError(f"QEMU's monitor closed: {self.output()}")
            buf += chunk
        return buf.decode(errors="replace")

    def output(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()

    def wait(self, timeout: float) -> int:
        """Exit status once the firmware ended (board_exit); TimeoutExpired otherwise."""
        assert self.proc is not None
        status = self.proc.wait(timeout)
        _live.discard(self)
        return status

    def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.close()
            self._monitor = None
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        _live.discard(self)

    def __enter__(self) -> "QemuBoard":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log.close()
        self._dir.cleanup()
