"""Weight packing: Python packs (qsnnkit/packing.py), C unpacks (qsnn_pack.h) - one format."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from qsnnkit import packing
from qsnnkit.clib import STRICT_CFLAGS
from qsnnkit.packing import BITS, pack_rows, row_words, unpack_rows, value_range
from qsnnkit.paths import QSNN_INCLUDE_DIR, REPO_ROOT

COLS = (1, 3, 31, 32, 33, 63, 64, 65, 127, 128, 129)
ROWS = (1, 2, 5)
DRIVER = REPO_ROOT / "tests" / "c" / "unpack_main.c"


def _random(rng: np.random.Generator, rows: int, cols: int, bits: int) -> np.ndarray:
    lo, hi = value_range(bits)
    if bits == 1:
        w = rng.choice(np.array([-1, 1]), size=(rows, cols))
    else:
        w = rng.integers(lo, hi + 1, size=(rows, cols))
    flat = w.reshape(-1)
    flat[0] = lo  # the extremes are always in
    flat[-1] = hi
    if flat.size > 2:
        flat[flat.size // 2] = lo
    return w


def _reference_pack(w: np.ndarray, bits: int) -> list[int]:
    """Bit by bit, straight from the contract text (independent of pack_rows)."""
    rows, cols = w.shape
    nw = (cols * bits + 31) // 32
    out = [0] * (rows * nw)
    for r in range(rows):
        for j in range(cols):
            v = int(w[r, j])
            code = (1 if v == 1 else 0) if bits == 1 else v & ((1 << bits) - 1)
            for k in range(bits):
                pos = j * bits + k
                if (code >> k) & 1:
                    out[r * nw + pos // 32] |= 1 << (pos % 32)
    return out


def _first_mismatch(expected: np.ndarray, got: np.ndarray, bits: int) -> str:
    r, c = (int(i) for i in np.argwhere(expected != got)[0])
    return f"first mismatch at row {r}, col {c}, bits {bits}: expected {int(expected[r, c])}, got {int(got[r, c])}"


# --- Python side ----------------------------------------------------------------------------


def test_known_words() -> None:
    assert pack_rows(np.array([[1, -1, -8, 7]]), 4).tolist() == [0x78F1]
    assert pack_rows(np.array([[1, -1, 1, 1]]), 1).tolist() == [0b1101]
    assert pack_rows(np.array([[-2, 1, 0, -1]]), 2).tolist() == [0b11_00_01_10]
    assert pack_rows(np.array([[127, -127, 0, -1, 5]]), 8).tolist() == [0xFF00817F, 0x05]
    # each row starts on a fresh word
    assert pack_rows(np.array([[1], [-1], [1]]), 1).tolist() == [1, 0, 1]


@pytest.mark.parametrize("bits", BITS)
def test_pack_matches_reference_and_round_trips(bits: int) -> None:
    rng = np.random.default_rng(bits)
    for cols in COLS:
        for rows in ROWS:
            w = _random(rng, rows, cols, bits)
            words = pack_rows(w, bits)
            assert words.dtype == np.uint32 and words.shape == (rows * row_words(cols, bits),)
            ref = _reference_pack(w, bits)
            if words.tolist() != ref:
                i = next(i for i, (a, b) in enumerate(zip(words.tolist(), ref)) if a != b)
                pytest.fail(f"bits {bits} rows {rows} cols {cols}: word {i} is {words[i]:#010x}, contract says {ref[i]:#010x}")
            back = unpack_rows(words, bits, rows, cols)
            assert back.shape == (rows, cols)
            assert np.array_equal(back, w), _first_mismatch(w, back, bits)


@pytest.mark.parametrize("bits", BITS)
def test_padding_bits_are_zero(bits: int) -> None:
    rng = np.random.default_rng(100 + bits)
    for cols in COLS:
        rows = 3
        all_ones = np.full((rows, cols), 1 if bits == 1 else -1)  # every code bit set
        for w in (all_ones, _random(rng, rows, cols, bits)):
            words = pack_rows(w, bits).reshape(rows, row_words(cols, bits))
            used = cols * bits - 32 * (row_words(cols, bits) - 1)  # bits used in the last word
            pad_mask = (0xFFFFFFFF << used) & 0xFFFFFFFF
            for r in range(rows):
                assert int(words[r, -1]) & pad_mask == 0, f"padding bits set: row {r}, cols {cols}, bits {bits}"
            if w is all_ones:  # and every used bit is set: nothing lost either
                assert all(int(x) == 0xFFFFFFFF for x in words[:, :-1].reshape(-1))
                assert all(int(x) == (~pad_mask & 0xFFFFFFFF) for x in words[:, -1])


@pytest.mark.parametrize("bits", BITS)
def test_rejects_out_of_range(bits: int) -> None:
    lo, hi = value_range(bits)
    bad = [0, 2, -2] if bits == 1 else [lo - 1, hi + 1]
    for v in bad:
        w = np.ones((2, 5), dtype=np.int64)
        w[1, 3] = v
        with pytest.raises(ValueError, match=rf"out of range for {bits}-bit.*\[1, 3\] = {v}"):
            pack_rows(w, bits)


def test_rejects_minus_128_and_bad_args() -> None:
    with pytest.raises(ValueError, match=r"-127\.\.127.*= -128"):
        pack_rows(np.array([[-128]]), 8)
    with pytest.raises(ValueError, match="0x80"):
        unpack_rows(np.array([0x80], np.uint32), 8, 1, 1)
    for b in (0, 3, 16, 32):
        with pytest.raises(ValueError, match="bits must be one of"):
            pack_rows(np.zeros((1, 1), np.int8), b)
    with pytest.raises(ValueError, match="2-D"):
        pack_rows(np.zeros(4, np.int8), 4)
    with pytest.raises(ValueError, match="integer"):
        pack_rows(np.zeros((1, 4)), 4)
    with pytest.raises(ValueError, match="integer"):
        pack_rows(np.ones((1, 4), bool), 1)
    with pytest.raises(ValueError, match="take 2 words, got 3"):
        unpack_rows(np.zeros(3, np.uint32), 1, 2, 32)
    with pytest.raises(ValueError, match="padding bits set in row 1"):
        unpack_rows(np.array([0x1, 0x10], np.uint32), 4, 2, 1)


def test_row_words() -> None:
    assert [row_words(n, 1) for n in (0, 1, 32, 33)] == [0, 1, 1, 2]
    assert [row_words(n, 8) for n in (1, 4, 5, 129)] == [1, 1, 2, 33]
    assert [row_words(n, 2) for n in (16, 17)] == [1, 2]


# --- C side ---------------------------------------------------------------------------------


def _cc() -> str:
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        pytest.fail(f"C compiler {cc!r} not found")
    return cc


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("unpack") / "unpack_main"
    cmd = [_cc(), *STRICT_CFLAGS, "-I", str(QSNN_INCLUDE_DIR), str(DRIVER), "-o", str(exe)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, " ".join(cmd) + "\n" + res.stderr
    return exe


def _run_c(exe: Path, cases: list[tuple[np.ndarray, int, np.ndarray]]) -> list[np.ndarray]:
    parts = []
    for w, bits, words in cases:
        parts.append(f"{w.shape[0]} {w.shape[1]} {bits}\n" + " ".join(f"{int(x):x}" for x in words) + "\n")
    res = subprocess.run([str(exe)], input="".join(parts), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    out = []
    i = 0
    for w, bits, _ in cases:
        rows, cols = w.shape
        assert lines[i] == f"case {rows} {cols} {bits} {row_words(cols, bits)}", lines[i]
        vals = np.array([[int(t) for t in ln.split()] for ln in lines[i + 1 : i + 1 + rows]])
        out.append(vals.reshape(rows, cols))
        i += 1 + rows
    assert i == len(lines)
    return out


def test_python_packs_c_unpacks(driver: Path) -> None:
    rng = np.random.default_rng(2024)
    cases = []
    for bits in BITS:
        for cols in COLS:
            for rows in ROWS:
                w = _random(rng, rows, cols, bits)
                cases.append((w, bits, pack_rows(w, bits)))
    # a larger layer-like case per width too
    for bits in BITS:
        w = _random(rng, 40, 200, bits)
        cases.append((w, bits, pack_rows(w, bits)))
    results = _run_c(driver, cases)
    for (w, bits, _), got in zip(cases, results):
        if not np.array_equal(got, w):
            pytest.fail(f"{w.shape[0]}x{w.shape[1]}: " + _first_mismatch(w, got, bits))


def test_c_driver_rejects_malformed_input(driver: Path) -> None:
    res = subprocess.run([str(driver)], input="1 4 3\n0\n", capture_output=True, text=True)
    assert res.returncode == 2 and "bad bits 3" in res.stderr
    res = subprocess.run([str(driver)], input="2 33 1\n1 2 3\n", capture_output=True, text=True)
    assert res.returncode == 2 and "missing word 3" in res.stderr


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_column_copies_are_the_transposed_bit_planes(bits: int) -> None:
    """packing.columns: 1-bit weights as the packed transpose (bit 1 = +1); wider weights, when
    asked for (layers on spikes), as one packed transpose per bit plane of the two's-complement
    codes, least significant plane first, so that sum_p +-2^p plane_p (the top plane negative)
    is the weight again; none for wider weights not asked for, or for more than 128 rows."""
    rng = np.random.default_rng(bits)
    lo, hi = packing.value_range(bits)
    rows, fan = 37, 50
    w = rng.choice([-1, 1], (rows, fan)) if bits == 1 else rng.integers(lo, hi, (rows, fan), endpoint=True)
    cols = packing.columns(w, bits, planes=True)
    assert cols is not None
    words = packing.row_words(rows, 1)
    n_planes = 1 if bits == 1 else bits
    assert cols.shape == (n_planes * fan * words,)
    planes = [packing.unpack_rows(cols[p * fan * words:(p + 1) * fan * words], 1, fan, rows) > 0
              for p in range(n_planes)]  # [fan, rows] booleans: bit set
    if bits == 1:
        assert np.array_equal(np.where(planes[0], 1, -1), w.T)
    else:
        back = sum((1 << p) * planes[p].astype(np.int64) for p in range(bits - 1)) - (1 << (bits - 1)) * planes[-1]
        assert np.array_equal(back, w.T)
        assert packing.columns(w, bits) is None  # not asked for: a wider layer on features has none
    assert packing.columns(np.ones((129, 3), np.int64), bits, planes=True) is None  # past COLUMN_MAX_ROWS
