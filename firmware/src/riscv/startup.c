/*
 * startup.c - reset for the RISC-V boards: copy .data from flash, zero .bss, paint the
 * stack (for the high-water mark, common/memory.c), call main(). Any trap ends the program
 * with EXIT_FAULT: the firmware uses no interrupts here (the UART is polled).
 */
#include <stdint.h>

#include "board.h"

#define STACK_PAINT 0xA5A5A5A5u

extern uint32_t __stack_bottom;
extern uint32_t __data_start;
extern uint32_t __data_end;
extern uint32_t __data_load;
extern uint32_t __bss_start;
extern uint32_t __bss_end;

int main(void);
void riscv_reset(void);
void riscv_trap(void);

const uint32_t board_stack_paint = STACK_PAINT;

void riscv_trap(void)
{
    board_exit(EXIT_FAULT);
}

/* Paint the free stack below the current stack pointer (volatile: no memset call). */
static void paint_stack(void)
{
    volatile uint32_t *p = &__stack_bottom;
    uintptr_t sp;
    __asm__ volatile("mv %0, sp" : "=r"(sp));
    while ((uintptr_t)p < sp - 64u) {
        *p++ = STACK_PAINT;
    }
}

void riscv_reset(void)
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
