"""Evaluate a device running the qsnnkit firmware on a dataset split, through its serial port.

    python host/eval.py                                   # boot QEMU with the default model's firmware
    python host/eval.py --model firmware/models/nmnist/model.npz   # any model: built for it, cached
    python host/eval.py --port socket://127.0.0.1:4444    # a board started by `pio run -t upload`
    python host/eval.py --port /dev/ttyACM0 --limit 100   # a real board

The dataset and the input kind come from MODEL's descriptor (an audio model's dataset, Speech
Commands or FSDD, from its provenance). With ``--port qemu[:target]``
the firmware is built for MODEL and the target (qsnnkit.host.build: cached by model hash,
target, firmware sources and build flags) unless ``--elf`` names one.

Audio models: each clip is read, padded/cut to 1 s (qsnnkit.frontend.fit_clip, the
binding's own rule; an FSDD recording resampled to 16 kHz and centred, data.read_fsdd_clip) and streamed to the device hop by hop, like a live microphone; the device
runs the C front end on every hop and the network on every frame. Event models (N-MNIST):
each sample's address events are streamed in the protocol's compact binary records; the
device bins them (qsnn_ev_feed) and steps the network on every step they close. Either way
it returns its per-class outputs and the counter ticks it spent on its input side and in the
network. The same sample goes through the integer reference (the same C front end or binner,
then qsnnkit.reference.run_clip); ``agreement`` is the fraction of samples whose device
outputs equal the reference's exactly.

Over a faulty line every clip is counted exactly once (host/device.py: re-sends answered
from the device's cache, per-clip retry after a device reset). ``--json OUT.json`` also
appends every clip, as it finishes, to ``OUT.jsonl`` (one JSON line per clip after a header
line naming the run); ``--resume`` continues an interrupted run from that log.
``--fault-rate`` puts a seeded faulty line (host/relay.py) between host and emulated board.

Refuses a device whose protocol version or model hash differs from MODEL's. Exit status:
0 all clips bit-exact, 3 some clip disagreed, 1 an error (message on stderr).
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from qsnnkit import protocol as P
from qsnnkit.host.relay import DIRECTIONS, KINDS
from qsnnkit.spec import exit_meaning
from qsnnkit.paths import FIRMWARE_DIR

if TYPE_CHECKING:  # imported where used: --help and the tests of the helpers stay light
    from tqdm import tqdm

    from qsnnkit.host.device import Device
    from qsnnkit.host.relay import FaultyRelay
    from qsnnkit.model import ConvertedModel

#: the clips left to run: (index in the results, path, label)
Jobs: TypeAlias = "queue.Queue[tuple[int, Path, int]]"

DEFAULT_MODEL = FIRMWARE_DIR / "models" / "default" / "model.npz"
#: An event sample's first step begins at its first timestamp's origin, t = 0 (as in training:
#: qsnnkit.nmnist.load_frames bins from t0 = 0).
EVENT_T0 = 0


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


def check_ident(ident: P.Ident, model_hash: str, n_classes: int, format_version: int,
                input_kind: str = "audio") -> None:
    if ident.protocol_version != P.PROTOCOL_VERSION:
        raise Refused(f"device speaks protocol version {ident.protocol_version}, this host speaks {P.PROTOCOL_VERSION}")
    if ident.input_kind != input_kind:
        raise Refused(f"the device's firmware serves a model that reads {ident.input_kind}, but MODEL reads "
                      f"{input_kind}: build the firmware with MODEL (--port qemu[:target] does) or pass the "
                      "model the device runs")
    if ident.model_status != 0:
        from qsnnkit.spec import CORE_STATUS

        name, why = next(((n, d) for n, (c, d) in CORE_STATUS.items() if c == ident.model_status), ("?", "unknown code"))
        raise Refused(f"the model compiled into the firmware failed qsnn_model_check: QSNN_{name} "
                      f"(code {ident.model_status}: {why})")
    if ident.model_hash != model_hash[:16]:
        raise Refused(
            f"device runs model {ident.model_hash}, but MODEL is {model_hash[:16]}: build the firmware with this "
            "model (`python -m qsnnkit.host.build --model MODEL`, or QSNN_MODEL_DIR=<folder with its qsnn_model.c/.h> "
            "pio run -e <env> -t upload for a board) or pass the matching --model"
        )
    if ident.format_version != format_version or ident.n_classes != n_classes:
        raise Refused(
            f"device model: format {ident.format_version}, {ident.n_classes} classes; "
            f"MODEL: format {format_version}, {n_classes} classes"
        )


def event_stream_costs(records: list[ClipRecord], step_us: int, steps: int) -> dict[str, float | int]:
    """An event model's cost per millisecond of event stream (each sample covers steps x
    step_us of it): binning and network ticks, their mean over samples, and the slowest step
    (the events binned into it and the network step on it): what must fit in step_us live."""
    ms = steps * step_us / 1000.0
    fe = float(np.mean([r.frontend_ticks for r in records]))
    net = float(np.mean([r.network_ticks for r in records]))
    worst = max(r.worst_hop_ticks for r in records)
    return {"step_us": step_us, "steps": steps, "binning_per_ms_mean": fe / ms, "network_per_ms_mean": net / ms,
            "per_ms_mean": (fe + net) / ms, "worst_step": worst, "worst_step_per_ms": worst / (step_us / 1000.0)}


def spread(items: list, limit: int | None) -> list:
    """``limit`` items spread evenly over the (label-sorted) list, so every class is in."""
    if limit is None or limit >= len(items):
        return list(items)
    n = len(items)
    return [items[(i * n) // limit] for i in range(limit)]


def stats(values: list[int] | list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {"median": float(np.median(a)), "p95": float(np.percentile(a, 95)), "mean": float(a.mean())}


def confusion(labels: list[int], answers: list[int], n_classes: int) -> list[list[int]]:
    """Counts [true class][answered class]."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    for t, a in zip(labels, answers):
        m[t, a] += 1
    return m.tolist()


