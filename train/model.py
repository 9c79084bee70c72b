"""The streaming Q-SNN keyword spotter, in PyTorch.

Each 20 ms frame of 40 integer features is one time step. Spiking layers are LIF neurons
with a b-bit membrane, leak as a shift and hard reset; hidden weights are binary (WS-DR),
the input layer and the readout are 8-bit. Every quantity in the forward pass lies on the
integer grids of docs/contract.md, so `eval()` forward outputs are exactly the integer
reference's per-class outputs times the readout's power-of-two scale.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qsnnkit import spec
from qsnnkit.spec import FRAC_BITS
from qsnnkit.train import lif_seq, quant


NORMS = ("none", "bn")
#: How the readout's per-frame outputs become the clip's answer: "sum" over all frames (the
#: contract, section 7: what the device computes); "late", the sum over the second half of
#: the frames only; "max", each class's largest per-frame output. "late" and "max" are
#: training levers measured on validation (docs/results.md), not carried to the device.
READOUTS = ("sum", "late", "max")
#: Which spiking layers adapt when cfg.adapt_shift > 0.
ADAPT_LAYERS = ("dense", "all")
#: Layers without recurrence or adaptation run their time loop in one C kernel each way
#: (train/lif_seq.py: bit-identical spikes and gradients, faster on the CPU); False: always
#: the per-step loop (the tests compare the two).
SEQUENCE_KERNEL = True
#: Running-statistics momentum and epsilon of the power-of-two batch norm.
BN_MOMENTUM = 0.1
BN_EPS = 1e-5


@dataclass(frozen=True)
class QSNNConfig:
    """Architecture and numeric settings; stored with every checkpoint."""

    n_bands: int = 40
    n_classes: int = 12
    # The defaults are the default model's architecture (docs/results.md: how it was chosen).
    hidden: tuple[int, ...] = (128,)
    recurrent: tuple[bool, ...] = (True,)
    #: streaming convolutions before the dense layers: (channels, kt, kf, stride) each; a
    #: convolution over frequency (zero padding kf // 2) with a causal time kernel of kt frames
    conv: tuple[tuple[int, int, int, int], ...] = ((32, 5, 5, 2), (64, 3, 5, 2))
    #: weight width of every layer after the first (conv and dense): 1 (binary, WS-DR), 2, 4 or 8
    hidden_bits: int = 1
    mem_bits: int = 4
    leak_shift: int = 1
    in_shift: int = 5  # features enter as (feat - mu) * 2^-in_shift
    #: normalisation of every spiking layer's feed-forward current in training: "none", or "bn":
    #: batch norm whose per-row scale is rounded to a power of two, so it folds into sh_ff and
    #: the bias at conversion (nothing new on the device)
    norm: str = "none"
    #: float twin switches (issue 14's full-precision rows and the underfitting diagnosis):
    #: float weights, biases and batch norm (no codes, no power-of-two scales, no current grid),
    #: and/or float membranes (no rounding, no saturation). A model with either cannot be
    #: converted to integers; training and the PyTorch evaluation run as usual.
    float_weights: bool = False
    float_membranes: bool = False
    #: the weight half of WS-DR (per-row standardisation before the sign, train/quant.py); off:
    #: issue 14's naive binarisation (sign of the latent weight as it is). Binary layers only.
    weight_reg: bool = True
    #: the readout over time (READOUTS); only "sum" converts
    readout: str = "sum"
    #: adaptive LIF (docs/contract.md section 5): each adapted neuron's current is reduced by its
    #: adaptation state a (a multiple of 2^-ADAPT_FRAC threshold units, 0..ADAPT_MAX codes), which
    #: decays by ceil(a / 2^adapt_shift) per step and grows by adapt_beta per spike; 0: plain LIF
    adapt_shift: int = 0
    adapt_beta: float = 0.25
    #: which layers adapt: "dense" (the dense layers: one byte of state per neuron) or "all"
    adapt_layers: str = "dense"

    @property
    def integer(self) -> bool:
        """True when every value lies on the contract's integer grids."""
        return not (self.float_weights or self.float_membranes)

    @property
    def not_convertible(self) -> list[str]:
        """What keeps this configuration off the device (empty: it converts)."""
        out = [n for n, on in (("float weights", self.float_weights), ("float membranes", self.float_membranes),
                               (f"the {self.readout!r} readout", self.readout != "sum")) if on]
        return out

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {self.readout!r}")
        if self.hidden_bits not in (1, 2, 4, 8):
            raise ValueError(f"hidden_bits must be 1, 2, 4 or 8, got {self.hidden_bits}")
        if len(self.hidden) != len(self.recurrent) or not (self.hidden or self.conv):
            raise ValueError("hidden and recurrent must have the same length, and the network at least one layer")
        f = self.n_bands
        for i, spec_ in enumerate(self.conv):
            if len(spec_) != 4:
                raise ValueError(f"conv layer {i}: expected channels:kt:kf:stride, got {spec_}")
            ch, kt, kf, stride = spec_
            f_out = (f + 2 * (kf // 2) - kf) // max(stride, 1) + 1
            if not (ch >= 1 and 1 <= kt <= spec.CONV_MAX_KT and 1 <= kf <= spec.CONV_MAX_KF and 1 <= stride <= kf
                    and 1 <= f_out <= spec.CONV_MAX_FOUT):
                raise ValueError(f"conv layer {i}: channels {ch}, kt {kt}, kf {kf}, stride {stride} are outside the "
                                 f"contract (channels >= 1, 1 <= kt, kf <= {spec.CONV_MAX_KT}, 1 <= stride <= kf, "
                                 f"at most {spec.CONV_MAX_FOUT} positions)")
            f = f_out
        n_layers = len(self.conv) + len(self.hidden)
        if n_layers > spec.MAX_LAYERS:
            raise ValueError(f"{n_layers} spiking layers; the C core runs at most {spec.MAX_LAYERS}")
        too_wide = [n for n in self.hidden if not 1 <= n <= 65535]
        if too_wide:
            raise ValueError(f"dense layer sizes {too_wide}: the C core stores sizes in 16 bits (1..65535)")
        if not 2 <= self.mem_bits <= 8:
            raise ValueError(f"mem_bits must be 2..8, got {self.mem_bits}")
        if not 1 <= self.leak_shift <= quant.FRAC_BITS - self.mem_bits + 1:
            raise ValueError(
                f"leak_shift must be 1..{quant.FRAC_BITS - self.mem_bits + 1} for a "
                f"{self.mem_bits}-bit membrane (so the leak is exact), got {self.leak_shift}"
            )
        if self.adapt_layers not in ADAPT_LAYERS:
            raise ValueError(f"adapt_layers must be one of {ADAPT_LAYERS}, got {self.adapt_layers!r}")
        if self.adapt_shift != 0:
            code = self.adapt_beta * 2**spec.ADAPT_FRAC
            if not spec.ADAPT_SHIFT_MIN <= self.adapt_shift <= spec.ADAPT_SHIFT_MAX:
                raise ValueError(f"adapt_shift must be 0 (plain LIF) or {spec.ADAPT_SHIFT_MIN}..{spec.ADAPT_SHIFT_MAX}, "
                                 f"got {self.adapt_shift}")
            if code != round(code) or not 1 <= code <= spec.ADAPT_MAX:
                raise ValueError(f"adapt_beta must be a multiple of 2^-{spec.ADAPT_FRAC} threshold units between "
                                 f"{2.0**-spec.ADAPT_FRAC} and {spec.ADAPT_MAX * 2.0**-spec.ADAPT_FRAC}, "
                                 f"got {self.adapt_beta}")
            if not any(self.adapts(L) for L in self.layers()):
                raise ValueError("adaptive LIF on the dense layers asks for at least one dense layer "
                                 "(or adapt_layers='all')")

    def adapts(self, layer: dict[str, int | bool | str]) -> bool:
        """True when the spiking layer (an item of layers()) has adaptive LIF neurons."""
        return self.adapt_shift > 0 and (self.adapt_layers == "all" or layer["kind"] == "dense")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> "QSNNConfig":
        d = json.loads(text)
        d["hidden"] = tuple(d["hidden"])
        d["recurrent"] = tuple(bool(r) for r in d["recurrent"])
        d["conv"] = tuple(tuple(int(v) for v in c) for c in d.get("conv", ()))
        for k in ("float_weights", "float_membranes"):
            d[k] = bool(d.get(k, False))
        d["weight_reg"] = bool(d.get("weight_reg", True))  # checkpoints from before the switch: regulated
        return QSNNConfig(**d)

    def layers(self) -> list[dict[str, int | bool | str]]:
        """Every spiking layer in order (convolutions first): kind, weight rows and fan-in,
        inputs, outputs, conv geometry (c_in, f_in, kt, kf, stride, f_out), recurrence."""
        out: list[dict[str, int | bool | str]] = []
        c_in, f_in = 1, self.n_bands
        for ch, kt, kf, stride in self.conv:
            f_out = (f_in + 2 * (kf // 2) - kf) // stride + 1
            out.append({"kind": "conv", "rows": ch, "fan_in": c_in * kt * kf, "n_in": c_in * f_in,
                        "n_out": ch * f_out, "c_in": c_in, "f_in": f_in, "kt": kt, "kf": kf, "stride": stride,
                        "f_out": f_out, "recurrent": False})
            c_in, f_in = ch, f_out
        n_in = c_in * f_in
        for n_out, rec in zip(self.hidden, self.recurrent):
            out.append({"kind": "dense", "rows": n_out, "fan_in": n_in, "n_in": n_in, "n_out": n_out,
                        "recurrent": rec})
            n_in = n_out
        return out


@dataclass
class ForwardOut:
    logits_sum: Tensor  # [B, C] summed over time: readout_scale * integer outputs (cfg.readout "sum")
    rates: list[Tensor] = field(default_factory=list)  # per hidden layer, mean firing rate (scalar)
    trace_mem: list[Tensor] = field(default_factory=list)  # [B, T, N] stored membrane codes (trace only)
    trace_spk: list[Tensor] = field(default_factory=list)  # [B, T, N] spikes (trace only)
    #: [B, T, C] the readout of each frame alone (readout_scale * r_k(t) of docs/contract.md
    #: section 11): what the streaming detector's leaky sum adds up
    per_frame: Tensor | None = None


class QSNN(nn.Module):
    feat_mu: Tensor  # a buffer: the features' training-split mean (input centring)

    def __init__(self, cfg: QSNNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("feat_mu", torch.zeros(cfg.n_bands))
        self.w = nn.ParameterList()
        self.gain = nn.ParameterList()  # learnable log2 gains of binary layers (unused for layer 0)
        self.bias = nn.ParameterList()
        self.w_rec = nn.ParameterList()
        self.gain_rec = nn.ParameterList()
        self.spec = cfg.layers()
        for L in self.spec:
            rows, fan_in, n_out = int(L["rows"]), int(L["fan_in"]), int(L["n_out"])
            self.w.append(nn.Parameter(torch.randn(rows, fan_in) / math.sqrt(fan_in)))
            self.gain.append(nn.Parameter(torch.full((rows,), -4.0)))
            self.bias.append(nn.Parameter(torch.zeros(rows)))
            if L["recurrent"]:
                self.w_rec.append(nn.Parameter(torch.randn(n_out, n_out) / math.sqrt(n_out)))
                self.gain_rec.append(nn.Parameter(torch.full((n_out,), -4.0)))
        self.bn_log2 = nn.ParameterList()  # per row: log2 of the batch norm's gain
        if cfg.norm == "bn":
            for li, L in enumerate(self.spec):
                rows = int(L["rows"])
                self.bn_log2.append(nn.Parameter(torch.zeros(rows)))
                self.register_buffer(f"bn_mean{li}", torch.zeros(rows))
                self.register_buffer(f"bn_var{li}", torch.ones(rows))
        n_in = int(self.spec[-1]["n_out"])
        self.w_out = nn.Parameter(torch.randn(cfg.n_classes, n_in) / math.sqrt(n_in))
        self.b_out = nn.Parameter(torch.zeros(cfg.n_classes))
        self.tanh_t = 1.0  # backward sharpness of the binary sign (scheduled by the trainer)

    # -- quantized parameters, as the integer model sees them ---------------------------
    def bn_exponent(self, li: int, var: Tensor, w_int: Tensor, w_exp: Tensor) -> Tensor:
        """Per-row power-of-two exponent k of the batch norm's scale 2^g / sqrt(var + eps),
        rounded with a straight-through gradient (to g and, in training, to the batch variance).

        Clamped so the folded row stays provable (qsnnkit.bounds): its weight exponent w_exp + k
        stays in the quantizer's range, and its largest possible feed-forward current (every
        input at the end of its range) stays within half of CURRENT_BOUND. A dead row (variance
        near 0) would otherwise ask for a scale no integer layer can hold."""
        log2_s = self.bn_log2[li] - 0.5 * torch.log2(var + BN_EPS)
        lo, hi = quant.EXP_RANGE_FIRST if li == 0 else quant.EXP_RANGE_HIDDEN
        x_log2 = math.log2(spec.FEATURE_ABS_MAX) - self.cfg.in_shift if li == 0 else 0.0
        worst = torch.log2(w_int.abs().sum(dim=1).clamp(min=1.0)) + x_log2 + w_exp + FRAC_BITS  # log2 fine units
        top = torch.floor(math.log2(spec.CURRENT_BOUND // 2) - worst)
        k = quant.round_half_up(log2_s)
        return k + (torch.minimum(torch.clamp(k.detach(), lo - w_exp, hi - w_exp), top) - k.detach())

    def bn_bias(self, li: int, mean: Tensor, k: Tensor) -> Tensor:
        """The folded bias beta - mean * 2^k on the fine grid, saturated to int16."""
        return quant.sat16_fine(quant.to_fine_grid(self.bias[li] - mean * torch.pow(2.0, k)))

    def quantized(self, fold_bn: bool = True) -> dict[str, list]:
        """Effective (float, on-grid) weights plus their integer codes and exponents.

        With batch norm (cfg.norm == "bn") and ``fold_bn``, the running statistics are folded
        in: each row's weights and exponent take the norm's power-of-two scale and the bias is
        the folded one, exactly what the integer model runs. Training (batch statistics) asks
        for ``fold_bn=False`` and applies the norm itself."""
        cfg = self.cfg
        if cfg.float_weights:
            return self._float_params(fold_bn)
        out: dict[str, list] = {"w": [], "w_int": [], "w_exp": [], "rec": [], "rec_int": [], "rec_exp": [], "bias": []}
        ri = 0
        for li, rec in enumerate(bool(L["recurrent"]) for L in self.spec):
            if li == 0:
                wq, wi, we = quant.int8_pow2_weight(self.w[0], per_channel=True)
            elif cfg.hidden_bits == 1:
                wq, wi, we = quant.binary_weight(self.w[li], self.gain[li], self.tanh_t, cfg.weight_reg)
            else:
                wq, wi, we = quant.int_pow2_weight(self.w[li], cfg.hidden_bits)
            if cfg.norm == "bn" and fold_bn:
                mean, var = getattr(self, f"bn_mean{li}"), getattr(self, f"bn_var{li}")
                k = self.bn_exponent(li, var, wi, we.detach())
                wq = wq * torch.pow(2.0, k).view(-1, 1)
                we = we + k.detach()
                bias = self.bn_bias(li, mean, k)
            else:
                bias = quant.sat16_fine(quant.to_fine_grid(self.bias[li]))
            out["w"].append(wq)
            out["w_int"].append(wi)
            out["w_exp"].append(we)
            rq: Tensor | None
            rint: Tensor | None
            rexp: Tensor | None
            if rec:
                rq, rint, rexp = quant.binary_weight(self.w_rec[ri], self.gain_rec[ri], self.tanh_t, cfg.weight_reg)
                ri += 1
            else:
                rq = rint = rexp = None
            out["rec"].append(rq)
            out["rec_int"].append(rint)
            out["rec_exp"].append(rexp)
            out["bias"].append(bias)
        wo, woi, woe = quant.int8_pow2_weight(self.w_out, per_channel=False)
        scale = torch.pow(2.0, woe[0])
        bo = quant.round_half_up(self.b_out / scale) * scale
        out["w_out"], out["w_out_int"], out["w_out_exp"], out["b_out"] = [wo], [woi], [woe[0]], [bo]
        return out

    def _float_params(self, fold_bn: bool) -> dict[str, list]:
        """The float twin's parameters in quantized()'s layout (no codes: None)."""
        out: dict[str, list] = {k: [] for k in ("w", "w_int", "w_exp", "rec", "rec_int", "rec_exp", "bias")}
        ri = 0
        for li, L in enumerate(self.spec):
            w, b = self.w[li], self.bias[li]
            if self.cfg.norm == "bn" and fold_bn:
                mean, var = getattr(self, f"bn_mean{li}"), getattr(self, f"bn_var{li}")
                scale = torch.pow(2.0, self.bn_log2[li]) / torch.sqrt(var + BN_EPS)
                w, b = w * scale.view(-1, 1), b - mean * scale
            out["w"].append(w)
            out["bias"].append(b)
            out["rec"].append(self.w_rec[ri] if L["recurrent"] else None)
            ri += int(bool(L["recurrent"]))
            for k in ("w_int", "w_exp", "rec_int", "rec_exp"):
                out[k].append(None)
        out["w_out"], out["w_out_int"], out["w_out_exp"], out["b_out"] = [self.w_out], [None], [None], [self.b_out]
        return out

    def _batch_norm(self, li: int, acc: Tensor, w_int: Tensor, w_exp: Tensor | None) -> Tensor:
        """Training: the feed-forward current of layer li ([B, T, rows, positions]) through the
        power-of-two batch norm with this batch's statistics (updating the running ones)."""
        dims = (0, 1, 3)
        mean = acc.mean(dim=dims)
        var = acc.var(dim=dims, unbiased=False)
        with torch.no_grad():
            n = acc.numel() // acc.shape[2]
            rm, rv = getattr(self, f"bn_mean{li}"), getattr(self, f"bn_var{li}")
            rm.mul_(1 - BN_MOMENTUM).add_(BN_MOMENTUM * mean.detach())
            rv.mul_(1 - BN_MOMENTUM).add_(BN_MOMENTUM * var.detach() * n / max(n - 1, 1))
        if self.cfg.float_weights:
            scale = torch.pow(2.0, self.bn_log2[li]) / torch.sqrt(var + BN_EPS)
            return (acc - mean.view(1, 1, -1, 1)) * scale.view(1, 1, -1, 1) + self.bias[li].view(1, 1, -1, 1)
        assert w_exp is not None, "quantized weights have a per-neuron exponent"
        k = self.bn_exponent(li, var, w_int, w_exp)
        scale = torch.pow(2.0, k)
        return quant.to_fine_grid(acc * scale.view(1, 1, -1, 1)) + self.bn_bias(li, mean, k).view(1, 1, -1, 1)

    def forward(self, feats: Tensor, trace: bool = False) -> ForwardOut:
        """feats: [B, T, n_bands] integer features (uint8 or float holding integers).

        Layer by layer: each layer's feed-forward currents for the whole clip at once (a causal
        conv2d over time x frequency, or one matrix product), then its LIF steps in time order
        with its own recurrence; then the readout summed over time. Every value lies on the
        contract's grids, so these are the numbers of the step-by-step contract (the sums are
        exact in any order: qsnnkit.bounds). In training with cfg.norm == "bn" the feed-forward
        currents go through the power-of-two batch norm with batch statistics; in evaluation
        the folded running statistics are used, as on the device."""
        cfg = self.cfg
        batch_norm = cfg.norm == "bn" and self.training
        q = self.quantized(fold_bn=not batch_norm)
        fw = cfg.float_weights
        B, T, _ = feats.shape
        x_all = (feats.to(torch.float32) - self.feat_mu) * (2.0 ** -cfg.in_shift)
        dev = x_all.device
        rates: list[Tensor] = []
        tm: list[Tensor] = []
        ts: list[Tensor] = []
        seq = x_all.unsqueeze(2)  # [B, T, channels, positions] of the layer below
        for li, L in enumerate(self.spec):
            if L["kind"] == "conv":
                kt, kf, stride = int(L["kt"]), int(L["kf"]), int(L["stride"])
                w4 = q["w"][li].view(int(L["rows"]), int(L["c_in"]), kt, kf)
                inp = F.pad(seq.permute(0, 2, 1, 3), (kf // 2, kf // 2, kt - 1, 0))  # causal in time
                acc = F.conv2d(inp, w4, stride=(1, stride)).permute(0, 2, 1, 3)  # [B, T, C, f_out]
            else:
                acc = (seq.reshape(B, T, -1) @ q["w"][li].t()).unsqueeze(3)  # [B, T, N, 1]
            if batch_norm:
                cur = self._batch_norm(li, acc, q["w_int"][li], None if fw else q["w_exp"][li].detach())
            else:
                cur = (acc if fw else quant.to_fine_grid(acc)) + q["bias"][li].view(1, 1, -1, 1)
            cur = cur.reshape(B, T, -1)  # neuron n = c * f_out + f
            n_out = cur.shape[2]
            adapting = cfg.adapts(L)
            if SEQUENCE_KERNEL and q["rec"][li] is None and not adapting and not trace and lif_seq.usable(cur):
                # the same numbers as the time loop below, in one C pass each way (train/lif_seq.py)
                sp = lif_seq.lif_seq(cur, cfg.leak_shift, None if cfg.float_membranes else cfg.mem_bits,
                                     saturate=not (cfg.float_membranes and fw))
                rates.append(sp.mean())
                seq = sp.view(B, T, int(L["rows"]), -1)
                continue
            u = torch.zeros(B, n_out, device=dev)
            spk = torch.zeros(B, n_out, device=dev)
            adapt = torch.zeros(B, n_out, device=dev)
            spikes, mems = [], []
            # unbind, not cur[:, t]: its backward stacks the T step gradients once, where T
            # indexings would each zero-fill and add a whole [B, T, N] gradient (same values)
            for c in cur.unbind(1):
                if q["rec"][li] is not None:
                    r = spk @ q["rec"][li].t()
                    c = c + (r if fw else quant.to_fine_grid(r))
                if adapting:  # adaptive LIF: the adaptation state lowers the current before it saturates
                    c = c - adapt
                if cfg.float_membranes:
                    u, spk = quant.lif_step_float(u, c if fw else quant.sat16_fine(c), cfg.leak_shift)
                else:
                    u, spk = quant.lif_step(u, quant.sat16_fine(c), cfg.leak_shift, cfg.mem_bits)  # charge, fire, reset, store
                if adapting:
                    adapt = quant.adapt_step(adapt, spk, cfg.adapt_shift, cfg.adapt_beta)
                spikes.append(spk)
                if trace:
                    mems.append(u.detach() * 2 ** (cfg.mem_bits - 1))
            sp = torch.stack(spikes, dim=1)  # [B, T, N]
            rates.append(sp.mean())
            if trace:
                tm.append(torch.stack(mems, dim=1))
                ts.append(sp.detach())
            seq = sp.view(B, T, int(L["rows"]), -1)
        last = seq.reshape(B, T, -1)
        per_frame = last @ q["w_out"][0].t() + q["b_out"][0]  # [B, T, C]
        if cfg.readout == "late":
            logits = per_frame[:, T // 2:].sum(dim=1)
        elif cfg.readout == "max":
            logits = per_frame.max(dim=1).values
        else:
            logits = per_frame.sum(dim=1)
        res = ForwardOut(logits_sum=logits, rates=rates, per_frame=per_frame)
        if trace:
            res.trace_mem = tm
            res.trace_spk = ts
        return res

    def readout_exponent(self) -> int:
        if not self.cfg.integer:
            raise ValueError("a float twin (float weights or membranes) has no integer readout")
        return int(self.quantized()["w_out_exp"][0].item())
