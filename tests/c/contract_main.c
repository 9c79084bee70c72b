/* Drives the contract's inline functions (qsnn_contract.h) from stdin for tests/test_core.py.
 * Input lines: "S acc sh" -> prints qsnn_scale(acc, sh)
 *              "L v current leak_shift mem_bits" -> prints "spike v'" of qsnn_lif_step
 *              "A a spike shift beta" -> prints "a' current" of qsnn_adapt_step / qsnn_adapt_current
 * Compiled by the test with -std=c99 -Wall -Wextra -Werror -pedantic. */
#include <stdio.h>
#include "qsnn_contract.h"

int main(void)
{
    char op;
    while (scanf(" %c", &op) == 1) {
        if (op == 'S') {
            long acc;
            int sh;
            if (scanf("%ld %d", &acc, &sh) != 2) {
                return 2;
            }
            printf("%ld\n", (long)qsnn_scale((int32_t)acc, sh));
        } else if (op == 'L') {
            int v, leak, bits;
            long c;
            int8_t v8;
            uint32_t s;
            if (scanf("%d %ld %d %d", &v, &c, &leak, &bits) != 4) {
                return 2;
            }
            v8 = (int8_t)v;
            s = qsnn_lif_step(&v8, (int32_t)c, leak, bits);
            printf("%u %d\n", (unsigned)s, (int)v8);
        } else if (op == 'A') {
            unsigned a, spk, shift, beta;
            if (scanf("%u %u %u %u", &a, &spk, &shift, &beta) != 4) {
                return 2;
            }
            printf("%u %ld\n", (unsigned)qsnn_adapt_step((uint8_t)a, spk, shift, beta),
                   (long)qsnn_adapt_current((uint8_t)a));
        } else {
            return 3;
        }
    }
    return 0;
}