def clip_id(path: str | Path, data_root: Path | None) -> str:
    """A clip's id: its path relative to the data root (the whole path outside it)."""
    p = Path(path)
    try:
        return str(p.relative_to(data_root)) if data_root is not None else str(p)
    except ValueError:
        return str(p)


class ResumeRefused(ValueError):
    """--resume of a log written by a different run."""


class RunLog:
    """The per-clip log of a run (JSON lines): a header naming the run, then one line per clip,
    each appended whole (one write, flushed and fsync'ed) as soon as the clip is done, so an
    interrupted run loses at most the clip in progress. ``--resume`` reads it back."""

    #: header fields that must match for --resume
    IDENTITY = ("model_hash", "firmware", "board", "protocol_version", "split", "limit", "data_root", "model")

    def __init__(self, path: Path, run: dict[str, object], resume: bool):
        self.path = path
        self.run = run
        self.done: dict[str, ClipRecord] = {}
        self.header: dict[str, object] | None = None
        self.dropped_tail = False
        if resume:
            self._read()
        elif path.exists():
            path.unlink()  # a fresh run replaces an old log
        self._lock = threading.Lock()

    def _read(self) -> None:
        if not self.path.is_file():
            raise ResumeRefused(f"--resume: no run log {self.path} (it is written next to --json as the run goes)")
        raw_log = self.path.read_bytes()
        lines = raw_log.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        elif lines:
            lines.pop()  # a line cut short by the interruption: that clip runs again
            self.dropped_tail = True
        for n, raw in enumerate(lines, 1):
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as e:
                raise ResumeRefused(f"--resume: {self.path} line {n} is not JSON ({e}); not a run log of qsnn-eval") from e
            if n == 1:
                if row.get("kind") != "run":
                    raise ResumeRefused(f"--resume: {self.path} does not start with a run header")
                self.header = row
                for k in ("split", "limit", "data_root", "model"):
                    if row.get(k) != self.run.get(k):
                        raise ResumeRefused(f"--resume: the log's {k} is {row.get(k)!r}, this run's is "
                                            f"{self.run.get(k)!r}; resume with the same arguments or start afresh")
                continue
            if row.get("kind") != "clip":
                raise ResumeRefused(f"--resume: {self.path} line {n}: unexpected kind {row.get('kind')!r}")
            try:
                rec = ClipRecord(**{k: row[k] for k in ClipRecord.__dataclass_fields__})
            except (KeyError, TypeError) as e:
                raise ResumeRefused(f"--resume: {self.path} line {n}: a clip without {e}") from e
            if rec.path in self.done:
                raise ResumeRefused(f"--resume: {self.path} holds clip {rec.path} twice")
            self.done[rec.path] = rec
        if self.dropped_tail:  # appends continue after the last whole line
            os.truncate(self.path, raw_log.rfind(b"\n") + 1)

    def ident(self) -> P.Ident | None:
        """The device's IDENT as the log's header recorded it."""
        raw = self.header.get("ident") if self.header else None
        return P.Ident.unpack(bytes.fromhex(str(raw))) if raw else None

    def start(self, ident: P.Ident, payload: bytes) -> None:
        """Write the header (a fresh run) or check the device against it (--resume)."""
        dev = {"model_hash": ident.model_hash, "firmware": f"{ident.firmware} {ident.firmware_version}",
               "board": ident.board, "protocol_version": ident.protocol_version}
        if self.header is not None:
            for k, v in dev.items():
                if self.header.get(k) != v:
                    raise ResumeRefused(f"--resume: the log was written with {k} {self.header.get(k)!r}, the device "
                                        f"now has {v!r}; start afresh (without --resume)")
            return
        self.header = {"kind": "run", **dev, **self.run, "ident": payload.hex()}
        self._write(self.header)

    def append(self, rec: ClipRecord) -> None:
        self._write({"kind": "clip", **asdict(rec)})

    def _write(self, row: dict[str, object]) -> None:
        line = (json.dumps(row) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)


