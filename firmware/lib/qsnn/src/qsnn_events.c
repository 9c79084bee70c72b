/*
 * qsnn_events.c - event binning (docs/contract.md section 12; interface and rules in
 * qsnn_events.h). C99, fixed-width integers, no allocation, no float.
 */
#include "qsnn_events.h"

uint32_t qsnn_ev_inputs(const qsnn_ev_cfg_t *cfg)
{
    if (cfg == NULL || cfg->width == 0u || cfg->height == 0u || cfg->width > QSNN_EV_MAX_SIDE ||
        cfg->height > QSNN_EV_MAX_SIDE || cfg->pool_shift > QSNN_EV_MAX_POOL_SHIFT || cfg->cap == 0u ||
        cfg->window_us == 0u || cfg->window_us > QSNN_EV_MAX_WINDOW_US) {
        return 0u;
    }
    return QSNN_EV_N_INPUTS((uint32_t)cfg->width, (uint32_t)cfg->height, (uint32_t)cfg->pool_shift);
}

static void clear(uint8_t *v, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; ++i) {
        v[i] = 0u;
    }
}

int qsnn_ev_init(qsnn_ev_state_t *ev, const qsnn_ev_cfg_t *cfg, uint8_t *counts, size_t counts_len, uint32_t t0)
{
    const uint32_t n = qsnn_ev_inputs(cfg);
    if (ev == NULL || n == 0u) {
        return QSNN_EV_ERR_CONFIG;
    }
    if (counts == NULL || counts_len < (size_t)n) {
        return QSNN_EV_ERR_BUFFER;
    }
    ev->cfg = *cfg;
    ev->wb = QSNN_EV_BLOCKS((uint32_t)cfg->width, (uint32_t)cfg->pool_shift);
    ev->hb = QSNN_EV_BLOCKS((uint32_t)cfg->height, (uint32_t)cfg->pool_shift);
    ev->n_inputs = n;
    ev->step_start = t0;
    ev->steps = 0u;
    ev->dropped = 0u;
    ev->late = 0u;
    ev->beyond = 0u;
    ev->counts = counts;
    clear(counts, n);
    return QSNN_EV_OK;
}

int qsnn_ev_add(qsnn_ev_state_t *ev, uint32_t x, uint32_t y, uint32_t p, uint32_t t)
{
    const uint32_t d = t - ev->step_start; /* modulo 2^32: a wrapped counter still differs right */
    uint32_t i;
    if (x >= ev->cfg.width || y >= ev->cfg.height || p > 1u) {
        ++ev->dropped;
        return QSNN_EV_DROPPED;
    }
    if (d >= 0x80000000u) { /* before the step's start: out of order, counted here */
        ++ev->late;
    } else if (d >= ev->cfg.window_us) {
        return QSNN_EV_LATER;
    }
    i = p * (ev->hb * ev->wb) + (y >> ev->cfg.pool_shift) * ev->wb + (x >> ev->cfg.pool_shift);
    if (ev->counts[i] < ev->cfg.cap) {
        ++ev->counts[i];
    }
    return QSNN_EV_ADDED;
}

void qsnn_ev_close(qsnn_ev_state_t *ev, uint8_t *frame)
{
    uint32_t i;
    for (i = 0; i < ev->n_inputs; ++i) {
        frame[i] = ev->counts[i];
        ev->counts[i] = 0u;
    }
    ev->step_start += ev->cfg.window_us;
    ++ev->steps;
}

int qsnn_ev_feed(qsnn_ev_state_t *ev, uint32_t steps, uint32_t x, uint32_t y, uint32_t p, uint32_t t, uint8_t *frame)
{
    int r;
    if (ev->steps >= steps) { /* every frame is out: the rest of the sample is beyond it */
        ++ev->beyond;
        return QSNN_EV_BEYOND;
    }
    r = qsnn_ev_add(ev, x, y, p, t);
    if (r != QSNN_EV_LATER) {
        return r;
    }
    qsnn_ev_close(ev, frame);
    return QSNN_EV_FRAME;
}

int qsnn_ev_finish(qsnn_ev_state_t *ev, uint32_t steps, uint8_t *frame)
{
    if (ev->steps >= steps) {
        return 0;
    }
    qsnn_ev_close(ev, frame);
    return 1;
}

int qsnn_ev_bin(const qsnn_ev_cfg_t *cfg, const uint16_t *x, const uint16_t *y, const uint8_t *p,
                const uint32_t *t, size_t n, uint32_t t0, uint32_t steps, uint8_t *frames,
                uint8_t *counts, size_t counts_len, qsnn_ev_stats_t *stats)
{
    qsnn_ev_state_t ev;
    size_t k;
    int rc = qsnn_ev_init(&ev, cfg, counts, counts_len, t0);
    if (rc != QSNN_EV_OK) {
        return rc;
    }
    if ((frames == NULL && steps > 0u) || (n > 0u && (x == NULL || y == NULL || p == NULL || t == NULL))) {
        return QSNN_EV_ERR_BUFFER;
    }
    /* the device's incremental use, one event at a time: the frame a step closes into is the
     * next of `frames` (the network would step on it here) */
    for (k = 0; k < n; ++k) {
        while (qsnn_ev_feed(&ev, steps, x[k], y[k], p[k], t[k], frames + (size_t)ev.steps * ev.n_inputs) ==
               QSNN_EV_FRAME) {
        }
    }
    while (qsnn_ev_finish(&ev, steps, frames + (size_t)ev.steps * ev.n_inputs)) {
    }
    if (stats != NULL) {
        stats->dropped = ev.dropped;
        stats->late = ev.late;
        stats->beyond = ev.beyond;
    }
    return QSNN_EV_OK;
}
