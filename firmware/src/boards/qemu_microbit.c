/*
 * qemu_microbit.c - board hooks for QEMU's `microbit` machine: the BBC micro:bit v1's
 * nRF51822, a Cortex-M0 (ARMv6-M: no DSP extension, no hardware divide, 16 KB of RAM).
 *
 * Serial: UART0 (0x40002000), its RX interrupt writing the frame buffer; QEMU does not model
 * the baud rate or the pins, which are set as on the real board (TX P0.24, RX P0.25, 115200).
 * Counter: TIMER0 (0x40008000) in 32-bit timer mode at 16 MHz, read by a capture task. Under
 * QEMU's -icount shift=0 every instruction advances virtual time by 1 ns, so one tick is 62.5
 * instructions: the counter unit is TIMER at 16 MHz (docs/firmware.md). Exit: semihosting.
 */
#include <stdint.h>

#include "board.h"
#include "../cortex_m/cortex_m.h"

#define UART0_BASE 0x40002000u
#define UART0_IRQN 2u
#define UART_STARTRX REG32(UART0_BASE + 0x000u)
#define UART_STARTTX REG32(UART0_BASE + 0x008u)
#define UART_RXDRDY REG32(UART0_BASE + 0x108u)
#define UART_TXDRDY REG32(UART0_BASE + 0x11Cu)
#define UART_INTENSET REG32(UART0_BASE + 0x304u)
#define UART_ENABLE REG32(UART0_BASE + 0x500u)
#define UART_PSELTXD REG32(UART0_BASE + 0x50Cu)
#define UART_PSELRXD REG32(UART0_BASE + 0x514u)
#define UART_RXD REG32(UART0_BASE + 0x518u)
#define UART_TXD REG32(UART0_BASE + 0x51Cu)
#define UART_BAUDRATE REG32(UART0_BASE + 0x524u)
#define UART_INT_RXDRDY (1u << 2)

#define TIMER0_BASE 0x40008000u
#define TIMER_START REG32(TIMER0_BASE + 0x000u)
#define TIMER_CAPTURE0 REG32(TIMER0_BASE + 0x040u)
#define TIMER_MODE REG32(TIMER0_BASE + 0x504u)
#define TIMER_BITMODE REG32(TIMER0_BASE + 0x508u)
#define TIMER_PRESCALER REG32(TIMER0_BASE + 0x510u)
#define TIMER_CC0 REG32(TIMER0_BASE + 0x540u)

const board_info_t board_info = {"qemu-microbit-nrf51822", BOARD_COUNTER_TIMER, 16000000u};

void board_init(void)
{
    TIMER_MODE = 0u;      /* timer */
    TIMER_BITMODE = 3u;   /* 32 bit */
    TIMER_PRESCALER = 0u; /* 16 MHz */
    TIMER_START = 1u;
    UART_PSELTXD = 24u;
    UART_PSELRXD = 25u;
    UART_BAUDRATE = 0x01D7E000u; /* 115200 */
    UART_ENABLE = 4u;
    UART_INTENSET = UART_INT_RXDRDY;
    UART_STARTTX = 1u;
    UART_STARTRX = 1u;
    nvic_enable_irq(UART0_IRQN);
    irq_enable();
}

void cortex_m_irq(uint32_t irqn)
{
    if (irqn == UART0_IRQN) {
        while (UART_RXDRDY != 0u && !cortex_m_rx_hold(irqn)) {
            UART_RXDRDY = 0u; /* clear the event before reading: a byte arriving now raises it again */
            proto_rx_put(&app_rx, (uint8_t)UART_RXD);
        }
    }
}

void board_uart_write(const uint8_t *buf, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        UART_TXDRDY = 0u;
        UART_TXD = buf[i];
        while (UART_TXDRDY == 0u) {
        }
    }
}

uint32_t board_counter(void)
{
    TIMER_CAPTURE0 = 1u;
    return TIMER_CC0;
}

void board_exit(int code)
{
    cortex_m_semihost_exit(code);
}
