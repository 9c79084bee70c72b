/*
 * qsnn_detect.h - streaming keyword detection: continuous audio in, detections out, in
 * constant RAM (docs/contract.md section 11; the Python reference is qsnnkit/stream.py).
 *
 * Put the keyword spotter behind your own microphone driver:
 *
 *     static uint32_t arena[(QSNN_MODEL_ARENA_BYTES + 3) / 4];
 *     static qsnn_state_t net;
 *     static qsnn_detector_t det;
 *     qsnn_detect_cfg_t cfg = {.threshold = 3000, .refractory = 50,
 *                              .class_mask = 0x3FF, .smooth_shift = 4};
 *     qsnn_state_init(&net, &qsnn_model, arena, sizeof arena);
 *     qsnn_detector_init(&det, &net, &cfg);
 *     for (;;) {
 *         n = read_microphone(pcm, 160);              // any number of 16 kHz int16 samples
 *         qsnn_detector_push(&det, pcm, n);           // front end per hop, network per frame
 *         while (qsnn_detector_poll(&det, &hit)) {    // detections, oldest first
 *             printf("%s at %u ms\n", qsnn_model_classes[hit.label], qsnn_detect_time_ms(hit.frame));
 *         }
 *     }
 *
 * Per frame t (from the stream's start): the network steps on the frame's features; its
 * readout of this frame alone is r_k(t); the score S_k(t) = S_k(t-1) - (S_k(t-1) >> W) +
 * r_k(t) (arithmetic shift: floor); k* = argmax_k S_k(t) (ties to the lowest index);
 * margin m(t) = S_k*(t) - max_{j != k*} S_j(t). A detection (t, k*, m(t)) fires when class
 * k* is in class_mask, m(t) >= threshold, and no detection fired in the last `refractory`
 * frames. Integers only; no sum can overflow however long the stream (section 11).
 */
#ifndef QSNN_DETECT_H
#define QSNN_DETECT_H

#include <stddef.h>
#include <stdint.h>

#include "qsnn_core.h"
#include "qsnn_frontend.h"
#include "qsnn_spec.h"

#define QSNN_DETECT_OK 0
#define QSNN_DETECT_ERR_CONFIG 1 /* threshold < 1, smooth_shift > QSNN_DETECT_MAX_SHIFT, empty mask */
#define QSNN_DETECT_ERR_MODEL 2  /* more than QSNN_DETECT_MAX_CLASSES classes, or mask bits beyond them */

typedef struct {
    int32_t threshold;    /* smallest margin that fires, >= 1 */
    uint32_t refractory;  /* frames after a detection in which no other fires */
    uint32_t class_mask;  /* bit k set: class k may fire (keywords; not silence or unknown) */
    uint8_t smooth_shift; /* W: the score forgets 2^-W of itself per frame (0..QSNN_DETECT_MAX_SHIFT) */
} qsnn_detect_cfg_t;

typedef struct {
    uint32_t frame; /* frame index from the stream's start; its window ends at (frame + 2) hops */
    uint16_t label; /* class index */
    int32_t margin; /* S_label - the next best score, at that frame */
} qsnn_detection_t;

typedef struct {
    qsnn_state_t *net;
    qsnn_fe_state_t fe;
    qsnn_detect_cfg_t cfg;
    int16_t hop[QSNN_HOP_LEN];
    uint32_t hop_fill;
    int32_t score[QSNN_DETECT_MAX_CLASSES]; /* S_k of the last frame */
    uint32_t frames;                        /* frames since the stream's start */
    uint32_t since_fire;                    /* frames since the last detection (saturates) */
    uint8_t fired;                          /* a detection has fired since the start */
    qsnn_detection_t queue[QSNN_DETECT_QUEUE];
    uint32_t q_head, q_count;
    uint32_t lost; /* detections dropped because the queue was full (poll more often) */
} qsnn_detector_t;

/* Check the configuration, reset the network and front end: the stream starts now. */
int qsnn_detector_init(qsnn_detector_t *d, qsnn_state_t *net, const qsnn_detect_cfg_t *cfg);

/* One frame of features (what qsnn_detector_push does per frame): network step, score,
 * detection rule. Returns 1 and fills *hit when a detection fires (it is not queued). */
int qsnn_detector_frame(qsnn_detector_t *d, const uint8_t *feat, qsnn_detection_t *hit);

/* Feed n samples (any n): the front end runs on every complete hop, the network on every
 * frame; detections are queued for qsnn_detector_poll. Returns the frames processed. */
uint32_t qsnn_detector_push(qsnn_detector_t *d, const int16_t *pcm, size_t n);

/* The oldest queued detection: 1 and *hit filled, or 0 when there is none. */
int qsnn_detector_poll(qsnn_detector_t *d, qsnn_detection_t *hit);

/* Stream time (ms) at which frame `frame`'s window ends. */
static inline uint32_t qsnn_detect_time_ms(uint32_t frame)
{
    return (frame + 2u) * (QSNN_HOP_LEN * 1000u / QSNN_SAMPLE_RATE_HZ);
}

#endif /* QSNN_DETECT_H */
