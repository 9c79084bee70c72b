/*
 * app.c - the qsnnkit firmware's application, for the kind of input the compiled-in model
 * reads (docs/protocol.md):
 *   - audio (keyword spotting): PCM streamed like a live microphone; the front end runs on
 *     every hop of 320 samples as it arrives and the network on every frame it produces;
 *     clips (CLIP_BEGIN, AUDIO, CLIP_END) and continuous streams with the detector;
 *   - address events (an event camera): EVENTS_BEGIN, EVENTS, CLIP_END; the binner
 *     (qsnn_events.c) closes a step whenever an event belongs to a later one, and the
 *     network runs on every step it closes.
 * Requests for the other kind are answered with ERROR INPUT.
 *
 * Portable: everything board-specific is behind board.h; main.c is the receive loop. The
 * host fuzz harnesses (tests/fuzz/) drive these same functions. The model is compiled in
 * (qsnn_model.h / qsnn_model.c from the converter; QSNN_MODEL_DIR picks the folder).
 */
#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "board.h"
#include "proto.h"
#include "qsnn_core.h"
#include "qsnn_detect.h"
#include "qsnn_events.h"
#include "qsnn_frontend.h"
#include "qsnn_model.h"

#define FIRMWARE_NAME "qsnnkit"
#define FIRMWARE_VERSION "0.1.0"
/* PROTO_RX_WINDOW (proto_spec.h) requests may be outstanding. With 1, nothing arrives
 * while the device computes (each ACK is sent after the work is done), so no receive
 * interrupt runs inside a measured section and the counts are exact. */
#define MAX_AUDIO_SAMPLES (PROTO_RX_MAX_PAYLOAD / 2u)

/* Every payload layout (offsets, head sizes) comes from proto_spec.h. */

#if defined(QSNN_MODEL_INPUT_EVENTS)
#define APP_EVENTS 1
#define APP_INPUT_KIND INPUT_EVENTS
/* The binner's inputs for the model's configuration (qsnn_events.h). */
#define EV_INPUTS QSNN_EV_N_INPUTS(QSNN_MODEL_EV_WIDTH, QSNN_MODEL_EV_HEIGHT, QSNN_MODEL_EV_POOL_SHIFT)
static const qsnn_ev_cfg_t ev_cfg = {(uint16_t)QSNN_MODEL_EV_WIDTH, (uint16_t)QSNN_MODEL_EV_HEIGHT,
                                     (uint8_t)QSNN_MODEL_EV_POOL_SHIFT, (uint8_t)QSNN_MODEL_EV_CAP,
                                     QSNN_MODEL_EV_WINDOW_US};
#else
#define APP_EVENTS 0
#define APP_INPUT_KIND INPUT_AUDIO
#endif

static uint32_t arena[(QSNN_MODEL_ARENA_BYTES + 3u) / 4u];
static qsnn_state_t net;
static int model_status;
static uint32_t counter_overhead;

/* The device is idle, in a clip, or in a stream; a clip and a stream never overlap, so their
 * state shares RAM. */
static uint8_t streaming;
typedef struct {
#if APP_EVENTS
    qsnn_ev_state_t ev;
    uint8_t counts[EV_INPUTS]; /* the binner's current step */
    uint8_t frame[EV_INPUTS];  /* the step it closed last: the network's input */
    uint32_t step_ticks;       /* binning ticks since the last closed step */
#else
    qsnn_fe_state_t fe;
    uint32_t hop_fill;
    int16_t hop[QSNN_HOP_LEN];
#endif
    uint8_t active;
    uint32_t expected;   /* samples (audio) or events announced */
    uint32_t received;
    uint32_t frames;     /* network steps */
    uint64_t fe_ticks;   /* front end (audio) or binning (events) */
    uint64_t net_ticks;
    uint32_t worst_hop; /* ticks of the slowest hop or step, its input side and network together */
} clip_state_t;
static union {
    clip_state_t c;
#if !APP_EVENTS
    qsnn_detector_t det;
#endif
} mode;
#define clip (mode.c)
#define fe (mode.c.fe)

