/*
 * startup.c - what every board does at reset once its architecture's entry code (Cortex-M:
 * cortex_m/startup.c; RISC-V: riscv/start.S, riscv/startup.c) has a stack: initialise the
 * data, paint the stack, run main(). The linker scripts define the symbols.
 */
#include <stdint.h>

#include "board.h"
#include "startup.h"

#define STACK_PAINT 0xA5A5A5A5u

extern uint32_t __stack_bottom;
extern uint32_t __data_start;
extern uint32_t __data_end;
extern uint32_t __data_load;
extern uint32_t __bss_start;
extern uint32_t __bss_end;

int main(void);

const uint32_t board_stack_paint = STACK_PAINT;

void startup_reset(void)
{
    const uint32_t *src = &__data_load;
    uint32_t *dst;
    volatile uint32_t *p = &__stack_bottom; /* volatile: no memset call that would use the stack */
    const uintptr_t sp = (uintptr_t)__builtin_frame_address(0); /* this function's frame (gcc, clang) */
    for (dst = &__data_start; dst < &__data_end;) {
        *dst++ = *src++;
    }
    for (dst = &__bss_start; dst < &__bss_end;) {
        *dst++ = 0u;
    }
    while ((uintptr_t)p < sp - 64u) { /* leave this frame alone */
        *p++ = STACK_PAINT;
    }
    (void)main();
    board_exit(EXIT_MAIN_RETURNED);
}
