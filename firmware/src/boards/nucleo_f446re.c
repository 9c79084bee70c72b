/*
 * nucleo_f446re.c - board hooks for the ST NUCLEO-F446RE (STM32F446RE, Cortex-M4F),
 * register-level, no HAL. The chip runs from its 16 MHz internal oscillator (reset
 * default: no PLL, zero flash wait states), so cycle counts are free of wait states.
 *
 *   serial:  USART2 on PA2 (TX) / PA3 (RX), AF7, routed to the ST-LINK virtual COM port;
 *            115200 8N1; RX interrupt = IRQ 38
 *   counter: DWT->CYCCNT (core cycles at 16 MHz)
 *   exit:    system reset through SCB->AIRCR (there is no host to return a code to)
 */
#include <stdint.h>

#include "board.h"
#include "stm32f4_usart.h"

#define BOARD_HCLK_HZ 16000000u
#define BOARD_BAUD 115200u

#define RCC_AHB1ENR REG32(0x40023830u)
#define RCC_APB1ENR REG32(0x40023840u)
#define GPIOA_MODER REG32(0x40020000u)
#define GPIOA_AFRL REG32(0x40020020u)
#define USART2_BASE 0x40004400u
#define USART2_IRQN 38u

const board_info_t board_info = {"nucleo-f446re", BOARD_COUNTER_CYCLES, BOARD_HCLK_HZ};

void board_init(void)
{
    uint32_t v;
    RCC_AHB1ENR |= 1u;        /* GPIOAEN */
    RCC_APB1ENR |= 1u << 17;  /* USART2EN */
    (void)RCC_APB1ENR;        /* read back: the clock is on before the first access */
    v = GPIOA_MODER;
    v &= ~((3u << 4) | (3u << 6));
    v |= (2u << 4) | (2u << 6); /* PA2, PA3: alternate function */
    GPIOA_MODER = v;
    v = GPIOA_AFRL;
    v &= ~((0xFu << 8) | (0xFu << 12));
    v |= (7u << 8) | (7u << 12); /* AF7 = USART2 */
    GPIOA_AFRL = v;
    stm32f4_serial_start(USART2_BASE, USART2_IRQN, (BOARD_HCLK_HZ + BOARD_BAUD / 2u) / BOARD_BAUD);
    CORE_DEMCR |= CORE_DEMCR_TRCENA;
    DWT_CYCCNT = 0u;
    DWT_CTRL |= 1u;           /* CYCCNTENA */
    irq_enable();
}

uint32_t board_counter(void)
{
    return DWT_CYCCNT;
}

void board_exit(int code)
{
    (void)code;
    SCB_AIRCR = SCB_AIRCR_SYSRESET;
    for (;;) {
    }
}
