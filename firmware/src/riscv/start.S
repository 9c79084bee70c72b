/* start.S - RISC-V reset entry: machine mode, the stack at __stack_top, traps to
 * riscv_trap (a fault ends the program), then startup_reset() in common/startup.c. */
    .section .text.init, "ax"
    .globl _start
_start:
    la sp, __stack_top
    la t0, riscv_trap_entry
    csrw mtvec, t0
    call startup_reset
1:  j 1b

    .align 2
riscv_trap_entry:
    call riscv_trap
2:  j 2b
