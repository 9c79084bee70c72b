/*
 * uart_ring.h - single-producer / single-consumer byte ring between the UART receive
 * interrupt (producer) and the main loop (consumer). No locks: the interrupt only writes
 * `head`, the main loop only writes `tail`; both are aligned 32-bit words, which a
 * single-core MCU reads and writes atomically. Size is a power of two.
 */
#ifndef UART_RING_H
#define UART_RING_H

#include <stdint.h>

#define UART_RING_SIZE 2048u /* must be a power of two */

typedef struct {
    volatile uint8_t buf[UART_RING_SIZE];
    volatile uint32_t head;    /* next write (interrupt) */
    volatile uint32_t tail;    /* next read (main loop) */
    volatile uint32_t dropped; /* bytes lost because the ring was full */
} uart_ring_t;

/* Interrupt side: store a byte or count it as dropped. */
static inline void uart_ring_put(uart_ring_t *r, uint8_t b)
{
    const uint32_t h = r->head;
    if (h - r->tail >= UART_RING_SIZE) {
        r->dropped = r->dropped + 1u;
        return;
    }
    r->buf[h & (UART_RING_SIZE - 1u)] = b;
    r->head = h + 1u;
}

/* Main-loop side: 1 and the oldest byte, or 0 when empty. */
static inline int uart_ring_get(uart_ring_t *r, uint8_t *b)
{
    const uint32_t t = r->tail;
    if (t == r->head) {
        return 0;
    }
    *b = r->buf[t & (UART_RING_SIZE - 1u)];
    r->tail = t + 1u;
    return 1;
}

static inline int uart_ring_empty(const uart_ring_t *r)
{
    return r->tail == r->head;
}

#endif /* UART_RING_H */
