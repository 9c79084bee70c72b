/*
 * x86-64 instruction counting harness for the Q-SNN side of benchmarks/side_by_side.py
 * (baseline/instructions.py builds it and runs it under valgrind's callgrind with
 * --toggle-collect=count_network or count_frontend, so only those functions are counted:
 * the network steps of one clip, or the front end of one clip).
 *
 *   cg_harness network FEATURES.u8 N    FEATURES.u8: N clips x 49 frames x 40 uint8 features
 *   cg_harness frontend PCM.s16 N       PCM.s16: N clips x 16000 int16 samples (host order)
 *
 * Runs clip 0 as a warm-up outside the counted functions' totals (the caller subtracts
 * nothing: callgrind's counters are zeroed after it), then clips 1..N-1. Prints the
 * argmax per clip (network) or a checksum (front end) so the work cannot be optimised out.
 * The model is the firmware's generated qsnn_model.c, linked in.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <valgrind/callgrind.h>

#include "qsnn_core.h"
#include "qsnn_frontend.h"
#include "qsnn_model.h"

#define FRAMES 49u
#define CLIP_LEN 16000u
#define MAX_CLIPS 64u

static uint32_t arena[16384];
static uint8_t feats[MAX_CLIPS * FRAMES * QSNN_N_BANDS];
static int16_t pcm[MAX_CLIPS * CLIP_LEN];
static uint8_t fe_out[FRAMES * QSNN_N_BANDS];

__attribute__((noinline)) static int count_network(qsnn_state_t *st, const uint8_t *clip)
{
    uint32_t t;
    qsnn_reset(st);
    for (t = 0; t < FRAMES; t++) {
        qsnn_step(st, clip + t * QSNN_N_BANDS);
    }
    return qsnn_argmax(st->out, (int)qsnn_model.n_classes);
}

__attribute__((noinline)) static uint32_t count_frontend(const int16_t *clip)
{
    return qsnn_fe_clip(clip, CLIP_LEN, fe_out, FRAMES);
}

static size_t read_all(const char *path, void *buf, size_t bytes)
{
    FILE *f = fopen(path, "rb");
    size_t got;
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    got = fread(buf, 1, bytes, f);
    fclose(f);
    return got;
}

int main(int argc, char **argv)
{
    uint32_t n, i, sum = 0u;
    if (argc != 4) {
        fprintf(stderr, "usage: %s network|frontend FILE N\n", argv[0]);
        return 2;
    }
    n = (uint32_t)strtoul(argv[3], NULL, 10);
    if (n < 2u || n > MAX_CLIPS) {
        fprintf(stderr, "N must be 2..%u\n", MAX_CLIPS);
        return 2;
    }
    if (strcmp(argv[1], "network") == 0) {
        qsnn_state_t st;
        if (read_all(argv[2], feats, n * FRAMES * QSNN_N_BANDS) != n * FRAMES * QSNN_N_BANDS) {
            fprintf(stderr, "%s: short file\n", argv[2]);
            return 2;
        }
        if (qsnn_model_check(&qsnn_model) != 0 || qsnn_state_bytes(&qsnn_model) > sizeof(arena) ||
            qsnn_state_init(&st, &qsnn_model, arena, sizeof(arena)) != 0) {
            fprintf(stderr, "model rejected\n");
            return 3;
        }
        printf("%d", count_network(&st, feats));
        CALLGRIND_ZERO_STATS;
        for (i = 1; i < n; i++) {
            printf(" %d", count_network(&st, feats + i * FRAMES * QSNN_N_BANDS));
        }
        printf("\n");
        return 0;
    }
    if (strcmp(argv[1], "frontend") == 0) {
        if (read_all(argv[2], pcm, n * CLIP_LEN * 2u) != n * CLIP_LEN * 2u) {
            fprintf(stderr, "%s: short file\n", argv[2]);
            return 2;
        }
        sum += count_frontend(pcm);
        CALLGRIND_ZERO_STATS;
        for (i = 1; i < n; i++) {
            uint32_t k;
            sum += count_frontend(pcm + i * CLIP_LEN);
            for (k = 0; k < FRAMES * QSNN_N_BANDS; k++) {
                sum = sum * 31u + fe_out[k];
            }
        }
        printf("%u\n", sum);
        return 0;
    }
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
}