proto_rx_t app_rx;
/* Response buffers sized to the largest response this firmware sends, not to the protocol's
 * payload limit (requests can be that long; responses here are short): IDENT with its three
 * strings (the board name cut at BOARD_NAME_MAX), or RESULT with this model's classes. */
#define IDENT_BYTES_MAX                                                                              \
    (IDENT_HEAD_BYTES + 3u + (sizeof(FIRMWARE_NAME) - 1u) + (sizeof(FIRMWARE_VERSION) - 1u) + BOARD_NAME_MAX)
#define RESULT_BYTES (RESULT_HEAD_BYTES + 4u * QSNN_MODEL_N_CLASSES)
#if APP_EVENTS
#define STREAM_BYTES 0u /* no streams: an event model answers samples */
#else
/* An AUDIO of at most MAX_AUDIO_SAMPLES samples completes at most this many hops, each of
 * which can fire one detection: a STREAM answer carries them all (nothing is lost). */
#define STREAM_MAX_DETECTIONS ((MAX_AUDIO_SAMPLES + QSNN_HOP_LEN - 1u) / QSNN_HOP_LEN + 1u)
#define STREAM_BYTES (STREAM_HEAD_BYTES + 4u * QSNN_MODEL_N_CLASSES + STREAM_DETECTION_BYTES * STREAM_MAX_DETECTIONS)
typedef char stream_queue_holds_an_audio[(STREAM_MAX_DETECTIONS <= QSNN_DETECT_QUEUE) ? 1 : -1];
#endif
#define OUT_MAX2(a, b) ((a) > (b) ? (a) : (b))
#define OUT_PAYLOAD_BYTES OUT_MAX2(OUT_MAX2(IDENT_BYTES_MAX, RESULT_BYTES), STREAM_BYTES)
#define OUT_BODY_BYTES (PROTO_HEADER_BYTES + OUT_PAYLOAD_BYTES + PROTO_CRC_BYTES)
/* COBS adds one code byte per started block of 254, then the 0x00 delimiter. */
#define TX_BUF_BYTES (OUT_BODY_BYTES + OUT_BODY_BYTES / 254u + 2u)

typedef char out_payload_holds_error_and_ack[(OUT_PAYLOAD_BYTES >= ERROR_HEAD_BYTES && OUT_PAYLOAD_BYTES >= ACK_HEAD_BYTES &&
                                              QSNN_MODEL_N_CLASSES <= RESULT_MAX_CLASSES) ? 1 : -1];

/* tx_buf keeps the encoded response to the last intact request: a request that arrives
 * again with the same type, seq and CRC (the host re-sends when a response was lost or
 * damaged) is answered from it, not processed twice (docs/protocol.md, "Exactly once"). */
/* Responses are built in tx_buf itself, PROTO_ENCODE_IN_PLACE_AT bytes in, and encoded in
 * place (proto.h): no separate payload buffer. */
#define TX_BUF_HOLDS(n) ((n) > TX_BUF_BYTES ? (n) : TX_BUF_BYTES)
static uint8_t tx_buf[TX_BUF_HOLDS(PROTO_ENCODE_IN_PLACE_AT(OUT_PAYLOAD_BYTES) + OUT_PAYLOAD_BYTES)];
#define out_payload (tx_buf + PROTO_ENCODE_IN_PLACE_AT(OUT_PAYLOAD_BYTES))
static struct {
    uint8_t valid;
    uint8_t type;
    uint8_t seq;
    uint16_t crc;
    uint16_t bytes; /* encoded response in tx_buf */
} last;
/* ERROR frames about damaged frames or receive overflow go out of their own buffer, so
 * that they never replace the cached response. */
#define ERROR_BODY_BYTES (PROTO_HEADER_BYTES + ERROR_HEAD_BYTES + PROTO_CRC_BYTES)
static uint8_t err_buf[ERROR_BODY_BYTES + ERROR_BODY_BYTES / 254u + 2u];

