"""The overflow proof (qsnnkit.bounds) and the C model check agree, and they are tight: a model
exactly at each bound is accepted and runs bit-exact (PyTorch, integer reference, C core) on
the inputs that reach the bound; one unit past it is refused by both, naming the bound."""
from __future__ import annotations

import copy
import glob

import numpy as np
import pytest
import torch

from qsnnkit import bounds, reference, spec
from qsnnkit.ccore import CCore, _State, c_model_check
from qsnnkit.model import ConvertedModel, IntLayer, load_converted
from qsnnkit.paths import REPO_ROOT
from qsnnkit.train import quant

from conftest import DEFAULT_MODEL
from test_core import assert_torch_equals_reference, first_mismatch

ERR_BOUNDS = spec.CORE_STATUS["ERR_BOUNDS"][0]


def test_proof_covers_every_layer_kind_and_state_field() -> None:
    """A new layer kind or a new field of qsnn_state_t (its ctypes mirror is checked against
    the C struct by test_spec) fails here until the proof covers it."""
    assert sorted(spec.LAYER_KINDS) == sorted(bounds.COVERED_LAYER_KINDS)
    assert [f[0] for f in _State._fields_] == list(bounds.COVERED_STATE)
    L = IntLayer(w_bits=1, mem_bits=4, leak_shift=1, w=np.ones((2, 3), np.int64), sh_ff=np.zeros(2, np.int64),
                 bias=np.zeros(2, np.int64))
    L.kind = "adaptive"
    with pytest.raises(ValueError, match="does not cover layer kind 'adaptive'"):
        bounds.layer_bounds(L, 1)


def test_committed_models_are_proven() -> None:
    models = sorted(glob.glob(str(REPO_ROOT / "firmware" / "models" / "*" / "*.npz")))
    assert models
    for path in models:
        m = load_converted(path)
        assert all(b.ok for b in bounds.check(m)), path
        assert c_model_check(m) == 0, path


def _dense(n_in: int, n_out: int, w: int, w_bits: int, sh_ff: int, bias: int, rec_sh: int | None = None) -> IntLayer:
    return IntLayer(w_bits=w_bits, mem_bits=4, leak_shift=1, w=np.full((n_out, n_in), w, np.int64),
                    sh_ff=np.full(n_out, sh_ff, np.int64), bias=np.full(n_out, bias, np.int64),
                    w_rec=None if rec_sh is None else np.ones((n_out, n_out), np.int64),
                    sh_rec=None if rec_sh is None else np.full(n_out, rec_sh, np.int64))


def _model(layers: list[IntLayer], n_bands: int, b_out: int = 0, w_out: int = 1, mu: np.ndarray | None = None) -> ConvertedModel:
    n_last = layers[-1].n_out
    return ConvertedModel(feat_mu=np.zeros(n_bands, np.int64) if mu is None else mu, layers=layers,
                          w_out=np.full((3, n_last), w_out, np.int64), b_out=np.array([b_out, -b_out, 0], np.int64),
                          classes=["a", "b", "c"])


def _edge_cases() -> list[tuple[str, ConvertedModel, ConvertedModel, str]]:
    """(name, model at the bound, the same one unit past it, the bound's quantity)."""
    out = []
    # layer-0 accumulator: 518 bands x 127 x 255 = 16,775,430 <= 2^24; 519 bands do not fit
    A = lambda n: _model([_dense(n, 6, 127, 8, 11, 0), _dense(6, 4, 1, 1, -8, 0)], n)  # noqa: E731
    out.append(("accumulator", A(518), A(519), "feed-forward accumulator"))
    # rounding intermediate: acc + 2^(sh-1) <= 2^24 holds at sh 11 (16,776,454), not at 12 (16,777,478)
    R = lambda sh: _model([_dense(518, 6, 127, 8, sh, 0), _dense(6, 4, 1, 1, -8, 0)], 518)  # noqa: E731
    out.append(("rounding", R(11), R(12), "rounding intermediate"))
    # current: 255 spikes << 15 + |bias| = 8,355,840 + 32,767 = 2^23 - 1; bias -32,768 is one past
    C = lambda b: _model([_dense(40, 255, 127, 8, 8, 300), _dense(255, 4, 1, 1, -15, b)], 40)  # noqa: E731
    out.append(("current", C(32767), C(-32768), "current before int16 saturation"))
    # current with recurrence: (128 << 15) + (127 << 15) + 32,767 = 2^23 - 1
    Q = lambda n: _model([_dense(40, 128, 127, 8, 8, 300), _dense(128, n, 1, 1, -15, 32767, rec_sh=-15)], 40)  # noqa: E731
    out.append(("recurrent current", Q(127), Q(128), "current before int16 saturation"))
    # readout: 64 steps x (127 x 255 + 229,759) = 2^24; bias one higher is past it
    O = lambda b: _model([_dense(40, 255, 127, 8, 8, 300)], 40, b_out=b, w_out=127)  # noqa: E731
    out.append(("readout", O(229_759), O(229_760), "per-class output summed over 64 steps"))
    return out