def clip_row(r: ClipRecord, data_root: Path | None) -> dict[str, object]:
    """One clip of the report: `id` is its path relative to the data root."""
    cid = clip_id(r.path, data_root)
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

    def __init__(self, args: argparse.Namespace, model: ConvertedModel) -> None:
        from qsnnkit.host.qemu import parse_port

        self.args = args
        self.model = model
        self.target = parse_port(args.port)  # emulated target, or None for a real port
        self.ident: P.Ident | None = None
        self.error: BaseException | None = None
        self.lock = threading.Lock()
        self.link: dict[str, int] = {}      # host-side link events (re-sends, restarts), all devices
        self.injected: dict[str, int] = {}  # faults the relay injected, all devices
        self.injected_dir: dict[str, dict[str, int]] = {}  # the same by direction
        self.log: "RunLog | None" = None
        self.data_root: Path | None = None

    @property
    def events(self) -> bool:
        return bool(self.model.input_kind == "events")

    def _load(self, path: Path) -> np.ndarray:  # int16 PCM, or a structured event array
        """A sample as the device receives it: a 1 s clip, or a sample's events in arrival order."""
        from qsnnkit import data

        if self.events:
            return data.read_nmnist(path)
        from qsnnkit.dataset import read_clip

        return read_clip(path, self.model.dataset)

    def _reference(self, sample: np.ndarray) -> np.ndarray:
        """The integer reference's outputs: the same C front end or binner, then the network."""
        from qsnnkit.reference import run_clip

        if self.events:
            from qsnnkit.events import bin_events

            frames, _ = bin_events(sample, self.model.event_config(), self.model.steps, EVENT_T0)
            return np.asarray(run_clip(self.model, frames), dtype=np.int64)
        from qsnnkit.frontend import clip_features

        return np.asarray(run_clip(self.model, clip_features(sample)), dtype=np.int64)

    def _serve(self, dev: Device, jobs: Jobs, out: list[ClipRecord | None], bar: tqdm) -> None:
        ident = dev.connect()
        check_ident(ident, self.model.hash_hex, self.model.n_classes, self.model.format_version,
                    self.model.input_kind)
        with self.lock:
            self.ident = self.ident or ident
            if self.log is not None:
                self.log.start(ident, dev.ident_payload)
        while self.error is None:
            try:
                i, path, label = jobs.get_nowait()
            except queue.Empty:
                return
            sample = self._load(path)
            t0 = time.perf_counter()
            if self.events:
                res = dev.run_events_retrying(sample, EVENT_T0, name=self._clip_id(path))
            else:
                res = dev.run_clip_retrying(sample, name=self._clip_id(path))
            wall = time.perf_counter() - t0
            ref = self._reference(sample)
            dev_out = np.asarray(res.outputs, dtype=np.int64)
            out[i] = rec = ClipRecord(
                path=str(path), label=int(label), device_label=int(res.label),
                reference_label=int(np.argmax(ref)), exact=bool(np.array_equal(dev_out, ref)),
                frontend_ticks=res.frontend_ticks, network_ticks=res.network_ticks, frames=res.frames,
                worst_hop_ticks=res.worst_hop_ticks,
                stack_peak_bytes=res.stack_peak_bytes, wall_s=wall,
                device_outputs=[int(v) for v in dev_out], reference_outputs=[int(v) for v in ref],
            )
            if self.log is not None:
                self.log.append(rec)
            bar.update(1)

    def _clip_id(self, path: Path) -> str:
        return clip_id(path, self.data_root)

    def _tally(self, dev: Device, relay: FaultyRelay | None) -> None:
        with self.lock:
            for k, v in dev.faults.items():
                self.link[k] = self.link.get(k, 0) + v
            if relay is not None:
                for k, v in relay.kind_counts().items():
                    self.injected[k] = self.injected.get(k, 0) + v
                for key, v in relay.counts.items():
                    d, _, kind = key.rpartition(".")
                    if d:
                        row = self.injected_dir.setdefault(d, {})
                        row[kind] = row.get(kind, 0) + v

    def _worker_qemu(self, jobs: Jobs, out: list[ClipRecord | None], bar: tqdm, worker: int = 0) -> None:
        from qsnnkit.host.device import Device
        from qsnnkit.host.qemu import TARGETS, QemuBoard

        from qsnnkit.host.relay import FaultyRelay
        from qsnnkit.host.transport import SocketTransport, Transport

        a = self.args
        relay = None
        dev = None
        assert self.target is not None, "QEMU workers run for an emulated target only"
        try:
            with QemuBoard(a.elf, board=TARGETS[self.target][0], resettable=a.fault_reset_rate > 0) as qb:
                assert qb.transport is not None
                transport: Transport = qb.transport
                if a.fault_rate > 0 or a.fault_reset_rate > 0:
                    # the faulty line sits between this host and the board's serial socket
                    # one fault sequence per board, from the run's seed and the board's index
                    if not isinstance(qb.transport, SocketTransport):
                        raise RuntimeError("a faulty line needs the board's serial on a socket, "
                                           f"not {qb.transport.name}")
                    relay = FaultyRelay(qb.transport.sock, a.fault_rate, a.fault_seed * 1000 + worker,
                                        a.fault_reset_rate, qb.reset)
                    transport = SocketTransport.connect("127.0.0.1", relay.port)
                dev = Device(transport, timeout=a.timeout, retries=a.retries, clip_retries=a.clip_retries, chunk=a.chunk,
                             pack=not a.no_pack)
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
        finally:
            if dev is not None:
                self._tally(dev, relay)
            if relay is not None:
                relay.close()

    def _worker_port(self, jobs: Jobs, out: list[ClipRecord | None], bar: tqdm, worker: int = 0) -> None:
        from qsnnkit.host.device import Device
        from qsnnkit.host.transport import open_port

        try:
            t = open_port(self.args.port, self.args.baud)
            a = self.args
            dev = Device(t, timeout=a.timeout, retries=a.retries, clip_retries=a.clip_retries, chunk=a.chunk,
                         pack=not a.no_pack)
            try:
                self._serve(dev, jobs, out, bar)
            finally:
                self._tally(dev, None)
                t.close()
        except BaseException as e:  # noqa: BLE001
            with self.lock:
                self.error = self.error or e

    def run(self, items: list[tuple[Path, int]], done: dict[str, ClipRecord] | None = None) -> list[ClipRecord]:
        """Every item's record, in order; those in ``done`` (from a resumed log) are not run again."""
        from tqdm import tqdm

        done = done or {}
        jobs: Jobs = queue.Queue()
        out: list[ClipRecord | None] = [None] * len(items)
        for i, (p, lab) in enumerate(items):
            if str(p) in done:
                out[i] = done[str(p)]
            else:
                jobs.put((i, p, lab))
        qemu = self.target is not None
        n_workers = max(1, min(self.args.jobs, jobs.qsize())) if qemu else 1
        target = self._worker_qemu if qemu else self._worker_port
        if jobs.empty():
            return [r for r in out if r is not None]
        with tqdm(total=len(items), initial=len(items) - jobs.qsize(), desc="clips on device", unit="clip",
                  disable=self.args.quiet) as bar:
            threads = [threading.Thread(target=target, args=(jobs, out, bar, k), daemon=True) for k in range(n_workers)]
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():  # short joins: Ctrl-C is handled at once, whatever the threads do
                    t.join(0.2)
        if self.error is not None:
            raise self.error
        missing = [items[i][0] for i, r in enumerate(out) if r is None]
        if missing:
            raise RuntimeError(f"{len(missing)} clips were not evaluated, first: {missing[0]}")
        return [r for r in out if r is not None]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="qsnn-eval",
        description="Evaluate the firmware on a device over its serial port against the integer reference. "
                    "Also: `qsnn-eval report RUN.json` (table, Markdown and plots of a run) and "
                    "`qsnn-eval compare A.json B.json` (two runs side by side).",
    )
    ap.add_argument("--port", default="qemu",
                    help="serial device, pyserial URL (socket://127.0.0.1:4444), or an emulated board booted with "
                         "the built firmware: 'qemu' or 'qemu:m4' (STM32F405, Cortex-M4, env qemu_m4), 'qemu:m0' "
                         "(nRF51822, Cortex-M0, env qemu_m0), 'qemu:m7' (MPS2 AN500, Cortex-M7, env qemu_m7), 'qemu:rv32' (SiFive FE310, rv32imac, "
                         "env qemu_rv32), 'qemu:lx106' (Xtensa lx106 on QEMU's sim machine, env qemu_lx106) (default: qemu)")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                    help="converted model (.npz); its descriptor names the dataset and the input kind (audio or "
                         f"events). A real board must run firmware built with it (default: {DEFAULT_MODEL})")
    ap.add_argument("--elf", type=Path, default=None,
                    help="firmware for --port qemu[:target] (default: built for --model and the target, or reused "
                         "from the build cache: python -m qsnnkit.host.build)")
    ap.add_argument("--data-root", type=Path, default=None,
                    help="dataset root (default: $QSNN_DATA_ROOT or ../shared/data)")
    ap.add_argument("--split", choices=["train", "val", "test", "all"], default="test")
    ap.add_argument("--limit", type=int, default=None, help="evaluate N clips spread evenly over the split")
    ap.add_argument("--json", type=Path, default=None,
                    help="also write the summary and every clip to this JSON file, and each clip as it finishes to "
                         "the run log beside it (same name, .jsonl)")
    ap.add_argument("--resume", action="store_true",
                    help="continue the run whose log is beside --json: clips already in it are not run again; "
                         "refused when the model, firmware, board, split, limit or data root differ")
    ap.add_argument("--jobs", type=int, default=2, help="parallel QEMU instances for --port qemu[:target] (default 2)")
    ap.add_argument("--baud", type=int, default=115200, help="baud rate of a real serial port (default 115200)")
    ap.add_argument("--timeout", type=float, default=2.0,
                    help="seconds to wait for an answer before sending a request again (default 2)")
    ap.add_argument("--retries", type=int, default=8,
                    help="re-sends of one request before the clip is started again (default 8)")
    ap.add_argument("--clip-retries", type=int, default=4,
                    help="times a clip is started again (device reset, link gave up) before the run stops with an "
                         "error naming the clip (default 4)")
    ap.add_argument("--fault-rate", type=float, default=0.0,
                    help="emulated boards only: put a faulty line between host and board that corrupts, drops, "
                         "duplicates or delays this fraction of the bytes each way (host/relay.py; e.g. 0.001)")
    ap.add_argument("--fault-reset-rate", type=float, default=0.0,
                    help="emulated boards only: also reset the board with this probability per byte sent to it "
                         "(e.g. 3e-6: about one reset per 10 clips)")
    ap.add_argument("--fault-seed", type=int, default=1, help="seed of the injected faults (default 1)")
    ap.add_argument("--chunk", type=int, default=None,
                    help="samples per AUDIO frame (default: the most the device accepts, IDENT's max payload / 2: "
                         "320, one hop, for the audio firmware), or events per EVENTS frame for an event model "
                         "(default: 170): the most one frame carries; results do not depend on it, the number of "
                         "round trips does")
    ap.add_argument("--no-pack", action="store_true",
                    help="send audio as plain AUDIO frames, never AUDIO_PACKED (lossless, about half the bytes on "
                         "speech; the results are the same either way, only the time differs)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be at least 1")
    if args.jobs < 1:
        ap.error("--jobs must be at least 1")
    if args.timeout <= 0 or args.retries < 0 or args.clip_retries < 0:
        ap.error("--timeout must be positive, --retries and --clip-retries at least 0")
    if not (0 <= args.fault_rate < 1 and 0 <= args.fault_reset_rate < 1):
        ap.error("--fault-rate and --fault-reset-rate are probabilities per byte, in [0, 1)")
    if (args.fault_rate or args.fault_reset_rate) and not (args.port == "qemu" or args.port.startswith("qemu:")):
        ap.error("--fault-rate / --fault-reset-rate need an emulated board (--port qemu[:target])")
    if (args.fault_rate or args.fault_reset_rate) and args.port == "qemu:lx106":
        ap.error("--fault-rate / --fault-reset-rate need a board with a serial port; qemu:lx106's console is "
                 "semihosting on QEMU's stdio (use qemu:m4, m0, m7 or rv32)")
    if args.resume and args.json is None:
        ap.error("--resume needs --json (the run log is the .jsonl beside it)")
    return args


