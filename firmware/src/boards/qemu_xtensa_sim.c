/*
 * qemu_xtensa_sim.c - board hooks for QEMU's Xtensa `sim` machine with an lx106 core (the
 * ESP8266's core, from the ESP32's ISA family), 128 KB of RAM.
 *
 * Serial: the sim machine has no UART; its console is the semihosting channel (`simcall`:
 * read from fd 0, write to fd 1, i.e. QEMU's stdin and stdout, a pipe to the host). A read
 * blocks until bytes arrive, so board_uart_wait() does the reading into a small buffer and
 * board_uart_read() hands them out; nothing is lost while the network computes (the bytes
 * wait in the pipe). Counter: CCOUNT, the core's cycle counter, which QEMU derives from
 * virtual time: under -icount shift=0 (1 ns per instruction) at the core's 40 MHz it ticks
 * once per 25 instructions (unit TIMER at counter_hz 40 MHz). No interrupts: the quiet
 * sections need nothing. Exit: simcall SYS_exit with the code.
 */
#include <stdint.h>

#include "board.h"

#define SIMCALL_EXIT 1
#define SIMCALL_READ 3
#define SIMCALL_WRITE 4

const board_info_t board_info = {"qemu-xtensa-sim-lx106", BOARD_COUNTER_TIMER, 40000000u};

static uint8_t rx_buf[64];
static uint32_t rx_head, rx_count;

static int32_t simcall(int32_t nr, int32_t a, int32_t b, int32_t c)
{
    register int32_t a2 __asm__("a2") = nr;
    register int32_t a3 __asm__("a3") = a;
    register int32_t a4 __asm__("a4") = b;
    register int32_t a5 __asm__("a5") = c;
    __asm__ volatile("simcall" : "+r"(a2), "+r"(a3) : "r"(a4), "r"(a5) : "memory");
    return a2;
}

void board_init(void)
{
    rx_head = 0u;
    rx_count = 0u;
}

void board_uart_write(const uint8_t *buf, size_t n)
{
    while (n > 0u) {
        const int32_t w = simcall(SIMCALL_WRITE, 1, (int32_t)(uintptr_t)buf, (int32_t)n);
        if (w <= 0) {
            board_exit(EXIT_FAULT); /* the host closed the console */
        }
        buf += w;
        n -= (size_t)w;
    }
}

int board_uart_read(uint8_t *byte)
{
    if (rx_count == 0u) {
        return 0;
    }
    *byte = rx_buf[rx_head++];
    --rx_count;
    return 1;
}

uint32_t board_uart_rx_dropped(void)
{
    return 0u; /* the pipe holds what the firmware has not read yet: nothing is dropped */
}

void board_uart_wait(void)
{
    if (rx_count == 0u) {
        const int32_t r = simcall(SIMCALL_READ, 0, (int32_t)(uintptr_t)rx_buf, (int32_t)sizeof(rx_buf));
        if (r <= 0) {
            board_exit(EXIT_OK); /* end of input: the host is gone */
        }
        rx_head = 0u;
        rx_count = (uint32_t)r;
    }
}

void board_quiet_begin(void)
{
    /* no interrupts on this board */
}

void board_quiet_end(void)
{
}

uint32_t board_counter(void)
{
    uint32_t c;
    __asm__ volatile("rsr %0, ccount" : "=r"(c));
    return c;
}

void board_exit(int code)
{
    (void)simcall(SIMCALL_EXIT, code, 0, 0);
    for (;;) {
    }
}
