"""The host C code under every compiler, optimisation level and sanitizer of the matrix:
gcc and clang at -O0, -Os and -O2, and both at -O1 with AddressSanitizer + UBSan
(-fno-sanitize-recover=all: the first report fails the run). Each build of the core, the
front end and the frame receiver (tests/c/matrix_main.c) must give exactly the reference's
numbers: features equal to the host library's front end, per-class outputs of the fast and
the reference kernels equal to the Python integer reference, frames and receive errors equal
to the Python receiver's. Models: the committed default (real test clips and extreme audio),
a random convolutional model, and the overflow proof's edge models (every range at its limit)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from qsnnkit import protocol, reference
from qsnnkit.convert import codegen
from qsnnkit.dataset import features, load_split
from qsnnkit.model import ConvertedModel, load_converted
from qsnnkit.paths import QSNN_INCLUDE_DIR, QSNN_SRC_DIR, REPO_ROOT
from qsnnkit.spec import CLIP_LEN, MAX_STEPS

from conftest import DEFAULT_MODEL, Split3
from test_bounds import _edge_cases
from test_core import _random_conv_model, first_mismatch

SAN = ["-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"]
VARIANTS: dict[str, tuple[str, list[str]]] = {
    **{f"{cc}{o}": (cc, [o]) for cc in ("gcc", "clang") for o in ("-O0", "-Os", "-O2")},
    "gcc-asan-ubsan": ("gcc", SAN), "clang-asan-ubsan": ("clang", SAN),
}
FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]
FW = REPO_ROOT / "firmware"
CORE_SRCS = [*sorted(QSNN_SRC_DIR.glob("*.c")), FW / "src" / "proto.c"]
DRIVER = REPO_ROOT / "tests" / "c" / "matrix_main.c"


def _models(tmp: Path) -> dict[str, ConvertedModel]:
    rng = np.random.default_rng(11)
    models = {"default": load_converted(DEFAULT_MODEL),
              "conv": _random_conv_model(rng, [(6, 5, 5, 2, 8), (8, 3, 5, 2, 1)], [(24, 1, True)], 4),
              "conv-adapt": _random_conv_model(rng, [(6, 5, 5, 2, 8), (8, 3, 5, 2, 1)], [(24, 1, True), (13, 4, True)],
                                               4, adapt=True)}
    for name, edge, _, _ in _edge_cases():
        models[f"edge-{name}"] = edge
    return models


#: (variant, kind) -> its build folder
Builds = dict[tuple[str, str], Path]


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    """(variant, model) -> executable; the core's objects are compiled once per variant."""
    tmp = tmp_path_factory.mktemp("matrix")
    models = _models(tmp)
    model_dirs = {}
    for name, m in models.items():
        d = tmp / "models" / name
        codegen.emit(m, d)
        model_dirs[name] = d
    out: dict[tuple[str, str], Path] = {}
    for variant, (cc, opt) in VARIANTS.items():
        assert shutil.which(cc), f"{cc} is not installed (scripts/setup.sh installs gcc and clang)"
        vd = tmp / variant
        vd.mkdir()
        inc = ["-I", str(QSNN_INCLUDE_DIR), "-I", str(FW / "src"), "-I", str(FW / "include")]
        objs = []
        for src in CORE_SRCS:
            o = vd / (src.stem + ".o")
            subprocess.run([cc, *FLAGS, *opt, *inc, "-c", str(src), "-o", str(o)], check=True)
            objs.append(str(o))
        for name, md in model_dirs.items():
            exe = vd / f"matrix_{name}"
            subprocess.run([cc, *FLAGS, *opt, *inc, "-I", str(md), str(DRIVER), str(md / "qsnn_model.c"), *objs,
                            "-o", str(exe)], check=True)
            out[(variant, name)] = exe
    return out


def _run(exe: Path, mode: str, data: bytes, tmp: Path) -> bytes:
    src, dst = tmp / f"{exe.name}.in", tmp / f"{exe.name}.out"
    src.write_bytes(data)
    r = subprocess.run([str(exe), mode, str(src), str(dst)], capture_output=True, text=True, timeout=600,
                       env={"ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0", "UBSAN_OPTIONS": "print_stacktrace=1"})
    assert r.returncode == 0, f"{exe} {mode}: exit {r.returncode}\n{r.stderr[-3000:]}"
    return dst.read_bytes()


