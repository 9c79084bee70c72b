"""Streaming keyword detection (docs/contract.md section 11): the C detector (through the
example application firmware/examples/kws_detector, built on the host) gives, frame by frame,
the scores and detections of the integer reference (qsnnkit/stream.py) on a stream of test
clips with noise between them; the rule's edges (refractory, mask, threshold, ties) and the
bound that keeps a long stream inside int32."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from qsnnkit import spec
from qsnnkit import stream as S
from qsnnkit.model import load_converted
from qsnnkit.paths import FIRMWARE_DIR

EXAMPLE = FIRMWARE_DIR / "examples" / "kws_detector"
MODEL_DIR = FIRMWARE_DIR / "models" / "default"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("example") / "kws_detector"
    res = subprocess.run(["make", "-s", "-C", str(EXAMPLE), f"MODEL_DIR={MODEL_DIR}", "CC=gcc"] +
                         [f"kws_detector"], capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", "CFLAGS": "-std=c99 -O2 -Wall -Wextra -Werror -pedantic"})
    assert res.returncode == 0, res.stderr
    (EXAMPLE / "kws_detector").replace(out)
    return out


def _run(example: Path, pcm: np.ndarray, cfg: S.DetectConfig, scores: bool = True) -> tuple[np.ndarray, list[S.Detection]]:
    args = [str(example), str(cfg.threshold), str(cfg.refractory), str(cfg.smooth_shift)] + (["scores"] if scores else [])
    res = subprocess.run(args, input=pcm.astype("<i2").tobytes(), capture_output=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows, dets = [], []
    for line in res.stdout.decode().splitlines():
        kind, *rest = line.split()
        if kind == "scores":
            rows.append([int(v) for v in rest[1:]])
        else:
            dets.append(S.Detection(int(rest[0]), int(rest[2]), int(rest[4])))
            assert int(rest[1]) == (int(rest[0]) + 2) * 20  # stream time of the frame's end, ms
    return np.asarray(rows, np.int64), dets


def _stream(seconds_per_gap: float = 0.6, n: int = 12, seed: int = 0) -> np.ndarray:
    from qsnnkit.data import list_split, read_wav

    items = list_split(None, "test")
    rng = np.random.default_rng(seed)
    parts = []
    for i in rng.choice(len(items), n, replace=False):
        parts.append((rng.normal(0, 300, int(seconds_per_gap * spec.SAMPLE_RATE))).astype(np.int16))
        parts.append(read_wav(items[i][0]))
    return np.concatenate(parts)


def test_c_detector_equals_the_reference_frame_by_frame(example: Path) -> None:
    model = load_converted(MODEL_DIR / "model.npz")
    pcm = _stream()
    for shift, threshold, refractory in ((4, 600, 50), (0, 50, 5), (8, 1, 0)):
        cfg = S.DetectConfig(threshold, refractory, S.keyword_mask(model.classes), shift)
        ref_scores, ref_dets = S.run_stream(model, pcm, cfg)
        c_scores, c_dets = _run(example, pcm, cfg)
        assert c_scores.shape == ref_scores.shape
        bad = np.argwhere(c_scores != ref_scores)
        assert bad.size == 0, f"W={shift}: first mismatch frame {bad[0][0]}: C {c_scores[bad[0][0]]} ref {ref_scores[bad[0][0]]}"
        assert c_dets == ref_dets, f"W={shift}: C {c_dets[:5]} != reference {ref_dets[:5]}"
        assert len(ref_dets) > 0 or threshold > 100
    # the same detections when pushed in 10 ms blocks (no per-frame printing)
    cfg = S.DetectConfig(600, 50, S.keyword_mask(model.classes), 4)
    assert _run(example, pcm, cfg, scores=False)[1] == S.run_stream(model, pcm, cfg)[1]


def test_detection_rule_edges() -> None:
    s = np.array([[0, 10, 3], [0, 10, 10], [0, 30, 3], [50, 0, 3], [0, 40, 3], [0, 40, 3]], np.int64)
    cfg = S.DetectConfig(threshold=7, refractory=3, class_mask=0b010, smooth_shift=0)
    # frame 0 fires (margin 7 >= 7), 1 is a tie (margin 0), 2 is inside the refractory period
    # (2 - 0 < 3), 3 is class 0 (masked), 4 fires (4 - 0 >= 3), 5 is refractory again
    assert S.detect(s, cfg) == [S.Detection(0, 1, 7), S.Detection(4, 1, 37)]
    assert S.detect(s, S.DetectConfig(7, 2, 0b010, 0))[1] == S.Detection(2, 1, 27)  # 2 - 0 >= 2
    best, margin = S.margins(np.array([[5, 5, 1]], np.int64))
    assert best[0] == 0 and margin[0] == 0  # ties: the lowest index, margin 0: never fires
    for bad in (dict(threshold=0), dict(smooth_shift=spec.DETECT_MAX_SHIFT + 1), dict(class_mask=0),
                dict(class_mask=1 << 12)):
        kw = dict(threshold=5, refractory=1, class_mask=1, smooth_shift=4) | bad
        with pytest.raises(ValueError):
            S.DetectConfig(**kw).check(12)


def test_scores_stay_bounded_however_long_the_stream() -> None:
    """The largest per-frame readout a provable model can have, forever: the leaky sum
    converges below (R + 1) * 2^W, inside int32 for every allowed W."""
    r_max = spec.READOUT_BOUND // spec.MAX_STEPS
    for w in (0, 4, spec.DETECT_MAX_SHIFT):
        r = np.full((60_000, 2), r_max, np.int64)
        r[:, 1] = -r_max
        s = S.scores(r, w)
        assert s[:, 0].max() <= (r_max + 1) << w and s[:, 1].min() >= -((r_max + 1) << w)
        assert s.max() < 2**31 and s.min() >= -(2**31)


def test_false_alarms_are_placed_by_the_hit_rule() -> None:
    classes = ["yes", "no", "_unknown_", "_silence_"]
    yes = S.Keyword(0, 16000, 32000)
    unk = S.Keyword(2, 48000, 64000)
    no = S.Keyword(1, 80000, 96000)
    truth, words = [yes, no], [yes, unk, no]

    def at(sample: int, label: int) -> S.Detection:  # a detection whose frame ends at `sample`
        return S.Detection(sample // spec.HOP_LEN - 2, label, 1)

    dets = [at(20000, 0),   # hits "yes"
            at(24000, 0),   # "yes" again: already hit, a false alarm during a keyword
            at(40000, 1),   # 0.5 s after "yes" ended: still counted at that keyword
            at(42000, 1),   # nothing within 0.5 s: noise
            at(50000, 0),   # during the unknown word
            at(84000, 0)]   # the wrong keyword during "no"
    assert S.score_detections(dets, truth) == (1, 5)
    assert S.false_alarm_kinds(dets, truth, words, classes) == {"unknown_word": 1, "keyword": 3, "noise": 1}
    # words as build_stream places them: every clip, keywords as in truth
    from qsnnkit.data import list_split

    placed: list[S.Keyword] = []
    cls = list(load_converted(MODEL_DIR / "model.npz").classes)
    _, tr, _ = S.build_stream(list_split(None, "test"), cls, seed=0, limit=30, words=placed)
    assert len(placed) == 30 and [w for w in placed if cls[w.label] not in S.NON_KEYWORDS] == tr
