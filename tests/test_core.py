"""The numeric contract, and exact three-way agreement of the committed keyword models (the
binary default and the 4-bit-hidden-weight kws_w4): PyTorch evaluation forward == Python
integer reference == C core (both kernels), on every clip of the test split, per time step for
membranes and spikes."""
from __future__ import annotations

import ctypes as ct
import subprocess
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from qsnnkit import clib
from qsnnkit.ccore import CCore
from qsnnkit import packing, reference
from qsnnkit.convert import codegen
from qsnnkit.model import ConvertedModel, load_converted
from qsnnkit.spec import FORMAT_VERSION, FRAC_BITS
from qsnnkit.paths import QSNN_INCLUDE_DIR, REPO_ROOT
from qsnnkit.train import quant
from qsnnkit.train.model import QSNN, ForwardOut

from conftest import DEFAULT_MODEL, Split3

HERE = Path(__file__).parent


def first_mismatch(a: np.ndarray, b: np.ndarray) -> str:
    idx = tuple(int(i) for i in np.argwhere(a != b)[0])
    return f"first mismatch at {idx}: {a[idx]} vs {b[idx]}"


def assert_core_equals_reference(core: CCore, feats: np.ndarray, ref: np.ndarray, tr: reference.Trace,
                                  name: str) -> None:
    """The C core (its kernels as built) == integer reference on every clip of feats: per-class
    outputs, then per layer and step the stored membranes and the spikes; the first mismatch is
    printed."""
    for i in range(len(feats)):
        out, mems, spks = core.run_clip(feats[i], trace=True)
        assert np.array_equal(out, ref[i]), f"{name}, clip {i}: " + first_mismatch(out, ref[i])
        for li in range(len(tr.spk)):
            assert np.array_equal(mems[li], tr.mem[li][i]), \
                f"{name}, clip {i}, layer {li} membranes: " + first_mismatch(mems[li], tr.mem[li][i])
            assert np.array_equal(spks[li], tr.spk[li][i]), \
                f"{name}, clip {i}, layer {li} spikes: " + first_mismatch(spks[li], tr.spk[li][i])


def assert_torch_equals_reference(o: ForwardOut, cm: ConvertedModel, ref: np.ndarray, tr: reference.Trace) -> None:
    """PyTorch evaluation forward (traced) == integer reference: outputs, then per layer and
    step the stored membranes and the spikes; the first mismatch is printed."""
    t_out = o.logits_sum.numpy() / 2.0**cm.readout_exp
    assert np.array_equal(t_out, ref), first_mismatch(t_out, ref)
    for li in range(len(cm.layers)):
        tm = o.trace_mem[li].numpy().astype(np.int64)
        assert np.array_equal(tm, tr.mem[li].astype(np.int64)), f"layer {li} membranes: " + first_mismatch(tm, tr.mem[li])
        ts = o.trace_spk[li].numpy().astype(np.uint8)
        assert np.array_equal(ts, tr.spk[li]), f"layer {li} spikes: " + first_mismatch(ts, tr.spk[li])


@pytest.fixture(scope="module")
def contract_exe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    exe = tmp_path_factory.mktemp("contract") / "contract_main"
    subprocess.run(["cc", *clib.STRICT_CFLAGS, "-I", str(QSNN_INCLUDE_DIR), str(HERE / "c" / "contract_main.c"),
                    "-o", str(exe)], check=True)
    return exe