def _audio_inputs(test_split: Split3) -> np.ndarray:
    pcm = test_split[0][:: max(1, len(test_split[0]) // 12)][:12]
    t = np.arange(CLIP_LEN)
    extremes = np.stack([np.zeros(CLIP_LEN), np.where((t // 40) % 2, 32767, -32768), np.full(CLIP_LEN, -32768),
                         np.clip(np.round(32767 * np.sin(2 * np.pi * 1000 * t / 16000) * 3), -32768, 32767)])
    return np.concatenate([pcm, extremes.astype(np.int16)])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_default_model_from_audio_is_exact(variant: str, builds: Builds, test_split: Split3, tmp_path: Path) -> None:
    m = load_converted(DEFAULT_MODEL)
    pcm = _audio_inputs(test_split)
    feats = features(pcm, cache=False)
    ref, _ = reference.run_batch(m, feats)
    raw = _run(builds[(variant, "default")], "pcm",
               np.array([len(pcm), CLIP_LEN], "<u4").tobytes() + pcm.astype("<i2").tobytes(), tmp_path)
    per = feats[0].size + 2 * 4 * m.n_classes
    assert len(raw) == per * len(pcm)
    for i in range(len(pcm)):
        rec = raw[i * per:(i + 1) * per]
        f = np.frombuffer(rec[:feats[0].size], np.uint8).reshape(feats[0].shape)
        assert np.array_equal(f, feats[i]), f"{variant} clip {i} features: " + first_mismatch(f, feats[i])
        outs = np.frombuffer(rec[feats[0].size:], "<i4").reshape(2, m.n_classes)
        for k, kernel in enumerate(("fast", "ref")):
            assert np.array_equal(outs[k], ref[i]), f"{variant} clip {i} {kernel}: " + first_mismatch(outs[k], ref[i])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_conv_and_edge_models_are_exact(variant: str, builds: Builds, tmp_path: Path) -> None:
    models = _models(tmp_path)
    for name, m in models.items():
        if name == "default":
            continue
        rng = np.random.default_rng(len(name))
        steps = MAX_STEPS
        feats = np.concatenate([np.full((1, steps, m.n_bands), 255, np.uint8), np.zeros((1, steps, m.n_bands), np.uint8),
                                rng.integers(0, 256, size=(3, steps, m.n_bands)).astype(np.uint8)])
        ref, _ = reference.run_batch(m, feats)
        raw = _run(builds[(variant, name)], "feat", np.array([len(feats), steps], "<u4").tobytes() + feats.tobytes(),
                   tmp_path)
        outs = np.frombuffer(raw, "<i4").reshape(len(feats), 2, m.n_classes)
        for i in range(len(feats)):
            for k, kernel in enumerate(("fast", "ref")):
                assert np.array_equal(outs[i, k], ref[i]), f"{variant} {name} clip {i} {kernel}: " + \
                    first_mismatch(outs[i, k], ref[i])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_frame_receiver_matches_host(variant: str, builds: Builds, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    corpus = REPO_ROOT / "tests" / "fuzz" / "corpus" / "frame"
    stream = b"".join(f.read_bytes() for f in sorted(corpus.iterdir()))
    noise = bytes(rng.integers(0, 256, size=4000).astype(np.uint8))
    frames = b"".join(protocol.encode_frame(int(rng.integers(256)), i, bytes(rng.integers(0, 256, size=i * 7)
                                                                              .astype(np.uint8))) for i in range(40))
    data = stream + noise + b"\x00" + frames
    expected = bytearray()
    for item in protocol.FrameReader().feed(data):
        if isinstance(item, protocol.Frame):
            expected += bytes([ord("F"), item.type, item.seq]) + len(item.payload).to_bytes(2, "little") + item.payload
        else:
            expected += bytes([ord("E"), int(item.code)])
    got = _run(builds[(variant, "default")], "proto", data, tmp_path)
    assert got == bytes(expected), f"{variant}: receiver events differ from the host's at byte " \
        f"{next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b) if got[:len(expected)] != expected[:len(got)] else min(len(got), len(expected))}"
