"""Dataset listing with the project's fixed splits, and the raw readers (WAV, N-MNIST .bs2).

Speech Commands v2, 12 classes (``CLASSES``; the label is the position in that tuple).
A dataset root is resolved by :func:`resolve_root` and may be

* the shared data folder, which holds ``speech_commands_v2_test12/`` (used as the root), or
* a folder laid out like the official 12-class test archive ``speech_commands_test_set_v0.02``:
  the ten word folders plus ``_unknown_/`` (files ``WORD_SPEAKER_nohash_N.wav.wav``) and
  ``_silence_/`` (files ``N.wav``), or
* a folder laid out like the full official archive ``speech_commands_v0.02``: the ten word
  folders, every other word folder (``bed/``, ``bird/``, ...: ``_unknown_``), ``_background_noise_/``
  and the official ``validation_list.txt`` / ``testing_list.txt``. What the 12-class task needs
  beyond the word folders is made as TensorFlow's speech_commands example does when
  ``archive=ArchiveOptions()`` is given (per split, with the split's known-word clip count K):
  ``_unknown_`` is a seeded sample of ceil(K * 10 / 100) clips of the split's other-word clips
  (``unknown_percent``; None keeps them all); ``_silence_`` is ceil(K * 10 / 100)
  (``silence_percent``) cuts of 1 s from the background-noise recordings at seeded offsets, at
  their recorded level, taken in turn from each recording (sorted by name) and only from the
  split's own part of it: the first 80% of every recording's duration for train, the next 10%
  for validation, the last 10% for test, so no noise sample is in two splits. The cuts are
  written once as WAVs into the project's cache (``.cache/silence/``), never into the dataset.
  A ``_silence_/`` folder of 1 s cuts (``N.wav``) in the root is used instead when present.
  Without ``archive`` every other-word clip is ``_unknown_`` and a ``_silence_/`` folder is
  required (or ``allow_missing_silence=True``: class 11 then has no examples).

Splits are the project's own (data README), for every root: split by speaker, the speaker id is
the file name's part before ``_nohash_`` (in ``_unknown_/`` the part between the word and
``_nohash_``), for ``_silence_`` the file name including ``.wav``;
``h = int(sha1(speaker).hexdigest(), 16) % 10``: ``h == 1`` test, ``h == 2`` validation, the rest
train. For the full archive ``ArchiveOptions(split_rule="official")`` uses its
``testing_list.txt`` and ``validation_list.txt`` instead (paths relative to the root; every
other clip is train).

Also: the Free Spoken Digit Dataset (``{digit}_{speaker}_{index}.wav``, 8 kHz; index 0-4 test,
5-9 validation, the rest train) and the small N-MNIST copy (``N.bs2`` + ``labels.txt``;
``N % 10 == 0`` test, ``== 1`` validation, the rest train).
"""
from __future__ import annotations

import hashlib
import math
import os
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from qsnnkit.paths import REPO_ROOT, cache_dir
from qsnnkit.spec import SAMPLE_RATE

Split = Literal["train", "val", "test", "all"]
SPLITS: tuple[str, ...] = ("train", "val", "test", "all")

CLASSES: tuple[str, ...] = (
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go", "_unknown_", "_silence_",
)
WORDS: tuple[str, ...] = CLASSES[:10]
UNKNOWN = CLASSES.index("_unknown_")
SILENCE = CLASSES.index("_silence_")

ENV_ROOT = "QSNN_DATA_ROOT"
SHARED_SUBDIR = "speech_commands_v2_test12"
BACKGROUND = "_background_noise_"

NMNIST_DTYPE = np.dtype([("x", np.uint8), ("y", np.uint8), ("p", np.uint8), ("t", np.uint32)])


def default_data_root() -> Path | None:
    """$QSNN_DATA_ROOT, else ``<repo>/../shared/data`` if it exists, else None."""
    env = os.environ.get(ENV_ROOT)
    if env:
        return Path(env)
    d = REPO_ROOT.parent / "shared" / "data"
    return d if d.is_dir() else None


