"""Training-time augmentation: the kinds, their order, their ranges, and clear refusals."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qsnnkit.spec import CLIP_LEN
from qsnnkit.train import augment as A
from qsnnkit.train.trainer import TrainSettings, train
from qsnnkit.train.model import QSNNConfig


def _tone(freq: float, amp: float = 8000.0, n: int = 1) -> np.ndarray:
    t = np.arange(CLIP_LEN) / 16000.0
    return np.tile((amp * np.sin(2 * np.pi * freq * t)).astype(np.int16), (n, 1))


def test_kinds_are_canonical_and_unknown_kinds_are_named() -> None:
    assert A.parse_kinds("mask, noise,speed") == "speed,noise,mask"
    assert A.parse_kinds("") == "" and A.parse_kinds(False) == ""
    assert A.parse_kinds(True) == A.DEFAULT_KINDS == "shift,noise"
    # a bool is what checkpoints written before kinds existed store: still read, as the default kinds
    assert TrainSettings(augment=True).augment == "shift,noise"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'pitch'.*choose from speed, volume, shift, noise, mask"):
        A.parse_kinds("noise,pitch")
    with pytest.raises(ValueError, match="unknown augmentation"):
        TrainSettings(augment="speed,reverb")


def test_speed_changes_the_pitch_within_its_range_and_keeps_the_clip_length() -> None:
    pcm = _tone(1000.0, n=64)
    out = A.augment(pcm, pcm[:0], np.random.default_rng(0), "speed")
    assert out.dtype == np.int16 and out.shape == pcm.shape
    # dominant frequency of each clip: 1000 Hz times the speed factor
    spec = np.abs(np.fft.rfft(out.astype(np.float64), axis=1))
    peak = spec.argmax(1) * 16000.0 / CLIP_LEN
    assert ((peak >= 1000 * (1 - A.SPEED) - 2) & (peak <= 1000 * (1 + A.SPEED) + 2)).all()
    assert np.ptp(peak) > 50  # the factor is drawn per clip


def test_volume_is_within_its_range_and_saturates() -> None:
    pcm = _tone(440.0, amp=10000.0, n=200)
    out = A.augment(pcm, pcm[:0], np.random.default_rng(1), "volume")
    gain_db = 20 * np.log10(np.abs(out.astype(np.float64)).max(1) / np.abs(pcm.astype(np.float64)).max(1))
    assert gain_db.min() >= -A.VOLUME_DB - 0.1 and gain_db.max() <= A.VOLUME_DB + 0.1
    loud = A.augment(_tone(440.0, amp=32000.0, n=50), pcm[:0], np.random.default_rng(2), "volume")
    assert loud.max() == 32767 and loud.min() == -32768  # saturated, not wrapped


def test_shift_and_noise_alone_keep_their_original_random_draws() -> None:
    """A bare --augment means exactly what it meant before the other kinds existed: adding
    kinds must not change the draws of a run that does not use them."""
    rng = np.random.default_rng(5)
    pcm = rng.integers(-3000, 3000, size=(6, CLIP_LEN)).astype(np.int16)
    noise = rng.integers(-300, 300, size=(3, CLIP_LEN)).astype(np.int16)
    got = A.augment(pcm, noise, np.random.default_rng(9))
    r = np.random.default_rng(9)
    shifts = r.integers(-1600, 1601, size=6)
    pick, gain = r.integers(0, 3, size=6), r.uniform(0.0, 0.3, size=6) * (r.random(6) < 0.8)
    want = np.zeros((6, CLIP_LEN), dtype=np.int32)
    for i, s in enumerate(shifts):
        if s >= 0:
            want[i, s:] = pcm[i, :CLIP_LEN - s]
        else:
            want[i, :s] = pcm[i, -s:]
    want = want + (noise[pick].astype(np.float64) * gain[:, None]).astype(np.int32)
    assert np.array_equal(got, np.clip(want, -32768, 32767).astype(np.int16))


def test_masks_set_bounded_spans_to_the_band_centre() -> None:
    rng = np.random.default_rng(3)
    feats = rng.integers(0, 256, size=(300, 49, 40)).astype(np.uint8)
    centre = rng.integers(0, 256, size=40).astype(np.uint8)
    before = feats.copy()
    out = A.mask_features(feats, centre, np.random.default_rng(4))
    assert out.dtype == np.uint8 and out.shape == feats.shape
    changed = out != feats
    assert (out[changed] == np.broadcast_to(centre, feats.shape)[changed]).all()
    # per clip: at most FREQ_MASKS spans of at most FREQ_MASK_MAX whole bands, and the same in time
    whole_bands = (out == centre).all(1).sum(1)
    whole_frames = (out == centre[None, None, :]).all(2).sum(1)
    assert whole_bands.max() <= A.FREQ_MASKS * A.FREQ_MASK_MAX
    assert whole_frames.max() <= A.TIME_MASKS * A.TIME_MASK_MAX
    assert whole_bands.max() > A.FREQ_MASK_MAX and whole_frames.max() > A.TIME_MASK_MAX  # two masks fire
    assert not np.array_equal(out, feats)
    assert np.array_equal(feats, before)  # the input is not modified in place


def test_training_with_every_kind_runs_and_records_them(tmp_path: Path, data_root: Path) -> None:
    from qsnnkit.train import checkpoint

    st = TrainSettings(epochs=1, limit=24, batch_size=8, augment="speed,volume,shift,noise,mask")
    res = train(QSNNConfig(conv=((4, 3, 5, 2),), hidden=(8,), recurrent=(True,)), st, data_root, tmp_path)
    _, meta = checkpoint.load(res.checkpoint)
    assert meta["settings"]["augment"] == "speed,volume,shift,noise,mask"


def test_cli_refuses_an_unknown_kind_before_training(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "qsnnkit.train.cli", "--augment", "noise,echo", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "unknown augmentation 'echo'" in r.stderr
    assert not any(tmp_path.iterdir())
