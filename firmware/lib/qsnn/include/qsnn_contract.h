/*
 * qsnn_contract.h - the numeric contract of qsnnkit (format version QSNN_FORMAT_VERSION).
 *
 * Written out in docs/contract.md; this header is its C implementation and the only
 * place the integer rules below are coded. The PyTorch model (train/quant.py), the Python
 * integer reference (qsnnkit/reference.py) and the C core all follow these functions
 * exactly; tests/test_core.py checks them against each other exhaustively.
 * The constants (widths, ranges, geometry) come from qsnn_spec.h, generated from
 * qsnnkit/spec.py, their one definition.
 *
 * C99, fixed-width integer types, no float, no allocation.
 */
#ifndef QSNN_CONTRACT_H
#define QSNN_CONTRACT_H

#include <stdint.h>

#include "qsnn_spec.h"

/* scale(acc, sh): sh > 0 rounds half up (towards +inf) with an arithmetic right shift;
 * sh <= 0 multiplies by 2^-sh exactly. The only rounding rule in the network. */
static inline int32_t qsnn_scale(int32_t acc, int sh)
{
    if (sh > 0) {
        /* Arithmetic shift of a negative int32: implementation-defined in C99; every
         * supported compiler (gcc/clang on Arm, RISC-V, Xtensa, x86) shifts in sign bits,
         * and tests/test_core.py checks it on the host. */
        return (int32_t)((acc + ((int32_t)1 << (sh - 1))) >> sh);
    }
    return acc * ((int32_t)1 << (-sh));
}

/* Cores with the saturation instructions (Armv6 and later, Armv7-M; not Armv6-M) clamp in one
 * instruction through the compiler's ACLE header. */
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
#include <arm_acle.h>
static inline int32_t qsnn_sat16(int32_t z)
{
    return __ssat(z, 16);
}
#else
static inline int32_t qsnn_sat16(int32_t z)
{
    return z > 32767 ? 32767 : (z < -32768 ? -32768 : z);
}
#endif

static inline int32_t qsnn_sat32_add(int32_t a, int32_t b)
{
    int64_t s = (int64_t)a + (int64_t)b;
    return s > INT32_MAX ? INT32_MAX : (s < INT32_MIN ? INT32_MIN : (int32_t)s);
}

/* Shift from a stored b-bit membrane to fine units: range [-THETA, THETA). */
static inline int qsnn_mem_shift(int mem_bits)
{
    return QSNN_FRAC_BITS - mem_bits + 1;
}

/* A layer's LIF constants, computed once per layer (qsnn_lif_consts) rather than per neuron. */
typedef struct {
    int32_t ms;    /* qsnn_mem_shift(mem_bits), >= 1 for mem_bits <= 8 */
    int32_t half;  /* 1 << (ms - 1): scale(m, ms) rounds half up */
    int32_t hi;    /* largest stored membrane,  2^(b-1) - 1 */
    int32_t lo;    /* smallest stored membrane, -2^(b-1) */
    int32_t leak;  /* leak shift k */
    int32_t keep;  /* 2^ms - 2^(ms-k): u - (u >> k) = v * keep for u = v << ms, exactly (k <= ms) */
} qsnn_lif_k_t;

static inline qsnn_lif_k_t qsnn_lif_consts(int leak_shift, int mem_bits)
{
    qsnn_lif_k_t k;
    k.ms = qsnn_mem_shift(mem_bits);
    k.half = (int32_t)1 << (k.ms - 1);
    k.hi = ((int32_t)1 << (mem_bits - 1)) - 1;
    k.lo = -((int32_t)1 << (mem_bits - 1));
    k.leak = leak_shift;
    k.keep = ((int32_t)1 << k.ms) - ((int32_t)1 << (k.ms - leak_shift));
    return k;
}

/*
 * One LIF step, in contract order: charge (leak as a shift), fire (m > THETA),
 * hard reset, store (round half up, saturate to mem_bits). *v is the stored membrane.
 * Returns the spike (0 or 1). The one implementation; qsnn_lif_step() below wraps it.
 */
static inline uint32_t qsnn_lif_step_k(int8_t *v, int32_t current, const qsnn_lif_k_t *k)
{
    /* u = v << ms and m = u - (u >> k) + current; as u is a multiple of 2^k, u - (u >> k) is
     * exactly v * keep: one multiply-accumulate */
    int32_t m = (int32_t)(*v) * k->keep + current;
    const uint32_t s = (m > QSNN_THETA) ? 1u : 0u;
    int32_t q;
    if (s) {
        m = 0;
    }
    q = (m + k->half) >> k->ms; /* qsnn_scale(m, ms) for ms >= 1 */
    *v = (int8_t)(q > k->hi ? k->hi : (q < k->lo ? k->lo : q));
    return s;
}

/* Adaptive LIF (contract section 5): the share of the current an adaptation state a takes
 * away (fine units), and the state after a step with spike s: a - ceil(a / 2^shift) + beta * s,
 * saturated to 0..QSNN_ADAPT_MAX. */
static inline int32_t qsnn_adapt_current(uint8_t a)
{
    return (int32_t)a << (QSNN_FRAC_BITS - QSNN_ADAPT_FRAC);
}

static inline uint8_t qsnn_adapt_step(uint8_t a, uint32_t s, uint32_t shift, uint32_t beta)
{
    const uint32_t n = (uint32_t)a - (((uint32_t)a + (1u << shift) - 1u) >> shift) + (s != 0u ? beta : 0u);
    return (uint8_t)(n > QSNN_ADAPT_MAX ? QSNN_ADAPT_MAX : n);
}

static inline uint32_t qsnn_lif_step(int8_t *v, int32_t current, int leak_shift, int mem_bits)
{
    const qsnn_lif_k_t k = qsnn_lif_consts(leak_shift, mem_bits);
    return qsnn_lif_step_k(v, current, &k);
}

#endif /* QSNN_CONTRACT_H */
