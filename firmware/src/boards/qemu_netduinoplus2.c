/*
 * qemu_netduinoplus2.c - board hooks for QEMU's netduinoplus2 machine (STM32F405,
 * Cortex-M4), run with `-icount shift=0 -semihosting-config enable=on,target=native`.
 *
 *   serial:  USART1 (0x40011000), QEMU's first -serial; RX interrupt = IRQ 37
 *   counter: TIM2 (32-bit) whose clock QEMU models at 1 GHz: under -icount shift=0 every
 *            guest instruction advances virtual time by 1 ns, so CNT counts instructions
 *   exit:    semihosting SYS_EXIT_EXTENDED, QEMU's exit status is the code
 *
 * QEMU needs no clock or pin setup for these peripherals; the RCC enables below are what
 * the real chip needs and are ignored by QEMU (RCC is an unimplemented device there).
 */
#include <stdint.h>

#include "board.h"
#include "stm32f4_usart.h"

#define RCC_APB1ENR REG32(0x40023840u)
#define RCC_APB2ENR REG32(0x40023844u)
#define USART1_BASE 0x40011000u
#define USART1_IRQN 37u
#define TIM2_BASE 0x40000000u
#define TIM2_CR1 REG32(TIM2_BASE + 0x00u)
#define TIM2_EGR REG32(TIM2_BASE + 0x14u)
#define TIM2_CNT REG32(TIM2_BASE + 0x24u)
#define TIM2_PSC REG32(TIM2_BASE + 0x28u)
#define TIM2_ARR REG32(TIM2_BASE + 0x2Cu)

const board_info_t board_info = {"qemu-netduinoplus2-stm32f405", BOARD_COUNTER_INSTRUCTIONS, 0u};

void board_init(void)
{
    RCC_APB1ENR |= 1u;        /* TIM2EN */
    RCC_APB2ENR |= 1u << 4;   /* USART1EN */
    TIM2_PSC = 0u;
    TIM2_ARR = 0xFFFFFFFFu;
    TIM2_EGR = 1u;            /* UG: load the prescaler */
    TIM2_CR1 = 1u;            /* CEN */
    stm32f4_serial_start(USART1_BASE, USART1_IRQN, 168000000u / 4u / 115200u); /* baud is not modelled by QEMU */
    irq_enable();
}

uint32_t board_counter(void)
{
    return TIM2_CNT;
}

void board_exit(int code)
{
    cortex_m_semihost_exit(code);
}
