/*
 * qsnn_core.c - the portable integer Q-SNN core: one plain reference kernel and one fast
 * kernel that must match it bit for bit (tests/test_core.py checks every step of every
 * test clip). C99, no float, no malloc; the caller owns the state arena.
 *
 * Numeric rules: docs/contract.md, implemented once in qsnn_contract.h.
 */
#include "qsnn_core.h"
#include "qsnn_pack.h"

/* ---- packed weight access: qsnn_unpack() from qsnn_pack.h (contract section 8) ---- */

#define unpack_elem(row, j, bits) qsnn_unpack((row), (j), (unsigned)(bits))

static uint32_t spike_bit(const uint32_t *spk, uint32_t j)
{
    return (spk[j >> 5] >> (j & 31u)) & 1u;
}

/* Portable popcount: no library call on cores without a popcount instruction. */
static uint32_t popcount32(uint32_t v)
{
    v = v - ((v >> 1) & 0x55555555u);
    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
    v = (v + (v >> 4)) & 0x0F0F0F0Fu;
    return (v * 0x01010101u) >> 24;
}

/* ---- model and state --------------------------------------------------------------- */

static uint32_t round4(uint32_t n) { return (n + 3u) & ~3u; }

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
        if (b < 2u || b > 8u || L->leak_shift < 1u || (int)L->leak_shift > qsnn_mem_shift((int)b)) {
            return QSNN_ERR_MODEL;
        }
        if (L->recurrent && (L->w_rec == NULL || L->sh_rec == NULL)) {
            return QSNN_ERR_MODEL;
        }
        n_prev = L->n_out;
    }
    return QSNN_OK;
}

size_t qsnn_state_bytes(const qsnn_model_t *m)
{
    uint32_t bytes = 0;
    uint32_t l;
    for (l = 0; l < m->n_layers; ++l) {
        const qsnn_layer_t *L = &m->layers[l];
        bytes += round4(L->n_out);                                             /* membranes */
        bytes += 4u * QSNN_ROW_WORDS(L->n_out, 1u) * (L->recurrent ? 2u : 1u); /* spikes */
    }
    bytes += round4(2u * m->n_bands);  /* centred features */
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
    }
    for (l = 0; l < m->n_layers; ++l) {
        const qsnn_layer_t *L = &m->layers[l];
        const uint32_t w = QSNN_ROW_WORDS(L->n_out, 1u);
        st->spk[l] = (uint32_t *)(void *)p;
        p += 4u * w;
        if (L->recurrent) {
            st->prev[l] = (uint32_t *)(void *)p;
            p += 4u * w;
        }
    }
    st->x = (int16_t *)(void *)p;
    p += round4(2u * m->n_bands);
    st->mem = (int8_t *)(void *)p;
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
        for (i = 0; i < L->n_out; ++i) {
            st->mem[off + i] = 0;
        }
        off += round4(L->n_out);
    }
    st->steps = 0u;
}

/* Shared by both kernels: everything of a step except the synaptic sums. */
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

static int32_t neuron_current(const qsnn_layer_t *L, uint32_t i, int32_t acc_ff, int32_t acc_rec)
{
    int32_t c = qsnn_scale(acc_ff, L->sh_ff[i]) + (int32_t)L->bias[i];
    if (L->recurrent) {
        c += qsnn_scale(acc_rec, L->sh_rec[i]);
    }
    return qsnn_sat16(c);
}

/* ---- reference kernel: plain, element by element ----------------------------------- */

void qsnn_step_ref(qsnn_state_t *st, const uint8_t *feat)
{
    const qsnn_model_t *m = st->model;
    uint32_t l;
    uint32_t i;
    uint32_t j;
    uint32_t off = 0;
    const uint32_t *below = NULL;
    centre_features(st, feat);
    begin_step(st);
    for (l = 0; l < m->n_layers; ++l) {
        const qsnn_layer_t *L = &m->layers[l];
        const uint32_t rw = QSNN_ROW_WORDS(L->n_in, L->w_bits);
        const uint32_t rrw = QSNN_ROW_WORDS(L->n_out, 1u);
        for (i = 0; i < L->n_out; ++i) {
            const uint32_t *row = L->w + (size_t)i * rw;
            int32_t acc_ff = 0;
            int32_t acc_rec = 0;
            for (j = 0; j < L->n_in; ++j) {
                const int32_t in = (l == 0u) ? (int32_t)st->x[j] : (int32_t)spike_bit(below, j);
                acc_ff += unpack_elem(row, j, L->w_bits) * in;
            }
            if (L->recurrent) {
                const uint32_t *rrow = L->w_rec + (size_t)i * rrw;
                for (j = 0; j < L->n_out; ++j) {
                    acc_rec += unpack_elem(rrow, j, 1u) * (int32_t)spike_bit(st->prev[l], j);
                }
            }
            if (qsnn_lif_step(&st->mem[off + i], neuron_current(L, i, acc_ff, acc_rec), L->leak_shift,
                              L->mem_bits)) {
                st->spk[l][i >> 5] |= 1u << (i & 31u);
            }
        }
        below = st->spk[l];
        off += round4(L->n_out);
    }
    {
        const uint32_t n_last = m->layers[m->n_layers - 1u].n_out;
        const uint32_t rw = QSNN_ROW_WORDS(n_last, 8u);
        for (i = 0; i < m->n_classes; ++i) {
            int32_t o = m->b_out[i];
            for (j = 0; j < n_last; ++j) {
                o += unpack_elem(m->w_out + (size_t)i * rw, j, 8u) * (int32_t)spike_bit(below, j);
            }
            st->out[i] = qsnn_sat32_add(st->out[i], o);
        }
    }
    st->steps++;
}

