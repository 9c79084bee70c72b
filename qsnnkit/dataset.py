"""Audio clips in memory (Speech Commands; FSDD's spoken digits, read by
``data.read_fsdd_clip``), and the one feature cache of the project.

PCM (int16, exactly 1 s, by qsnnkit.frontend.fit_clip) is read once per split and cached
as .npy; features always come from the C front end (qsnnkit.frontend), the same code the
device runs, and are cached as .npz keyed by a hash of the PCM and of the front end's C
sources and tables, so an edited front end or a changed clip is never served stale.
Everything lives in the project's ignored cache (qsnnkit.paths.cache_dir()); nothing is
pickled and nothing is written into the dataset root.

CLI: ``python -m qsnnkit.dataset --split test`` precomputes one split's features.
"""
from __future__ import annotations

import argparse
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qsnnkit import data, frontend
from qsnnkit.paths import QSNN_INCLUDE_DIR, QSNN_SRC_DIR, cache_dir
from qsnnkit.spec import CLIP_FRAMES, CLIP_LEN, N_BANDS

#: The files that define the front end's numbers (the feature cache is keyed by them).
FRONTEND_SOURCES: tuple[Path, ...] = (
    QSNN_SRC_DIR / "qsnn_frontend.c",
    QSNN_INCLUDE_DIR / "qsnn_frontend.h",
    QSNN_INCLUDE_DIR / "qsnn_frontend_tables.h",
    QSNN_INCLUDE_DIR / "qsnn_contract.h",
    QSNN_INCLUDE_DIR / "qsnn_spec.h",
)


@dataclass
class Split:
    pcm: np.ndarray  # int16 [N, CLIP_LEN]
    labels: np.ndarray  # int64 [N]
    paths: list[Path]


def source_hash() -> str:
    """SHA-256 (16 hex digits) of the front end's C sources and tables."""
    h = hashlib.sha256()
    for p in FRONTEND_SOURCES:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _atomic_save(path: Path, save: Callable[[Path], None]) -> None:  # save: an np.save / np.savez closure
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}")
    save(tmp)
    tmp.replace(path)


#: the audio datasets: each one's clips are listed, read and named by the three functions below
#: (training, conversion and the host's evaluation all go through them)
AUDIO_DATASETS: tuple[str, ...] = ("speech_commands", "fsdd")


def _check_dataset(dataset: str) -> None:
    if dataset not in AUDIO_DATASETS:
        raise ValueError(f"unknown audio dataset {dataset!r}: choose from {', '.join(AUDIO_DATASETS)}")


def audio_items(root: str | Path | None, split: str, dataset: str = "speech_commands",
                archive: data.ArchiveOptions | None = None) -> list[tuple[Path, int]]:
    """(path, label) of one split: Speech Commands by the speaker rule (a full archive made the
    12-class task by ``archive``), FSDD by its own split (takes 0-4 test, 5-9 validation)."""
    _check_dataset(dataset)
    if dataset == "fsdd":
        return data.list_fsdd(root, split)  # type: ignore[arg-type]
    return data.list_split(root, split, archive=archive or data.ArchiveOptions())  # type: ignore[arg-type]


def read_clip(path: str | Path, dataset: str = "speech_commands") -> np.ndarray:
    """One int16 [CLIP_LEN] clip as the device receives it: a 16 kHz WAV padded/cut to 1 s
    (``frontend.fit_clip``), or an FSDD recording by ``data.read_fsdd_clip``."""
    _check_dataset(dataset)
    if dataset == "fsdd":
        return data.read_fsdd_clip(path)
    return frontend.fit_clip(data.read_wav(path))


def audio_root(root: str | Path | None, dataset: str = "speech_commands") -> Path:
    """The folder a dataset's clip ids are relative to."""
    _check_dataset(dataset)
    return data.fsdd_dir(root) if dataset == "fsdd" else data.resolve_root(root)


