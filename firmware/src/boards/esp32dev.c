/*
 * esp32dev.c - board hooks for an ESP32 DevKit (ESP32-WROOM-32: two Xtensa LX6 cores at
 * 240 MHz, 520 KB SRAM) on ESP-IDF 5 (PlatformIO `framework = espidf`, env esp32dev).
 *
 * BUILT, NOT VERIFIED HERE: ESP-IDF needs PlatformIO's registry. CI compiles this file with
 * -Werror against firmware/boards_api/esp-idf/, headers that declare exactly the ESP-IDF
 * calls and types used below (checked against ESP-IDF 5.1's own declarations by eye), and
 * runs everything else it shares with the emulated boards bit-exact on the lx106 (same ISA
 * family). What runs on a real ESP32 is what those boards run, plus these hooks.
 *
 * Serial: UART0 (the DevKit's USB-serial bridge) through ESP-IDF's interrupt-driven driver,
 * 2 KB receive ring (two frames); 115200 baud (QSNN_ESP32_BAUD). Counter: the core's CCOUNT
 * (esp_cpu_get_cycle_count), cycles at the CPU clock. Measured sections hold interrupts off
 * on this core (FreeRTOS port calls). Exit: esp_restart. Memory: ESP-IDF's linker symbols
 * for .data/.bss; the main task's stack (CONFIG_ESP_MAIN_TASK_STACK_SIZE bytes) and its
 * high-water mark; the flash image size is not known here (0).
 */
#include <stdint.h>

#include "board.h"
#include "driver/uart.h"
#include "esp_cpu.h"
#include "esp_system.h"
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"

#ifndef QSNN_ESP32_BAUD
#define QSNN_ESP32_BAUD 115200
#endif
#define QSNN_UART UART_NUM_0
#define RX_RING_BYTES 2048

const board_info_t board_info = {"esp32dev-esp32-wroom-32", BOARD_COUNTER_CYCLES,
                                 (uint32_t)CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ * 1000000u};

extern uint8_t _data_start, _bss_end; /* ESP-IDF's linker script (sections.ld) */

int main(void); /* firmware/src/main.c: the receive loop */

void app_main(void); /* ESP-IDF calls it in the main task once the system is up */
void app_main(void)
{
    (void)main();
}

static uint8_t lookahead;
static int have_lookahead;
static UBaseType_t quiet_mask;

void board_init(void)
{
    uart_config_t cfg = {0};
    cfg.baud_rate = QSNN_ESP32_BAUD;
    cfg.data_bits = UART_DATA_8_BITS;
    cfg.parity = UART_PARITY_DISABLE;
    cfg.stop_bits = UART_STOP_BITS_1;
    cfg.flow_ctrl = UART_HW_FLOWCTRL_DISABLE;
    cfg.source_clk = UART_SCLK_DEFAULT;
    if (uart_driver_install(QSNN_UART, RX_RING_BYTES, 0, 0, NULL, 0) != ESP_OK ||
        uart_param_config(QSNN_UART, &cfg) != ESP_OK) {
        board_exit(EXIT_FAULT);
    }
}

void board_uart_write(const uint8_t *buf, size_t n)
{
    (void)uart_write_bytes(QSNN_UART, buf, n); /* no TX ring: returns once all is in the FIFO */
}

int board_uart_read(uint8_t *byte)
{
    if (have_lookahead) {
        have_lookahead = 0;
        *byte = lookahead;
        return 1;
    }
    return uart_read_bytes(QSNN_UART, byte, 1u, 0) == 1;
}

uint32_t board_uart_rx_dropped(void)
{
    return 0u; /* the driver's ring holds two frames; with the window respected it cannot fill */
}

void board_uart_wait(void)
{
    if (!have_lookahead && uart_read_bytes(QSNN_UART, &lookahead, 1u, portMAX_DELAY) == 1) {
        have_lookahead = 1; /* blocks the main task (others run) until a byte arrives */
    }
}

void board_quiet_begin(void)
{
    quiet_mask = xPortSetInterruptMaskFromISR();
}

void board_quiet_end(void)
{
    vPortClearInterruptMaskFromISR(quiet_mask);
}

uint32_t board_counter(void)
{
    return (uint32_t)esp_cpu_get_cycle_count();
}

void board_exit(int code)
{
    (void)code;
    esp_restart();
}

uint32_t board_static_ram_bytes(void)
{
    return (uint32_t)((uintptr_t)&_bss_end - (uintptr_t)&_data_start);
}

uint32_t board_flash_bytes(void)
{
    return 0u; /* not known to the application here */
}

uint32_t board_stack_size_bytes(void)
{
    return (uint32_t)CONFIG_ESP_MAIN_TASK_STACK_SIZE;
}

uint32_t board_stack_peak_bytes(void)
{
    /* ESP-IDF's FreeRTOS counts stack in bytes */
    return (uint32_t)CONFIG_ESP_MAIN_TASK_STACK_SIZE - (uint32_t)uxTaskGetStackHighWaterMark(NULL);
}