static void send(uint8_t type, uint8_t seq, const uint8_t *payload, uint16_t len)
{
    const size_t n = proto_encode(type, seq, payload, len, tx_buf);
    last.bytes = (uint16_t)n;
    board_uart_write(tx_buf, n);
}

static void error_payload(uint8_t *p, uint8_t code, uint8_t about, uint32_t detail)
{
    p[ERROR_OFF_CODE] = code;
    p[ERROR_OFF_ABOUT] = about;
    put_u16(p + ERROR_OFF_RESERVED, 0u);
    put_u32(p + ERROR_OFF_DETAIL, detail);
}

/* An ERROR answering an intact request: it is that request's (cached) response. */
static void send_error(uint8_t seq, uint8_t code, uint8_t about, uint32_t detail)
{
    uint8_t p[ERROR_HEAD_BYTES];
    error_payload(p, code, about, detail);
    send(MSG_ERROR, seq, p, (uint16_t)ERROR_HEAD_BYTES);
}

/* An ERROR about bytes that were not an intact request (damaged frame, receive overflow). */
static void send_frame_error(uint8_t seq, uint8_t code, uint8_t about, uint32_t detail)
{
    uint8_t p[ERROR_HEAD_BYTES];
    error_payload(p, code, about, detail);
    board_uart_write(err_buf, proto_encode(MSG_ERROR, seq, p, (uint16_t)ERROR_HEAD_BYTES, err_buf));
}

static void send_ack(uint8_t seq, uint8_t about)
{
    uint8_t p[ACK_HEAD_BYTES];
    p[ACK_OFF_ABOUT] = about;
    p[ACK_OFF_CREDITS] = 1u; /* one credit back */
    send(MSG_ACK, seq, p, (uint16_t)ACK_HEAD_BYTES);
}

static size_t put_str(uint8_t *p, const char *s, size_t max)
{
    size_t n = 0u;
    while (s[n] != '\0' && n < max) {
        p[1u + n] = (uint8_t)s[n];
        ++n;
    }
    p[0] = (uint8_t)n;
    return 1u + n;
}

static void send_ident(uint8_t seq)
{
    uint8_t *p = out_payload;
    size_t n;
    uint32_t i;
    p[IDENT_OFF_PROTOCOL_VERSION] = (uint8_t)PROTO_VERSION;
    p[IDENT_OFF_COUNTER_UNIT] = board_info.counter_unit;
    p[IDENT_OFF_RX_WINDOW] = (uint8_t)PROTO_RX_WINDOW;
    p[IDENT_OFF_MODEL_STATUS] = (uint8_t)model_status;
    put_u32(p + IDENT_OFF_COUNTER_HZ, board_info.counter_hz);
    put_u32(p + IDENT_OFF_FORMAT_VERSION, qsnn_model.format_version);
    for (i = 0; i < 8u; ++i) {
        p[IDENT_OFF_MODEL_HASH + i] = qsnn_model.hash[i];
    }
    put_u16(p + IDENT_OFF_N_CLASSES, qsnn_model.n_classes);
    put_u16(p + IDENT_OFF_N_BANDS, APP_EVENTS ? 0u : QSNN_N_BANDS);
    put_u16(p + IDENT_OFF_HOP_LEN, APP_EVENTS ? 0u : QSNN_HOP_LEN);
    put_u16(p + IDENT_OFF_MAX_PAYLOAD, PROTO_RX_MAX_PAYLOAD);
    put_u32(p + IDENT_OFF_ARENA_BYTES, (uint32_t)sizeof(arena));
    put_u32(p + IDENT_OFF_STATIC_RAM_BYTES, board_static_ram_bytes());
    put_u32(p + IDENT_OFF_FLASH_BYTES, board_flash_bytes());
    put_u32(p + IDENT_OFF_STACK_BYTES, board_stack_size_bytes());
    p[IDENT_OFF_INPUT_KIND] = (uint8_t)APP_INPUT_KIND;
    p[IDENT_OFF_RESERVED] = 0u;
    put_u16(p + IDENT_OFF_N_INPUTS, qsnn_model.n_bands);
    n = IDENT_HEAD_BYTES;
    n += put_str(p + n, FIRMWARE_NAME, sizeof(FIRMWARE_NAME) - 1u);
    n += put_str(p + n, FIRMWARE_VERSION, sizeof(FIRMWARE_VERSION) - 1u);
    n += put_str(p + n, board_info.name, BOARD_NAME_MAX);
    send(MSG_IDENT, seq, p, (uint16_t)n);
}

