/*
 * memory.c - what the firmware occupies, from the linker script's symbols, and the
 * deepest stack use since reset, from stack painting (each architecture's startup code
 * fills the stack with board_stack_paint at reset; the lowest overwritten word marks the
 * high-water mark). Shared by the Cortex-M and RISC-V boards: the linker scripts define the
 * same symbols.
 */
#include <stdint.h>

#include "board.h"

extern const uint32_t board_stack_paint;
extern uint32_t __flash_start;
extern uint32_t __flash_end;
extern uint32_t __data_start;
extern uint32_t __bss_end;
extern uint32_t __stack_bottom;
extern uint32_t __stack_top;

uint32_t board_static_ram_bytes(void)
{
    return (uint32_t)((uintptr_t)&__bss_end - (uintptr_t)&__data_start);
}

uint32_t board_flash_bytes(void)
{
    return (uint32_t)((uintptr_t)&__flash_end - (uintptr_t)&__flash_start);
}

uint32_t board_stack_size_bytes(void)
{
    return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)&__stack_bottom);
}

uint32_t board_stack_peak_bytes(void)
{
    const volatile uint32_t *p = &__stack_bottom;
    while (p < &__stack_top && *p == board_stack_paint) {
        ++p;
    }
    return (uint32_t)((uintptr_t)&__stack_top - (uintptr_t)p);
}
