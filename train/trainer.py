"""Training loop: cross-entropy on the clip's summed readout + the WS-DR spike-rate term."""
from __future__ import annotations

import copy
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from qsnnkit import data, nmnist
from qsnnkit.events import EventConfig
from qsnnkit.train import checkpoint, distributed, resume as resume_state
from qsnnkit.dataset import Split, features, load_split
from qsnnkit.train.augment import augment, feature_mean, mask_features, parse_kinds
from qsnnkit.train.synth import synthesize
from qsnnkit.train.model import QSNN, QSNNConfig

SILENCE = data.CLASSES.index("_silence_")
#: dataset -> its class names (the label is the position)
DATASETS: dict[str, tuple[str, ...]] = {"speech_commands": tuple(data.CLASSES), "fsdd": data.FSDD_CLASSES,
                                         "nmnist": nmnist.CLASSES}
#: peak learning rate of the float teacher (the float twin's setting in docs/results.md)
TEACHER_LR = 5e-3


@dataclass
class TrainSettings:
    epochs: int = 40
    batch_size: int = 64
    lr: float = 1e-2
    weight_decay: float = 1e-4
    lambda_sr: float = 5e-3  # WS-DR spike-rate regulation weight; 0 disables it
    seed: int = 0
    #: torch threads: results depend on the count (not on the cores), so it is part of the recipe
    threads: int = 2
    #: augmentation kinds, comma-separated (train/augment.py: speed, volume, shift, noise, mask);
    #: '' for none. True/False (checkpoints from before the kinds) read as "shift,noise"/''.
    augment: str = ""
    limit: int | None = None  # clips per split, for quick runs and tests
    device: str = "cpu"
    gain_lr_scale: float = 1.0  # learning-rate factor of the power-of-two gains (0: frozen)
    binary_init_std: float = 1.0  # std of the latent binary weights at init (0: 1/sqrt(fan_in))
    #: cross-entropy on the readout's sum over the clip's frames ("sum") or its mean ("mean": 49x
    #: softer logits, which left the network underfitting: docs/results.md, the readout lever)
    loss_on: str = "sum"
    #: knowledge distillation: train a float twin (float weights and membranes, batch norm,
    #: peak lr TEACHER_LR) for this many epochs first, then add its softened outputs to the
    #: loss (0: no teacher)
    teacher_epochs: int = 0
    kd_weight: float = 0.5  # share of the distillation term in the loss (the rest: cross-entropy)
    kd_temp: float = 2.0  # softmax temperature of both outputs in the distillation term
    #: espeak-ng keywords added to the training split: this many clips per keyword and for
    #: _unknown_ (train/synth.py; 0: none)
    synthetic: int = 0
    #: a full official Speech Commands archive as the 12-class task (qsnnkit.data.ArchiveOptions;
    #: no effect on the shared 12-class test-set layout): the split rule ("speaker" hash or the
    #: archive's "official" lists) and the _unknown_ / _silence_ clips per 100 known-word clips
    split_rule: str = "speaker"
    unknown_percent: float = 10.0
    silence_percent: float = 10.0
    #: what the network learns: "speech_commands" or "fsdd" (spoken digits; audio through the C
    #: front end) or "nmnist" (address events through the C binner, qsnnkit/nmnist.py)
    dataset: str = "speech_commands"
    #: event binning of an event dataset (docs/contract.md section 12): pooling shift, count cap,
    #: step length and steps per sample
    ev_pool_shift: int = nmnist.DEFAULT_EVENTS.pool_shift
    ev_cap: int = nmnist.DEFAULT_EVENTS.cap
    ev_window_us: int = nmnist.DEFAULT_EVENTS.window_us
    ev_steps: int = nmnist.DEFAULT_STEPS

    def __post_init__(self) -> None:
        self.augment = parse_kinds(self.augment)
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}: choose from {', '.join(DATASETS)}")
        if self.dataset == "nmnist":
            if self.augment or self.synthetic:
                raise ValueError("--augment and --synthetic are audio levers; N-MNIST trains on its events as "
                                 "recorded")
            self.events()  # range checks of the binning, with their reasons
        if self.dataset == "fsdd" and ("noise" in self.augment.split(",") or self.synthetic):
            raise ValueError("FSDD has no background-noise clips and no synthetic digits: its augmentation "
                             "kinds are speed, volume, shift and mask, and --synthetic must be 0")

    def events(self) -> EventConfig:
        """The event binning of an event dataset."""
        return EventConfig(pool_shift=self.ev_pool_shift, cap=self.ev_cap, window_us=self.ev_window_us)


