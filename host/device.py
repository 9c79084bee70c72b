"""A session with a device running the qsnnkit firmware (protocol: docs/protocol.md).

    dev = Device(open_port("socket://127.0.0.1:4444"))
    ident = dev.connect()            # HELLO -> IDENT, retried until the device answers
    result = dev.run_clip(pcm)       # CLIP_BEGIN, AUDIO x 50 (320 samples each on the audio firmware), CLIP_END -> RESULT
    result = dev.run_events(events)  # an event model: EVENTS_BEGIN, EVENTS x n, CLIP_END -> RESULT

Exactly once over a faulty line (docs/protocol.md, "Exactly once"):

- Every request gets exactly one response with the same ``seq``; a frame whose ``seq`` is
  not the outstanding request's (a late or duplicated answer to an earlier one, an ERROR
  about a fragment of a damaged frame) is dropped, and so is a damaged incoming frame.
- A request is re-sent *unchanged* (same ``seq``, so the same CRC) when the device reports
  damaged bytes (BAD_CRC, FRAMING, BAD_LENGTH, TOO_LONG; whatever ``seq`` it could read,
  often none), when a damaged frame arrives in place of its answer, or when no answer
  comes within ``timeout`` seconds. The device
  answers a re-sent request it has already processed from its cache, so nothing is done
  twice; its receive interrupt is held off inside measured sections, so a re-send never
  changes an instruction count.
- A request is sent at most ``1 + retries`` times; then :class:`LinkError` names it.
- An answer that shows the device lost the clip (BAD_STATE, SAMPLE_COUNT: it was reset or
  its receive ring overflowed) raises :class:`ClipLost`; :meth:`run_clip_retrying`
  re-identifies the device and sends the whole clip again, up to ``clip_retries`` times.
"""
from __future__ import annotations

import random
import time
from collections import Counter, deque
from collections.abc import Callable

import numpy as np

from qsnnkit import protocol as P
from qsnnkit.host.transport import Transport

#: Re-sends of one request (after the first send) before giving up.
RETRIES = 8
#: Whole-clip attempts after the first before giving up.
CLIP_RETRIES = 4
#: ERROR codes that mean "your request arrived damaged": send it again.
_RESEND_ON = {P.Err.BAD_CRC, P.Err.FRAMING, P.Err.BAD_LENGTH, P.Err.TOO_LONG}
#: ERROR codes that mean "the device no longer holds the clip": send the clip again.
_CLIP_LOST_ON = {P.Err.BAD_STATE, P.Err.SAMPLE_COUNT}


def _damage_report(f: P.Frame) -> bool:
    """An ERROR saying that bytes reached the device damaged."""
    try:
        return P.ErrorMsg.unpack(f.payload).code in _RESEND_ON
    except Exception:  # noqa: BLE001 - a malformed ERROR payload is no such report
        return False


class LinkError(P.ProtocolError):
    """No valid answer to a request after every re-send."""


class ClipLost(P.DeviceError):
    """The device lost the clip in progress (reset, receive overflow); send it again."""


