"""A faulty serial line for testing: a seeded TCP relay that damages the byte stream both ways.

    relay = FaultyRelay(device_socket, rate=0.001, seed=1, reset_rate=2e-6, reset=board.reset)
    dev = Device(SocketTransport.connect("127.0.0.1", relay.port))

Each byte passing through, in each direction, is hit with probability ``rate`` by one fault
drawn uniformly from :data:`KINDS`: ``corrupt`` (XOR with a random non-zero byte, so it may
become the 0x00 frame delimiter and split a frame in two), ``drop``, ``duplicate`` (sent
twice) or ``delay`` (the stream stalls for up to ``max_delay`` seconds before that byte).
Host-to-device bytes also trigger, with probability ``reset_rate`` each, a ``reset`` of the
board (``QemuBoard.reset``: QEMU's system_reset, so the firmware reboots mid-clip and
whatever it held is lost). ``counts`` tallies every fault by direction and kind.

Fault positions follow from the seed and the bytes sent (one generator per direction);
timing does not. Also a command for trying a host against a board started by hand:

    python host/relay.py --connect 127.0.0.1:4444 --listen 5555 --rate 0.001
    python host/eval.py --port socket://127.0.0.1:5555 --limit 20
"""
from __future__ import annotations

import argparse
import random
import socket
import sys
import threading
import time
from collections import Counter
from typing import Callable

KINDS = ("corrupt", "drop", "duplicate", "delay")
DIRECTIONS = ("to_device", "to_host")


class FaultyRelay:
    def __init__(self, device: socket.socket, rate: float, seed: int = 0, reset_rate: float = 0.0,
                 reset: Callable[[], None] | None = None, max_delay: float = 0.05, port: int = 0):
        if not 0.0 <= rate < 1.0 or not 0.0 <= reset_rate < 1.0:
            raise ValueError(f"fault rates must be in [0, 1): rate {rate}, reset_rate {reset_rate}")
        if reset_rate > 0.0 and reset is None:
            raise ValueError("reset_rate > 0 needs a reset callback (an emulated board)")
        self.device = device
        self.rate = rate
        self.reset_rate = reset_rate
        self.reset = reset
        self.max_delay = max_delay
        self.counts: Counter[str] = Counter()
        self._rng = {d: random.Random(f"{seed}:{d}") for d in DIRECTIONS}
        self._lock = threading.Lock()
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", port))
        self._server.listen(1)
        self.port: int = self._server.getsockname()[1]
        self._host: socket.socket | None = None
        self.closed = threading.Event()
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    # -- plumbing ---------------------------------------------------------------------------
    def _accept(self) -> None:
        try:
            host, _ = self._server.accept()
        except OSError:
            return
        finally:
            self._server.close()
        host.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.device.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._host = host
        for src, dst, d in ((host, self.device, "to_device"), (self.device, host, "to_host")):
            threading.Thread(target=self._pump, args=(src, dst, d), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        try:
            while not self.closed.is_set():
                data = src.recv(4096)
                if not data:
                    break
                self._forward(data, dst, direction)
        except OSError:
            pass
        finally:
            self.close()

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def _forward(self, data: bytes, dst: socket.socket, direction: str) -> None:
        rng = self._rng[direction]
        out = bytearray()
        for b in data:
            if direction == "to_device" and self.reset_rate and rng.random() < self.reset_rate:
                if out:
                    dst.sendall(bytes(out))
                    out.clear()
                assert self.reset is not None
                self.reset()
                self._count("reset")
            if rng.random() >= self.rate:
                out.append(b)
                continue
            kind = KINDS[rng.randrange(len(KINDS))]
            self._count(f"{direction}.{kind}")
            if kind == "corrupt":
                out.append(b ^ rng.randrange(1, 256))
            elif kind == "duplicate":
                out += bytes((b, b))
            elif kind == "delay":
                if out:
                    dst.sendall(bytes(out))
                    out.clear()
                time.sleep(rng.uniform(0.0, self.max_delay))
                out.append(b)
            # "drop": nothing
        if out:
            dst.sendall(bytes(out))

    def kind_counts(self) -> dict[str, int]:
        """Faults per kind, both directions together (resets as 'reset')."""
        total: Counter[str] = Counter()
        for key, n in self.counts.items():
            total[key.split(".")[-1]] += n
        return {k: total.get(k, 0) for k in (*KINDS, "reset")}

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for s in (self._host, self.device, self._server):
            if s is None:
                continue
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def __enter__(self) -> "FaultyRelay":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="qsnn-relay",
        description="Relay a device's TCP serial port through a faulty line (corrupt, drop, duplicate, delay "
                    "bytes both ways) to test a host; prints the fault counts when the host disconnects.",
    )
    ap.add_argument("--connect", required=True, help="the device's serial port as HOST:PORT (e.g. 127.0.0.1:4444)")
    ap.add_argument("--listen", type=int, default=5555, help="local port the host connects to (default 5555)")
    ap.add_argument("--rate", type=float, default=0.001, help="probability of a fault per byte, each way (default 0.001)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the fault positions (default 0)")
    ap.add_argument("--max-delay", type=float, default=0.05, help="longest stall of a 'delay' fault, seconds (default 0.05)")
    args = ap.parse_args(argv)
    host, _, port = args.connect.rpartition(":")
    if not port.isdigit():
        ap.error(f"--connect: expected HOST:PORT, got {args.connect!r}")
    try:
        dev = socket.create_connection((host or "127.0.0.1", int(port)), timeout=10)
        dev.settimeout(None)
        relay = FaultyRelay(dev, args.rate, args.seed, max_delay=args.max_delay, port=args.listen)
    except (OSError, ValueError) as e:
        print(f"qsnn-relay: error: {e}", file=sys.stderr)
        return 1
    print(f"relaying 127.0.0.1:{relay.port} <-> {args.connect} with fault rate {args.rate} per byte; Ctrl-C to stop",
          flush=True)
    try:
        while not relay.closed.is_set():
            time.sleep(0.2)
    except KeyboardInterrupt:
        relay.close()
    print("faults: " + ", ".join(f"{k} {n}" for k, n in sorted(relay.counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
