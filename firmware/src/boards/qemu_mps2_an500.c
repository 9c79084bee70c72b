/*
 * qemu_mps2_an500.c - board hooks for QEMU's `mps2-an500` machine: Arm's MPS2 FPGA board
 * with the AN500 image, a Cortex-M7 (ARMv7E-M: DSP extension, as the M4).
 *
 * Serial: CMSDK UART0 (0x40004000), its RX interrupt (IRQ 0) writing the frame buffer; QEMU
 * does not model the baud rate. Counter: CMSDK TIMER0 (0x40000000), a 32-bit down counter at
 * the board's 25 MHz; under QEMU's -icount shift=0 one tick is 40 instructions (unit TIMER,
 * docs/firmware.md). Exit: semihosting.
 */
#include <stdint.h>

#include "../cortex_m/cortex_m.h"
#include "board.h"

#define UART0_BASE 0x40004000u
#define UART0_RX_IRQN 0u
#define UART_DATA REG32(UART0_BASE + 0x00u)
#define UART_STATE REG32(UART0_BASE + 0x04u)
#define UART_CTRL REG32(UART0_BASE + 0x08u)
#define UART_INTCLEAR REG32(UART0_BASE + 0x0Cu)
#define UART_BAUDDIV REG32(UART0_BASE + 0x10u)
#define UART_STATE_TXFULL 1u
#define UART_STATE_RXFULL 2u
#define UART_CTRL_TX_EN 1u
#define UART_CTRL_RX_EN 2u
#define UART_CTRL_RX_INT 8u
#define UART_INT_RX 2u

#define TIMER0_BASE 0x40000000u
#define TIMER_CTRL REG32(TIMER0_BASE + 0x00u)
#define TIMER_VALUE REG32(TIMER0_BASE + 0x04u)
#define TIMER_RELOAD REG32(TIMER0_BASE + 0x08u)

const board_info_t board_info = {"qemu-mps2-an500-cortex-m7", BOARD_COUNTER_TIMER, 25000000u};

void board_init(void)
{
    TIMER_RELOAD = 0xFFFFFFFFu;
    TIMER_VALUE = 0xFFFFFFFFu;
    TIMER_CTRL = 1u; /* enable, no interrupt */
    UART_BAUDDIV = 16u;
    UART_CTRL = UART_CTRL_TX_EN | UART_CTRL_RX_EN | UART_CTRL_RX_INT;
    nvic_enable_irq(UART0_RX_IRQN);
    irq_enable();
}

void cortex_m_irq(uint32_t irqn)
{
    if (irqn == UART0_RX_IRQN) {
        while ((UART_STATE & UART_STATE_RXFULL) != 0u && !cortex_m_rx_hold(irqn)) {
            UART_INTCLEAR = UART_INT_RX; /* cleared only when a byte is taken: a held one keeps the line high */
            proto_rx_put(&app_rx, (uint8_t)UART_DATA);
        }
    }
}

void board_uart_write(const uint8_t *buf, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        while ((UART_STATE & UART_STATE_TXFULL) != 0u) {
        }
        UART_DATA = buf[i];
    }
}

uint32_t board_counter(void)
{
    return 0xFFFFFFFFu - TIMER_VALUE; /* counts up */
}

void board_exit(int code)
{
    cortex_m_semihost_exit(code);
}
