"""Trained PyTorch Q-SNN -> integer model (ConvertedModel).

Reads the integer codes and power-of-two exponents straight from the model's own
quantizers (QSNN.quantized()), so nothing is re-derived and nothing can drift. Refuses a model
that qsnnkit.bounds cannot prove free of overflow (and exact in float32: docs/contract.md
section 2).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from qsnnkit import bounds
from qsnnkit.model import ConvertedModel, IntLayer
from qsnnkit.spec import ADAPT_FRAC, FRAC_BITS
from qsnnkit.train.model import QSNN


def _ints(t: torch.Tensor) -> np.ndarray:
    a = t.detach().cpu().to(torch.float64).numpy()
    r = np.rint(a)
    if not np.array_equal(r, a):
        raise ValueError("a quantized tensor is not integer-valued: the quantizers are broken")
    return r.astype(np.int64)


def integerize(model: QSNN, classes: list[str], provenance: dict[str, object] | None = None,
               frontend: dict[str, object] | None = None) -> ConvertedModel:
    """The integer model; `frontend` is its input specification (default: the audio front end's;
    qsnnkit.model.events_specification for a model of binned events)."""
    cfg = model.cfg
    if cfg.not_convertible:
        raise ValueError(f"this model has {' and '.join(cfg.not_convertible)}: no integer form the device runs; "
                         "train without --fp32/--float-weights/--float-membranes/--readout to get a "
                         "deployable model")
    with torch.no_grad():
        q = model.quantized()
        layers: list[IntLayer] = []
        for li, spec_ in enumerate(model.spec):
            w = _ints(q["w_int"][li])
            e = _ints(q["w_exp"][li])
            if li == 0:
                sh = cfg.in_shift - e - FRAC_BITS  # acc * 2^(e - in_shift) in fine units
                bits = 8
            else:
                sh = -(e + FRAC_BITS)
                bits = cfg.hidden_bits
            bias = _ints(q["bias"][li] * 2**FRAC_BITS)
            w_rec = sh_rec = None
            if q["rec"][li] is not None:
                w_rec = _ints(q["rec_int"][li])
                sh_rec = -(_ints(q["rec_exp"][li]) + FRAC_BITS)
            geometry: dict[str, Any] = ({k: spec_[k] for k in ("kind", "c_in", "f_in", "kt", "kf", "stride")}
                                        if spec_["kind"] == "conv" else {})
            adapt: dict[str, Any] = ({"adapt_shift": cfg.adapt_shift,
                                      "adapt_beta": int(round(cfg.adapt_beta * 2**ADAPT_FRAC))}
                                     if cfg.adapts(spec_) else {})
            layers.append(IntLayer(w_bits=bits, mem_bits=cfg.mem_bits, leak_shift=cfg.leak_shift,
                                   w=w, sh_ff=sh, bias=bias, w_rec=w_rec, sh_rec=sh_rec, **geometry,
                                   **adapt))
        e_out = int(_ints(q["w_out_exp"][0]).item())
        w_out = _ints(q["w_out_int"][0])
        b_out = _ints(q["b_out"][0] / (2.0**e_out))
        feat_mu = _ints(model.feat_mu)
    m = ConvertedModel(feat_mu=feat_mu, layers=layers, w_out=w_out, b_out=b_out, classes=list(classes),
                       readout_exp=e_out, provenance=dict(provenance or {}))
    if frontend is not None:  # else the audio front end's (the field's default)
        m.frontend = dict(frontend)
    m.validate()
    bounds.check(m)  # no overflow, float32-exact: or a BoundsError naming layer, row and bound
    return m
