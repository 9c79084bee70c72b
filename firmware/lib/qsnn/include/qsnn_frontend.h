/*
 * qsnn_frontend.h - the integer audio front end: 16 kHz int16 PCM -> 40 uint8 log-mel
 * features per 20 ms (docs/contract.md section 1, details in docs/frontend.md and in the
 * header comment of qsnn_frontend.c, which is the one definition).
 *
 * C99, fixed-width integers, no float, no division, no allocation, no static mutable
 * state: the caller owns the state struct. Scratch lives on the stack (about 2.1 KB,
 * measured with -fstack-usage in docs/frontend.md).
 */
#ifndef QSNN_FRONTEND_H
#define QSNN_FRONTEND_H

#include <stdint.h>

#include "qsnn_contract.h"

/* Geometry (QSNN_FRAME_LEN, QSNN_HOP_LEN, QSNN_FE_HISTORY_LEN = FRAME - HOP, QSNN_N_BANDS)
 * and the fixed absolute scale QSNN_FE_GAIN_LOG2 come from qsnn_spec.h: feat =
 * floor(4 * log2(E)) with E the mel-band energy of the Hann-windowed frame (window peak
 * 1.0) in units of 2^-QSNN_FE_GAIN_LOG2 LSB^2, clamped to 0..255 (0 also when E == 0 or E < 1). */

typedef struct {
    int16_t hist[QSNN_FE_HISTORY_LEN];  /* last 160 samples of the previous hop */
    uint8_t primed;                      /* 0 until the first hop has been pushed */
} qsnn_fe_state_t;

/* Start of a clip: forget the history (the next hop yields no frame). */
void qsnn_fe_reset(qsnn_fe_state_t *st);

/*
 * Feed one hop of QSNN_HOP_LEN (320) samples. Returns 1 and writes QSNN_N_BANDS (40)
 * features to feat when a frame was produced (every hop but the first after a reset),
 * else returns 0 and leaves feat untouched.
 */
int qsnn_fe_push(qsnn_fe_state_t *st, const int16_t hop[QSNN_HOP_LEN], uint8_t feat[QSNN_N_BANDS]);

/*
 * Features of one 480-sample frame given as its first 160 samples (`head`) and its last
 * 320 (`tail`); stateless. qsnn_fe_push(st, hop, f) == qsnn_fe_frame(st->hist, hop, f).
 */
void qsnn_fe_frame(const int16_t head[QSNN_FE_HISTORY_LEN], const int16_t tail[QSNN_HOP_LEN],
                   uint8_t feat[QSNN_N_BANDS]);

/*
 * A whole clip from a fresh state: pushes every complete hop of pcm[0..n) (a trailing
 * partial hop is ignored; padding to 1 s is the caller's job) and writes up to
 * max_frames frames of QSNN_N_BANDS features, row by row, to out. Returns the number of
 * frames written (49 for a 16000-sample clip).
 */
uint32_t qsnn_fe_clip(const int16_t *pcm, uint32_t n, uint8_t *out, uint32_t max_frames);

#endif /* QSNN_FRONTEND_H */
