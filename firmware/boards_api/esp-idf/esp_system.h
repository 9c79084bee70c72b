/* ESP-IDF 5: restart (declaration only; README.md). */
#ifndef QSNN_CHECK_ESP_SYSTEM_H
#define QSNN_CHECK_ESP_SYSTEM_H
void esp_restart(void) __attribute__((noreturn));
#endif
