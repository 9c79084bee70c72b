/*
 * fuzz_session.c - libFuzzer harness of the firmware's message handlers with their session
 * state (firmware/src/app.c: HELLO, CLIP_BEGIN, AUDIO, CLIP_END, BYE and every request type
 * proto_spec.h lists, so a message added later is fuzzed too), running the real front end and
 * the committed default model (harness "session"), or the event binner and the committed
 * N-MNIST model (harness "session_events": EVENTS_BEGIN, EVENTS), on a host board
 * (host_board.c) whose UART is this harness.
 *
 * The device boots once (app_init: model check, state); each input starts from that state
 * (app_reset: receiver and clip forgotten, as after boot) and is read as records; the first byte of a
 * record picks what happens next:
 *   op % 4 == 0  a well-formed frame: type byte (high bit clear: one of the request types,
 *                by index; set: that raw type), seq byte, length (2 bytes LE, cut to what
 *                is left and to PROTO_MAX_PAYLOAD), then that many payload bytes;
 *   op % 4 == 1  raw bytes on the line: a count byte, then that many bytes as they are;
 *   op % 4 == 2  with the high bit clear: the RX ring overflowed (app_rx_dropped); with it
 *                set: the last well-formed frame is sent again, as a host re-sends a request
 *                whose answer it lost (the device must answer it from its cache: the very
 *                same bytes, when nothing else reached the device in between);
 *   op % 4 == 3  a well-formed CLIP_BEGIN announcing (next byte) * 32 samples (an event
 *                model: EVENTS_BEGIN announcing (next byte) * 4 events from t0 = 0), to reach
 *                the sample path without guessing a u32.
 * Checked, besides the sanitizers: every byte the device sends parses as valid frames of a
 * response type (IDENT, ACK, RESULT, ERROR) with a payload no longer than PROTO_MAX_PAYLOAD;
 * every complete well-formed request gets exactly one response, except the first after an RX
 * overflow (the device resynchronises by dropping bytes up to the next 0x00: a frame whose start
 * it may have lost); BYE ends the session.
 */
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include "app.h"
#include "host_board.h"
#include "fuzz_check.h"
#include "proto.h"
#include "qsnn_model.h"


static const uint8_t request_types[PROTO_N_REQUESTS] = PROTO_REQUEST_TYPES;
static const uint8_t response_types[PROTO_N_RESPONSES] = PROTO_RESPONSE_TYPES;
static proto_rx_t host_rx; /* the host's side of the line: parses what the device sends */
static uint32_t responses;
static int resyncing; /* an RX overflow since the last 0x00 on the line */
/* What the device sent in answer to the last well-formed frame, and that frame. */
static uint8_t answer[2u * PROTO_MAX_ENCODED];
static size_t answer_n;
static uint8_t last_enc[PROTO_MAX_ENCODED + 1u];
static size_t last_enc_n;
static int last_alone; /* nothing but that frame reached the device since its answer */
static int line_clean;  /* the device's receiver is at a frame boundary (last byte fed was 0x00) */

static void on_device_bytes(const uint8_t *buf, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        if (answer_n < sizeof(answer)) {
            answer[answer_n++] = buf[i];
        }
        proto_frame_t f;
        const int r = proto_rx_byte(&host_rx, buf[i], &f);
        CHECK(r == PROTO_RX_MORE || r == PROTO_RX_FRAME);
        if (r == PROTO_RX_FRAME) {
            uint32_t k;
            int known = 0;
            for (k = 0; k < PROTO_N_RESPONSES; ++k) {
                known |= f.type == response_types[k];
            }
            CHECK(known && f.len <= PROTO_MAX_PAYLOAD);
            ++responses;
        }
    }
}

static void feed(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        app_rx_byte(p[i]);
        if (p[i] == 0u) {
            resyncing = 0;
        }
        line_clean = p[i] == 0u;
    }
}

static void send_frame(uint8_t type, uint8_t seq, const uint8_t *payload, uint16_t len)
{
    const uint32_t before = responses;
    const int lost = resyncing;
    const int clean = line_clean;
    last_enc_n = proto_encode(type, seq, payload, len, last_enc);
    answer_n = 0u;
    feed(last_enc, last_enc_n);
    /* one answer per request (BYE's ACK comes before the exit); none if dropped while resyncing */
    CHECK(responses == before + 1u || (lost && responses == before));
    last_alone = !lost && clean;
}

static void resend_last(void)
{
    static uint8_t first[sizeof(answer)];
    const size_t first_n = answer_n;
    const uint32_t before = responses;
    const int alone = last_alone;
    const int lost = resyncing;
    if (last_enc_n == 0u) {
        return;
    }
    memcpy(first, answer, first_n);
    answer_n = 0u;
    feed(last_enc, last_enc_n);
    CHECK(responses == before + 1u || (lost && responses == before));
    if (alone && !lost) {
        /* answered from the cache: byte for byte the first answer */
        CHECK(answer_n == first_n && memcmp(answer, first, first_n) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int booted;
    size_t i = 0;
    uint32_t dropped = 0u;
    host_board_reset(on_device_bytes);
    proto_rx_init(&host_rx);
    responses = 0u;
    resyncing = 0;
    last_enc_n = 0u;
    last_alone = 0;
    line_clean = 1;
    if (setjmp(host_board_exit_jmp) != 0) {
        return 0; /* BYE: the device exited */
    }
    if (!booted) {
        app_init();
        booted = 1;
    }
    app_reset();
    while (i < size) {
        const uint8_t op = data[i++];
        switch (op % 4u) {
        case 0: {
            uint8_t type;
            uint8_t seq;
            uint32_t len;
            if (size - i < 4u) {
                return 0;
            }
            type = data[i] & 0x80u ? data[i] : request_types[data[i] % PROTO_N_REQUESTS];
            seq = data[i + 1u];
            len = (uint32_t)data[i + 2u] | ((uint32_t)data[i + 3u] << 8);
            i += 4u;
            if (len > size - i) {
                len = (uint32_t)(size - i);
            }
            if (len > PROTO_MAX_PAYLOAD) {
                len = PROTO_MAX_PAYLOAD;
            }
            send_frame(type, seq, data + i, (uint16_t)len);
            i += len;
            break;
        }
        case 1: {
            size_t n;
            if (i >= size) {
                return 0;
            }
            n = data[i++];
            if (n > size - i) {
                n = size - i;
            }
            feed(data + i, n);
            i += n;
            last_alone = 0;
            break;
        }
        case 2:
            if (op & 0x80u) {
                resend_last();
            } else {
                app_rx_dropped(++dropped);
                resyncing = 1;
                last_alone = 0;
                line_clean = 0;
            }
            break;
        default: {
#if defined(QSNN_MODEL_INPUT_EVENTS)
            uint8_t p[EVENTS_BEGIN_HEAD_BYTES];
            if (i >= size) {
                return 0;
            }
            put_u32(p + EVENTS_BEGIN_OFF_N_EVENTS, 4u * data[i++]);
            put_u32(p + EVENTS_BEGIN_OFF_T0, 0u);
            send_frame(MSG_EVENTS_BEGIN, op, p, (uint16_t)EVENTS_BEGIN_HEAD_BYTES);
#else
            uint8_t p[CLIP_BEGIN_HEAD_BYTES];
            if (i >= size) {
                return 0;
            }
            put_u32(p + CLIP_BEGIN_OFF_N_SAMPLES, 32u * data[i++]);
            send_frame(MSG_CLIP_BEGIN, op, p, (uint16_t)CLIP_BEGIN_HEAD_BYTES);
#endif
            break;
        }
        }
    }
    return 0;
}
