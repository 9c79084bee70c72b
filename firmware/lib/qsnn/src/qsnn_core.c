/*
 * qsnn_core.c - the portable integer Q-SNN core. C99, no float, no malloc; the caller owns
 * the state arena. Numeric rules: docs/contract.md, implemented once in qsnn_contract.h.
 *
 * Structure (as TensorFlow Lite Micro's reference / optimized kernels): a layer step is
 * the synaptic sums of each neuron, computed by the layer's kernel, followed by the
 * per-neuron code (current, LIF, spike) that every kernel shares. Kernels are drop-in
 * functions with one interface (dot_fn): the plain reference kernel is the oracle, the
 * faster ones must match it bit for bit (tests/test_core.py: every kernel against the
 * reference per step, random models at every width, and the default model on every
 * test clip). A kernel is added with an id in qsnnkit/spec.py, a dot_fn here and a line in
 * kernel_fits() / run_layer().
 */
#include "qsnn_core.h"
#include "qsnn_pack.h"

/* Cores with the Armv7E-M DSP extension (Cortex-M4/M7/M33...): dual 16-bit multiply-accumulate
 * (SMLAD) for 8-bit weights, from the compiler's ACLE header, no vendor library. */
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !defined(QSNN_NO_DSP)
#include <arm_acle.h>
#define QSNN_DSP 1
#else
#define QSNN_DSP 0
#endif

/* The layer kernels are calls of their own: inlined into step() their stack frames (patches,
 * counters, column lists) would add up instead of taking turns, and the stack is RAM. */
#if defined(__GNUC__)
#define QSNN_NOINLINE __attribute__((noinline))
#else
#define QSNN_NOINLINE
#endif

/* Output channels the bit-plane conv kernel (CONV_BN_COLUMN) keeps sums for on its stack: the
 * spec's QSNN_COLUMN_MAX_ROWS, or a firmware build's own model's widest such layer
 * (-DQSNN_CONV_COLUMN_ROWS from qsnn_model.h's QSNN_MODEL_CONV_COLUMN_ROWS, pio_pre.py), which
 * qsnn_layer_kernel then holds every layer to: a wider one is refused, never overrun. */
#ifndef QSNN_CONV_COLUMN_ROWS
#define QSNN_CONV_COLUMN_ROWS QSNN_COLUMN_MAX_ROWS
#endif
#if QSNN_CONV_COLUMN_ROWS < 1 || QSNN_CONV_COLUMN_ROWS > QSNN_COLUMN_MAX_ROWS
#error "QSNN_CONV_COLUMN_ROWS must be 1..QSNN_COLUMN_MAX_ROWS"
#endif

/* Benchmarks (benchmarks/network_cost.py) build with -DQSNN_PROFILE and provide the hook:
 * point 0 at the start of a step, 1 + l after layer l, QSNN_MAX_LAYERS + 1 after the readout;
 * QSNN_PROFILE_FIRE_BEGIN / _END around the fast kernels' neuron loops (fire_group,
 * fire_group2, which may nest), so that a layer's instructions split into its synaptic sums
 * and its neuron updates. Without QSNN_PROFILE no mark is compiled in. */
#ifdef QSNN_PROFILE
void qsnn_profile_mark(uint32_t point);
#define QSNN_MARK(p) qsnn_profile_mark(p)
#define QSNN_PROFILE_FIRE_BEGIN 0x100u
#define QSNN_PROFILE_FIRE_END 0x101u
#else
#define QSNN_MARK(p) ((void)0)
#endif
#define QSNN_MARK_FIRE_BEGIN() QSNN_MARK(QSNN_PROFILE_FIRE_BEGIN)
#define QSNN_MARK_FIRE_END() QSNN_MARK(QSNN_PROFILE_FIRE_END)

/* Kernels compiled in: every one, or only those in the bit mask QSNN_KERNELS_ONLY (bit k:
 * kernel QSNN_KERNEL_* k), which firmware/scripts/pio_pre.py sets from the model header's
 * QSNN_MODEL_KERNELS, so that a firmware links only the kernels its model runs.
 * qsnn_model_check() refuses a model that needs a kernel left out, and without REF in the mask
 * qsnn_step_ref() is not compiled (a call to it fails to link). */
#if defined(QSNN_KERNELS_ONLY) && !defined(QSNN_KERNELS_REF) /* a REF-everywhere build keeps them all */
#define QSNN_HAS_KERNEL(k) ((((uint32_t)(QSNN_KERNELS_ONLY)) >> (k)) & 1u)
#if ((QSNN_KERNELS_ONLY) >> 1) & 1
#define QSNN_WITH_REF 1
#else
#define QSNN_WITH_REF 0
#endif
#else
#define QSNN_HAS_KERNEL(k) 1u
#define QSNN_WITH_REF 1
#endif

/* ---- packed weight access: qsnn_unpack() from qsnn_pack.h (contract section 8) ---- */

#define unpack_elem(row, j, bits) qsnn_unpack((row), (j), (unsigned)(bits))

static uint32_t spike_bit(const uint32_t *spk, uint32_t j)
{
    return (spk[j >> 5] >> (j & 31u)) & 1u;
}

/* Index of the lowest set bit (v != 0): two instructions (RBIT, CLZ) on Armv7-M and later and
 * one on x86-64 and AArch64, through the compiler's builtin, which calls no library there;
 * elsewhere (Armv6-M, RV32IMAC, Xtensa LX106) portable (de Bruijn multiply, no library call). */
#if defined(__GNUC__) && (defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || \
                          defined(__ARM_ARCH_8M_MAIN__) || defined(__x86_64__) || defined(__aarch64__))
#define ctz32(v) ((uint32_t)__builtin_ctz(v))
#else
static uint32_t ctz32(uint32_t v)
{
    static const uint8_t pos[32] = {0,  1,  28, 2,  29, 14, 24, 3,  30, 22, 20, 15, 25, 17, 4,  8,
                                    31, 27, 13, 23, 21, 19, 16, 7,  26, 12, 18, 6,  11, 5,  10, 9};
    return pos[((v & (0u - v)) * 0x077CB531u) >> 27];
}
#endif

/* Portable popcount: no library call on cores without a popcount instruction. */
static uint32_t popcount32(uint32_t v)
{
    v = v - ((v >> 1) & 0x55555555u);
    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
    v = (v + (v >> 4)) & 0x0F0F0F0Fu;
    return (v * 0x01010101u) >> 24;
}

/* sum_k popcount(a[k] & b[k]) over n words, SWAR with deferred carries: per word the 2-bit
 * and 4-bit field sums (nibbles <= 4), three words' nibbles added (<= 12), folded to bytes
 * (<= 24) and accumulated in byte lanes, which are summed by one multiply every 10 groups
 * (<= 240 per lane). About 10 instructions per word on a Cortex-M4 against 16 for a full
 * popcount32 per word; the sum is the same integer. */
