/*
 * stm32f4_serial.c - the serial hooks of every STM32F4 board (board.h): one USART, its
 * receive interrupt putting bytes into the application's receiver (cortex_m/rx_irq.c), polled transmit.
 * A board picks the USART and its IRQ with stm32f4_serial_start() from board_init().
 */
#include <stdint.h>

#include "board.h"
#include "stm32f4_usart.h"

static uint32_t usart_base;
static uint32_t usart_irqn;

void stm32f4_serial_start(uint32_t base, uint32_t irqn, uint32_t brr)
{
    usart_base = base;
    usart_irqn = irqn;
    stm32f4_usart_init(base, brr);
    nvic_enable_irq(irqn);
}

void cortex_m_irq(uint32_t irqn)
{
    if (irqn == usart_irqn) {
        stm32f4_usart_isr(usart_base, irqn);
    }
}

void board_uart_write(const uint8_t *buf, size_t n)
{
    stm32f4_usart_write(usart_base, buf, n);
}