class Device:
    def __init__(self, transport: Transport, timeout: float = 2.0, retries: int = RETRIES,
                 clip_retries: int = CLIP_RETRIES, chunk: int | None = None, pack: bool = True):
        self.t = transport
        self.chunk = chunk  # samples per AUDIO in clips (None: the most a frame carries)
        self.pack = pack  # samples as AUDIO_PACKED where that is smaller (the same results, fewer bytes)
        self.timeout = timeout
        self.retries = retries
        self.clip_retries = clip_retries
        self.reader = P.FrameReader()
        self.inbox: deque[P.Frame | P.FrameError] = deque()
        # a random start: a re-started host never reuses the seq of the request the device
        # last answered (its cache would answer a different request); 0 is never used, so
        # ERRORs about unreadable fragments (seq 0) never match a request
        self.seq = random.randrange(1, 256)
        self.ident: P.Ident | None = None
        self.ident_payload = b""
        self.window = 1
        #: what the link did: re-sends by cause, dropped stale/damaged frames, clip restarts
        self.faults: Counter[str] = Counter()

    # -- framing ---------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self.seq = self.seq % 255 + 1  # 1..255
        return self.seq

    def _pump(self, deadline: float) -> None:
        """Read what arrives until the deadline or the first frame (damaged ones included)."""
        data = self.t.read(max(0.0, deadline - time.monotonic()))
        if data:
            self.inbox.extend(self.reader.feed(data))

    def _await(self, seq: int, deadline: float) -> P.Frame | P.FrameError | None:
        """The answer to ``seq``, a damaged frame (which may have been it), or None at the
        deadline. Answers to other requests are dropped."""
        while True:
            while self.inbox:
                f = self.inbox.popleft()
                if isinstance(f, P.FrameError):
                    self.faults["damaged_response"] += 1
                    return f
                if f.seq == seq:
                    return f
                if f.type == P.Msg.ERROR and _damage_report(f):
                    # a damaged frame arrived, whatever seq could be read from it: with one
                    # request outstanding it was most likely that request (a re-send of one
                    # already answered costs only a cached answer)
                    return f
                self.faults["stale_response"] += 1
            if time.monotonic() >= deadline:
                return None
            self._pump(deadline)

    def exchange(self, type_: P.Msg, payload: bytes = b"", timeout: float | None = None,
                 attempts: int | None = None, lead_zero: bool = False) -> P.Frame:
        """Send one request (re-sent unchanged until a valid answer comes) and return the
        answer: any frame with its seq, an ERROR included, except 'arrived damaged'."""
        seq = self._next_seq()
        frame = P.encode_frame(type_, seq, payload)
        timeout = self.timeout if timeout is None else timeout
        attempts = self.retries + 1 if attempts is None else attempts
        last = "no answer"
        for attempt in range(attempts):
            if attempt:
                self.faults[f"resend_{last.split(' ')[0]}"] += 1
            # a re-send starts with a 0x00: it ends whatever partial frame the device holds
            self.t.write((b"\x00" if (attempt or lead_zero) else b"") + frame)
            f = self._await(seq, time.monotonic() + timeout)
            if f is None:
                last = f"timeout (nothing valid within {timeout:g} s)"
                continue
            if isinstance(f, P.FrameError):
                last = f"damaged ({f.code.name} in the answer)"
                continue
            if f.type == P.Msg.ERROR:
                err = P.ErrorMsg.unpack(f.payload)
                if err.code in _RESEND_ON:
                    last = f"damaged (device reported {P.Err(err.code).name})"
                    continue
            return f
        raise LinkError(f"{type_.name} (seq {seq}): no valid answer after {attempts} sends; last fault: {last}")

    def request(self, type_: P.Msg, payload: bytes = b"", expect: P.Msg = P.Msg.ACK) -> P.Frame:
        f = self.exchange(type_, payload)
        if f.type == P.Msg.ERROR:
            err = P.ErrorMsg.unpack(f.payload)
            if err.code in _CLIP_LOST_ON:
                raise ClipLost(err)
            raise P.DeviceError(err)
        if f.type != expect:
            raise P.ProtocolError(f"{type_.name}: expected {expect.name}, got type {f.type:#04x}")
        return f

    # -- session ---------------------------------------------------------------------------
    def connect(self, attempts: int = 40, interval: float = 0.25) -> P.Ident:
        """HELLO until an IDENT comes back (a device that is still booting drops bytes)."""
        try:
            f = self.exchange(P.Msg.HELLO, P.hello(), timeout=interval, attempts=attempts, lead_zero=True)
        except LinkError as e:
            raise TimeoutError(f"the device did not answer HELLO within {attempts * interval:.0f} s: {e}") from e
        if f.type == P.Msg.ERROR:
            err = P.ErrorMsg.unpack(f.payload)
            if err.code == P.Err.VERSION:
                raise P.ProtocolError(
                    f"the device speaks protocol version {err.detail}, this host speaks "
                    f"{P.PROTOCOL_VERSION}: update the firmware or qsnnkit so that they match"
                )
            raise P.DeviceError(err)
        if f.type != P.Msg.IDENT:
            raise P.ProtocolError(f"HELLO answered with type {f.type:#04x}, expected IDENT")
        ident = P.Ident.unpack(f.payload)
        self.ident_payload = bytes(f.payload)
        if self.ident is not None and ident.model_hash != self.ident.model_hash:
            raise P.ProtocolError(f"the device came back with another model ({ident.model_hash}, "
                                  f"was {self.ident.model_hash})")
        self.ident = ident
        self.window = max(1, ident.rx_window)
        return ident

    def run_clip(self, pcm: np.ndarray, chunk: int | None = None) -> P.Result:
        """Stream one clip (int16 PCM, already padded/cut by the caller), ``chunk`` samples per
        AUDIO (default: as many as a frame carries, max_payload / 2), once. The device cuts the
        samples into hops itself, so the chunk size changes no result, only the round trips.
        Raises ClipLost when the device lost it (see run_clip_retrying)."""
        if self.ident is None:
            raise RuntimeError("connect() first")
        pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        chunk = chunk or self.chunk or self.ident.max_payload // 2
        if not 1 <= chunk <= self.ident.max_payload // 2:
            raise ValueError(f"chunk must be 1..{self.ident.max_payload // 2} samples, got {chunk}")
        self.request(P.Msg.CLIP_BEGIN, P.clip_begin(int(pcm.size)))
        # window 1 (this firmware): one AUDIO outstanding, the next sent when it is answered
        for i in range(0, pcm.size, chunk):
            self.request(*P.audio_request(pcm[i:i + chunk], self.pack))
        f = self.request(P.Msg.CLIP_END, b"", expect=P.Msg.RESULT)
        return P.Result.unpack(f.payload)

    def run_events(self, events: np.ndarray, t0: int = 0, chunk: int | None = None) -> P.Result:
        """Stream one event sample (a structured array with fields x, y, p, t, in arrival
        order; the first step begins at t0): EVENTS_BEGIN, EVENTS with up to ``chunk`` events
        each (default: as many as a frame carries), CLIP_END -> RESULT. The device bins the
        events itself, so the chunking changes no result. Raises ClipLost when the device lost
        the sample."""
        if self.ident is None:
            raise RuntimeError("connect() first")
        payloads = P.events_payloads(events, chunk or self.chunk or P.EVENTS_MAX_PER_FRAME)
        self.request(P.Msg.EVENTS_BEGIN, P.events_begin(len(events), t0))
        for payload in payloads:  # window 1: the next EVENTS goes when the last was answered
            self.request(P.Msg.EVENTS, payload)
        f = self.request(P.Msg.CLIP_END, b"", expect=P.Msg.RESULT)
        return P.Result.unpack(f.payload)

    def run_events_retrying(self, events: np.ndarray, t0: int = 0, name: str = "sample") -> P.Result:
        """run_events with the retries of run_clip_retrying."""
        return self._retrying(lambda: self.run_events(events, t0), name)

    def run_clip_retrying(self, pcm: np.ndarray, name: str = "clip") -> P.Result:
        """run_clip, sent again from its start (after re-identifying the device) when the
        device lost it or the link gave up on a request; at most 1 + clip_retries times."""
        return self._retrying(lambda: self.run_clip(pcm), name)

    def _retrying(self, run: Callable[[], P.Result], name: str) -> P.Result:  # one whole sample, from its start
        for attempt in range(self.clip_retries + 1):
            try:
                return run()
            except (ClipLost, LinkError) as e:
                why = e
                self.faults["clip_restart"] += 1
                if attempt == self.clip_retries:
                    break
                try:
                    self.connect()  # HELLO also ends the device's clip in progress
                except (TimeoutError, LinkError) as e2:
                    raise LinkError(f"{name}: the device did not come back after: {why}; {e2}") from e2
        raise LinkError(f"{name}: given up after {self.clip_retries + 1} attempts; last fault: {why}")

    # -- streams (docs/contract.md section 11) ---------------------------------------------
    def stream_begin(self, threshold: int, refractory: int, class_mask: int, smooth_shift: int) -> None:
        """Start continuous detection: network and front end reset once, here."""
        if self.ident is None:
            raise RuntimeError("connect() first")
        self.request(P.Msg.STREAM_BEGIN, P.stream_begin(threshold, refractory, class_mask, smooth_shift))

    def stream_audio(self, pcm: np.ndarray) -> P.StreamStatus:
        """Feed samples (at most max_payload / 2) to the stream; its scores and detections."""
        if self.ident is None:
            raise RuntimeError("connect() first")
        if not 1 <= len(pcm) <= self.ident.max_payload // 2:
            raise ValueError(f"a stream's AUDIO carries 1..{self.ident.max_payload // 2} samples on this device "
                             f"(IDENT max payload {self.ident.max_payload} bytes), got {len(pcm)}")
        f = self.request(*P.audio_request(np.ascontiguousarray(pcm, dtype=np.int16), self.pack), expect=P.Msg.STREAM)
        return P.StreamStatus.unpack(f.payload)

    def stream_end(self) -> None:
        self.request(P.Msg.STREAM_END)

    def bye(self, code: int = 0) -> None:
        """Ask the device to exit (QEMU then ends with status ``code``; a board resets). The
        device leaves right after its ACK, so a lost ACK cannot be asked for again: the
        caller checks the exit (QemuBoard.wait) rather than the ACK."""
        try:
            self.exchange(P.Msg.BYE, P.bye(code), attempts=2)
        except (LinkError, ConnectionError):
            pass

    def close(self) -> None:
        self.t.close()
