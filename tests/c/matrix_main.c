/*
 * matrix_main.c - the host C core, front end and frame receiver as one program, so the same
 * sources can be compiled with every compiler, optimisation level and sanitizer of the test
 * matrix (tests/test_compiler_matrix.py) and compared with the Python reference exactly.
 *
 *   matrix_main pcm   IN OUT   IN: u32 clips, u32 samples, int16 PCM; per clip OUT gets the
 *                              features (u8 [frames][bands]), then the outputs of qsnn_step
 *                              and of qsnn_step_ref (int32 [classes] each)
 *   matrix_main feat  IN OUT   IN: u32 clips, u32 steps, u8 features [clips][steps][bands];
 *                              per clip OUT gets the two output vectors
 *   matrix_main proto IN OUT   IN: a byte stream; OUT gets one record per event of the
 *                              receiver: 'F' type seq len payload, or 'E' code
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "qsnn_core.h"
#include "qsnn_frontend.h"
#include "qsnn_model.h"

static uint32_t arena[(QSNN_MODEL_ARENA_BYTES + 3u) / 4u];
static uint8_t buf[1u << 24];

static size_t read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t n;
    if (f == NULL) {
        perror(path);
        exit(2);
    }
    n = fread(buf, 1u, sizeof(buf), f);
    fclose(f);
    return n;
}

static uint32_t u32_at(size_t off)
{
    return (uint32_t)buf[off] | ((uint32_t)buf[off + 1u] << 8) | ((uint32_t)buf[off + 2u] << 16) |
           ((uint32_t)buf[off + 3u] << 24);
}

static void run_outputs(qsnn_state_t *st, const uint8_t *feats, uint32_t steps, FILE *out)
{
    uint32_t t;
    int ref;
    for (ref = 0; ref < 2; ++ref) {
        qsnn_reset(st);
        for (t = 0; t < steps; ++t) {
            if (ref) {
                qsnn_step_ref(st, feats + (size_t)t * qsnn_model.n_bands);
            } else {
                qsnn_step(st, feats + (size_t)t * qsnn_model.n_bands);
            }
        }
        fwrite(st->out, sizeof(int32_t), qsnn_model.n_classes, out);
    }
}

int main(int argc, char **argv)
{
    qsnn_state_t st;
    size_t n;
    FILE *out;
    if (argc != 4) {
        fprintf(stderr, "usage: %s pcm|feat|proto IN OUT\n", argv[0]);
        return 2;
    }
    n = read_all(argv[2]);
    out = fopen(argv[3], "wb");
    if (out == NULL) {
        perror(argv[3]);
        return 2;
    }
    if (strcmp(argv[1], "proto") == 0) {
        static proto_rx_t rx;
        size_t i;
        proto_rx_init(&rx);
        for (i = 0; i < n; ++i) {
            proto_frame_t f;
            const int r = proto_rx_byte(&rx, buf[i], &f);
            if (r == PROTO_RX_FRAME) {
                const uint8_t head[5] = {'F', f.type, f.seq, (uint8_t)f.len, (uint8_t)(f.len >> 8)};
                fwrite(head, 1u, sizeof(head), out);
                fwrite(f.payload, 1u, f.len, out);
            } else if (r > 0) {
                const uint8_t rec[2] = {'E', (uint8_t)r};
                fwrite(rec, 1u, sizeof(rec), out);
            }
        }
        fclose(out);
        return 0;
    }
    if (qsnn_state_init(&st, &qsnn_model, arena, sizeof(arena)) != QSNN_OK) {
        fprintf(stderr, "qsnn_state_init refused the model\n");
        return 3;
    }
    if (strcmp(argv[1], "pcm") == 0) {
        const uint32_t clips = u32_at(0);
        const uint32_t samples = u32_at(4);
        static int16_t pcm[1u << 16];
        static uint8_t feats[64u * QSNN_N_BANDS];
        uint32_t c;
        uint32_t i;
        if (samples > sizeof(pcm) / sizeof(pcm[0]) || 8u + (size_t)clips * samples * 2u > n) {
            fprintf(stderr, "bad pcm input\n");
            return 2;
        }
        for (c = 0; c < clips; ++c) {
            uint32_t frames;
            for (i = 0; i < samples; ++i) {
                const size_t o = 8u + ((size_t)c * samples + i) * 2u;
                const uint32_t u = (uint32_t)buf[o] | ((uint32_t)buf[o + 1u] << 8);
                pcm[i] = (int16_t)(u >= 32768u ? (int32_t)u - 65536 : (int32_t)u);
            }
            frames = qsnn_fe_clip(pcm, samples, feats, 64u);
            fwrite(feats, 1u, (size_t)frames * QSNN_N_BANDS, out);
            run_outputs(&st, feats, frames, out);
        }
    } else if (strcmp(argv[1], "feat") == 0) {
        const uint32_t clips = u32_at(0);
        const uint32_t steps = u32_at(4);
        const size_t per = (size_t)steps * qsnn_model.n_bands;
        uint32_t c;
        if (8u + (size_t)clips * per > n) {
            fprintf(stderr, "bad feature input\n");
            return 2;
        }
        for (c = 0; c < clips; ++c) {
            run_outputs(&st, buf + 8u + (size_t)c * per, steps, out);
        }
    } else {
        fprintf(stderr, "unknown mode %s\n", argv[1]);
        return 2;
    }
    fclose(out);
    return 0;
}
