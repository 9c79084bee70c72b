/*
 * proto.h - device side of the qsnnkit serial protocol (docs/protocol.md;
 * the host side is qsnnkit/protocol.py, and tests check both against the same vectors).
 *
 * A frame on the wire is COBS(body) followed by one 0x00 byte; body is
 *   type u8 | seq u8 | len u16 LE | payload[len] | crc u16 LE
 * with crc = CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor)
 * over type..payload. "123456789" -> 0x29B1.
 */
#ifndef PROTO_H
#define PROTO_H

#include <stddef.h>
#include <stdint.h>

/* Version, payload limit, message ids, error codes and message layouts (offsets, sizes):
 * proto_spec.h, generated from qsnnkit/spec.py (their one definition). */
#include "proto_spec.h"
#include "proto_limits.h"

#define PROTO_RX_MORE 0       /* proto_rx_byte / proto_rx_take: need more bytes */
#define PROTO_RX_FRAME (-1)   /* proto_rx_byte / proto_rx_take: a valid frame is in *out */

typedef struct {
    uint8_t type;
    uint8_t seq;
    uint16_t len;
    uint16_t crc;           /* the frame's CRC (tells a re-sent request from a new one) */
    const uint8_t *payload; /* points into the receiver's buffer, valid until proto_rx_release */
} proto_frame_t;

/*
 * The request receiver: one buffer for the frame being received, decoded in place once its
 * 0x00 arrives; there is no second copy of a frame in RAM. Bytes go in with proto_rx_put():
 * from the UART receive interrupt on boards that have one, from the main loop on polled
 * ones. A complete frame is held until the main loop has taken (proto_rx_take) and handled
 * it and called proto_rx_release(); an interrupt-driven board leaves bytes in its UART while
 * a frame is held (board_uart_rx_resume() lets them in again), so nothing is lost on a line
 * that keeps the protocol's window. A byte put while a frame is held is counted in
 * `dropped`, as is a UART overrun.
 *
 * put() runs in the interrupt and take()/release() in the main loop; they share only `n`,
 * `held`, `too_long` (aligned, so read and written atomically by a single-core MCU), and
 * put() writes `buf` only while no frame is held.
 */
typedef struct {
    uint8_t buf[PROTO_RX_MAX_ENCODED]; /* the largest request this firmware accepts (proto_limits.h) */
    volatile uint16_t n;               /* bytes of the frame being received */
    volatile uint8_t held;             /* 1: buf holds a whole frame, not yet released */
    volatile uint8_t skipping;         /* after an over-long frame: drop bytes until the next 0x00 */
    volatile uint32_t too_long;        /* over-long frames received (put) */
    uint32_t too_long_seen;            /* ... of which take() has reported */
    uint8_t taken;                     /* take() returned the held frame: release() frees it */
    volatile uint32_t dropped;         /* bytes lost: put while a frame was held, or UART overruns */
} proto_rx_t;

uint16_t proto_crc16(const uint8_t *p, size_t n);

void proto_rx_init(proto_rx_t *rx);

/* Drop the frame being received or held (e.g. after lost bytes): resync at the next 0x00. */
void proto_rx_resync(proto_rx_t *rx);

#if defined(__GNUC__)
#define PROTO_BARRIER() __asm__ __volatile__("" ::: "memory")
#else
#define PROTO_BARRIER() ((void)0)
#endif

/* One received byte (interrupt-safe, a few instructions): stored, or at a 0x00 the frame is
 * held for the main loop; empty frames (0x00 0x00) are skipped. */
