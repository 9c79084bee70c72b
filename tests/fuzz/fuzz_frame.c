/*
 * fuzz_frame.c - libFuzzer harness of the device's frame receiver (firmware/src/proto.c).
 *
 * The input is fed byte by byte to proto_rx_byte, as a UART would deliver it. Checked, besides
 * what AddressSanitizer and UndefinedBehaviorSanitizer catch:
 *  - a delivered frame has len <= PROTO_MAX_PAYLOAD and its payload inside the receive buffer;
 *  - a delivered frame is exactly the bytes its encoding gives (so a bad CRC, a wrong length or a
 *    non-canonical COBS block is never delivered), and receiving that encoding again gives the
 *    same frame (round trip);
 *  - an error return is one of the protocol's receive errors.
 * Then the input is taken as a payload: encode, receive, compare (the encoder's round trip).
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "proto.h"


static void receive_once(const uint8_t *enc, size_t n, proto_frame_t *f, uint8_t *copy)
{
    static proto_rx_t rx;
    size_t i;
    int got = 0;
    proto_rx_init(&rx);
    for (i = 0; i < n; ++i) {
        const int r = proto_rx_byte(&rx, enc[i], f);
        if (r == PROTO_RX_FRAME) {
            CHECK(i == n - 1u && !got);
            got = 1;
            memcpy(copy, f->payload, f->len);
        } else {
            CHECK(r == PROTO_RX_MORE);
        }
    }
    CHECK(got);
}

static void round_trip(uint8_t type, uint8_t seq, const uint8_t *payload, uint16_t len)
{
    static uint8_t enc[PROTO_MAX_ENCODED + 1u];
    static uint8_t copy[PROTO_MAX_PAYLOAD];
    proto_frame_t f;
    const size_t n = proto_encode(type, seq, payload, len, enc);
    size_t i;
    CHECK(n >= 2u && n <= PROTO_MAX_ENCODED + 1u && enc[n - 1u] == 0u);
    for (i = 0; i + 1u < n; ++i) {
        CHECK(enc[i] != 0u);
    }
    receive_once(enc, n, &f, copy);
    CHECK(f.type == type && f.seq == seq && f.len == len && memcmp(copy, payload, len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static proto_rx_t rx;
    static uint8_t payload[PROTO_MAX_PAYLOAD];
    static uint8_t enc[PROTO_MAX_ENCODED + 1u];
    size_t i;
    size_t start = 0u; /* where the frame being received began */
    proto_rx_init(&rx);
    for (i = 0; i < size; ++i) {
        proto_frame_t f;
        const int r = proto_rx_byte(&rx, data[i], &f);
        if (r == PROTO_RX_FRAME) {
            CHECK(f.len <= PROTO_MAX_PAYLOAD);
            CHECK(f.payload >= rx.buf && f.payload + f.len <= rx.buf + sizeof(rx.buf));
            memcpy(payload, f.payload, f.len);
            CHECK(proto_encode(f.type, f.seq, payload, f.len, enc) == i + 1u - start &&
                  memcmp(enc, data + start, i + 1u - start) == 0);
            round_trip(f.type, f.seq, payload, f.len);
        } else {
            CHECK(r == PROTO_RX_MORE || r == (int)ERR_BAD_CRC || r == (int)ERR_BAD_LENGTH ||
                  r == (int)ERR_FRAMING || r == (int)ERR_TOO_LONG);
        }
        if (data[i] == 0u) {
            start = i + 1u;
        }
    }
    if (size >= 2u) {
        const size_t len = size - 2u > PROTO_MAX_PAYLOAD ? PROTO_MAX_PAYLOAD : size - 2u;
        round_trip(data[0], data[1], data + 2, (uint16_t)len);
    }
    return 0;
}
