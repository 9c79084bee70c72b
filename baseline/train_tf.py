"""Train one DS-CNN (TensorFlow/Keras) and export it as a full-integer int8 TFLite model.

One run = (width, peak learning rate, seed). Adam with L2 on the kernels (MLPerf Tiny's
DS-CNN recipe) under a one-cycle-like schedule (linear warm-up to the peak over the first
30% of the steps from peak / 25, cosine decay to peak / 10^4 after), batch 64, the same epoch
budget as the Q-SNN default (40). The weights of the best validation epoch (float model) are
kept, then converted with a representative set of 512 unperturbed training clips. The run
writes, under its folder: ``model.weights.h5``, ``model_int8.tflite`` and ``run.json``
(settings, history, validation accuracy float and int8, seconds); a folder holding
``run.json`` is done and is not run again.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from qsnnkit.baseline import dscnn, kwsdata

WARMUP = 0.3
DIV_START = 25.0
DIV_END = 1e4
REPRESENTATIVE = 512


@dataclass(frozen=True)
class RunSpec:
    width: float
    lr: float
    seed: int
    epochs: int = 40
    batch_size: int = 64
    threads: int = 2

    @property
    def name(self) -> str:
        return f"w{dscnn.channels(self.width)}-lr{self.lr:g}-s{self.seed}-e{self.epochs}"


def _tf(threads: int) -> Any:  # the tensorflow module
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised in this process: the first setting holds
        pass
    return tf


def schedule(lr: float, total_steps: int) -> Any:  # a keras schedule
    import keras

    warm = max(1, int(WARMUP * total_steps))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=lr / DIV_START, decay_steps=max(1, total_steps - warm), alpha=DIV_START / DIV_END,
        warmup_target=lr, warmup_steps=warm)


def to_int8_tflite(model: Any, representative: np.ndarray) -> bytes:  # model: a keras model
    """Full-integer int8 TFLite flatbuffer (int8 input and output) of a Keras model."""
    tf = _tf(2)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    # The input's range is the features' full 0..255 by the contract: one calibration clip
    # carries both ends, so the converter picks input scale 1/64, zero point 0 (exact).
    ends = representative[:1].copy()
    ends[0, 0, 0], ends[0, 0, 1] = 0, 255
    rep = kwsdata.as_input(np.concatenate([representative, ends]))

    def gen() -> Iterator[list[np.ndarray]]:
        for i in range(len(rep)):
            yield [rep[i:i + 1]]

    conv.representative_dataset = gen
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return bytes(conv.convert())


def epoch_bank(d: kwsdata.TrainData, seed: int, epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """Every epoch's perturbed features [epochs, N, 49, 40] and batch order [epochs, N] of one
    seed, drawn from one generator in the order a run would draw them (features, then the
    permutation, epoch by epoch); cached in .cache/baseline/banks (memory-mapped), so the runs
    of a seed (every width and learning rate) see the same data and augment it once."""
    import hashlib

    from qsnnkit.dataset import source_hash
    from qsnnkit.paths import cache_dir

    h = hashlib.sha256(f"{seed}:{epochs}:{kwsdata.AUGMENT}:{source_hash()}".encode())
    h.update(np.ascontiguousarray(d.pcm).tobytes())
    h.update(np.ascontiguousarray(d.labels).tobytes())
    base = cache_dir() / "baseline" / "banks" / f"bank-s{seed}-e{epochs}-{h.hexdigest()[:16]}"
    fpath, ppath = base.with_suffix(".feats.npy"), base.with_suffix(".perm.npy")
    if not (fpath.exists() and ppath.exists()):
        base.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([seed, 12])
        n = len(d.labels)
        tmp_f, tmp_p = fpath.with_suffix(".tmp.npy"), ppath.with_suffix(".tmp.npy")
        feats = np.lib.format.open_memmap(tmp_f, mode="w+", dtype=np.uint8, shape=(epochs, *d.feats.shape))
        perms = np.empty((epochs, n), np.int64)
        for ep in tqdm(range(epochs), desc=f"augmenting seed {seed}", unit="epoch"):
            feats[ep] = kwsdata.epoch_features(d, rng)
            perms[ep] = rng.permutation(n)
        feats.flush()
        del feats
        np.save(tmp_p, perms)
        tmp_f.replace(fpath)
        tmp_p.replace(ppath)
    return np.load(fpath, mmap_mode="r"), np.load(ppath)


def train_run(spec: RunSpec, d: kwsdata.TrainData, val_feats: np.ndarray, val_labels: np.ndarray,
              out: Path) -> dict:
    """Train (or read back) one run; returns its run.json."""
    done = out / "run.json"
    if done.exists():
        return json.loads(done.read_text())
    tf = _tf(spec.threads)
    import keras

    from qsnnkit.baseline import runtimes

    bank, perms = epoch_bank(d, spec.seed, spec.epochs)
    t0 = time.time()
    keras.utils.set_random_seed(spec.seed)
    model = dscnn.build(spec.width)
    steps = spec.epochs * -(-len(d.labels) // spec.batch_size)
    model.compile(optimizer=keras.optimizers.Adam(schedule(spec.lr, steps)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    x_val = kwsdata.as_input(val_feats)
    best = (-1.0, -1, None)
    history = []
    bar = tqdm(range(spec.epochs), desc=spec.name, unit="epoch")
    for ep in bar:
        perm = perms[ep]
        h = model.fit(kwsdata.as_input(bank[ep][perm]), d.labels[perm], batch_size=spec.batch_size, epochs=1,
                      shuffle=False, verbose=0)
        val = float((model.predict(x_val, batch_size=512, verbose=0).argmax(1) == val_labels).mean())
        rec = {"epoch": ep, "loss": float(h.history["loss"][0]), "train_acc": float(h.history["accuracy"][0]),
               "val_acc": val}
        history.append(rec)
        bar.set_postfix(loss=f"{rec['loss']:.3f}", train=f"{rec['train_acc']:.3f}", val=f"{val:.3f}")
        if val > best[0]:
            best = (val, ep, model.get_weights())
    model.set_weights(best[2])
    out.mkdir(parents=True, exist_ok=True)
    model.save_weights(out / "model.weights.h5")
    pick = np.random.default_rng([spec.seed, 13]).choice(d.n_real, size=min(REPRESENTATIVE, d.n_real), replace=False)
    flat = to_int8_tflite(model, d.feats[np.sort(pick)])
    (out / "model_int8.tflite").write_bytes(flat)
    val_int8 = float((runtimes.LiteRT(flat).predict(val_feats) == val_labels).mean())
    rec = {"spec": asdict(spec), "name": spec.name, "best_epoch": best[1], "val_float": best[0],
           "val_int8": val_int8, "tflite_bytes": len(flat), "seconds": round(time.time() - t0, 1),
           "tensorflow": tf.__version__, "history": history}
    tmp = done.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec, indent=1))
    tmp.replace(done)
    return rec
