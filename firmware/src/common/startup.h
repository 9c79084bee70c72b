/* startup.h - the architecture-independent part of reset (common/startup.c). */
#ifndef STARTUP_H
#define STARTUP_H

#include <stdint.h>

/* The reset entry once a stack is set up (Cortex-M: the vector table's reset vector; RISC-V:
 * called by start.S): copy .data from flash, zero .bss, paint the free stack below this
 * function's frame for the high-water mark (common/memory.c), run main(), end the program. */
void startup_reset(void) __attribute__((noreturn));

#endif /* STARTUP_H */