static uint32_t nibble_counts(uint32_t v)
{
    v = v - ((v >> 1) & 0x55555555u);
    return (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
}

static int32_t popcount_and(const uint32_t *a, const uint32_t *b, uint32_t n)
{
    uint32_t total = 0u, lanes = 0u, groups = 0u, k = 0u;
    for (; k + 3u <= n; k += 3u) {
        uint32_t s = nibble_counts(a[k] & b[k]) + nibble_counts(a[k + 1u] & b[k + 1u]) +
                     nibble_counts(a[k + 2u] & b[k + 2u]);
        lanes += (s & 0x0F0F0F0Fu) + ((s >> 4) & 0x0F0F0F0Fu);
        if (++groups == 10u) {
            total += (lanes * 0x01010101u) >> 24;
            lanes = 0u;
            groups = 0u;
        }
    }
    total += (lanes * 0x01010101u) >> 24;
    for (; k < n; ++k) {
        total += popcount32(a[k] & b[k]);
    }
    return (int32_t)total;
}

/* ---- kernels: which one runs which layer -------------------------------------------- */

/* Can `kernel` run layer L (first: it reads features, not spikes)? */
static int kernel_fits(uint32_t kernel, const qsnn_layer_t *L, int first)
{
    const int conv = L->kind == QSNN_LAYER_CONV;
    const uint32_t w_bits = L->w_bits;
    switch (kernel) {
    case QSNN_KERNEL_AUTO:
    case QSNN_KERNEL_REF:
        return 1;
    case QSNN_KERNEL_W8_DENSE:
        return !conv && first && w_bits == 8u;
    case QSNN_KERNEL_B1_POPCOUNT:
        return !conv && !first && w_bits == 1u;
    case QSNN_KERNEL_EVENT:
        return !conv && !first;
    case QSNN_KERNEL_CONV_W8:
        return conv && first && w_bits == 8u;
    case QSNN_KERNEL_CONV_EVENT:
        return conv && !first;
    case QSNN_KERNEL_CONV_B1_POPCOUNT:
        return conv && !first && w_bits == 1u &&
               (uint32_t)L->c_in * L->kt * L->kf <= QSNN_CONV_POPCOUNT_MAX_FAN;
    case QSNN_KERNEL_B1_COLUMN:
        return !conv && !first && w_bits == 1u && L->w_cols != NULL && L->n_out <= QSNN_COLUMN_MAX_ROWS &&
               (!L->recurrent || L->w_rec_cols != NULL);
    case QSNN_KERNEL_CONV_B1_COLUMN:
        return conv && !first && w_bits == 1u && L->w_cols != NULL && L->c_out <= QSNN_COLUMN_MAX_ROWS &&
               (uint32_t)L->c_in * L->kt * L->kf <= QSNN_CONV_POPCOUNT_MAX_FAN;
    case QSNN_KERNEL_CONV_BN_COLUMN:
        return conv && !first && w_bits != 1u && L->w_cols != NULL && L->c_out <= QSNN_CONV_COLUMN_ROWS &&
               (uint32_t)L->c_in * L->kt * L->kf <= QSNN_CONV_POPCOUNT_MAX_FAN;
    case QSNN_KERNEL_BN_COLUMN:
        return !conv && !first && w_bits != 1u && L->w_cols != NULL && L->n_out <= QSNN_COLUMN_MAX_ROWS &&
               (!L->recurrent || L->w_rec_cols != NULL);
    default:
        return 0;
    }
}

uint32_t qsnn_layer_kernel(const qsnn_model_t *m, uint32_t l)
{
#ifdef QSNN_KERNELS_REF
    (void)m;
    (void)l;
    return QSNN_KERNEL_REF;
#else
    const qsnn_layer_t *L = &m->layers[l];
    if (L->kernel != QSNN_KERNEL_AUTO) {
        return L->kernel;
    }
    if (L->kind == QSNN_LAYER_CONV) {
        if (l == 0u) {
            return L->w_bits == 8u ? QSNN_KERNEL_CONV_W8 : QSNN_KERNEL_REF;
        }
        if (kernel_fits(QSNN_KERNEL_CONV_B1_COLUMN, L, 0)) {
            return QSNN_KERNEL_CONV_B1_COLUMN;
        }
        if (kernel_fits(QSNN_KERNEL_CONV_BN_COLUMN, L, 0)) {
            return QSNN_KERNEL_CONV_BN_COLUMN;
        }
        return kernel_fits(QSNN_KERNEL_CONV_B1_POPCOUNT, L, 0) ? QSNN_KERNEL_CONV_B1_POPCOUNT
                                                               : QSNN_KERNEL_CONV_EVENT;
    }
    if (l == 0u) {
        return L->w_bits == 8u ? QSNN_KERNEL_W8_DENSE : QSNN_KERNEL_REF;
    }
    if (kernel_fits(QSNN_KERNEL_B1_COLUMN, L, 0)) {
        return QSNN_KERNEL_B1_COLUMN;
    }
    if (kernel_fits(QSNN_KERNEL_BN_COLUMN, L, 0)) {
        return QSNN_KERNEL_BN_COLUMN;
    }
    return L->w_bits == 1u ? QSNN_KERNEL_B1_POPCOUNT : QSNN_KERNEL_EVENT;
#endif
}

/* ---- model and state --------------------------------------------------------------- */

static uint32_t round4(uint32_t n) { return (n + 3u) & ~3u; }

/* Membrane storage of a layer: two 4-bit codes per byte (neuron i in byte i / 2, low nibble
 * for even i, two's complement) when mem_bits <= 4, else one int8 per neuron; each layer's
 * block is rounded up to 4 bytes. The values are the contract's; only the RAM layout differs. */
static uint32_t mem_bytes(const qsnn_layer_t *L)
{
    return round4(L->mem_bits <= 4u ? (L->n_out + 1u) / 2u : L->n_out);
}

static int8_t mem_load(const uint8_t *mem, uint32_t i, uint32_t mem_bits)
{
    if (mem_bits <= 4u) { /* the nibble, shifted to the top 4 bits of a byte, sign-extended down */
        const uint32_t up = (uint32_t)mem[i >> 1] << (4u - ((i & 1u) << 2));
        return (int8_t)((int32_t)((up & 0xF0u) ^ 0x80u) - 0x80) / 16;
    }
    return (int8_t)mem[i];
}

static void mem_store(uint8_t *mem, uint32_t i, uint32_t mem_bits, int8_t v)
{
    if (mem_bits <= 4u) {
        const uint32_t at = (i & 1u) << 2;
        const uint32_t b = mem[i >> 1];
        mem[i >> 1] = (uint8_t)((b & ~(15u << at)) | (((uint32_t)(uint8_t)v & 15u) << at));
    } else {
        mem[i] = (uint8_t)v;
    }
}

#ifndef QSNN_NO_CONV
/* Conv geometry (section 4 of docs/contract.md), checked without a division. */
static int conv_ok(const qsnn_layer_t *L, const qsnn_layer_t *below, uint32_t n_bands)
{
    const uint32_t span = (uint32_t)L->f_in + 2u * (uint32_t)(L->kf / 2u); /* padded input */
    if (L->kt < 1u || L->kt > QSNN_CONV_MAX_KT || L->kf < 1u || L->kf > QSNN_CONV_MAX_KF || L->stride < 1u ||
        L->stride > L->kf || L->c_in == 0u || L->f_in == 0u || L->c_out == 0u || L->f_out == 0u ||
        L->f_out > QSNN_CONV_MAX_FOUT || L->recurrent) {
        return 0;
    }
    /* f_out = floor((span - kf) / stride) + 1 */
    if (span < L->kf || (uint32_t)(L->f_out - 1u) * L->stride + L->kf > span ||
        (uint32_t)L->f_out * L->stride + L->kf <= span) {
        return 0;
    }
    if ((uint32_t)L->c_in * L->f_in != L->n_in || (uint32_t)L->c_out * L->f_out != L->n_out) {
        return 0;
    }
    if (below == NULL) {
        return L->c_in == 1u && L->f_in == n_bands;
    }
    return below->kind == QSNN_LAYER_CONV && below->c_out == L->c_in && below->f_out == L->f_in;
}
#endif

/* ---- the overflow bounds (docs/contract.md section 2, qsnnkit/bounds.py) ---------------- */

/* Sum of |w| over one packed row of n weights; 1-bit rows sum to n. */
static uint32_t row_abs_sum(const uint32_t *row, uint32_t n, uint32_t bits)
{
    uint32_t j;
    uint32_t s = 0;
    if (bits == 1u) {
        return n;
    }
    for (j = 0; j < n; ++j) {
        const int32_t w = unpack_elem(row, j, bits);
        s += (uint32_t)(w < 0 ? -w : w); /* n <= 65535, |w| <= 127: no wrap */
    }
    return s;
}

/* Largest |scale(acc, sh)| for |acc| <= a <= QSNN_ACC_BOUND, in *out; 0 when the rounding
 * intermediate a + 2^(sh-1) passes QSNN_ACC_BOUND or the result passes QSNN_CURRENT_BOUND
 * (either fails the model). 32-bit only: no 64-bit helpers on cores that lack them. */
static int scaled_bound(uint32_t a, int sh, uint32_t *out)
{
    if (sh > 0) {
        const uint32_t half = (uint32_t)1 << (unsigned)(sh - 1);
        if (a > QSNN_ACC_BOUND - half) {
            return 0;
        }
        *out = (a + half) >> (unsigned)sh;
        return 1;
    }
    if (a > (QSNN_CURRENT_BOUND >> (unsigned)(-sh))) {
        return 0;
    }
    *out = a << (unsigned)(-sh);
    return 1;
}

static int shift_ok(int sh)
{
    return sh >= QSNN_SHIFT_MIN && sh <= QSNN_SHIFT_MAX;
}

static uint32_t abs32(int32_t v)
{
    return v < 0 ? 0u - (uint32_t)v : (uint32_t)v;
}

/* Bit j of packed 1-bit row `row`. */
static uint32_t row_bit(const uint32_t *rows, uint32_t words, uint32_t r, uint32_t j)
{
    return (rows[(size_t)r * words + (j >> 5)] >> (j & 31u)) & 1u;
}

/* Narrowest membrane a build runs: 2 bits, or 4 in a build without the 2- and 3-bit neuron
 * loops (-DQSNN_NO_NARROW_MEM), which refuses such models. */
#ifdef QSNN_NO_NARROW_MEM
#define MEM_BITS_MIN 4u
#else
#define MEM_BITS_MIN 2u
#endif

/* Bit p of element j's code in packed row r of `bits`-bit elements (rows of `words` words). */
static uint32_t code_bit(const uint32_t *rows, uint32_t words, uint32_t bits, uint32_t r, uint32_t j, uint32_t p)
{
    const uint32_t pos = j * bits + p;
    return (rows[(size_t)r * words + (pos >> 5)] >> (pos & 31u)) & 1u;
}

/* A layer's column copies (w_cols, w_rec_cols) hold exactly its rows' weights, transposed
 * (wider weights: one transposed binary copy per bit plane of their codes, plane 0
 * first): checked bit by bit once at start-up, so a column kernel cannot compute with other
 * weights than the reference kernel. No copies: nothing to check. */
static int columns_match(const qsnn_layer_t *L)
{
    const uint32_t rows = L->kind == QSNN_LAYER_CONV ? L->c_out : L->n_out;
    const uint32_t fan = L->kind == QSNN_LAYER_CONV ? (uint32_t)L->c_in * L->kt * L->kf : L->n_in;
    const uint32_t bits = L->w_bits;
    const uint32_t rw = QSNN_ROW_WORDS(fan, bits), cw = QSNN_ROW_WORDS(rows, 1u);
    uint32_t r, j, p;
    if (L->w_cols == NULL) {
        return L->w_rec_cols == NULL;
    }
    if ((L->recurrent && L->w_rec_cols == NULL) || (!L->recurrent && L->w_rec_cols != NULL)) {
        return 0;
    }
    for (p = 0; p < bits; ++p) {
        const uint32_t *plane = L->w_cols + (size_t)p * fan * cw;
        for (r = 0; r < rows; ++r) {
            for (j = 0; j < fan; ++j) {
                if (code_bit(L->w, rw, bits, r, j, p) != row_bit(plane, cw, j, r)) {
                    return 0;
                }
            }
        }
    }
    if (L->recurrent) {
        const uint32_t nw = QSNN_ROW_WORDS(L->n_out, 1u);
        for (r = 0; r < L->n_out; ++r) {
            for (j = 0; j < L->n_out; ++j) {
                if (row_bit(L->w_rec, nw, r, j) != row_bit(L->w_rec_cols, nw, j, r)) {
                    return 0;
                }
            }
        }
    }
    return 1;
}

/* An 8-bit conv layer's int16-pair copy (w_quads) holds exactly its rows' weights in the
 * layout qsnn_core.h describes, zeros in the padding taps and channels: checked word by word
 * once at start-up, like the column copies. No copy: nothing to check. */
static int quads_match(const qsnn_layer_t *L)
{
    const uint32_t kt = L->kt, kf = L->kf, kfe = kf + (kf & 1u), hp = kfe / 2u, np = kt * hp;
    const uint32_t rw = QSNN_ROW_WORDS(kt * kf, 8u);
    uint32_t g, q, k;
    if (L->w_quads == NULL) {
        return 1;
    }
    if (L->kind != QSNN_LAYER_CONV || L->w_bits != 8u || L->c_in != 1u) {
        return 0;
    }
    for (g = 0; 4u * g < L->c_out; ++g) {
        for (q = 0; q < np; ++q) {
            const uint32_t dt = q / hp, d0 = 2u * (q % hp);
            for (k = 0; k < 4u; ++k) {
                const uint32_t c = 4u * g + k;
                int32_t lo = 0, hi = 0;
                if (c < L->c_out) {
                    const uint32_t *row = L->w + (size_t)c * rw;
                    lo = unpack_elem(row, dt * kf + d0, 8u);
                    hi = d0 + 1u < kf ? unpack_elem(row, dt * kf + d0 + 1u, 8u) : 0;
                }
                if (L->w_quads[(g * np + q) * 4u + k] != (((uint32_t)lo & 0xFFFFu) | ((uint32_t)hi << 16))) {
                    return 0;
                }
            }
        }
    }
    return 1;
}

/* The same bounds qsnnkit.bounds proves: every accumulator, rounding intermediate, current
 * and per-class output of the model stays in its range for QSNN_MAX_STEPS steps. */
static int bounds_ok(const qsnn_model_t *m)
{
    uint32_t l;
    uint32_t p;
    uint32_t n_last = m->n_bands;
    for (l = 0; l < m->n_layers; ++l) {
        const qsnn_layer_t *L = &m->layers[l];
        const uint32_t fan = L->kind == QSNN_LAYER_CONV ? (uint32_t)L->c_in * L->kt * L->kf : L->n_in;
        const uint32_t rows = L->kind == QSNN_LAYER_CONV ? L->c_out : L->n_out;
        const uint32_t rw = QSNN_ROW_WORDS(fan, L->w_bits);
        const uint32_t xmax = l == 0u ? QSNN_FEATURE_ABS_MAX : 1u;
        for (p = 0; p < rows; ++p) {
            /* <= 65535 * 127 * 255 < 2^32 */
            const uint32_t a_ff = row_abs_sum(L->w + (size_t)p * rw, fan, L->w_bits) * xmax;
            uint32_t s_ff;
            uint32_t s_rec = 0;
            if (!shift_ok(L->sh_ff[p]) || a_ff > QSNN_ACC_BOUND || !scaled_bound(a_ff, L->sh_ff[p], &s_ff)) {
                return 0;
            }
            if (L->recurrent && (!shift_ok(L->sh_rec[p]) || !scaled_bound(L->n_out, L->sh_rec[p], &s_rec))) {
                return 0; /* n_out <= 65535 < QSNN_ACC_BOUND */
            }
            if (s_ff + s_rec + abs32(L->bias[p]) + (L->adapt_shift != 0u ? QSNN_ADAPT_CURRENT_MAX : 0u) >
                QSNN_CURRENT_BOUND) {
                return 0; /* each term <= 2^23: no wrap */
            }
        }
        n_last = L->n_out;
    }
    for (p = 0; p < m->n_classes; ++p) {
        const uint32_t one = abs32(m->b_out[p]) + row_abs_sum(m->w_out + (size_t)p * QSNN_ROW_WORDS(n_last, 8u),
                                                              n_last, 8u); /* <= 2^31 + 2^23 */
        if (one > QSNN_READOUT_BOUND / QSNN_MAX_STEPS) {
            return 0; /* one * QSNN_MAX_STEPS > QSNN_READOUT_BOUND */
        }
    }
    return 1;
}

int qsnn_model_check(const qsnn_model_t *m)
{
    uint32_t l;
    uint32_t n_prev;
    if (m == NULL) {
        return QSNN_ERR_MODEL;
    }
    if (m->format_version != QSNN_FORMAT_VERSION) {
        return QSNN_ERR_VERSION;
    }
    if (m->n_layers < 1u || m->n_layers > QSNN_MAX_LAYERS || m->layers == NULL || m->n_bands == 0u ||
        m->feat_mu == NULL || m->n_classes == 0u || m->w_out == NULL || m->b_out == NULL) {
        return QSNN_ERR_MODEL;
    }
    n_prev = m->n_bands;
    for (l = 0; l < m->n_layers; ++l) {
        const qsnn_layer_t *L = &m->layers[l];
        const uint32_t b = L->mem_bits;
        if (L->n_in != n_prev || L->n_out == 0u || L->w == NULL || L->sh_ff == NULL || L->bias == NULL) {
            return QSNN_ERR_MODEL;
        }
        if (!(L->w_bits == 1u || L->w_bits == 2u || L->w_bits == 4u || L->w_bits == 8u)) {
            return QSNN_ERR_MODEL;
        }
        if (l == 0u && L->w_bits == 1u) {
            return QSNN_ERR_MODEL; /* features are integers, not spikes */
        }
        if (b < MEM_BITS_MIN || b > 8u || L->leak_shift < 1u || (int)L->leak_shift > qsnn_mem_shift((int)b)) {
            return QSNN_ERR_MODEL;
        }
        if (L->recurrent && (L->w_rec == NULL || L->sh_rec == NULL)) {
            return QSNN_ERR_MODEL;
        }
        if (L->adapt_shift == 0u ? L->adapt_beta != 0u
                                 : (L->adapt_shift < QSNN_ADAPT_SHIFT_MIN || L->adapt_shift > QSNN_ADAPT_SHIFT_MAX ||
                                    L->adapt_beta == 0u)) {
            return QSNN_ERR_MODEL; /* plain LIF (0, 0), or a shift in range and a positive beta */
        }
        if (L->kind == QSNN_LAYER_CONV) {
#ifdef QSNN_NO_CONV
            return QSNN_ERR_MODEL; /* built without the conv kernels */
#else
            if (!conv_ok(L, l == 0u ? NULL : &m->layers[l - 1u], m->n_bands)) {
                return QSNN_ERR_MODEL;
            }
#endif
        } else if (L->kind != QSNN_LAYER_DENSE) {
            return QSNN_ERR_MODEL;
        }
        if (!kernel_fits(L->kernel, L, l == 0u)) {
            return QSNN_ERR_MODEL;
        }
        if (!QSNN_HAS_KERNEL(qsnn_layer_kernel(m, l))) {
            return QSNN_ERR_MODEL; /* a kernel this build left out (QSNN_KERNELS_ONLY) */
        }
        if (!columns_match(L) || !quads_match(L)) {
            return QSNN_ERR_MODEL;
        }
        n_prev = L->n_out;
    }
    return bounds_ok(m) ? QSNN_OK : QSNN_ERR_BOUNDS;
}

/* Bytes of a conv layer's input history: kt frames of its input. */
static uint32_t hist_bytes(const qsnn_layer_t *L, uint32_t l)
{
    if (L->kind != QSNN_LAYER_CONV) {
        return 0u;
    }
    return l == 0u ? round4((uint32_t)L->kt * L->n_in) : 4u * (uint32_t)L->kt * QSNN_ROW_WORDS(L->n_in, 1u);
}

size_t qsnn_state_bytes(const qsnn_model_t *m)
{
    uint32_t bytes = 0;
    uint32_t l;
    for (l = 0; l < m->n_layers; ++l) {
        const qsnn_layer_t *L = &m->layers[l];
        bytes += mem_bytes(L);                                                 /* membranes */
        bytes += 4u * QSNN_ROW_WORDS(L->n_out, 1u) * (L->recurrent ? 2u : 1u); /* spikes */
        bytes += hist_bytes(L, l);                                             /* conv input history */
        bytes += L->adapt_shift != 0u ? round4(L->n_out) : 0u;                 /* adaptation states */
    }
    if (m->layers[0].kind != QSNN_LAYER_CONV) {
        bytes += round4(2u * m->n_bands); /* centred features (a conv first layer keeps raw ones) */
    }
    bytes += 4u * m->n_classes;        /* outputs */
    return bytes;
}

int qsnn_state_init(qsnn_state_t *st, const qsnn_model_t *m, void *arena, size_t arena_bytes)
{
    uint8_t *p = (uint8_t *)arena;
    uint32_t l;
    int rc = qsnn_model_check(m);
    if (rc != QSNN_OK) {
        return rc;
    }
    if (arena == NULL || ((uintptr_t)arena & 3u) != 0u || arena_bytes < qsnn_state_bytes(m)) {
        return QSNN_ERR_ARENA;
    }
    st->model = m;
    /* 32-bit words first, then 16-bit, then bytes: every pointer stays aligned. */
    st->out = (int32_t *)(void *)p;
    p += 4u * m->n_classes;
    for (l = 0; l < QSNN_MAX_LAYERS; ++l) {
        st->spk[l] = NULL;
        st->prev[l] = NULL;
        st->hist_s[l] = NULL;
        st->adapt[l] = NULL;
    }
    st->x = NULL;
    st->hist_feat = NULL;
    for (l = 0; l < m->n_layers; ++l) {
        const qsnn_layer_t *L = &m->layers[l];
        const uint32_t w = QSNN_ROW_WORDS(L->n_out, 1u);
        st->spk[l] = (uint32_t *)(void *)p;
        p += 4u * w;
        if (L->recurrent) {
            st->prev[l] = (uint32_t *)(void *)p;
            p += 4u * w;
        }
        if (l > 0u && L->kind == QSNN_LAYER_CONV) {
            st->hist_s[l] = (uint32_t *)(void *)p;
            p += hist_bytes(L, l);
        }
    }
    if (m->layers[0].kind == QSNN_LAYER_CONV) {
        st->hist_feat = p; /* bytes: raw features, centred when read */
        p += hist_bytes(&m->layers[0], 0u);
    } else {
        st->x = (int16_t *)(void *)p;
        p += round4(2u * m->n_bands);
    }
    for (l = 0; l < m->n_layers; ++l) {
        if (m->layers[l].adapt_shift != 0u) {
            st->adapt[l] = p;
            p += round4(m->layers[l].n_out);
        }
    }
    st->mem = p;
    qsnn_reset(st);
    return QSNN_OK;
}

void qsnn_reset(qsnn_state_t *st)
{
    const qsnn_model_t *m = st->model;
    uint32_t l;
    uint32_t i;
    uint32_t off = 0;
    for (i = 0; i < m->n_classes; ++i) {
        st->out[i] = 0;
    }
    for (l = 0; l < m->n_layers; ++l) {
        const qsnn_layer_t *L = &m->layers[l];
        const uint32_t w = QSNN_ROW_WORDS(L->n_out, 1u);
        for (i = 0; i < w; ++i) {
            st->spk[l][i] = 0u;
            if (st->prev[l] != NULL) {
                st->prev[l][i] = 0u;
            }
        }
        for (i = 0; i < mem_bytes(L); ++i) {
            st->mem[off + i] = 0u;
        }
        off += mem_bytes(L);
        if (st->hist_s[l] != NULL) {
            for (i = 0; i < (uint32_t)L->kt * QSNN_ROW_WORDS(L->n_in, 1u); ++i) {
                st->hist_s[l][i] = 0u;
            }
        }
        if (st->adapt[l] != NULL) {
            for (i = 0; i < L->n_out; ++i) {
                st->adapt[l][i] = 0u;
            }
        }
    }
    if (st->hist_feat != NULL) { /* raw features equal to the centring: centred 0 (contract section 4) */
        uint8_t *h = st->hist_feat;
        uint32_t dt;
        for (dt = 0; dt < m->layers[0].kt; ++dt, h += m->n_bands) {
            for (i = 0; i < m->n_bands; ++i) {
                h[i] = m->feat_mu[i];
            }
        }
    }
    st->steps = 0u;
}

/* ---- the input of a synaptic sum ---------------------------------------------------- */

typedef struct {
    const uint8_t *feat;  /* raw features (first layer), or NULL */
    const int16_t *x;     /* centred features (first layer, dense), or NULL */
    const uint32_t *xp;   /* DSP builds: x as pairs (x[4k], x[4k+2]), (x[4k+1], x[4k+3]), or NULL */
    const uint32_t *spk;  /* packed spikes (other layers, recurrence), or NULL */
    uint32_t n;           /* inputs */
    int32_t active;       /* spikes set in spk (counted once per layer and step) */
} qsnn_input_t;

/* No inputs: what a non-recurrent layer's recurrent counters are filled from. */
static const qsnn_input_t no_input = {NULL, NULL, NULL, NULL, 0u, 0};

/* A kernel: sum_j w_j * in_j over one packed weight row of `bits`-bit weights. */
typedef int32_t (*dot_fn)(const uint32_t *row, uint32_t bits, const qsnn_input_t *in);

static int32_t count_spikes(const uint32_t *spk, uint32_t n)
{
    const uint32_t words = QSNN_ROW_WORDS(n, 1u);
    uint32_t k;
    int32_t act = 0;
    for (k = 0; k < words; ++k) {
        act += (int32_t)popcount32(spk[k]);
    }
    return act;
}

/* Reference kernel: element by element, any input, any width. The oracle. */
static int32_t dot_ref(const uint32_t *row, uint32_t bits, const qsnn_input_t *in)
{
    int32_t acc = 0;
    uint32_t j;
    for (j = 0; j < in->n; ++j) {
        const int32_t v = in->x != NULL ? (int32_t)in->x[j] : (int32_t)spike_bit(in->spk, j);
        acc += unpack_elem(row, j, bits) * v;
    }
    return acc;
}

#if QSNN_DSP
/* Pair the int16 inputs for SMLAD: word 2k = (x[4k], x[4k+2]), word 2k+1 = (x[4k+1], x[4k+3]),
 * matching SXTB16 of a weight word (bytes 0, 2) and of the word rotated by 8 (bytes 1, 3). */
static void pair_inputs(const int16_t *x, uint32_t n, uint32_t *xp)
{
    uint32_t k;
    for (k = 0; k + 4u <= n; k += 4u) {
        xp[k >> 1] = (uint32_t)(uint16_t)x[k] | ((uint32_t)(uint16_t)x[k + 2u] << 16);
        xp[(k >> 1) + 1u] = (uint32_t)(uint16_t)x[k + 1u] | ((uint32_t)(uint16_t)x[k + 3u] << 16);
    }
}
#endif

/* 8-bit weights x int16 features, four weights per word (two SMLADs per word on DSP cores). */
static int32_t dot_w8_dense(const uint32_t *row, uint32_t bits, const qsnn_input_t *in)
{
    const int16_t *x = in->x;
    const uint32_t n = in->n;
    int32_t acc = 0;
    uint32_t j = 0;
    (void)bits;
#if QSNN_DSP
    if (in->xp != NULL) {
        /* walking pointers and a counted loop: ~9 instructions per 4 weights on a Cortex-M4
         * (indexing from j cost 16) */
        const uint32_t *xp = in->xp;
        const uint32_t *wp = row;
        uint32_t q;
        for (q = n >> 2; q != 0u; --q) {
            const uint32_t w = *wp++;
            acc = __smlad(__sxtb16(w), xp[0], acc);
            acc = __smlad(__sxtb16((w >> 8) | (w << 24)), xp[1], acc);
            xp += 2;
        }
        j = n & ~3u;
    }
#endif
    for (; j + 4u <= n; j += 4u) {
        const uint32_t w = row[j >> 2];
        acc += (int32_t)(int8_t)(uint8_t)(w) * x[j];
        acc += (int32_t)(int8_t)(uint8_t)(w >> 8) * x[j + 1u];
        acc += (int32_t)(int8_t)(uint8_t)(w >> 16) * x[j + 2u];
        acc += (int32_t)(int8_t)(uint8_t)(w >> 24) * x[j + 3u];
    }
    for (; j < n; ++j) {
        acc += unpack_elem(row, j, 8u) * x[j];
    }
    return acc;
}

/* 1-bit weights x packed spikes: sum_j w_j s_j = 2 * popcount(W & S) - popcount(S). */
static int32_t dot_b1_popcount(const uint32_t *row, uint32_t bits, const qsnn_input_t *in)
{
    (void)bits;
    return 2 * popcount_and(row, in->spk, QSNN_ROW_WORDS(in->n, 1u)) - in->active;
}

/* Any width x packed spikes: the weights of the active spikes only. */
static int32_t dot_event(const uint32_t *row, uint32_t bits, const qsnn_input_t *in)
{
    const uint32_t words = QSNN_ROW_WORDS(in->n, 1u);
    int32_t acc = 0;
    uint32_t k;
    for (k = 0; k < words; ++k) {
        uint32_t s = in->spk[k];
        while (s != 0u) { /* only the set bits: the cost follows the firing rate */
            acc += unpack_elem(row, k * 32u + ctz32(s), bits);
            s &= s - 1u;
        }
    }
    return acc;
}

/* ---- column kernels: bit-sliced counters --------------------------------------------- */

/* Counter planes of a column kernel: up to QSNN_COLUMN_MAX_ROWS rows x 16 bits (counts up to
 * a fan-in of 65535). */
#define COLUMN_PLANE_WORDS (QSNN_COLUMN_MAX_ROWS / 32u * 16u)

/* Bits of a counter that holds 0..n. */
static uint32_t count_bits(uint32_t n)
{
    uint32_t b = 1u;
    while ((n >> b) != 0u) {
        ++b;
    }
    return b;
}

/* Columns added to the counters at once (a stack list of pointers). */
#define COLUMN_CHUNK 64u

/* Carry-save adder over 32 lanes: a + b + c = 2 h + l in every lane. */
#define CSA(h, l, a, b, c)                      \
    do {                                        \
        const uint32_t u_ = (a) ^ (b);          \
        const uint32_t c_ = (c);                \
        (h) = ((a) & (b)) | (u_ & c_);          \
        (l) = u_ ^ c_;                          \
    } while (0)

/* Add n weight columns (cols[i]: one bit per row, `words` words) to bit-sliced counters:
 * plane b, at planes[b * words], holds bit b of every row's count; at least 3 planes, and
 * every count stays below 2^planes (the caller sizes them from the number of columns).
 * Harley-Seal: per word, eight columns go through a tree of seven carry-save adders into
 * planes 0-2 (ones, twos, fours, kept in registers), and only the carry of weight 8 ripples
 * into planes 3 and up; the last n % 8 columns ripple one by one. */
/* Half adders of carries c into planes p, p + words, ...: a ripple that stops when it dies out. */
#define RIPPLE(p, words, c)          \
    do {                             \
        while ((c) != 0u) {          \
            const uint32_t t_ = *(p) & (c); \
            *(p) ^= (c);             \
            (c) = t_;                \
            (p) += (words);          \
        }                            \
    } while (0)

static void columns_add(uint32_t *planes, uint32_t words, const uint32_t *const *cols, uint32_t n)
{
    uint32_t k;
    for (k = 0; k < words; ++k) {
        uint32_t ones = planes[k], twos = planes[words + k], fours = planes[2u * words + k];
        uint32_t i = 0, c;
        uint32_t *p;
        for (; i + 8u <= n; i += 8u) {
            uint32_t ta, tb, fa, fb;
            CSA(ta, ones, ones, cols[i][k], cols[i + 1u][k]);
            CSA(tb, ones, ones, cols[i + 2u][k], cols[i + 3u][k]);
            CSA(fa, twos, twos, ta, tb);
            CSA(ta, ones, ones, cols[i + 4u][k], cols[i + 5u][k]);
            CSA(tb, ones, ones, cols[i + 6u][k], cols[i + 7u][k]);
            CSA(fb, twos, twos, ta, tb);
            CSA(c, fours, fours, fa, fb); /* c: the carries of weight 8 */
            p = planes + 3u * words + k;
            RIPPLE(p, words, c);
        }
        for (; i < n; ++i) { /* the last n % 8 columns one by one: half adders into planes 0-2, then on */
            uint32_t t;
            c = cols[i][k];
            t = ones & c;
            ones ^= c;
            c = t;
            t = twos & c;
            twos ^= c;
            c = t;
            t = fours & c;
            fours ^= c;
            c = t;
            p = planes + 3u * words + k;
            RIPPLE(p, words, c);
        }
        planes[k] = ones;
        planes[words + k] = twos;
        planes[2u * words + k] = fours;
    }
}

/* ---- one layer's counters, filled column by column ----------------------------------- */

/* The bit-sliced counters of a layer's rows (plane b, at planes[b * words], holds bit b of
 * every row's count), the columns added so far, and, once complete, the counts as bytes when
 * they fit. The columns go in through a caller's list of COLUMN_CHUNK pointers, which two
 * counters filled one after the other can share. */
typedef struct {
    const uint32_t *cols; /* the layer's column copy, `words` words per column */
    uint32_t words;
    uint32_t n;           /* columns waiting in the list */
    int32_t act;          /* columns added (the active inputs) */
    uint32_t planes[COLUMN_PLANE_WORDS];
    uint32_t counts8[QSNN_COLUMN_MAX_ROWS / 4u];
} column_sums_t;

/* Empty counters for up to max_cols columns: max(3, count_bits(max_cols)) zeroed planes. */
static void column_begin(column_sums_t *s, const uint32_t *cols, uint32_t words, uint32_t max_cols)
{
    const uint32_t np = count_bits(max_cols);
    uint32_t k;
    s->cols = cols;
    s->words = words;
    s->n = 0u;
    s->act = 0;
    for (k = 0; k < words * (np < 3u ? 3u : np); ++k) {
        s->planes[k] = 0u;
    }
}

/* Put the columns base + j of the set bits j of v on the list (*n of them there), a full list
 * into the counters. Inlined into loops that keep cols, words and *n in registers. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void column_take(column_sums_t *s, const uint32_t **list, uint32_t *n, const uint32_t *cols,
                               uint32_t words, uint32_t v, uint32_t base)
{
    while (v != 0u) {
        list[(*n)++] = cols + (size_t)(base + ctz32(v)) * words;
        v &= v - 1u;
        if (*n == COLUMN_CHUNK) {
            columns_add(s->planes, words, list, COLUMN_CHUNK);
            s->act += (int32_t)COLUMN_CHUNK;
            *n = 0u;
        }
    }
}

/* The columns of the set bits of a packed bit vector bits[nw] (bit j: column j). */
static void column_words(column_sums_t *s, const uint32_t **list, const uint32_t *bits, uint32_t nw)
{
    const uint32_t *cols = s->cols;
    const uint32_t words = s->words;
    uint32_t n = s->n, k;
    for (k = 0; k < nw; ++k) {
        column_take(s, list, &n, cols, words, bits[k], k * 32u);
    }
    s->n = n;
}

/* Row r's count from the planes. */
static int32_t column_count(const uint32_t *planes, uint32_t words, uint32_t np, uint32_t r)
{
    const uint32_t *p = planes + (r >> 5);
    const uint32_t sh = r & 31u;
    uint32_t b, n = 0u;
    for (b = 0; b < np; ++b, p += words) {
        n |= ((*p >> sh) & 1u) << b;
    }
    return (int32_t)n;
}

/* Bit i of a nibble -> byte i of a word set to 1. */
static const uint32_t nibble_bytes[16] = {
    0x00000000u, 0x00000001u, 0x00000100u, 0x00000101u, 0x00010000u, 0x00010001u, 0x00010100u, 0x00010101u,
    0x01000000u, 0x01000001u, 0x01000100u, 0x01000101u, 0x01010000u, 0x01010001u, 0x01010100u, 0x01010101u,
};

/* Every row's count from the planes as one byte, row r in byte r & 3 of counts[r >> 2]
 * (counts[8 * words]); each count must be <= 255, so no byte carries into the next. Eight
 * table lookups per plane word instead of a shift per row and plane (column_count). */
static void column_counts8(const uint32_t *planes, uint32_t words, uint32_t np, uint32_t *counts)
{
    uint32_t b, k, n;
    for (k = 0; k < 8u * words; ++k) {
        counts[k] = 0u;
    }
    for (b = 0; b < np; ++b) {
        for (k = 0; k < words; ++k) {
            const uint32_t p = planes[b * words + k];
            uint32_t *o = counts + 8u * k;
            if (p == 0u) {
                continue;
            }
            for (n = 0; n < 8u; ++n) {
                o[n] += nibble_bytes[(p >> (4u * n)) & 15u] << b;
            }
        }
    }
}

/* What the neuron loop reads from complete counters: returned by value, so that it stays in
 * registers while the loop stores membranes (a uint8_t store may alias any counter field). */
typedef struct {
    const uint32_t *planes;
    const uint32_t *counts8; /* NULL: the counts pass a byte; read them from the planes */
    uint32_t words;
    uint32_t np;
    int32_t act;
} column_out_t;

/* The columns still in the list added; a count never exceeds act, so count_bits(act) planes
 * hold it, and when that is at most 8 the counts are also read out as bytes. */
static column_out_t column_end(column_sums_t *s, const uint32_t *const *list)
{
    column_out_t o;
    columns_add(s->planes, s->words, list, s->n);
    s->act += (int32_t)s->n;
    s->n = 0u;
    o.planes = s->planes;
    o.words = s->words;
    o.np = count_bits((uint32_t)s->act);
    o.act = s->act;
    o.counts8 = NULL;
    if (o.np <= 8u) {
        column_counts8(s->planes, s->words, o.np, s->counts8);
        o.counts8 = s->counts8;
    }
    return o;
}

/* Row r's raw count: the number of added columns with bit r set. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline uint32_t column_raw(const column_out_t *o, uint32_t r)
{
    return o->counts8 != NULL ? (o->counts8[r >> 2] >> (8u * (r & 3u))) & 0xFFu
                              : (uint32_t)column_count(o->planes, o->words, o->np, r);
}

/* Row r's synaptic sum: 2 * count - active (1-bit weights are +-1). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline int32_t column_sum(const column_out_t *o, uint32_t r)
{
    return 2 * (int32_t)column_raw(o, r) - o->act;
}

/* The synaptic sums of rows r0 .. r0 + n - 1 into acc[0..n): column_sum() of each, four rows a
 * word when the counts are bytes and r0 is a multiple of 4. */
static void column_fill(const column_out_t *o, uint32_t r0, uint32_t n, int32_t *acc)
{
    uint32_t j = 0u;
    if (o->counts8 != NULL && (r0 & 3u) == 0u) {
        const uint32_t *w = o->counts8 + (r0 >> 2);
        const int32_t act = o->act;
        for (; j + 4u <= n; j += 4u) {
            const uint32_t v = *w++;
            acc[j] = 2 * (int32_t)(v & 0xFFu) - act;
            acc[j + 1u] = 2 * (int32_t)((v >> 8) & 0xFFu) - act;
            acc[j + 2u] = 2 * (int32_t)((v >> 16) & 0xFFu) - act;
            acc[j + 3u] = 2 * (int32_t)(v >> 24) - act;
        }
    }
    for (; j < n; ++j) {
        acc[j] = column_sum(o, r0 + j);
    }
}

/* Counters over the active spikes of `in` (packed, in->active of them). */
static column_out_t column_spikes(column_sums_t *s, const uint32_t **list, const uint32_t *cols, uint32_t words,
                                  const qsnn_input_t *in)
{
    column_begin(s, cols, words, (uint32_t)in->active);
    column_words(s, list, in->spk, QSNN_ROW_WORDS(in->n, 1u));
    return column_end(s, list);
}

/* ---- the per-neuron code every kernel shares ----------------------------------------- */

static void centre_features(qsnn_state_t *st, const uint8_t *feat)
{
    const qsnn_model_t *m = st->model;
    uint32_t j;
    for (j = 0; j < m->n_bands; ++j) {
        st->x[j] = (int16_t)((int32_t)feat[j] - (int32_t)m->feat_mu[j]);
    }
}

static void begin_step(qsnn_state_t *st)
{
    const qsnn_model_t *m = st->model;
    uint32_t l;
    uint32_t i;
    for (l = 0; l < m->n_layers; ++l) {
        const uint32_t w = QSNN_ROW_WORDS(m->layers[l].n_out, 1u);
        for (i = 0; i < w; ++i) {
            if (st->prev[l] != NULL) {
                st->prev[l][i] = st->spk[l][i];
            }
            st->spk[l][i] = 0u;
        }
    }
}

/* A layer's per-neuron constants, read once per layer and step (kept out of the per-neuron
 * code, where stores to the membranes would make the compiler read them again). */
typedef struct {
    qsnn_lif_k_t lif;
    const int8_t *sh_ff;
    const int16_t *bias;
    const int8_t *sh_rec; /* NULL: not recurrent */
    uint8_t *adapt;       /* NULL: plain LIF */
    uint32_t adapt_shift;
    uint32_t adapt_beta;
    uint32_t mem_bits;
} neuron_k_t;

static neuron_k_t neuron_consts(const qsnn_layer_t *L, uint8_t *adapt)
{
    neuron_k_t k;
    k.lif = qsnn_lif_consts(L->leak_shift, L->mem_bits);
    k.sh_ff = L->sh_ff;
    k.bias = L->bias;
    k.sh_rec = L->recurrent ? L->sh_rec : NULL;
    k.adapt = adapt;
    k.adapt_shift = L->adapt_shift;
    k.adapt_beta = L->adapt_beta;
    k.mem_bits = L->mem_bits;
    return k;
}

/* Current of a neuron from its sums (contract: scale, bias, saturate), then the LIF step.
 * p indexes the layer's per-row parameters: the neuron (dense) or its channel (conv). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline uint32_t neuron_fire(const neuron_k_t *k, uint32_t p, int32_t acc_ff, int32_t acc_rec, uint8_t *mem,
                                   uint32_t i)
{
    int8_t v = mem_load(mem, i, k->mem_bits);
    uint32_t s;
    int32_t c = qsnn_scale(acc_ff, k->sh_ff[p]) + (int32_t)k->bias[p];
    if (k->sh_rec != NULL) {
        c += qsnn_scale(acc_rec, k->sh_rec[p]);
    }
    if (k->adapt != NULL) { /* adaptive LIF: the adaptation state lowers the current before it saturates */
        c -= qsnn_adapt_current(k->adapt[i]);
    }
    s = qsnn_lif_step_k(&v, qsnn_sat16(c), &k->lif);
    mem_store(mem, i, k->mem_bits, v);
    if (k->adapt != NULL) {
        k->adapt[i] = qsnn_adapt_step(k->adapt[i], s, k->adapt_shift, k->adapt_beta);
    }
    return s;
}

