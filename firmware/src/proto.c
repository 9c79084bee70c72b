/*
 * proto.c - framing of the serial protocol (docs/protocol.md): CRC-16/CCITT-FALSE,
 * COBS byte stuffing with 0x00 delimiters (a lost or corrupted byte costs one frame,
 * the receiver resynchronises at the next 0x00), header and length checks.
 */
#include "proto.h"

uint16_t proto_crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = (uint16_t)PROTO_CRC_INIT;
    size_t i;
    int b;
    for (i = 0; i < n; ++i) {
        crc = (uint16_t)(crc ^ ((uint16_t)p[i] << 8));
        for (b = 0; b < 8; ++b) {
            crc = (crc & 0x8000u) != 0u ? (uint16_t)((crc << 1) ^ PROTO_CRC_POLY) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

void proto_rx_init(proto_rx_t *rx)
{
    rx->held = 0u;
    rx->n = 0u;
    rx->skipping = 0u;
    rx->too_long = 0u;
    rx->too_long_seen = 0u;
    rx->taken = 0u;
    rx->dropped = 0u;
}

void proto_rx_resync(proto_rx_t *rx)
{
    rx->taken = 0u;
    rx->n = 0u;
    rx->skipping = 1u;
    PROTO_BARRIER();
    rx->held = 0u;
}

/* In-place COBS decode of buf[0..n); returns the decoded length or -1. */
static int cobs_decode(uint8_t *buf, uint32_t n)
{
    uint32_t in = 0u;
    uint32_t out = 0u;
    while (in < n) {
        const uint32_t code = buf[in++];
        uint32_t k;
        if (code == 0u || in + code - 1u > n) {
            return -1;
        }
        for (k = 1u; k < code; ++k) {
            buf[out++] = buf[in++];
        }
        if (code != 0xFFu && in < n) {
            buf[out++] = 0u;
        }
    }
    return (int)out;
}

static int check_frame(proto_rx_t *rx, proto_frame_t *out)
{
    const int m = cobs_decode(rx->buf, rx->n);
    uint32_t len;
    if (m < 0) {
        return (int)ERR_FRAMING;
    }
    if (m >= 2) {
        out->type = rx->buf[0];
        out->seq = rx->buf[1];
    }
    if ((uint32_t)m < PROTO_HEADER_BYTES + PROTO_CRC_BYTES) {
        return (int)ERR_BAD_LENGTH;
    }
    if (proto_crc16(rx->buf, (size_t)m - PROTO_CRC_BYTES) != get_u16(rx->buf + m - 2)) {
        return (int)ERR_BAD_CRC;
    }
    len = get_u16(rx->buf + 2);
    if (len != (uint32_t)m - PROTO_HEADER_BYTES - PROTO_CRC_BYTES) {
        return (int)ERR_BAD_LENGTH;
    }
    out->len = (uint16_t)len;
    out->crc = get_u16(rx->buf + m - 2);
    out->payload = rx->buf + PROTO_HEADER_BYTES;
    return PROTO_RX_FRAME;
}

int proto_rx_take(proto_rx_t *rx, proto_frame_t *out)
{
    const uint32_t too_long = rx->too_long;
    out->type = 0u;
    out->seq = 0u;
    out->len = 0u;
    out->crc = 0u;
    out->payload = rx->buf;
    if (too_long != rx->too_long_seen) {
        rx->too_long_seen = too_long;
        return (int)ERR_TOO_LONG;
    }
    if (!rx->held) {
        return PROTO_RX_MORE;
    }
    PROTO_BARRIER(); /* buf is read only after `held` was seen set */
    rx->taken = 1u;
    return check_frame(rx, out);
}

void proto_rx_release(proto_rx_t *rx)
{
    if (!rx->taken) { /* nothing held was taken (an over-long frame's report): keep what is held */
        return;
    }
    rx->taken = 0u;
    rx->n = 0u;
    PROTO_BARRIER(); /* done with buf before put() may write it again */
    rx->held = 0u;
}

int proto_rx_byte(proto_rx_t *rx, uint8_t byte, proto_frame_t *out)
{
    int r;
    proto_rx_put(rx, byte);
    r = proto_rx_take(rx, out);
    if (r != PROTO_RX_MORE) {
        proto_rx_release(rx);
    }
    return r;
}

size_t proto_encode(uint8_t type, uint8_t seq, const uint8_t *payload, uint16_t len, uint8_t *dst)
{
    /* Encode the body byte by byte without building it first: COBS needs each block's
     * length, so the code byte of the open block is patched when the block closes. */
    uint8_t hdr[PROTO_HEADER_BYTES];
    uint8_t crc_bytes[PROTO_CRC_BYTES];
    uint16_t crc = (uint16_t)PROTO_CRC_INIT;
    size_t code_at = 0u;
    size_t o = 1u;
    uint8_t code = 1u;
    uint32_t i;
    const uint32_t total = PROTO_HEADER_BYTES + (uint32_t)len + PROTO_CRC_BYTES;

    hdr[0] = type;
    hdr[1] = seq;
    put_u16(hdr + 2, len);
    for (i = 0; i < total; ++i) {
        uint8_t b;
        if (i < PROTO_HEADER_BYTES) {
            b = hdr[i];
        } else if (i < PROTO_HEADER_BYTES + len) {
            b = payload[i - PROTO_HEADER_BYTES];
        } else {
            if (i == PROTO_HEADER_BYTES + len) {
                put_u16(crc_bytes, crc);
            }
            b = crc_bytes[i - PROTO_HEADER_BYTES - len];
        }
        if (i < PROTO_HEADER_BYTES + (uint32_t)len) {
            int k;
            crc = (uint16_t)(crc ^ ((uint16_t)b << 8));
            for (k = 0; k < 8; ++k) {
                crc = (crc & 0x8000u) != 0u ? (uint16_t)((crc << 1) ^ PROTO_CRC_POLY) : (uint16_t)(crc << 1);
            }
        }
        if (b == 0u) {
            dst[code_at] = code;
            code_at = o++;
            code = 1u;
        } else {
            dst[o++] = b;
            ++code;
            if (code == 0xFFu) {
                dst[code_at] = code;
                code_at = o++;
                code = 1u;
            }
        }
    }
    dst[code_at] = code;
    dst[o++] = 0u;
    return o;
}
