/*
 * cortex_m.h - the few Armv6-M / Armv7-M core registers and instructions the firmware uses
 * (no CMSIS dependency: the addresses are architectural, from the Arm ARMs), and the receive
 * interrupt's side of the interrupt-driven serial boards (rx_irq.c).
 */
#ifndef CORTEX_M_H
#define CORTEX_M_H

#include <stdint.h>

#include "../app.h" /* app_rx: the receiver the UART receive interrupt puts bytes into */

/* In the UART receive interrupt, before taking a byte: 1 when the application still holds a
 * whole frame; the interrupt `irqn` is then switched off and the byte left in the UART until
 * the frame is released (rx_irq.c). Each byte taken goes to proto_rx_put(&app_rx, b). */
int cortex_m_rx_hold(uint32_t irqn);

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

#define SCB_AIRCR REG32(0xE000ED0Cu)
#define SCB_AIRCR_SYSRESET 0x05FA0004u /* VECTKEY | SYSRESETREQ */
#define NVIC_ISER(n) REG32(0xE000E100u + 4u * (n))
#define NVIC_ICER(n) REG32(0xE000E180u + 4u * (n))
#define CORE_DEMCR REG32(0xE000EDFCu)
#define CORE_DEMCR_TRCENA (1u << 24)
#define DWT_CTRL REG32(0xE0001000u)
#define DWT_CYCCNT REG32(0xE0001004u)

/* Exit codes of the firmware (EXIT_*, QEMU's exit status): proto_spec.h via board.h. */

static inline void nvic_enable_irq(uint32_t irqn)
{
    NVIC_ISER(irqn >> 5) = 1u << (irqn & 31u);
}

static inline void nvic_disable_irq(uint32_t irqn)
{
    NVIC_ICER(irqn >> 5) = 1u << (irqn & 31u);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
}

static inline void irq_disable(void)
{
    __asm__ volatile("cpsid i" ::: "memory");
}

static inline void irq_enable(void)
{
    __asm__ volatile("cpsie i" ::: "memory");
}

/* Wait for interrupt; with PRIMASK set a pending interrupt still wakes the core. */
static inline void wait_for_interrupt(void)
{
    __asm__ volatile("dsb\n\twfi" ::: "memory");
}

/* Called from the vector table for every external interrupt, with its number
 * (IPSR - 16). Each Cortex-M board implements it. */
void cortex_m_irq(uint32_t irqn);

/* End the program under QEMU (semihosting SYS_EXIT_EXTENDED with {ADP_Stopped_ApplicationExit,
 * code}: QEMU exits with `code`); the emulated boards' board_exit(). */
__attribute__((noreturn)) static inline void cortex_m_semihost_exit(int code)
{
    volatile uint32_t block[2];
    register uint32_t r0 __asm__("r0") = 0x20u;
    register volatile uint32_t *r1 __asm__("r1") = block;
    block[0] = 0x20026u;
    block[1] = (uint32_t)code;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
        wait_for_interrupt();
    }
}

#endif /* CORTEX_M_H */
