/* ESP-IDF 5 FreeRTOS (Xtensa port): the types, values and port calls esp32dev.c uses
 * (declarations only; README.md). The CONFIG_* values are ESP-IDF's defaults for esp32dev. */
#ifndef QSNN_CHECK_FREERTOS_H
#define QSNN_CHECK_FREERTOS_H
#include <stdint.h>
typedef uint32_t TickType_t;
typedef unsigned int UBaseType_t;
typedef void *TaskHandle_t;
#define portMAX_DELAY ((TickType_t)0xffffffffUL)
#define CONFIG_ESP_DEFAULT_CPU_FREQ_MHZ 240
#define CONFIG_ESP_MAIN_TASK_STACK_SIZE 3584
UBaseType_t xPortSetInterruptMaskFromISR(void);
void vPortClearInterruptMaskFromISR(UBaseType_t prev_level);
#endif