def run_c(exe: Path, lines: list[str]) -> list[str]:
    res = subprocess.run([str(exe)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    return res.stdout.split("\n")[: len(lines)]


def test_scale_rounds_half_up_in_c_python_and_torch(contract_exe: Path) -> None:
    accs = list(range(-300, 301)) + [2**22 - 1, -(2**22), 123456, -123457]
    shifts = list(range(-6, 24))
    cases = list(product(accs, shifts))
    c_out = np.array([int(x) for x in run_c(contract_exe, [f"S {a} {s}" for a, s in cases])])
    acc = np.array([a for a, _ in cases])
    sh = np.array([s for _, s in cases])
    py = reference.scale(acc, sh)
    assert np.array_equal(c_out, py), first_mismatch(c_out, py)
    # the definition itself: floor(acc / 2^sh + 1/2), exact in float64 here
    want = np.floor(acc / 2.0**sh + 0.5).astype(np.int64)
    assert np.array_equal(py, want), first_mismatch(py, want)
    # PyTorch: the quantizer puts acc * 2^-sh on the fine grid with the same rounding
    x = torch.tensor(acc * 2.0 ** (-sh - FRAC_BITS), dtype=torch.float32)
    t = (quant.to_fine_grid(x) * 2**FRAC_BITS).to(torch.int64).numpy()
    ok = np.abs(acc) < 2**23  # the float32-exact domain the converter enforces
    assert np.array_equal(t[ok], want[ok]), first_mismatch(t[ok], want[ok])
    # -2.5 -> -2, 2.5 -> 3: half goes up, not to even and not away from zero
    assert reference.scale(np.array([-5, 5, -3, 3]), np.array([1, 1, 1, 1])).tolist() == [-2, 3, -1, 2]


@pytest.mark.parametrize("mem_bits", [2, 4, 8])
def test_lif_step_c_python_torch_exhaustive(contract_exe: Path, mem_bits: int) -> None:
    ms = FRAC_BITS - mem_bits + 1
    vs = range(-(1 << (mem_bits - 1)), 1 << (mem_bits - 1))
    currents = list(range(-700, 701, 3)) + [255, 256, 257, 32767, -32768, 128, 127]
    leaks = range(1, ms + 1)
    cases = list(product(vs, currents, leaks))
    out = run_c(contract_exe, [f"L {v} {c} {k} {mem_bits}" for v, c, k in cases])
    c_spk = np.array([int(o.split()[0]) for o in out])
    c_v = np.array([int(o.split()[1]) for o in out])
    v = np.array([x[0] for x in cases])
    c = np.array([x[1] for x in cases])
    for k in leaks:
        sel = np.array([x[2] == k for x in cases])
        pv, ps = reference.lif_step(v[sel], c[sel], k, mem_bits)
        assert np.array_equal(c_v[sel], pv), first_mismatch(c_v[sel], pv)
        assert np.array_equal(c_spk[sel], ps.astype(int)), first_mismatch(c_spk[sel], ps.astype(int))
        # PyTorch's step, as train/model.py does it (charge, fire, reset, store)
        u = torch.tensor(v[sel] / 2.0 ** (mem_bits - 1), dtype=torch.float32)
        cur = torch.tensor(c[sel] / 2.0**FRAC_BITS, dtype=torch.float32)
        un, s = quant.lif_step(u, cur, k, mem_bits)  # what train/model.py runs
        tv = (un * 2 ** (mem_bits - 1)).to(torch.int64).numpy()
        assert np.array_equal(tv, pv), first_mismatch(tv, pv)
        assert np.array_equal(s.numpy().astype(int), ps.astype(int))
    # threshold equality: exactly THETA does not fire, THETA + 1 does
    v0 = np.zeros(2, np.int64)
    _, s_ref = reference.lif_step(v0, np.array([256, 257]), 1, mem_bits)
    assert s_ref.tolist() == [False, True]


def test_adapt_step_c_python_torch_exhaustive(contract_exe: Path) -> None:
    """Adaptive LIF's state update and current (contract section 5) for every state, spike,
    shift and a spread of betas: C, the reference and PyTorch's training step agree, and the
    update is a - ceil(a / 2^shift) + beta * s saturated to 0..ADAPT_MAX."""
    from qsnnkit.spec import ADAPT_FRAC, ADAPT_MAX, ADAPT_SHIFT_MAX, ADAPT_SHIFT_MIN

    shifts = range(ADAPT_SHIFT_MIN, ADAPT_SHIFT_MAX + 1)
    cases = list(product(range(ADAPT_MAX + 1), (0, 1), shifts, (1, 8, 77, 255)))
    out = run_c(contract_exe, [f"A {a} {sp} {k} {b}" for a, sp, k, b in cases])
    c_a = np.array([int(o.split()[0]) for o in out])
    c_cur = np.array([int(o.split()[1]) for o in out])
    a, sp, k, b = (np.array(col) for col in zip(*cases))
    assert np.array_equal(c_cur, a << (FRAC_BITS - ADAPT_FRAC))
    want = np.clip(a - np.ceil(a / 2.0**k).astype(np.int64) + b * sp, 0, ADAPT_MAX)
    for shift in shifts:
        for beta in (1, 8, 77, 255):
            sel = (k == shift) & (b == beta)
            py = reference.adapt_step(a[sel], sp[sel], shift, beta)
            assert np.array_equal(py, want[sel]), first_mismatch(py, want[sel])
            assert np.array_equal(c_a[sel], py), first_mismatch(c_a[sel], py)
            t = quant.adapt_step(torch.tensor(a[sel] / 2.0**ADAPT_FRAC, dtype=torch.float32),
                                 torch.tensor(sp[sel], dtype=torch.float32), shift, beta / 2.0**ADAPT_FRAC)
            tv = (t * 2**ADAPT_FRAC).to(torch.int64).numpy()
            assert np.array_equal(tv, py), first_mismatch(tv, py)
    # a state decays all the way to 0 (the ceiling), and the largest state saturates
    assert reference.adapt_step(np.array([1, 255]), np.array([0, 1]), 8, 255).tolist() == [0, 255]


@pytest.fixture(scope="module")
def default_model() -> ConvertedModel:
    return load_converted(DEFAULT_MODEL)


#: the committed keyword models whose checkpoint, integer model and C sources are held together:
#: the binary default and the wider one (4-bit hidden weights, bit-plane column kernels)
KWS_MODEL_DIRS = {"default": DEFAULT_MODEL.parent, "kws_w4": DEFAULT_MODEL.parent.parent / "kws_w4"}


@pytest.fixture(scope="module", params=sorted(KWS_MODEL_DIRS))
def kws_model_dir(request: pytest.FixtureRequest) -> Path:
    return KWS_MODEL_DIRS[request.param]


def test_committed_kws_model_three_way_exact_on_whole_test_split(kws_model_dir: Path, test_split: Split3) -> None:
    model = load_converted(kws_model_dir / "model.npz")
    _, feats, labels = test_split
    ref, tr = reference.run_batch(model, feats, trace=True)
    assert tr is not None
    # PyTorch evaluation forward of the committed checkpoint the model was converted from
    tmodel = committed_checkpoint(kws_model_dir)
    with torch.no_grad():
        o = tmodel(torch.from_numpy(feats), trace=True)
    assert_torch_equals_reference(o, model, ref, tr)
    # C core, both kernels, per step
    for kernel in ("ref", "fast"):
        assert_core_equals_reference(CCore(model, kernel), feats, ref, tr, f"{kernel} kernel")
    acc = float((reference.predict(ref) == labels).mean())
    print(f"{kws_model_dir.name} model: test accuracy {acc:.4f} on {len(labels)} clips")


def committed_checkpoint(model_dir: Path) -> QSNN:
    from qsnnkit.train.checkpoint import load

    model, _ = load(model_dir / "model.safetensors")
    return model


def test_committed_checkpoint_converts_to_committed_model(kws_model_dir: Path) -> None:
    from qsnnkit.convert.integerize import integerize
    from qsnnkit.train.checkpoint import load

    model, meta = load(kws_model_dir / "model.safetensors")
    cm = integerize(model, list(meta["classes"]))
    assert cm.hash_hex == load_converted(kws_model_dir / "model.npz").hash_hex


def test_generated_sources_match_committed_model(kws_model_dir: Path, tmp_path: Path) -> None:
    codegen.emit(load_converted(kws_model_dir / "model.npz"), tmp_path)
    for name in ("qsnn_model.h", "qsnn_model.c"):
        committed = (kws_model_dir / name).read_text()
        assert (tmp_path / name).read_text() == committed, \
            f"{kws_model_dir.name}/{name} is stale: regenerate with qsnn-convert"


def test_conv_column_rows_sizes_the_bit_plane_conv_sums(test_split: Split3, monkeypatch: pytest.MonkeyPatch) -> None:
    """The firmware build sizes CONV_BN_COLUMN's per-channel sums on the stack to its model's
    widest such layer (qsnn_model.h's QSNN_MODEL_CONV_COLUMN_ROWS -> -DQSNN_CONV_COLUMN_ROWS):
    a core built at kws_w4's 64 channels runs its conv layer on that kernel, equal to the
    reference; a core built below the layer's width never runs it there (AUTO falls back, a
    pinned choice is refused) rather than overrun the sums."""
    w4 = KWS_MODEL_DIRS["kws_w4"]
    assert "#define QSNN_MODEL_CONV_COLUMN_ROWS 64u" in (w4 / "qsnn_model.h").read_text()
    assert "#define QSNN_MODEL_CONV_COLUMN_ROWS 0u" in (DEFAULT_MODEL.parent / "qsnn_model.h").read_text()
    model = load_converted(w4 / "model.npz")
    _, feats, _ = test_split
    n = 24
    ref, _ = reference.run_batch(model, feats[:n])
    for rows in (64, 32):
        lib = ct.CDLL(str(clib.build_shared([f"-DQSNN_CONV_COLUMN_ROWS={rows}u"])))
        monkeypatch.setattr(clib, "load", lambda lib=lib: lib)
        core = CCore(model)
        if rows >= model.layers[1].rows:
            assert core.layer_kernels()[1] == "CONV_BN_COLUMN"
        else:
            assert core.layer_kernels()[1] == "CONV_EVENT"
            with pytest.raises(ValueError, match="cannot run layer 1"):
                CCore(model, kernels=["AUTO", "CONV_BN_COLUMN", "AUTO"])
        for i in range(n):
            out = core.run_clip(feats[i])
            assert np.array_equal(out, ref[i]), f"{rows} rows, clip {i}: " + first_mismatch(out, ref[i])


def test_generated_model_compiles_strict_and_arena_matches_c(default_model: ConvertedModel, tmp_path: Path) -> None:
    codegen.emit(default_model, tmp_path)
    src = tmp_path / "qsnn_model.c"
    for cc, extra in (("cc", []), ("arm-none-eabi-gcc", ["-mcpu=cortex-m4", "-mthumb", "-ffreestanding"])):
        subprocess.run([cc, *clib.STRICT_CFLAGS, *extra, "-I", str(QSNN_INCLUDE_DIR), "-I", str(tmp_path), "-c",
                        str(src), "-o", str(tmp_path / f"m-{cc}.o")], check=True)
    core = CCore(default_model)
    assert core.state_bytes == codegen.arena_bytes(default_model)


def test_model_file_integrity(default_model: ConvertedModel, tmp_path: Path) -> None:
    p = default_model.save(tmp_path / "m.npz")
    assert load_converted(p).hash_hex == default_model.hash_hex
    # an edited weight no longer matches the stored hash
    with np.load(p, allow_pickle=False) as z:
        d = {k: z[k].copy() for k in z.files}
    d["w_out"][0, 0] = -d["w_out"][0, 0] if d["w_out"][0, 0] != 0 else 1
    np.savez(tmp_path / "bad.npz", **d)
    with pytest.raises(ValueError, match="does not match"):
        load_converted(tmp_path / "bad.npz")
    # weights that are no longer integers of the format's dtype are refused, whatever their values
    d2 = {k: v.copy() for k, v in d.items()}
    d2["w_out"] = default_model.w_out.astype(np.float64) + 0.25
    np.savez(tmp_path / "float.npz", **d2)
    with pytest.raises(ValueError, match="array w_out has dtype float64, format 2 stores int8"):
        load_converted(tmp_path / "float.npz")
    d3 = {k: v for k, v in d.items() if k != "l1.bias"}
    np.savez(tmp_path / "missing_array.npz", **d3)
    with pytest.raises(ValueError, match=r"arrays missing \['l1.bias'\]"):
        load_converted(tmp_path / "missing_array.npz")
    # another format version: the message says which version the tools read
    import json

    meta = json.loads(bytes(d["__meta__"]).decode())
    meta["format_version"] = 1
    d4 = dict(d, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8))
    np.savez(tmp_path / "v1.npz", **d4)
    with pytest.raises(ValueError, match=f"model format version 1; this tool reads format {FORMAT_VERSION}"):
        load_converted(tmp_path / "v1.npz")
    import copy

    other = copy.deepcopy(default_model)
    assert other.hash_hex == default_model.hash_hex
    # the hash covers the front-end specification (its tables), not the front end's source text
    other.frontend = dict(other.frontend, tables_sha256="0" * 64)
    assert other.hash_hex != default_model.hash_hex
    (tmp_path / "truncated.npz").write_bytes(p.read_bytes()[:1000])
    with pytest.raises(ValueError, match="not a converted"):
        load_converted(tmp_path / "truncated.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a converted"):
        load_converted(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError):
        load_converted(tmp_path / "missing.npz")


def test_c_core_rejects_bad_models(default_model: ConvertedModel) -> None:
    import copy

    bad = copy.deepcopy(default_model)
    bad.layers[1].leak_shift = 9  # breaks 1 <= k <= F - b + 1
    with pytest.raises(ValueError):
        bad.validate()
    bad2 = copy.deepcopy(default_model)
    bad2.format_version = FORMAT_VERSION + 1
    with pytest.raises(ValueError, match=f"this tool reads {FORMAT_VERSION}"):
        bad2.validate()
    # a kernel that cannot run its layer is refused by qsnn_model_check (QSNN_ERR_MODEL)
    # (the default: conv 8-bit on features, binary conv on spikes, binary dense on spikes)
    for kernels in (["W8_DENSE", "AUTO", "AUTO"], ["CONV_B1_POPCOUNT", "AUTO", "AUTO"], ["CONV_EVENT", "AUTO", "AUTO"],
                    ["AUTO", "B1_POPCOUNT", "AUTO"], ["AUTO", "CONV_W8", "AUTO"], ["AUTO", "AUTO", "CONV_EVENT"]):
        with pytest.raises(ValueError, match="qsnn_model_check returned 2"):
            CCore(default_model, kernels=kernels)
    with pytest.raises(ValueError, match="one of"):
        CCore(default_model, kernels=["FAST", "AUTO", "AUTO"])
    assert CCore(default_model).layer_kernels() == ["CONV_W8", "CONV_B1_COLUMN", "B1_COLUMN"]
    assert CCore(default_model, kernels=["REF", "CONV_EVENT", "EVENT"]).layer_kernels() == ["REF", "CONV_EVENT", "EVENT"]


@pytest.mark.parametrize("widths,mem_bits,recurrent", [
    ((8, 1, 1), (4, 4, 4), (True, False, True)),
    ((4, 2, 4), (2, 8, 3), (False, True, False)),
    ((2, 8, 1), (8, 2, 5), (True, True, True)),
])
def test_c_kernels_equal_reference_for_every_width(widths: tuple[int, ...], mem_bits: tuple[int, ...],
                                                   recurrent: tuple[bool, ...]) -> None:
    """Random integer models at 1/2/4/8-bit weights, 2..8-bit membranes, odd sizes: every
    kernel that can run each layer (the column kernels on 1-bit columns and on bit planes)."""
    from qsnnkit.model import ConvertedModel, IntLayer

    rng = np.random.default_rng(sum(widths))
    sizes = [40, 33, 65, 31]
    layers = []
    for li, (wb, mb, rec) in enumerate(zip(widths, mem_bits, recurrent)):
        n_in, n_out = sizes[li], sizes[li + 1]
        if wb == 1:
            w = rng.choice([-1, 1], size=(n_out, n_in))
        else:
            lo = -127 if wb == 8 else -(1 << (wb - 1))
            w = rng.integers(lo, (1 << (wb - 1)) - 1, size=(n_out, n_in), endpoint=True)
        layers.append(IntLayer(
            w_bits=wb, mem_bits=mb, leak_shift=int(rng.integers(1, FRAC_BITS - mb + 2)), w=w,
            sh_ff=rng.integers(-2, 9, size=n_out) if li else rng.integers(3, 12, size=n_out),
            bias=rng.integers(-300, 300, size=n_out),
            w_rec=rng.choice([-1, 1], size=(n_out, n_out)) if rec else None,
            sh_rec=rng.integers(-3, 6, size=n_out) if rec else None))
    cm = ConvertedModel(feat_mu=rng.integers(60, 200, size=40), layers=layers,
                        w_out=rng.integers(-127, 128, size=(5, sizes[-1])), b_out=rng.integers(-999, 999, size=5),
                        classes=[f"c{i}" for i in range(5)])
    cm.validate()
    feats = rng.integers(0, 256, size=(6, 30, 40)).astype(np.uint8)
    ref, tr = reference.run_batch(cm, feats, trace=True)
    assert tr is not None
    assert 0.02 < np.mean([s.mean() for s in tr.spk]) < 0.98, "test model should spike, but not always"
    # every kernel that can run a layer, against the reference per step
    first = ["W8_DENSE" if widths[0] == 8 else "REF"]
    configs: list[tuple[str, list[str] | None]] = [
        ("ref", None), ("fast", None), ("fast", ["REF"] * len(layers)), ("fast", first + ["EVENT"] * (len(layers) - 1)),
        ("fast", first + ["B1_POPCOUNT" if w == 1 else "EVENT" for w in widths[1:]]),
        ("fast", first + ["B1_COLUMN" if w == 1 else "EVENT" for w in widths[1:]]),
        ("fast", first + ["B1_COLUMN" if w == 1 else "BN_COLUMN" for w in widths[1:]]),
    ]
    for kernel, kernels in configs:
        core = CCore(cm, kernel, kernels)  # type: ignore[arg-type]
        assert_core_equals_reference(core, feats, ref, tr, f"{kernel} {core.layer_kernels()}")


def _random_conv_model(rng: np.random.Generator, convs: list[tuple[int, int, int, int, int]],
                       dense: list[tuple[int, int, bool]], mem_bits: int, adapt: bool = False) -> ConvertedModel:
    """convs: [(channels, kt, kf, stride, w_bits)], dense: [(n_out, w_bits, recurrent)];
    adapt: every other layer (from the second) gets adaptive LIF with a random shift and beta."""
    from qsnnkit.model import ConvertedModel, IntLayer

    def weights(rows: int, cols: int, wb: int) -> np.ndarray:
        if wb == 1:
            return rng.choice([-1, 1], size=(rows, cols))
        lo = -127 if wb == 8 else -(1 << (wb - 1))
        return rng.integers(lo, (1 << (wb - 1)) - 1, size=(rows, cols), endpoint=True)

    layers = []
    c_in, f_in = 1, 40
    for li, (ch, kt, kf, stride, wb) in enumerate(convs):
        fan = c_in * kt * kf
        layers.append(IntLayer(
            w_bits=wb, mem_bits=mem_bits, leak_shift=int(rng.integers(1, FRAC_BITS - mem_bits + 2)),
            w=weights(ch, fan, wb), sh_ff=rng.integers(5, 11, size=ch) if li == 0 else rng.integers(-3, 3, size=ch),
            bias=rng.integers(-200, 300, size=ch), kind="conv", c_in=c_in, f_in=f_in, kt=kt, kf=kf, stride=stride))
        c_in, f_in = ch, layers[-1].f_out
    n_in = c_in * f_in
    for n_out, wb, rec in dense:
        layers.append(IntLayer(
            w_bits=wb, mem_bits=mem_bits, leak_shift=1, w=weights(n_out, n_in, wb),
            sh_ff=rng.integers(-3, 4, size=n_out), bias=rng.integers(-300, 300, size=n_out),
            w_rec=rng.choice([-1, 1], size=(n_out, n_out)) if rec else None,
            sh_rec=rng.integers(-3, 4, size=n_out) if rec else None))
        n_in = n_out
    if adapt:
        for L in layers[1::2]:
            L.adapt_shift, L.adapt_beta = int(rng.integers(1, 9)), int(rng.integers(1, 256))
    return ConvertedModel(feat_mu=rng.integers(60, 200, size=40), layers=layers,
                          w_out=rng.integers(-127, 128, size=(4, n_in)), b_out=rng.integers(-999, 999, size=4),
                          classes=[f"c{i}" for i in range(4)])


@pytest.mark.parametrize("convs,dense,mem_bits,adapt", [
    ([(6, 5, 5, 2, 8), (8, 3, 5, 2, 1)], [(24, 1, True)], 4, False),
    ([(5, 1, 3, 1, 8), (7, 2, 4, 3, 4), (3, 4, 2, 2, 2)], [], 3, False),
    ([(4, 3, 7, 3, 4), (9, 5, 1, 1, 8)], [(17, 2, False), (11, 1, True)], 8, False),
    ([(7, 2, 6, 2, 8), (5, 4, 7, 3, 1), (6, 3, 3, 1, 1)], [], 5, False),  # binary convs: even kernel, stride 3, fan-in > 32
    ([(6, 5, 5, 2, 8), (8, 3, 5, 2, 1)], [(24, 1, True), (13, 4, True)], 4, True),  # adaptive LIF, conv and dense
    ([(4, 2, 3, 1, 8), (6, 3, 5, 2, 1)], [(10, 1, True)], 4, False),  # 40 + 4 padded positions: gathered fields
    ([(5, 2, 3, 1, 8), (7, 3, 4, 2, 1)], [(9, 8, False)], 2, True),
    ([(6, 5, 5, 2, 8), (8, 3, 5, 2, 1), (6, 3, 3, 1, 2)], [(24, 2, True)], 2, False),  # 2-bit membranes, two positions a byte
])
def test_conv_kernels_equal_reference_per_step(convs: list[tuple[int, int, int, int, int]], dense: list[tuple[int, int, bool]],
                                                mem_bits: int, adapt: bool) -> None:
    """Streaming convolutions: odd channel counts, even and odd kernels, strides 1-3, kt 1-5,
    every weight width, adaptive LIF on some layers; every kernel that can run each layer
    against the reference, per step."""
    rng = np.random.default_rng(len(convs) * 7 + mem_bits + 100 * adapt)
    cm = _random_conv_model(rng, convs, dense, mem_bits, adapt)
    cm.validate()
    feats = rng.integers(0, 256, size=(4, 25, 40)).astype(np.uint8)
    ref, tr = reference.run_batch(cm, feats, trace=True)
    assert tr is not None
    rates = [float(s.mean()) for s in tr.spk]
    assert all(0.01 < r < 0.99 for r in rates), f"test model should spike, but not always: {rates}"
    n = len(cm.layers)
    first_conv = "CONV_W8" if convs[0][4] == 8 else "REF"
    configs: list[tuple[str, list[str] | None]] = [
        ("ref", None), ("fast", None), ("fast", ["REF"] * n),
        ("fast", [first_conv] + ["CONV_EVENT" if L.is_conv else "EVENT" for L in cm.layers[1:]]),
        ("fast", [first_conv] + ["CONV_B1_POPCOUNT" if L.is_conv and L.w_bits == 1 else "AUTO" for L in cm.layers[1:]]),
        ("fast", [first_conv] + [("CONV_B1_COLUMN" if L.is_conv else "B1_COLUMN") if L.w_bits == 1 else "AUTO"
                                 for L in cm.layers[1:]]),
        ("fast", [first_conv] + ["CONV_BN_COLUMN" if L.is_conv and L.w_bits > 1 else "AUTO" for L in cm.layers[1:]]),
    ]
    for kernel, kernels in configs:
        core = CCore(cm, kernel, kernels)  # type: ignore[arg-type]
        assert_core_equals_reference(core, feats, ref, tr, f"{kernel} {core.layer_kernels()}")
    assert CCore(cm).layer_kernels()[0] == first_conv


def test_conv_geometry_is_checked_on_both_sides() -> None:
    import copy

    rng = np.random.default_rng(1)
    cm = _random_conv_model(rng, [(6, 5, 5, 2, 8), (8, 3, 5, 2, 1)], [(24, 1, True)], 4)
    bad = copy.deepcopy(cm)
    bad.layers[1].c_in = 5  # does not match the 6 channels below
    with pytest.raises(ValueError, match="conv"):
        bad.validate()
    bad = copy.deepcopy(cm)
    bad.layers[0].kt = 17
    with pytest.raises(ValueError, match="conv geometry"):
        bad.validate()
    # the C model check refuses the same geometry errors on its own
    core = CCore(cm)
    L = core._layers[1]
    for field, value in (("f_out", L.f_out + 1), ("c_in", L.c_in + 1), ("kt", 0), ("stride", L.kf + 1)):
        old = getattr(L, field)
        setattr(L, field, value)
        assert core.lib.qsnn_model_check(ct.byref(core._model)) == 2, field
        setattr(L, field, old)
    assert core.lib.qsnn_model_check(ct.byref(core._model)) == 0
    with pytest.raises(ValueError, match="qsnn_model_check returned 2"):
        CCore(cm, kernels=["CONV_EVENT", "AUTO", "AUTO"])  # features are not spikes


@pytest.mark.parametrize("conv,hidden_bits,adapt", [
    (((8, 5, 5, 2), (16, 3, 5, 2)), 1, None), (((8, 5, 5, 2), (16, 3, 5, 2)), 4, None), ((), 2, None),
    (((6, 3, 4, 3),), 8, None),
    (((8, 5, 5, 2), (16, 3, 5, 2)), 1, (3, 0.25, "dense")), ((), 2, (5, 1.5, "dense")),
    (((6, 3, 4, 3),), 1, (1, 0.09375, "all")),
])
def test_torch_model_equals_reference_per_step(conv: tuple[tuple[int, int, int, int], ...], hidden_bits: int,
                                               adapt: tuple[int, float, str] | None) -> None:
    """The PyTorch evaluation forward (convolutions run over the whole clip at once) gives the
    integer reference's outputs, membranes and spikes at every step, for conv and dense
    models at every hidden weight width, with and without adaptive LIF; the C core gives the
    same outputs."""
    from qsnnkit.convert.integerize import integerize
    from qsnnkit.train.model import QSNN, QSNNConfig

    torch.manual_seed(0)
    hidden, rec = ((32,), (True,)) if conv else ((32, 24), (True, False))
    extra: dict[str, Any] = dict(zip(("adapt_shift", "adapt_beta", "adapt_layers"), adapt)) if adapt else {}
    m = QSNN(QSNNConfig(conv=conv, hidden=hidden, recurrent=rec, hidden_bits=hidden_bits, **extra))
    with torch.no_grad():
        for li, p in enumerate(m.w):
            if li > 0:
                p.normal_(0.0, 1.0)
        for g in m.gain:
            g.fill_(-2.0)
        for b in m.bias:
            b.uniform_(-0.3, 0.6)
        m.feat_mu.fill_(120.0)
    m.eval()
    feats = np.random.default_rng(0).integers(60, 220, size=(4, 49, 40)).astype(np.uint8)
    cm = integerize(m, [f"c{i}" for i in range(12)])
    assert [L.kind for L in cm.layers] == ["conv"] * len(conv) + ["dense"] * len(hidden)
    assert [L.w_bits for L in cm.layers] == [8] + [hidden_bits] * (len(cm.layers) - 1)
    if adapt:
        want = [adapt[2] == "all" or L.kind == "dense" for L in cm.layers]
        assert [L.adaptive for L in cm.layers] == want
        assert all(L.adapt_beta == adapt[1] * 32 for L in cm.layers if L.adaptive)
    ref, tr = reference.run_batch(cm, feats, trace=True)
    assert tr is not None and all(0.02 < s.mean() < 0.98 for s in tr.spk)
    with torch.no_grad():
        o = m(torch.from_numpy(feats), trace=True)
    assert_torch_equals_reference(o, cm, ref, tr)
    for i in range(len(feats)):
        assert np.array_equal(CCore(cm).run_clip(feats[i]), ref[i])


@pytest.mark.parametrize("conv,hidden_bits", [(((8, 5, 5, 2), (16, 3, 5, 2)), 1), ((), 2)])
def test_batch_norm_folds_exactly(conv: tuple[tuple[int, int, int, int], ...], hidden_bits: int) -> None:
    """--norm bn: after training steps (batch statistics, running statistics updated), the
    evaluation forward with the folded power-of-two scales and biases equals the integer
    reference per step, and the C core; the fold really moved the shifts and biases."""
    from qsnnkit.convert.integerize import integerize
    from qsnnkit.train.model import QSNN, QSNNConfig

    torch.manual_seed(1)
    hidden, rec = ((32,), (True,)) if conv else ((32, 24), (True, False))
    m = QSNN(QSNNConfig(conv=conv, hidden=hidden, recurrent=rec, hidden_bits=hidden_bits, norm="bn"))
    feats = np.random.default_rng(1).integers(40, 230, size=(6, 49, 40)).astype(np.uint8)
    with torch.no_grad():
        m.feat_mu.fill_(120.0)
        for p in m.bn_log2:
            p.uniform_(-1.5, 1.5)
        for b in m.bias:
            b.uniform_(0.0, 1.0)
    opt = torch.optim.SGD(m.parameters(), lr=0.05)
    m.train()
    for _ in range(3):
        loss = m(torch.from_numpy(feats)).logits_sum.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(float(getattr(m, f"bn_var{i}").mean()) != 1.0 for i in range(len(m.spec)))
    m.eval()
    cm = integerize(m, [f"c{i}" for i in range(12)])
    plain = m.quantized(fold_bn=False)
    assert any(not torch.equal(torch.as_tensor(cm.layers[i].bias, dtype=torch.float32),
                               plain["bias"][i].detach() * 2**FRAC_BITS) for i in range(len(cm.layers)))
    ref, tr = reference.run_batch(cm, feats, trace=True)
    assert tr is not None and all(0.01 < s.mean() < 0.99 for s in tr.spk)
    with torch.no_grad():
        o = m(torch.from_numpy(feats), trace=True)
    assert_torch_equals_reference(o, cm, ref, tr)
    for i in range(len(feats)):
        assert np.array_equal(CCore(cm).run_clip(feats[i]), ref[i])


def test_binary_kernel_on_wide_rows_equals_reference() -> None:
    """Rows of 1,000 and 2,000 binary inputs (32 and 63 words: several ten-group blocks of the
    popcount plus a tail) and a 2,000-wide recurrence give the reference's numbers per step;
    so does the column kernel on 2,000 inputs (about 1,000 active: several chunks, counts past
    255, so its bit-by-bit count path), and the C check refuses a column copy one bit off."""
    from qsnnkit.model import ConvertedModel, IntLayer

    rng = np.random.default_rng(5)
    l0 = IntLayer(w_bits=8, mem_bits=4, leak_shift=1, w=rng.integers(-127, 128, (1000, 40)),
                  sh_ff=np.full(1000, 7), bias=rng.integers(-60, 120, 1000))
    l1 = IntLayer(w_bits=1, mem_bits=4, leak_shift=1, w=rng.choice([-1, 1], (2000, 1000)),
                  sh_ff=np.full(2000, -2), bias=rng.integers(-60, 120, 2000),
                  w_rec=rng.choice([-1, 1], (2000, 2000)), sh_rec=np.full(2000, -4))
    l2 = IntLayer(w_bits=1, mem_bits=8, leak_shift=1, w=rng.choice([-1, 1], (9, 2000)),
                  sh_ff=np.full(9, -5), bias=rng.integers(-60, 120, 9))
    cm = ConvertedModel(feat_mu=rng.integers(60, 200, 40), layers=[l0, l1, l2], w_out=rng.integers(-127, 128, (3, 9)),
                        b_out=rng.integers(-99, 99, 3), classes=["a", "b", "c"])
    cm.validate()
    feats = rng.integers(0, 256, size=(2, 12, 40)).astype(np.uint8)
    ref, tr = reference.run_batch(cm, feats, trace=True)
    assert tr is not None and all(0.02 < s.mean() < 0.98 for s in tr.spk)
    for kernels, want in ((None, ["W8_DENSE", "B1_POPCOUNT", "B1_COLUMN"]),
                          (["AUTO", "AUTO", "B1_POPCOUNT"], ["W8_DENSE", "B1_POPCOUNT", "B1_POPCOUNT"])):
        core = CCore(cm, kernels=kernels)
        assert core.layer_kernels() == want
        assert_core_equals_reference(core, feats, ref, tr, str(want))
    assert int(tr.spk[1].sum(axis=2).max()) > 255  # the column kernel's counts passed a byte
    core = CCore(cm)
    cols = np.ctypeslib.as_array(core._layers[2].w_cols, shape=(2000 * 1,))
    assert core.lib.qsnn_model_check(ct.byref(core._model)) == 0
    cols[777] ^= 1 << 5
    assert core.lib.qsnn_model_check(ct.byref(core._model)) == 2  # QSNN_ERR_MODEL
    cols[777] ^= 1 << 5
    assert core.lib.qsnn_model_check(ct.byref(core._model)) == 0


@pytest.mark.parametrize("stride0", [2, 1])  # 2: narrow channel rows (20 + 4 positions); 1: gathered fields (40 + 4)
def test_bit_plane_conv_kernel_on_wide_fields_equals_reference(stride0: int) -> None:
    """CONV_BN_COLUMN on 2-, 4- and 8-bit conv layers with fan-ins of 72-600 taps, up to
    three quarters of them active (counts past 255: the counters' bit-by-bit path), gives the reference's
    membranes and spikes per step, as do CONV_EVENT and REF; and the C check refuses a bit-plane
    copy one bit off in its top (sign) plane."""
    from qsnnkit.model import IntLayer

    rng = np.random.default_rng(40 + stride0)

    def conv(c_in: int, f_in: int, ch: int, kt: int, kf: int, stride: int, wb: int, sh: int, bias: int) -> IntLayer:
        lo, hi = packing.value_range(wb)
        return IntLayer(w_bits=wb, mem_bits=4, leak_shift=1, w=rng.integers(lo, hi, (ch, c_in * kt * kf), endpoint=True),
                        sh_ff=np.full(ch, sh), bias=rng.integers(bias - 200, bias + 200, ch), kind="conv",
                        c_in=c_in, f_in=f_in, kt=kt, kf=kf, stride=stride)

    l0 = conv(1, 40, 40, 1, 3, stride0, 8, 8, 300)  # fires ~3/4 of the time: ~440 of layer 1's 600 taps active
    l1 = conv(40, l0.f_out, 16, 3, 5, 1, 2, 0, 300)
    l2 = conv(16, l1.f_out, 12, 3, 5, 2, 4, -2, 400)
    l3 = conv(12, l2.f_out, 10, 2, 3, 1, 8, -5, 0)
    cm = ConvertedModel(feat_mu=rng.integers(60, 200, 40), layers=[l0, l1, l2, l3],
                        w_out=rng.integers(-127, 128, (3, l3.n_out)), b_out=rng.integers(-99, 99, 3), classes=["a", "b", "c"])
    cm.validate()
    feats = rng.integers(0, 256, size=(3, 12, 40)).astype(np.uint8)
    ref, tr = reference.run_batch(cm, feats, trace=True)
    assert tr is not None
    assert all(0.02 < s.mean() < 0.98 for s in tr.spk), [float(s.mean()) for s in tr.spk]
    # counts past a byte in layer 1: more than 255 active taps in one position's receptive field
    assert float(tr.spk[0].mean()) * l1.c_in * l1.kt * l1.kf > 255
    for kernels, want in ((None, ["CONV_W8", "CONV_BN_COLUMN", "CONV_BN_COLUMN", "CONV_BN_COLUMN"]),
                          (["AUTO", "CONV_EVENT", "REF", "CONV_EVENT"], ["CONV_W8", "CONV_EVENT", "REF", "CONV_EVENT"])):
        core = CCore(cm, kernels=kernels)
        assert core.layer_kernels() == want
        assert_core_equals_reference(core, feats, ref, tr, str(want))
    core = CCore(cm)
    fan, words = l1.c_in * l1.kt * l1.kf, packing.row_words(l1.rows, 1)
    cols = np.ctypeslib.as_array(core._layers[1].w_cols, shape=(2 * fan * words,))
    assert core.lib.qsnn_model_check(ct.byref(core._model)) == 0
    k = fan * words + 77 * words  # plane 1 (the sign plane of 2-bit codes), column 77
    cols[k] ^= 1 << 3
    assert core.lib.qsnn_model_check(ct.byref(core._model)) == 2  # QSNN_ERR_MODEL
    cols[k] ^= 1 << 3
    assert core.lib.qsnn_model_check(ct.byref(core._model)) == 0

def test_model_check_compares_the_conv_int16_pair_copy(default_model: ConvertedModel) -> None:
    """The default's first layer carries its weights as int16 pairs for the M4 kernel
    (packing.conv_w8_quads); qsnn_model_check holds the copy to the rows, word by word."""
    L = default_model.layers[0]
    quads = packing.conv_w8_quads(L.w, L.w_bits, L.c_in, L.kt, L.kf)
    assert quads is not None and len(quads) == -(-L.rows // 4) * 4 * L.kt * (L.kf + L.kf % 2) // 2
    # word (g * P + q) * 4 + k: channel 4 g + k, taps (dt, 2 j) low and (dt, 2 j + 1) high
    P = L.kt * (L.kf + L.kf % 2) // 2
    c, dt, j = 6, 2, 1
    word = int(quads[((c // 4) * P + dt * ((L.kf + 1) // 2) + j) * 4 + c % 4])
    lo, hi = ((v ^ 0x8000) - 0x8000 for v in (word & 0xFFFF, word >> 16))  # int16 halves
    assert (lo, hi) == (L.w[c, dt * L.kf + 2 * j], L.w[c, dt * L.kf + 2 * j + 1])
    core = CCore(default_model)
    q = np.ctypeslib.as_array(core._layers[0].w_quads, shape=(len(quads),))
    assert np.array_equal(q, quads) and core.lib.qsnn_model_check(ct.byref(core._model)) == 0
    for at in (0, 5 * 4 + 3, len(quads) - 1):  # a weight, and a padding tap / channel that must stay 0
        q[at] ^= 1 << 17
        assert core.lib.qsnn_model_check(ct.byref(core._model)) == 2, at  # QSNN_ERR_MODEL
        q[at] ^= 1 << 17
    assert core.lib.qsnn_model_check(ct.byref(core._model)) == 0
    assert packing.conv_w8_quads(L.w, 4, L.c_in, L.kt, L.kf) is None  # only 8-bit weights on one channel


def test_converter_picks_kernels_per_layer(default_model: ConvertedModel, tmp_path: Path) -> None:
    codegen.emit(default_model, tmp_path, ["REF", "CONV_EVENT", "EVENT"])
    text = (tmp_path / "qsnn_model.c").read_text()
    assert all(f".kernel = QSNN_KERNEL_{k}," in text for k in ("REF", "CONV_EVENT", "EVENT"))
    assert codegen.layer_kernels(default_model, ["REF", "CONV_EVENT", "EVENT"]) == ["REF", "CONV_EVENT", "EVENT"]
    # layers no column kernel runs carry no column copies; AUTO's column kernels do
    assert "w_cols" not in text and "w_rec_cols" not in text
    codegen.emit(default_model, tmp_path / "auto")
    auto = (tmp_path / "auto" / "qsnn_model.c").read_text()
    assert "static const uint32_t l1_w_cols[" in auto and "static const uint32_t l2_w_rec_cols[" in auto
    codegen.emit(default_model, tmp_path / "mixed", ["AUTO", "AUTO", "B1_POPCOUNT"])
    mixed = (tmp_path / "mixed" / "qsnn_model.c").read_text()
    assert "l1_w_cols[" in mixed and "l2_w_cols" not in mixed and "l2_w_rec_cols" not in mixed
    with pytest.raises(ValueError, match="kernel B1_POPCOUNT cannot run layer 0"):
        codegen.emit(default_model, tmp_path / "bad", ["B1_POPCOUNT", "AUTO", "AUTO"])
    assert not (tmp_path / "bad" / "qsnn_model.c").exists()


def test_a_build_links_only_its_models_kernels(default_model: ConvertedModel, tmp_path: Path) -> None:
    """The model header names the kernels its layers run (QSNN_MODEL_KERNELS); a core built
    with -DQSNN_KERNELS_ONLY=<that mask> (the firmware build: firmware/scripts/pio_pre.py)
    accepts the model, is smaller, and has no qsnn_step_ref unless REF is in the mask; a mask
    that lacks one of the model's kernels makes qsnn_model_check() refuse the model. Likewise
    -DQSNN_NO_NARROW_MEM (the header's QSNN_MODEL_NARROW_MEM 0u): smaller, and it refuses a
    model with 2-bit membranes."""
    import re

    codegen.emit(default_model, tmp_path)
    hdr = (tmp_path / "qsnn_model.h").read_text()
    mask = int(re.search(r"#define QSNN_MODEL_KERNELS 0x([0-9A-F]+)u", hdr).group(1), 16)  # type: ignore[union-attr]
    assert mask == codegen.kernel_mask(codegen.layer_kernels(default_model)) == (1 << 5) | (1 << 8) | (1 << 9)
    main = tmp_path / "main.c"
    main.write_text('#include "qsnn_model.h"\nint main(void) { return qsnn_model_check(&qsnn_model) == QSNN_OK ? 0 : 3; }\n')
    core = REPO_ROOT / "firmware" / "lib" / "qsnn" / "src" / "qsnn_core.c"

    def build(name: str, *defines: str) -> tuple[Path, Path]:
        obj, exe = tmp_path / f"{name}.o", tmp_path / name
        inc = ["-I", str(QSNN_INCLUDE_DIR), "-I", str(tmp_path)]
        subprocess.run(["cc", *clib.STRICT_CFLAGS, *defines, *inc, "-c", str(core), "-o", str(obj)], check=True)
        subprocess.run(["cc", *clib.STRICT_CFLAGS, *inc, str(main), str(obj), str(tmp_path / "qsnn_model.c"), "-o",
                        str(exe)], check=True)
        return obj, exe

    def text_bytes(obj: Path) -> int:
        out = subprocess.run(["size", "-A", str(obj)], capture_output=True, text=True, check=True).stdout
        return sum(int(m.group(1)) for m in re.finditer(r"^\.text\S*\s+(\d+)", out, re.M))

    def symbols(obj: Path) -> str:
        return subprocess.run(["nm", str(obj)], capture_output=True, text=True, check=True).stdout

    all_obj, all_exe = build("all")
    own_obj, own_exe = build("own", f"-DQSNN_KERNELS_ONLY=0x{mask:X}u")
    assert subprocess.run([str(all_exe)]).returncode == 0 and subprocess.run([str(own_exe)]).returncode == 0
    assert text_bytes(own_obj) < text_bytes(all_obj), (text_bytes(own_obj), text_bytes(all_obj))
    assert "qsnn_step_ref" in symbols(all_obj) and "qsnn_step_ref" not in symbols(own_obj)
    with_ref, _ = build("ref", f"-DQSNN_KERNELS_ONLY=0x{mask | 2:X}u")
    assert "qsnn_step_ref" in symbols(with_ref)
    _, short_exe = build("short", f"-DQSNN_KERNELS_ONLY=0x{mask & ~(1 << 5):X}u")  # without CONV_W8
    assert subprocess.run([str(short_exe)]).returncode == 3
    # no layer has 2- or 3-bit membranes (QSNN_MODEL_NARROW_MEM 0u): the build without their
    # neuron loops accepts the model and is smaller still; a 2-bit-membrane model it refuses
    assert "#define QSNN_MODEL_NARROW_MEM 0u" in hdr
    wide_obj, wide_exe = build("wide", f"-DQSNN_KERNELS_ONLY=0x{mask:X}u", "-DQSNN_NO_NARROW_MEM")
    assert subprocess.run([str(wide_exe)]).returncode == 0
    assert text_bytes(wide_obj) < text_bytes(own_obj), (text_bytes(wide_obj), text_bytes(own_obj))
    narrow = _random_conv_model(np.random.default_rng(3), [(4, 2, 3, 2, 8), (6, 3, 5, 2, 1)], [(8, 1, True)], 2)
    codegen.emit(narrow, tmp_path)  # the same folder: main.c now checks this model
    assert "#define QSNN_MODEL_NARROW_MEM 1u" in (tmp_path / "qsnn_model.h").read_text()
    _, narrow_all = build("narrow_all")
    _, narrow_wide = build("narrow_wide", "-DQSNN_NO_NARROW_MEM")
    assert subprocess.run([str(narrow_all)]).returncode == 0 and subprocess.run([str(narrow_wide)]).returncode == 3