def _data_root(root: str | Path | None) -> Path:
    if root is None:
        r = default_data_root()
        if r is None:
            raise FileNotFoundError(
                f"no dataset root given: pass one, set ${ENV_ROOT}, or provide "
                f"{REPO_ROOT.parent / 'shared' / 'data'}"
            )
        root = r
    p = Path(root).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"dataset root {p} does not exist")
    if not p.is_dir():
        raise NotADirectoryError(f"dataset root {p} is not a directory")
    return p


def _wavs(d: Path) -> list[Path]:
    return sorted(f for f in d.iterdir() if f.is_file() and f.name.endswith(".wav"))


def resolve_root(root: str | Path | None = None) -> Path:
    """The Speech Commands folder (the one holding ``yes/``, ``no/``, ...) for a dataset root.

    ``root`` None: $QSNN_DATA_ROOT, else ``<repo>/../shared/data``. Raises FileNotFoundError for a
    missing root and ValueError for a root without a known layout or with an empty class folder.
    """
    p = _data_root(root)
    if (p / SHARED_SUBDIR).is_dir():
        p = p / SHARED_SUBDIR
    present = [w for w in WORDS if (p / w).is_dir()]
    if not present:
        raise ValueError(
            f"no Speech Commands layout in {p}: expected either {p / SHARED_SUBDIR}/ or the class "
            f"folders {', '.join(w + '/' for w in WORDS)} directly inside (official archive layout)"
        )
    missing = [w for w in WORDS if w not in present]
    if missing:
        raise ValueError(f"Speech Commands root {p} lacks the class folders {', '.join(m + '/' for m in missing)}")
    for w in WORDS:
        if not _wavs(p / w):
            raise ValueError(f"Speech Commands class folder {p / w} holds no .wav files")
    return p


def speaker_id(path: str | Path, label: int) -> str:
    """The speaker id used for splitting (data README), for a clip of class ``label``."""
    p = Path(path)
    name = p.name
    if label == SILENCE:
        return name
    if "_nohash_" not in name:
        raise ValueError(f"{p}: Speech Commands file name without '_nohash_', cannot tell the speaker")
    prefix = name.split("_nohash_", 1)[0]
    if label == UNKNOWN and p.parent.name == "_unknown_":
        word, sep, spk = prefix.partition("_")
        if not sep or not spk:
            raise ValueError(f"{p}: expected WORD_SPEAKER_nohash_N.wav.wav in _unknown_/")
        return spk
    return prefix


def split_of_speaker(speaker: str) -> str:
    """'test', 'val' or 'train' for a speaker id (sha1 rule of the data README)."""
    h = int(hashlib.sha1(speaker.encode()).hexdigest(), 16) % 10
    return "test" if h == 1 else "val" if h == 2 else "train"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")


def list_all(root: str | Path | None = None, *, allow_missing_silence: bool = False) -> list[tuple[Path, int]]:
    """Every clip of the root as (path, label), sorted by (label, path)."""
    p = resolve_root(root)
    items: list[tuple[Path, int]] = []
    for label, w in enumerate(WORDS):
        items += [(f, label) for f in _wavs(p / w)]
    unknown_dirs = [p / "_unknown_"] if (p / "_unknown_").is_dir() else []
    unknown_dirs += sorted(
        d for d in p.iterdir() if d.is_dir() and not d.name.startswith(("_", ".")) and d.name not in WORDS
    )
    for d in unknown_dirs:
        items += [(f, UNKNOWN) for f in _wavs(d)]
    sil = p / "_silence_"
    if sil.is_dir() and _wavs(sil):
        items += [(f, SILENCE) for f in _wavs(sil)]
    elif not allow_missing_silence:
        raise ValueError(
            f"{p} has no {sil.name}/ folder with clips: the full official archive only has "
            f"{BACKGROUND}/, which this loader does not cut. Put 1 s 16 kHz mono cuts named N.wav into "
            f"{sil}, or pass allow_missing_silence=True to list the 11 other classes only"
        )
    if not any(lab == UNKNOWN for _, lab in items):
        raise ValueError(f"{p} has no _unknown_ clips: expected {p / '_unknown_'}/ or other word folders")
    return sorted(items, key=lambda it: (it[1], it[0].as_posix()))


