/* start.S - Xtensa reset entry for QEMU's sim machine, whose reset vector is 0x50000000 (the
 * start of the image, linker script xtensa_sim.ld): jump over the literals that l32r reads
 * (they must lie below it), set the stack pointer (a1) to __stack_top, then the common reset
 * (common/startup.c, call0 ABI: lx106 has no register windows). Exceptions are not set up:
 * the firmware raises none on purpose, and QEMU stops on an unhandled one. */
    .section .text.init, "ax"
    .global _start
_start:
    j .Lreset
    .align 4
.Lstack_top:
    .word __stack_top
.Lstartup:
    .word startup_reset
    .align 4
.Lreset:
    l32r a1, .Lstack_top
    l32r a0, .Lstartup
    callx0 a0
1:  j 1b
