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

/* ---- AUDIO and AUDIO_PACKED samples ------------------------------------------------------- */

#define AUDIO_BAD 0x7FFFFFFF /* proto_audio_decode: not a valid code or sample */

/* m (<= 18) bits, MSB first, or -1 past the end. */
static int32_t audio_bits(proto_audio_t *a, uint32_t m)
{
    uint32_t v = 0u;
    if (a->pos + m > a->nbits) {
        return -1;
    }
    for (; m != 0u; --m, ++a->pos) {
        v = (v << 1) | (((uint32_t)a->p[a->pos >> 3] >> (7u - (a->pos & 7u))) & 1u);
    }
    return (int32_t)v;
}

/* The next packed sample, or AUDIO_BAD. */
static int32_t audio_decode(proto_audio_t *a)
{
    uint32_t q = 0u, u;
    int32_t r, x, v;
    for (;;) { /* the unary part: q one bits and a zero, or PCM_PACK_ESCAPE_Q ones */
        const int32_t b = audio_bits(a, 1u);
        if (b < 0) {
            return AUDIO_BAD;
        }
        if (b == 0 || ++q == PCM_PACK_ESCAPE_Q) {
            break;
        }
    }
    if (q < PCM_PACK_ESCAPE_Q) {
        v = audio_bits(a, a->k);
        if (v < 0) {
            return AUDIO_BAD;
        }
        u = (q << a->k) | (uint32_t)v;
    } else {
        v = audio_bits(a, PCM_PACK_RAW_BITS);
        if (v < 0 || ((uint32_t)v >> a->k) < PCM_PACK_ESCAPE_Q) { /* one encoding per value */
            return AUDIO_BAD;
        }
        u = (uint32_t)v;
    }
    r = (int32_t)(u >> 1) ^ -(int32_t)(u & 1u); /* un-zigzag */
    x = r + (a->order == 0u ? 0 : (a->order == 1u ? a->x1 : 2 * a->x1 - a->x2));
    if (x < -32768 || x > 32767) {
        return AUDIO_BAD;
    }
    a->x2 = a->x1;
    a->x1 = x;
    return x;
}

uint32_t proto_audio_open(proto_audio_t *a, uint8_t type, const uint8_t *payload, uint32_t len, uint32_t max_samples)
{
    uint32_t n, i;
    a->p = payload;
    a->pos = 0u;
    a->x1 = 0;
    a->x2 = 0;
    a->order = 0u;
    a->k = 0u;
    a->nbits = 0u;
    if (type == MSG_AUDIO) {
        a->packed = 0u;
        n = len / 2u;
        return (len & 1u) == 0u && n >= 1u && n <= max_samples ? n : 0u;
    }
    if (type != MSG_AUDIO_PACKED || len < AUDIO_PACKED_HEAD_BYTES) {
        return 0u;
    }
    n = get_u16(payload + AUDIO_PACKED_OFF_N_SAMPLES);
    a->packed = 1u;
    a->order = payload[AUDIO_PACKED_OFF_ORDER];
    a->k = payload[AUDIO_PACKED_OFF_K];
    a->p = payload + AUDIO_PACKED_HEAD_BYTES;
    a->nbits = 8u * (len - AUDIO_PACKED_HEAD_BYTES);
    if (n < 1u || n > max_samples || a->order > PCM_PACK_MAX_ORDER || a->k > PCM_PACK_MAX_K) {
        return 0u;
    }
    for (i = 0; i < n; ++i) { /* a first pass checks every code and sample */
        if (audio_decode(a) == AUDIO_BAD) {
            return 0u;
        }
    }
    if (a->nbits - a->pos >= 8u) { /* whole bytes after the last code */
        return 0u;
    }
    while (a->pos < a->nbits) { /* the padding is zero bits */
        if (audio_bits(a, 1u) != 0) {
            return 0u;
        }
    }
    a->pos = 0u; /* then proto_audio_next decodes again from the start */
    a->x1 = 0;
    a->x2 = 0;
    return n;
}

int16_t proto_audio_next(proto_audio_t *a)
{
    if (!a->packed) {
        const int32_t v = (int32_t)get_u16(a->p + 2u * a->pos++);
        return (int16_t)(v >= 32768 ? v - 65536 : v);
    }
    return (int16_t)audio_decode(a); /* checked by proto_audio_open */
}