/* ---- the fast kernels' per-neuron code: a group of neurons at a time ------------------ */

/* Neurons the fast kernels hand to fire_group() at once (their sums live on the stack). */
#define FIRE_CHUNK 32u

/* One group's neurons: neuron i0 + j * istep takes the sums ff[j] (and rec[j]) and the
 * parameters of row p0 + j * pstep, j = 0..n-1. The arithmetic is the contract's, written
 * out for the loop: qsnn_scale, bias, qsnn_adapt_current, qsnn_sat16, qsnn_lif_step_k and
 * qsnn_adapt_step in that order (the kernel tests hold it to neuron_fire(), bit for bit).
 * nib / adapt / rec are constants at each call site of fire_run, so the compiler drops the
 * paths a variant does not take. nib 4: 4-bit membranes, read and written as nibbles with no
 * width test, the store shift a constant, clamped by one saturation; nib 1: 2- and 3-bit
 * membranes, nibbles too (their storage, docs/contract.md), with the layer's shift and range;
 * nib 0: 5- to 8-bit membranes, a byte each. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void fire_run(const neuron_k_t *k, const int32_t *ff, const int32_t *rec, uint32_t n, uint32_t p0,
                            uint32_t pstep, uint32_t i0, uint32_t istep, uint8_t *mem, uint32_t *spk_out,
                            const int nib, const int adapt, const int has_rec)
{
    /* 4-bit membranes: the store shift and its rounding half are constants */
    const int32_t ms = nib == 4 ? qsnn_mem_shift(4) : k->lif.ms;
    const int32_t half = nib == 4 ? (int32_t)1 << (qsnn_mem_shift(4) - 1) : k->lif.half;
    const int32_t keep = k->lif.keep, hi = k->lif.hi, lo = k->lif.lo;
    const uint32_t mem_bits = k->mem_bits;
    const int8_t *sh_ff = k->sh_ff + p0, *sh_rec = has_rec ? k->sh_rec + p0 : NULL;
    const int16_t *bias = k->bias + p0;
    const int32_t *const end = ff + n;
    /* locals, not k's fields: the membrane stores (uint8_t) may alias anything, so fields
     * read through k would be read again for every neuron */
    uint8_t *const ad = adapt ? k->adapt : NULL;
    const uint32_t a_shift = k->adapt_shift, a_beta = k->adapt_beta;
    uint32_t i = i0;
    for (; ff != end; ++ff, sh_ff += pstep, bias += pstep, i += istep) {
        int32_t c = qsnn_scale(*ff, *sh_ff) + (int32_t)*bias;
        int32_t v, m, q;
        uint32_t s, b = 0u, at = 0u;
        if (has_rec) {
            c += qsnn_scale(*rec++, *sh_rec);
            sh_rec += pstep;
        }
        if (adapt) {
            c -= qsnn_adapt_current(ad[i]);
        }
        c = qsnn_sat16(c);
        if (nib) { /* the nibble to the top of a word, sign-extended down */
            at = (i & 1u) << 2;
            b = mem[i >> 1];
            v = (int32_t)(b << (28u - at)) >> 28;
        } else {
            v = mem_load(mem, i, mem_bits);
        }
        m = v * keep + c; /* charge: leak as a multiply-accumulate, as qsnn_lif_step_k */
        s = m > QSNN_THETA ? 1u : 0u;
        if (s) {
            m = 0; /* hard reset */
        }
        q = (m + half) >> ms;
        if (nib == 4) {
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
            q = __ssat(q, 4);
#else
            q = q > 7 ? 7 : (q < -8 ? -8 : q);
#endif
            mem[i >> 1] = (uint8_t)((b & ~(15u << at)) | (((uint32_t)q & 15u) << at));
        } else if (nib) {
            q = q > hi ? hi : (q < lo ? lo : q);
            mem[i >> 1] = (uint8_t)((b & ~(15u << at)) | (((uint32_t)q & 15u) << at));
        } else {
            mem_store(mem, i, mem_bits, (int8_t)(q > hi ? hi : (q < lo ? lo : q)));
        }
        if (adapt) {
            ad[i] = qsnn_adapt_step(ad[i], s, a_shift, a_beta);
        }
        if (s) {
            spk_out[i >> 5] |= 1u << (i & 31u);
        }
    }
}