@pytest.mark.parametrize("name,edge,past,quantity", _edge_cases(), ids=[c[0] for c in _edge_cases()])
def test_edge_runs_bit_exact_and_one_past_is_refused(name: str, edge: ConvertedModel, past: ConvertedModel,
                                                     quantity: str) -> None:
    edge.validate()
    proof = bounds.check(edge)
    hit = [b for b in bounds.prove(past) if b.quantity.startswith(quantity) and not b.ok]
    assert hit, f"{name}: the model one past the edge should fail '{quantity}'"
    at = [b for b in proof if (b.where, b.quantity) == (hit[0].where, hit[0].quantity)]
    assert at and at[0].ok
    assert c_model_check(edge) == 0
    # inputs that reach the bound: every feature at the far end of its range, and a mix
    n = edge.n_bands
    rng = np.random.default_rng(1)
    feats = np.concatenate([np.full((1, spec.MAX_STEPS, n), 255, np.uint8),
                            rng.integers(0, 256, size=(2, spec.MAX_STEPS, n)).astype(np.uint8)])
    ref, tr = reference.run_batch(edge, feats, trace=True)
    assert tr is not None and tr.spk[-1][0].all(), "the edge inputs should drive the last layer to fire every step"
    for kernel in ("ref", "fast"):
        core = CCore(edge, kernel)
        for i in range(len(feats)):
            out = core.run_clip(feats[i])
            assert np.array_equal(out, ref[i]), f"{name} {kernel} clip {i}: " + first_mismatch(out, ref[i])
    # one unit past: Python names the bound, C refuses with QSNN_ERR_BOUNDS, CCore explains
    past.validate()
    with pytest.raises(bounds.BoundsError, match=quantity.split(" (")[0]) as err:
        bounds.check(past)
    assert "layer" in str(err.value) or "readout" in str(err.value)
    assert c_model_check(past) == ERR_BOUNDS
    with pytest.raises(bounds.BoundsError):
        CCore(past)


def test_readout_at_its_bound_sums_exactly_to_two_to_the_24() -> None:
    edge = next(e for n, e, _, _ in _edge_cases() if n == "readout")
    feats = np.full((1, spec.MAX_STEPS, 40), 255, np.uint8)
    ref, _ = reference.run_batch(edge, feats)
    assert ref[0, 0] == spec.READOUT_BOUND  # 64 x 262,144: no saturation, no wrap
    assert np.array_equal(CCore(edge).run_clip(feats[0]), ref[0])


def test_c_refuses_shifts_outside_the_contract() -> None:
    """qsnn_model_check checks sh_ff and sh_rec against SHIFT_MIN..SHIFT_MAX itself (the C
    core must not trust the generator): 40 would shift by 39, -16 multiply by 2^16."""
    m = load_converted(DEFAULT_MODEL)
    rec = next(i for i, L in enumerate(m.layers) if L.sh_rec is not None)  # the first recurrent layer
    for field, li, value in (("sh_ff", 0, 40), ("sh_ff", 1, spec.SHIFT_MIN - 1), ("sh_rec", rec, spec.SHIFT_MAX + 1)):
        bad = copy.deepcopy(m)
        getattr(bad.layers[li], field)[3] = value
        with pytest.raises(ValueError, match=field):
            bad.validate()
        assert c_model_check(bad) == ERR_BOUNDS, (field, li, value)


def test_large_negative_shift_is_refused_not_miscomputed() -> None:
    """The issue's example: a first layer at sh_ff = -15 overflows int32 in scale(); the proof
    refuses it (before, C and the reference disagreed silently)."""
    m = load_converted(DEFAULT_MODEL)
    bad = copy.deepcopy(m)
    bad.layers[0].sh_ff[:] = spec.SHIFT_MIN
    bad.validate()  # in range, type-wise
    with pytest.raises(bounds.BoundsError, match=r"layer 0 \((dense|conv)\): current before int16 saturation"):
        bounds.check(bad)
    assert c_model_check(bad) == ERR_BOUNDS


