/*
 * app.h - the firmware's application (protocol session, front end, network), independent
 * of the board: main.c feeds it bytes on a device, the fuzz harnesses on the host.
 */
#ifndef APP_H
#define APP_H

#include <stdint.h>

/* Check the compiled-in model, set up the network state and the receiver. After board_init(). */
void app_init(void);

/* Forget the session (receiver state, clip in progress) and keep the checked model and state:
 * the device as app_init() left it. The fuzz harnesses start every input from here. */
void app_reset(void);

/* One byte from the serial line: framing, then the message handlers (replies via board.h). */
void app_rx_byte(uint8_t b);

/* The board's RX ring dropped bytes (`dropped`: total since boot): resynchronise, abandon the
 * clip in progress and report RX_OVERFLOW. */
void app_rx_dropped(uint32_t dropped);

#endif /* APP_H */