#ifndef QSNN_NO_NARROW_MEM /* 2- and 3-bit membranes: pio_pre.py leaves them out when no layer has them */
/* fire_run on 2- and 3-bit membranes (nibbles, the layer's shift and range): a call of its
 * own, so that fire_group's other variants keep their registers. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void fire_group_narrow(const neuron_k_t *k, const int32_t *ff, const int32_t *rec, uint32_t n, uint32_t p0,
                              uint32_t pstep, uint32_t i0, uint32_t istep, uint8_t *mem, uint32_t *spk_out)
{
    fire_run(k, ff, rec, n, p0, pstep, i0, istep, mem, spk_out, 1, k->adapt != NULL, k->sh_rec != NULL);
}
#endif

/* fire_run with its variant chosen once per group; a call of its own, so that the kernels'
 * registers do not crowd the neuron loop. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void fire_group(const neuron_k_t *k, const int32_t *ff, const int32_t *rec, uint32_t n, uint32_t p0,
                       uint32_t pstep, uint32_t i0, uint32_t istep, uint8_t *mem, uint32_t *spk_out)
{
    const int adapt = k->adapt != NULL, has_rec = k->sh_rec != NULL;
    QSNN_MARK_FIRE_BEGIN();
    if (k->mem_bits == 4u) {
        if (has_rec) {
            if (adapt) {
                fire_run(k, ff, rec, n, p0, pstep, i0, istep, mem, spk_out, 4, 1, 1);
            } else {
                fire_run(k, ff, rec, n, p0, pstep, i0, istep, mem, spk_out, 4, 0, 1);
            }
        } else if (adapt) {
            fire_run(k, ff, rec, n, p0, pstep, i0, istep, mem, spk_out, 4, 1, 0);
        } else {
            fire_run(k, ff, rec, n, p0, pstep, i0, istep, mem, spk_out, 4, 0, 0);
        }
#ifndef QSNN_NO_NARROW_MEM
    } else if (k->mem_bits < 4u) {
        fire_group_narrow(k, ff, rec, n, p0, pstep, i0, istep, mem, spk_out);
#endif
    } else {
        fire_run(k, ff, rec, n, p0, pstep, i0, istep, mem, spk_out, 0, adapt, has_rec);
    }
    QSNN_MARK_FIRE_END();
}

#ifndef QSNN_NO_CONV /* the conv kernels' two-position neuron loop */
/* Two neurons that share a membrane byte: neurons i and i + 1 (i even) of one parameter row p,
 * membranes of at most 4 bits (nib 4: 4-bit, constants; nib 1: 2- or 3-bit, the layer's store
 * shift ms, rounding half and range lo..hi), plain LIF, no recurrence, with sums a and b. The
 * byte is read and written once, the row's shift and bias read once; the arithmetic is
 * fire_run's (the contract's). */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline uint32_t fire_pair4(int32_t a, int32_t b, int sh, int32_t bias, int32_t keep, uint8_t *byte,
                                  const int nib, int32_t ms, int32_t half, int32_t hi, int32_t lo)
{
    const uint32_t m8 = *byte;
    const int32_t va = (int32_t)(m8 << 28) >> 28, vb = (int32_t)(m8 << 24) >> 28;
    int32_t ca, cb, ma, mb, qa, qb;
    uint32_t sa, sb;
    if (sh > 0) {
        const int32_t r = (int32_t)1 << (sh - 1);
        ca = (a + r) >> sh;
        cb = (b + r) >> sh;
    } else {
        ca = a * ((int32_t)1 << (-sh));
        cb = b * ((int32_t)1 << (-sh));
    }
    ma = va * keep + qsnn_sat16(ca + bias);
    mb = vb * keep + qsnn_sat16(cb + bias);
    sa = ma > QSNN_THETA ? 1u : 0u;
    sb = mb > QSNN_THETA ? 1u : 0u;
    if (sa) {
        ma = 0;
    }
    if (sb) {
        mb = 0;
    }
    if (nib == 4) { /* 4-bit membranes: constants and one saturation each */
        qa = (ma + ((int32_t)1 << (qsnn_mem_shift(4) - 1))) >> qsnn_mem_shift(4);
        qb = (mb + ((int32_t)1 << (qsnn_mem_shift(4) - 1))) >> qsnn_mem_shift(4);
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
        qa = __ssat(qa, 4);
        qb = __ssat(qb, 4);
#else
        qa = qa > 7 ? 7 : (qa < -8 ? -8 : qa);
        qb = qb > 7 ? 7 : (qb < -8 ? -8 : qb);
#endif
    } else { /* 2- and 3-bit membranes: the layer's shift and range */
        qa = (ma + half) >> ms;
        qb = (mb + half) >> ms;
        qa = qa > hi ? hi : (qa < lo ? lo : qa);
        qb = qb > hi ? hi : (qb < lo ? lo : qb);
    }
    *byte = (uint8_t)(((uint32_t)qa & 15u) | (((uint32_t)qb & 15u) << 4));
    return sa | (sb << 1);
}