static void send_result(uint8_t seq)
{
    uint8_t *p = out_payload;
    const uint32_t nc = qsnn_model.n_classes;
    uint32_t k;
    put_u16(p + RESULT_OFF_LABEL, (uint32_t)qsnn_argmax(net.out, (int)nc));
    put_u16(p + RESULT_OFF_N_CLASSES, nc);
    put_u32(p + RESULT_OFF_FRAMES, clip.frames);
    put_u32(p + RESULT_OFF_SAMPLES, clip.received);
    put_u64(p + RESULT_OFF_FRONTEND_TICKS, clip.fe_ticks);
    put_u64(p + RESULT_OFF_NETWORK_TICKS, clip.net_ticks);
    put_u32(p + RESULT_OFF_STATIC_RAM_BYTES, board_static_ram_bytes());
    put_u32(p + RESULT_OFF_STACK_PEAK_BYTES, board_stack_peak_bytes());
    put_u32(p + RESULT_OFF_FLASH_BYTES, board_flash_bytes());
    put_u32(p + RESULT_OFF_WORST_HOP_TICKS, clip.worst_hop);
    for (k = 0; k < nc; ++k) {
        put_u32(p + RESULT_HEAD_BYTES + 4u * k, (uint32_t)net.out[k]);
    }
    send(MSG_RESULT, seq, p, (uint16_t)(RESULT_HEAD_BYTES + 4u * nc));
}

/* Ticks of an empty measured section: subtracted from every measurement. */
static uint32_t measure_overhead(void)
{
    uint32_t best = 0xFFFFFFFFu;
    int i;
    /* held quiet like every measured section: a host re-sending HELLO while the board boots
     * (after a reset) would otherwise run its receive interrupt between every pair of reads
     * and inflate the overhead, shifting every later count */
    board_quiet_begin();
    for (i = 0; i < 4; ++i) {
        const uint32_t t0 = board_counter();
        const uint32_t t1 = board_counter();
        if (t1 - t0 < best) {
            best = t1 - t0;
        }
    }
    board_quiet_end();
    return best;
}

/* A clip or event sample begins: the network reset, its counts and counters zero. */
static void sample_begin(uint32_t expected)
{
    qsnn_reset(&net);
    clip.active = 1u;
    clip.expected = expected;
    clip.received = 0u;
    clip.frames = 0u;
    clip.fe_ticks = 0u;
    clip.net_ticks = 0u;
    clip.worst_hop = 0u;
}

#if APP_EVENTS
/* A network step on the frame the binner closed: the step's binning and network ticks
 * together are what must fit in the step's window on a live sensor. Inside a quiet section. */
static void step_closed(void)
{
    const uint32_t t0 = board_counter();
    uint32_t ticks;
    qsnn_step(&net, clip.frame);
    ticks = (uint32_t)(board_counter() - t0 - counter_overhead);
    clip.net_ticks += ticks;
    ticks += clip.step_ticks;
    clip.step_ticks = 0u;
    if (ticks > clip.worst_hop) {
        clip.worst_hop = ticks;
    }
    ++clip.frames;
}

/* Ticks since t0 of a binner call: binning, and part of the current step. */
static void binned_since(uint32_t t0)
{
    const uint32_t ticks = (uint32_t)(board_counter() - t0 - counter_overhead);
    clip.fe_ticks += ticks;
    clip.step_ticks += ticks;
}

