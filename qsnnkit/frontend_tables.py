"""Generate the constant tables of the integer audio front end (qsnn_frontend_tables.h).

The C file firmware/lib/qsnn/src/qsnn_frontend.c is the one definition of the front end;
its constants live in the generated header firmware/lib/qsnn/include/qsnn_frontend_tables.h,
written by this module:

- ``QSNN_FE_WIN``: the first half (n = 0..240) of the 480-point periodic Hann window
  0.5 - 0.5*cos(2*pi*n/480) in Q15 (uint16, 32768 = 1.0); w[n] = w[480 - n] gives the rest.
- ``QSNN_FE_SIN``: a quarter wave sin(pi*i/256), i = 0..128, in Q15 (uint16), from which
  every twiddle factor exp(-2*pi*j*k/512) of the FFT and of the real-FFT split is read.
- ``QSNN_FE_BITREV``: the 8-bit bit reversal, for the 256-point radix-2 FFT.
- ``QSNN_FE_MEL_BAND`` / ``QSNN_FE_MEL_W``: the 40 triangular mel filters (HTK mel scale
  1127*ln(1 + f/700), 42 points equally spaced between 20 Hz and 4000 Hz, triangles in
  the mel domain), stored per FFT bin: bin k (k = QSNN_FE_MEL_K0 ...) lies on the falling
  slope of band ``QSNN_FE_MEL_BAND[i]`` (-1: below the first centre) with weight
  32768 - w and on the rising slope of the next band with weight w = ``QSNN_FE_MEL_W[i]``
  (Q15); a band index of 40 is dropped. So every bin feeds at most two bands and the two
  weights add up to exactly 1.
- ``QSNN_FE_LOG_Q62``: floor(2^(j/4) * 2^62) for j = 1, 2, 3, exact integers, for the
  exact quarter-octave floor(4*log2(E)).

Values are rounded to nearest from float64; the generator refuses a value that lies within
1e-6 of a rounding boundary, so a different libm cannot silently change a table.

Usage: ``python -m qsnnkit.generated --write`` regenerates it with the other generated
headers (``--check``: exit 1 if a committed header differs); ``python -m
qsnnkit.frontend_tables --print`` prints this one.
"""
from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from math import isqrt
from pathlib import Path

from qsnnkit import cgen
from qsnnkit.paths import QSNN_INCLUDE_DIR, REPO_ROOT
from qsnnkit.spec import FFT_LEN, FMAX_HZ, FMIN_HZ, FRAME_LEN, N_BANDS, SAMPLE_RATE

F_LO_HZ = float(FMIN_HZ)
F_HI_HZ = float(FMAX_HZ)
Q15 = 1 << 15

HEADER_PATH = QSNN_INCLUDE_DIR / "qsnn_frontend_tables.h"


def _round_q15(v: float, what: str) -> int:
    """round(v * 32768) to nearest; refuse values too close to a .5 boundary to be portable."""
    s = v * Q15
    frac = s - math.floor(s)
    if abs(frac - 0.5) < 1e-6:
        raise ValueError(f"{what}: {s!r} is too close to a rounding boundary")
    return int(math.floor(s + 0.5))


def hz_to_mel(f: float) -> float:
    return 1127.0 * math.log1p(f / 700.0)


@dataclass(frozen=True)
class Tables:
    win: list[int]          # Q15, n = 0..240
    sin_q: list[int]        # Q15, i = 0..128
    bitrev: list[int]       # 256 entries
    mel_k0: int             # first FFT bin fed into the filter bank
    mel_band: list[int]     # per bin from mel_k0: falling-slope band, -1..39
    mel_w: list[int]        # per bin: Q15 weight of the rising slope of band mel_band + 1
    log_q62: list[int]      # floor(2^(j/4) * 2^62), j = 1, 2, 3


