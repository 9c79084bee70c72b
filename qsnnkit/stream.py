"""Streaming keyword detection, the integer reference (docs/contract.md section 11).

Continuous audio, no clip boundaries: the front end runs on every hop of the stream and the
network on every frame, never reset after the stream's start. Per frame t the readout of
that frame alone, r_k(t), feeds a leaky sum per class,

    S_k(t) = S_k(t-1) - floor(S_k(t-1) / 2^W) + r_k(t),    S_k(-1) = 0,

and a detection (t, k*, m) fires when k* = argmax_k S_k(t) (ties to the lowest index) may
fire (``class_mask``), its margin m = S_k*(t) - max_{j != k*} S_j(t) is at least
``threshold``, and the last detection is at least ``refractory`` frames back. The C detector
(firmware/lib/qsnn/src/qsnn_detect.c) and the device compute exactly these numbers.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qsnnkit import spec
from qsnnkit.model import ConvertedModel

#: Classes that are not keywords (they never fire).
NON_KEYWORDS = ("_silence_", "_unknown_")


@dataclass(frozen=True)
class DetectConfig:
    threshold: int
    refractory: int = 50  # frames (1 s)
    class_mask: int = 0
    smooth_shift: int = 4

    def check(self, n_classes: int) -> None:
        if self.threshold < 1 or self.threshold > 2**31 - 1:
            raise ValueError(f"threshold must be in 1..2^31-1, got {self.threshold}")
        if not 0 <= self.refractory <= 2**32 - 1:
            raise ValueError(f"refractory must be in 0..2^32-1 frames, got {self.refractory}")
        if not 0 <= self.smooth_shift <= spec.DETECT_MAX_SHIFT:
            raise ValueError(f"smooth_shift must be in 0..{spec.DETECT_MAX_SHIFT}, got {self.smooth_shift}")
        if n_classes > spec.DETECT_MAX_CLASSES:
            raise ValueError(f"a detector handles at most {spec.DETECT_MAX_CLASSES} classes, the model has {n_classes}")
        if self.class_mask == 0 or self.class_mask >> n_classes:
            raise ValueError(f"class_mask {self.class_mask:#x} must name at least one of the model's {n_classes} classes "
                             "and no other")


def keyword_mask(classes: list[str]) -> int:
    """Every class except silence and unknown may fire."""
    return sum(1 << k for k, c in enumerate(classes) if c not in NON_KEYWORDS)


@dataclass(frozen=True)
class Detection:
    frame: int
    label: int
    margin: int

    @property
    def time_s(self) -> float:
        """Stream time at which the frame's window ends."""
        return (self.frame + 2) * spec.HOP_LEN / spec.SAMPLE_RATE