/* One event: binned, and the network stepped on every step it closes (contract section 12). */
static void feed_event(uint32_t x, uint32_t y, uint32_t pol, uint32_t t)
{
    for (;;) {
        const uint32_t t0 = board_counter();
        const int r = qsnn_ev_feed(&clip.ev, QSNN_MODEL_EV_STEPS, x, y, pol, t, clip.frame);
        binned_since(t0);
        if (r != QSNN_EV_FRAME) {
            return;
        }
        step_closed();
    }
}

/* The events of an EVENTS payload (record layout in proto_spec.h), in order. */
static void run_events(const uint8_t *p, uint32_t n)
{
    const uint32_t base = get_u32(p + EVENTS_OFF_T_BASE);
    uint32_t k;
    board_quiet_begin(); /* no interrupt inside the measured sections: exact counts */
    for (k = 0; k < n; ++k) {
        const uint8_t *e = p + EVENTS_HEAD_BYTES + EVENT_RECORD_BYTES * k;
        const uint32_t xp = get_u16(e + EVENT_OFF_X_P);
        feed_event(xp & 0x7FFFu, get_u16(e + EVENT_OFF_Y), xp >> 15, base + get_u16(e + EVENT_OFF_DT));
    }
    board_quiet_end();
}

/* After the sample's last event: the steps that remain (time passes for the network). */
static void finish_events(void)
{
    board_quiet_begin();
    for (;;) {
        const uint32_t t0 = board_counter();
        const int more = qsnn_ev_finish(&clip.ev, QSNN_MODEL_EV_STEPS, clip.frame);
        binned_since(t0);
        if (!more) {
            break;
        }
        step_closed();
    }
    board_quiet_end();
}

static void events_begin(uint32_t n_events, uint32_t t0)
{
    sample_begin(n_events);
    (void)qsnn_ev_init(&clip.ev, &ev_cfg, clip.counts, sizeof clip.counts, t0); /* checked in app_init */
    clip.step_ticks = 0u;
}

#else
/* One hop of audio: front end, then the network on the frame it produced (if any). */
static void run_hop(void)
{
    uint8_t feat[QSNN_N_BANDS];
    uint32_t t0;
    board_quiet_begin(); /* no interrupt inside the measured sections: exact counts */
    t0 = board_counter();
    const int produced = qsnn_fe_push(&fe, clip.hop, feat);
    uint32_t t1 = board_counter();
    uint32_t hop = (uint32_t)(t1 - t0 - counter_overhead);
    clip.fe_ticks += hop;
    if (produced) {
        t0 = board_counter();
        qsnn_step(&net, feat);
        t1 = board_counter();
        clip.net_ticks += (uint32_t)(t1 - t0 - counter_overhead);
        hop += (uint32_t)(t1 - t0 - counter_overhead);
        ++clip.frames;
    }
    board_quiet_end();
    if (hop > clip.worst_hop) {
        clip.worst_hop = hop;
    }
}

#define STREAM_CHUNK 32u

/* AUDIO in a stream: the detector runs on every hop it completes (one measured section);
 * the answer carries the scores after the last frame and every detection it fired. */
