"""The keyword data the DS-CNN baseline trains on: exactly the Q-SNN default recipe's.

The shared train split plus the espeak-ng keywords (``qsnnkit.train.synth``, 100 per word,
seeded), each epoch perturbed by the same ``qsnnkit.train.augment`` kinds through the
project's C front end, then masked on the integer features; validation and test through the
same front end, unperturbed. Features are uint8 [N, 49, 40]; ``as_input`` turns them into
the network's float input ``(feature - 128) / 64`` (about unit scale), which the int8 model
takes as exactly ``feature - 128`` at input scale 1/64, zero point 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qsnnkit import data
from qsnnkit.dataset import features, load_split
from qsnnkit.train.augment import augment, feature_mean, mask_features, parse_kinds
from qsnnkit.train.synth import synthesize

#: the default Q-SNN's recipe (firmware/models/default/MODEL_CARD.md): augmentation kinds and
#: espeak-ng clips per keyword
AUGMENT = "speed,volume,shift,noise,mask"
SYNTHETIC = 100


@dataclass
class TrainData:
    pcm: np.ndarray  # int16 [N, CLIP_LEN]: real train clips, then the synthetic ones
    labels: np.ndarray
    noise: np.ndarray  # train-split _silence_ clips, mixed in by the 'noise' kind
    feats: np.ndarray  # unperturbed features of pcm
    centre: np.ndarray  # uint8 per-band centre: what a mask fills in
    n_real: int


def load_train(root: str | Path | None, seed: int, synthetic: int = SYNTHETIC) -> TrainData:
    tr = load_split(root, "train")
    noise = tr.pcm[tr.labels == data.SILENCE]
    pcm, labels = tr.pcm, tr.labels
    if synthetic > 0:
        s_pcm, s_labels = synthesize(synthetic, seed, noise)
        pcm, labels = np.concatenate([pcm, s_pcm]), np.concatenate([labels, s_labels])
    feats = features(pcm, desc="train features")
    return TrainData(pcm, labels, noise, feats, feature_mean(feats).astype(np.uint8), len(tr.labels))


def epoch_features(d: TrainData, rng: np.random.Generator, kinds: str = AUGMENT) -> np.ndarray:
    """One epoch's perturbed features, as the Q-SNN trainer makes them (train/trainer.py)."""
    ks = parse_kinds(kinds).split(",") if kinds else []
    feats = d.feats if not set(ks) - {"mask"} else features(augment(d.pcm, d.noise, rng, kinds), cache=False)
    if "mask" in ks:
        feats = mask_features(feats, d.centre, rng)
    return feats


def split_features(root: str | Path | None, split: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 features, labels and int16 PCM of one split."""
    s = load_split(root, split, limit)
    return features(s.pcm, desc=f"{split} features"), s.labels, s.pcm


#: the float input is (feature - 128) * INPUT_SCALE; the int8 input is feature - 128
INPUT_SCALE = 1.0 / 64.0


def as_input(feats: np.ndarray) -> np.ndarray:
    """float32 [N, 49, 40, 1] network input: (feature - 128) / 64, in [-2, 127 / 64]."""
    return ((feats.astype(np.float32) - 128.0) * INPUT_SCALE)[..., None]


def as_int8(feats: np.ndarray) -> np.ndarray:
    """The same input as int8, what the int8 model takes at input scale 1/64, zero point 0."""
    return (feats.astype(np.int16) - 128).astype(np.int8)[..., None]
