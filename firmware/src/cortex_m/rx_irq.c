/*
 * rx_irq.c - the serial hooks shared by the Cortex-M boards whose UART receive interrupt puts
 * each byte straight into the application's receiver (app_rx, proto.h): there is no RX ring,
 * the frame buffer the main loop decodes in place is the only copy. While a whole frame is
 * held for the main loop the interrupt leaves further bytes in the UART and switches itself
 * off (cortex_m_rx_hold); board_uart_read() switches it on again once the frame is released.
 * Also the dropped count, wait, and the quiet sections that keep that interrupt out of a
 * measurement.
 */
#include <stdint.h>

#include "board.h"
#include "cortex_m.h" /* and ../app.h: app_rx */

static volatile uint32_t held_irq; /* the interrupt switched off, plus one; 0: none */

int cortex_m_rx_hold(uint32_t irqn)
{
    if (!app_rx.held) {
        return 0;
    }
    nvic_disable_irq(irqn); /* the byte stays in the UART (its line stays high: pending again once enabled) */
    held_irq = irqn + 1u;
    return 1;
}

int board_uart_read(uint8_t *byte)
{
    (void)byte; /* the receive interrupt puts bytes into app_rx itself */
    if (held_irq != 0u && !app_rx.held) {
        const uint32_t irqn = held_irq - 1u;
        held_irq = 0u;
        nvic_enable_irq(irqn);
    }
    return 0;
}

uint32_t board_uart_rx_dropped(void)
{
    return app_rx.dropped;
}

void board_uart_wait(void)
{
    irq_disable();
    if (!proto_rx_pending(&app_rx)) {
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
