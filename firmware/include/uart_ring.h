/*
 * uart_ring.h - single-producer / single-consumer byte ring between the UART receive
 * interrupt (producer) and the main loop (consumer). No locks: the interrupt only writes
 * `head` and `head_i`, the main loop only `tail` and `tail_i`; aligned words and halfwords,
 * which a single-core MCU reads and writes atomically.
 */
#ifndef UART_RING_H
#define UART_RING_H

#include <stdint.h>

#include "proto_limits.h"

/* One whole request frame, its delimiter included. The host keeps one request outstanding
 * (PROTO_RX_WINDOW), but an emulated UART can deliver a frame faster than the main loop takes
 * it (QEMU's nRF51 model does: a 256-byte ring overflowed there), so the ring holds a frame.
 * A host that ignores the window gets RX_OVERFLOW, not lost data. Not a power of two: the
 * indices wrap by comparison (no division, which the Cortex-M0 lacks). */
#define UART_RING_SIZE (PROTO_RX_MAX_ENCODED + 1u)

typedef struct {
    volatile uint8_t buf[UART_RING_SIZE];
    volatile uint32_t head;    /* bytes ever written (interrupt) */
    volatile uint32_t tail;    /* bytes ever read (main loop) */
    volatile uint16_t head_i;  /* next write index (interrupt) */
    volatile uint16_t tail_i;  /* next read index (main loop) */
    volatile uint32_t dropped; /* bytes lost because the ring was full */
} uart_ring_t;

/* Interrupt side: store a byte or count it as dropped. */
static inline void uart_ring_put(uart_ring_t *r, uint8_t b)
{
    const uint32_t h = r->head;
    const uint16_t i = r->head_i;
    if (h - r->tail >= UART_RING_SIZE) {
        r->dropped = r->dropped + 1u;
        return;
    }
    r->buf[i] = b;
    r->head_i = (uint16_t)(i + 1u == UART_RING_SIZE ? 0u : i + 1u);
    r->head = h + 1u;
}

/* Main-loop side: 1 and the oldest byte, or 0 when empty. */
static inline int uart_ring_get(uart_ring_t *r, uint8_t *b)
{
    const uint32_t t = r->tail;
    const uint16_t i = r->tail_i;
    if (t == r->head) {
        return 0;
    }
    *b = r->buf[i];
    r->tail_i = (uint16_t)(i + 1u == UART_RING_SIZE ? 0u : i + 1u);
    r->tail = t + 1u;
    return 1;
}

static inline int uart_ring_empty(const uart_ring_t *r)
{
    return r->tail == r->head;
}

#endif /* UART_RING_H */
