/* ESP-IDF 5 FreeRTOS: the task call esp32dev.c uses (declaration only; README.md). */
#ifndef QSNN_CHECK_FREERTOS_TASK_H
#define QSNN_CHECK_FREERTOS_TASK_H
#include "freertos/FreeRTOS.h"
UBaseType_t uxTaskGetStackHighWaterMark(TaskHandle_t task);
#endif
