/*
 * startup.c - reset handler and vector table shared by the Cortex-M boards.
 *
 * Reset: copy .data from flash, zero .bss, paint the stack (for the high-water mark,
 * see memory.c), call main(). Every external interrupt goes to one small dispatcher
 * that passes its number to the board (cortex_m_irq), so this file needs no per-chip
 * interrupt list; the table has CORTEX_M_N_IRQ entries, enough for the STM32F4 parts
 * used here (STM32F405: 82, STM32F446: 97). Faults end the program with EXIT_FAULT.
 */
#include <stdint.h>

#include "board.h"
#include "cortex_m.h"

#define CORTEX_M_N_IRQ 112u
#define STACK_PAINT 0xA5A5A5A5u

extern uint32_t __stack_bottom;
extern uint32_t __stack_top;
extern uint32_t __data_start;
extern uint32_t __data_end;
extern uint32_t __data_load;
extern uint32_t __bss_start;
extern uint32_t __bss_end;

int main(void);
void reset_handler(void);

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

/* Paint the free stack below the current stack pointer (volatile: no memset call that
 * would itself use the stack being painted). */
static void paint_stack(void)
{
    volatile uint32_t *p = &__stack_bottom;
    uintptr_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    while ((uintptr_t)p < sp - 8u) {
        *p++ = STACK_PAINT;
    }
}

void reset_handler(void)
{
    const uint32_t *src = &__data_load;
    uint32_t *dst;
    for (dst = &__data_start; dst < &__data_end;) {
        *dst++ = *src++;
    }
    for (dst = &__bss_start; dst < &__bss_end;) {
        *dst++ = 0u;
    }
    paint_stack();
    (void)main();
    board_exit(EXIT_MAIN_RETURNED);
}

typedef void (*vector_t)(void);

#define V4(h) h, h, h, h
#define V16(h) V4(h), V4(h), V4(h), V4(h)

__attribute__((section(".isr_vector"), used)) const vector_t cortex_m_vectors[16u + CORTEX_M_N_IRQ] = {
    (vector_t)(uintptr_t)&__stack_top, /* initial main stack pointer */
    reset_handler,
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

/* Stack painting and the memory report use the same pattern. */
const uint32_t board_stack_paint = STACK_PAINT;
