/*
 * proto_limits.h - the largest request this firmware accepts, and its buffers' sizes.
 *
 * The protocol allows payloads of up to PROTO_MAX_PAYLOAD (1024) bytes; a device announces
 * the largest it accepts in IDENT (max payload) and the host sends no more (docs/protocol.md).
 * PROTO_RX_MAX_PAYLOAD is that limit: PROTO_MAX_PAYLOAD unless the build sets it lower
 * (firmware/scripts/pio_pre.py: one hop of PCM, 640 bytes, for an audio model), which sizes
 * the request frame buffer and the UART receive ring to what the firmware needs.
 */
#ifndef PROTO_LIMITS_H
#define PROTO_LIMITS_H

#include "proto_spec.h"

#ifndef PROTO_RX_MAX_PAYLOAD
#define PROTO_RX_MAX_PAYLOAD PROTO_MAX_PAYLOAD
#endif
#define PROTO_RX_MAX_BODY (PROTO_HEADER_BYTES + PROTO_RX_MAX_PAYLOAD + PROTO_CRC_BYTES)
/* COBS: one code byte per started block of 254, without the 0x00 delimiter */
#define PROTO_RX_MAX_ENCODED (PROTO_RX_MAX_BODY + PROTO_RX_MAX_BODY / 254u + 1u)

typedef char proto_rx_max_payload_in_range[(PROTO_RX_MAX_PAYLOAD >= 16u && PROTO_RX_MAX_PAYLOAD <= PROTO_MAX_PAYLOAD) ? 1 : -1];

#endif /* PROTO_LIMITS_H */