SPLIT_RULES: tuple[str, ...] = ("speaker", "official")
#: a background recording's share of each split's silence cuts: [start, end) of its duration
BACKGROUND_SPANS: dict[str, tuple[float, float]] = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}
OFFICIAL_LISTS: dict[str, str] = {"val": "validation_list.txt", "test": "testing_list.txt"}


@dataclass(frozen=True)
class ArchiveOptions:
    """How the full official archive becomes the 12-class task (module docstring); no effect on
    the 12-class test-set layout, which has ``_unknown_/`` and ``_silence_/`` of its own."""

    split_rule: str = "speaker"  # "speaker": the data README's hash; "official": the archive's lists
    unknown_percent: float | None = 10.0  # _unknown_ clips per 100 known-word clips of a split; None: all
    silence_percent: float = 10.0  # _silence_ cuts per 100 known-word clips of a split
    seed: int = 0  # of the unknown sample and the cut offsets

    def __post_init__(self) -> None:
        if self.split_rule not in SPLIT_RULES:
            raise ValueError(f"unknown split rule {self.split_rule!r}: expected one of {', '.join(SPLIT_RULES)}")
        if self.unknown_percent is not None and not 0 <= self.unknown_percent <= 1000:
            raise ValueError(f"unknown_percent must be 0..1000 (or None for every clip), got {self.unknown_percent}")
        if not 0 <= self.silence_percent <= 1000:
            raise ValueError(f"silence_percent must be 0..1000, got {self.silence_percent}")


def is_full_archive(p: Path) -> bool:
    """The full archive's layout (other word folders, no ``_unknown_/``), not the 12-class test set's."""
    return not (p / "_unknown_").is_dir() and any(
        d.is_dir() and not d.name.startswith(("_", ".")) and d.name not in WORDS for d in p.iterdir())


def _official_split(p: Path) -> dict[str, str]:
    """Relative path -> 'val' / 'test' from the archive's lists (every other clip is train)."""
    out: dict[str, str] = {}
    for split, name in OFFICIAL_LISTS.items():
        f = p / name
        if not f.is_file():
            raise ValueError(f"split_rule 'official' needs the archive's {name} in {p}")
        for line in f.read_text().splitlines():
            if line.strip():
                out[line.strip()] = split
    return out


def _split_of(p: Path, f: Path, label: int, rule: str, official: dict[str, str]) -> str:
    if rule == "official":
        return official.get(f.relative_to(p).as_posix(), "train")
    return split_of_speaker(speaker_id(f, label))


