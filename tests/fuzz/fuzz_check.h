/* fuzz_check.h - the harnesses' own checks: a failed one aborts, which libFuzzer reports as a
 * crash and saves the input (like a sanitizer report). */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stdlib.h>

#define CHECK(c)       \
    do {               \
        if (!(c)) {    \
            abort();   \
        }              \
    } while (0)

#endif /* FUZZ_CHECK_H */
