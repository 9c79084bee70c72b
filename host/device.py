"""A session with a device running the qsnnkit firmware (protocol: docs/protocol.md).

    dev = Device(open_port("socket://127.0.0.1:4444"))
    ident = dev.connect()            # HELLO -> IDENT, retried until the device answers
    result = dev.run_clip(pcm)       # CLIP_BEGIN, AUDIO hop by hop, CLIP_END -> RESULT

Every request gets exactly one response with the same sequence number. The host keeps at
most ``ident.rx_window`` requests outstanding (credit flow control), so the device's
receive ring never overflows. An ERROR frame raises DeviceError, except that a request the
device received corrupted (BAD_CRC, FRAMING, BAD_LENGTH) is sent again, up to RETRIES times.
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np

from qsnnkit import protocol as P
from qsnnkit.host.transport import Transport

RETRIES = 3
_RESEND_ON = {P.Err.BAD_CRC, P.Err.FRAMING, P.Err.BAD_LENGTH}


class Device:
    def __init__(self, transport: Transport, timeout: float = 20.0):
        self.t = transport
        self.timeout = timeout
        self.reader = P.FrameReader()
        self.inbox: deque[P.Frame] = deque()
        self.seq = 0
        self.ident: P.Ident | None = None
        self.window = 1

    # -- framing ---------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self.seq = (self.seq + 1) & 0xFF
        return self.seq

    def _pump(self, deadline: float) -> bool:
        """Read what arrived until the deadline; True if at least one frame came."""
        data = self.t.read(max(0.0, deadline - time.monotonic()))
        if not data:
            return False
        for item in self.reader.feed(data):
            if isinstance(item, P.FrameError):
                raise P.ProtocolError(f"corrupted frame from the device: {item} ({item.code.name})")
            self.inbox.append(item)
        return bool(self.inbox)

    def _take(self, seq: int, timeout: float | None = None) -> P.Frame:
        """The response to request ``seq``; ERROR frames for other requests raise too."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            while self.inbox:
                f = self.inbox.popleft()
                if f.type == P.Msg.ERROR:
                    # never ignored; its seq may be garbled when the request was corrupted
                    raise P.DeviceError(P.ErrorMsg.unpack(f.payload))
                if f.seq == seq:
                    return f
                # a late answer to an earlier, already abandoned request: drop it
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no response from the device within {self.timeout:.0f} s (request seq {seq})")
            self._pump(deadline)

    def request(self, type_: P.Msg, payload: bytes = b"", expect: P.Msg = P.Msg.ACK) -> P.Frame:
        for attempt in range(RETRIES + 1):
            seq = self._next_seq()
            self.t.write(P.encode_frame(type_, seq, payload))
            try:
                f = self._take(seq)
            except P.DeviceError as e:
                if e.err.code in _RESEND_ON and attempt < RETRIES:
                    continue
                raise
            if f.type != expect:
                raise P.ProtocolError(f"{type_.name}: expected {expect.name}, got type {f.type:#04x}")
            return f
        raise AssertionError("unreachable")

    # -- session ---------------------------------------------------------------------------
    def connect(self, attempts: int = 40, interval: float = 0.25) -> P.Ident:
        """HELLO until an IDENT comes back (a device that is still booting drops bytes)."""
        last: Exception | None = None
        for _ in range(attempts):
            seq = self._next_seq()
            # a lone 0x00 first ends whatever partial frame the device may hold
            self.t.write(b"\x00" + P.encode_frame(P.Msg.HELLO, seq, P.hello()))
            try:
                f = self._take(seq, timeout=interval)
            except TimeoutError as e:
                last = e
                continue
            except P.DeviceError as e:
                if e.err.code == P.Err.VERSION:
                    raise P.ProtocolError(
                        f"the device speaks protocol version {e.err.detail}, this host speaks "
                        f"{P.PROTOCOL_VERSION}: update the firmware or qsnnkit so that they match"
                    ) from e
                # bytes of an earlier HELLO that arrived half-way through the device's boot
                if e.err.code not in _RESEND_ON:
                    raise
                last = e
                continue
            if f.type != P.Msg.IDENT:
                raise P.ProtocolError(f"HELLO answered with type {f.type:#04x}, expected IDENT")
            self.ident = P.Ident.unpack(f.payload)
            self.window = max(1, self.ident.rx_window)
            self._drain(0.05)
            return self.ident
        raise TimeoutError(f"the device did not answer HELLO within {attempts * interval:.0f} s: {last}")

    def _drain(self, quiet: float) -> None:
        """Drop stale answers to earlier HELLO attempts (and errors about their fragments)."""
        deadline = time.monotonic() + quiet
        while time.monotonic() < deadline:
            self._pump(deadline)
        self.inbox.clear()

    def run_clip(self, pcm: np.ndarray, hop: int | None = None) -> P.Result:
        """Stream one clip (int16 PCM, already padded/cut by the caller) hop by hop."""
        if self.ident is None:
            raise RuntimeError("connect() first")
        pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        hop = hop or self.ident.hop_len
        self.request(P.Msg.CLIP_BEGIN, P.clip_begin(int(pcm.size)))
        chunks = [pcm[i:i + hop] for i in range(0, pcm.size, hop)]
        pending: deque[tuple[int, bytes]] = deque()
        for c in chunks:
            payload = P.audio(c)
            if len(pending) >= self.window:
                self._ack(*pending.popleft())
            seq = self._next_seq()
            self.t.write(P.encode_frame(P.Msg.AUDIO, seq, payload))
            pending.append((seq, payload))
        while pending:
            self._ack(*pending.popleft())
        f = self.request(P.Msg.CLIP_END, b"", expect=P.Msg.RESULT)
        return P.Result.unpack(f.payload)

    def _ack(self, seq: int, payload: bytes) -> None:
        try:
            f = self._take(seq)
        except P.DeviceError as e:
            if e.err.code in _RESEND_ON and self.window == 1:
                self.request(P.Msg.AUDIO, payload)  # resend (with a fresh seq)
                return
            raise
        if f.type != P.Msg.ACK:
            raise P.ProtocolError(f"AUDIO: expected ACK, got type {f.type:#04x}")

    def bye(self, code: int = 0) -> None:
        """Ask the device to exit (QEMU then ends with status ``code``)."""
        self.request(P.Msg.BYE, P.bye(code))

    def close(self) -> None:
        self.t.close()
