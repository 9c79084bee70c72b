"""Dataset listing, fixed splits and raw readers, on the shared data and on WAVs written here."""
from __future__ import annotations

import hashlib
import wave
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import write_wav

from qsnnkit import data


@pytest.fixture(scope="module")
def root() -> Path:
    r = data.default_data_root()
    if r is None or not r.is_dir():
        pytest.skip(f"no dataset root (set ${data.ENV_ROOT})")
    return r


# --- Speech Commands on the shared copy ---------------------------------------------------


def test_split_counts(root: Path) -> None:
    counts = {s: len(data.list_split(root, s)) for s in ("train", "val", "test", "all")}
    assert counts == {"train": 2817, "val": 672, "test": 372, "all": 3861}


def test_splits_partition_and_no_shared_speaker(root: Path) -> None:
    splits = {s: data.list_split(root, s) for s in ("train", "val", "test")}
    paths = [f for s in splits.values() for f, _ in s]
    assert len(paths) == len(set(paths))
    assert sorted(paths) == sorted(f for f, _ in data.list_split(root, "all"))
    speakers = {s: {data.speaker_id(f, lab) for f, lab in items} for s, items in splits.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        both = speakers[a] & speakers[b]
        assert not both, f"speakers in {a} and {b}: {sorted(both)[:5]}"


def test_labels_follow_folders(root: Path) -> None:
    items = data.list_split(root, "all")
    assert items == sorted(items, key=lambda it: (it[1], it[0].as_posix()))
    for f, lab in items:
        assert data.CLASSES[lab] == f.parent.name, f
    per_class = Counter(lab for _, lab in items)
    assert sorted(per_class) == list(range(12))
    # every class has test examples too
    assert sorted({lab for _, lab in data.list_split(root, "test")}) == list(range(12))


def test_listing_is_deterministic(root: Path) -> None:
    assert data.list_split(root, "val") == data.list_split(str(root), "val")


def test_speaker_ids(root: Path) -> None:
    sc = data.resolve_root(root)
    assert sc.name == data.SHARED_SUBDIR
    assert data.speaker_id(sc / "yes" / "022cd682_nohash_0.wav", 0) == "022cd682"
    assert data.speaker_id(sc / "_unknown_" / "backward_0c540988_nohash_0.wav.wav", data.UNKNOWN) == "0c540988"
    assert data.speaker_id(sc / "_silence_" / "1024.wav", data.SILENCE) == "1024.wav"
    # the README's rule, computed independently
    h = int(hashlib.sha1(b"1024.wav").hexdigest(), 16) % 10
    assert data.split_of_speaker("1024.wav") == {1: "test", 2: "val"}.get(h, "train")
    with pytest.raises(ValueError, match="_nohash_"):
        data.speaker_id(sc / "yes" / "noname.wav", 0)


def test_read_wav_shared(root: Path) -> None:
    f, _ = data.list_split(root, "test")[0]
    x = data.read_wav(f)
    assert x.dtype == np.int16 and x.shape == (16000,)
    with wave.open(str(f)) as w:
        assert np.array_equal(x, np.frombuffer(w.readframes(w.getnframes()), "<i2"))


def test_bad_split_name(root: Path) -> None:
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        data.list_split(root, "validation")  # type: ignore[arg-type]


def test_env_var_root(root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(data.ENV_ROOT, str(root))
    assert len(data.list_split(None, "test")) == 372
    monkeypatch.setenv(data.ENV_ROOT, str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="nope"):
        data.resolve_root(None)


# --- WAV reader errors ----------------------------------------------------------------------


def test_read_wav_rejects(tmp_path: Path) -> None:
    ok = write_wav(tmp_path / "ok.wav", np.array([1, -2, 32767, -32768], np.int16))
    assert data.read_wav(ok).tolist() == [1, -2, 32767, -32768]
    stereo = write_wav(tmp_path / "stereo.wav", np.zeros(8, np.int16), channels=2)
    with pytest.raises(ValueError, match=r"stereo\.wav: 2 channels, expected mono"):
        data.read_wav(stereo)
    eight = write_wav(tmp_path / "eight.wav", np.zeros(8, np.uint8), width=1)
    with pytest.raises(ValueError, match=r"eight\.wav: 8-bit samples, expected 16-bit"):
        data.read_wav(eight)
    slow = write_wav(tmp_path / "slow.wav", np.zeros(8, np.int16), rate=8000)
    with pytest.raises(ValueError, match=r"slow\.wav: 8000 Hz, expected 16000 Hz"):
        data.read_wav(slow)
    assert data.read_wav(slow, rate=8000).shape == (8,)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not a wav file at all")
    with pytest.raises(ValueError, match=r"junk\.wav: not a readable PCM WAV"):
        data.read_wav(junk)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(ok.read_bytes()[:-3])
    with pytest.raises(ValueError, match=r"cut\.wav: truncated"):
        data.read_wav(cut)


# --- root errors and the official full-archive layout ------------------------------------


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.resolve_root(tmp_path / "absent")


def test_root_without_layout(tmp_path: Path) -> None:
    (tmp_path / "something").mkdir()
    with pytest.raises(ValueError, match="no Speech Commands layout.*yes/, no/"):
        data.resolve_root(tmp_path)


def _make_full_archive(base: Path, words: tuple[str, ...] = data.WORDS) -> None:
    z = np.zeros(16000, np.int16)
    for w in words:
        write_wav(base / w / "aaaa0001_nohash_0.wav", z)
        write_wav(base / w / "bbbb0002_nohash_1.wav", z)
    write_wav(base / "bed" / "cccc0003_nohash_0.wav", z)
    write_wav(base / "marvin" / "aaaa0001_nohash_0.wav", z)
    write_wav(base / data.BACKGROUND / "white_noise.wav", z)


def test_partial_or_empty_class_folders(tmp_path: Path) -> None:
    _make_full_archive(tmp_path, words=data.WORDS[:-1])
    with pytest.raises(ValueError, match="lacks the class folders go/"):
        data.resolve_root(tmp_path)
    (tmp_path / "go").mkdir()
    with pytest.raises(ValueError, match=r"go holds no \.wav files"):
        data.resolve_root(tmp_path)


def test_full_archive_layout(tmp_path: Path) -> None:
    _make_full_archive(tmp_path)
    with pytest.raises(ValueError, match="no _silence_/ folder"):
        data.list_split(tmp_path, "all")
    items = data.list_split(tmp_path, "all", allow_missing_silence=True)
    assert len(items) == 2 * 10 + 2
    unk = [f for f, lab in items if lab == data.UNKNOWN]
    assert [f.parent.name for f in unk] == ["bed", "marvin"]
    assert not any(data.BACKGROUND in f.parts for f, _ in items)
    for f, lab in items:
        spk = f.name.split("_nohash_")[0]
        assert data.speaker_id(f, lab) == spk
    # a _silence_ folder of cuts is used when present
    write_wav(tmp_path / "_silence_" / "0.wav", np.zeros(16000, np.int16))
    items = data.list_split(tmp_path, "all")
    assert [lab for _, lab in items].count(data.SILENCE) == 1
    # splits still partition it
    parts = [data.list_split(tmp_path, s) for s in ("train", "val", "test")]
    assert sorted(sum(parts, [])) == sorted(items)


# --- FSDD and N-MNIST -----------------------------------------------------------------------


def test_fsdd(root: Path) -> None:
    counts = {s: len(data.list_fsdd(root, s)) for s in ("train", "val", "test")}
    assert counts == {"train": 2400, "val": 300, "test": 300}
    for f, digit in data.list_fsdd(root, "test"):
        d, _, idx = f.name[:-4].split("_")
        assert int(d) == digit and int(idx) <= 4
    for f, _ in data.list_fsdd(root, "val"):
        assert 5 <= int(f.name[:-4].split("_")[2]) <= 9
    f, _ = data.list_fsdd(root, "train")[0]
    assert data.read_wav(f, rate=data.FSDD_RATE).dtype == np.int16
    with pytest.raises(ValueError, match="8000 Hz, expected 16000"):
        data.read_wav(f)


def test_fsdd_clip_rule(root: Path) -> None:
    """8 kHz recordings become 1 s clips at 16 kHz: twice the samples, centred or cut centred."""
    from qsnnkit import audio

    short = np.arange(1, 7, dtype=np.int16)
    assert audio.centre_clip(short, 10).tolist() == [0, 0, 1, 2, 3, 4, 5, 6, 0, 0]
    assert audio.centre_clip(np.arange(13), 10).tolist() == list(range(1, 11))
    lengths = {f: data.read_wav(f, rate=data.FSDD_RATE).size for f, _ in data.list_fsdd(root, "test")}
    short_f = min(lengths, key=lambda f: lengths[f])
    long_f = max(lengths, key=lambda f: lengths[f])
    assert lengths[short_f] < 8000 < lengths[long_f]  # the shared copy has both kinds
    # band-limited: nothing of a 3 kHz tone leaks to its linear-interpolation image at 5 kHz
    t = np.arange(8000) / 8000.0
    tone = audio.to_16k(8000 * np.sin(2 * np.pi * 3000 * t), 8000).astype(np.float64)
    spec = np.abs(np.fft.rfft(tone[2000:-2000] * np.hanning(12000)))
    hz = np.fft.rfftfreq(12000, 1 / 16000)
    assert spec[np.argmin(np.abs(hz - 5000))] < 1e-3 * spec[np.argmin(np.abs(hz - 3000))]
    for f in (short_f, long_f):
        up = audio.to_16k(data.read_wav(f, rate=data.FSDD_RATE).astype(np.float64), data.FSDD_RATE)
        assert up.size == 2 * lengths[f]
        clip = data.read_fsdd_clip(f)
        assert clip.dtype == np.int16 and clip.shape == (16000,)
        if up.size < 16000:  # centred in zeros
            a = (16000 - up.size) // 2
            assert np.array_equal(clip[a:a + up.size], up) and not clip[:a].any() and not clip[a + up.size:].any()
        else:  # its centred second
            a = (up.size - 16000) // 2
            assert np.array_equal(clip, up[a:a + 16000])


def test_nmnist(root: Path) -> None:
    counts = {s: len(data.list_nmnist(root, s)) for s in ("train", "val", "test")}
    assert counts == {"train": 800, "val": 100, "test": 100}
    assert all(int(f.stem) % 10 == 0 for f, _ in data.list_nmnist(root, "test"))
    assert all(int(f.stem) % 10 == 1 for f, _ in data.list_nmnist(root, "val"))
    items = data.list_nmnist(root, "all")
    assert items[0][0].name == "1.bs2" and items[0][1] == 5  # labels.txt: sample 1 -> 5
    ev = data.read_nmnist_bs2(items[0][0])
    # first event bytes 12 10 80 03 7d: x=18, y=16, p=1, t=0x00037d
    assert ev[0].tolist() == (18, 16, 1, 0x37D)
    assert ev.dtype == data.NMNIST_DTYPE and len(ev) == items[0][0].stat().st_size // 5
    assert ev["x"].max() < 34 and ev["y"].max() < 34 and set(np.unique(ev["p"]).tolist()) <= {0, 1}
    assert np.all(np.diff(ev["t"].astype(np.int64)) >= 0)


def test_nmnist_bad_size(tmp_path: Path) -> None:
    bad = tmp_path / "1.bs2"
    bad.write_bytes(bytes(7))
    with pytest.raises(ValueError, match="7 bytes is not a whole number"):
        data.read_nmnist_bs2(bad)
    ev = tmp_path / "2.bs2"
    ev.write_bytes(bytes([33, 2, 0xFF, 0xFF, 0xFF]))
    assert data.read_nmnist_bs2(ev)[0].tolist() == (33, 2, 1, (1 << 23) - 1)


def _encode_events(ev: list[tuple[int, int, int, int]]) -> bytes:
    return b"".join(bytes([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF]) for x, y, p, t in ev)


def test_nmnist_official_layout_on_a_miniature_tree(tmp_path: Path) -> None:
    """Train/ and Test/ of digit folders of .bin files (the official archive): Train/ sample n
    is validation when n % 10 == 1, Test/ is the test split; same 5-byte events."""
    root = tmp_path / "N-MNIST"
    made = {}
    for part, numbers in (("Train", [1, 2, 11, 23]), ("Test", [5, 7])):
        for digit in range(10):
            (root / part / str(digit)).mkdir(parents=True)
        for i, n in enumerate(numbers):
            digit = (n + i) % 10
            f = root / part / str(digit) / f"{n:05d}.bin"
            f.write_bytes(_encode_events([(1, 2, 0, 10), (33, 33, 1, 10 + n)]))
            made[(part, n)] = digit
    assert data.nmnist_dir(tmp_path) == root and data.nmnist_dir(root) == root
    got = {s: [(f.parent.parent.name, int(f.stem), lab) for f, lab in data.list_nmnist(tmp_path, s)]
           for s in ("train", "val", "test", "all")}
    assert got["train"] == [("Train", 2, made[("Train", 2)]), ("Train", 23, made[("Train", 23)])]
    assert got["val"] == [("Train", 1, made[("Train", 1)]), ("Train", 11, made[("Train", 11)])]
    assert got["test"] == [("Test", 5, made[("Test", 5)]), ("Test", 7, made[("Test", 7)])]
    assert len(got["all"]) == 6 and got["all"][-1][0] == "Test"
    ev = data.read_nmnist(data.list_nmnist(tmp_path, "test")[0][0])
    assert ev.tolist() == [(1, 2, 0, 10), (33, 33, 1, 15)]
    (root / "Test" / "3").rmdir()
    with pytest.raises(ValueError, match="lacks the digit folder 3"):
        data.list_nmnist(tmp_path, "test")
    with pytest.raises(ValueError, match="no N-MNIST copy"):
        data.nmnist_dir(tmp_path / "N-MNIST" / "Train")


@pytest.mark.parametrize("events,extra,msg", [
    ([(1, 1, 0, 5)], b"\x01\x02", r"7 bytes is not a whole number .*truncated: 2 bytes after event 1"),
    ([(1, 1, 0, 5), (34, 3, 1, 6)], b"", r"event 1 at x 34, y 3 is outside the 34x34 sensor"),
    ([(1, 40, 0, 5)], b"", r"event 0 at x 1, y 40 is outside"),
    ([(1, 1, 0, 500), (2, 2, 0, 600), (3, 3, 1, 599)], b"", r"event 2's timestamp 599 us is earlier than event 1's 600"),
])
def test_malformed_nmnist_files_are_refused_naming_the_event(tmp_path: Path, events: list[tuple[int, int, int, int]],
                                                             extra: bytes, msg: str) -> None:
    f = tmp_path / "00001.bin"
    f.write_bytes(_encode_events(events) + extra)
    with pytest.raises(ValueError, match=msg):
        data.read_nmnist(f)


def test_nmnist_timestamp_overflow_markers_are_applied_not_read_as_events(tmp_path: Path) -> None:
    f = tmp_path / "00003.bin"
    f.write_bytes(_encode_events([(1, 1, 0, 8000), (0, 240, 0, 0), (2, 2, 1, 5), (0, 240, 0, 0), (3, 3, 0, 7)]))
    ev = data.read_nmnist(f)
    assert ev.tolist() == [(1, 1, 0, 8000), (2, 2, 1, 5 + 8192), (3, 3, 0, 7 + 2 * 8192)]


def test_nmnist_labels_file_errors(tmp_path: Path) -> None:
    d = tmp_path / "nmnist_small"
    d.mkdir()
    (d / "labels.txt").write_text("1 5\n2 x\n")
    (d / "1.bs2").write_bytes(b"")
    with pytest.raises(ValueError, match="line 2: expected 'SAMPLE DIGIT'"):
        data.list_nmnist(tmp_path, "all")


def _speakers_by_split(n: int = 3) -> dict[str, list[str]]:
    """n 8-hex speaker ids per split of the data README's hash rule."""
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    k = 0
    while min(len(v) for v in out.values()) < n:
        spk = f"{k:08x}"
        s = data.split_of_speaker(spk)
        if len(out[s]) < n:
            out[s].append(spk)
        k += 1
    return out


def _make_miniature_archive(base: Path) -> dict[str, list[str]]:
    """The full archive's layout in miniature: 10 word folders (3 speakers per split, 2 takes
    each), 4 other words, 2 background recordings of 20 s and 30 s (different levels), the
    official lists naming some clips."""
    spk = _speakers_by_split()
    rng = np.random.default_rng(0)
    for w in data.WORDS + ("bed", "bird", "marvin", "wow"):
        for s in ("train", "val", "test"):
            for sp in spk[s]:
                for take in (0, 1):
                    write_wav(base / w / f"{sp}_nohash_{take}.wav", rng.integers(-99, 99, 16000).astype(np.int16))
    write_wav(base / data.BACKGROUND / "a_noise.wav", rng.integers(-1000, 1000, 20 * 16000).astype(np.int16))
    write_wav(base / data.BACKGROUND / "b_noise.wav", rng.integers(-50, 50, 30 * 16000).astype(np.int16))
    (base / data.BACKGROUND / "README.md").write_text("not a recording\n")
    (base / "validation_list.txt").write_text(f"yes/{spk['train'][0]}_nohash_0.wav\nbed/{spk['test'][0]}_nohash_1.wav\n")
    (base / "testing_list.txt").write_text(f"no/{spk['val'][1]}_nohash_0.wav\n")
    return spk


def test_full_archive_becomes_the_12_class_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 14: the full official archive, as TensorFlow's speech_commands example makes it:
    per split, _unknown_ a seeded 10% sample of the other words, _silence_ 10% of 1 s cuts of
    the background recordings from the split's own part of each (written into the cache, not
    the dataset), speaker-hash splits by default and the official lists as an option."""
    monkeypatch.setenv("QSNN_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "speech_commands_v0.02"
    spk = _make_miniature_archive(root)
    before = sorted(q.relative_to(root) for q in root.rglob("*"))
    opt = data.ArchiveOptions()
    parts = {s: data.list_split(root, s, archive=opt) for s in ("train", "val", "test")}
    for s, items in parts.items():
        known = [f for f, lab in items if lab < data.UNKNOWN]
        assert len(known) == 10 * 3 * 2  # every known-word clip of the split's speakers
        assert {data.speaker_id(f, lab) for f, lab in items if lab <= data.UNKNOWN} == set(spk[s])
        unk = [f for f, lab in items if lab == data.UNKNOWN]
        sil = [f for f, lab in items if lab == data.SILENCE]
        assert len(unk) == len(sil) == 6  # ceil(60 * 10 / 100)
        assert all(f.parent.name in ("bed", "bird", "marvin", "wow") for f in unk)
        assert all(len(data.read_wav(f)) == 16000 and str(tmp_path / "cache") in str(f) for f in sil)
    # the cuts come from the split's own part of each recording: match each cut to its source
    recs = {n: data.read_wav(root / data.BACKGROUND / n) for n in ("a_noise.wav", "b_noise.wav")}
    for s, (a, b) in data.BACKGROUND_SPANS.items():
        for k, (f, lab) in enumerate(x for x in parts[s] if x[1] == data.SILENCE):
            x = recs["a_noise.wav" if k % 2 == 0 else "b_noise.wav"]
            cut = data.read_wav(f)
            hits = [i for i in range(len(x) - 16000 + 1) if x[i] == cut[0] and np.array_equal(x[i:i + 16000], cut)]
            assert hits and a * len(x) <= hits[0] and hits[0] + 16000 <= b * len(x), (s, k, hits)
    # seeded and stable; another seed draws other unknown clips and cuts
    assert data.list_split(root, "val", archive=opt) == parts["val"]
    other = data.list_split(root, "train", archive=data.ArchiveOptions(seed=1))
    assert [f for f, lab in other if lab == data.UNKNOWN] != [f for f, lab in parts["train"] if lab == data.UNKNOWN]
    # every unknown clip when asked; "all" is the union of the splits
    every = data.list_split(root, "test", archive=data.ArchiveOptions(unknown_percent=None))
    assert sum(lab == data.UNKNOWN for _, lab in every) == 4 * 3 * 2
    assert sorted(data.list_split(root, "all", archive=opt)) == sorted(sum(parts.values(), []))
    # the official lists: the named clips move, every other clip is train
    off = {s: data.list_split(root, s, archive=data.ArchiveOptions(split_rule="official", unknown_percent=None))
           for s in ("train", "val", "test")}
    names = lambda items: sorted(f.relative_to(root).as_posix() for f, lab in items if lab != data.SILENCE)  # noqa: E731
    assert names(off["val"]) == sorted([f"yes/{spk['train'][0]}_nohash_0.wav", f"bed/{spk['test'][0]}_nohash_1.wav"])
    assert names(off["test"]) == [f"no/{spk['val'][1]}_nohash_0.wav"]
    assert len(names(off["train"])) == 14 * 9 * 2 - 3
    # the dataset folder is left as it was
    assert sorted(q.relative_to(root) for q in root.rglob("*")) == before
    # clear errors
    with pytest.raises(ValueError, match="unknown split rule"):
        data.ArchiveOptions(split_rule="hash")
    (root / "testing_list.txt").unlink()
    with pytest.raises(ValueError, match="needs the archive's testing_list.txt"):
        data.list_split(root, "test", archive=data.ArchiveOptions(split_rule="official"))
    with pytest.raises(ValueError, match="12-class test set's layout"):
        data.list_split(None, "test", archive=data.ArchiveOptions(split_rule="official"))
    assert data.list_split(None, "test", archive=opt) == data.list_split(None, "test")  # no effect there
