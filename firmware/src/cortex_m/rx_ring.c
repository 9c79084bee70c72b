/*
 * rx_ring.c - the serial hooks shared by the Cortex-M boards whose UART receive interrupt
 * fills cortex_m_rx_ring (firmware/include/uart_ring.h): read, dropped count, wait, and the
 * quiet sections that keep that interrupt out of a measurement.
 */
#include <stdint.h>

#include "board.h"
#include "cortex_m.h"

uart_ring_t cortex_m_rx_ring;

int board_uart_read(uint8_t *byte)
{
    return uart_ring_get(&cortex_m_rx_ring, byte);
}

uint32_t board_uart_rx_dropped(void)
{
    return cortex_m_rx_ring.dropped;
}

void board_uart_wait(void)
{
    irq_disable();
    if (uart_ring_empty(&cortex_m_rx_ring)) {
        wait_for_interrupt();
    }
    irq_enable();
}

void board_quiet_begin(void)
{
    irq_disable();
}

void board_quiet_end(void)
{
    irq_enable();
}
