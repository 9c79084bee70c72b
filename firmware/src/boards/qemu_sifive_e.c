/*
 * qemu_sifive_e.c - board hooks for QEMU's `sifive_e` machine: SiFive's FE310 (HiFive1), an
 * rv32imac core (the ISA family of the ESP32-C3), 16 KB of data SRAM.
 *
 * Serial: UART0 (0x10013000), polled: QEMU's model holds incoming bytes in its 8-byte FIFO
 * and the host's socket until the firmware reads them, so nothing is lost while the network
 * computes and no RX ring is needed (RX_OVERFLOW cannot happen here). Counter: the mcycle
 * CSR, which under QEMU's -icount shift=0 advances once per instruction (unit INSTRUCTIONS).
 * Exit: semihosting (the RISC-V semihosting sequence around ebreak).
 */
#include <stdint.h>

#include "board.h"

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))
#define UART0_BASE 0x10013000u
#define UART_TXDATA REG32(UART0_BASE + 0x00u)
#define UART_RXDATA REG32(UART0_BASE + 0x04u)
#define UART_TXCTRL REG32(UART0_BASE + 0x08u)
#define UART_RXCTRL REG32(UART0_BASE + 0x0Cu)
#define UART_DIV REG32(UART0_BASE + 0x18u)
#define UART_FULL_EMPTY (1u << 31)

const board_info_t board_info = {"qemu-sifive-e-fe310-rv32imac", BOARD_COUNTER_INSTRUCTIONS, 0u};

void board_init(void)
{
    UART_DIV = 138u;   /* 115200 baud from the 16 MHz bus clock; QEMU does not model it */
    UART_TXCTRL = 1u;  /* txen */
    UART_RXCTRL = 1u;  /* rxen */
}

void board_uart_write(const uint8_t *buf, size_t n)
{
    size_t i;
    for (i = 0; i < n; ++i) {
        while ((UART_TXDATA & UART_FULL_EMPTY) != 0u) {
        }
        UART_TXDATA = buf[i];
    }
}

int board_uart_read(uint8_t *byte)
{
    const uint32_t v = UART_RXDATA;
    if ((v & UART_FULL_EMPTY) != 0u) {
        return 0;
    }
    *byte = (uint8_t)v;
    return 1;
}

uint32_t board_uart_rx_dropped(void)
{
    return 0u; /* polled, back-pressured by the UART: nothing is dropped */
}

void board_uart_wait(void)
{
    /* polled UART without interrupts: the main loop reads again */
}

void board_quiet_begin(void)
{
    /* no interrupts on this board: received bytes wait in the UART's FIFO */
}

void board_quiet_end(void)
{
}

uint32_t board_counter(void)
{
    uint32_t c;
    __asm__ volatile("csrr %0, mcycle" : "=r"(c));
    return c;
}

void board_exit(int code)
{
    /* SYS_EXIT_EXTENDED (0x20) with {ADP_Stopped_ApplicationExit, code}, through the RISC-V
     * semihosting sequence: three uncompressed instructions around ebreak. */
    volatile uint32_t block[2];
    register uintptr_t a0 __asm__("a0") = 0x20u;
    register uintptr_t a1 __asm__("a1") = (uintptr_t)block;
    block[0] = 0x20026u;
    block[1] = (uint32_t)code;
    __asm__ volatile(".option push\n\t.option norvc\n\t.balign 16\n\t"
                     "slli zero, zero, 0x1f\n\tebreak\n\tsrai zero, zero, 7\n\t.option pop"
                     : "+r"(a0) : "r"(a1) : "memory");
    for (;;) {
        __asm__ volatile("wfi");
    }
}
