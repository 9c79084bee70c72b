"""Trained PyTorch Q-SNN -> integer model (ConvertedModel).

Reads the integer codes and power-of-two exponents straight from the model's own
quantizers (QSNN.quantized()), so nothing is re-derived and nothing can drift. Checks the
bounds under which the float32 evaluation forward is exact (docs/contract.md section 9).
"""
from __future__ import annotations

import numpy as np
import torch

from qsnnkit.model import ConvertedModel, IntLayer
from qsnnkit.spec import CLIP_FRAMES, FRAC_BITS, SHIFT_MIN
from qsnnkit.train.model import QSNN

#: Largest rounding shift for which floor(acc * 2^-sh + 0.5) is exact in float32 (|acc| < 2^23).
MAX_EXACT_SHIFT = 23
FLOAT32_EXACT = 2**24


def _ints(t: torch.Tensor) -> np.ndarray:
    a = t.detach().cpu().to(torch.float64).numpy()
    r = np.rint(a)
    if not np.array_equal(r, a):
        raise ValueError("a quantized tensor is not integer-valued: the quantizers are broken")
    return r.astype(np.int64)


def integerize(model: QSNN, classes: list[str], provenance: dict[str, object] | None = None,
               frames: int = CLIP_FRAMES) -> ConvertedModel:
    cfg = model.cfg
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
            for name, s in (("sh_ff", sh), ("sh_rec", sh_rec)):
                if s is not None and (s.max() > MAX_EXACT_SHIFT or s.min() < SHIFT_MIN):
                    raise ValueError(f"layer {li} {name} range {s.min()}..{s.max()} is outside "
                                     f"{SHIFT_MIN}..{MAX_EXACT_SHIFT}")
            geometry = ({k: spec_[k] for k in ("kind", "c_in", "f_in", "kt", "kf", "stride")}
                        if spec_["kind"] == "conv" else {})
            layers.append(IntLayer(w_bits=bits, mem_bits=cfg.mem_bits, leak_shift=cfg.leak_shift,
                                   w=w, sh_ff=sh, bias=bias, w_rec=w_rec, sh_rec=sh_rec, **geometry))  # type: ignore[arg-type]
        e_out = int(_ints(q["w_out_exp"][0]).item())
        w_out = _ints(q["w_out_int"][0])
        b_out = _ints(q["b_out"][0] / (2.0**e_out))
        feat_mu = _ints(model.feat_mu)
    # Float32 exactness of the evaluation forward: per-class sums over a clip stay < 2^24.
    worst = frames * (np.abs(w_out).sum(axis=1) + np.abs(b_out))
    if worst.max() >= FLOAT32_EXACT:
        raise ValueError(f"readout sums could reach {worst.max()} >= 2^24 over {frames} frames: not exact in float32")
    m = ConvertedModel(feat_mu=feat_mu, layers=layers, w_out=w_out, b_out=b_out, classes=list(classes),
                       readout_exp=e_out, provenance=dict(provenance or {}))
    m.validate()
    return m
