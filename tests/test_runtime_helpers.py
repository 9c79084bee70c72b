"""The integer helpers the project supplies where a toolchain's libgcc lacks them
(firmware/src/xtensa/libgcc_extra.c: __muldi3, __udivsi3, __umodsi3, __divsi3 for Debian's
lx106 libgcc), compiled for the host under other names and checked against exact arithmetic
on edge cases and random operands. The firmware links them on the lx106 (tests/test_e2e_qemu.py
runs it bit-exact)."""
from __future__ import annotations

import ctypes as ct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from qsnnkit.paths import FIRMWARE_DIR

SRC = FIRMWARE_DIR / "src" / "xtensa" / "libgcc_extra.c"
EDGES32 = [0, 1, 2, 3, 7, 255, 256, 65535, 65536, 0x7FFFFFFF, 0x80000000, 0x80000001, 0xFFFFFFFE, 0xFFFFFFFF]


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> ct.CDLL:
    so = tmp_path_factory.mktemp("rt") / "librt.so"
    res = subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fPIC", "-shared",
                          "-DQSNN_RT_NAME(n)=qsnn_rt_##n", str(SRC), "-o", str(so)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lib = ct.CDLL(str(so))
    lib.qsnn_rt_muldi3.argtypes = [ct.c_int64, ct.c_int64]
    lib.qsnn_rt_muldi3.restype = ct.c_int64
    for f in (lib.qsnn_rt_udivsi3, lib.qsnn_rt_umodsi3):
        f.argtypes = [ct.c_uint32, ct.c_uint32]
        f.restype = ct.c_uint32
    lib.qsnn_rt_divsi3.argtypes = [ct.c_int32, ct.c_int32]
    lib.qsnn_rt_divsi3.restype = ct.c_int32
    return lib


def _s64(v: int) -> int:
    v &= (1 << 64) - 1
    return v - (1 << 64) if v >> 63 else v


def _s32(v: int) -> int:
    v &= (1 << 32) - 1
    return v - (1 << 32) if v >> 31 else v


def test_muldi3_is_the_low_64_bits_of_the_product(rt: ct.CDLL) -> None:
    rng = np.random.default_rng(0)
    edges = [0, 1, -1, 2, -2, 0xFFFF, 0x10000, 0xFFFFFFFF, 1 << 32, -(1 << 32), (1 << 63) - 1, -(1 << 63), 12345678901]
    pairs = [(a, b) for a in edges for b in edges]
    pairs += [(_s64(int(a)), _s64(int(b))) for a, b in rng.integers(0, 2**63, (5000, 2), dtype=np.uint64) * 2 + 1]
    pairs += [(int(a), int(b)) for a, b in rng.integers(-(2**31), 2**31, (5000, 2))]
    for a, b in pairs:
        assert rt.qsnn_rt_muldi3(a, b) == _s64(a * b), (a, b)


def test_unsigned_and_signed_division(rt: ct.CDLL) -> None:
    rng = np.random.default_rng(1)
    pairs = [(n, d) for n in EDGES32 for d in EDGES32 if d]
    pairs += [(int(n), int(d)) for n, d in rng.integers(0, 2**32, (5000, 2), dtype=np.uint64) if d]
    pairs += [(int(n), int(d)) for n, d in zip(rng.integers(0, 2**32, 3000, dtype=np.uint64),
                                               rng.integers(1, 2**12, 3000))]
    for n, d in pairs:
        assert rt.qsnn_rt_udivsi3(n, d) == n // d, (n, d)
        assert rt.qsnn_rt_umodsi3(n, d) == n % d, (n, d)
        sn, sd = _s32(n), _s32(d)
        q = abs(sn) // abs(sd) * (1 if (sn < 0) == (sd < 0) else -1)  # C: towards zero
        assert rt.qsnn_rt_divsi3(sn, sd) == _s32(q), (sn, sd)