/* fire_pair4 on each byte: neurons i0 + j * istep and i0 + j * istep + 1 (i0, istep even) of
 * row p0 + j take a[j] and b[j]. nib is a constant at each call site: 4 reads no width
 * parameter (fire_pair4's constants); 1 reads the layer's store shift, half and range. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void fire_pairs(const neuron_k_t *k, const int32_t *a, const int32_t *b, uint32_t n, uint32_t p0,
                              uint32_t i0, uint32_t istep, uint8_t *mem, uint32_t *spk_out, const int nib)
{
    const int8_t *sh = k->sh_ff + p0;
    const int16_t *bias = k->bias + p0;
    const int32_t keep = k->lif.keep;
    const int32_t ms = nib == 4 ? 0 : k->lif.ms, half = nib == 4 ? 0 : k->lif.half;
    const int32_t hi = nib == 4 ? 0 : k->lif.hi, lo = nib == 4 ? 0 : k->lif.lo;
    uint8_t *byte = mem + (i0 >> 1);
    const uint32_t bstep = istep >> 1;
    uint32_t j, i = i0;
    for (j = 0; j < n; ++j, i += istep, byte += bstep) {
        const uint32_t s = fire_pair4(a[j], b[j], sh[j], (int32_t)bias[j], keep, byte, nib, ms, half, hi, lo);
        if (s != 0u) {
            spk_out[i >> 5] |= s << (i & 31u); /* i even: i and i + 1 in one word */
        }
    }
}

#ifndef QSNN_NO_NARROW_MEM
/* fire_pairs on 2- or 3-bit membranes (fire_group2's narrow case): a function of its own, so
 * that the 4-bit loop keeps its registers. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void fire_pairs_narrow(const neuron_k_t *k, const int32_t *a, const int32_t *b, uint32_t n, uint32_t p0,
                              uint32_t i0, uint32_t istep, uint8_t *mem, uint32_t *spk_out)
{
    fire_pairs(k, a, b, n, p0, i0, istep, mem, spk_out, 1);
}
#endif

/* Neurons i0 + j * istep and i0 + j * istep + 1 (the same parameter row p0 + j) take the sums
 * a[j] and b[j], j = 0..n-1: fire_group twice, or, for plain feed-forward layers with membranes
 * of at most 4 bits (nibbles) and i0 and istep even (the two neurons share a byte), fire_pair4
 * on each byte. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static void fire_group2(const neuron_k_t *k, const int32_t *a, const int32_t *b, uint32_t n, uint32_t p0,
                        uint32_t i0, uint32_t istep, uint8_t *mem, uint32_t *spk_out)
{
    QSNN_MARK_FIRE_BEGIN();
    if (k->mem_bits == 4u && k->adapt == NULL && k->sh_rec == NULL && ((i0 | istep) & 1u) == 0u) {
        fire_pairs(k, a, b, n, p0, i0, istep, mem, spk_out, 4);
        QSNN_MARK_FIRE_END();
        return;
    }
#ifndef QSNN_NO_NARROW_MEM
    if (k->mem_bits < 4u && k->adapt == NULL && k->sh_rec == NULL && ((i0 | istep) & 1u) == 0u) {
        fire_pairs_narrow(k, a, b, n, p0, i0, istep, mem, spk_out);
        QSNN_MARK_FIRE_END();
        return;
    }
#endif
    fire_group(k, a, NULL, n, p0, 1u, i0, istep, mem, spk_out);
    fire_group(k, b, NULL, n, p0, 1u, i0 + 1u, istep, mem, spk_out);
    QSNN_MARK_FIRE_END();
}
#endif

/* One layer: for each neuron the kernel's sums, then the shared per-neuron code. Inlined
 * with a constant kernel at every call site, so no call is made through a pointer. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void run_layer(const qsnn_layer_t *L, const qsnn_input_t *in, const qsnn_input_t *rec,
                             dot_fn ff, dot_fn rec_dot, uint8_t *mem, uint8_t *adapt, uint32_t *spk_out)
{
    const uint32_t rw = QSNN_ROW_WORDS(L->n_in, L->w_bits);
    const uint32_t rrw = QSNN_ROW_WORDS(L->n_out, 1u);
    const neuron_k_t nk = neuron_consts(L, adapt);
    uint32_t i;
    if (ff != dot_ref) { /* a fast kernel: the sums of a chunk of neurons, then the chunk's neuron loop */
        int32_t acc_ff[FIRE_CHUNK], acc_rec[FIRE_CHUNK];
        uint32_t i0, j;
        for (i0 = 0; i0 < L->n_out; i0 += FIRE_CHUNK) {
            const uint32_t n = L->n_out - i0 < FIRE_CHUNK ? L->n_out - i0 : FIRE_CHUNK;
            for (j = 0; j < n; ++j) {
                acc_ff[j] = ff(L->w + (size_t)(i0 + j) * rw, L->w_bits, in);
                acc_rec[j] = L->recurrent ? rec_dot(L->w_rec + (size_t)(i0 + j) * rrw, 1u, rec) : 0;
            }
            fire_group(&nk, acc_ff, acc_rec, n, i0, 1u, i0, 1u, mem, spk_out);
        }
        return;
    }
    for (i = 0; i < L->n_out; ++i) { /* the reference: one neuron at a time, neuron_fire */
        const int32_t acc_ff = ff(L->w + (size_t)i * rw, L->w_bits, in);
        const int32_t acc_rec = L->recurrent ? rec_dot(L->w_rec + (size_t)i * rrw, 1u, rec) : 0;
        if (neuron_fire(&nk, i, acc_ff, acc_rec, mem, i)) {
            spk_out[i >> 5] |= 1u << (i & 31u);
        }
    }
}

/* The weight of bit plane p of a B-bit two's-complement code: 2^p, negative for the top plane. */
static int32_t plane_weight(uint32_t p, uint32_t bits)
{
    return p + 1u == bits ? -(int32_t)(1u << p) : (int32_t)(1u << p);
}

/* acc[r] += m * count of row r, rows 0 .. n - 1 (four rows a word when the counts are bytes). */
static void column_add_counts(const column_out_t *o, uint32_t n, int32_t m, int32_t *acc)
{
    uint32_t r = 0u;
    if (o->counts8 != NULL) {
        const uint32_t *w = o->counts8;
        for (; r + 4u <= n; r += 4u) {
            const uint32_t v = *w++;
            if (v == 0u) {
                continue;
            }
            acc[r] += m * (int32_t)(v & 0xFFu);
            acc[r + 1u] += m * (int32_t)((v >> 8) & 0xFFu);
            acc[r + 2u] += m * (int32_t)((v >> 16) & 0xFFu);
            acc[r + 3u] += m * (int32_t)(v >> 24);
        }
    }
    for (; r < n; ++r) {
        acc[r] += m * (int32_t)column_raw(o, r);
    }
}

