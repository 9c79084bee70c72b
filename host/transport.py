"""Byte transports to a device: a serial port (any pyserial URL) or a TCP socket.

``open_port("socket://127.0.0.1:4444")`` connects with TCP_NODELAY (QEMU's serial over
TCP: without it every request/response round trip costs ~45 ms); anything else goes to
pyserial's ``serial_for_url`` (``/dev/ttyACM0``, ``COM3``, ``rfc2217://...``, ``loop://``).
"""
from __future__ import annotations

import os
import select
import socket
import subprocess
from typing import Protocol


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    def read(self, timeout: float) -> bytes:
        """Whatever arrived within ``timeout`` seconds (b"" if nothing)."""
        ...

    def close(self) -> None: ...


class SocketTransport:
    def __init__(self, sock: socket.socket, name: str):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(True)
        self.sock = sock
        self.name = name

    @classmethod
    def connect(cls, host: str, port: int, timeout: float = 10.0) -> "SocketTransport":
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as e:
            raise ConnectionError(
                f"cannot connect to {host}:{port} ({e}); is the emulated board running "
                "(`pio run -e qemu_m4 -t upload`)?"
            ) from e
        return cls(sock, f"socket://{host}:{port}")

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not ready:
            return b""
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError(f"{self.name}: the device closed the connection")
        return data

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class SerialTransport:
    def __init__(self, url: str, baudrate: int):
        import serial  # pyserial

        try:
            self.port = serial.serial_for_url(url, baudrate=baudrate, timeout=0)
        except (serial.SerialException, ValueError) as e:
            raise ConnectionError(f"cannot open serial port {url!r}: {e}") from e
        self.name = url

    def write(self, data: bytes) -> None:
        self.port.write(data)
        self.port.flush()

    def read(self, timeout: float) -> bytes:
        self.port.timeout = max(0.0, timeout)
        first = self.port.read(1)
        if not first:
            return b""
        n = self.port.in_waiting
        return first + (self.port.read(n) if n else b"")

    def close(self) -> None:
        self.port.close()


class PipeTransport:
    """The console of an emulated board that has no UART (QEMU's Xtensa `sim`: semihosting on
    QEMU's stdin and stdout): writes go to the process's stdin, reads come from its stdout."""

    def __init__(self, proc: "subprocess.Popen[bytes]", name: str):
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self.name = name
        self._out = proc.stdout.fileno()
        os.set_blocking(self._out, False)

    def write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, ValueError) as e:
            raise ConnectionError(f"{self.name}: the device closed its console") from e

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self._out], [], [], max(0.0, timeout))
        if not ready:
            return b""
        try:
            data = os.read(self._out, 65536)
        except BlockingIOError:
            return b""
        if not data:
            raise ConnectionError(f"{self.name}: the device closed its console")
        return data

    def close(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass


def open_port(url: str, baudrate: int = 115200) -> Transport:
    """A transport for a serial device, a pyserial URL, or socket://HOST:PORT."""
    if url.startswith("socket://"):
        hostport = url[len("socket://"):].rstrip("/")
        host, _, port = hostport.rpartition(":")
        if not port.isdigit():
            raise ValueError(f"expected socket://HOST:PORT, got {url!r}")
        return SocketTransport.connect(host or "127.0.0.1", int(port))
    return SerialTransport(url, baudrate)
