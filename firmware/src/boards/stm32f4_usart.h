/*
 * stm32f4_usart.h - register-level STM32F4 USART (RM0090 / RM0390 section "USART"):
 * the same register layout on every F4 USART, so the QEMU and the Nucleo board share it.
 */
#ifndef STM32F4_USART_H
#define STM32F4_USART_H

#include <stddef.h>
#include <stdint.h>

#include "../cortex_m/cortex_m.h"

#define USART_SR(base) REG32((base) + 0x00u)
#define USART_DR(base) REG32((base) + 0x04u)
#define USART_BRR(base) REG32((base) + 0x08u)
#define USART_CR1(base) REG32((base) + 0x0Cu)

#define USART_SR_ORE (1u << 3)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_RXNEIE (1u << 5)
#define USART_CR1_UE (1u << 13)

/* 8N1, TX and RX, receive interrupt on; brr = f_apb / baud (16x oversampling). */
static inline void stm32f4_usart_init(uint32_t base, uint32_t brr)
{
    USART_CR1(base) = 0u;
    USART_BRR(base) = brr;
    USART_CR1(base) = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE | USART_CR1_RXNEIE;
}

static inline void stm32f4_usart_write(uint32_t base, const uint8_t *buf, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        while ((USART_SR(base) & USART_SR_TXE) == 0u) {
        }
        USART_DR(base) = buf[i];
    }
}

/* Receive interrupt body: every received byte into the application's receiver, until it
 * holds a whole frame (then the byte stays in DR and the interrupt is switched off until the
 * frame is released: cortex_m_rx_hold). Reading SR then DR also clears an overrun (ORE),
 * which is counted as a dropped byte. */
static inline void stm32f4_usart_isr(uint32_t base, uint32_t irqn)
{
    uint32_t sr = USART_SR(base);
    while ((sr & (USART_SR_RXNE | USART_SR_ORE)) != 0u && !cortex_m_rx_hold(irqn)) {
        const uint8_t b = (uint8_t)USART_DR(base);
        if ((sr & USART_SR_ORE) != 0u) {
            app_rx.dropped = app_rx.dropped + 1u;
        }
        proto_rx_put(&app_rx, b);
        sr = USART_SR(base);
    }
}

/* stm32f4_serial.c: take over the board.h serial hooks with this USART and its RX IRQ. */
void stm32f4_serial_start(uint32_t base, uint32_t irqn, uint32_t brr);

#endif /* STM32F4_USART_H */
