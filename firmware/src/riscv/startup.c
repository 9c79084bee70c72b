/*
 * startup.c - the RISC-V boards' trap handler: any trap ends the program with EXIT_FAULT (the
 * firmware uses no interrupts here; the UART is polled). Reset is start.S, then the common
 * reset (common/startup.c).
 */
#include "board.h"

void riscv_trap(void);

void riscv_trap(void)
{
    board_exit(EXIT_FAULT);
}