def silence_cuts(p: Path, split: str, n: int, seed: int = 0) -> list[Path]:
    """``n`` 1 s cuts of the background-noise recordings for one split (module docstring),
    written once into the cache; their paths."""
    if n == 0:
        return []
    bg = _wavs(p / BACKGROUND) if (p / BACKGROUND).is_dir() else []
    if not bg:
        raise ValueError(f"{p} has neither a _silence_/ folder nor {BACKGROUND}/ recordings to cut silence from")
    h = hashlib.sha256(f"{p.resolve()}|{split}|{n}|{seed}".encode())
    for f in bg:
        st = f.stat()
        h.update(f"|{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    d = cache_dir() / "silence" / h.hexdigest()[:20] / split
    paths = [d / f"{k:05d}.wav" for k in range(n)]
    if all(q.is_file() for q in paths):
        return paths
    a, b = BACKGROUND_SPANS[split]
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    recs = [read_wav(f) for f in bg]
    d.mkdir(parents=True, exist_ok=True)
    for k, q in enumerate(paths):
        src, x = bg[k % len(bg)], recs[k % len(recs)]
        lo, hi = int(a * len(x)), int(b * len(x)) - SAMPLE_RATE
        if hi < lo:
            raise ValueError(f"{src}: {len(x) / SAMPLE_RATE:.1f} s is too short for 1 s cuts from its "
                             f"{split} part ({a:.0%}-{b:.0%} of it)")
        at = int(rng.integers(lo, hi + 1))
        tmp = q.with_name(f"{q.stem}.{os.getpid()}.tmp.wav")
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes(x[at:at + SAMPLE_RATE].astype("<i2").tobytes())
        tmp.replace(q)
    return paths


def _archive_split(p: Path, split: str, opt: ArchiveOptions) -> list[tuple[Path, int]]:
    """One split of the full archive as the 12-class task (module docstring)."""
    official = _official_split(p) if opt.split_rule == "official" else {}
    known = [(f, label) for label, w in enumerate(WORDS) for f in _wavs(p / w)]
    known = [(f, lab) for f, lab in known if _split_of(p, f, lab, opt.split_rule, official) == split]
    others = sorted(d for d in p.iterdir() if d.is_dir() and not d.name.startswith(("_", ".")) and d.name not in WORDS)
    unknown = [(f, UNKNOWN) for d in others for f in _wavs(d)]
    unknown = [(f, lab) for f, lab in unknown if _split_of(p, f, lab, opt.split_rule, official) == split]
    if opt.unknown_percent is not None:
        n_unk = min(len(unknown), math.ceil(len(known) * opt.unknown_percent / 100))
        pick = np.random.default_rng([opt.seed, 100 + SPLITS.index(split)]).choice(len(unknown), n_unk, replace=False)
        unknown = [unknown[i] for i in sorted(pick)]
    sil = p / "_silence_"
    if sil.is_dir() and _wavs(sil):
        silence = [(f, SILENCE) for f in _wavs(sil) if split_of_speaker(speaker_id(f, SILENCE)) == split]
    else:
        n_sil = math.ceil(len(known) * opt.silence_percent / 100)
        silence = [(f, SILENCE) for f in silence_cuts(p, split, n_sil, opt.seed)]
    return sorted(known + unknown + silence, key=lambda it: (it[1], it[0].as_posix()))


def list_split(
    root: str | Path | None, split: Split, *, allow_missing_silence: bool = False,
    archive: ArchiveOptions | None = None,
) -> list[tuple[Path, int]]:
    """(path, label) of one split ('train', 'val', 'test' or 'all'), sorted by (label, path).

    ``archive``: how a full official archive becomes the 12-class task (module docstring); it
    changes nothing for the 12-class test-set layout. None keeps every other-word clip as
    ``_unknown_`` and needs a ``_silence_/`` folder (or ``allow_missing_silence``)."""
    _check_split(split)
    if archive is not None:
        p = resolve_root(root)
        if is_full_archive(p):
            if split == "all":
                return sorted(sum((_archive_split(p, s, archive) for s in ("train", "val", "test")), []),
                              key=lambda it: (it[1], it[0].as_posix()))
            return _archive_split(p, split, archive)
        if archive.split_rule != "speaker":
            raise ValueError(f"{p} has the 12-class test set's layout: the official lists belong to the full archive")
    items = list_all(root, allow_missing_silence=allow_missing_silence)
    if split == "all":
        return items
    return [(f, lab) for f, lab in items if split_of_speaker(speaker_id(f, lab)) == split]


def read_wav(path: str | Path, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Samples of a mono 16-bit PCM WAV at ``rate`` Hz, as int16; ValueError naming the file otherwise."""
    p = Path(path)
    try:
        with wave.open(str(p), "rb") as w:
            ch, width, fr, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            if ch != 1:
                raise ValueError(f"{p}: {ch} channels, expected mono")
            if width != 2:
                raise ValueError(f"{p}: {8 * width}-bit samples, expected 16-bit PCM")
            if fr != rate:
                raise ValueError(f"{p}: {fr} Hz, expected {rate} Hz")
            raw = w.readframes(n)
    except (wave.Error, EOFError) as e:
        raise ValueError(f"{p}: not a readable PCM WAV file ({e})") from e
    if len(raw) != 2 * n:
        raise ValueError(f"{p}: truncated, header says {n} samples, data holds {len(raw) // 2}")
    return np.frombuffer(raw, dtype="<i2").astype(np.int16)


# --- Free Spoken Digit Dataset ------------------------------------------------------------

FSDD_RATE = 8000
#: FSDD's classes: the spoken digit is the label
FSDD_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))


def fsdd_dir(root: str | Path | None = None) -> Path:
    """The FSDD recordings folder: ``root/fsdd/recordings``, ``root/recordings`` or ``root`` itself."""
    p = _data_root(root)
    for d in (p / "fsdd" / "recordings", p / "recordings", p):
        if d.is_dir() and any(f.name.endswith(".wav") for f in d.iterdir()):
            return d
    raise ValueError(f"no FSDD recordings in {p}: expected {p / 'fsdd' / 'recordings'}/ of {{digit}}_{{speaker}}_{{index}}.wav")


def fsdd_split_of_index(index: int) -> str:
    return "test" if index <= 4 else "val" if index <= 9 else "train"


def list_fsdd(root: str | Path | None, split: Split) -> list[tuple[Path, int]]:
    """(path, digit) of one FSDD split, sorted by (digit, path). Read with ``read_wav(p, FSDD_RATE)``."""
    _check_split(split)
    d = fsdd_dir(root)
    items = []
    for f in _wavs(d):
        parts = f.name[: -len(".wav")].split("_")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit():
            raise ValueError(f"{f}: expected an FSDD name {{digit}}_{{speaker}}_{{index}}.wav")
        if split == "all" or fsdd_split_of_index(int(parts[2])) == split:
            items.append((f, int(parts[0])))
    return sorted(items, key=lambda it: (it[1], it[0].as_posix()))


def read_fsdd_clip(path: str | Path) -> np.ndarray:
    """One FSDD recording as a front-end clip: its 8 kHz samples resampled to 16 kHz
    (``audio.to_16k``: linear interpolation, then a Kaiser-windowed sinc low-pass at 0.45 x
    8 kHz) and centred in 1 s of zeros, or cut to its centred 1 s when longer (``audio.centre_clip``).
    int16 [CLIP_LEN]."""
    from qsnnkit import audio

    x = read_wav(path, FSDD_RATE).astype(np.float64)
    return audio.centre_clip(audio.to_16k(x, FSDD_RATE))


# --- N-MNIST ------------------------------------------------------------------------------


NMNIST_SIDE = 34  # the ATIS crop of N-MNIST (qsnnkit.spec.NMNIST_SIDE)
#: A record whose y is 240 marks a timestamp overflow: later timestamps are 2^13 us larger.
NMNIST_OVERFLOW_Y = 240
NMNIST_OVERFLOW_US = 1 << 13


def dataset_name(dataset: str, root: str | Path | None = None) -> str:
    """The name results give the data a model was trained on: the folder of its copy (e.g.
    ``speech_commands_v2_test12``, ``nmnist_small``) under the dataset root."""
    if dataset == "fsdd":
        d = fsdd_dir(root)
        return d.parent.name if d.name == "recordings" else d.name
    return (nmnist_dir(root) if dataset == "nmnist" else resolve_root(root)).name


def nmnist_dir(root: str | Path | None = None) -> Path:
    """The N-MNIST folder of a root: the small copy (``N.bs2`` + ``labels.txt``) at
    ``root/nmnist_small`` or ``root``, or the official layout (``Train/`` and ``Test/`` of digit
    folders ``0``..``9`` holding ``.bin`` files) at ``root/N-MNIST``, ``root/nmnist`` or ``root``."""
    p = _data_root(root)
    for d in (p / "nmnist_small", p):
        if (d / "labels.txt").is_file():
            return d
    for d in (p / "N-MNIST", p / "nmnist", p):
        if (d / "Train").is_dir() and (d / "Test").is_dir():
            return d
    raise ValueError(f"no N-MNIST copy in {p}: expected {p / 'nmnist_small'}/ (labels.txt and N.bs2 files) "
                     f"or the official layout {p}/Train/ and {p}/Test/ of digit folders holding .bin files")


def nmnist_split_of_sample(n: int) -> str:
    """Split of sample number n of the small copy, and of a Train/ file numbered n in the
    official layout (whose Test/ is the test split): n % 10 == 0 test, == 1 validation."""
    return "test" if n % 10 == 0 else "val" if n % 10 == 1 else "train"


def _official_nmnist(d: Path, split: Split) -> list[tuple[Path, int]]:
    items: list[tuple[int, int, int, Path]] = []  # (Train 0 / Test 1, sample number, digit, file)
    for part in ("Train", "Test"):
        if split != "all" and (part == "Test") != (split == "test"):
            continue
        for digit in range(10):
            sub = d / part / str(digit)
            if not sub.is_dir():
                raise ValueError(f"N-MNIST {d / part} lacks the digit folder {digit}/")
            for f in sorted(sub.glob("*.bin")):
                try:
                    n = int(f.stem)
                except ValueError:
                    raise ValueError(f"{f}: N-MNIST files are named by sample number (00042.bin)") from None
                if part == "Test" or split == "all" or nmnist_split_of_sample(n) == split:
                    items.append((int(part == "Test"), n, digit, f))
    if not items:
        raise ValueError(f"no N-MNIST .bin files for split {split!r} under {d}")
    return [(f, lab) for _, _, lab, f in sorted(items, key=lambda it: (it[0], it[1], it[3].as_posix()))]


def list_nmnist(root: str | Path | None, split: Split) -> list[tuple[Path, int]]:
    """(path, digit) of one split of N-MNIST (small copy or official layout), sorted by sample
    number (official layout: Train/ before Test/)."""
    _check_split(split)
    d = nmnist_dir(root)
    if not (d / "labels.txt").is_file():
        return _official_nmnist(d, split)
    items = []
    for i, line in enumerate((d / "labels.txt").read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 2 or not all(f.isdigit() for f in fields) or int(fields[1]) > 9:
            raise ValueError(f"{d / 'labels.txt'} line {i}: expected 'SAMPLE DIGIT', got {line!r}")
        n, lab = int(fields[0]), int(fields[1])
        f = d / f"{n}.bs2"
        if not f.is_file():
            raise FileNotFoundError(f"{d / 'labels.txt'} lists sample {n} but {f} is missing")
        if split == "all" or nmnist_split_of_sample(n) == split:
            items.append((n, f, lab))
    return [(f, lab) for _, f, lab in sorted(items)]


def read_nmnist(path: str | Path, side: int = NMNIST_SIDE) -> np.ndarray:
    """Events of an N-MNIST binary file (``.bs2`` or the official ``.bin``: the same format):
    structured array with fields x, y, p (0/1), t (microseconds), in file order.

    5 bytes per event: bits 39-32 x, 31-24 y, bit 23 polarity, bits 22-0 timestamp; a record
    with y == 240 is a timestamp overflow marker (later timestamps + 2^13 us), not an event. A
    truncated record, a coordinate outside side x side or a timestamp earlier than the one
    before it is a ValueError naming the file and the event."""
    p = Path(path)
    b = np.fromfile(p, dtype=np.uint8)
    if b.size % 5:
        raise ValueError(f"{p}: {b.size} bytes is not a whole number of 5-byte N-MNIST events "
                         f"(truncated: {b.size % 5} bytes after event {b.size // 5})")
    b = b.reshape(-1, 5).astype(np.uint32)
    t = ((b[:, 2] & 0x7F) << 16) | (b[:, 3] << 8) | b[:, 4]
    # A record with y == 240 is not an event but a timestamp overflow marker: every later
    # timestamp is NMNIST_OVERFLOW_US larger (the format's own rule, as in Orchard's reader).
    marker = b[:, 1] == NMNIST_OVERFLOW_Y
    if marker.any():
        t = t + np.cumsum(marker, dtype=np.uint32) * np.uint32(NMNIST_OVERFLOW_US)
        b, t = b[~marker], t[~marker]
    ev = np.empty(b.shape[0], dtype=NMNIST_DTYPE)
    ev["x"] = b[:, 0]
    ev["y"] = b[:, 1]
    ev["p"] = b[:, 2] >> 7
    ev["t"] = t
    bad = np.flatnonzero((ev["x"] >= side) | (ev["y"] >= side))
    if bad.size:
        k = int(bad[0])
        raise ValueError(f"{p}: event {k} at x {ev['x'][k]}, y {ev['y'][k]} is outside the {side}x{side} sensor "
                         f"({bad.size} such events)")
    back = np.flatnonzero(np.diff(ev["t"].astype(np.int64)) < 0)
    if back.size:
        k = int(back[0]) + 1
        raise ValueError(f"{p}: event {k}'s timestamp {ev['t'][k]} us is earlier than event {k - 1}'s "
                         f"{ev['t'][k - 1]} us (timestamps must not go backwards)")
    return ev


def read_nmnist_bs2(path: str | Path) -> np.ndarray:
    """Events of a small-copy ``.bs2`` file (read_nmnist)."""
    return read_nmnist(path)
