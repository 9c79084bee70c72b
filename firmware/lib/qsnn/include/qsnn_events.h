/*
 * qsnn_events.h - event-camera input: address events (x, y, polarity, timestamp) binned into
 * the per-step input frames the network reads (docs/contract.md section 12; Python calls
 * this same code through qsnnkit/events.py, so training and the device cannot disagree).
 *
 * A step covers window_us microseconds; the step with index k covers timestamps
 * [t0 + k * window_us, t0 + (k + 1) * window_us), all arithmetic modulo 2^32 (a sensor's
 * 32-bit microsecond counter may wrap: only differences are used). Pixel (x, y) of
 * polarity p adds one count to input
 *
 *     p * (hb * wb) + (y >> pool_shift) * wb + (x >> pool_shift),
 *     wb = ceil(width / 2^pool_shift), hb = ceil(height / 2^pool_shift),
 *
 * and counts saturate at `cap` (1: binary spikes; at most 255). The frame of a step is its
 * counts as uint8, exactly the features the core reads (qsnn_step). Events are handled in
 * arrival order:
 *   - x >= width, y >= height or p > 1: dropped, counted in `dropped`;
 *   - a timestamp before the current step's start (out of order, by less than 2^31 us):
 *     counted in the current step, and in `late`;
 *   - a timestamp at or after the current step's end: qsnn_ev_add returns QSNN_EV_LATER
 *     and changes nothing; close the step (qsnn_ev_close) and add the event again.
 * No allocation, no float; the frame buffer is the caller's.
 *
 * A sample of `steps` steps, as the device runs it (qsnn_ev_bin does the same, whole):
 *
 *     static qsnn_ev_state_t ev;
 *     static uint8_t counts[N_INPUTS], frame[N_INPUTS];  // N_INPUTS = qsnn_ev_inputs(&cfg)
 *     qsnn_ev_init(&ev, &cfg, counts, sizeof counts, t0);
 *     for each event e:
 *         while (qsnn_ev_feed(&ev, steps, e.x, e.y, e.p, e.t, frame) == QSNN_EV_FRAME) {
 *             qsnn_step(&net, frame);         // the network steps on the finished step
 *         }
 *     while (qsnn_ev_finish(&ev, steps, frame)) {   // after the last event
 *         qsnn_step(&net, frame);
 *     }
 */
#ifndef QSNN_EVENTS_H
#define QSNN_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "qsnn_spec.h"

/* Outcomes of qsnn_ev_add (QSNN_EV_ADDED, QSNN_EV_LATER, QSNN_EV_DROPPED) and status codes
 * (QSNN_EV_OK, QSNN_EV_ERR_CONFIG, QSNN_EV_ERR_BUFFER) are in qsnn_spec.h, generated from
 * qsnnkit/spec.py. */

/* Input blocks along a side of `side` pixels at pooling shift s (ceil(side / 2^s)), and the
 * inputs of a sensor (2 polarities x blocks): the address rule's sizes, usable at compile
 * time (a firmware sizes its buffers with them; qsnn_ev_inputs also checks the config). */
#define QSNN_EV_BLOCKS(side, s) (((side) + (1u << (s)) - 1u) >> (s))
#define QSNN_EV_N_INPUTS(width, height, s) (2u * QSNN_EV_BLOCKS(width, s) * QSNN_EV_BLOCKS(height, s))

typedef struct {
    uint16_t width;     /* sensor columns, 1..QSNN_EV_MAX_SIDE */
    uint16_t height;    /* sensor rows, 1..QSNN_EV_MAX_SIDE */
    uint8_t pool_shift; /* one input per 2^s x 2^s pixel block and polarity, s <= QSNN_EV_MAX_POOL_SHIFT */
    uint8_t cap;        /* counts saturate here: 1 = binary spikes, up to 255 */
    uint32_t window_us; /* step length in microseconds, 1 .. 2^31 - 1 */
} qsnn_ev_cfg_t;

typedef struct {
    qsnn_ev_cfg_t cfg;
    uint32_t wb;           /* input blocks per row */
    uint32_t hb;           /* input blocks per column */
    uint32_t n_inputs;     /* 2 * wb * hb */
    uint32_t step_start;   /* timestamp at which the current step began (mod 2^32) */
    uint32_t steps;        /* steps closed since qsnn_ev_init */
    uint32_t dropped;      /* events outside the sensor or with polarity > 1 */
    uint32_t late;         /* events older than the current step, counted in it */
    uint32_t beyond;       /* events qsnn_ev_feed met after the sample's last step: not counted */
    uint8_t *counts;       /* the current step's saturating counts (the caller's n_inputs bytes) */
} qsnn_ev_state_t;

/* Inputs a configuration produces (0 when the configuration is invalid). */
uint32_t qsnn_ev_inputs(const qsnn_ev_cfg_t *cfg);

/* Check the configuration and the counts buffer (counts_len >= qsnn_ev_inputs(cfg) bytes),
 * and start the first, empty step at timestamp t0. */
int qsnn_ev_init(qsnn_ev_state_t *ev, const qsnn_ev_cfg_t *cfg, uint8_t *counts, size_t counts_len, uint32_t t0);

/* One event: QSNN_EV_ADDED, QSNN_EV_LATER (nothing changed) or QSNN_EV_DROPPED. */
int qsnn_ev_add(qsnn_ev_state_t *ev, uint32_t x, uint32_t y, uint32_t p, uint32_t t);

/* Finish the current step: its n_inputs counts into frame, then a new, empty step begins
 * window_us later. */
void qsnn_ev_close(qsnn_ev_state_t *ev, uint8_t *frame);

/* One event of a sample of `steps` steps, by the rules of docs/contract.md section 12:
 *   QSNN_EV_FRAME   the event belongs to a later step: the current step was closed into
 *                   `frame` (n_inputs bytes); step the network on it, then feed the same
 *                   event again;
 *   QSNN_EV_ADDED   counted (late or not); QSNN_EV_DROPPED: outside the sensor or p > 1;
 *   QSNN_EV_BEYOND  all `steps` frames are out: not counted (counted in `beyond`). */
int qsnn_ev_feed(qsnn_ev_state_t *ev, uint32_t steps, uint32_t x, uint32_t y, uint32_t p, uint32_t t,
                 uint8_t *frame);

/* After a sample's last event: while fewer than `steps` steps are closed, close the next into
 * `frame` and return 1 (step the network on it); then 0. */
int qsnn_ev_finish(qsnn_ev_state_t *ev, uint32_t steps, uint8_t *frame);

/* What qsnn_ev_bin counted besides the frames. */
typedef struct {
    uint32_t dropped; /* outside the sensor or polarity > 1 */
    uint32_t late;    /* out of order, counted in the step they arrived in */
    uint32_t beyond;  /* at or after t0 + steps * window_us: not counted */
} qsnn_ev_stats_t;

/* A whole sample: n events (arrays x, y, p, t, in arrival order) binned into `steps` frames
 * of n_inputs bytes each (frames[k * n_inputs + i]), the first step starting at t0, through
 * qsnn_ev_feed and qsnn_ev_finish (the calls the device makes, one event at a time). `counts` is the
 * working buffer (counts_len >= n_inputs). Returns QSNN_EV_OK or an error code. */
int qsnn_ev_bin(const qsnn_ev_cfg_t *cfg, const uint16_t *x, const uint16_t *y, const uint8_t *p,
                const uint32_t *t, size_t n, uint32_t t0, uint32_t steps, uint8_t *frames,
                uint8_t *counts, size_t counts_len, qsnn_ev_stats_t *stats);

#endif /* QSNN_EVENTS_H */