#if defined(__GNUC__)
__attribute__((noinline)) /* its sample buffer stays off the clip path's stack */
#endif
static void stream_audio(uint8_t seq, proto_audio_t *src, uint32_t n)
{
    qsnn_detector_t *d = &mode.det;
    uint8_t *o = out_payload;
    const uint32_t nc = qsnn_model.n_classes;
    uint32_t i, k, nd = 0u, ticks = 0u;
    for (i = 0; i < n; i += STREAM_CHUNK) {
        int16_t x[STREAM_CHUNK]; /* a few samples at a time: little stack */
        const uint32_t m = n - i < STREAM_CHUNK ? n - i : STREAM_CHUNK;
        uint32_t j, t0, t1;
        for (j = 0; j < m; ++j) {
            x[j] = proto_audio_next(src);
        }
        board_quiet_begin(); /* no interrupt inside the measured section */
        t0 = board_counter();
        (void)qsnn_detector_push(d, x, m);
        t1 = board_counter();
        board_quiet_end();
        ticks += (uint32_t)(t1 - t0 - counter_overhead);
    }
    put_u32(o + STREAM_OFF_FRAMES, d->frames);
    put_u32(o + STREAM_OFF_TICKS, ticks);
    put_u32(o + STREAM_OFF_LOST, d->lost);
    put_u16(o + STREAM_OFF_N_CLASSES, nc);
    o[STREAM_OFF_RESERVED] = 0u;
    for (k = 0; k < nc; ++k) {
        put_u32(o + STREAM_HEAD_BYTES + 4u * k, (uint32_t)d->score[k]);
    }
    {
        qsnn_detection_t hit;
        uint8_t *q = o + STREAM_HEAD_BYTES + 4u * nc;
        while (nd < STREAM_MAX_DETECTIONS && qsnn_detector_poll(d, &hit)) {
            put_u32(q + STREAM_DET_OFF_FRAME, hit.frame);
            put_u16(q + STREAM_DET_OFF_LABEL, hit.label);
            put_u16(q + STREAM_DET_OFF_RESERVED, 0u);
            put_u32(q + STREAM_DET_OFF_MARGIN, (uint32_t)hit.margin);
            q += STREAM_DETECTION_BYTES;
            ++nd;
        }
    }
    o[STREAM_OFF_N_DETECTIONS] = (uint8_t)nd;
    send(MSG_STREAM, seq, o, (uint16_t)(STREAM_HEAD_BYTES + 4u * nc + STREAM_DETECTION_BYTES * nd));
}

static void clip_begin(uint32_t n_samples)
{
    sample_begin(n_samples);
    qsnn_fe_reset(&fe);
    clip.hop_fill = 0u;
}

#endif

/* CLIP_BEGIN and STREAM_BEGIN: 1 (and the ERROR sent) when the payload size, the model or
 * the state refuses the start; a start inside a clip or stream ends it. */
static int begin_refused(const proto_frame_t *f, uint32_t head_bytes)
{
    if (f->len != head_bytes) {
        send_error(f->seq, ERR_BAD_PAYLOAD, f->type, f->len);
    } else if (model_status != QSNN_OK) {
        send_error(f->seq, ERR_MODEL, f->type, (uint32_t)model_status);
    } else if (clip.active || streaming) {
        clip.active = 0u;
        streaming = 0u;
        send_error(f->seq, ERR_BAD_STATE, f->type, 0u);
    } else {
        return 0;
    }
    return 1;
}