def report_main(argv: list[str]) -> int:
    """`qsnn-eval report RUN.json`: the table, and Markdown + plots beside the JSON."""
    from qsnnkit.host import report

    ap = argparse.ArgumentParser(prog="qsnn-eval report",
                                 description="Print the report of an evaluation (qsnn-eval --json) as a table and "
                                             "write it as Markdown with PNG plots beside the JSON.")
    ap.add_argument("run", type=Path, help="summary JSON written by qsnn-eval --json")
    ap.add_argument("--no-files", action="store_true", help="print only; write no Markdown or plots")
    a = ap.parse_args(argv)
    try:
        s = report.load(a.run)
        print(report.text_table(s))
        if not a.no_files:
            print(f"\nreport: {report.write(s, a.run)}")
    except (ValueError, KeyError, OSError) as e:
        print(f"qsnn-eval report: error: {e}", file=sys.stderr)
        return 1
    return 0


def compare_main(argv: list[str]) -> int:
    """`qsnn-eval compare A.json B.json`: two runs side by side."""
    from qsnnkit.host import report

    ap = argparse.ArgumentParser(prog="qsnn-eval compare",
                                 description="Set two evaluations (qsnn-eval --json) side by side: accuracy, "
                                             "agreement and latency, per-class deltas, the clips whose answer or "
                                             "outputs changed.")
    ap.add_argument("a", type=Path, help="first run's summary JSON")
    ap.add_argument("b", type=Path, help="second run's summary JSON")
    ap.add_argument("--json", type=Path, default=None, help="also write the changed clips to this JSON file")
    a = ap.parse_args(argv)
    try:
        text, changed = report.compare(report.load(a.a), report.load(a.b), a.a.stem, a.b.stem)
    except (ValueError, KeyError, IndexError) as e:
        print(f"qsnn-eval compare: error: {e}", file=sys.stderr)
        return 1
    print(text)
    if a.json:
        a.json.write_text(json.dumps({"a": str(a.a), "b": str(a.b), "changed": changed}, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "report":
        return report_main(argv[1:])
    if argv and argv[0] == "compare":
        return compare_main(argv[1:])
    args = parse_args(argv)
    try:
        from qsnnkit.model import load_converted

        from qsnnkit.host.qemu import parse_port

        model = load_converted(args.model)
        qemu_target = parse_port(args.port)
        events = model.input_kind == "events"
        if events and args.chunk is not None and not 1 <= args.chunk <= P.EVENTS_MAX_PER_FRAME:
            raise ValueError(f"--chunk: an EVENTS frame carries 1..{P.EVENTS_MAX_PER_FRAME} events, got {args.chunk}")
        if qemu_target is not None:
            if args.elf is None:
                from qsnnkit.host.build import firmware_for

                args.elf = firmware_for(args.model, qemu_target, quiet=args.quiet)
            elif not args.elf.is_file():
                raise FileNotFoundError(f"firmware {args.elf} not found (leave --elf out: it is built for --model)")
        if model.input_kind == "events":
            from qsnnkit.data import list_nmnist

            items = spread(list_nmnist(args.data_root, args.split), args.limit)
        else:
            from qsnnkit.dataset import audio_items

            items = spread(audio_items(args.data_root, args.split, model.dataset), args.limit)
        if not items:
            raise ValueError(f"split {args.split!r} of {args.data_root} holds no {model.dataset} samples")
        from qsnnkit.data import resolve_root
        from qsnnkit.dataset import audio_root

        data_root = resolve_root(args.data_root) if events else audio_root(args.data_root, model.dataset)
        ev = Evaluator(args, model)
        ev.data_root = data_root
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            run = {"split": args.split, "limit": args.limit, "data_root": str(data_root),
                   "model": str(args.model.resolve())}
            ev.log = RunLog(args.json.with_suffix(".jsonl"), run, resume=args.resume)
            if args.resume:
                print(f"resuming {ev.log.path}: {len(ev.log.done)} clips done"
                      + (" (its last line was cut short: that clip runs again)" if ev.log.dropped_tail else ""),
                      file=sys.stderr)
        t0 = time.perf_counter()
        try:
            records = ev.run(items, ev.log.done if ev.log is not None else None)
        except KeyboardInterrupt:
            where = (f"; the finished clips are in {ev.log.path}: add --resume to continue"
                     if ev.log is not None else " (with --json, --resume could have continued it)")
            print(f"qsnn-eval: interrupted{where}", file=sys.stderr)
            return 130
        wall = time.perf_counter() - t0
        if ev.ident is None and ev.log is not None:
            ev.ident = ev.log.ident()  # every clip came from the log
    except (Refused, P.DeviceError, P.ProtocolError, FileNotFoundError, ValueError, ConnectionError,
            TimeoutError, RuntimeError) as e:
        print(f"qsnn-eval: error: {e}", file=sys.stderr)
        return 1
    assert ev.ident is not None
    target = f"qemu:{ev.ident.board}" if qemu_target is not None else ev.ident.board
    extra: dict[str, object] = {
        "port": args.port, "split": args.split, "model": str(args.model),
        "jobs": args.jobs if qemu_target is not None else 1,
        # what the link did: host-side re-sends by cause, stale or damaged answers dropped,
        # clips started again; and, with --fault-rate, the faults injected by kind
        "link": {"events": dict(sorted(ev.link.items())), "injected": ev.injected,
                 "injected_by_direction": {d: {k: ev.injected_dir.get(d, {}).get(k, 0) for k in KINDS}
                                           for d in DIRECTIONS},
                 "fault_rate": args.fault_rate, "fault_reset_rate": args.fault_reset_rate,
                 "fault_seed": args.fault_seed},
        "resumed_clips": len(ev.log.done) if (ev.log is not None and args.resume) else 0,
    }
    from qsnnkit.packing import model_bytes

    extra["classes"] = list(model.classes)
    extra["model_bytes"] = model_bytes(model)["total"]
    extra["dataset"] = model.dataset
    extra["input_kind"] = model.input_kind
    if model.input_kind == "events":
        extra["event_stream"] = event_stream_costs(records, model.event_config().window_us, model.steps)
    summary = summarize(records, ev.ident, model.hash_hex, target, wall, extra, data_root=data_root)
    lat = summary["latency"]
    assert isinstance(lat, dict)
    what, side = ("samples", "binning") if model.input_kind == "events" else ("clips", "front end")
    print(
        f"{summary['samples']} {what} on {target}: accuracy {summary['accuracy']:.4f} "
        f"(reference {summary['reference_accuracy']:.4f}), agreement {summary['agreement']:.4f}\n"
        f"per sample ({lat['unit']}): {side} median {lat['frontend']['median']:.0f}, "
        f"network median {lat['network']['median']:.0f}, total p95 {lat['total']['p95']:.0f}\n"
        f"RAM static {ev.ident.static_ram_bytes} B, stack peak {max(r.stack_peak_bytes for r in records)} B, "
        f"flash {ev.ident.flash_bytes} B, wall {float(np.median([r.wall_s for r in records])):.2f} s/clip "
        f"(total {wall:.1f} s)"
    )
    if model.input_kind == "events":
        es = extra["event_stream"]
        assert isinstance(es, dict)
        print(f"event stream ({lat['unit']}): {es['per_ms_mean']:.0f} per ms of events on average (binning "
              f"{es['binning_per_ms_mean']:.0f}, network {es['network_per_ms_mean']:.0f}); worst {es['step_us']} us "
              f"step {es['worst_step']} ({es['worst_step_per_ms']:.0f} per ms)")
    if not args.quiet:
        from qsnnkit.host import report as _report

        print("\n" + _report.text_table(summary) + "\n")
    if ev.link or ev.injected:
        print("link: " + ", ".join(f"{k} {v}" for k, v in sorted(ev.link.items()))
              + ("; injected: " + ", ".join(f"{k} {v}" for k, v in ev.injected.items()) if ev.injected else ""))
    if args.json:
        from qsnnkit.host import report

        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
        tmp.replace(args.json)
        md = report.write(summary, args.json)
        print(f"report: {md} (with plots beside it); per clip: {args.json} and {args.json.with_suffix('.jsonl')}")
    if summary["agreement"] != 1.0:
        first = summary["mismatches"][0]  # type: ignore[index]
        print(f"qsnn-eval: device and integer reference disagree; first mismatch {first['path']}:\n"
              f"  device    {first['device_outputs']}\n  reference {first['reference_outputs']}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