static inline void proto_rx_put(proto_rx_t *rx, uint8_t byte)
{
    uint32_t n;
    if (rx->held) {
        rx->dropped = rx->dropped + 1u;
        return;
    }
    n = rx->n;
    if (byte == 0u) {
        if (rx->skipping) {
            rx->skipping = 0u;
        } else if (n != 0u) {
            PROTO_BARRIER(); /* the frame's bytes are in buf before it is marked held */
            rx->held = 1u;
        }
        return;
    }
    if (rx->skipping) {
        return;
    }
    if (n >= PROTO_RX_MAX_ENCODED) { /* no delimiter within the longest frame: TOO_LONG, skip to the next 0x00 */
        rx->n = 0u;
        rx->skipping = 1u;
        rx->too_long = rx->too_long + 1u;
        return;
    }
    rx->buf[n] = byte;
    rx->n = (uint16_t)(n + 1u);
}

/* 1 when take() has something to return (a held frame or an unreported over-long one). */
static inline int proto_rx_pending(const proto_rx_t *rx)
{
    return rx->held || rx->too_long != rx->too_long_seen;
}

/*
 * Main loop: PROTO_RX_MORE (nothing yet), PROTO_RX_FRAME (the held frame, decoded in place,
 * in *out), or a positive ERR_* code for a frame that was dropped; *out then carries its type
 * and seq as far as they could be read (0 when not). After anything but PROTO_RX_MORE call
 * proto_rx_release() once done with *out (it frees the held frame take() returned, if any).
 */
int proto_rx_take(proto_rx_t *rx, proto_frame_t *out);

/* The held frame is done with: the receiver takes bytes for the next one. */
void proto_rx_release(proto_rx_t *rx);

/*
 * Feed one received byte and take what it completes, released at once (the payload stays
 * readable until the next byte): PROTO_RX_MORE, PROTO_RX_FRAME (frame in *out), or a
 * positive ERR_* code as proto_rx_take. For polled lines, tests and the host-side fuzzers.
 */
int proto_rx_byte(proto_rx_t *rx, uint8_t byte, proto_frame_t *out);

/* Encode one frame into dst (PROTO_MAX_ENCODED + 1 bytes); returns its length. The payload
 * may lie in dst itself, PROTO_ENCODE_IN_PLACE_AT(len) bytes in or further: body byte i is
 * read before the encoder writes past dst[i + 1 + i / 254] (one code byte per block started),
 * so it is never overwritten before it is read. */
#define PROTO_ENCODE_IN_PLACE_AT(max_len) \
    (PROTO_HEADER_BYTES + 2u + (PROTO_HEADER_BYTES + (uint32_t)(max_len) + PROTO_CRC_BYTES) / 254u)
size_t proto_encode(uint8_t type, uint8_t seq, const uint8_t *payload, uint16_t len, uint8_t *dst);

/*
 * The samples of an AUDIO or AUDIO_PACKED payload, one at a time (AUDIO_PACKED: the format is
 * defined in qsnnkit/pcm_pack.py; docs/protocol.md). proto_audio_open checks the whole payload
 * first (a packed one is decoded once to check it), so that a request is refused before any
 * of its samples is used: it returns the number of samples (1..max_samples), or 0 when the
 * payload is not valid for its type. proto_audio_next then gives them in order.
 */
typedef struct {
    const uint8_t *p; /* AUDIO: the samples; AUDIO_PACKED: the Rice codes */
    uint32_t nbits;   /* bits of Rice codes */
    uint32_t pos;     /* next sample (AUDIO) or bit (AUDIO_PACKED) */
    uint8_t packed, order, k;
    int32_t x1, x2; /* the last two samples (the predictor's) */
} proto_audio_t;

uint32_t proto_audio_open(proto_audio_t *a, uint8_t type, const uint8_t *payload, uint32_t len, uint32_t max_samples);
int16_t proto_audio_next(proto_audio_t *a);

/* Little-endian helpers */
static inline void put_u16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void put_u32(uint8_t *p, uint32_t v)
{
    put_u16(p, v);
    put_u16(p + 2, v >> 16);
}

static inline void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t get_u16(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

static inline uint32_t get_u32(const uint8_t *p)
{
    return get_u16(p) | (get_u16(p + 2) << 16);
}

#endif /* PROTO_H */
