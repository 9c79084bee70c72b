"""Build the portable C library (firmware/lib/qsnn) for the host and load it with ctypes.

The C sources are the one definition of the front end and the network core; Python calls
the very same code through this shared library. It is compiled with the strict flags the
project promises (C99, -Wall -Wextra -Werror) into the cache, keyed by a hash of the
sources and flags, so an edit to any C file rebuilds it.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from qsnnkit.paths import QSNN_INCLUDE_DIR, QSNN_SRC_DIR, cache_dir

STRICT_CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _compiler() -> str:
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise RuntimeError(f"C compiler {cc!r} not found: install gcc (apt-get install gcc) or set CC")
    return cc


def c_sources() -> list[Path]:
    return sorted(QSNN_SRC_DIR.glob("*.c"))


def _digest(paths: list[Path], flags: list[str]) -> str:
    h = hashlib.sha256()
    for p in paths + sorted(QSNN_INCLUDE_DIR.glob("*.h")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    h.update(" ".join(flags).encode())
    return h.hexdigest()[:16]


def build_shared(extra_flags: list[str] | None = None) -> Path:
    """Compile firmware/lib/qsnn/src/*.c into a shared library; return its path (cached)."""
    srcs = c_sources()
    if not srcs:
        raise RuntimeError(f"no C sources in {QSNN_SRC_DIR}")
    return build_library("libqsnn", srcs, list(extra_flags or []))


def build_library(stem: str, srcs: list[Path], extra_flags: list[str]) -> Path:
    """Compile C sources (with the project's headers on the include path) into a shared
    library in the cache, named by a hash of the sources, headers and flags; return its path."""
    flags = STRICT_CFLAGS + ["-fPIC", "-shared"] + extra_flags
    out_dir = cache_dir() / "clib"
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{stem}-{_digest(srcs, flags)}.so"
    if not out.exists():
        tmp = out.with_suffix(f".{os.getpid()}.tmp")
        cmd = [_compiler(), *flags, "-I", str(QSNN_INCLUDE_DIR), *map(str, srcs), "-o", str(tmp), "-lm"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"building the host C library {stem} failed:\n" + " ".join(cmd) + "\n" + res.stderr)
        tmp.replace(out)
    return out


@lru_cache(maxsize=None)
def load() -> ctypes.CDLL:
    """The host build of the C library, loaded once per process."""
    return ctypes.CDLL(str(build_shared()))
