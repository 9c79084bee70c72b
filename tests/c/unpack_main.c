/*
 * unpack_main.c - host test driver for qsnn_pack.h (used by tests/test_packing.py).
 *
 * stdin: any number of cases, each "rows cols bits" followed by
 * rows * qsnn_pack_row_words(cols, bits) words in hex. stdout per case: a line
 * "case rows cols bits words_per_row", then one line per row with the unpacked values.
 * Exit status 2 on malformed input or when qsnn_pack_row_words disagrees with
 * QSNN_ROW_WORDS of qsnn_core.h.
 */
#include "qsnn_pack.h" /* first: the header must stand alone */

#include <inttypes.h>
#include <stdio.h>

#include "qsnn_core.h"

#define MAX_WORDS 65536u

static uint32_t words[MAX_WORDS];

int main(void)
{
    unsigned long rows, cols;
    unsigned bits;
    int got;
    while ((got = scanf("%lu %lu %u", &rows, &cols, &bits)) == 3) {
        uint32_t nw, r, j, i;
        if (bits != 1u && bits != 2u && bits != 4u && bits != 8u) {
            fprintf(stderr, "bad bits %u\n", bits);
            return 2;
        }
        nw = qsnn_pack_row_words((uint32_t)cols, bits);
        if (nw != QSNN_ROW_WORDS(cols, bits)) {
            fprintf(stderr, "qsnn_pack_row_words(%lu, %u) = %" PRIu32 " but QSNN_ROW_WORDS = %" PRIu32 "\n",
                    cols, bits, nw, (uint32_t)QSNN_ROW_WORDS(cols, bits));
            return 2;
        }
        if ((unsigned long)nw * rows > MAX_WORDS) {
            fprintf(stderr, "case too large\n");
            return 2;
        }
        for (i = 0; i < nw * (uint32_t)rows; ++i) {
            if (scanf("%" SCNx32, &words[i]) != 1) {
                fprintf(stderr, "missing word %" PRIu32 "\n", i);
                return 2;
            }
        }
        printf("case %lu %lu %u %" PRIu32 "\n", rows, cols, bits, nw);
        for (r = 0; r < (uint32_t)rows; ++r) {
            const uint32_t *row = &words[r * nw];
            for (j = 0; j < (uint32_t)cols; ++j) {
                printf(j ? " %" PRId32 : "%" PRId32, qsnn_unpack(row, j, bits));
            }
            printf("\n");
        }
    }
    if (got != EOF) {
        fprintf(stderr, "malformed case header\n");
        return 2;
    }
    return 0;
}
