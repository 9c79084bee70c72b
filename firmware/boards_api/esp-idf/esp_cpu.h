/* ESP-IDF 5: the core's cycle counter (declaration only; README.md). */
#ifndef QSNN_CHECK_ESP_CPU_H
#define QSNN_CHECK_ESP_CPU_H
#include <stdint.h>
typedef uint32_t esp_cpu_cycle_count_t;
esp_cpu_cycle_count_t esp_cpu_get_cycle_count(void);
#endif
