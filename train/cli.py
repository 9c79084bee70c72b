"""qsnn-train: train a streaming Q-SNN: a keyword spotter on Speech Commands (12 classes, the
default), a spoken-digit classifier on FSDD (--dataset fsdd, the same front end) or a digit
classifier on N-MNIST address events (--dataset nmnist)."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

from qsnnkit.data import SPLIT_RULES
from qsnnkit.paths import build_dir
from qsnnkit.train.augment import DEFAULT_KINDS

#: The keyword spotter's training data by default: every augmentation kind and 100 espeak-ng
#: clips per keyword and for _unknown_ (chosen on validation: docs/results.md, "Augmentation").
SPEECH_AUGMENT = "speed,volume,shift,noise,mask"
SPEECH_SYNTHETIC = 100
#: adaptive LIF on the dense layers for keywords (docs/results.md: +1.0 validation over 3 seeds)
SPEECH_ADAPT = 3
#: FSDD's: the speech kinds it can have (no background-noise clips, no synthetic digits)
FSDD_AUGMENT = "speed,volume,shift,mask"
from qsnnkit.train.model import ADAPT_LAYERS, READOUTS, QSNNConfig
from qsnnkit.train.synth import SynthError
from qsnnkit.train.trainer import DATASETS, TrainSettings, train
from qsnnkit.cli_help import DefaultsHelp


def parser() -> argparse.ArgumentParser:
    d, c = TrainSettings(), QSNNConfig()
    p = argparse.ArgumentParser(prog="qsnn-train", description=__doc__,
                                formatter_class=DefaultsHelp)
    p.add_argument("--data-root", default=None, help="dataset root (default: $QSNN_DATA_ROOT or ../shared/data)")
    p.add_argument("--dataset", default=d.dataset, choices=sorted(DATASETS),
                   help="speech_commands (keywords) or fsdd (spoken digits, 8 kHz resampled to 16 kHz and centred "
                        "in 1 s): audio through the C front end; nmnist: events through the C binner")
    p.add_argument("--ev-pool-shift", type=int, default=None,
                   help=f"events: one input per 2^s x 2^s pixel block and polarity (default: {d.ev_pool_shift})")
    p.add_argument("--ev-cap", type=int, default=None,
                   help=f"events: per-step counts saturate here, 1: binary (default: {d.ev_cap})")
    p.add_argument("--ev-window-us", type=int, default=None,
                   help=f"events: step length, microseconds (default: {d.ev_window_us})")
    p.add_argument("--ev-steps", type=int, default=None, help=f"events: steps per sample (default: {d.ev_steps})")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: build/train)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from OUT/resume.safetensors (written after every epoch) "
                        "to the same bits as an uninterrupted run; only the same settings and training code "
                        "continue a state, anything else starts at epoch 0 and says why")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (AdamW, one-cycle)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--lambda-sr", type=float, default=d.lambda_sr, help="WS-DR spike-rate loss weight (0: off)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=d.threads, help="torch threads (results depend on it)")
    p.add_argument("--augment", nargs="?", const=DEFAULT_KINDS, default=None, metavar="KINDS",
                   help="augmentation each epoch, comma-separated kinds: speed, volume, shift, noise (audio, "
                        "through the C front end) and mask (SpecAugment-style, on its features); '' for none; "
                        f"bare --augment: {DEFAULT_KINDS} (default: {SPEECH_AUGMENT} for speech_commands, "
                        f"{FSDD_AUGMENT} for fsdd, none for nmnist)")
    p.add_argument("--synthetic", type=int, default=None, metavar="N",
                   help="add N espeak-ng clips per keyword and N for _unknown_ to the training split only "
                        f"(needs espeak-ng; 0: none) (default: {SPEECH_SYNTHETIC} for speech_commands, 0 for fsdd and nmnist)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N clips of each split (quick runs)")
    p.add_argument("--split-rule", default=d.split_rule, choices=list(SPLIT_RULES),
                   help="a full official Speech Commands archive: split by the speaker hash (the shared split's "
                        "rule) or by its validation_list.txt / testing_list.txt")
    p.add_argument("--unknown-percent", type=float, default=d.unknown_percent,
                   help="a full official archive: _unknown_ clips per 100 known-word clips of each split, a seeded "
                        "sample of the other words (TensorFlow's speech_commands example: 10)")
    p.add_argument("--silence-percent", type=float, default=d.silence_percent,
                   help="a full official archive without _silence_/: 1 s cuts of _background_noise_/ per 100 "
                        "known-word clips of each split, each split from its own part of every recording")
    p.add_argument("--gain-lr-scale", type=float, default=d.gain_lr_scale,
                   help="learning-rate factor of the binary layers' power-of-two gains (0: frozen)")
    p.add_argument("--binary-init-std", type=float, default=d.binary_init_std,
                   help="std of the latent binary weights at init (0: 1/sqrt(fan_in)); sets how often signs flip")
    p.add_argument("--device", default=d.device, help="torch device (cpu, cuda)")
    p.add_argument("--loss-on", default=d.loss_on, choices=["mean", "sum"],
                   help="cross-entropy on the readout's mean over the clip's frames, or on its sum (49x sharper "
                        "logits; the device's argmax is the same either way)")
    p.add_argument("--conv", default=None,
                   help="streaming convolutions before the dense layers, comma-separated channels:kt:kf:stride "
                        "(32:5:5:2 is a kt=5-frame causal time kernel over kf=5 bands, stride 2); '' for none "
                        f"(default: {_conv_text(c.conv)} for speech_commands, none for nmnist)")
    p.add_argument("--hidden", default=None, help="dense hidden layer sizes (may be empty with --conv) (default: "
                   f"{','.join(map(str, c.hidden))} for speech_commands, {','.join(map(str, NMNIST_HIDDEN))} for nmnist)")
    p.add_argument("--recurrent", default=None,
                   help="per hidden layer: 1 = binary recurrent weights on its own spikes (default: 1 per layer for "
                        "the first, 0 for the others)")
    p.add_argument("--mem-bits", type=int, default=c.mem_bits, help="membrane bits (2..8)")
    p.add_argument("--hidden-bits", type=int, default=c.hidden_bits, choices=[1, 2, 4, 8],
                   help="weight width of every layer after the first (1: binary with WS-DR)")
    p.add_argument("--leak-shift", type=int, default=c.leak_shift, help="leak u -= u >> k")
    p.add_argument("--norm", default=c.norm, choices=["none", "bn"],
                   help="bn: batch norm of every layer's feed-forward current in training, its scale rounded to a "
                        "power of two so it folds into the integer shifts and biases")
    p.add_argument("--teacher-epochs", type=int, default=d.teacher_epochs,
                   help="knowledge distillation: first train a float twin (batch norm, lr 5e-3) for N epochs, "
                        "then learn from its softened outputs as well (0: no teacher)")
    p.add_argument("--kd-weight", type=float, default=d.kd_weight, help="share of the distillation term in the loss")
    p.add_argument("--kd-temp", type=float, default=d.kd_temp, help="softmax temperature of the distillation term")
    p.add_argument("--fp32", action="store_true",
                   help="full-precision twin: float weights and float membranes, same architecture (not convertible)")
    p.add_argument("--float-weights", action="store_true",
                   help="float weights, biases and batch norm only (membranes stay on their b-bit grid; not convertible)")
    p.add_argument("--float-membranes", action="store_true",
                   help="float membranes only (weights stay quantized; not convertible)")
    p.add_argument("--no-weight-reg", action="store_true",
                   help="binary weights without the weight half of WS-DR (the sign of the latent weight, not "
                        "of its standardised row): the ablation's naive binarisation (--lambda-sr 0 drops the "
                        "spike half)")
    p.add_argument("--readout", default=c.readout, choices=list(READOUTS),
                   help="the clip's answer from the per-frame readout: sum over all frames (what the device "
                        "computes), late (the second half only) or max (each class's peak); late and max are "
                        "measured levers, not convertible")
    p.add_argument("--adapt", type=int, default=None, metavar="SHIFT",
                   help="adaptive LIF: an integer adaptation current (one byte per neuron) that decays by "
                        "ceil(a / 2^SHIFT) per frame and grows by --adapt-beta per spike; SHIFT 1..8, 0: plain LIF "
                        f"(default: {SPEECH_ADAPT} for audio (speech_commands, fsdd) with dense layers, else 0)")
    p.add_argument("--adapt-beta", type=float, default=c.adapt_beta,
                   help="adaptation per spike, in threshold units (a multiple of 1/32)")
    p.add_argument("--adapt-layers", default=c.adapt_layers, choices=list(ADAPT_LAYERS),
                   help="which layers adapt: the dense layers, or all (convolutions too: more state)")
    return p


#: the N-MNIST architecture when none is given: one recurrent dense layer on the binned events
NMNIST_HIDDEN = (128,)


def _conv_layer(text: str) -> tuple[int, int, int, int]:
    """One --conv entry, channels:kt:kf:stride (ValueError unless four integers)."""
    ch, kt, kf, stride = (int(v) for v in text.split(":"))
    return ch, kt, kf, stride


def _conv_text(conv: tuple[tuple[int, ...], ...]) -> str:
    return ",".join(":".join(map(str, c)) for c in conv)


def dataset_shape(st: TrainSettings) -> dict[str, int]:
    """The QSNNConfig fields a dataset fixes: inputs per step, classes, input shift."""
    if st.dataset == "nmnist":
        # counts 0..cap enter unscaled (in_shift 0): audio features span 0..255, counts a few units
        return {"n_bands": st.events().inputs, "n_classes": len(DATASETS["nmnist"]), "in_shift": 0}
    fixed = QSNNConfig()
    return {"n_bands": fixed.n_bands, "n_classes": len(DATASETS[st.dataset]), "in_shift": fixed.in_shift}


def command_for(cfg: QSNNConfig, st: TrainSettings) -> str:
    """The qsnn-train command that trains exactly this configuration: every setting that
    changes the result is spelled out (defaults included, so a later change of a default
    cannot change what the line means). The data root and output folder are left out."""
    args = [
        "qsnn-train", "--epochs", str(st.epochs), "--batch-size", str(st.batch_size), "--lr", repr(st.lr),
        "--weight-decay", repr(st.weight_decay), "--lambda-sr", repr(st.lambda_sr), "--seed", str(st.seed),
        "--threads", str(st.threads), "--gain-lr-scale", repr(st.gain_lr_scale),
        "--binary-init-std", repr(st.binary_init_std), "--device", st.device,
        "--hidden", ",".join(map(str, cfg.hidden)), "--recurrent", ",".join("1" if r else "0" for r in cfg.recurrent),
        "--mem-bits", str(cfg.mem_bits), "--leak-shift", str(cfg.leak_shift),
        "--conv", ",".join(":".join(map(str, c)) for c in cfg.conv), "--loss-on", st.loss_on,
    ]
    if cfg.hidden_bits != 1:
        args += ["--hidden-bits", str(cfg.hidden_bits)]
    if cfg.norm != "none":
        args += ["--norm", cfg.norm]
    if cfg.readout != "sum":
        args += ["--readout", cfg.readout]
    args += ["--adapt", str(cfg.adapt_shift)]  # spelt out even when off: its default is not off for keywords
    if cfg.adapt_shift > 0:
        args += ["--adapt-beta", repr(cfg.adapt_beta)]
        if cfg.adapt_layers != "dense":
            args += ["--adapt-layers", cfg.adapt_layers]
    if cfg.float_weights and cfg.float_membranes:
        args.append("--fp32")
    elif cfg.float_weights:
        args.append("--float-weights")
    elif cfg.float_membranes:
        args.append("--float-membranes")
    if not cfg.weight_reg:
        args.append("--no-weight-reg")
    if st.teacher_epochs > 0:
        args += ["--teacher-epochs", str(st.teacher_epochs), "--kd-weight", repr(st.kd_weight),
                 "--kd-temp", repr(st.kd_temp)]
    if st.dataset == "speech_commands":  # spelt out even when off: their defaults are not off
        args += ["--augment", st.augment, "--synthetic", str(st.synthetic)]
    elif st.dataset == "fsdd":
        args += ["--dataset", st.dataset, "--augment", st.augment]
    else:
        args += ["--dataset", st.dataset, "--ev-pool-shift", str(st.ev_pool_shift), "--ev-cap", str(st.ev_cap),
                 "--ev-window-us", str(st.ev_window_us), "--ev-steps", str(st.ev_steps)]
    if st.limit is not None:
        args += ["--limit", str(st.limit)]
    d0 = TrainSettings()  # the full-archive options: only where they differ (no effect on the shared split)
    if st.split_rule != d0.split_rule:
        args += ["--split-rule", st.split_rule]
    if st.unknown_percent != d0.unknown_percent:
        args += ["--unknown-percent", repr(st.unknown_percent)]
    if st.silence_percent != d0.silence_percent:
        args += ["--silence-percent", repr(st.silence_percent)]
    fixed = dataset_shape(st)
    unset = [f"{k}={getattr(cfg, k)}" for k in ("n_bands", "n_classes", "in_shift")
             if getattr(cfg, k) != fixed[k]]
    if unset:
        raise ValueError(f"no qsnn-train command reproduces {', '.join(unset)} (not command-line settings)")
    return shlex.join(args)


def settings_from_args(a: argparse.Namespace) -> tuple[QSNNConfig, TrainSettings]:
    """The architecture and training settings parsed arguments ask for (ValueError if invalid)."""
    def items(text: str) -> list[str]:
        return [x.strip() for x in text.split(",") if x.strip()]

    c0, d0 = QSNNConfig(), TrainSettings()
    event_data = a.dataset == "nmnist"
    ev_opts = {k: getattr(a, k) for k in ("ev_pool_shift", "ev_cap", "ev_window_us", "ev_steps")}
    if not event_data and any(v is not None for v in ev_opts.values()):
        raise ValueError(f"--ev-* options bin events; dataset {a.dataset} is audio")
    ev_opts = {k: getattr(d0, k) if v is None else v for k, v in ev_opts.items()}
    conv_text = a.conv if a.conv is not None else ("" if event_data else _conv_text(c0.conv))
    hidden_text = a.hidden if a.hidden is not None else ",".join(map(str, NMNIST_HIDDEN if event_data else c0.hidden))
    try:
        conv = tuple(_conv_layer(c) for c in items(conv_text))
        hidden = tuple(int(x) for x in items(hidden_text))
    except ValueError as e:
        raise ValueError(f"--conv {conv_text!r} / --hidden {hidden_text!r}: expected channels:kt:kf:stride[,...] "
                         f"and sizes[,...] ({e})") from e
    rec_text = a.recurrent if a.recurrent is not None else ",".join("1" if i == 0 else "0" for i in range(len(hidden)))
    fsdd = a.dataset == "fsdd"
    augment = a.augment if a.augment is not None else ("" if event_data else FSDD_AUGMENT if fsdd else SPEECH_AUGMENT)
    synthetic = a.synthetic if a.synthetic is not None else (0 if event_data or fsdd else SPEECH_SYNTHETIC)
    st = TrainSettings(epochs=a.epochs, batch_size=a.batch_size, lr=a.lr, weight_decay=a.weight_decay,
                       lambda_sr=a.lambda_sr, seed=a.seed, threads=a.threads, augment=augment,
                       limit=a.limit, device=a.device, gain_lr_scale=a.gain_lr_scale, binary_init_std=a.binary_init_std,
                       loss_on=a.loss_on, teacher_epochs=a.teacher_epochs, kd_weight=a.kd_weight,
                       kd_temp=a.kd_temp, synthetic=synthetic, dataset=a.dataset, split_rule=a.split_rule,
                       unknown_percent=a.unknown_percent, silence_percent=a.silence_percent, **ev_opts)
    cfg = QSNNConfig(hidden=hidden, recurrent=tuple(x == "1" for x in items(rec_text)),
                     mem_bits=a.mem_bits, leak_shift=a.leak_shift, conv=conv,
                     hidden_bits=a.hidden_bits, norm=a.norm,
                     float_weights=a.fp32 or a.float_weights, float_membranes=a.fp32 or a.float_membranes,
                     weight_reg=not a.no_weight_reg,
                     readout=a.readout,
                     adapt_shift=a.adapt if a.adapt is not None else (0 if event_data or not hidden else SPEECH_ADAPT),
                     adapt_beta=a.adapt_beta,
                     adapt_layers=a.adapt_layers,
                     **dataset_shape(st))
    return cfg, st


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    try:
        cfg, st = settings_from_args(a)
    except ValueError as e:
        print(f"qsnn-train: {e}", file=sys.stderr)
        return 2
    out = a.out or build_dir() / "train"
    try:
        res = train(cfg, st, a.data_root, out, resume=a.resume)
    except (FileNotFoundError, ValueError, SynthError) as e:
        print(f"qsnn-train: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun only rank 0 reports (it wrote the checkpoint)
        return 0
    summary = {"checkpoint": str(res.checkpoint), "command": command_for(cfg, st), "best_epoch": res.best_epoch,
               "val_accuracy": res.val_accuracy, "seconds": round(res.seconds, 1), "resumed_at_epoch": res.resumed_at,
               "seconds_before_resume": round(res.seconds_before, 1)}
    (Path(out) / "train_summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
