/* host_board.c - see host_board.h. */
#include "host_board.h"

const board_info_t board_info = {"host-fuzz", (uint8_t)BOARD_COUNTER_INSTRUCTIONS, 0u};

jmp_buf host_board_exit_jmp;
static host_board_sink_t sink;
static uint32_t ticks;

void host_board_reset(host_board_sink_t s)
{
    sink = s;
    ticks = 0u;
}

void board_init(void) {}

void board_uart_write(const uint8_t *buf, size_t n)
{
    if (sink != NULL) {
        sink(buf, n);
    }
}

int board_uart_read(uint8_t *byte)
{
    (void)byte;
    return 0;
}

uint32_t board_uart_rx_dropped(void) { return 0u; }

void board_uart_wait(void) {}
void board_quiet_begin(void) {}
void board_quiet_end(void) {}

uint32_t board_counter(void) { return ticks++; }

void board_exit(int code)
{
    longjmp(host_board_exit_jmp, 1 + (code & 0xFF));
}

uint32_t board_static_ram_bytes(void) { return 0u; }
uint32_t board_flash_bytes(void) { return 0u; }
uint32_t board_stack_peak_bytes(void) { return 0u; }
uint32_t board_stack_size_bytes(void) { return 0u; }