def load_pcm(items: Sequence[tuple[Path, int]], desc: str = "reading wavs", dataset: str = "speech_commands") -> np.ndarray:
    """int16 [N, CLIP_LEN] of the listed WAV files (``read_clip``), cached by path, size and mtime."""
    _check_dataset(dataset)
    h = hashlib.sha256(dataset.encode() if dataset != "speech_commands" else b"")
    for p, _ in items:
        st = Path(p).stat()
        h.update(f"{Path(p).resolve()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    f = cache_dir() / "pcm" / f"pcm-{h.hexdigest()[:24]}.npy"
    if f.exists():
        pcm = np.load(f, allow_pickle=False)
        if pcm.dtype == np.int16 and pcm.shape == (len(items), CLIP_LEN):
            return pcm
    pcm = np.zeros((len(items), CLIP_LEN), np.int16)
    for i, (p, _) in enumerate(tqdm(items, desc=desc, unit="clip", disable=len(items) < 50)):
        pcm[i] = read_clip(p, dataset)
    _atomic_save(f, lambda t: np.save(t, pcm))
    return pcm


def load_split(root: str | Path | None, split: str, limit: int | None = None,
               archive: data.ArchiveOptions | None = None, dataset: str = "speech_commands") -> Split:
    """The clips of one split (train, val, test, all), optionally only the first ``limit``. A full
    official archive becomes the 12-class task by ``archive`` (default: ``data.ArchiveOptions()``,
    TensorFlow's 10% unknown and 10% silence per split); no effect on the 12-class test set.
    ``dataset="fsdd"``: the spoken digits, FSDD's own split (takes 0-4 test, 5-9 validation)."""
    items = audio_items(root, split, dataset, archive)
    if limit is not None:
        items = items[:limit]
    if not items:
        raise ValueError(f"no clips in split {split!r} under {data.resolve_root(root)}")
    labels = np.array([y for _, y in items], np.int64)
    return Split(pcm=load_pcm(items, desc=f"reading {split} wavs", dataset=dataset), labels=labels,
                 paths=[p for p, _ in items])


def compute_features(pcm: np.ndarray, desc: str | None = None) -> np.ndarray:
    """uint8 [N, CLIP_FRAMES, N_BANDS] features of int16 [N, CLIP_LEN] clips from the C front end, no cache."""
    out = np.empty((len(pcm), CLIP_FRAMES, N_BANDS), np.uint8)
    step = 256
    for i in tqdm(range(0, len(pcm), step), desc=desc, unit="x256 clips", disable=desc is None):
        out[i:i + step] = frontend.batch_features(pcm[i:i + step])
    return out


def feature_cache_path(pcm: np.ndarray) -> Path:
    """Where the features of these clips are cached: keyed by the front end and the PCM bytes."""
    h = hashlib.sha256(source_hash().encode())
    h.update(str(pcm.shape).encode())
    h.update(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
    return cache_dir() / "features" / f"fe-{h.hexdigest()[:24]}.npz"


def features(pcm: np.ndarray, desc: str | None = None, *, cache: bool = True) -> np.ndarray:
    """uint8 [N, CLIP_FRAMES, N_BANDS] features of int16 [N, CLIP_LEN] clips, from the cache when
    it holds them (``cache=False`` for one-off inputs such as augmented copies)."""
    pcm = np.asarray(pcm)
    if pcm.dtype != np.int16 or pcm.ndim != 2 or pcm.shape[1] != CLIP_LEN:
        raise ValueError(f"features() needs int16 [clips, {CLIP_LEN}] PCM, got {pcm.dtype} {pcm.shape}")
    if not cache:
        return compute_features(pcm, desc)
    cp = feature_cache_path(pcm)
    if cp.exists():
        with np.load(cp, allow_pickle=False) as z:
            feats = z["features"]
        if feats.dtype == np.uint8 and feats.shape == (len(pcm), CLIP_FRAMES, N_BANDS):
            return feats
    feats = compute_features(pcm, desc)
    _atomic_save(cp, lambda t: np.savez(t, features=feats, source_hash=np.array(source_hash())))
    return feats


def wav_features(paths: Sequence[str | Path], *, cache: bool = True, desc: str | None = None) -> np.ndarray:
    """uint8 [N, CLIP_FRAMES, N_BANDS] features of WAV files (mono 16-bit 16 kHz, else a clear
    ValueError naming the file), through the same caches."""
    items = [(Path(p), 0) for p in paths]
    if not items:
        return np.zeros((0, CLIP_FRAMES, N_BANDS), np.uint8)
    pcm = load_pcm(items) if cache else np.stack([frontend.fit_clip(data.read_wav(p)) for p, _ in items])
    return features(pcm, desc, cache=cache)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m qsnnkit.dataset",
        description="Compute (and cache) the C front end's uint8 [clips, 49, 40] features of a Speech Commands split.")
    ap.add_argument("--data-root", default=None, help="dataset root (default: $QSNN_DATA_ROOT or ../shared/data)")
    ap.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    args = ap.parse_args(argv)
    sp = load_split(args.data_root, args.split)
    feats = features(sp.pcm, desc=f"{args.split} features")
    print(f"{args.split}: {feats.shape[0]} clips -> features {feats.shape} uint8, front end {source_hash()}, "
          f"cached in {feature_cache_path(sp.pcm)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
