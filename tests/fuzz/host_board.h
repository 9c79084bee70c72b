/*
 * host_board.h - board.h's hooks on the host, for the fuzz harnesses: what the device sends
 * goes to a callback, the counter counts calls, board_exit() jumps back to the harness.
 */
#ifndef HOST_BOARD_H
#define HOST_BOARD_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "board.h"

typedef void (*host_board_sink_t)(const uint8_t *buf, size_t n);

/* Where board_exit() returns to (setjmp it before app_init). */
extern jmp_buf host_board_exit_jmp;

/* Start a fresh board whose UART output goes to `sink`. */
void host_board_reset(host_board_sink_t sink);

#endif /* HOST_BOARD_H */
