/*
 * fuzz_frontend.c - libFuzzer harness of the audio front end (qsnn_fe_push, qsnn_fe_clip).
 *
 * The input is int16 little-endian PCM (any values, including -32768 and silence), pushed hop
 * by hop as the firmware does. Checked, besides the sanitizers: a frame comes out for every hop
 * after the first; the same audio through qsnn_fe_clip gives the same features; a second run
 * from a reset state gives the same features again (no state leaks between clips).
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "qsnn_frontend.h"

#define MAX_HOPS 64u


static uint32_t run(qsnn_fe_state_t *st, const int16_t *pcm, uint32_t hops, uint8_t *out)
{
    uint32_t h;
    uint32_t frames = 0u;
    qsnn_fe_reset(st);
    for (h = 0; h < hops; ++h) {
        if (qsnn_fe_push(st, pcm + (size_t)h * QSNN_HOP_LEN, out + (size_t)frames * QSNN_N_BANDS)) {
            ++frames;
        }
    }
    return frames;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int16_t pcm[MAX_HOPS * QSNN_HOP_LEN];
    static uint8_t a[MAX_HOPS * QSNN_N_BANDS];
    static uint8_t b[MAX_HOPS * QSNN_N_BANDS];
    static uint8_t c[MAX_HOPS * QSNN_N_BANDS];
    static qsnn_fe_state_t st;
    const uint32_t n = (uint32_t)(size / 2u > MAX_HOPS * QSNN_HOP_LEN ? MAX_HOPS * QSNN_HOP_LEN : size / 2u);
    const uint32_t hops = n / QSNN_HOP_LEN;
    uint32_t i;
    uint32_t fa;
    for (i = 0; i < n; ++i) {
        const uint32_t u = (uint32_t)data[2u * i] | ((uint32_t)data[2u * i + 1u] << 8);
        pcm[i] = (int16_t)(u >= 32768u ? (int32_t)u - 65536 : (int32_t)u);
    }
    fa = run(&st, pcm, hops, a);
    CHECK(fa == (hops > 0u ? hops - 1u : 0u));
    CHECK(run(&st, pcm, hops, b) == fa && memcmp(a, b, (size_t)fa * QSNN_N_BANDS) == 0);
    CHECK(qsnn_fe_clip(pcm, n, c, MAX_HOPS) == fa && memcmp(a, c, (size_t)fa * QSNN_N_BANDS) == 0);
    return 0;
}
