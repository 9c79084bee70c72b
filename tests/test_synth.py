"""Synthetic espeak-ng keywords: reproducible, training split only, one word per clip in 1 s."""
from __future__ import annotations

import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from qsnnkit import data
from qsnnkit.spec import CLIP_LEN
from qsnnkit.train import synth


def _noise() -> np.ndarray:
    return np.random.default_rng(0).integers(-200, 200, size=(3, CLIP_LEN)).astype(np.int16)


def test_clips_are_labelled_words_placed_in_one_second_and_reproducible(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QSNN_CACHE_DIR", str(tmp_path / "cache"))
    pcm, labels = synth.synthesize(2, 7, _noise())
    assert pcm.dtype == np.int16 and pcm.shape == (22, CLIP_LEN)
    assert np.bincount(labels, minlength=12).tolist() == [2] * 11 + [0]  # never _silence_
    peak = np.abs(pcm.astype(np.int32)).max(1)
    assert (peak > 32767 * 10 ** (synth.PEAK_DBFS[0] / 20) * 0.9).all()  # a word, not just noise
    # the same clips again, from the cache and from espeak-ng itself
    again, _ = synth.synthesize(2, 7, _noise())
    assert np.array_equal(pcm, again)
    for f in (tmp_path / "cache" / "synth").iterdir():
        f.unlink()
    fresh, _ = synth.synthesize(2, 7, _noise())
    assert np.array_equal(pcm, fresh)
    other, _ = synth.synthesize(2, 8, _noise())
    assert not np.array_equal(pcm, other)


def test_plan_covers_every_keyword_and_unknown_words() -> None:
    items = synth.plan(30, 0)
    words = {w for w, *_ in items}
    assert set(synth.KEYWORDS) <= words and len(words - set(synth.KEYWORDS)) == 25
    assert all(data.CLASSES[y] == w for w, y, *_ in items if w in synth.KEYWORDS)
    assert all(data.CLASSES[y] == "_unknown_" for w, y, *_ in items if w in synth.UNKNOWN_WORDS)
    assert not set(synth.KEYWORDS) & set(synth.UNKNOWN_WORDS)
    voices = {v for _, _, v, _, _ in items}
    assert len(voices) > 50  # accents x variants are really drawn


def test_resample_keeps_a_tone_and_the_duration() -> None:
    t = np.arange(22050) / 22050.0
    y = synth.resample(np.sin(2 * np.pi * 440 * t), 22050, 16000)
    assert len(y) == 16000
    assert abs(np.abs(np.fft.rfft(y)).argmax() - 440) <= 1
    assert np.abs(y).max() == pytest.approx(1.0, abs=0.02)


def test_training_adds_synthetic_clips_to_the_training_split_only(tmp_path: Path, data_root: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from qsnnkit.train.model import QSNNConfig
    from qsnnkit.train.trainer import TrainSettings, train

    monkeypatch.setenv("QSNN_CACHE_DIR", str(tmp_path / "cache"))
    st = TrainSettings(epochs=1, limit=16, batch_size=8, synthetic=1)
    res = train(QSNNConfig(conv=((4, 3, 5, 2),), hidden=(8,), recurrent=(True,)), st, data_root, tmp_path / "t")
    assert res.history[0]["clips"] == 16 + 11  # the limited split + one clip per keyword and one _unknown_
    with pytest.raises(ValueError, match=">= 0"):
        train(QSNNConfig(), TrainSettings(synthetic=-1), data_root, tmp_path / "x")


def test_cli_writes_wavs_and_refuses_an_existing_folder(tmp_path: Path, data_root: Path) -> None:
    out = tmp_path / "wavs"
    cmd = [sys.executable, "-m", "qsnnkit.train.synth", "--out", str(out), "--per-word", "1",
           "--data-root", str(data_root)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    files = sorted(out.rglob("*.wav"))
    assert len(files) == 11 and {f.parent.name for f in files} == set(data.CLASSES[:11])
    with wave.open(str(files[0])) as w:
        assert (w.getframerate(), w.getnframes(), w.getsampwidth()) == (16000, CLIP_LEN, 2)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "exists" in r.stderr


def test_a_missing_espeak_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synth, "ESPEAK", "espeak-ng-not-installed")
    with pytest.raises(synth.SynthError, match="apt-get install espeak-ng"):
        synth.synthesize(1, 0, _noise())
