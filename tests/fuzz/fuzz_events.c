/*
 * fuzz_events.c - libFuzzer harness of the event binner (qsnn_ev_init/add/close/bin).
 *
 * Input: a 12-byte header (width u16, height u16, pool_shift, cap, steps, unused, window_us
 * u32, all little-endian), t0 u32, then 9-byte events (x u16, y u16, p u8, t u32): any
 * values, so events fall outside the sensor, polarities exceed 1, timestamps go backwards
 * and wrap. Checked, besides the sanitizers: qsnn_ev_bin accepts exactly the configurations
 * qsnn_ev_inputs accepts; the firmware's loop (qsnn_ev_feed until it stops closing steps,
 * then qsnn_ev_finish) and the lower-level one (qsnn_ev_add, qsnn_ev_close on LATER) give
 * the same frames and counters as qsnn_ev_bin; no count exceeds the cap; every event is counted
 * once: added, dropped or beyond the last step; a second run gives the same frames.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "qsnn_events.h"

#define MAX_SIDE_RUN 80u /* larger valid sensors are only checked for acceptance */
#define MAX_IN (2u * MAX_SIDE_RUN * MAX_SIDE_RUN)
#define MAX_STEPS 40u
#define MAX_EVENTS 512u

static uint32_t u16(const uint8_t *d) { return (uint32_t)d[0] | ((uint32_t)d[1] << 8); }
static uint32_t u32(const uint8_t *d) { return u16(d) | (u16(d + 2) << 16); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint16_t x[MAX_EVENTS], y[MAX_EVENTS];
    static uint8_t p[MAX_EVENTS];
    static uint32_t t[MAX_EVENTS];
    static uint8_t a[MAX_STEPS * MAX_IN], b[MAX_STEPS * MAX_IN], c[MAX_STEPS * MAX_IN], f[MAX_STEPS * MAX_IN];
    static uint8_t counts[MAX_IN];
    static qsnn_ev_state_t ev;
    qsnn_ev_cfg_t cfg;
    qsnn_ev_stats_t sa, sb;
    uint32_t n_in, steps, t0, n, k, added = 0u, dropped = 0u, beyond = 0u;
    int rc;
    if (size < 16u) {
        return 0;
    }
    cfg.width = (uint16_t)u16(data);
    cfg.height = (uint16_t)u16(data + 2);
    cfg.pool_shift = data[4];
    cfg.cap = data[5];
    steps = data[6] % (MAX_STEPS + 1u);
    cfg.window_us = u32(data + 8);
    t0 = u32(data + 12);
    n = (uint32_t)((size - 16u) / 9u);
    if (n > MAX_EVENTS) {
        n = MAX_EVENTS;
    }
    for (k = 0; k < n; ++k) {
        const uint8_t *e = data + 16u + 9u * k;
        x[k] = (uint16_t)u16(e);
        y[k] = (uint16_t)u16(e + 2);
        p[k] = e[4];
        t[k] = u32(e + 5);
    }
    n_in = qsnn_ev_inputs(&cfg);
    if (cfg.width > MAX_SIDE_RUN || cfg.height > MAX_SIDE_RUN) {
        CHECK((n_in != 0u) == (cfg.width > 0u && cfg.height > 0u && cfg.width <= QSNN_EV_MAX_SIDE &&
                               cfg.height <= QSNN_EV_MAX_SIDE && cfg.pool_shift <= QSNN_EV_MAX_POOL_SHIFT &&
                               cfg.cap > 0u && cfg.window_us > 0u && cfg.window_us <= QSNN_EV_MAX_WINDOW_US));
        return 0;
    }
    rc = qsnn_ev_bin(&cfg, x, y, p, t, n, t0, steps, a, counts, sizeof counts, &sa);
    CHECK((rc == QSNN_EV_OK) == (n_in != 0u));
    if (rc != QSNN_EV_OK) {
        CHECK(qsnn_ev_init(&ev, &cfg, counts, sizeof counts, t0) == QSNN_EV_ERR_CONFIG);
        return 0;
    }
    CHECK(n_in <= MAX_IN);
    CHECK(qsnn_ev_bin(&cfg, x, y, p, t, n, t0, steps, c, counts, n_in - 1u, &sb) == QSNN_EV_ERR_BUFFER);
    /* the device's loop */
    CHECK(qsnn_ev_init(&ev, &cfg, counts, n_in, t0) == QSNN_EV_OK);
    for (k = 0; k < n; ++k) {
        int r;
        if (ev.steps == steps) {
            beyond += n - k;
            break;
        }
        while ((r = qsnn_ev_add(&ev, x[k], y[k], p[k], t[k])) == QSNN_EV_LATER) {
            qsnn_ev_close(&ev, b + (size_t)ev.steps * n_in);
            if (ev.steps == steps) {
                break;
            }
        }
        if (r == QSNN_EV_ADDED) {
            ++added;
        } else if (r == QSNN_EV_DROPPED) {
            ++dropped;
        } else {
            ++beyond;
        }
    }
    while (ev.steps < steps) {
        qsnn_ev_close(&ev, b + (size_t)ev.steps * n_in);
    }
    CHECK(memcmp(a, b, (size_t)steps * n_in) == 0);
    /* the firmware's loop: the frame a step closes into goes where the network would read it */
    {
        uint32_t fed_added = 0u, fed_dropped = 0u, fed_beyond = 0u, frames = 0u;
        uint8_t frame[MAX_IN];
        CHECK(qsnn_ev_init(&ev, &cfg, counts, n_in, t0) == QSNN_EV_OK);
        for (k = 0; k < n; ++k) {
            int r;
            while ((r = qsnn_ev_feed(&ev, steps, x[k], y[k], p[k], t[k], frame)) == QSNN_EV_FRAME) {
                CHECK(frames < steps);
                memcpy(f + (size_t)frames * n_in, frame, n_in);
                ++frames;
            }
            fed_added += r == QSNN_EV_ADDED;
            fed_dropped += r == QSNN_EV_DROPPED;
            fed_beyond += r == QSNN_EV_BEYOND;
        }
        while (qsnn_ev_finish(&ev, steps, frame)) {
            CHECK(frames < steps);
            memcpy(f + (size_t)frames * n_in, frame, n_in);
            ++frames;
        }
        CHECK(frames == steps && memcmp(a, f, (size_t)steps * n_in) == 0);
        CHECK(fed_added == added && fed_dropped == dropped && fed_beyond == beyond && ev.beyond == beyond);
        CHECK(ev.late == sa.late && ev.dropped == sa.dropped);
    }
    CHECK(sa.dropped == ev.dropped && sa.late == ev.late && sa.beyond == beyond && ev.dropped == dropped);
    CHECK(added + dropped + beyond == n);
    CHECK(sa.late <= added);
    {
        uint32_t total = 0u;
        for (k = 0; k < steps * n_in; ++k) {
            CHECK(a[k] <= cfg.cap);
            total += a[k];
        }
        CHECK(total <= added);
    }
    CHECK(qsnn_ev_bin(&cfg, x, y, p, t, n, t0, steps, c, counts, n_in, &sb) == QSNN_EV_OK);
    CHECK(memcmp(a, c, (size_t)steps * n_in) == 0 && memcmp(&sa, &sb, sizeof sa) == 0);
    return 0;
}