def stream_features(pcm: np.ndarray) -> np.ndarray:
    """Front-end features of a whole stream (int16 PCM, any length): uint8 [frames, n_bands],
    one frame per complete hop after the first, as the device computes them hop by hop."""
    from qsnnkit.frontend import _as_int16_1d, _lib, _ptr, _I16P, _U8P

    x = _as_int16_1d(pcm)
    n_frames = max(0, x.size // spec.HOP_LEN - 1)
    out = np.zeros((n_frames, spec.N_BANDS), dtype=np.uint8)
    if n_frames:
        got = _lib().qsnn_fe_clip(_ptr(x, _I16P), x.size, _ptr(out, _U8P), n_frames)
        if got != n_frames:
            raise RuntimeError(f"qsnn_fe_clip produced {got} frames, expected {n_frames}")
    return out


def frame_readouts(model: ConvertedModel, feats: np.ndarray) -> np.ndarray:
    """r_k(t): the readout of each frame alone, int64 [frames, classes] (network never reset)."""
    from qsnnkit.reference import run_batch

    if len(feats) == 0:
        return np.zeros((0, model.n_classes), np.int64)
    _, tr = run_batch(model, np.asarray(feats, dtype=np.uint8)[None], trace=True)
    assert tr is not None
    last = tr.spk[-1][0].astype(np.int64)  # [T, N] spikes of the last layer
    return last @ model.w_out.astype(np.int64).T + model.b_out.astype(np.int64)


def scores(readouts: np.ndarray, smooth_shift: int) -> np.ndarray:
    """S_k(t), int64 [frames, classes] (every value fits int32: docs/contract.md section 11)."""
    r = np.asarray(readouts, dtype=np.int64)
    out = np.zeros_like(r)
    s = np.zeros(r.shape[1], np.int64)
    for t in range(r.shape[0]):
        s = s - (s >> smooth_shift) + r[t]  # numpy's >> on signed ints floors, as C's on the targets
        out[t] = s
    if out.size and (out.max() > 2**31 - 1 or out.min() < -(2**31)):
        raise OverflowError("a score left int32: the model is outside the contract's readout bound")
    return out


def margins(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: k* (argmax, ties to the lowest index) and the margin to the next best."""
    best = np.argmax(s, axis=1)
    top = s[np.arange(len(s)), best]
    rest = s.copy()
    rest[np.arange(len(s)), best] = np.iinfo(np.int64).min
    second = rest.max(axis=1) if s.shape[1] > 1 else np.zeros(len(s), np.int64)
    return best, top - second


def detect(s: np.ndarray, cfg: DetectConfig) -> list[Detection]:
    """The detection rule over a whole stream's scores."""
    best, margin = margins(s)
    hits: list[Detection] = []
    last = None
    for t in np.flatnonzero(margin >= cfg.threshold):
        k = int(best[t])
        if not (cfg.class_mask >> k) & 1:
            continue
        if last is not None and t - last < cfg.refractory:
            continue
        hits.append(Detection(int(t), k, int(margin[t])))
        last = int(t)
    return hits


def detection_curve(s: np.ndarray, truth: list["Keyword"], hours: float, smooth_shift: int, refractory: int,
                    class_mask: int) -> list[dict[str, float]]:
    """Keywords hit and false alarms per hour at thresholds spread over the scores' margins
    (percentiles 50 to 99.99): the hit-rate vs false-alarm curve of one stream's scores ``s``."""
    _, margin = margins(s)
    if not len(margin):
        return []
    qs = np.concatenate([np.linspace(50, 99.9, 60), [99.93, 99.96, 99.98, 99.99]])
    rows = []
    for th in np.unique(np.percentile(margin, qs).astype(np.int64)):
        cfg = DetectConfig(int(max(1, th)), refractory, class_mask, smooth_shift)
        hits, fa = score_detections(detect(s, cfg), truth)
        rows.append({"threshold": int(cfg.threshold), "hit_rate": hits / max(1, len(truth)),
                     "false_alarms": fa, "fa_per_hour": fa / hours})
    return rows


def run_stream(model: ConvertedModel, pcm: np.ndarray, cfg: DetectConfig) -> tuple[np.ndarray, list[Detection]]:
    """Scores [frames, classes] and detections of a whole stream, as the device computes them."""
    cfg.check(model.n_classes)
    s = scores(frame_readouts(model, stream_features(pcm)), cfg.smooth_shift)
    return s, detect(s, cfg)


# -- long test streams and how detections are scored (benchmarks/kws_stream.py) ----------------
@dataclass(frozen=True)
class Keyword:
    label: int
    start: int  # first sample of the clip in the stream
    end: int  # one past its last sample


def build_stream(items: Sequence[tuple[str | Path, int]], classes: list[str], seed: int = 0,
                 gap_s: tuple[float, float] = (0.5, 2.0), noise_gain: tuple[float, float] = (0.1, 0.5),
                 limit: int | None = None, words: list[Keyword] | None = None) -> tuple[np.ndarray, list[Keyword], float]:
    """A long stream from a split's clips: every keyword and `_unknown_` clip (in a seeded
    random order, at most ``limit``), each after a gap of gap_s seconds of the split's own
    `_silence_` recordings (background noise) at a random gain. Returns int16 PCM, the
    keywords' places, and the seconds of audio; ``words``, when given, receives the places of
    every clip, `_unknown_` ones too (for false_alarm_kinds)."""
    from qsnnkit.data import read_wav

    rng = np.random.default_rng(seed)
    noise = [p for p, lab in items if classes[lab] == "_silence_"]
    clips = [(p, lab) for p, lab in items if classes[lab] != "_silence_"]
    order = rng.permutation(len(clips))[: limit or len(clips)]
    parts: list[np.ndarray] = []
    truth: list[Keyword] = []
    pos = 0
    for i in order:
        path, lab = clips[int(i)]
        g = int(rng.uniform(*gap_s) * spec.SAMPLE_RATE)
        if noise:
            bed = np.resize(read_wav(noise[int(rng.integers(len(noise)))]).astype(np.float64), g)
            parts.append(np.clip(np.round(bed * rng.uniform(*noise_gain)), -32768, 32767).astype(np.int16))
        else:
            parts.append(np.zeros(g, np.int16))
        pos += g
        x = read_wav(path)
        parts.append(x)
        if classes[lab] not in NON_KEYWORDS:
            truth.append(Keyword(lab, pos, pos + x.size))
        if words is not None:
            words.append(Keyword(lab, pos, pos + x.size))
        pos += x.size
    parts.append(np.zeros(spec.SAMPLE_RATE // 2, np.int16))  # the last word can still fire
    pcm = np.concatenate(parts)
    return pcm, truth, pcm.size / spec.SAMPLE_RATE


def match_detections(dets: list[Detection], truth: list[Keyword], late_s: float = 0.5) -> list[int | None]:
    """Per detection, the index of the keyword it hits, or None for a false alarm: a detection
    hits a keyword when it names its class and its stream time falls inside the clip or up to
    ``late_s`` after it (each keyword once, in detection order)."""
    hit: set[int] = set()
    late = int(late_s * spec.SAMPLE_RATE)
    out: list[int | None] = []
    for d in dets:
        t = (d.frame + 2) * spec.HOP_LEN
        j = next((j for j, k in enumerate(truth)
                  if j not in hit and k.label == d.label and k.start <= t <= k.end + late), None)
        if j is not None:
            hit.add(j)
        out.append(j)
    return out


def score_detections(dets: list[Detection], truth: list[Keyword], late_s: float = 0.5) -> tuple[int, int]:
    """(keywords hit, false alarms) by match_detections' rule."""
    m = match_detections(dets, truth, late_s)
    return sum(j is not None for j in m), sum(j is None for j in m)


def false_alarm_kinds(dets: list[Detection], truth: list[Keyword], words: list[Keyword],
                      classes: list[str], late_s: float = 0.5) -> dict[str, int]:
    """Where the false alarms of ``dets`` fall (score_detections' rule): during an `_unknown_`
    word, during a keyword (another keyword's name, or the same keyword again), or in the
    noise between words (no clip within ``late_s`` before)."""
    late = int(late_s * spec.SAMPLE_RATE)
    out = {"unknown_word": 0, "keyword": 0, "noise": 0}
    for d, j in zip(dets, match_detections(dets, truth, late_s)):
        if j is not None:
            continue
        t = (d.frame + 2) * spec.HOP_LEN
        near = [w for w in words if w.start <= t <= w.end + late]
        if any(classes[w.label] == "_unknown_" for w in near):
            out["unknown_word"] += 1
        elif near:
            out["keyword"] += 1
        else:
            out["noise"] += 1
    return out
