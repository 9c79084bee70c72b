"""Live keyword spotting on a device: continuous audio in, detections out as they happen.

    python host/listen.py speech.wav                       # emulated board (QEMU), any WAV
    python host/listen.py --port /dev/ttyACM0 speech.wav   # a board
    python host/listen.py --mic --port /dev/ttyACM0        # a microphone (needs `sounddevice`)

The device runs in stream mode (docs/protocol.md, "Streams"; docs/contract.md section 11):
front end and network reset once, then every hop of 320 samples goes through the front end
and every frame through the network and the detector, in constant RAM. The host sends one
hop per AUDIO and prints each detection with its stream time as the device reports it.

A file is read at any sample rate and channel count, mixed to mono and resampled to 16 kHz
(band-limited: windowed-sinc low-pass and linear interpolation, ``qsnnkit.audio.to_16k``), and also run through the
integer reference (qsnnkit/stream.py): the device's scores must equal the reference's after
every hop and its detections the reference's (exit status 3 otherwise). A microphone goes
through the same code path, hop by hop, without the reference check.

Link speed: 16 kHz int16 PCM is 32 kB/s (plus 1 % framing). A 115200-baud UART carries
11.5 kB/s, a third of real time: a microphone stream needs >= 460800 baud or a USB CDC
port (full-speed USB: ~1 MB/s). QEMU's emulated UART moves about 25-30 kB/s, just under
real time: files stream there slightly slower than they play.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, TextIO

import numpy as np

from qsnnkit import protocol as P
from qsnnkit import spec
from qsnnkit.audio import read_audio, to_16k  # noqa: F401 - the listen CLI reads files through them
from qsnnkit.paths import FIRMWARE_DIR

if TYPE_CHECKING:  # imported where used: --help stays fast
    from qsnnkit.host.device import Device
    from qsnnkit.stream import DetectConfig

#: The stream-tuned keyword spotter (firmware/models/kws_stream: the default model fine-tuned
#: on continuous audio by qsnn-stream-tune; docs/results.md, "Streaming detection").
DEFAULT_MODEL = FIRMWARE_DIR / "models" / "kws_stream" / "model.npz"
#: Detector defaults, chosen on the validation-split stream by benchmarks/kws_stream.py for
#: DEFAULT_MODEL ("listen_default" in docs/results/kws_stream.json: the most keywords at <= 100
#: false alarms per hour there; tests/test_listen.py checks they belong to DEFAULT_MODEL).
DEFAULT_THRESHOLD = 195
DEFAULT_REFRACTORY = 50  # frames: 1 s
DEFAULT_SHIFT = 5


def mic_hops(device: str | None = None) -> Iterator[np.ndarray]:
    """Hops of 320 samples from a microphone at 16 kHz (package `sounddevice`)."""
    try:
        import sounddevice as sd
    except ImportError as e:
        raise RuntimeError("--mic needs the sounddevice package (pip install sounddevice) and PortAudio") from e
    with sd.InputStream(samplerate=spec.SAMPLE_RATE, channels=1, dtype="int16", blocksize=spec.HOP_LEN,
                        device=device) as stream:
        while True:
            block, _ = stream.read(spec.HOP_LEN)
            yield np.asarray(block, dtype=np.int16).reshape(-1)


def file_hops(pcm: np.ndarray) -> Iterator[np.ndarray]:
    for i in range(0, pcm.size, spec.HOP_LEN):
        yield pcm[i:i + spec.HOP_LEN]


def listen(dev: Device, hops: Iterator[np.ndarray], classes: list[str], cfg: DetectConfig,
           reference_scores: np.ndarray | None = None, out: TextIO = sys.stdout) -> dict[str, Any]:
    """Stream hops to the device (Device, connected); print detections as they come. With
    the reference's scores, check the device's after every hop (first mismatch raises)."""
    dev.stream_begin(cfg.threshold, cfg.refractory, cfg.class_mask, cfg.smooth_shift)
    detections: list[dict[str, object]] = []
    frames = ticks = 0
    checked = 0
    lost = 0
    for hop in hops:
        st = dev.stream_audio(hop)
        ticks += st.ticks
        lost = st.lost
        if st.frames > frames and reference_scores is not None:
            t = st.frames - 1
            ref = [int(v) for v in reference_scores[t]]
            if st.scores != ref:
                raise MismatchError(f"frame {t}: device scores {st.scores} != reference {ref}")
            checked += 1
        frames = st.frames
        for f, k, m in st.detections:
            d = {"frame": f, "time_s": round((f + 2) * spec.HOP_LEN / spec.SAMPLE_RATE, 3), "label": k,
                 "class": classes[k], "margin": m}
            detections.append(d)
            print(f"{d['time_s']:9.2f} s  {classes[k]:<10} margin {m}", file=out, flush=True)
    dev.stream_end()
    return {"frames": frames, "ticks": ticks, "frames_checked": checked, "lost": lost, "detections": detections}


class MismatchError(RuntimeError):
    """The device's stream disagrees with the integer reference."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="qsnn-listen", description="Live keyword spotting on a device: stream a WAV "
                                 "file (or a microphone) and print detections with their stream times.")
    ap.add_argument("file", nargs="?", type=Path, help="WAV file (any rate and channel count; resampled to 16 kHz)")
    ap.add_argument("--mic", action="store_true", help="listen to the default microphone instead (needs sounddevice)")
    ap.add_argument("--port", default="qemu", help="serial port, socket://HOST:PORT, or 'qemu[:m4|m0|m7|rv32|lx106]' "
                                                    "(an emulated board with the built firmware; default qemu)")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="converted model the firmware was built with")
    ap.add_argument("--elf", type=Path, default=None, help="firmware for --port qemu[:target] (default: built for --model and the target, or reused from the "
                         "build cache)")
    ap.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD,
                    help=f"smallest score margin that fires (default {DEFAULT_THRESHOLD}, chosen on validation)")
    ap.add_argument("--refractory", type=int, default=DEFAULT_REFRACTORY,
                    help=f"frames of 20 ms after a detection in which no other fires (default {DEFAULT_REFRACTORY})")
    ap.add_argument("--shift", type=int, default=DEFAULT_SHIFT,
                    help=f"score smoothing W: forgets 2^-W per frame (0..{spec.DETECT_MAX_SHIFT}, default {DEFAULT_SHIFT})")
    ap.add_argument("--baud", type=int, default=921600, help="baud rate of a real serial port (default 921600)")
    ap.add_argument("--json", type=Path, default=None, help="also write the detections and counters here")
    args = ap.parse_args(argv)
    if (args.file is None) == (not args.mic):
        ap.error("give a WAV file or --mic (one of them)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from qsnnkit import stream as S
    from qsnnkit.host.device import Device
    from qsnnkit.host.eval import Refused, check_ident
    from qsnnkit.host.qemu import TARGETS, QemuBoard, parse_port
    from qsnnkit.host.transport import Transport, open_port
    from qsnnkit.model import load_converted

    try:
        model = load_converted(args.model)
        if model.input_kind != "audio":
            raise ValueError(f"{args.model} reads {model.input_kind} ({model.dataset}), not audio: "
                             "it cannot spot keywords")
        cfg = S.DetectConfig(args.threshold, args.refractory, S.keyword_mask(model.classes), args.shift)
        cfg.check(model.n_classes)
        ref_scores = None
        ref_dets: list = []
        if args.file is not None:
            x, rate = read_audio(args.file)
            pcm = to_16k(x, rate)
            print(f"{args.file}: {x.size / rate:.1f} s at {rate} Hz -> {pcm.size} samples at 16 kHz", file=sys.stderr)
            ref_scores, ref_dets = S.run_stream(model, pcm, cfg)
            hops = file_hops(pcm)
        else:
            hops = mic_hops()
        target = parse_port(args.port)
        board = None
        if target is not None:
            if args.elf is None:
                from qsnnkit.host.build import firmware_for

                elf = firmware_for(args.model, target)  # built for MODEL, or reused from the cache
            else:
                elf = args.elf
                if not elf.is_file():
                    raise FileNotFoundError(f"firmware {elf} not found (leave --elf out: it is built for --model)")
            board = QemuBoard(elf, board=TARGETS[target][0])
            transport: Transport = board.start()
        else:
            transport = open_port(args.port, args.baud)
        t0 = time.perf_counter()
        try:
            dev = Device(transport)
            ident = dev.connect()
            check_ident(ident, model.hash_hex, model.n_classes, model.format_version)
            res = listen(dev, hops, list(model.classes), cfg, ref_scores)
            if board is not None:
                dev.bye(0)
        finally:
            if board is not None:
                board.stop()
            else:
                transport.close()
        wall = time.perf_counter() - t0
    except KeyboardInterrupt:
        print("qsnn-listen: stopped", file=sys.stderr)
        return 130
    except (MismatchError,) as e:
        print(f"qsnn-listen: device and integer reference disagree: {e}", file=sys.stderr)
        return 3
    except (Refused, P.DeviceError, P.ProtocolError, FileNotFoundError, ValueError, ConnectionError,
            TimeoutError, RuntimeError) as e:
        print(f"qsnn-listen: error: {e}", file=sys.stderr)
        return 1
    dets = res["detections"]
    assert isinstance(dets, list)
    same = None
    if ref_scores is not None:
        same = [(d["frame"], d["label"], d["margin"]) for d in dets] == [(d.frame, d.label, d.margin) for d in ref_dets]
    print(f"{len(dets)} detections in {res['frames']} frames ({res['frames'] * 0.02:.1f} s of audio, {wall:.1f} s wall); "
          f"{unit_line(ident, res)}"
          + (f"; device = reference on all {res['frames_checked']} frames and every detection" if same else ""),
          file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"file": str(args.file) if args.file else "mic", "threshold": cfg.threshold,
                                         "refractory": cfg.refractory, "smooth_shift": cfg.smooth_shift,
                                         "board": ident.board, "model_hash": model.short_hash, **res,
                                         "reference_equal": same, "wall_s": wall}, indent=1) + "\n")
    if same is False:
        print("qsnn-listen: device detections differ from the reference's", file=sys.stderr)
        return 3
    return 0


def unit_line(ident: P.Ident, res: dict[str, Any]) -> str:
    frames = int(res["frames"]) or 1
    per = int(res["ticks"]) / frames
    unit = ident.counter_unit  # IDENT's unit name ("instructions", "cycles", "timer")
    return f"{per:,.0f} {unit} per 20 ms frame (front end + network + detector)"


if __name__ == "__main__":
    sys.exit(main())
