/*
 * libgcc_extra.c - the integer helpers Debian's lx106 libgcc lacks (gcc-xtensa-lx106 12.2:
 * no __muldi3, __udivsi3, __umodsi3, __divsi3), with libgcc's names and semantics: 64-bit
 * multiply (low 64 bits of the product, two's complement), 32-bit unsigned divide and modulo,
 * signed divide truncating towards zero. Plain shifts, adds and 32-bit multiplies only.
 *
 * tests/test_runtime_helpers.py compiles this same file for the host with
 * -DQSNN_RT_NAME(n)=qsnn_rt_##n and checks every function against exact arithmetic on edge
 * cases and random operands; division by zero returns 0xFFFFFFFF / the dividend (the
 * firmware never divides by zero; libgcc's behaviour is undefined there).
 */
#include <stdint.h>

#ifndef QSNN_RT_NAME
#define QSNN_RT_NAME(n) __##n
#endif

int64_t QSNN_RT_NAME(muldi3)(int64_t a, int64_t b);
uint32_t QSNN_RT_NAME(udivsi3)(uint32_t n, uint32_t d);
uint32_t QSNN_RT_NAME(umodsi3)(uint32_t n, uint32_t d);
int32_t QSNN_RT_NAME(divsi3)(int32_t n, int32_t d);

int64_t QSNN_RT_NAME(muldi3)(int64_t a, int64_t b)
{
    const uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    const uint32_t al = (uint32_t)ua, ah = (uint32_t)(ua >> 32);
    const uint32_t bl = (uint32_t)ub, bh = (uint32_t)(ub >> 32);
    /* al * bl as 64 bits from 16-bit halves: no 64-bit multiply anywhere */
    const uint32_t a0 = al & 0xFFFFu, a1 = al >> 16, b0 = bl & 0xFFFFu, b1 = bl >> 16;
    const uint32_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    const uint32_t mid = (p00 >> 16) + (p01 & 0xFFFFu) + (p10 & 0xFFFFu);
    const uint32_t lo = (p00 & 0xFFFFu) | (mid << 16);
    uint32_t hi = p11 + (p01 >> 16) + (p10 >> 16) + (mid >> 16);
    hi += al * bh + ah * bl; /* the cross terms only reach the high word (mod 2^32) */
    return (int64_t)(((uint64_t)hi << 32) | lo);
}

static uint32_t udivmod(uint32_t n, uint32_t d, uint32_t *rem)
{
    uint32_t q = 0u, r = 0u;
    int i;
    if (d == 0u) {
        *rem = n;
        return 0xFFFFFFFFu;
    }
    for (i = 31; i >= 0; --i) { /* restoring division, one quotient bit per step */
        r = (r << 1) | ((n >> i) & 1u);
        if (r >= d) {
            r -= d;
            q |= 1u << i;
        }
    }
    *rem = r;
    return q;
}

uint32_t QSNN_RT_NAME(udivsi3)(uint32_t n, uint32_t d)
{
    uint32_t r;
    return udivmod(n, d, &r);
}

uint32_t QSNN_RT_NAME(umodsi3)(uint32_t n, uint32_t d)
{
    uint32_t r;
    (void)udivmod(n, d, &r);
    return r;
}

int32_t QSNN_RT_NAME(divsi3)(int32_t n, int32_t d)
{
    const uint32_t un = n < 0 ? 0u - (uint32_t)n : (uint32_t)n;
    const uint32_t ud = d < 0 ? 0u - (uint32_t)d : (uint32_t)d;
    uint32_t r;
    const uint32_t q = udivmod(un, ud, &r);
    return (int32_t)((n < 0) != (d < 0) ? 0u - q : q); /* INT32_MIN / -1 wraps, as on hardware */
}