@dataclass
class TrainResult:
    checkpoint: Path
    best_epoch: int
    val_accuracy: float
    history: list[dict[str, float]] = field(default_factory=list)
    #: seconds of training, those of the interrupted attempts it resumed included
    seconds: float = 0.0
    #: the epoch it continued at (0: a run from the start) and the seconds spent before it
    resumed_at: int = 0
    seconds_before: float = 0.0


@torch.no_grad()
def evaluate(model: QSNN, feats: np.ndarray, labels: np.ndarray, batch: int = 512,
             device: str = "cpu") -> tuple[float, list[float], np.ndarray]:
    """Accuracy, firing rate per hidden layer, summed logits [N, C] of the evaluation forward."""
    model.eval()
    outs, rates = [], np.zeros(len(model.spec))
    for i in range(0, len(feats), batch):
        fb = torch.from_numpy(feats[i:i + batch]).to(device)
        o = model(fb)
        outs.append(o.logits_sum.cpu())
        rates += np.array([r.item() for r in o.rates]) * len(fb)
    logits = torch.cat(outs).numpy()
    acc = float((logits.argmax(1) == labels).mean())
    return acc, list(rates / len(feats)), logits


@dataclass
class FeatureBank:
    """Precomputed front-end features (for machines without the dataset or a C compiler):
    `train_aug[k]` is the k-th augmented copy of the train split, used at epochs k, k+K, ..."""

    train: np.ndarray
    train_labels: np.ndarray
    train_aug: np.ndarray
    val: np.ndarray
    val_labels: np.ndarray
    test: np.ndarray
    test_labels: np.ndarray

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, **{k: getattr(self, k) for k in self.__dataclass_fields__})

    @staticmethod
    def load(path: str | Path) -> "FeatureBank":
        with np.load(path, allow_pickle=False) as z:
            return FeatureBank(**{k: z[k] for k in FeatureBank.__dataclass_fields__})


def make_bank(data_root: str | Path | None, copies: int, seed: int = 0) -> FeatureBank:
    rng = np.random.default_rng(seed)
    tr, va, te = (load_split(data_root, s) for s in ("train", "val", "test"))
    noise = tr.pcm[tr.labels == SILENCE]
    aug = np.stack([features(augment(tr.pcm, noise, rng, "shift,noise"), cache=False)
                    for _ in tqdm(range(copies), desc="augmented copies")])
    return FeatureBank(features(tr.pcm), tr.labels, aug, features(va.pcm), va.labels, features(te.pcm), te.labels)


def teacher_settings(cfg: QSNNConfig, st: TrainSettings) -> tuple[QSNNConfig, TrainSettings]:
    """The float teacher of a distilled run: the student's architecture as a float twin with
    batch norm, trained on the same data and seed, with no teacher of its own."""
    tcfg = replace(cfg, float_weights=True, float_membranes=True, norm="bn")
    tst = replace(st, epochs=st.teacher_epochs, lr=TEACHER_LR, teacher_epochs=0)
    return tcfg, tst


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, temp: float) -> torch.Tensor:
    """temp^2 * KL(softmax(teacher / temp) || softmax(student / temp)), mean over the batch."""
    return F.kl_div(F.log_softmax(student / temp, dim=1), F.log_softmax(teacher / temp, dim=1),
                    reduction="batchmean", log_target=True) * temp * temp


