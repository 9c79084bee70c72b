/*
 * cortex_m.h - the few Armv7-M core registers and instructions the firmware uses
 * (no CMSIS dependency: the addresses are architectural, from the Armv7-M ARM).
 */
#ifndef CORTEX_M_H
#define CORTEX_M_H

#include <stdint.h>

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

#endif /* CORTEX_M_H */