/* A dense 1-bit layer on spikes, by columns: the active inputs' weight columns (and the
 * active previous spikes' recurrent columns) go into bit-sliced counters of every neuron;
 * sum = 2 * count - active. */
QSNN_NOINLINE static void dense_b1_column(const qsnn_layer_t *L, const qsnn_input_t *in, const qsnn_input_t *rec, uint8_t *mem,
                            uint8_t *adapt, uint32_t *spk_out)
{
    const uint32_t words = QSNN_ROW_WORDS(L->n_out, 1u);
    const neuron_k_t nk = neuron_consts(L, adapt);
    const uint32_t *list[COLUMN_CHUNK];
    column_sums_t ff, rc;
    const column_out_t off = column_spikes(&ff, list, L->w_cols, words, in);
    /* the recurrent counts only when the layer is recurrent; no struct is copied (a struct
     * assignment may become a memcpy call, which a freestanding build need not have) */
    const column_out_t orc = column_spikes(&rc, list, L->recurrent ? L->w_rec_cols : L->w_cols, words,
                                           L->recurrent ? rec : &no_input);
    int32_t acc_ff[FIRE_CHUNK], acc_rec[FIRE_CHUNK];
    uint32_t i0;
    for (i0 = 0; i0 < L->n_out; i0 += FIRE_CHUNK) {
        const uint32_t n = L->n_out - i0 < FIRE_CHUNK ? L->n_out - i0 : FIRE_CHUNK;
        column_fill(&off, i0, n, acc_ff);
        if (L->recurrent) {
            column_fill(&orc, i0, n, acc_rec);
        }
        fire_group(&nk, acc_ff, acc_rec, n, i0, 1u, i0, 1u, mem, spk_out);
    }
}

/* A dense 2-, 4- or 8-bit layer on spikes, by columns: each bit plane p of the weights' codes
 * (w_cols + p * n_in * words) goes through the counters like a 1-bit layer's columns, and
 * every neuron's sum is the planes' counts weighted +-2^p (the top plane negative: two's
 * complement, as in conv_bn_column); the 1-bit recurrence as in dense_b1_column. */
QSNN_NOINLINE static void dense_bn_column(const qsnn_layer_t *L, const qsnn_input_t *in, const qsnn_input_t *rec,
                                          uint8_t *mem, uint8_t *adapt, uint32_t *spk_out)
{
    const uint32_t words = QSNN_ROW_WORDS(L->n_out, 1u), bits = L->w_bits, n_out = L->n_out;
    const size_t plane = (size_t)L->n_in * words;
    const neuron_k_t nk = neuron_consts(L, adapt);
    const uint32_t *list[COLUMN_CHUNK];
    column_sums_t sums;
    int32_t acc_ff[QSNN_COLUMN_MAX_ROWS], acc_rec[FIRE_CHUNK];
    uint32_t i0, p;
    for (i0 = 0; i0 < n_out; ++i0) {
        acc_ff[i0] = 0;
    }
    for (p = 0; p < bits; ++p) {
        const column_out_t o = column_spikes(&sums, list, L->w_cols + p * plane, words, in);
        if (o.act == 0) {
            break; /* no active input: every plane counts 0 */
        }
        column_add_counts(&o, n_out, plane_weight(p, bits), acc_ff);
    }
    if (L->recurrent) {
        const column_out_t orc = column_spikes(&sums, list, L->w_rec_cols, words, rec);
        for (i0 = 0; i0 < n_out; i0 += FIRE_CHUNK) {
            const uint32_t n = n_out - i0 < FIRE_CHUNK ? n_out - i0 : FIRE_CHUNK;
            column_fill(&orc, i0, n, acc_rec);
            fire_group(&nk, acc_ff + i0, acc_rec, n, i0, 1u, i0, 1u, mem, spk_out);
        }
    } else {
        for (i0 = 0; i0 < n_out; i0 += FIRE_CHUNK) {
            const uint32_t n = n_out - i0 < FIRE_CHUNK ? n_out - i0 : FIRE_CHUNK;
            fire_group(&nk, acc_ff + i0, NULL, n, i0, 1u, i0, 1u, mem, spk_out);
        }
    }
}

#ifndef QSNN_NO_CONV /* firmware for a model without conv layers: pio_pre.py defines it */
/* ---- streaming convolution (docs/contract.md section 4) ------------------------------- */

/* Slide the layer's input history by one frame and append this step's input. */
static void conv_push(qsnn_state_t *st, uint32_t l, const qsnn_input_t *in)
{
    const qsnn_layer_t *L = &st->model->layers[l];
    const uint32_t kt = L->kt;
    uint32_t i;
    if (l == 0u) { /* raw features (the kernels centre them as they read them) */
        const uint32_t n = L->n_in;
        uint8_t *h = st->hist_feat;
        for (i = 0; i + n < kt * n; ++i) {
            h[i] = h[i + n];
        }
        for (i = 0; i < n; ++i) {
            h[(kt - 1u) * n + i] = in->feat[i];
        }
    } else {
        const uint32_t w = QSNN_ROW_WORDS(L->n_in, 1u);
        uint32_t *h = st->hist_s[l];
        for (i = 0; i + w < kt * w; ++i) {
            h[i] = h[i + w];
        }
        for (i = 0; i < w; ++i) {
            h[(kt - 1u) * w + i] = in->spk[i];
        }
    }
}

/* Reference: every synapse of every neuron, element by element. Input (dt, ci, pos) is
 * history slot dt (kt - 1 = this step), channel ci, position pos; zero outside 0..f_in-1. */
QSNN_NOINLINE static void conv_ref(qsnn_state_t *st, uint32_t l, uint8_t *mem, uint32_t *spk_out)
{
    const qsnn_layer_t *L = &st->model->layers[l];
    const uint32_t rw = QSNN_ROW_WORDS((uint32_t)L->c_in * L->kt * L->kf, L->w_bits);
    const uint32_t sw = QSNN_ROW_WORDS(L->n_in, 1u);
    const int32_t pad = (int32_t)(L->kf / 2u);
    const neuron_k_t nk = neuron_consts(L, st->adapt[l]);
    uint32_t c, f, ci, dt, df;
    for (c = 0; c < L->c_out; ++c) {
        const uint32_t *row = L->w + (size_t)c * rw;
        for (f = 0; f < L->f_out; ++f) {
            const uint32_t i = c * L->f_out + f;
            int32_t acc = 0;
            for (ci = 0; ci < L->c_in; ++ci) {
                for (dt = 0; dt < L->kt; ++dt) {
                    for (df = 0; df < L->kf; ++df) {
                        const int32_t pos = (int32_t)(f * L->stride) - pad + (int32_t)df;
                        int32_t v = 0;
                        if (pos >= 0 && pos < (int32_t)L->f_in) {
                            v = l == 0u ? (int32_t)st->hist_feat[dt * L->n_in + (uint32_t)pos] -
                                              (int32_t)st->model->feat_mu[pos]
                                        : (int32_t)spike_bit(st->hist_s[l] + dt * sw, ci * L->f_in + (uint32_t)pos);
                        }
                        acc += unpack_elem(row, (ci * L->kt + dt) * L->kf + df, L->w_bits) * v;
                    }
                }
            }
            if (neuron_fire(&nk, c, acc, 0, mem, i)) {
                spk_out[i >> 5] |= 1u << (i & 31u);
            }
        }
    }
}

#if QSNN_DSP
/* Padded feature rows conv_w8_quads keeps on the stack (int16 values), and pairs per channel. */
#define CONV_W8_PAD_MAX 256u
#define CONV_W8_PAIRS_MAX 32u

/* conv_w8 with the layer's int16-pair copy (w_quads), on cores with SMLAD. The kt history rows
 * are copied once per step into zero-padded rows (the reference's zeros outside 0..f_in-1,
 * row length even), so that with an even stride every position's window row starts on a
 * word: its pairs of adjacent features are loaded as words, with no gather. Per position the
 * kt * kfe / 2 window words are read once, then every group of four channels is one pass of
 * four SMLADs per word. Returns 0 (nothing done) when the layer does not fit this path. */
QSNN_NOINLINE static int conv_w8_quads(qsnn_state_t *st, uint32_t l, uint8_t *mem, uint32_t *spk_out)
{
    const qsnn_layer_t *L = &st->model->layers[l];
    const uint32_t kt = L->kt, kf = L->kf, stride = L->stride, f_out = L->f_out, n = L->n_in;
    const uint32_t pad = kf / 2u, kfe = kf + (kf & 1u), hp = kfe / 2u, np = kt * hp;
    uint32_t row = pad + n;
    union {
        int16_t h[CONV_W8_PAD_MAX];
        uint32_t w[CONV_W8_PAD_MAX / 2u];
    } px;
    uint32_t xw[2][CONV_W8_PAIRS_MAX];
    int32_t sums[2][FIRE_CHUNK];
    neuron_k_t nk;
    uint32_t dt, j, f, c0;
    if ((f_out - 1u) * stride + kfe > row) {
        row = (f_out - 1u) * stride + kfe;
    }
    row = (row + 1u) & ~1u;
    if (L->w_quads == NULL || (stride & 1u) != 0u || kt * row > CONV_W8_PAD_MAX || np > CONV_W8_PAIRS_MAX) {
        return 0;
    }
    nk = neuron_consts(L, st->adapt[l]);
    for (dt = 0; dt < kt; ++dt) {
        int16_t *r = px.h + dt * row;
        const uint8_t *x = st->hist_feat + dt * n;
        const uint8_t *mu = st->model->feat_mu;
        for (j = 0; j < pad; ++j) {
            r[j] = 0;
        }
        for (j = 0; j < n; ++j) { /* centred here: the history keeps raw features */
            r[pad + j] = (int16_t)((int32_t)x[j] - (int32_t)mu[j]);
        }
        for (j = pad + n; j < row; ++j) {
            r[j] = 0;
        }
    }
    for (f = 0; f < f_out; f += 2u) {
        const uint32_t two = f + 1u < f_out; /* positions f and f + 1 together: a channel's two
                                                neurons share a membrane byte (fire_group2) */
        uint32_t e;
        for (e = 0; e <= two; ++e) { /* window of position f + e in padded row dt: values
                                        (f + e) * stride .. + kfe - 1 (even start) */
            const uint32_t *src = px.w + ((f + e) * stride) / 2u;
            uint32_t *o = xw[e];
            for (dt = 0; dt < kt; ++dt, src += row / 2u) {
                for (j = 0; j < hp; ++j) {
                    *o++ = src[j];
                }
            }
        }
        for (c0 = 0; c0 < L->c_out; c0 += FIRE_CHUNK) {
            const uint32_t nc = L->c_out - c0 < FIRE_CHUNK ? L->c_out - c0 : FIRE_CHUNK;
            for (e = 0; e <= two; ++e) {
                const uint32_t *wq = L->w_quads + (size_t)(c0 / 4u) * np * 4u;
                int32_t *out = sums[e];
                uint32_t c;
                for (c = 0; c < nc; c += 4u) { /* four channels per pass over the window words */
                    const uint32_t *xp = xw[e];
                    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                    uint32_t q;
                    for (q = np; q != 0u; --q) {
                        const uint32_t x = *xp++;
                        a0 = __smlad(wq[0], x, a0);
                        a1 = __smlad(wq[1], x, a1);
                        a2 = __smlad(wq[2], x, a2);
                        a3 = __smlad(wq[3], x, a3);
                        wq += 4;
                    }
                    out[c] = a0; /* FIRE_CHUNK (a multiple of 4) entries: the padding channels
                                    of the last group land past nc and are not fired */
                    out[c + 1u] = a1;
                    out[c + 2u] = a2;
                    out[c + 3u] = a3;
                }
            }
            if (two) {
                fire_group2(&nk, sums[0], sums[1], nc, c0, c0 * f_out + f, f_out, mem, spk_out);
            } else {
                fire_group(&nk, sums[0], NULL, nc, c0, 1u, c0 * f_out + f, f_out, mem, spk_out);
            }
        }
    }
    return 1;
}
#endif

/* First layer, 8-bit weights x int16 features (one input channel): per output position
 * the kt x kf patch of the history (zero outside 0..f_in-1) is gathered once, in the order
 * of a weight row, then every channel is one dense int8 x int16 dot product over it. */