def training_platform(device: str = "cpu") -> dict[str, object]:
    """What a run's float results depend on besides the code, the data and the settings:
    PyTorch picks its CPU kernels by the vector extensions it finds (``cpu_capability``) and
    splits reductions by the thread count, so the same seed gives the same model only where
    these match too. Recorded in the checkpoint's metadata; the converter's report copies it."""
    out: dict[str, object] = {"torch": torch.__version__, "machine": platform.machine(),
                              "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                              "threads": torch.get_num_threads(), "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return out


def train(cfg: QSNNConfig, st: TrainSettings, data_root: str | Path | None, out_dir: str | Path,
          bank: FeatureBank | None = None, resume: bool = False) -> TrainResult:
    """Train, keeping the best validation epoch's weights, into ``out_dir``/model.safetensors.
    After every epoch the whole training state goes to ``out_dir``/resume.safetensors (removed
    once the checkpoint is written); ``resume`` continues from it when this same run left it
    (train/resume.py), to the same bits as a run that was never stopped."""
    t0 = time.time()
    if st.synthetic < 0:
        raise ValueError(f"synthetic clips per word must be >= 0, got {st.synthetic}")
    if not 0.0 <= st.kd_weight <= 1.0 or st.kd_temp <= 0 or st.teacher_epochs < 0:
        raise ValueError(f"distillation settings out of range: teacher_epochs {st.teacher_epochs} (>= 0), "
                         f"kd_weight {st.kd_weight} (0..1), kd_temp {st.kd_temp} (> 0)")
    if st.teacher_epochs > 0 and st.augment:
        raise ValueError("distillation uses the teacher's outputs on the fixed training features: "
                         "it cannot be combined with --augment")
    teacher_logits: torch.Tensor | None = None
    if st.teacher_epochs > 0:
        tcfg, tst = teacher_settings(cfg, st)
        print(f"training the float teacher ({st.teacher_epochs} epochs)", flush=True)
        tres = train(tcfg, tst, data_root, Path(out_dir) / "teacher", bank=bank, resume=resume)
        teacher, _ = checkpoint.load(tres.checkpoint)
        teacher.to(st.device)
        print(f"float teacher: validation {tres.val_accuracy:.3f} (epoch {tres.best_epoch})", flush=True)
    dist = distributed.from_env(st.device)  # under torchrun: data-parallel (train/distributed.py)
    if dist is not None and st.teacher_epochs > 0:
        raise ValueError("distillation is single-process only: run the teacher without torchrun")
    if dist is not None and st.device.startswith("cuda"):
        st = replace(st, device=f"cuda:{os.environ.get('LOCAL_RANK', '0')}")
    torch.manual_seed(st.seed)
    torch.set_num_threads(st.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    rng = np.random.default_rng(st.seed)
    out_dir = Path(out_dir)
    if st.dataset == "nmnist":
        if bank is not None:
            raise ValueError("a precomputed feature bank holds audio features; N-MNIST bins its own events")
        n_in = st.events().inputs
        if cfg.n_bands != n_in or cfg.n_classes != len(nmnist.CLASSES):
            raise ValueError(f"an N-MNIST model reads {n_in} inputs per step (the binning) and has "
                             f"{len(nmnist.CLASSES)} classes; the configuration has {cfg.n_bands} and {cfg.n_classes}")
        ev_tr = nmnist.load_frames(data_root, "train", st.events(), st.ev_steps, st.limit)
        ev_va = nmnist.load_frames(data_root, "val", st.events(), st.ev_steps, st.limit)
        tr_feats, tr_labels, va_feats, va_labels = ev_tr.frames, ev_tr.labels, ev_va.frames, ev_va.labels
    elif bank is None:
        archive = data.ArchiveOptions(split_rule=st.split_rule, unknown_percent=st.unknown_percent,
                                      silence_percent=st.silence_percent, seed=st.seed)
        tr: Split = load_split(data_root, "train", st.limit, archive, dataset=st.dataset)
        va: Split = load_split(data_root, "val", st.limit, archive, dataset=st.dataset)
        tr_feats, tr_labels = features(tr.pcm, desc="train features"), tr.labels
        va_feats, va_labels = features(va.pcm, desc="val features"), va.labels
        noise = tr.pcm[tr.labels == SILENCE]
        if st.synthetic > 0:
            s_pcm, s_labels = synthesize(st.synthetic, st.seed, noise)
            tr = Split(np.concatenate([tr.pcm, s_pcm]), np.concatenate([tr.labels, s_labels]), tr.paths)
            tr_feats = np.concatenate([tr_feats, features(s_pcm, desc="synthetic features")])
            tr_labels = tr.labels
            print(f"training split: {len(tr_labels) - len(s_labels)} clips + {len(s_labels)} espeak-ng clips",
                  flush=True)
    else:
        if st.synthetic > 0:
            raise ValueError("synthetic keywords are made from the dataset's training split: "
                             "not available with a precomputed feature bank")
        tr_feats, tr_labels, va_feats, va_labels = bank.train, bank.train_labels, bank.val, bank.val_labels
    if st.teacher_epochs > 0:
        # once, on the device, on the scale the student's loss uses (the features are fixed)
        _, _, tl_all = evaluate(teacher, tr_feats, tr_labels, device=st.device)
        if st.loss_on == "mean":
            tl_all = tl_all / tr_feats.shape[1]
        teacher_logits = torch.from_numpy(tl_all).to(st.device)

    model = QSNN(cfg).to(st.device)
    net: torch.nn.Module = model  # what the batches go through: the model, or DDP around it
    centre = feature_mean(tr_feats)
    model.feat_mu.copy_(torch.from_numpy(centre).float())
    centre = centre.astype(np.uint8)
    if st.binary_init_std > 0 and not cfg.float_weights:
        # Binary layers see only sign(standardised w): the latent scale sets how far one
        # optimizer step moves a weight relative to its spread, i.e. how often signs flip.
        # Only binary latents (recurrent weights always are; hidden ones at 1 bit): wider
        # codes take their scale from the latent itself, so std 1 would mean huge currents.
        with torch.no_grad():
            for li, p_ in enumerate(model.w):
                if li > 0 and cfg.hidden_bits == 1:
                    p_.normal_(0.0, st.binary_init_std)
            for p_ in model.w_rec:
                p_.normal_(0.0, st.binary_init_std)
    gains = [p for n, p in model.named_parameters() if n.startswith("gain")]
    others = [p for n, p in model.named_parameters() if not n.startswith("gain")]
    groups: list[dict[str, Any]] = [{"params": others}]
    if st.gain_lr_scale > 0:
        groups.append({"params": gains, "lr": st.lr * st.gain_lr_scale, "weight_decay": 0.0})
    else:
        for p_ in gains:
            p_.requires_grad_(False)
    if dist is not None:
        from torch.nn.parallel import DistributedDataParallel

        # some parameters take no gradient in a given configuration (e.g. an unused readout
        # form's), as in a single process, where AdamW skips them too
        net = DistributedDataParallel(model, find_unused_parameters=True)
    opt = torch.optim.AdamW(groups, lr=st.lr, weight_decay=st.weight_decay)
    max_lrs = [st.lr] + ([st.lr * st.gain_lr_scale] if st.gain_lr_scale > 0 else [])
    steps_per_epoch = math.ceil(len(tr_labels) / st.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lrs, total_steps=st.epochs * steps_per_epoch)
    best: tuple[float, int, dict] = (-1.0, -1, {})
    history: list[dict[str, float]] = []
    plat = training_platform(st.device)
    identity: dict[str, object] = {"config": cfg.to_json(), "settings": asdict(st), "code": resume_state.code_hash()}
    state_file = out_dir / resume_state.STATE_FILE
    start, seconds_before = 0, 0.0
    if resume:
        got = resume_state.load(state_file, identity, plat)
        if got is not None:
            model.load_state_dict(got.model)
            opt.load_state_dict(got.optimizer)
            sched.load_state_dict(got.scheduler)
            torch.set_rng_state(got.torch_rng)
            if got.cuda_rng and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(got.cuda_rng)
            rng.bit_generator.state = got.numpy_rng
            best = (got.best_val, got.best_epoch, got.best_model)
            history, start, seconds_before = got.history, got.next_epoch, got.seconds
            print(f"resume: continuing {out_dir} at epoch {start} of {st.epochs} "
                  f"({seconds_before:.0f} s of training before)", flush=True)
    bar = tqdm(range(start, st.epochs), desc="training", unit="epoch", initial=start, total=st.epochs,
               disable=dist is not None and not dist.main)
    # the curve as it goes, one JSON line per epoch: a long run that is stopped still leaves it,
    # and two runs can be compared epoch by epoch (the checkpoint's metadata keeps it too)
    hist_file = out_dir / "history.jsonl"
    if dist is None or dist.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        hist_file.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in history))
    for ep in bar:
        # Backward sharpness of the binary sign, log-uniform 0.1 -> 10 (Q-SNN schedule).
        model.tanh_t = float(10 ** (-1 + 2 * ep / max(1, st.epochs - 1)))
        kinds = st.augment.split(",") if st.augment else []
        if not set(kinds) - {"mask"}:
            feats = tr_feats
        elif bank is not None:  # precomputed shift+noise copies
            feats = bank.train_aug[ep % len(bank.train_aug)]
        else:
            feats = features(augment(tr.pcm, noise, rng, st.augment), cache=False)
        if "mask" in kinds:
            feats = mask_features(feats, centre, rng)
        perm = rng.permutation(len(tr_labels))
        model.train()
        tot_loss, correct, rate_sum = 0.0, 0, np.zeros(len(model.spec))
        shard_clips = 0  # clips this process ran this epoch (all of them unless data-parallel)
        for b in range(steps_per_epoch):
            idx = batch = perm[b * st.batch_size:(b + 1) * st.batch_size]
            if dist is not None:  # this process's shard of the global batch
                idx = dist.shard(batch)
            shard_clips += len(idx)
            fb = torch.from_numpy(feats[idx]).to(st.device)
            yb = torch.from_numpy(tr_labels[idx]).to(st.device)
            o = net(fb)
            logits = o.logits_sum / fb.shape[1] if st.loss_on == "mean" else o.logits_sum
            ce = F.cross_entropy(logits, yb)
            rates = o.rates
            if teacher_logits is not None:
                tl = teacher_logits[torch.from_numpy(idx).to(st.device)]
                ce = (1.0 - st.kd_weight) * ce + st.kd_weight * distill_loss(logits, tl, st.kd_temp)
            if dist is not None:  # DDP averages over ranks: see train/distributed.py
                rates = dist.global_rates(rates, len(idx), len(batch))
            reg = st.lambda_sr * torch.stack([(r - 0.5) ** 2 for r in rates]).mean() if st.lambda_sr > 0 else None
            loss = ce if dist is None else ce * dist.ce_scale(len(idx), len(batch))
            if reg is not None:
                loss = loss + reg
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += (ce.item() + (reg.item() if reg is not None else 0.0)) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            rate_sum += np.array([r.item() for r in o.rates]) * len(idx)
        if dist is not None:  # the epoch's numbers over every shard
            summed = dist.sum([tot_loss, float(correct), *rate_sum.tolist()])
            tot_loss, correct, rate_sum = summed[0], int(round(summed[1])), np.array(summed[2:])
            if not dist.main:  # rank 0 evaluates and keeps the best epoch
                continue
        va_acc, va_rates, _ = evaluate(model, va_feats, va_labels, device=st.device)
        n = len(tr_labels)
        rec = {"epoch": ep, "clips": n, "loss": tot_loss / n, "train_acc": correct / n,
               "val_acc": va_acc, **{f"rate{i}": r for i, r in enumerate(rate_sum / n)}}
        history.append(rec)
        with hist_file.open("a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
        bar.set_postfix(loss=f"{rec['loss']:.3f}", train=f"{rec['train_acc']:.3f}", val=f"{va_acc:.3f}")
        if va_acc > best[0]:
            best = (va_acc, ep, copy.deepcopy(model.state_dict()))
        resume_state.save(state_file, resume_state.State(
            next_epoch=ep + 1, seconds=seconds_before + time.time() - t0, history=history, best_val=best[0],
            best_epoch=best[1], model=model.state_dict(), best_model=best[2], optimizer=opt.state_dict(),
            scheduler=sched.state_dict(), torch_rng=torch.get_rng_state(),
            cuda_rng=list(torch.cuda.get_rng_state_all()) if st.device.startswith("cuda") else [],
            numpy_rng=resume_state.numpy_state(rng), platform=plat), identity)
    if dist is not None and not dist.main:  # rank 0 writes the checkpoint
        distributed.close(dist)
        return TrainResult(checkpoint=out_dir / "model.safetensors", best_epoch=-1, val_accuracy=float("nan"),
                           history=[], seconds=seconds_before + time.time() - t0, resumed_at=start,
                           seconds_before=seconds_before)
    model.load_state_dict(best[2])
    model.tanh_t = 10.0
    meta = {"settings": asdict(st), "best_epoch": best[1], "val_accuracy": best[0],
            "classes": list(DATASETS[st.dataset]), "torch": torch.__version__, "history": history,
            "platform": plat}
    model.to("cpu")
    if dist is not None:
        meta["distributed"] = {"world_size": dist.world, "backend": dist.backend,
                               "rank0_clips_per_epoch": shard_clips}
    ck = checkpoint.save(model, out_dir / "model.safetensors", meta)
    state_file.unlink(missing_ok=True)  # finished: nothing to resume
    distributed.close(dist)
    return TrainResult(checkpoint=ck, best_epoch=best[1], val_accuracy=best[0], history=history,
                       seconds=seconds_before + time.time() - t0, resumed_at=start,
                       seconds_before=seconds_before)
