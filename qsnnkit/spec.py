"""The one definition of every fact Python and C share.

Numeric contract constants, the front end's geometry, the converted-model format version,
the C core's limits and status codes, the serial protocol (version, message ids, error
codes, every message layout with its fields, types and offsets), the firmware's exit codes
and counter units are written here and nowhere else. The C side reads them from headers
generated from this module by :mod:`qsnnkit.generated` (``python -m qsnnkit.generated
--write``; ``--check`` and ``tests/test_spec.py`` fail when a committed header is stale):

- ``firmware/lib/qsnn/include/qsnn_spec.h``: contract, front end, model format, core codes;
- ``firmware/include/proto_spec.h``: protocol, message layouts, exit codes, counter units.

Adding a message, an error code or a field is a change to this file plus the code that
handles it on each side; its ids, offsets and sizes then follow in both languages.
Pure Python: no numpy, no torch, no imports from the rest of the package.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, unique

# -- numeric contract (docs/contract.md) --------------------------------------------------------

#: Version of the converted-model format: the .npz arrays, their dtypes, the hash and the C
#: descriptor (qsnn_model_t). A model of another version is refused by the tools and the core.
FORMAT_VERSION = 2
#: Currents and membranes are in fine units of 2^-FRAC_BITS of the firing threshold.
FRAC_BITS = 8
THETA = 1 << FRAC_BITS
#: Range of the per-neuron rounding shifts sh_ff / sh_rec (scale(): sh > 0 rounds, sh <= 0 multiplies).
SHIFT_MIN = -15
SHIFT_MAX = 30
#: Overflow bounds (docs/contract.md section 2; proved per model by qsnnkit.bounds and checked
#: again by qsnn_model_check). ACC_BOUND: the largest magnitude of a synaptic accumulator and of
#: scale()'s rounding intermediate acc + 2^(sh-1). CURRENT_BOUND: of a neuron's current before it
#: saturates to int16 (scaled feed-forward + scaled recurrent + bias, fine units). READOUT_BOUND:
#: of a per-class output summed over MAX_STEPS steps. They keep every value inside int32 and
#: exact in float32 (integers up to 2^24; an integer current plus the rounding half below 2^23),
#: so the PyTorch forward, the integer reference and C agree.
ACC_BOUND = 1 << 24
CURRENT_BOUND = (1 << 23) - 1
READOUT_BOUND = 1 << 24
#: Longest sample, in time steps, the overflow proof covers (a 1 s clip is CLIP_FRAMES = 49).
MAX_STEPS = 64
#: Streaming detection (docs/contract.md section 11): the smoothed score of class k is the leaky
#: sum S_k(t) = S_k(t-1) - (S_k(t-1) >> W) + r_k(t) of the per-frame readouts r_k(t) (>> floors).
#: |r_k| <= READOUT_BOUND / MAX_STEPS for every model that passes the proof, so with W <=
#: DETECT_MAX_SHIFT every |S_k| stays below 2^27: no stream, however long, can overflow.
DETECT_MAX_SHIFT = 8
#: Detections the C detector keeps until they are polled (older ones are counted as lost).
DETECT_QUEUE = 4
#: Largest number of classes a detector handles (the class mask is 32 bits).
DETECT_MAX_CLASSES = 32
#: Largest magnitude of a centred feature |feat - mu| (features and mu are uint8).
FEATURE_ABS_MAX = 255
#: Stored membrane widths and feed-forward weight widths the core runs.
MEM_BITS_MIN = 2
MEM_BITS_MAX = 8
WEIGHT_BITS = (1, 2, 4, 8)
#: Adaptive LIF (docs/contract.md section 5): a per-neuron adaptation state q (uint8, units of
#: 2^-ADAPT_FRAC of the threshold) is subtracted from the neuron's current, decays by
#: ceil(q / 2^shift) per step and grows by beta per spike, saturating at ADAPT_MAX.
ADAPT_FRAC = 5
ADAPT_MAX = 255
ADAPT_SHIFT_MIN = 1
ADAPT_SHIFT_MAX = 8
#: Spiking layers a model may have (the C state keeps per-layer pointers in fixed arrays).
MAX_LAYERS = 8

#: Layer kinds (qsnn_layer_t.kind): name -> (id, meaning).
LAYER_KINDS: dict[str, tuple[int, str]] = {
    "DENSE": (0, "every input to every neuron; optional 1-bit recurrence"),
    "CONV": (1, "streaming convolution: over frequency (zero padding kf / 2) with a causal time kernel of kt frames"),
}
#: Largest time and frequency kernel of a streaming convolution (uint8 in C).
CONV_MAX_KT = 16
CONV_MAX_KF = 16
#: Most output positions per channel of a convolution (the event kernel sums a channel's
#: positions in a stack array of this size).
CONV_MAX_FOUT = 64
#: Largest conv fan-in (c_in * kt * kf) the popcount conv kernel gathers on its stack.
CONV_POPCOUNT_MAX_FAN = 2048
#: Most weight rows (dense neurons, conv channels) of a layer the column kernels run: their
#: bit-sliced counters (one bit per row and counter bit) live on the stack. 1-bit layers up to
#: this size, and wider layers on spikes of this size, also carry their weights column by column
#: (qsnn_layer_t.w_cols; wider weights as one binary column copy per bit plane).
COLUMN_MAX_ROWS = 128

#: Synaptic kernels of the C core, selectable per layer (qsnn_layer_t.kernel): name -> (id, what
#: it runs). REF is the plain oracle; the others are drop-in kernels that must give the same sums.
KERNELS: dict[str, tuple[int, str]] = {
    "AUTO": (0, "the core picks the fastest kernel that runs the layer (REF when built with QSNN_KERNELS_REF)"),
    "REF": (1, "reference: element by element, any input, any width"),
    "W8_DENSE": (2, "8-bit weights x int16 features, four weights per word (first layer)"),
    "B1_POPCOUNT": (3, "1-bit weights x spikes: 2 popcount(W & S) - popcount(S)"),
    "EVENT": (4, "any width x spikes: sums over the active spikes only"),
    "CONV_W8": (5, "streaming convolution, 8-bit weights x int16 features: each channel's kernel unpacked once per step"),
    "CONV_EVENT": (6, "streaming convolution over spikes, any width: each active spike adds its weights to the outputs it reaches"),
    "CONV_B1_POPCOUNT": (7, "streaming convolution, 1-bit weights x spikes: each position's receptive field gathered "
                            "once, then 2 popcount(W & R) - popcount(R) per channel (fan-in <= CONV_POPCOUNT_MAX_FAN)"),
    "B1_COLUMN": (8, "1-bit weights x spikes, by columns: each active spike adds its weight column (one bit per "
                     "neuron) to bit-sliced counters of all neurons at once (needs w_cols; rows <= COLUMN_MAX_ROWS)"),
    "CONV_B1_COLUMN": (9, "streaming convolution, 1-bit weights x spikes, by columns: each active tap of a position's "
                          "receptive field adds its column to bit-sliced counters of every channel (needs w_cols; "
                          "channels <= COLUMN_MAX_ROWS, fan-in <= CONV_POPCOUNT_MAX_FAN)"),
    "CONV_BN_COLUMN": (10, "streaming convolution, 2-, 4- and 8-bit weights x spikes, by columns: each bit plane of "
                           "the weights' two's-complement codes goes through the column kernel's bit-sliced counters, "
                           "sum = sum over planes p of +-2^p count_p, the top plane negative (needs w_cols; channels "
                           "<= COLUMN_MAX_ROWS, fan-in <= CONV_POPCOUNT_MAX_FAN)"),
    "BN_COLUMN": (11, "2-, 4- and 8-bit weights x spikes, by columns: each bit plane of the weights' codes goes "
                      "through the column kernel's bit-sliced counters of all neurons, sum = sum over planes p of "
                      "+-2^p count_p, the top plane negative (needs w_cols; rows <= COLUMN_MAX_ROWS)"),
}

# -- the audio front end (docs/frontend.md) -------------------------------------------------------

#: Version of the front end's algorithm; with its tables it is the front-end specification that
#: the model hash covers (a faster implementation of the same features keeps both).
FRONTEND_VERSION = 1
SAMPLE_RATE = 16000
FRAME_LEN = 480  # 30 ms analysis window
HOP_LEN = 320  # 20 ms: one network time step per hop
HISTORY_LEN = FRAME_LEN - HOP_LEN  # samples kept between hops
FFT_LEN = 512
N_BANDS = 40
FMIN_HZ = 20
FMAX_HZ = 4000
#: feat = clamp(floor(4*log2(E)), 0, 255), E the mel energy in units of 2^-GAIN_LOG2 LSB^2.
GAIN_LOG2 = 16
CLIP_LEN = SAMPLE_RATE  # a keyword clip is 1 s
CLIP_FRAMES = CLIP_LEN // HOP_LEN - 1  # 49: the first hop only primes the history

# -- event-camera input (docs/contract.md section 12; firmware/lib/qsnn/include/qsnn_events.h) --

#: Version of the event binning rules (part of an event model's hash).
EVENTS_VERSION = 1
#: Largest sensor side (pixels) and pooling shift (one input per 2^s x 2^s block) the binner takes.
EV_MAX_SIDE = 1024
EV_MAX_POOL_SHIFT = 4
#: Largest step length in microseconds (differences of 32-bit timestamps are read as signed).
EV_MAX_WINDOW_US = (1 << 31) - 1
#: Outcomes of qsnn_ev_add and status codes of qsnn_ev_init / qsnn_ev_bin.
EV_ADD: dict[str, tuple[int, str]] = {
    "ADDED": (0, "counted in the current step (late or not)"),
    "LATER": (1, "belongs to a later step: close the current one first"),
    "DROPPED": (2, "outside the sensor or polarity > 1"),
    "BEYOND": (3, "qsnn_ev_feed: all the sample's steps are out, the event is not counted"),
    "FRAME": (4, "qsnn_ev_feed: a step closed into the frame; step the network, then feed the event again"),
}
EV_STATUS: dict[str, tuple[int, str]] = {
    "OK": (0, "configuration and buffer accepted"),
    "ERR_CONFIG": (1, "sensor side 0 or > EV_MAX_SIDE, pool_shift > EV_MAX_POOL_SHIFT, cap 0, "
                      "window 0 or > EV_MAX_WINDOW_US"),
    "ERR_BUFFER": (2, "the counts or frames buffer is missing or smaller than the inputs"),
}
#: N-MNIST's sensor crop (ATIS, saccades over MNIST digits).
NMNIST_SIDE = 34

# -- the C core's status codes (qsnn_model_check, qsnn_state_init) -------------------------------

CORE_STATUS: dict[str, tuple[int, str]] = {
    "OK": (0, "the model is valid / the state is ready"),
    "ERR_VERSION": (1, "model built for another format version"),
    "ERR_MODEL": (2, "descriptor violates the contract (sizes, widths, shifts)"),
    "ERR_ARENA": (3, "state arena too small or misaligned"),
    "ERR_BOUNDS": (4, "an accumulator, current or output could leave its range (docs/contract.md section 2)"),
}

# -- the serial protocol (docs/protocol.md) ------------------------------------------------------

PROTOCOL_VERSION = 5  # 2: RESULT carries worst_hop_ticks; 3: re-sent requests answered from a cache (exactly once), stream mode; 4: event-camera samples (EVENTS_BEGIN, EVENTS), IDENT names the input kind; 5: AUDIO_PACKED
MAX_PAYLOAD = 1024
HEADER_BYTES = 4  # type u8 | seq u8 | len u16
CRC_BYTES = 2
MAX_BODY = HEADER_BYTES + MAX_PAYLOAD + CRC_BYTES
#: Longest encoded frame without its 0x00 delimiter (COBS: one code byte per started block of 254).
MAX_ENCODED = MAX_BODY + MAX_BODY // 254 + 1
#: CRC-16/CCITT-FALSE over type..payload: polynomial and initial value (no reflection, no final xor).
CRC_POLY = 0x1021
CRC_INIT = 0xFFFF
#: Requests the host may have outstanding (the device's receive window).
RX_WINDOW = 1

class _Coded(IntEnum):
    """An integer code with its meaning: ``NAME = (code, meaning)``; ``int(member)`` is the code."""

    meaning: str

    def __new__(cls, code: int, meaning: str = "") -> "_Coded":  # Msg(0x81): a lookup by value
        obj = int.__new__(cls, code)
        obj._value_ = code
        obj.meaning = meaning
        return obj


@unique
class Msg(_Coded):
    """Message ids (and what each carries). Host -> device below 0x80, device -> host above."""

    HELLO = (0x01, "u8 protocol version -> IDENT")
    CLIP_BEGIN = (0x02, "u32 n_samples -> ACK")
    AUDIO = (0x03, "int16 LE samples (1..MAX_PAYLOAD/2) -> ACK, sent after the samples were processed")
    CLIP_END = (0x04, "empty -> RESULT")
    BYE = (0x05, "u8 exit code -> ACK, then the device exits")
    STREAM_BEGIN = (0x06, "detector configuration -> ACK; AUDIO then feeds a continuous stream")
    STREAM_END = (0x07, "empty -> ACK; the stream ends")
    EVENTS_BEGIN = (0x08, "u32 n_events, u32 t0 -> ACK; an event model's sample begins (its first step at t0)")
    EVENTS = (0x09, "u32 t_base, then 6-byte address events -> ACK, sent after they were binned and the network stepped")
    AUDIO_PACKED = (0x0A, "the samples of an AUDIO, losslessly packed (qsnnkit/pcm_pack.py) -> ACK or STREAM, as AUDIO")
    IDENT = (0x81, "who the device is: protocol, model, board, memory")
    ACK = (0x82, "u8 acknowledged type, u8 credits returned")
    RESULT = (0x84, "a clip's answer, outputs and counters")
    STREAM = (0x85, "answer to AUDIO in a stream: scores after it, detections it produced, counters")
    ERROR = (0xEE, "u8 code, u8 offending type, u16 0, u32 detail")


@unique
class Err(_Coded):
    """ERROR codes."""

    BAD_CRC = (1, "CRC mismatch")
    BAD_LENGTH = (2, "length field disagrees with the frame, or body too short")
    UNKNOWN_TYPE = (3, "unknown message type")
    BAD_STATE = (4, "message not valid now (e.g. AUDIO outside a clip)")
    BAD_PAYLOAD = (5, "payload size or contents invalid for the type")
    FRAMING = (6, "COBS decoding failed")
    TOO_LONG = (7, "no delimiter within the longest encoded frame")
    RX_OVERFLOW = (8, "received bytes were lost: a UART overrun, or a byte while a frame was held (host ignored the window)")
    SAMPLE_COUNT = (9, "more or fewer samples than CLIP_BEGIN announced")
    MODEL = (10, "the compiled-in model failed qsnn_model_check; detail = its code")
    VERSION = (11, "HELLO asked for another protocol version; detail = the device's")
    INPUT = (12, "a request for another input kind than the compiled-in model's (audio to an event model, or "
                 "events to an audio model); detail = the model's INPUT_* kind")


#: The same as plain tables: name -> (id, meaning).
MESSAGES: dict[str, tuple[int, str]] = {m.name: (int(m), m.meaning) for m in Msg}
ERRORS: dict[str, tuple[int, str]] = {e.name: (int(e), e.meaning) for e in Err}

#: What a model reads (IDENT's input_kind; the converted model's descriptor names it too).
INPUT_KINDS: dict[str, tuple[int, str]] = {
    "AUDIO": (0, "16 kHz PCM through the C front end (CLIP_BEGIN, AUDIO, CLIP_END; streams)"),
    "EVENTS": (1, "address events through the C binner (EVENTS_BEGIN, EVENTS, CLIP_END)"),
}
#: One address event in an EVENTS payload (after its u32 t_base): fields and byte offsets.
#: t = (t_base + dt) mod 2^32; x < 2^15 (bit 15 of the second field is the polarity).
EVENT_RECORD_FIELDS = (("dt", "u16", 0), ("x_p", "u16", 2), ("y", "u16", 4))
EVENT_RECORD_BYTES = 6
EVENT_MAX_X = (1 << 15) - 1
EVENT_MAX_DT = (1 << 16) - 1

#: What board_counter() counts: name -> (code, meaning).
COUNTER_UNITS: dict[str, tuple[int, str]] = {
    "INSTRUCTIONS": (0, "QEMU -icount shift=0: one tick per guest instruction"),
    "CYCLES": (1, "a real core's cycle counter (DWT->CYCCNT, CCOUNT)"),
    "TIMER": (2, "ticks of a timer at counter_hz; under QEMU -icount shift=0 one tick is 1e9 / counter_hz guest instructions"),
}

#: Exit codes of the firmware (QEMU's exit status through semihosting): name -> (code, meaning).
EXIT_CODES: dict[str, tuple[int, str]] = {
    "OK": (0, "BYE 0"),
    "MAIN_RETURNED": (2, "main returned"),
    "FAULT": (3, "a fault handler ran"),
}

#: Field types of message layouts: struct code and size (all little-endian).
FIELD_TYPES: dict[str, str] = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "i32": "i", "hash8": "8s"}


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # a key of FIELD_TYPES
    doc: str = ""

    @property
    def size(self) -> int:
        return struct.calcsize("<" + FIELD_TYPES[self.type])


@dataclass(frozen=True)
class Layout:
    """The fixed head of a message payload; ``tail`` says what follows it (if anything)."""

    message: str
    fields: tuple[Field, ...]
    tail: str = ""

    @property
    def fmt(self) -> str:
        return "<" + "".join(FIELD_TYPES[f.type] for f in self.fields)

    @property
    def size(self) -> int:
        return struct.calcsize(self.fmt)

    def offset(self, name: str) -> int:
        off = 0
        for f in self.fields:
            if f.name == name:
                return off
            off += f.size
        raise KeyError(f"{self.message} has no field {name!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


F = Field
LAYOUTS: dict[str, Layout] = {
    "HELLO": Layout("HELLO", (F("version", "u8", "protocol version the host speaks"),)),
    "CLIP_BEGIN": Layout("CLIP_BEGIN", (F("n_samples", "u32", "samples the clip will carry"),)),
    "BYE": Layout("BYE", (F("code", "u8", "exit code of the device"),)),
    "ACK": Layout("ACK", (F("about", "u8", "type of the acknowledged request"),
                          F("credits", "u8", "requests the host may send again"))),
    "ERROR": Layout("ERROR", (F("code", "u8", "ERR_* code"), F("about", "u8", "offending type, 0 if unreadable"),
                              F("reserved", "u16", "0"), F("detail", "u32", "code-specific detail"))),
    "IDENT": Layout("IDENT", (
        F("protocol_version", "u8"), F("counter_unit", "u8", "COUNTER_*"),
        F("rx_window", "u8", "requests the host may have outstanding"),
        F("model_status", "u8", "qsnn_model_check() result, 0 = OK"),
        F("counter_hz", "u32", "core clock for cycles, 0 for instructions"),
        F("format_version", "u32", "model format version"), F("model_hash", "hash8", "first 8 bytes of the SHA-256"),
        F("n_classes", "u16"), F("n_bands", "u16"), F("hop_len", "u16", "samples per hop"),
        F("max_payload", "u16"), F("arena_bytes", "u32", "network state arena"),
        F("static_ram_bytes", "u32", ".data + .bss"), F("flash_bytes", "u32"),
        F("stack_bytes", "u32", "stack reserved by the linker script"),
        F("input_kind", "u8", "INPUT_*: what the compiled-in model reads"), F("reserved", "u8", "0"),
        F("n_inputs", "u16", "inputs per network step (n_bands for audio)"),
    ), tail="three strings, each u8 length + ASCII bytes: firmware name, firmware version, board"),
    "RESULT": Layout("RESULT", (
        F("label", "u16", "argmax of the outputs, ties to the lowest index"), F("n_classes", "u16"),
        F("frames", "u32", "network steps run"), F("samples", "u32", "samples received"),
        F("frontend_ticks", "u64", "counter ticks in the front end"),
        F("network_ticks", "u64", "counter ticks in the network"),
        F("static_ram_bytes", "u32"), F("stack_peak_bytes", "u32", "painted-stack peak"), F("flash_bytes", "u32"),
        F("worst_hop_ticks", "u32", "counter ticks of the slowest hop: front end plus the network step it fed"),
    ), tail="n_classes int32 per-class outputs"),
    "EVENTS_BEGIN": Layout("EVENTS_BEGIN", (
        F("n_events", "u32", "events the sample will carry"),
        F("t0", "u32", "timestamp (us, mod 2^32) at which the sample's first step begins"),
    )),
    "EVENTS": Layout("EVENTS", (
        F("t_base", "u32", "timestamp the events' dt count from (us, mod 2^32)"),
    ), tail="1..EVENTS_MAX_PER_FRAME events, EVENT_RECORD_BYTES each: u16 dt, u16 x | polarity << 15, u16 y"),
    "AUDIO_PACKED": Layout("AUDIO_PACKED", (
        F("n_samples", "u16", "samples it carries (1..MAX_PAYLOAD/2, and at most the device's max_payload / 2)"),
        F("order", "u8", "predictor order 0..PCM_PACK_MAX_ORDER"),
        F("k", "u8", "Rice parameter 0..PCM_PACK_MAX_K"),
    ), tail="one Rice code per residual, bits MSB first, the last byte padded with zero bits"),
    "STREAM_BEGIN": Layout("STREAM_BEGIN", (
        F("threshold", "i32", "smallest margin that fires, >= 1"),
        F("refractory", "u32", "frames after a detection in which no other fires"),
        F("class_mask", "u32", "bit k set: class k may fire"),
        F("smooth_shift", "u8", "W of the leaky score (0..DETECT_MAX_SHIFT)"),
    )),
    "STREAM": Layout("STREAM", (
        F("frames", "u32", "frames since the stream began"),
        F("ticks", "u32", "counter ticks spent on this AUDIO (front end and network)"),
        F("lost", "u32", "detections dropped since the stream began (none when every AUDIO is at most 2 hops)"),
        F("n_classes", "u16"), F("n_detections", "u8", "detections that follow the scores"),
        F("reserved", "u8", "0"),
    ), tail="n_classes int32 scores S_k after the last frame, then per detection: u32 frame, u16 class, "
            "u16 0, i32 margin"),
}
del F

#: Longest string field of IDENT (u8 length prefix).
IDENT_MAX_STRING = 255
#: One detection in a STREAM payload (after the scores): fields and their byte offsets.
STREAM_DETECTION_FIELDS = (("frame", "u32", 0), ("label", "u16", 4), ("reserved", "u16", 6), ("margin", "i32", 8))
STREAM_DETECTION_BYTES = 12
#: AUDIO_PACKED (qsnnkit/pcm_pack.py): a unary run of ESCAPE_Q one bits announces a raw
#: RAW_BITS-bit zigzag residual; predictor orders 0..MAX_ORDER; Rice parameters 0..MAX_K.
PCM_PACK_ESCAPE_Q = 16
PCM_PACK_RAW_BITS = 18
PCM_PACK_MAX_ORDER = 2
PCM_PACK_MAX_K = 15
#: Events one EVENTS payload can carry.
EVENTS_MAX_PER_FRAME = (MAX_PAYLOAD - LAYOUTS["EVENTS"].size) // EVENT_RECORD_BYTES
#: Classes a RESULT can carry within one payload.
RESULT_MAX_CLASSES = (MAX_PAYLOAD - LAYOUTS["RESULT"].size) // 4


def message_id(name: str) -> int:
    return MESSAGES[name][0]


def error_code(name: str) -> int:
    return ERRORS[name][0]


def exit_meaning(status: int) -> str:
    """What a firmware exit status means ('' for an unknown one)."""
    for _, (code, meaning) in EXIT_CODES.items():
        if code == status:
            return meaning
    return ""
