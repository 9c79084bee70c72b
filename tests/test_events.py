"""Event binning (docs/contract.md section 12): the C binner against an independent Python
reading of the rules, on hostile streams (outside the sensor, polarity > 1, out of order,
wrapping timestamps), and the incremental device loop against the whole-sample call."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qsnnkit import data
from qsnnkit import events as E

M32 = 0xFFFFFFFF


def mirror(ev: np.ndarray, cfg: E.EventConfig, steps: int, t0: int) -> tuple[np.ndarray, E.BinStats]:
    """The contract's rules written out again, independently of the C code."""
    s = cfg.pool_shift
    wb, hb = -(-cfg.width // 2 ** s), -(-cfg.height // 2 ** s)
    frames = np.zeros((steps, 2 * wb * hb), np.int64)
    step, start = 0, t0 & M32
    dropped = late = beyond = 0
    for x, y, p, t in zip(ev["x"].tolist(), ev["y"].tolist(), ev["p"].tolist(), ev["t"].tolist()):
        if step == steps:
            beyond += 1
            continue
        if x >= cfg.width or y >= cfg.height or p > 1:
            dropped += 1
            continue
        d = (t - start) & M32
        if d >= 2 ** 31:
            late += 1
        else:
            while d >= cfg.window_us and step < steps:
                step += 1
                start = (start + cfg.window_us) & M32
                d = (t - start) & M32
            if step == steps:
                beyond += 1
                continue
        i = p * hb * wb + (y >> s) * wb + (x >> s)
        frames[step, i] = min(frames[step, i] + 1, cfg.cap)
    return frames.astype(np.uint8), E.BinStats(dropped, late, beyond)


def fed(ev: np.ndarray, cfg: E.EventConfig, steps: int, t0: int) -> tuple[np.ndarray, E.BinStats]:
    """What the device's firmware does: qsnn_ev_feed each event until it stops closing steps
    (the network would step on each frame), then qsnn_ev_finish the remaining steps."""
    b = E.EventBinner(cfg, t0)
    out: list[np.ndarray] = []
    for x, y, p, t in zip(ev["x"].tolist(), ev["y"].tolist(), ev["p"].tolist(), ev["t"].tolist()):
        while True:
            r, frame = b.feed(steps, x, y, p, t)
            if r != E.FRAME:
                assert r in (E.ADDED, E.DROPPED, E.BEYOND) and frame is None
                break
            assert frame is not None
            out.append(frame)
    while (frame := b.finish(steps)) is not None:
        out.append(frame)
    assert b.finish(steps) is None and len(out) == steps
    frames = np.stack(out) if out else np.zeros((0, cfg.inputs), np.uint8)
    return frames, E.BinStats(b.dropped, b.late, b.beyond)


def incremental(ev: np.ndarray, cfg: E.EventConfig, steps: int, t0: int) -> tuple[np.ndarray, E.BinStats]:
    """The lower-level loop: add each event, closing steps while it says LATER."""
    b = E.EventBinner(cfg, t0)
    out: list[np.ndarray] = []
    beyond = 0
    for k, (x, y, p, t) in enumerate(zip(ev["x"].tolist(), ev["y"].tolist(), ev["p"].tolist(), ev["t"].tolist())):
        if len(out) == steps:
            beyond += len(ev) - k
            break
        while b.add(x, y, p, t) == E.LATER:
            out.append(b.close())
            if len(out) == steps:
                beyond += 1
                break
    while len(out) < steps:
        out.append(b.close())
    frames = np.stack(out) if out else np.zeros((0, cfg.inputs), np.uint8)
    return frames, E.BinStats(b.dropped, b.late, beyond)


configs = st.builds(E.EventConfig, width=st.one_of(st.integers(1, 40), st.integers(250, 1024)),
                    height=st.one_of(st.integers(1, 40), st.integers(250, 1024)),
                    pool_shift=st.integers(0, 4), cap=st.integers(1, 255),
                    window_us=st.one_of(st.integers(1, 5000), st.just(2 ** 31 - 1)))


@st.composite
def streams(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    n = draw(st.integers(0, 200))
    t0 = draw(st.one_of(st.just(0), st.integers(0, M32), st.just(M32 - 3000)))
    xs = draw(st.lists(st.integers(0, 255), min_size=n, max_size=n))
    ys = draw(st.lists(st.integers(0, 255), min_size=n, max_size=n))
    ps = draw(st.lists(st.integers(0, 255), min_size=n, max_size=n))
    steps_dt = draw(st.lists(st.one_of(st.integers(0, 400), st.integers(-300, 0), st.integers(0, M32)),
                             min_size=n, max_size=n))
    t = (t0 + np.cumsum(np.array(steps_dt, dtype=np.int64))) & M32 if n else np.zeros(0, np.int64)
    side = draw(st.sampled_from([48, 1100]))  # 1100: sensors wider than a byte, and beyond EV_MAX_SIDE
    x = np.array(xs, np.int64) * 5 % side
    y = np.array(ys, np.int64) * 5 % side
    p = np.array(ps, np.int64) % 3
    return E.as_events(x, y, p, t), t0


@settings(max_examples=300, deadline=None)
@given(cfg=configs, stream=streams(), steps=st.integers(0, 40))
def test_c_binner_equals_the_rules_and_the_device_loop(cfg: E.EventConfig, stream: tuple[np.ndarray, int],
                                                      steps: int) -> None:
    ev, t0 = stream
    got, stats = E.bin_events(ev, cfg, steps, t0)
    want, wstats = mirror(ev, cfg, steps, t0)
    assert got.shape == (steps, cfg.inputs)
    if not np.array_equal(got, want):
        k, i = np.argwhere(got != want)[0]
        raise AssertionError(f"first mismatch: step {k} input {i}: C {got[k, i]}, rules {want[k, i]}")
    assert stats == wstats
    inc, istats = incremental(ev, cfg, steps, t0)
    assert np.array_equal(inc, got) and istats == stats
    dev, dstats = fed(ev, cfg, steps, t0)
    assert np.array_equal(dev, got) and dstats == stats


def test_index_layout_polarity_then_rows_then_columns() -> None:
    cfg = E.EventConfig(width=34, height=34, pool_shift=2, cap=255, window_us=100)
    assert cfg.inputs == 2 * 9 * 9
    ev = E.as_events(np.array([0, 3, 4, 33, 33]), np.array([0, 3, 0, 33, 33]), np.array([0, 0, 0, 0, 1]),
                     np.array([1, 2, 3, 4, 5]))
    frames, stats = E.bin_events(ev, cfg, 1)
    assert frames[0, 0] == 2  # (0, 0) and (3, 3) share the first 4x4 block
    assert frames[0, 1] == 1  # x 4 is the second block of row 0
    assert frames[0, 8 * 9 + 8] == 1 and frames[0, 81 + 8 * 9 + 8] == 1  # last block, both polarities
    assert frames.sum() == 5 and stats == E.BinStats(0, 0, 0)


def test_saturation_late_events_wrap_and_empty_steps() -> None:
    cfg = E.EventConfig(width=4, height=4, pool_shift=0, cap=3, window_us=1000)
    t0 = M32 - 1500  # the counter wraps inside the second step
    ts = np.array([t0 + 10] * 5 + [t0 - 7] + [(t0 + 1600) & M32, (t0 + 3999) & M32, (t0 + 4000) & M32])
    ev = E.as_events(np.array([1] * 9), np.array([2] * 9), np.zeros(9, np.int64), ts)
    frames, stats = E.bin_events(ev, cfg, 4, t0)
    i = 2 * 4 + 1  # polarity 0, row 2, column 1 of a 4-wide sensor
    assert frames[:, i].tolist() == [3, 1, 0, 1]  # 6 events saturate at 3; step 2 is empty
    assert stats == E.BinStats(dropped=0, late=1, beyond=1)


def test_binary_spikes_and_a_real_nmnist_sample(data_root: Path) -> None:
    f, _ = data.list_nmnist(data_root, "test")[0]
    ev = data.read_nmnist_bs2(f)
    counts, st = E.bin_events(ev, E.EventConfig(cap=255, window_us=10_000), 32)
    assert st == E.BinStats(0, 0, 0) and int(counts.sum(dtype=np.int64)) == len(ev)  # nothing lost
    spikes, _ = E.bin_events(ev, E.EventConfig(cap=1, window_us=10_000), 32)
    assert np.array_equal(spikes, np.minimum(counts, 1))


@pytest.mark.parametrize("kwargs,msg", [
    ({"width": 0}, "sensor 0x34"), ({"height": 1025}, "1..1024"), ({"pool_shift": 5}, "pool_shift 5"),
    ({"cap": 0}, "cap 0"), ({"cap": 256}, "cap 256"), ({"window_us": 0}, "window_us 0"),
    ({"window_us": 2 ** 31}, "window_us"),
])
def test_bad_configurations_are_refused_with_the_reason(kwargs: dict, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        E.EventConfig(**kwargs)


def test_the_c_binner_refuses_what_the_python_side_would(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes
    lib = E._lib()
    assert lib.qsnn_ev_inputs(ctypes.byref(E.EvCfg(34, 34, 5, 1, 100))) == 0
    assert lib.qsnn_ev_inputs(ctypes.byref(E.EvCfg(34, 34, 0, 0, 100))) == 0
    assert lib.qsnn_ev_inputs(ctypes.byref(E.EvCfg(34, 34, 0, 1, 2 ** 31))) == 0
    st = E.EvState()
    buf = (ctypes.c_uint8 * 10)()
    assert lib.qsnn_ev_init(ctypes.byref(st), ctypes.byref(E.EvCfg(34, 34, 0, 1, 100)), buf, 10, 0) == 2
    assert lib.qsnn_ev_init(ctypes.byref(st), ctypes.byref(E.EvCfg(2, 2, 0, 1, 100)), buf, 10, 0) == 0
    with pytest.raises(TypeError, match="structured"):
        E.bin_events(np.zeros(3), E.EventConfig(), 2)
