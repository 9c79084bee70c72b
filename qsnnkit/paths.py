"""Where things live: the repository checkout and the project's ignored cache."""
from __future__ import annotations

import os
from pathlib import Path

#: Root of the checkout (qsnnkit is used from a checkout: the C sources are part of it).
REPO_ROOT = Path(__file__).resolve().parents[1]
FIRMWARE_DIR = REPO_ROOT / "firmware"
QSNN_LIB_DIR = FIRMWARE_DIR / "lib" / "qsnn"
QSNN_INCLUDE_DIR = QSNN_LIB_DIR / "include"
QSNN_SRC_DIR = QSNN_LIB_DIR / "src"


def cache_dir() -> Path:
    """The project's own ignored cache (features, built libraries): $QSNN_CACHE_DIR or .cache/."""
    d = Path(os.environ.get("QSNN_CACHE_DIR", REPO_ROOT / ".cache"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def build_dir() -> Path:
    """Ignored folder for what the main job produces: $QSNN_BUILD_DIR or build/."""
    d = Path(os.environ.get("QSNN_BUILD_DIR", REPO_ROOT / "build"))
    d.mkdir(parents=True, exist_ok=True)
    return d