QSNN_NOINLINE static void conv_w8(qsnn_state_t *st, uint32_t l, uint8_t *mem, uint32_t *spk_out)
{
    const qsnn_layer_t *L = &st->model->layers[l];
    const neuron_k_t nk = neuron_consts(L, st->adapt[l]);
    const uint32_t kt = L->kt, kf = L->kf, stride = L->stride, f_out = L->f_out, n = L->n_in;
    const uint32_t taps = kt * kf;
    const uint32_t taps4 = (taps + 3u) & ~3u; /* whole weight words; the extra taps read 0 */
    const uint32_t rw = QSNN_ROW_WORDS(taps, 8u);
    const int32_t pad = (int32_t)(kf / 2u);
    const uint8_t *mu = st->model->feat_mu;
    int16_t patch[QSNN_CONV_MAX_KT * QSNN_CONV_MAX_KF];
#if QSNN_DSP
    uint32_t pairs[QSNN_CONV_MAX_KT * QSNN_CONV_MAX_KF / 2u];
#endif
    int32_t sums[FIRE_CHUNK];
    qsnn_input_t in;
    uint32_t c, c0, f, dt, df;
    in.feat = NULL;
    in.x = patch;
#if QSNN_DSP
    in.xp = pairs;
#else
    in.xp = NULL;
#endif
    in.spk = NULL;
    in.n = taps4;
    in.active = 0;
    for (f = 0; f < f_out; ++f) {
        const int32_t pos0 = (int32_t)(f * stride) - pad;
        for (dt = 0; dt < kt; ++dt) {
            const uint8_t *x = st->hist_feat + dt * n;
            for (df = 0; df < kf; ++df) { /* centred here: the history keeps raw features */
                const int32_t p = pos0 + (int32_t)df;
                patch[dt * kf + df] =
                    (p >= 0 && p < (int32_t)n) ? (int16_t)((int32_t)x[p] - (int32_t)mu[p]) : (int16_t)0;
            }
        }
        for (dt = taps; dt < taps4; ++dt) { /* zeros up to whole weight words: no tail loop */
            patch[dt] = 0;
        }
#if QSNN_DSP
        pair_inputs(patch, taps4, pairs);
#endif
        for (c0 = 0; c0 < L->c_out; c0 += FIRE_CHUNK) {
            const uint32_t nc = L->c_out - c0 < FIRE_CHUNK ? L->c_out - c0 : FIRE_CHUNK;
            c = 0;
#if QSNN_DSP
            /* two channels per pass over the paired patch: each pair word is loaded once for both */
            for (; c + 1u < nc; c += 2u) {
                const uint32_t *w0 = L->w + (size_t)(c0 + c) * rw;
                const uint32_t *w1 = w0 + rw;
                const uint32_t *xp = pairs;
                int32_t a0 = 0, a1 = 0;
                uint32_t q;
                for (q = rw; q != 0u; --q) {
                    const uint32_t x0 = xp[0], x1 = xp[1];
                    const uint32_t u = *w0++, v = *w1++;
                    a0 = __smlad(__sxtb16(u), x0, a0);
                    a0 = __smlad(__sxtb16((u >> 8) | (u << 24)), x1, a0);
                    a1 = __smlad(__sxtb16(v), x0, a1);
                    a1 = __smlad(__sxtb16((v >> 8) | (v << 24)), x1, a1);
                    xp += 2;
                }
                sums[c] = a0;
                sums[c + 1u] = a1;
            }
#endif
            for (; c < nc; ++c) {
                sums[c] = dot_w8_dense(L->w + (size_t)(c0 + c) * rw, 8u, &in);
            }
            fire_group(&nk, sums, NULL, nc, c0, 1u, c0 * f_out + f, f_out, mem, spk_out);
        }
    }
}

/* Spikes in, any width: per output channel, each active spike of the history adds its
 * weight to the (at most ceil(kf / stride)) positions whose window holds it. Binary weights
 * count their set bits: sum = 2 * ones - taps. */
QSNN_NOINLINE static void conv_event(qsnn_state_t *st, uint32_t l, uint8_t *mem, uint32_t *spk_out)
{
    const qsnn_layer_t *L = &st->model->layers[l];
    const neuron_k_t nk = neuron_consts(L, st->adapt[l]);
    const uint32_t kt = L->kt, kf = L->kf, stride = L->stride, f_out = L->f_out, f_in = L->f_in;
    const uint32_t bits = L->w_bits;
    const uint32_t rw = QSNN_ROW_WORDS((uint32_t)L->c_in * kt * kf, bits);
    const uint32_t sw = QSNN_ROW_WORDS(L->n_in, 1u);
    const uint32_t pad = kf / 2u;
    int32_t acc[QSNN_CONV_MAX_FOUT];
    int32_t taps[QSNN_CONV_MAX_FOUT];
    uint32_t c, f, dt, k;
    for (c = 0; c < L->c_out; ++c) {
        const uint32_t *row = L->w + (size_t)c * rw;
        for (f = 0; f < f_out; ++f) {
            acc[f] = 0;
            taps[f] = 0;
        }
        for (dt = 0; dt < kt; ++dt) {
            const uint32_t *h = st->hist_s[l] + dt * sw;
            uint32_t row_start = 0, row_end = f_in, f_first = 0, first_end = kf, base = dt * kf;
            for (k = 0; k < sw; ++k) {
                uint32_t s = h[k];
                while (s != 0u) {
                    const uint32_t idx = k * 32u + ctz32(s);
                    uint32_t p, j, e;
                    s &= s - 1u;
                    while (idx >= row_end) { /* next input channel: its taps start kt * kf later */
                        row_start = row_end;
                        row_end += f_in;
                        base += kt * kf;
                        f_first = 0;
                        first_end = kf;
                    }
                    p = idx - row_start + pad; /* padded position */
                    while (first_end <= p) {  /* windows that end before p */
                        ++f_first;
                        first_end += stride;
                    }
                    /* window f holds p at tap p - f * stride, for f = f_first ... while f * stride <= p */
                    j = base + p - f_first * stride;
                    e = f_first * stride;
                    if (bits == 1u) {
                        for (f = f_first; f < f_out && e <= p; ++f, e += stride, j -= stride) {
                            acc[f] += (int32_t)((row[j >> 5] >> (j & 31u)) & 1u);
                            taps[f] += 1;
                        }
                    } else {
                        for (f = f_first; f < f_out && e <= p; ++f, e += stride, j -= stride) {
                            acc[f] += unpack_elem(row, j, bits);
                        }
                    }
                }
            }
        }
        if (bits == 1u) {
            for (f = 0; f < f_out; ++f) {
                acc[f] = 2 * acc[f] - taps[f];
            }
        }
        fire_group(&nk, acc, NULL, f_out, c, 0u, c * f_out, 1u, mem, spk_out);
    }
}

/* n bits of a packed vector starting at bit `start` (which may be negative or run past
 * `limit`: those bits read as 0); n <= 16. */
static uint32_t get_bits(const uint32_t *v, int32_t start, uint32_t n, int32_t limit)
{
    uint32_t out = 0u;
    uint32_t lo = 0u;
    int32_t end = start + (int32_t)n;
    uint32_t a, w, b;
    if (start < 0) {
        lo = (uint32_t)(-start);
        start = 0;
    }
    if (end > limit) {
        end = limit;
    }
    if (end <= start) {
        return 0u;
    }
    a = (uint32_t)start;
    w = a >> 5;
    b = a & 31u;
    out = v[w] >> b;
    if (b + (uint32_t)(end - start) > 32u) {
        out |= v[w + 1u] << (32u - b);
    }
    out &= (1u << (uint32_t)(end - start)) - 1u;
    return out << lo;
}

/* The receptive field of output position f of a conv layer on spikes (c_in x kt x kf bits,
 * ordered like a weight row: bit (ci * kt + dt) * kf + df), positions outside 0..f_in-1
 * reading 0, into r[QSNN_ROW_WORDS(fan, 1)]. */
static void gather_field(const qsnn_state_t *st, uint32_t l, uint32_t f, uint32_t *r)
{
    const qsnn_layer_t *L = &st->model->layers[l];
    const uint32_t kt = L->kt, kf = L->kf, f_in = L->f_in;
    const uint32_t rw = QSNN_ROW_WORDS((uint32_t)L->c_in * kt * kf, 1u);
    const uint32_t sw = QSNN_ROW_WORDS(L->n_in, 1u);
    const int32_t pos0 = (int32_t)(f * L->stride) - (int32_t)(kf / 2u); /* input position of tap 0 */
    /* positions outside 0..f_in-1 of a channel read as 0 */
    const int32_t lo = pos0 < 0 ? -pos0 : 0;
    const int32_t hi = pos0 + (int32_t)kf > (int32_t)f_in ? (int32_t)f_in - pos0 : (int32_t)kf;
    const uint32_t keep = ((1u << (uint32_t)hi) - 1u) & ~((1u << (uint32_t)lo) - 1u);
    uint32_t o = 0; /* bit offset in r: (ci * kt + dt) * kf */
    uint32_t ci, dt, k;
    for (k = 0; k < rw; ++k) {
        r[k] = 0u;
    }
    for (ci = 0; ci < L->c_in; ++ci) {
        const int32_t row0 = (int32_t)(ci * f_in);
        for (dt = 0; dt < kt; ++dt, o += kf) {
            const uint32_t v = get_bits(st->hist_s[l] + dt * sw, row0 + pos0, kf, row0 + (int32_t)f_in) & keep;
            if (v != 0u) {
                r[o >> 5] |= v << (o & 31u);
                if ((o & 31u) + kf > 32u) {
                    r[(o >> 5) + 1u] |= v >> (32u - (o & 31u));
                }
            }
        }
    }
}

/* 1-bit weights x spikes: per output position the receptive field (c_in x kt x kf, ordered
 * like a weight row) is gathered once, then each channel costs an AND and a popcount per
 * word: sum = 2 * popcount(W & R) - popcount(R). */
QSNN_NOINLINE static void conv_b1_popcount(qsnn_state_t *st, uint32_t l, uint8_t *mem, uint32_t *spk_out)
{
    const qsnn_layer_t *L = &st->model->layers[l];
    const neuron_k_t nk = neuron_consts(L, st->adapt[l]);
    const uint32_t f_out = L->f_out;
    const uint32_t fan = (uint32_t)L->c_in * L->kt * L->kf;
    const uint32_t rw = QSNN_ROW_WORDS(fan, 1u);
    uint32_t r[QSNN_CONV_POPCOUNT_MAX_FAN / 32u];
    int32_t acc[FIRE_CHUNK];
    uint32_t c, c0, f;
    for (f = 0; f < f_out; ++f) {
        int32_t act;
        gather_field(st, l, f, r);
        act = count_spikes(r, fan);
        for (c0 = 0; c0 < L->c_out; c0 += FIRE_CHUNK) {
            const uint32_t nc = L->c_out - c0 < FIRE_CHUNK ? L->c_out - c0 : FIRE_CHUNK;
            for (c = 0; c < nc; ++c) {
                acc[c] = 2 * popcount_and(L->w + (size_t)(c0 + c) * rw, r, rw) - act;
            }
            fire_group(&nk, acc, NULL, nc, c0, 1u, c0 * f_out + f, f_out, mem, spk_out);
        }
    }
}

/* Channel rows of a conv layer's history the column kernel keeps in one word each: the input
 * rows (ci, dt) of a layer with c_in * kt <= this and f_in + 2 * (kf / 2) <= 32. */
#define COLUMN_FIELD_ROWS 128u

/* 1-bit weights x spikes, by columns: each active tap of an output position's receptive
 * field adds its weight column (one bit per channel) to bit-sliced counters of every
 * channel; sum = 2 * count - active taps. When every padded channel row fits in a word, the
 * rows (ci, dt) are read from the history once per step and each position's window is a
 * shift and a mask of them; otherwise each position's field is gathered (gather_field). */
/* What conv_b1_column counts with: the layer's geometry, the history rows of a narrow layer
 * or the gathered field, the counters and their column list. */
typedef struct {
    const qsnn_layer_t *L;
    uint32_t fan, n_rows, words, kmask;
    int narrow;
    union {
        uint32_t field[QSNN_CONV_POPCOUNT_MAX_FAN / 32u]; /* gathered receptive field */
        uint32_t rows[COLUMN_FIELD_ROWS];                 /* padded channel rows (narrow layers) */
    } buf;
    column_sums_t sums;
    const uint32_t *list[COLUMN_CHUNK];
} conv_columns_t;

/* Every channel's count of position f: each active tap of its receptive field adds its column
 * of `cols` (the layer's w_cols, or one bit plane of it). */
static column_out_t conv_column_counts(qsnn_state_t *st, uint32_t l, conv_columns_t *w, uint32_t f,
                                       const uint32_t *cols)
{
    const qsnn_layer_t *L = w->L;
    column_begin(&w->sums, cols, w->words, w->fan);
    if (w->narrow) { /* the window of each channel row: columns q * kf + df */
        const uint32_t at = f * L->stride, kf = L->kf, words = w->words, kmask = w->kmask;
        const size_t row_step = (size_t)kf * words;
        const uint32_t *colq = cols; /* column q * kf */
        const uint32_t **list = w->list;
        uint32_t n = 0u, q;
        for (q = 0; q < w->n_rows; ++q, colq += row_step) {
            uint32_t v = (w->buf.rows[q] >> at) & kmask;
            if (v == 0u) {
                continue;
            }
            if (n > COLUMN_CHUNK - kf) { /* room for a whole window row (kf <= 16 < COLUMN_CHUNK) */
                columns_add(w->sums.planes, words, list, n);
                w->sums.act += (int32_t)n;
                n = 0u;
            }
            do {
                list[n++] = colq + ctz32(v) * words;
                v &= v - 1u;
            } while (v != 0u);
        }
        w->sums.n = n;
    } else {
        gather_field(st, l, f, w->buf.field);
        column_words(&w->sums, w->list, w->buf.field, QSNN_ROW_WORDS(w->fan, 1u));
    }
    return column_end(&w->sums, w->list);
}

/* A conv column kernel's geometry for layer l, and, when every padded channel row fits a word,
 * those rows (ci, dt) read from the history once for this step. */
