"""Evaluate a device running the qsnnkit firmware on a dataset split, through its serial port.

    python host/eval.py                                   # boot QEMU with the built firmware
    python host/eval.py --port socket://127.0.0.1:4444    # a board started by `pio run -t upload`
    python host/eval.py --port /dev/ttyACM0 --limit 100   # a real board

Each clip is read, padded/cut to 1 s (qsnnkit.frontend.fit_clip, the binding's own rule)
and streamed to the device hop by hop, like a live microphone; the device runs the C front
end on every hop and the network on every frame, and returns its per-class outputs and the
counter ticks it spent in each. The same clip goes through the integer reference
(qsnnkit.frontend.clip_features + qsnnkit.reference.run_clip); ``agreement`` is the
fraction of clips whose device outputs equal the reference's exactly.

Refuses a device whose protocol version or model hash differs from MODEL's. Exit status:
0 all clips bit-exact, 3 some clip disagreed, 1 an error (message on stderr).
"""
from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qsnnkit import protocol as P
from qsnnkit.spec import exit_meaning
from qsnnkit.paths import FIRMWARE_DIR

DEFAULT_MODEL = FIRMWARE_DIR / "models" / "default" / "model.npz"


@dataclass
class ClipRecord:
    path: str
    label: int
    device_label: int
    reference_label: int
    exact: bool
    frontend_ticks: int
    network_ticks: int
    frames: int
    worst_hop_ticks: int
    stack_peak_bytes: int
    wall_s: float
    device_outputs: list[int]
    reference_outputs: list[int]


class Refused(RuntimeError):
    """The device is not the one MODEL describes (or speaks another protocol)."""


def check_ident(ident: P.Ident, model_hash: str, n_classes: int, format_version: int) -> None:
    if ident.protocol_version != P.PROTOCOL_VERSION:
        raise Refused(f"device speaks protocol version {ident.protocol_version}, this host speaks {P.PROTOCOL_VERSION}")
    if ident.model_status != 0:
        from qsnnkit.spec import CORE_STATUS

        name, why = next(((n, d) for n, (c, d) in CORE_STATUS.items() if c == ident.model_status), ("?", "unknown code"))
        raise Refused(f"the model compiled into the firmware failed qsnn_model_check: QSNN_{name} "
                      f"(code {ident.model_status}: {why})")
    if ident.model_hash != model_hash[:16]:
        raise Refused(
            f"device runs model {ident.model_hash}, but MODEL is {model_hash[:16]}: build the firmware with this "
            "model (QSNN_MODEL_DIR=<folder with its qsnn_model.c/.h> pio run -e qemu_m4) or pass the matching --model"
        )
    if ident.format_version != format_version or ident.n_classes != n_classes:
        raise Refused(
            f"device model: format {ident.format_version}, {ident.n_classes} classes; "
            f"MODEL: format {format_version}, {n_classes} classes"
        )


