/*
 * main.c - the firmware's receive loop: board start-up, then requests to the application
 * (app.c). A polled board hands over bytes (board_uart_read); an interrupt-driven one puts
 * them into the application's receiver from its receive interrupt, and the loop handles each
 * frame it holds (app_rx_poll). Dropped bytes are reported once per change.
 */
#include <stdint.h>

#include "app.h"
#include "board.h"

int main(void)
{
    uint32_t dropped_seen = 0u;
    board_init();
    app_init();
    for (;;) {
        uint8_t b;
        const uint32_t dropped = board_uart_rx_dropped();
        if (dropped != dropped_seen) {
            dropped_seen = dropped;
            app_rx_dropped(dropped);
        }
        if (board_uart_read(&b)) {
            app_rx_byte(b);
        } else if (!app_rx_poll()) {
            board_uart_wait();
        }
    }
}
