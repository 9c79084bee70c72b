/*
 * app.h - the firmware's application (protocol session, front end, network), independent
 * of the board: main.c feeds it bytes on a device, the fuzz harnesses on the host.
 */
#ifndef APP_H
#define APP_H

#include <stdint.h>

#include "proto.h"

/* Check the compiled-in model, set up the network state and the receiver. After board_init(). */
void app_init(void);

/* Forget the session (receiver state, clip in progress) and keep the checked model and state:
 * the device as app_init() left it. The fuzz harnesses start every input from here. */
void app_reset(void);

/* The request receiver (proto.h): a board's UART receive interrupt puts bytes into it with
 * proto_rx_put(); a polled board hands them to app_rx_byte(). */
extern proto_rx_t app_rx;

/* One byte from a polled serial line (and the host-side fuzzers): into app_rx, then
 * app_rx_poll(). */
void app_rx_byte(uint8_t b);

/* Handle what app_rx holds, if anything: a complete frame (the message handlers, replies via
 * board.h) or a receive error; then release it. 1 if something was handled. */
int app_rx_poll(void);

/* The line dropped bytes (`dropped`: total since boot): resynchronise, abandon the clip in
 * progress and report RX_OVERFLOW. */
void app_rx_dropped(uint32_t dropped);

#endif /* APP_H */
