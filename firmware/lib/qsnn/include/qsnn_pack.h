/*
 * qsnn_pack.h - reading bit-packed weight rows (docs/contract.md section 8).
 *
 * Standalone (only <stdint.h>); qsnn_core.h may include it. Python packs them
 * (qsnnkit/packing.py), this unpacks them; tests/test_packing.py checks both agree.
 *
 * Row-major [out][in]; each row starts on a fresh 32-bit word and is padded to whole
 * words with 0 bits. Element j of a row at `bits` bits (1, 2, 4 or 8) lives in word
 * j*bits/32 of the row at bit offset (j*bits)%32, least significant bit first.
 * Codes: two's complement for bits >= 2 (8 bits: -127..127), 1 bit: 1 = +1, 0 = -1.
 */
#ifndef QSNN_PACK_H
#define QSNN_PACK_H

#include <stdint.h>

/* Words of a packed row of n elements at `bits` bits; equals QSNN_ROW_WORDS(n, bits). */
static inline uint32_t qsnn_pack_row_words(uint32_t n, unsigned bits)
{
    return (n * (uint32_t)bits + 31u) / 32u;
}

/* Element j of a packed row at `bits` bits (1, 2, 4, 8): sign-extended value, +-1 for 1 bit. */
static inline int32_t qsnn_unpack(const uint32_t *row, uint32_t j, unsigned bits)
{
    const uint32_t pos = j * (uint32_t)bits;
    const uint32_t code = (row[pos >> 5] >> (pos & 31u)) & ((1u << bits) - 1u);
    if (bits == 1u) {
        return code ? 1 : -1;
    } else {
        const uint32_t half = 1u << (bits - 1u);
        return (int32_t)(code ^ half) - (int32_t)half;
    }
}

#endif /* QSNN_PACK_H */