def test_torch_forward_exact_at_the_accumulator_edge() -> None:
    """A PyTorch Q-SNN whose first layer sits at the accumulator and rounding bounds (518
    bands of 8-bit weights 127 on features 255, sh_ff = 11) converts, is proven, and its
    float32 forward equals the integer reference and the C core at every step."""
    from qsnnkit.convert.integerize import integerize
    from qsnnkit.train.model import QSNN, QSNNConfig

    m = QSNN(QSNNConfig(n_bands=518, conv=(), hidden=(6, 4), recurrent=(False, True)))
    with torch.no_grad():
        m.w[0].fill_(127 * 2.0**-14)  # codes 127, exponent -14: sh_ff = in_shift + 14 - 8 = 11
        m.w[0][1::2] *= -1.0
        m.w[1].normal_()
        m.bias[0].fill_(0.25)
    m.eval()
    cm = integerize(m, ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"])
    assert int(cm.layers[0].sh_ff.min()) == 11 and int(np.abs(cm.layers[0].w).min()) == 127
    rounding = [b for b in bounds.prove(cm) if b.where.startswith("layer 0") and b.quantity.startswith("rounding")]
    assert rounding[0].worst == 518 * 127 * 255 + 2**10 <= spec.ACC_BOUND < rounding[0].worst + 2**10
    feats = np.concatenate([np.full((1, 20, 518), 255, np.uint8),
                            np.random.default_rng(0).integers(0, 256, size=(2, 20, 518)).astype(np.uint8)])
    ref, tr = reference.run_batch(cm, feats, trace=True)
    assert tr is not None
    with torch.no_grad():
        o = m(torch.from_numpy(feats), trace=True)
    assert_torch_equals_reference(o, cm, ref, tr)
    for i in range(len(feats)):
        assert np.array_equal(CCore(cm).run_clip(feats[i]), ref[i])


def test_float32_is_wrong_just_past_the_current_bound() -> None:
    """Why CURRENT_BOUND is 2^23 - 1: the forward's rounding floor(x + 1/2) of an integer
    current is exact up to it and off by one just past it, so the bound is not decoration."""
    at = torch.tensor([spec.CURRENT_BOUND, -spec.CURRENT_BOUND], dtype=torch.float32) / 2**spec.FRAC_BITS
    assert torch.equal(quant.to_fine_grid(at) * 2**spec.FRAC_BITS, at * 2**spec.FRAC_BITS)
    past = torch.tensor([spec.CURRENT_BOUND + 2], dtype=torch.float32) / 2**spec.FRAC_BITS  # 2^23 + 1
    assert not torch.equal(quant.to_fine_grid(past) * 2**spec.FRAC_BITS, past * 2**spec.FRAC_BITS)


def test_c_state_init_refuses_a_small_misaligned_or_missing_arena() -> None:
    """qsnn_state_init: QSNN_ERR_ARENA for an arena one byte short, misaligned or NULL; OK for
    the exact size qsnn_state_bytes reports; QSNN_ERR_BOUNDS before looking at the arena for a
    model the bounds refuse."""
    import ctypes as ct

    from qsnnkit import clib
    from qsnnkit.ccore import _describe, _setup, _State

    lib = clib.load()
    _setup(lib)
    m, _layers, _keep = _describe(load_converted(DEFAULT_MODEL), None, bytes(8))
    need = int(lib.qsnn_state_bytes(ct.byref(m)))
    buf = (ct.c_uint32 * (need // 4 + 2))()
    base = ct.addressof(buf)
    st = _State()
    arena_err = spec.CORE_STATUS["ERR_ARENA"][0]
    assert lib.qsnn_state_init(ct.byref(st), ct.byref(m), base, need - 1) == arena_err
    assert lib.qsnn_state_init(ct.byref(st), ct.byref(m), base + 2, need) == arena_err
    assert lib.qsnn_state_init(ct.byref(st), ct.byref(m), None, need) == arena_err
    assert lib.qsnn_state_init(ct.byref(st), ct.byref(m), base, need) == 0
    bad = copy.deepcopy(load_converted(DEFAULT_MODEL))
    bad.layers[0].sh_ff[:] = spec.SHIFT_MIN
    mb, _l2, _k2 = _describe(bad, None, bytes(8))
    assert lib.qsnn_state_init(ct.byref(st), ct.byref(mb), base, need) == ERR_BOUNDS
