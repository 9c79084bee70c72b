/*
 * qsnn_detect.c - streaming keyword detection (qsnn_detect.h; docs/contract.md section 11).
 * Integers only, no allocation; the Python reference (qsnnkit/stream.py) computes the same
 * scores and detections, and tests/test_stream.py checks them equal frame by frame.
 */
#include "qsnn_detect.h"

/* floor(s / 2^w) for any int32 s: an arithmetic right shift (sign bits shifted in), which
 * every supported compiler does for signed >> (tests/test_core.py checks it on the host). */
static int32_t floor_shift(int32_t s, uint32_t w)
{
    return s >> w;
}

int qsnn_detector_init(qsnn_detector_t *d, qsnn_state_t *net, const qsnn_detect_cfg_t *cfg)
{
    uint32_t k;
    const uint32_t nc = net->model->n_classes;
    if (cfg->threshold < 1 || cfg->smooth_shift > QSNN_DETECT_MAX_SHIFT || cfg->class_mask == 0u) {
        return QSNN_DETECT_ERR_CONFIG;
    }
    if (nc > QSNN_DETECT_MAX_CLASSES || (nc < 32u && (cfg->class_mask >> nc) != 0u)) {
        return QSNN_DETECT_ERR_MODEL;
    }
    d->net = net;
    d->cfg = *cfg;
    qsnn_reset(net);
    qsnn_fe_reset(&d->fe);
    d->hop_fill = 0u;
    for (k = 0; k < QSNN_DETECT_MAX_CLASSES; ++k) {
        d->score[k] = 0;
    }
    d->frames = 0u;
    d->since_fire = 0u;
    d->fired = 0u;
    d->q_head = 0u;
    d->q_count = 0u;
    d->lost = 0u;
    return QSNN_DETECT_OK;
}

int qsnn_detector_frame(qsnn_detector_t *d, const uint8_t *feat, qsnn_detection_t *hit)
{
    qsnn_state_t *net = d->net;
    const uint32_t nc = net->model->n_classes;
    const uint32_t w = d->cfg.smooth_shift;
    uint32_t k, best = 0u;
    int32_t second = INT32_MIN;
    int fire;
    /* the readout of this frame alone: the core adds to out[], so it starts from zero */
    for (k = 0; k < nc; ++k) {
        net->out[k] = 0;
    }
    qsnn_step(net, feat);
    net->steps = 0u; /* the core's step count only matters within a clip */
    for (k = 0; k < nc; ++k) {
        d->score[k] = d->score[k] - floor_shift(d->score[k], w) + net->out[k];
        if (d->score[k] > d->score[best]) {
            best = k;
        }
    }
    for (k = 0; k < nc; ++k) {
        if (k != best && d->score[k] > second) {
            second = d->score[k];
        }
    }
    if (nc < 2u) {
        second = 0;
    }
    fire = ((d->cfg.class_mask >> best) & 1u) && d->score[best] - second >= d->cfg.threshold &&
           (!d->fired || d->since_fire >= d->cfg.refractory);
    if (d->since_fire < 0xFFFFFFFFu) {
        ++d->since_fire;
    }
    if (fire) {
        hit->frame = d->frames;
        hit->label = (uint16_t)best;
        hit->margin = d->score[best] - second;
        d->fired = 1u;
        d->since_fire = 1u;
    }
    ++d->frames;
    return fire;
}

uint32_t qsnn_detector_push(qsnn_detector_t *d, const int16_t *pcm, size_t n)
{
    uint32_t frames = 0u;
    size_t i;
    for (i = 0; i < n; ++i) {
        d->hop[d->hop_fill++] = pcm[i];
        if (d->hop_fill == QSNN_HOP_LEN) {
            uint8_t feat[QSNN_N_BANDS];
            qsnn_detection_t hit;
            d->hop_fill = 0u;
            if (qsnn_fe_push(&d->fe, d->hop, feat) && (++frames, qsnn_detector_frame(d, feat, &hit))) {
                if (d->q_count == QSNN_DETECT_QUEUE) {
                    d->q_head = (d->q_head + 1u) % QSNN_DETECT_QUEUE; /* drop the oldest */
                    --d->q_count;
                    ++d->lost;
                }
                d->queue[(d->q_head + d->q_count) % QSNN_DETECT_QUEUE] = hit;
                ++d->q_count;
            }
        }
    }
    return frames;
}

int qsnn_detector_poll(qsnn_detector_t *d, qsnn_detection_t *hit)
{
    if (d->q_count == 0u) {
        return 0;
    }
    *hit = d->queue[d->q_head];
    d->q_head = (d->q_head + 1u) % QSNN_DETECT_QUEUE;
    --d->q_count;
    return 1;
}