def window_half() -> list[int]:
    return [_round_q15(0.5 - 0.5 * math.cos(2.0 * math.pi * n / FRAME_LEN), f"window[{n}]")
            if 0 < n < FRAME_LEN // 2 else (0 if n == 0 else Q15)
            for n in range(FRAME_LEN // 2 + 1)]


def sine_quarter() -> list[int]:
    n4 = FFT_LEN // 4  # 128
    out = []
    for i in range(n4 + 1):
        if i == 0:
            out.append(0)
        elif i == n4:
            out.append(Q15)
        else:
            out.append(_round_q15(math.sin(math.pi * i / (2 * n4)), f"sin[{i}]"))
    return out


def bitrev8() -> list[int]:
    return [int(f"{i:08b}"[::-1], 2) for i in range(256)]


def mel_tables() -> tuple[int, list[int], list[int]]:
    m_lo, m_hi = hz_to_mel(F_LO_HZ), hz_to_mel(F_HI_HZ)
    pts = [m_lo + (m_hi - m_lo) * i / (N_BANDS + 1) for i in range(N_BANDS + 2)]
    k0 = None
    bands: list[int] = []
    weights: list[int] = []
    for k in range(FFT_LEN // 2 + 1):
        mu = hz_to_mel(k * SAMPLE_RATE / FFT_LEN)
        if not (pts[0] < mu < pts[-1]):
            if k0 is not None and mu >= pts[-1]:
                break
            continue
        if k0 is None:
            k0 = k
        # falling slope of band j: centre pts[j + 1] <= mu < pts[j + 2]; j = -1 below the first centre
        j = -1
        while j + 2 < len(pts) and pts[j + 2] <= mu:
            j += 1
        rise = (mu - pts[j + 1]) / (pts[j + 2] - pts[j + 1])
        bands.append(j)
        weights.append(_round_q15(rise, f"mel weight at bin {k}"))
    assert k0 is not None
    return k0, bands, weights


def log_thresholds() -> list[int]:
    # floor(2^(62 + j/4)) = floor((2^(248 + j))^(1/4)) = isqrt(isqrt(2^(248 + j))), exactly
    return [isqrt(isqrt(1 << (248 + j))) for j in (1, 2, 3)]


def build() -> Tables:
    k0, bands, weights = mel_tables()
    return Tables(window_half(), sine_quarter(), bitrev8(), k0, bands, weights, log_thresholds())


def specification() -> dict[str, object]:
    """The front-end specification a model's features depend on: the algorithm version, the
    geometry and a SHA-256 over every table value (not the C source text, so a faster
    implementation of the same features keeps it). Part of the model hash."""
    import hashlib
    import json

    from qsnnkit import spec

    t = build()
    tables = {"win": t.win, "sin_q": t.sin_q, "bitrev": t.bitrev, "mel_k0": t.mel_k0,
              "mel_band": t.mel_band, "mel_w": t.mel_w, "log_q62": t.log_q62}
    digest = hashlib.sha256(json.dumps(tables, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return {
        "version": spec.FRONTEND_VERSION, "sample_rate": spec.SAMPLE_RATE, "frame_len": spec.FRAME_LEN,
        "hop_len": spec.HOP_LEN, "fft_len": spec.FFT_LEN, "n_bands": spec.N_BANDS, "fmin_hz": spec.FMIN_HZ,
        "fmax_hz": spec.FMAX_HZ, "gain_log2": spec.GAIN_LOG2, "clip_frames": spec.CLIP_FRAMES,
        "feature": "clamp(floor(4*log2(E)), 0, 255), E in 2^-gain_log2 LSB^2",
        "tables_sha256": digest,
    }


def render(t: Tables | None = None) -> str:
    t = t or build()
    rel = Path(__file__).resolve().relative_to(REPO_ROOT)
    n_mel = len(t.mel_band)
    bands_used = sorted(set(b for b in t.mel_band if b >= 0) | set(b + 1 for b in t.mel_band if b + 1 < N_BANDS))
    assert bands_used == list(range(N_BANDS)), "a mel band gets no FFT bin"
    parts = [
        "/*\n"
        " * qsnn_frontend_tables.h - constant tables of the integer audio front end.\n"
        f" * GENERATED by {rel.as_posix()} (python -m qsnnkit.generated --write): do not edit.\n"
        " * Provenance: periodic Hann 480, Q15; quarter sine for a 512-point FFT, Q15; HTK mel\n"
        f" * 1127*ln(1+f/700), {N_BANDS} bands {F_LO_HZ:g}-{F_HI_HZ:g} Hz, Q15; exact Q62 quarter-octave thresholds.\n"
        " * Meaning of every table: docstring of the generator and qsnn_frontend.c.\n"
        " */\n"
        "#ifndef QSNN_FRONTEND_TABLES_H\n"
        "#define QSNN_FRONTEND_TABLES_H\n\n"
        "#include <stdint.h>\n\n",
        f"#define QSNN_FE_MEL_K0 {t.mel_k0}u   /* first FFT bin fed into the mel filters */\n",
        f"#define QSNN_FE_MEL_NBINS {n_mel}u   /* bins QSNN_FE_MEL_K0 .. QSNN_FE_MEL_K0 + {n_mel - 1} */\n\n",
        "/* Periodic Hann window, n = 0..240, Q15 (w[480 - n] = w[n]). */\n",
        cgen.array("uint16_t", "QSNN_FE_WIN", t.win),
        "\n/* sin(pi * i / 256), i = 0..128, Q15. */\n",
        cgen.array("uint16_t", "QSNN_FE_SIN", t.sin_q),
        "\n/* 8-bit bit reversal. */\n",
        cgen.array("uint8_t", "QSNN_FE_BITREV", t.bitrev, per_line=16),
        "\n/* Per bin: the band on whose falling slope it lies (-1: none). */\n",
        cgen.array("int8_t", "QSNN_FE_MEL_BAND", t.mel_band, per_line=16),
        "\n/* Per bin: Q15 weight for the rising slope of band QSNN_FE_MEL_BAND + 1;\n"
        " * the falling slope gets 32768 - w. */\n",
        cgen.array("uint16_t", "QSNN_FE_MEL_W", t.mel_w),
        "\n/* floor(2^(j/4) * 2^62), j = 1, 2, 3: exact quarter-octave thresholds. */\n",
        cgen.array("uint64_t", "QSNN_FE_LOG_Q62", t.log_q62, per_line=3),
        "\n#endif /* QSNN_FRONTEND_TABLES_H */\n",
    ]
    return "".join(parts)


def check(path: Path = HEADER_PATH) -> bool:
    """True when the header on disk is exactly what render() writes."""
    return path.exists() and path.read_text() == render()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m qsnnkit.frontend_tables",
        description="Generate (--write) or verify (--check) firmware/lib/qsnn/include/qsnn_frontend_tables.h, "
                    "the window, twiddle, mel and log tables of the integer audio front end.")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", action="store_true", help="write the header")
    g.add_argument("--check", action="store_true", help="exit 1 if the committed header is stale")
    g.add_argument("--print", action="store_true", help="print the header to stdout")
    ap.add_argument("--path", type=Path, default=HEADER_PATH, help="header path (default: %(default)s)")
    args = ap.parse_args(argv)
    if args.print:
        sys.stdout.write(render())
        return 0
    if args.write:
        args.path.write_text(render())
        print(f"wrote {args.path}")
        return 0
    if check(args.path):
        print(f"{args.path} is up to date")
        return 0
    print(f"{args.path} is stale or missing: run python -m qsnnkit.generated --write", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
