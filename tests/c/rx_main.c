/* rx_main.c - the request receiver (firmware/src/proto.h: proto_rx_put / take / release) on
 * the host, the way an interrupt-driven board uses it: bytes put one at a time, a whole frame
 * held until released, bytes put while it is held counted as dropped, an over-long frame
 * reported once and skipped to its 0x00, and nothing held lost by the release of that report.
 * Prints "ok" or the first failed check; tests/test_firmware_build.py runs it. */
#include <stdio.h>
#include <string.h>

#include "proto.h"

#define CHECK(c)                                          \
    do {                                                  \
        if (!(c)) {                                       \
            printf("failed line %d: %s\n", __LINE__, #c); \
            return 1;                                     \
        }                                                 \
    } while (0)

static proto_rx_t rx;
static uint8_t wire[PROTO_MAX_ENCODED + 2u];

static void put_all(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        proto_rx_put(&rx, p[i]);
    }
}

int main(void)
{
    static uint8_t payload[PROTO_RX_MAX_PAYLOAD];
    proto_frame_t f;
    size_t n, i;
    uint32_t k;
    for (i = 0; i < sizeof payload; ++i) {
        payload[i] = (uint8_t)(i * 7u); /* zeros every 256 bytes: COBS blocks of every length */
    }
    proto_rx_init(&rx);
    CHECK(!proto_rx_pending(&rx) && proto_rx_take(&rx, &f) == PROTO_RX_MORE);

    /* the largest frame this firmware accepts: held whole, then every byte put meanwhile is dropped */
    n = proto_encode(0x21u, 9u, payload, (uint16_t)sizeof payload, wire);
    CHECK(n == PROTO_RX_MAX_ENCODED + 1u);
    put_all(wire, n);
    CHECK(rx.held && proto_rx_pending(&rx));
    put_all(wire, 5u);
    CHECK(rx.dropped == 5u);
    CHECK(proto_rx_take(&rx, &f) == PROTO_RX_FRAME && f.type == 0x21u && f.seq == 9u &&
          f.len == sizeof payload && memcmp(f.payload, payload, sizeof payload) == 0);
    put_all(wire, 3u); /* still held until released */
    CHECK(rx.dropped == 8u);
    proto_rx_release(&rx);
    CHECK(!rx.held && !proto_rx_pending(&rx));

    /* empty frames are skipped; a damaged frame is an error about the held frame, then released */
    proto_rx_put(&rx, 0u);
    proto_rx_put(&rx, 0u);
    CHECK(!proto_rx_pending(&rx));
    n = proto_encode(0x22u, 1u, payload, 10u, wire);
    wire[3] ^= 0x40u;
    put_all(wire, n);
    CHECK(proto_rx_take(&rx, &f) == (int)ERR_BAD_CRC);
    proto_rx_release(&rx);
    CHECK(!proto_rx_pending(&rx));

    /* one byte too many: TOO_LONG, the rest skipped to its 0x00; the next frame, held before the
     * report was taken, survives the report's release */
    for (k = 0; k < PROTO_RX_MAX_ENCODED + 40u; ++k) {
        proto_rx_put(&rx, 0x55u);
    }
    proto_rx_put(&rx, 0u);
    CHECK(!rx.held && rx.too_long == 1u);
    n = proto_encode(0x23u, 2u, payload, 12u, wire);
    put_all(wire, n);
    CHECK(rx.held);
    CHECK(proto_rx_take(&rx, &f) == (int)ERR_TOO_LONG && f.type == 0u && f.seq == 0u);
    proto_rx_release(&rx);
    CHECK(rx.held);
    CHECK(proto_rx_take(&rx, &f) == PROTO_RX_FRAME && f.type == 0x23u && f.seq == 2u && f.len == 12u &&
          memcmp(f.payload, payload, 12u) == 0);
    proto_rx_release(&rx);

    /* resync drops a held frame and the partial one after it, up to the next 0x00 */
    put_all(wire, n);
    put_all(wire, 4u);
    proto_rx_resync(&rx);
    CHECK(!rx.held && proto_rx_take(&rx, &f) == PROTO_RX_MORE);
    put_all(wire + 4u, n - 4u); /* the rest of a frame whose start was lost: skipped */
    CHECK(!proto_rx_pending(&rx));
    put_all(wire, n);
    CHECK(proto_rx_take(&rx, &f) == PROTO_RX_FRAME && f.seq == 2u);
    proto_rx_release(&rx);

    /* a payload built inside the output buffer (the device's responses) encodes to the same bytes */
    for (k = 0; k <= PROTO_RX_MAX_PAYLOAD; k += (k < 300u ? 1u : 17u)) {
        static uint8_t inplace[PROTO_MAX_ENCODED + 16u];
        const size_t at = PROTO_ENCODE_IN_PLACE_AT(k);
        const size_t m = proto_encode(0x24u, (uint8_t)k, payload, (uint16_t)k, wire);
        memcpy(inplace + at, payload, k);
        CHECK(proto_encode(0x24u, (uint8_t)k, inplace + at, (uint16_t)k, inplace) == m && memcmp(inplace, wire, m) == 0);
    }

    /* proto_rx_byte (polled lines): a frame completes at its 0x00 and is released at once */
    n = proto_encode(0x23u, 2u, payload, 12u, wire);
    for (i = 0; i + 1u < n; ++i) {
        CHECK(proto_rx_byte(&rx, wire[i], &f) == PROTO_RX_MORE);
    }
    CHECK(proto_rx_byte(&rx, wire[n - 1u], &f) == PROTO_RX_FRAME && f.type == 0x23u && !rx.held);
    printf("ok\n");
    return 0;
}
