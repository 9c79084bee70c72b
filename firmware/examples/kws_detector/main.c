/*
 * kws_detector - the streaming keyword detector (qsnn_detect.h) behind a microphone driver.
 *
 * Replace read_microphone() with your driver (I2S, PDM, ADC + DMA: anything that gives 16 kHz
 * mono int16 samples, any number at a time); the rest stays. Here the "microphone" is raw
 * 16 kHz int16 little-endian PCM on stdin, so the example runs on a PC too:
 *
 *     make -C firmware/examples/kws_detector          (builds ./kws_detector with cc)
 *     sox speech.wav -t raw -r 16000 -c 1 -b 16 -e signed - | ./kws_detector 3000 50 4
 *
 * Arguments: threshold, refractory frames, smoothing shift W (docs/contract.md section 11),
 * optionally "scores" to print every frame's smoothed scores. Prints one line per detection:
 * "detect <frame> <ms> <class index> <class name> <margin>". No malloc, no float.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qsnn_detect.h"
#include "qsnn_model.h"

static uint32_t arena[(QSNN_MODEL_ARENA_BYTES + 3u) / 4u];
static qsnn_state_t net;
static qsnn_detector_t det;

/* The microphone driver: up to `max` samples into buf; 0 at the end of the stream. */
static size_t read_microphone(int16_t *buf, size_t max)
{
    return fread(buf, sizeof(int16_t), max, stdin);
}

int main(int argc, char **argv)
{
    qsnn_detect_cfg_t cfg;
    int16_t pcm[160]; /* 10 ms: the block size does not matter */
    size_t n;
    uint32_t k, mask = 0u;
    int rc, print_scores;
    if (argc < 4) {
        fprintf(stderr, "usage: %s THRESHOLD REFRACTORY_FRAMES SMOOTH_SHIFT [scores] < pcm16le_16khz_mono.raw\n", argv[0]);
        return 2;
    }
    for (k = 0; k < QSNN_MODEL_N_CLASSES; ++k) { /* every class but silence and unknown fires */
        if (strcmp(qsnn_model_classes[k], "_silence_") != 0 && strcmp(qsnn_model_classes[k], "_unknown_") != 0) {
            mask |= 1u << k;
        }
    }
    cfg.threshold = (int32_t)strtol(argv[1], NULL, 10);
    cfg.refractory = (uint32_t)strtoul(argv[2], NULL, 10);
    cfg.smooth_shift = (uint8_t)strtoul(argv[3], NULL, 10);
    cfg.class_mask = mask;
    print_scores = argc > 4 && strcmp(argv[4], "scores") == 0;
    rc = qsnn_state_init(&net, &qsnn_model, arena, sizeof(arena));
    if (rc != QSNN_OK) {
        fprintf(stderr, "qsnn_state_init: %d\n", rc);
        return 1;
    }
    rc = qsnn_detector_init(&det, &net, &cfg);
    if (rc != QSNN_DETECT_OK) {
        fprintf(stderr, "qsnn_detector_init: %d (threshold >= 1, shift <= %u)\n", rc, (unsigned)QSNN_DETECT_MAX_SHIFT);
        return 1;
    }
    while ((n = read_microphone(pcm, sizeof(pcm) / sizeof(pcm[0]))) > 0) {
        size_t i;
        qsnn_detection_t hit;
        if (print_scores) { /* hop by hop, so every frame's scores can be printed */
            for (i = 0; i < n; ++i) {
                if (qsnn_detector_push(&det, &pcm[i], 1u)) {
                    printf("scores %lu", (unsigned long)(det.frames - 1u));
                    for (k = 0; k < QSNN_MODEL_N_CLASSES; ++k) {
                        printf(" %ld", (long)det.score[k]);
                    }
                    printf("\n");
                }
            }
        } else {
            qsnn_detector_push(&det, pcm, n);
        }
        while (qsnn_detector_poll(&det, &hit)) {
            printf("detect %lu %lu %u %s %ld\n", (unsigned long)hit.frame, (unsigned long)qsnn_detect_time_ms(hit.frame),
                   (unsigned)hit.label, qsnn_model_classes[hit.label], (long)hit.margin);
        }
    }
    if (det.lost) {
        fprintf(stderr, "%lu detections lost (poll more often)\n", (unsigned long)det.lost);
    }
    return 0;
}
