/*
 * Training-time LIF over a whole sequence, forward and backward, for a layer without
 * recurrence or adaptation (train/lif_seq.py). Host-only: this is not device code.
 *
 * It performs, element for element and in the same order, the float32 operations of the
 * per-step PyTorch path (train/quant.py: sat16_fine, then _LIFStep or _LIFStepFloat), so its
 * spikes and gradients are bit-identical to that path (tests/test_train.py checks it). Built
 * with -ffp-contract=off so that no multiply-add is fused.
 *
 * Layout: [B][T][N] float32, contiguous; state: a caller's scratch row of N floats (no
 * allocation here). Loops run b, then t, then n, so the inner loop is contiguous.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* floor of a float32, exact for every float32 (and equal to floorf except that it may give
 * +0 for floorf's -0, which the callers never see: x + 0.5f is never -0 when it is zero, and
 * the codes only enter comparisons and u = code / q, whose sign of zero nothing downstream
 * reads, since u - u * leak is +0 for either zero). Faster than the libm call on targets
 * without a rounding instruction. */
static inline float floor_exact(float x)
{
    const float big = 8388608.0f; /* 2^23: every float32 at least this large is an integer */
    const float xc = x < -big ? -big : (x > big ? big : x); /* in int32 range (NaN never occurs) */
    const float t = (float)(int32_t)xc;                    /* truncation toward zero */
    const float f = t > xc ? t - 1.0f : t;
    return fabsf(x) < big ? f : x;
}

/* Forward. cur: the layer's current; u: a scratch row of N floats (the membranes); lo, hi: the saturation of the current (sat != 0);
 * leak = 2^-leak_shift; q = 2^(mem_bits - 1), or 0 for float membranes. Writes the spikes
 * and m, the membrane after charging (before fire and reset), which the backward needs. */
void qsnn_lif_seq_forward(const float *cur, float *spikes, float *m_out, float *u, int32_t B, int32_t T,
                          int32_t N, float leak, float q, int32_t sat, float lo, float hi)
{
    for (int32_t b = 0; b < B; ++b) {
        for (int32_t n = 0; n < N; ++n) {
            u[n] = 0.0f;
        }
        for (int32_t t = 0; t < T; ++t) {
            const size_t row = ((size_t)b * (size_t)T + (size_t)t) * (size_t)N;
            for (int32_t n = 0; n < N; ++n) {
                const size_t i = row + (size_t)n;
                float c = cur[i];
                if (sat) {
                    c = c < lo ? lo : (c > hi ? hi : c);
                }
                const float ul = u[n] * leak;
                const float d = u[n] - ul;
                const float m = d + c;
                const float s = m > 1.0f ? 1.0f : 0.0f;
                const float mr = m * (1.0f - s);
                if (q > 0.0f) {
                    const float x = mr * q;
                    float code = floor_exact(x + 0.5f);
                    code = code < -q ? -q : (code > q - 1.0f ? q - 1.0f : code);
                    u[n] = code / q;
                } else {
                    u[n] = mr;
                }
                spikes[i] = s;
                m_out[i] = m;
            }
        }
    }
}

/* Backward. g_s: the gradient of the spikes; cur and m as in (and from) the forward; g_u: a
 * scratch row of N floats. Writes the gradient of cur. Per step, as the autograd path computes it:
 *   g_m = g_s * max(1 - |m - 1|, 0) + g_u * inside * (1 - s)    (float membranes: no inside)
 *   g_cur = g_m where lo <= cur <= hi, else 0                    (sat == 0: g_m)
 *   g_u of the step before = g_m * (1 - leak); the last step's g_u is 0. */
void qsnn_lif_seq_backward(const float *g_s, const float *cur, const float *m_in, float *g_cur, float *g_u,
                           int32_t B, int32_t T, int32_t N, float leak, float q, int32_t sat, float lo, float hi)
{
    const float keep = 1.0f - leak;
    for (int32_t b = 0; b < B; ++b) {
        for (int32_t n = 0; n < N; ++n) {
            g_u[n] = 0.0f;
        }
        for (int32_t t = T - 1; t >= 0; --t) {
            const size_t row = ((size_t)b * (size_t)T + (size_t)t) * (size_t)N;
            for (int32_t n = 0; n < N; ++n) {
                const size_t i = row + (size_t)n;
                const float m = m_in[i];
                const float s = m > 1.0f ? 1.0f : 0.0f;
                float surr = 1.0f - fabsf(m - 1.0f);
                surr = surr < 0.0f ? 0.0f : surr;
                const float a = g_s[i] * surr;
                float bterm;
                if (q > 0.0f) {
                    const float mr = m * (1.0f - s);
                    const float code = floor_exact(mr * q + 0.5f);
                    const float inside = (code >= -q && code <= q - 1.0f) ? 1.0f : 0.0f;
                    bterm = (g_u[n] * inside) * (1.0f - s);
                } else {
                    bterm = g_u[n] * (1.0f - s);
                }
                const float g_m = a + bterm;
                const float c = cur[i];
                g_cur[i] = (!sat || (c >= lo && c <= hi)) ? g_m : 0.0f;
                g_u[n] = g_m * keep;
            }
        }
    }
}