/* A request for the other input kind: ERROR INPUT (nothing else changes). */
static int wrong_input(const proto_frame_t *f)
{
#if APP_EVENTS
    const int audio_only = f->type == MSG_CLIP_BEGIN || f->type == MSG_AUDIO || f->type == MSG_AUDIO_PACKED ||
                           f->type == MSG_STREAM_BEGIN || f->type == MSG_STREAM_END;
    if (audio_only) {
#else
    if (f->type == MSG_EVENTS_BEGIN || f->type == MSG_EVENTS) {
#endif
        send_error(f->seq, ERR_INPUT, f->type, (uint32_t)APP_INPUT_KIND);
        return 1;
    }
    return 0;
}

static void handle(const proto_frame_t *f)
{
    const uint8_t *p = f->payload;
    if (wrong_input(f)) {
        return;
    }
    switch (f->type) {
    case MSG_HELLO:
        clip.active = 0u;
        streaming = 0u;
        if (f->len != HELLO_HEAD_BYTES) {
            send_error(f->seq, ERR_BAD_PAYLOAD, f->type, f->len);
        } else if (p[HELLO_OFF_VERSION] != PROTO_VERSION) {
            send_error(f->seq, ERR_VERSION, f->type, PROTO_VERSION);
        } else {
            send_ident(f->seq);
        }
        break;
#if APP_EVENTS
    case MSG_EVENTS_BEGIN:
        if (!begin_refused(f, EVENTS_BEGIN_HEAD_BYTES)) {
            events_begin(get_u32(p + EVENTS_BEGIN_OFF_N_EVENTS), get_u32(p + EVENTS_BEGIN_OFF_T0));
            send_ack(f->seq, f->type);
        }
        break;
    case MSG_EVENTS: {
        const uint32_t n = f->len >= EVENTS_HEAD_BYTES ? (f->len - EVENTS_HEAD_BYTES) / EVENT_RECORD_BYTES : 0u;
        if (!clip.active) {
            send_error(f->seq, ERR_BAD_STATE, f->type, 0u);
        } else if (n == 0u || f->len != EVENTS_HEAD_BYTES + EVENT_RECORD_BYTES * n) {
            send_error(f->seq, ERR_BAD_PAYLOAD, f->type, f->len);
        } else if (clip.received + n > clip.expected) {
            clip.active = 0u;
            send_error(f->seq, ERR_SAMPLE_COUNT, f->type, clip.received + n);
        } else {
            run_events(p, n);
            clip.received += n;
            send_ack(f->seq, f->type);
        }
        break;
    }
#else
    case MSG_CLIP_BEGIN:
        if (!begin_refused(f, CLIP_BEGIN_HEAD_BYTES)) {
            clip_begin(get_u32(p + CLIP_BEGIN_OFF_N_SAMPLES));
            send_ack(f->seq, f->type);
        }
        break;
    case MSG_AUDIO:
    case MSG_AUDIO_PACKED: { /* the same samples, plain or packed (proto_audio_open checks either) */
        proto_audio_t src;
        const uint32_t n = proto_audio_open(&src, f->type, p, f->len, MAX_AUDIO_SAMPLES);
        uint32_t i;
        if (!streaming && !clip.active) {
            send_error(f->seq, ERR_BAD_STATE, f->type, 0u);
        } else if (n == 0u) {
            send_error(f->seq, ERR_BAD_PAYLOAD, f->type, f->len);
        } else if (streaming) {
            stream_audio(f->seq, &src, n);
        } else if (clip.received + n > clip.expected) {
            clip.active = 0u;
            send_error(f->seq, ERR_SAMPLE_COUNT, f->type, clip.received + n);
        } else {
            for (i = 0; i < n; ++i) {
                clip.hop[clip.hop_fill++] = proto_audio_next(&src);
                if (clip.hop_fill == QSNN_HOP_LEN) {
                    run_hop();
                    clip.hop_fill = 0u;
                }
            }
            clip.received += n;
            send_ack(f->seq, f->type);
        }
        break;
    }
#endif
    case MSG_CLIP_END:
        if (!clip.active) {
            send_error(f->seq, ERR_BAD_STATE, f->type, 0u);
        } else if (f->len != 0u) {
            send_error(f->seq, ERR_BAD_PAYLOAD, f->type, f->len);
        } else if (clip.received != clip.expected) {
            clip.active = 0u;
            send_error(f->seq, ERR_SAMPLE_COUNT, f->type, clip.received);
        } else {
            clip.active = 0u;
#if APP_EVENTS
            finish_events();
#endif
            send_result(f->seq);
        }
        break;
#if !APP_EVENTS
    case MSG_STREAM_BEGIN:
        if (!begin_refused(f, STREAM_BEGIN_HEAD_BYTES)) {
            qsnn_detect_cfg_t cfg;
            int rc;
            cfg.threshold = (int32_t)get_u32(p + STREAM_BEGIN_OFF_THRESHOLD);
            cfg.refractory = get_u32(p + STREAM_BEGIN_OFF_REFRACTORY);
            cfg.class_mask = get_u32(p + STREAM_BEGIN_OFF_CLASS_MASK);
            cfg.smooth_shift = p[STREAM_BEGIN_OFF_SMOOTH_SHIFT];
            rc = qsnn_detector_init(&mode.det, &net, &cfg);
            if (rc != QSNN_DETECT_OK) {
                send_error(f->seq, ERR_BAD_PAYLOAD, f->type, (uint32_t)rc);
            } else {
                streaming = 1u;
                send_ack(f->seq, f->type);
            }
        }
        break;
    case MSG_STREAM_END:
        if (f->len != 0u) {
            send_error(f->seq, ERR_BAD_PAYLOAD, f->type, f->len);
        } else if (!streaming) {
            send_error(f->seq, ERR_BAD_STATE, f->type, 0u);
        } else {
            streaming = 0u;
            clip.active = 0u; /* the clip's state shares the detector's RAM */
            send_ack(f->seq, f->type);
        }
        break;
#endif
    case MSG_BYE:
        if (f->len != BYE_HEAD_BYTES) {
            send_error(f->seq, ERR_BAD_PAYLOAD, f->type, f->len);
        } else {
            send_ack(f->seq, f->type);
            board_exit((int)p[BYE_OFF_CODE]);
        }
        break;
    default:
        send_error(f->seq, ERR_UNKNOWN_TYPE, f->type, 0u);
        break;
    }
}

/* The session (clip, stream, the kept response) as after boot; the receiver is left alone. */
static void session_reset(void)
{
    streaming = 0u;
    clip.active = 0u;
    clip.expected = 0u;
    clip.received = 0u;
#if !APP_EVENTS
    clip.hop_fill = 0u;
#endif
    clip.frames = 0u;
    last.valid = 0u;
}

void app_init(void)
{
    model_status = qsnn_model_check(&qsnn_model);
#if APP_EVENTS
    /* the binner must produce exactly the model's inputs */
    if (model_status == QSNN_OK && (qsnn_ev_inputs(&ev_cfg) != EV_INPUTS || qsnn_model.n_bands != EV_INPUTS ||
                                    qsnn_model.n_classes > RESULT_MAX_CLASSES)) {
        model_status = QSNN_ERR_MODEL;
    }
#else
    if (model_status == QSNN_OK && (qsnn_model.n_bands != QSNN_N_BANDS ||
                                    qsnn_model.n_classes > RESULT_MAX_CLASSES)) {
        model_status = QSNN_ERR_MODEL;
    }
#endif
    if (model_status == QSNN_OK && qsnn_state_bytes(&qsnn_model) > sizeof(arena)) {
        model_status = QSNN_ERR_ARENA;
    }
    if (model_status == QSNN_OK) {
        model_status = qsnn_state_init(&net, &qsnn_model, arena, sizeof(arena));
    }
    counter_overhead = measure_overhead();
    session_reset(); /* not the receiver: its interrupt may already be filling it (a HELLO sent
                        while the device boots is kept, not lost) */
}

void app_reset(void)
{
    session_reset();
    proto_rx_init(&app_rx);
}

void app_rx_dropped(uint32_t dropped)
{
    board_quiet_begin(); /* the receive interrupt writes the receiver too */
    proto_rx_resync(&app_rx);
    board_quiet_end();
    clip.active = 0u;
    streaming = 0u;
    last.valid = 0u; /* the clip or stream is abandoned: a re-sent request must not find its old answer */
    send_frame_error(0u, ERR_RX_OVERFLOW, 0u, dropped);
}

int app_rx_poll(void)
{
    proto_frame_t f;
    const int r = proto_rx_take(&app_rx, &f);
    if (r == PROTO_RX_MORE) {
        return 0;
    }
    if (r == PROTO_RX_FRAME) {
        if (last.valid && f.type == last.type && f.seq == last.seq && f.crc == last.crc) {
            board_uart_write(tx_buf, last.bytes); /* a re-send: answered again, not redone */
        } else {
            last.valid = 0u;
            handle(&f);
            if (f.type != MSG_BYE) {
                last.valid = 1u;
                last.type = f.type;
                last.seq = f.seq;
                last.crc = f.crc;
            }
        }
    } else {
        send_frame_error(f.seq, (uint8_t)r, f.type, 0u);
    }
    proto_rx_release(&app_rx);
    return 1;
}

void app_rx_byte(uint8_t b)
{
    proto_rx_put(&app_rx, b);
    (void)app_rx_poll();
}
