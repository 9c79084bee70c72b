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

#define PROTO_RX_MORE 0       /* proto_rx_byte: need more bytes */
#define PROTO_RX_FRAME (-1)   /* proto_rx_byte: a valid frame is in *out */

typedef struct {
    uint8_t type;
    uint8_t seq;
    uint16_t len;
    uint16_t crc;           /* the frame's CRC (tells a re-sent request from a new one) */
    const uint8_t *payload; /* points into the receiver's buffer, valid until the next byte */
} proto_frame_t;

typedef struct {
    uint8_t buf[PROTO_RX_MAX_ENCODED]; /* the largest request this firmware accepts (proto_limits.h) */
    uint16_t n;
    uint8_t skipping; /* after an over-long frame: drop bytes until the next 0x00 */
} proto_rx_t;

uint16_t proto_crc16(const uint8_t *p, size_t n);

void proto_rx_init(proto_rx_t *rx);

/* Drop the frame being received (e.g. after an RX ring overflow): resync at the next 0x00. */
void proto_rx_resync(proto_rx_t *rx);

/*
 * Feed one received byte. Returns PROTO_RX_MORE, PROTO_RX_FRAME (frame in *out), or a
 * positive ERR_* code for a frame that was dropped; *out then carries its type and seq
 * as far as they could be read (0 when not). Empty frames (0x00 0x00) are skipped.
 */
int proto_rx_byte(proto_rx_t *rx, uint8_t byte, proto_frame_t *out);

/* Encode one frame into dst (PROTO_MAX_ENCODED + 1 bytes); returns its length. */
size_t proto_encode(uint8_t type, uint8_t seq, const uint8_t *payload, uint16_t len, uint8_t *dst);

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
