"""Front-end features of a list of WAV files, cached.

Each file is read with qsnnkit.data.read_wav (stdlib ``wave``; mono 16-bit 16 kHz only, a
clear ValueError otherwise), padded/cut to 1 s and run through the C front end
(qsnnkit.frontend). The result, uint8 [n_files, 49, 40], is cached as an .npz in
``qsnnkit.paths.cache_dir()/features``, keyed by the file list (path, size, mtime) and by a
hash of the front end's C sources and tables, so editing the front end or a file
invalidates the cache. Nothing is pickled.

CLI: ``python -m qsnnkit.features --split test`` precomputes one split's features.
"""
from __future__ import annotations

import argparse
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from qsnnkit import frontend
from qsnnkit.data import read_wav
from qsnnkit.paths import QSNN_INCLUDE_DIR, QSNN_SRC_DIR, cache_dir

#: The files that define the front end's numbers.
FRONTEND_SOURCES: tuple[Path, ...] = (
    QSNN_SRC_DIR / "qsnn_frontend.c",
    QSNN_INCLUDE_DIR / "qsnn_frontend.h",
    QSNN_INCLUDE_DIR / "qsnn_frontend_tables.h",
    QSNN_INCLUDE_DIR / "qsnn_contract.h",
)


def source_hash() -> str:
    """SHA-256 (16 hex digits) of the front end's C sources and tables."""
    h = hashlib.sha256()
    for p in FRONTEND_SOURCES:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def cache_key(paths: Sequence[str | Path]) -> str:
    """Key of a feature cache: front-end source hash + each file's path, size and mtime."""
    h = hashlib.sha256(source_hash().encode())
    for p in paths:
        rp = Path(p).resolve()
        st = rp.stat()
        h.update(f"{rp}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def wav_clip(path: str | Path) -> np.ndarray:
    """One WAV file as exactly 1 s of int16 PCM (zero-padded at the end or cut)."""
    return frontend.fit_clip(read_wav(path))


def compute(paths: Sequence[str | Path], *, progress: bool = True, desc: str = "features") -> np.ndarray:
    """uint8 [n, 49, 40] features of the files, without any cache."""
    out = np.zeros((len(paths), frontend.CLIP_FRAMES, frontend.N_BANDS), dtype=np.uint8)
    for i, p in enumerate(tqdm(paths, desc=desc, unit="clip", disable=not progress)):
        out[i] = frontend.clip_features(wav_clip(p))
    return out


def cache_path(paths: Sequence[str | Path]) -> Path:
    return cache_dir() / "features" / f"fe-{cache_key(paths)}.npz"


def wav_features(
    paths: Sequence[str | Path], *, use_cache: bool = True, progress: bool = True, desc: str = "features"
) -> np.ndarray:
    """uint8 [n, 49, 40] features of the files, from the cache when it is valid."""
    paths = list(paths)
    if not use_cache:
        return compute(paths, progress=progress, desc=desc)
    cp = cache_path(paths)
    names = np.array([str(Path(p).resolve()) for p in paths], dtype=str)
    if cp.exists():
        with np.load(cp, allow_pickle=False) as z:
            feats, cached_names = z["features"], z["paths"]
        if (feats.dtype == np.uint8 and feats.shape == (len(paths), frontend.CLIP_FRAMES, frontend.N_BANDS)
                and np.array_equal(cached_names, names)):
            return feats
    feats = compute(paths, progress=progress, desc=desc)
    cp.parent.mkdir(parents=True, exist_ok=True)
    tmp = cp.with_name(f"{cp.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, features=feats, paths=names, source_hash=np.array(source_hash()))
    tmp.replace(cp)
    return feats


def main(argv: list[str] | None = None) -> int:
    from qsnnkit import data

    ap = argparse.ArgumentParser(
        prog="python -m qsnnkit.features",
        description="Compute (and cache) the C front end's uint8 [clips, 49, 40] features of a Speech Commands split.")
    ap.add_argument("--root", default=None, help="dataset root (default: $QSNN_DATA_ROOT or ../shared/data)")
    ap.add_argument("--split", default="test", choices=["train", "val", "test", "all"])
    ap.add_argument("--no-cache", action="store_true", help="recompute and do not read or write the cache")
    args = ap.parse_args(argv)
    items = data.list_split(args.root, args.split)
    paths = [p for p, _ in items]
    feats = wav_features(paths, use_cache=not args.no_cache, desc=f"{args.split} features")
    where = "not cached" if args.no_cache else str(cache_path(paths))
    print(f"{args.split}: {feats.shape[0]} clips -> features {feats.shape} uint8, "
          f"front end {source_hash()}, {where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