/* ---- fast kernel: word-parallel ----------------------------------------------------- */

/* Active inputs of a packed spike vector (computed once per layer, not per row). */
static int32_t count_spikes(const uint32_t *spk, uint32_t words)
{
    uint32_t k;
    int32_t act = 0;
    for (k = 0; k < words; ++k) {
        act += (int32_t)popcount32(spk[k]);
    }
    return act;
}

/* sum_j w_j * s_j for a 1-bit row and packed spikes: 2 * popcount(W & S) - popcount(S). */
static int32_t dot_bin_spikes(const uint32_t *row, const uint32_t *spk, uint32_t words, int32_t act)
{
    uint32_t k;
    int32_t both = 0;
    for (k = 0; k < words; ++k) {
        both += (int32_t)popcount32(row[k] & spk[k]);
    }
    return 2 * both - act;
}

/* sum_j w_j * x_j for an 8-bit row and int16 inputs, four weights per word. */
static int32_t dot_int8_x(const uint32_t *row, const int16_t *x, uint32_t n)
{
    int32_t acc = 0;
    uint32_t j = 0;
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

/* sum over active spikes j of w_j, for a row at any width: event-driven over set bits. */
static int32_t dot_any_spikes(const uint32_t *row, const uint32_t *spk, uint32_t n, uint32_t bits)
{
    int32_t acc = 0;
    uint32_t k;
    const uint32_t words = QSNN_ROW_WORDS(n, 1u);
    for (k = 0; k < words; ++k) {
        uint32_t s = spk[k];
        uint32_t j = k * 32u;
        while (s != 0u) {
            if (s & 1u) {
                acc += unpack_elem(row, j, bits);
            }
            s >>= 1;
            ++j;
        }
    }
    return acc;
}

void qsnn_step_fast(qsnn_state_t *st, const uint8_t *feat)
{
    const qsnn_model_t *m = st->model;
    uint32_t l;
    uint32_t i;
    uint32_t off = 0;
    const uint32_t *below = NULL;
    centre_features(st, feat);
    begin_step(st);
    for (l = 0; l < m->n_layers; ++l) {
        const qsnn_layer_t *L = &m->layers[l];
        const uint32_t rw = QSNN_ROW_WORDS(L->n_in, L->w_bits);
        const uint32_t rrw = QSNN_ROW_WORDS(L->n_out, 1u);
        const int32_t act_ff = (l == 0u || L->w_bits != 1u) ? 0 : count_spikes(below, rw);
        const int32_t act_rec = L->recurrent ? count_spikes(st->prev[l], rrw) : 0;
        for (i = 0; i < L->n_out; ++i) {
            const uint32_t *row = L->w + (size_t)i * rw;
            int32_t acc_ff;
            int32_t acc_rec = 0;
            if (l == 0u) {
                if (L->w_bits == 8u) {
                    acc_ff = dot_int8_x(row, st->x, L->n_in);
                } else {
                    uint32_t j;
                    acc_ff = 0;
                    for (j = 0; j < L->n_in; ++j) {
                        acc_ff += unpack_elem(row, j, L->w_bits) * st->x[j];
                    }
                }
            } else if (L->w_bits == 1u) {
                acc_ff = dot_bin_spikes(row, below, rw, act_ff);
            } else {
                acc_ff = dot_any_spikes(row, below, L->n_in, L->w_bits);
            }
            if (L->recurrent) {
                acc_rec = dot_bin_spikes(L->w_rec + (size_t)i * rrw, st->prev[l], rrw, act_rec);
            }
            if (qsnn_lif_step(&st->mem[off + i], neuron_current(L, i, acc_ff, acc_rec), L->leak_shift,
                              L->mem_bits)) {
                st->spk[l][i >> 5] |= 1u << (i & 31u);
            }
        }
        below = st->spk[l];
        off += round4(L->n_out);
    }
    {
        const uint32_t n_last = m->layers[m->n_layers - 1u].n_out;
        const uint32_t rw = QSNN_ROW_WORDS(n_last, 8u);
        for (i = 0; i < m->n_classes; ++i) {
            const int32_t o = m->b_out[i] + dot_any_spikes(m->w_out + (size_t)i * rw, below, n_last, 8u);
            st->out[i] = qsnn_sat32_add(st->out[i], o);
        }
    }
    st->steps++;
}

void qsnn_step(qsnn_state_t *st, const uint8_t *feat)
{
#ifdef QSNN_KERNEL_REF
    qsnn_step_ref(st, feat);
#else
    qsnn_step_fast(st, feat);
#endif
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
