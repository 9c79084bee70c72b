/*
 * main.c - the firmware's receive loop: board start-up, then every received byte goes to
 * the application (app.c); an RX ring overflow is reported once per change.
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
        if (!board_uart_read(&b)) {
            board_uart_wait();
            continue;
        }
        app_rx_byte(b);
    }
}