def spread(items: list, limit: int | None) -> list:
    """``limit`` items spread evenly over the (label-sorted) list, so every class is in."""
    if limit is None or limit >= len(items):
        return list(items)
    n = len(items)
    return [items[(i * n) // limit] for i in range(limit)]


def stats(values: list[int]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(a)), "p95": float(np.percentile(a, 95)), "mean": float(a.mean())}


def confusion(labels: list[int], answers: list[int], n_classes: int) -> list[list[int]]:
    """Counts [true class][answered class]."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    for t, a in zip(labels, answers):
        m[t, a] += 1
    return m.tolist()


def clip_row(r: ClipRecord, data_root: Path | None) -> dict[str, object]:
    """One clip of the report: `id` is its path relative to the data root."""
    p = Path(r.path)
    try:
        cid = str(p.relative_to(data_root)) if data_root is not None else str(p)
    except ValueError:
        cid = str(p)
    return {"id": cid, "label": r.label, "predicted": r.device_label, "reference_predicted": r.reference_label,
            "outputs": r.device_outputs, "reference_outputs": r.reference_outputs, "agreement": r.exact,
            "frames": r.frames, "frontend_ticks": r.frontend_ticks, "network_ticks": r.network_ticks,
            "worst_hop_ticks": r.worst_hop_ticks, "stack_peak_bytes": r.stack_peak_bytes, "wall_s": r.wall_s}


def summarize(records: list[ClipRecord], ident: P.Ident, model_hash: str, target: str, wall_total: float,
              extra: dict[str, object], data_root: Path | None = None) -> dict[str, object]:
    n = len(records)
    fe = [r.frontend_ticks for r in records]
    net = [r.network_ticks for r in records]
    frames = sum(r.frames for r in records)
    latency: dict[str, object] = {
        "unit": ident.counter_unit,
        "counter_hz": ident.counter_hz,
        "frontend": stats(fe),
        "network": stats(net),
        "total": stats([a + b for a, b in zip(fe, net)]),
        "frontend_per_hop_mean": float(sum(fe)) / max(1, sum(r.frames + 1 for r in records)),
        "network_per_frame_mean": float(sum(net)) / max(1, frames),
        # the slowest 20 ms hop of any clip (front end + the network step it fed), in the
        # counter's unit: what must keep up with a microphone
        "worst_hop": max(r.worst_hop_ticks for r in records),
    }
    mism = [r for r in records if not r.exact]
    return {
        "samples": n,
        "accuracy": sum(r.device_label == r.label for r in records) / n,
        "reference_accuracy": sum(r.reference_label == r.label for r in records) / n,
        "agreement": sum(r.exact for r in records) / n,
        "label_agreement": sum(r.device_label == r.reference_label for r in records) / n,
        "latency": latency,
        "ram_bytes": {
            "static": ident.static_ram_bytes,
            "stack_peak": max(r.stack_peak_bytes for r in records),
            "stack_reserved": ident.stack_bytes,
            "arena": ident.arena_bytes,
        },
        "flash_bytes": ident.flash_bytes,
        "model_hash": model_hash[:16],
        "target": target,
        "board": ident.board,
        "firmware": f"{ident.firmware} {ident.firmware_version}",
        "protocol_version": ident.protocol_version,
        "wall_s_per_clip": stats([r.wall_s for r in records]) | {"total": wall_total},
        "mismatches": [asdict(r) for r in mism[:10]],
        # rows: true class, columns: the device's answer (classes in the model's order)
        "confusion": confusion([r.label for r in records], [r.device_label for r in records], ident.n_classes),
        "clips": [clip_row(r, data_root) for r in records],  # every clip: labels, outputs, counters
        **extra,
    }


class Evaluator:
    """Runs clips on one or more devices (QEMU instances or one port) and on the reference."""

    def __init__(self, args: argparse.Namespace, model) -> None:  # noqa: ANN001 - ConvertedModel
        from qsnnkit.host.qemu import parse_port

        self.args = args
        self.model = model
        self.target = parse_port(args.port)  # emulated target, or None for a real port
        self.ident: P.Ident | None = None
        self.error: BaseException | None = None
        self.lock = threading.Lock()

    def _reference(self, pcm: np.ndarray) -> np.ndarray:
        from qsnnkit.reference import run_clip
        from qsnnkit.frontend import clip_features

        return np.asarray(run_clip(self.model, clip_features(pcm)), dtype=np.int64)

    def _serve(self, dev, jobs: "queue.Queue[tuple[int, Path, int]]", out: list, bar) -> None:  # noqa: ANN001
        from qsnnkit.data import read_wav
        from qsnnkit.frontend import fit_clip

        ident = dev.connect()
        check_ident(ident, self.model.hash_hex, self.model.n_classes, self.model.format_version)
        with self.lock:
            self.ident = self.ident or ident
        while self.error is None:
            try:
                i, path, label = jobs.get_nowait()
            except queue.Empty:
                return
            pcm = fit_clip(read_wav(path))
            t0 = time.perf_counter()
            res = dev.run_clip(pcm)
            wall = time.perf_counter() - t0
            ref = self._reference(pcm)
            dev_out = np.asarray(res.outputs, dtype=np.int64)
            out[i] = ClipRecord(
                path=str(path), label=int(label), device_label=int(res.label),
                reference_label=int(np.argmax(ref)), exact=bool(np.array_equal(dev_out, ref)),
                frontend_ticks=res.frontend_ticks, network_ticks=res.network_ticks, frames=res.frames,
                worst_hop_ticks=res.worst_hop_ticks,
                stack_peak_bytes=res.stack_peak_bytes, wall_s=wall,
                device_outputs=[int(v) for v in dev_out], reference_outputs=[int(v) for v in ref],
            )
            bar.update(1)

    def _worker_qemu(self, jobs, out, bar) -> None:  # noqa: ANN001
        from qsnnkit.host.device import Device
        from qsnnkit.host.qemu import TARGETS, QemuBoard

        try:
            with QemuBoard(self.args.elf, board=TARGETS[self.target][0]) as qb:
                assert qb.transport is not None
                dev = Device(qb.transport, timeout=self.args.timeout)
                try:
                    self._serve(dev, jobs, out, bar)
                except (ConnectionError, TimeoutError) as e:
                    status = qb.proc.poll() if qb.proc is not None else None
                    if status is None:
                        raise
                    meaning = exit_meaning(status)
                    why = f" ({meaning})" if meaning else ""
                    raise RuntimeError(f"QEMU exited with status {status}{why}: {e}; {qb.output()}") from e
                if self.error is None:
                    dev.bye(0)
                    status = qb.wait(10)
                    if status != 0:
                        raise RuntimeError(f"QEMU exited with status {status} after BYE: {qb.output()}")
        except BaseException as e:  # noqa: BLE001 - handed to the main thread
            with self.lock:
                self.error = self.error or e

    def _worker_port(self, jobs, out, bar) -> None:  # noqa: ANN001
        from qsnnkit.host.device import Device
        from qsnnkit.host.transport import open_port

        try:
            t = open_port(self.args.port, self.args.baud)
            try:
                self._serve(Device(t, timeout=self.args.timeout), jobs, out, bar)
            finally:
                t.close()
        except BaseException as e:  # noqa: BLE001
            with self.lock:
                self.error = self.error or e

    def run(self, items: list[tuple[Path, int]]) -> list[ClipRecord]:
        from tqdm import tqdm

        jobs: queue.Queue[tuple[int, Path, int]] = queue.Queue()
        for i, (p, lab) in enumerate(items):
            jobs.put((i, p, lab))
        out: list[ClipRecord | None] = [None] * len(items)
        qemu = self.target is not None
        n_workers = max(1, min(self.args.jobs, len(items))) if qemu else 1
        target = self._worker_qemu if qemu else self._worker_port
        with tqdm(total=len(items), desc="clips on device", unit="clip", disable=self.args.quiet) as bar:
            threads = [threading.Thread(target=target, args=(jobs, out, bar), daemon=True) for _ in range(n_workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        if self.error is not None:
            raise self.error
        missing = [items[i][0] for i, r in enumerate(out) if r is None]
        if missing:
            raise RuntimeError(f"{len(missing)} clips were not evaluated, first: {missing[0]}")
        return [r for r in out if r is not None]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="qsnn-eval",
        description="Evaluate the firmware on a device over its serial port against the integer reference.",
    )
    ap.add_argument("--port", default="qemu",
                    help="serial device, pyserial URL (socket://127.0.0.1:4444), or an emulated board booted with "
                         "the built firmware: 'qemu' or 'qemu:m4' (STM32F405, Cortex-M4, env qemu_m4), 'qemu:m0' "
                         "(nRF51822, Cortex-M0, env qemu_m0), 'qemu:m7' (MPS2 AN500, Cortex-M7, env qemu_m7), 'qemu:rv32' (SiFive FE310, rv32imac, "
                         "env qemu_rv32) (default: qemu)")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                    help=f"converted model (.npz) the firmware was built with (default: {DEFAULT_MODEL})")
    ap.add_argument("--elf", type=Path, default=None,
                    help="firmware for --port qemu[:target] (default: .pio/build/<its env>/firmware.elf)")
    ap.add_argument("--data-root", type=Path, default=None,
                    help="dataset root (default: $QSNN_DATA_ROOT or ../shared/data)")
    ap.add_argument("--split", choices=["train", "val", "test", "all"], default="test")
    ap.add_argument("--limit", type=int, default=None, help="evaluate N clips spread evenly over the split")
    ap.add_argument("--json", type=Path, default=None, help="also write the summary to this JSON file")
    ap.add_argument("--jobs", type=int, default=2, help="parallel QEMU instances for --port qemu[:target] (default 2)")
    ap.add_argument("--baud", type=int, default=115200, help="baud rate of a real serial port (default 115200)")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for each device response")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be at least 1")
    if args.jobs < 1:
        ap.error("--jobs must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from qsnnkit.model import load_converted
        from qsnnkit.data import list_split

        from qsnnkit.host.qemu import TARGETS, default_elf, parse_port

        qemu_target = parse_port(args.port)
        if qemu_target is not None:
            env = TARGETS[qemu_target][1]
            args.elf = args.elf or default_elf(env)
            if not args.elf.is_file():
                raise FileNotFoundError(f"firmware {args.elf} not found: build it first with `pio run -e {env}`")
        model = load_converted(args.model)
        items = spread(list_split(args.data_root, args.split), args.limit)
        if not items:
            raise ValueError(f"split {args.split!r} of {args.data_root} holds no clips")
        ev = Evaluator(args, model)
        t0 = time.perf_counter()
        records = ev.run(items)
        wall = time.perf_counter() - t0
    except (Refused, P.DeviceError, P.ProtocolError, FileNotFoundError, ValueError, ConnectionError,
            TimeoutError, RuntimeError) as e:
        print(f"qsnn-eval: error: {e}", file=sys.stderr)
        return 1
    assert ev.ident is not None
    target = f"qemu:{ev.ident.board}" if qemu_target is not None else ev.ident.board
    from qsnnkit.data import resolve_root

    summary = summarize(records, ev.ident, model.hash_hex, target, wall, {
        "port": args.port, "split": args.split, "model": str(args.model),
        "jobs": args.jobs if qemu_target is not None else 1,
    }, data_root=resolve_root(args.data_root))
    lat = summary["latency"]
    assert isinstance(lat, dict)
    print(
        f"{summary['samples']} clips on {target}: accuracy {summary['accuracy']:.4f} "
        f"(reference {summary['reference_accuracy']:.4f}), agreement {summary['agreement']:.4f}\n"
        f"per clip ({lat['unit']}): front end median {lat['frontend']['median']:.0f}, "
        f"network median {lat['network']['median']:.0f}, total p95 {lat['total']['p95']:.0f}\n"
        f"RAM static {ev.ident.static_ram_bytes} B, stack peak {max(r.stack_peak_bytes for r in records)} B, "
        f"flash {ev.ident.flash_bytes} B, wall {float(np.median([r.wall_s for r in records])):.2f} s/clip "
        f"(total {wall:.1f} s)"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    if summary["agreement"] != 1.0:
        first = summary["mismatches"][0]  # type: ignore[index]
        print(f"qsnn-eval: device and integer reference disagree; first mismatch {first['path']}:\n"
              f"  device    {first['device_outputs']}\n  reference {first['reference_outputs']}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
