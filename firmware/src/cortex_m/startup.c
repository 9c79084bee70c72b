/*
 * startup.c - reset handler and vector table shared by the Cortex-M boards.
 *
 * Reset goes straight to the common reset (common/startup.c: .data, .bss, stack painting,
 * main()) on the stack the vector table set up. Every external interrupt goes to one small dispatcher
 * that passes its number to the board (cortex_m_irq), so this file needs no per-chip
 * interrupt list; the table has CORTEX_M_N_IRQ entries, enough for the STM32F4 parts
 * used here (STM32F405: 82, STM32F446: 97). Faults end the program with EXIT_FAULT.
 */
#include <stdint.h>

#include "board.h"
#include "cortex_m.h"
#include "../common/startup.h"

#define CORTEX_M_N_IRQ 112u

extern uint32_t __stack_top;

static void fault_handler(void)
{
    board_exit(EXIT_FAULT);
}

static void irq_dispatch(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    cortex_m_irq((ipsr & 0x1FFu) - 16u);
}

typedef void (*vector_t)(void);

#define V4(h) h, h, h, h
#define V16(h) V4(h), V4(h), V4(h), V4(h)

__attribute__((section(".isr_vector"), used)) const vector_t cortex_m_vectors[16u + CORTEX_M_N_IRQ] = {
    (vector_t)(uintptr_t)&__stack_top, /* initial main stack pointer */
    startup_reset, /* common/startup.c */
    fault_handler, /* NMI */
    fault_handler, /* HardFault */
    fault_handler, /* MemManage */
    fault_handler, /* BusFault */
    fault_handler, /* UsageFault */
    0, 0, 0, 0,    /* reserved */
    fault_handler, /* SVCall */
    fault_handler, /* DebugMonitor */
    0,             /* reserved */
    fault_handler, /* PendSV */
    fault_handler, /* SysTick */
    /* external interrupts 0 .. 111 */
    V16(irq_dispatch), V16(irq_dispatch), V16(irq_dispatch), V16(irq_dispatch),
    V16(irq_dispatch), V16(irq_dispatch), V16(irq_dispatch),
};
