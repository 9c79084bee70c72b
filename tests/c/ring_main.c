/* ring_main.c - firmware/include/uart_ring.h on the host: fill, overflow, drain, wrap.
 * Prints "ok" or the first failed check; tests/test_firmware_build.py runs it. */
#include <stdio.h>

#include "uart_ring.h"

#define CHECK(c)                                       \
    do {                                               \
        if (!(c)) {                                    \
            printf("failed line %d: %s\n", __LINE__, #c); \
            return 1;                                  \
        }                                              \
    } while (0)

static uart_ring_t r;

int main(void)
{
    uint32_t i;
    uint32_t round;
    uint8_t b;
    CHECK(uart_ring_empty(&r) && !uart_ring_get(&r, &b));
    for (i = 0; i < UART_RING_SIZE + 5u; ++i) { /* one request frame fits, the rest is dropped */
        uart_ring_put(&r, (uint8_t)(i * 7u));
    }
    CHECK(r.dropped == 5u);
    for (i = 0; i < UART_RING_SIZE; ++i) {
        CHECK(uart_ring_get(&r, &b) && b == (uint8_t)(i * 7u));
    }
    CHECK(uart_ring_empty(&r) && !uart_ring_get(&r, &b));
    for (round = 0; round < 5u; ++round) { /* indices wrap at a size that is not a power of two */
        for (i = 0; i < 700u; ++i) {
            uart_ring_put(&r, (uint8_t)(i + round));
        }
        for (i = 0; i < 700u; ++i) {
            CHECK(uart_ring_get(&r, &b) && b == (uint8_t)(i + round));
        }
    }
    CHECK(r.dropped == 5u && uart_ring_empty(&r) && r.head_i < UART_RING_SIZE && r.tail_i == r.head_i);
    printf("ok\n");
    return 0;
}
