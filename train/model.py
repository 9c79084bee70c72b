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
from torch import Tensor, nn

from qsnnkit.train import quant


@dataclass(frozen=True)
class QSNNConfig:
    """Architecture and numeric settings; stored with every checkpoint."""

    n_bands: int = 40
    n_classes: int = 12
    hidden: tuple[int, ...] = (256, 256)
    recurrent: tuple[bool, ...] = (True, False)
    mem_bits: int = 4
    leak_shift: int = 1
    in_shift: int = 5  # features enter as (feat - mu) * 2^-in_shift

    def __post_init__(self) -> None:
        if len(self.hidden) != len(self.recurrent) or not self.hidden:
            raise ValueError("hidden and recurrent must have the same, non-zero length")
        if not 2 <= self.mem_bits <= 8:
            raise ValueError(f"mem_bits must be 2..8, got {self.mem_bits}")
        if not 1 <= self.leak_shift <= quant.FRAC_BITS - self.mem_bits + 1:
            raise ValueError(
                f"leak_shift must be 1..{quant.FRAC_BITS - self.mem_bits + 1} for a "
                f"{self.mem_bits}-bit membrane (so the leak is exact), got {self.leak_shift}"
            )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> "QSNNConfig":
        d = json.loads(text)
        d["hidden"] = tuple(d["hidden"])
        d["recurrent"] = tuple(bool(r) for r in d["recurrent"])
        return QSNNConfig(**d)


@dataclass
class ForwardOut:
    logits_sum: Tensor  # [B, C] summed over time: readout_scale * integer outputs
    rates: list[Tensor] = field(default_factory=list)  # per hidden layer, mean firing rate (scalar)
    trace_mem: list[Tensor] = field(default_factory=list)  # [B, T, N] stored membrane codes (trace only)
    trace_spk: list[Tensor] = field(default_factory=list)  # [B, T, N] spikes (trace only)


class QSNN(nn.Module):
    def __init__(self, cfg: QSNNConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("feat_mu", torch.zeros(cfg.n_bands))
        self.w = nn.ParameterList()
        self.gain = nn.ParameterList()  # learnable log2 gains of binary layers (unused for layer 0)
        self.bias = nn.ParameterList()
        self.w_rec = nn.ParameterList()
        self.gain_rec = nn.ParameterList()
        n_in = cfg.n_bands
        for n_out, rec in zip(cfg.hidden, cfg.recurrent):
            self.w.append(nn.Parameter(torch.randn(n_out, n_in) / math.sqrt(n_in)))
            self.gain.append(nn.Parameter(torch.full((n_out,), -4.0)))
            self.bias.append(nn.Parameter(torch.zeros(n_out)))
            if rec:
                self.w_rec.append(nn.Parameter(torch.randn(n_out, n_out) / math.sqrt(n_out)))
                self.gain_rec.append(nn.Parameter(torch.full((n_out,), -4.0)))
            n_in = n_out
        self.w_out = nn.Parameter(torch.randn(cfg.n_classes, n_in) / math.sqrt(n_in))
        self.b_out = nn.Parameter(torch.zeros(cfg.n_classes))
        self.tanh_t = 1.0  # backward sharpness of the binary sign (scheduled by the trainer)

    # -- quantized parameters, as the integer model sees them ---------------------------
    def quantized(self) -> dict[str, list]:
        """Effective (float, on-grid) weights plus their integer codes and exponents."""
        cfg = self.cfg
        out: dict[str, list] = {"w": [], "w_int": [], "w_exp": [], "rec": [], "rec_int": [], "rec_exp": [], "bias": []}
        ri = 0
        for li, rec in enumerate(cfg.recurrent):
            if li == 0:
                wq, wi, we = quant.int8_pow2_weight(self.w[0], per_channel=True)
            else:
                wq, wi, we = quant.binary_weight(self.w[li], self.gain[li], self.tanh_t)
            out["w"].append(wq)
            out["w_int"].append(wi)
            out["w_exp"].append(we)
            if rec:
                rq, rint, rexp = quant.binary_weight(self.w_rec[ri], self.gain_rec[ri], self.tanh_t)
                ri += 1
            else:
                rq = rint = rexp = None
            out["rec"].append(rq)
            out["rec_int"].append(rint)
            out["rec_exp"].append(rexp)
            out["bias"].append(quant.sat16_fine(quant.to_fine_grid(self.bias[li])))
        wo, woi, woe = quant.int8_pow2_weight(self.w_out, per_channel=False)
        scale = torch.pow(2.0, woe[0])
        bo = quant.round_half_up(self.b_out / scale) * scale
        out["w_out"], out["w_out_int"], out["w_out_exp"], out["b_out"] = [wo], [woi], [woe[0]], [bo]
        return out

    def forward(self, feats: Tensor, trace: bool = False) -> ForwardOut:
        """feats: [B, T, n_bands] integer features (uint8 or float holding integers)."""
        cfg = self.cfg
        q = self.quantized()
        B, T, _ = feats.shape
        x_all = (feats.to(torch.float32) - self.feat_mu) * (2.0 ** -cfg.in_shift)
        dev = x_all.device
        u = [torch.zeros(B, n, device=dev) for n in cfg.hidden]
        s = [torch.zeros(B, n, device=dev) for n in cfg.hidden]
        logits = torch.zeros(B, cfg.n_classes, device=dev)
        spike_sum = [torch.zeros((), device=dev) for _ in cfg.hidden]
        tm: list[list[Tensor]] = [[] for _ in cfg.hidden]
        ts: list[list[Tensor]] = [[] for _ in cfg.hidden]
        for t in range(T):
            below = x_all[:, t]
            for li in range(len(cfg.hidden)):
                c = quant.to_fine_grid(below @ q["w"][li].t())
                if q["rec"][li] is not None:
                    c = c + quant.to_fine_grid(s[li] @ q["rec"][li].t())
                c = quant.sat16_fine(c + q["bias"][li])
                u[li], spk = quant.lif_step(u[li], c, cfg.leak_shift, cfg.mem_bits)  # charge, fire, reset, store
                s[li] = spk
                spike_sum[li] = spike_sum[li] + spk.mean()
                if trace:
                    tm[li].append(u[li].detach() * 2 ** (cfg.mem_bits - 1))
                    ts[li].append(spk.detach())
                below = spk
            logits = logits + below @ q["w_out"][0].t() + q["b_out"][0]
        rates = [ss / T for ss in spike_sum]
        res = ForwardOut(logits_sum=logits, rates=rates)
        if trace:
            res.trace_mem = [torch.stack(v, dim=1) for v in tm]
            res.trace_spk = [torch.stack(v, dim=1) for v in ts]
        return res

    def readout_exponent(self) -> int:
        return int(self.quantized()["w_out_exp"][0].item())
