"""qsnn-stream-tune (train/stream_tune.py): its training streams put each clip where its
targets say, its keyword windows are the benchmark's hit windows, the float leaky sum it
trains on follows the detector's integer one, the evaluation forward it selects with gives
the integer reference's per-frame readouts on a stream exactly, and a short run writes a
checkpoint that converts and carries its provenance."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from qsnnkit import spec
from qsnnkit import stream as S
from qsnnkit.data import CLASSES
from qsnnkit.model import load_converted
from qsnnkit.paths import FIRMWARE_DIR
from qsnnkit.train import checkpoint
from qsnnkit.train import stream_tune as T

MODEL_DIR = FIRMWARE_DIR / "models" / "default"
SIL, UNK = CLASSES.index("_silence_"), CLASSES.index("_unknown_")


def _clips(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    pcm = rng.normal(0, 3000, (n, spec.CLIP_LEN)).astype(np.int16)
    labels = np.array([k % 11 if k % 11 != SIL else UNK for k in range(n)], np.int64)  # keywords and _unknown_
    return pcm, labels


def test_sequences_place_clips_and_targets_by_the_hit_rule() -> None:
    pcm, labels = _clips(20)
    st = T.StreamTuneSettings(batch_size=4, seq_seconds=4.0, gap_s=(0.3, 0.9), noise_gain=(0.0, 0.0))
    noise = np.zeros((1, spec.CLIP_LEN), np.int16)
    batches = T.build_sequences(pcm, labels, np.arange(20), noise, list(CLASSES), st, np.random.default_rng(1))
    n_frames = int(4.0 * spec.SAMPLE_RATE) // spec.HOP_LEN - 1
    used = []
    te = np.asarray(T.frame_end(np.arange(n_frames)))
    for seq in batches:
        assert seq.feats.shape[1:] == (n_frames, spec.N_BANDS) and seq.feats.dtype == np.uint8
        assert seq.targets.shape == seq.feats.shape[:2] and len(seq.placed) == len(seq.feats)
        for b, placed in enumerate(seq.placed):
            for lab, s0, e0 in placed:
                assert e0 - s0 == spec.CLIP_LEN and e0 <= 4 * spec.SAMPLE_RATE
                used.append(lab)
                near = (te >= s0) & (te <= e0 + int(T.LATE_S * spec.SAMPLE_RATE))
                if lab == UNK:
                    assert set(np.unique(seq.targets[b, near]).tolist()) <= {UNK, T.IGNORE}
                    continue
                win = [w for w in seq.windows if w[0] == b and near[w[1]]]
                assert len(win) == 1 and win[0][3] == lab
                _, lo, hi, _ = win[0]
                assert (seq.targets[b, lo:hi] == T.IGNORE).all()  # the max-pooling loss alone decides there
                # the window's first and last frames are where score_detections counts a hit of this clip
                k = S.Keyword(lab, s0, e0)
                assert S.score_detections([S.Detection(lo, lab, 1)], [k]) == (1, 0)
                assert S.score_detections([S.Detection(hi - 1, lab, 1)], [k]) == (1, 0)
                assert hi == n_frames or S.score_detections([S.Detection(hi, lab, 1)], [k]) == (0, 1)
        # silence is the target wherever no clip is near
        assert set(np.unique(seq.targets).tolist()) <= {SIL, UNK, T.IGNORE} and SIL in seq.targets
    assert sorted(used) == sorted(labels.tolist())  # every clip once


def test_float_leaky_sum_follows_the_integer_detector() -> None:
    rng = np.random.default_rng(3)
    r = rng.integers(-2000, 2000, (200, 12))
    for w in (0, 3, 4, 8):
        exact = S.scores(r, w)
        approx = T.leaky_logits(torch.from_numpy(r).double()[None], w)[0].numpy() * 2.0 ** w / spec.CLIP_FRAMES
        # flooring loses less than one unit per frame, and the loss of a frame decays like the sum
        assert np.abs(exact - approx).max() <= 2.0 ** w


@pytest.mark.usefixtures("data_root")
def test_evaluation_forward_gives_the_reference_readouts_on_a_stream() -> None:
    model, _ = checkpoint.load(MODEL_DIR / "model.safetensors")
    cm = load_converted(MODEL_DIR / "model.npz")
    from qsnnkit.data import list_split

    pcm, _, _ = S.build_stream(list_split(None, "val")[::40], list(cm.classes), seed=2)
    feats = S.stream_features(pcm[: 8 * spec.SAMPLE_RATE])
    got = T.integer_readouts(model, feats)
    ref = S.frame_readouts(cm, feats)
    bad = np.argwhere(got != ref)
    assert not len(bad), f"first mismatch at frame {bad[0][0]}, class {bad[0][1]}: {got[tuple(bad[0])]} vs {ref[tuple(bad[0])]}"


def test_short_run_writes_a_checkpoint_that_converts(tmp_path: Path, data_root: Path) -> None:
    from qsnnkit.convert import cli as convert_cli

    out = tmp_path / "tuned"
    rc = T.main(["--init", str(MODEL_DIR / "model.safetensors"), "--out", str(out), "--data-root", str(data_root),
                 "--epochs", "1", "--limit", "24", "--synthetic", "0", "--batch-size", "4", "--seq-seconds", "3",
                 "--threads", "1"])
    assert rc == 0
    _, meta = checkpoint.load(out / "model.safetensors")
    tune = meta["stream_tune"]
    assert tune["settings"]["epochs"] == 1 and tune["command"].startswith("qsnn-stream-tune --init")
    assert [h["epoch"] for h in tune["history"]] == [-1, 0]  # the initial model is a candidate too
    assert meta["settings"]["dataset"] == "speech_commands"  # the base recipe is kept
    assert convert_cli.main([str(out / "model.safetensors"), "--out", str(tmp_path / "model"), "--split", "none",
                             "--data-root", str(data_root)]) == 0
    report = json.loads((tmp_path / "model" / "report.json").read_text())
    assert report["provenance"]["stream_tune"]["init_sha256"] == tune["init_sha256"]


def test_bad_settings_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert T.main(["--init", str(tmp_path / "missing.safetensors")]) == 2
    assert "not found" in capsys.readouterr().err
    assert T.main(["--init", str(MODEL_DIR / "model.safetensors"), "--seq-seconds", "1"]) == 2
    assert "--seq-seconds >= 2" in capsys.readouterr().err
    assert T.main(["--init", str(MODEL_DIR / "model.safetensors"), "--gap", "2"]) == 2
    assert "MIN,MAX" in capsys.readouterr().err


def test_committed_stream_model_is_its_checkpoint_tuned_from_the_default(tmp_path: Path) -> None:
    """firmware/models/kws_stream: its model.npz is the conversion of its checkpoint, and that
    checkpoint says it was tuned from the committed default checkpoint, by which command."""
    import hashlib

    from qsnnkit.convert import cli as convert_cli

    d = FIRMWARE_DIR / "models" / "kws_stream"
    assert convert_cli.main([str(d / "model.safetensors"), "--out", str(tmp_path), "--split", "none"]) == 0
    assert load_converted(tmp_path / "model.npz").hash_hex == load_converted(d / "model.npz").hash_hex
    assert (tmp_path / "qsnn_model.c").read_bytes() == (d / "qsnn_model.c").read_bytes()
    _, meta = checkpoint.load(d / "model.safetensors")
    tune = meta["stream_tune"]
    assert tune["init"] == "firmware/models/default/model.safetensors"
    assert tune["init_sha256"] == hashlib.sha256((MODEL_DIR / "model.safetensors").read_bytes()).hexdigest()[:16]
    assert tune["command"].startswith("qsnn-stream-tune --init firmware/models/default/model.safetensors")