#if defined(__GNUC__)
__attribute__((always_inline))
#endif
static inline void conv_columns_begin(const qsnn_state_t *st, uint32_t l, conv_columns_t *w)
{
    const qsnn_layer_t *L = &st->model->layers[l];
    const uint32_t kt = L->kt, kf = L->kf, f_in = L->f_in, pad = kf / 2u;
    const uint32_t sw = QSNN_ROW_WORDS(L->n_in, 1u);
    uint32_t k, q, dt;
    w->L = L;
    w->fan = (uint32_t)L->c_in * kt * kf;
    w->n_rows = (uint32_t)L->c_in * kt;
    w->words = QSNN_ROW_WORDS(L->c_out, 1u);
    w->kmask = (1u << kf) - 1u; /* kf <= 16 */
    w->narrow = f_in + 2u * pad <= 32u && w->n_rows <= COLUMN_FIELD_ROWS;
    if (w->narrow) {
        for (q = 0, k = 0; k < L->c_in; ++k) {
            for (dt = 0; dt < kt; ++dt, ++q) {
                const int32_t row0 = (int32_t)(k * f_in);
                w->buf.rows[q] = get_bits(st->hist_s[l] + dt * sw, row0, f_in, row0 + (int32_t)f_in) << pad;
            }
        }
    }
}

QSNN_NOINLINE static void conv_b1_column(qsnn_state_t *st, uint32_t l, uint8_t *mem, uint32_t *spk_out)
{
    const qsnn_layer_t *L = &st->model->layers[l];
    const neuron_k_t nk = neuron_consts(L, st->adapt[l]);
    const uint32_t f_out = L->f_out;
    conv_columns_t w;
    uint32_t held[QSNN_COLUMN_MAX_ROWS / 4u]; /* the byte counts of the first of two positions */
    int32_t acc[FIRE_CHUNK], acc2[FIRE_CHUNK];
    uint32_t f, k, c0;
    conv_columns_begin(st, l, &w);
    for (f = 0; f < f_out; ++f) {
        column_out_t o = conv_column_counts(st, l, &w, f, L->w_cols);
        if ((f & 1u) == 0u && f + 1u < f_out && o.counts8 != NULL) {
            /* positions f and f + 1 together: a channel's two neurons share a membrane byte */
            column_out_t o2;
            for (k = 0; k < 8u * w.words; ++k) { /* keep f's counts while f + 1 is counted */
                held[k] = o.counts8[k];
            }
            o.counts8 = held;
            o2 = conv_column_counts(st, l, &w, f + 1u, L->w_cols);
            for (c0 = 0; c0 < L->c_out; c0 += FIRE_CHUNK) {
                const uint32_t nc = L->c_out - c0 < FIRE_CHUNK ? L->c_out - c0 : FIRE_CHUNK;
                column_fill(&o, c0, nc, acc);
                column_fill(&o2, c0, nc, acc2);
                fire_group2(&nk, acc, acc2, nc, c0, c0 * f_out + f, f_out, mem, spk_out);
            }
            ++f;
            continue;
        }
        for (c0 = 0; c0 < L->c_out; c0 += FIRE_CHUNK) {
            const uint32_t nc = L->c_out - c0 < FIRE_CHUNK ? L->c_out - c0 : FIRE_CHUNK;
            column_fill(&o, c0, nc, acc);
            fire_group(&nk, acc, NULL, nc, c0, 1u, c0 * f_out + f, f_out, mem, spk_out);
        }
    }
}

/* 2-, 4- and 8-bit weights x spikes, by columns. A weight of B bits is its two's-complement
 * code's bit planes b_p: w = b_0 + 2 b_1 + ... + 2^(B-2) b_(B-2) - 2^(B-1) b_(B-1). Plane p's
 * columns (w_cols + p * fan * words, one bit per channel) go through the 1-bit column kernel's
 * counters (conv_column_counts), and every channel's sum is the planes' counts weighted
 * +-2^p: B passes of binary work instead of an unpacked weight per active tap and channel.
 * Two positions at a time, so that the 4-bit neuron loop writes a shared membrane byte once. */
QSNN_NOINLINE static void conv_bn_column(qsnn_state_t *st, uint32_t l, uint8_t *mem, uint32_t *spk_out)
{
    const qsnn_layer_t *L = &st->model->layers[l];
    const neuron_k_t nk = neuron_consts(L, st->adapt[l]);
    const uint32_t f_out = L->f_out, bits = L->w_bits, c_out = L->c_out;
    conv_columns_t w;
    size_t plane;
    int32_t acc[2][QSNN_CONV_COLUMN_ROWS]; /* the planes' weighted counts of two positions, per channel */
    uint32_t f, h, i, c, c0, p;
    conv_columns_begin(st, l, &w);
    plane = (size_t)w.fan * w.words;
    for (f = 0; f < f_out; f += h) {
        h = f + 1u < f_out ? 2u : 1u;
        for (i = 0; i < h; ++i) {
            int32_t *a = acc[i];
            for (c = 0; c < c_out; ++c) {
                a[c] = 0;
            }
            for (p = 0; p < bits; ++p) {
                const column_out_t o = conv_column_counts(st, l, &w, f + i, L->w_cols + p * plane);
                if (o.act == 0) {
                    break; /* no active tap: every plane counts 0 */
                }
                column_add_counts(&o, c_out, plane_weight(p, bits), a);
            }
        }
        for (c0 = 0; c0 < c_out; c0 += FIRE_CHUNK) {
            const uint32_t nc = c_out - c0 < FIRE_CHUNK ? c_out - c0 : FIRE_CHUNK;
            if (h == 2u) {
                fire_group2(&nk, acc[0] + c0, acc[1] + c0, nc, c0, c0 * f_out + f, f_out, mem, spk_out);
            } else {
                fire_group(&nk, acc[0] + c0, NULL, nc, c0, 1u, c0 * f_out + f, f_out, mem, spk_out);
            }
        }
    }
}

#endif /* QSNN_NO_CONV */

/* Per-class outputs of this step added to the clip's sums (8-bit readout over spikes). */
static void readout(qsnn_state_t *st, const qsnn_input_t *in, dot_fn dot)
{
    const qsnn_model_t *m = st->model;
    const uint32_t rw = QSNN_ROW_WORDS(in->n, 8u);
    uint32_t i;
    for (i = 0; i < m->n_classes; ++i) {
        const int32_t o = m->b_out[i] + dot(m->w_out + (size_t)i * rw, 8u, in);
        st->out[i] = qsnn_sat32_add(st->out[i], o);
    }
}

/* A dense layer through its kernel; a call of its own (QSNN_NOINLINE), so that its pairs and
 * sums do not sit in step()'s frame while the conv kernels run. */
QSNN_NOINLINE static void dense_layer(const qsnn_layer_t *L, uint32_t kernel, qsnn_input_t *in,
                                      const qsnn_input_t *rec, uint8_t *mem, uint8_t *adapt, uint32_t *spk_out)
{
#if QSNN_DSP
    uint32_t pairs[128]; /* SMLAD operands of up to 256 features (first dense layer) */
#endif
    /* a kernel left out of the build (QSNN_HAS_KERNEL 0) is dead code: qsnn_model_check()
     * refused every model that would reach it */
    switch (kernel) {
    case QSNN_KERNEL_W8_DENSE:
        if (QSNN_HAS_KERNEL(QSNN_KERNEL_W8_DENSE)) {
#if QSNN_DSP
            if (in->n <= 256u) {
                pair_inputs(in->x, in->n, pairs);
                in->xp = pairs; /* step() clears it after the layer */
            }
#endif
            run_layer(L, in, rec, dot_w8_dense, dot_b1_popcount, mem, adapt, spk_out);
        }
        break;
    case QSNN_KERNEL_B1_POPCOUNT:
        if (QSNN_HAS_KERNEL(QSNN_KERNEL_B1_POPCOUNT)) {
            run_layer(L, in, rec, dot_b1_popcount, dot_b1_popcount, mem, adapt, spk_out);
        }
        break;
    case QSNN_KERNEL_EVENT:
        if (QSNN_HAS_KERNEL(QSNN_KERNEL_EVENT)) {
            run_layer(L, in, rec, dot_event, dot_b1_popcount, mem, adapt, spk_out);
        }
        break;
    case QSNN_KERNEL_B1_COLUMN:
        if (QSNN_HAS_KERNEL(QSNN_KERNEL_B1_COLUMN)) {
            dense_b1_column(L, in, rec, mem, adapt, spk_out);
        }
        break;
    case QSNN_KERNEL_BN_COLUMN:
        if (QSNN_HAS_KERNEL(QSNN_KERNEL_BN_COLUMN)) {
            dense_bn_column(L, in, rec, mem, adapt, spk_out);
        }
        break;
    default: /* QSNN_KERNEL_REF */
        if (QSNN_WITH_REF) {
            run_layer(L, in, rec, dot_ref, dot_ref, mem, adapt, spk_out);
        }
        break;
    }
}

static void step(qsnn_state_t *st, const uint8_t *feat, int ref_step)
{
    const int reference = QSNN_WITH_REF && ref_step; /* a constant 0 in a build without REF */
    const qsnn_model_t *m = st->model;
    uint32_t l;
    uint32_t off = 0;
    qsnn_input_t in;
    QSNN_MARK(0u);
    if (st->x != NULL) { /* a conv first layer centres as it reads its history of raw features */
        centre_features(st, feat);
    }
    begin_step(st);
    in.feat = feat;
    in.x = st->x;
    in.xp = NULL;
    in.spk = NULL;
    in.n = m->n_bands;
    in.active = 0;
    for (l = 0; l < m->n_layers; ++l) {
        const qsnn_layer_t *L = &m->layers[l];
        const uint32_t kernel = reference ? QSNN_KERNEL_REF : qsnn_layer_kernel(m, l);
        qsnn_input_t rec;
        uint8_t *mem = &st->mem[off];
        rec.feat = NULL;
        rec.x = NULL;
        rec.xp = NULL;
        rec.spk = st->prev[l];
        rec.n = L->n_out;
        rec.active = (L->recurrent && kernel != QSNN_KERNEL_REF) ? count_spikes(st->prev[l], L->n_out) : 0;
#ifndef QSNN_NO_CONV
        if (L->kind == QSNN_LAYER_CONV) {
            conv_push(st, l, &in);
            switch (kernel) { /* a kernel left out of the build is dead code, as in dense_layer() */
            case QSNN_KERNEL_CONV_W8:
                if (QSNN_HAS_KERNEL(QSNN_KERNEL_CONV_W8)) {
#if QSNN_DSP
                    if (conv_w8_quads(st, l, mem, st->spk[l])) { /* the layer fits the int16-pair path */
                        break;
                    }
#endif
                    conv_w8(st, l, mem, st->spk[l]);
                }
                break;
            case QSNN_KERNEL_CONV_EVENT:
                if (QSNN_HAS_KERNEL(QSNN_KERNEL_CONV_EVENT)) {
                    conv_event(st, l, mem, st->spk[l]);
                }
                break;
            case QSNN_KERNEL_CONV_B1_POPCOUNT:
                if (QSNN_HAS_KERNEL(QSNN_KERNEL_CONV_B1_POPCOUNT)) {
                    conv_b1_popcount(st, l, mem, st->spk[l]);
                }
                break;
            case QSNN_KERNEL_CONV_B1_COLUMN:
                if (QSNN_HAS_KERNEL(QSNN_KERNEL_CONV_B1_COLUMN)) {
                    conv_b1_column(st, l, mem, st->spk[l]);
                }
                break;
            case QSNN_KERNEL_CONV_BN_COLUMN:
                if (QSNN_HAS_KERNEL(QSNN_KERNEL_CONV_BN_COLUMN)) {
                    conv_bn_column(st, l, mem, st->spk[l]);
                }
                break;
            default: /* QSNN_KERNEL_REF */
                if (QSNN_WITH_REF) {
                    conv_ref(st, l, mem, st->spk[l]);
                }
                break;
            }
        } else
#endif
        dense_layer(L, kernel, &in, &rec, mem, st->adapt[l], st->spk[l]);
        in.feat = NULL;
        in.x = NULL;
        in.xp = NULL;
        in.spk = st->spk[l];
        in.n = L->n_out;
        in.active = reference ? 0 : count_spikes(st->spk[l], L->n_out);
        off += mem_bytes(L);
        QSNN_MARK(1u + l);
    }
    readout(st, &in, reference ? dot_ref : dot_event);
    QSNN_MARK(QSNN_MAX_LAYERS + 1u);
    st->steps++;
}

#if QSNN_WITH_REF
void qsnn_step_ref(qsnn_state_t *st, const uint8_t *feat)
{
    step(st, feat, 1);
}
#endif

void qsnn_step(qsnn_state_t *st, const uint8_t *feat)
{
    step(st, feat, 0);
}

void qsnn_layer_membranes(const qsnn_state_t *st, uint32_t l, int8_t *out)
{
    const qsnn_model_t *m = st->model;
    uint32_t off = 0;
    uint32_t k;
    for (k = 0; k < l; ++k) {
        off += mem_bytes(&m->layers[k]);
    }
    for (k = 0; k < m->layers[l].n_out; ++k) {
        out[k] = mem_load(st->mem + off, k, m->layers[l].mem_bits);
    }
}

int qsnn_argmax(const int32_t *out, int n)
{
    int best = 0;
    int k;
    for (k = 1; k < n; ++k) {
        if (out[k] > out[best]) {
            best = k;
        }
    }
    return best;
}
