/*
 * board.h - the few hooks a board provides; everything else in the firmware is portable.
 *
 * One C file per board implements these (firmware/src/boards/<board>.c, selected by
 * build_src_filter in platformio.ini). Cortex-M boards share the startup code, the
 * vector table and the memory report (firmware/src/cortex_m/).
 *
 * Serial, two kinds of board: a polled UART hands the main loop one byte at a time
 * (board_uart_read); an interrupt-driven one puts each byte into the application's receiver
 * from its receive interrupt (proto_rx_put(&app_rx, b), firmware/src/proto.h: one frame
 * buffer, no ring) and its board_uart_read() returns 0 (the Cortex-M boards:
 * firmware/src/cortex_m/rx_irq.c).
 */
#ifndef BOARD_H
#define BOARD_H

#include <stddef.h>
#include <stdint.h>

/* What board_counter() counts (BOARD_COUNTER_INSTRUCTIONS / _CYCLES) and the exit codes
 * (EXIT_*): proto_spec.h, generated from qsnnkit/spec.py. */
#include "proto_spec.h"

/* Longest board name IDENT carries (a longer one is cut there; tests check every board's). */
#define BOARD_NAME_MAX 48u

typedef struct {
    const char *name;       /* board name reported in IDENT (at most BOARD_NAME_MAX characters) */
    uint8_t counter_unit;   /* BOARD_COUNTER_* */
    uint32_t counter_hz;    /* core clock for cycles; 0 for instructions */
} board_info_t;

extern const board_info_t board_info;

/* Clocks, UART (with its RX interrupt), counter. Called once, first thing in main(). */
void board_init(void);

/* Send n bytes; returns when they are handed to the UART (blocking, polled TX). */
void board_uart_write(const uint8_t *buf, size_t n);

/* Polled UART: 1 and the next received byte, or 0 when none has arrived; never blocks.
 * Interrupt-driven: always 0 (the interrupt delivers), after letting the receive interrupt
 * in again if it was held off while a frame was held. */
int board_uart_read(uint8_t *byte);

/* Bytes lost since boot (UART overruns; 0 when the host obeys the window). */
uint32_t board_uart_rx_dropped(void);

/* Wait for input: sleep until an interrupt unless the receiver holds something (no lost
 * wake-up); a polled board may read ahead here or return at once. */
void board_uart_wait(void);

/* Enter / leave a measured section: no interrupt runs between the two (a receive interrupt
 * stays pending until board_quiet_end()), so counter differences inside are exact and
 * reproducible even when the host re-sends a request while the device computes. Boards
 * without receive interrupts (polled UART) do nothing. */
void board_quiet_begin(void);
void board_quiet_end(void);

/* Free-running 32-bit counter (wraps; differences of uint32_t are exact). */
uint32_t board_counter(void);

/* End the program: QEMU exits with `code` (semihosting); a real chip resets. */
void board_exit(int code) __attribute__((noreturn));

/* Memory report, from linker symbols and stack painting (see docs/firmware.md). */
uint32_t board_static_ram_bytes(void); /* .data + .bss */
uint32_t board_flash_bytes(void);      /* vectors + code + constants + .data image */
uint32_t board_stack_peak_bytes(void); /* deepest stack use since reset (painted stack) */
uint32_t board_stack_size_bytes(void); /* stack reserved by the linker script */

#endif /* BOARD_H */
