"""qsnn-stream-tune: fine-tune a trained keyword spotter for continuous audio.

A keyword spotter trained on 1 s clips always starts from a reset network and is scored on
its sum over the clip. Listening (docs/contract.md section 11) runs it without resets and
reads a leaky sum of its per-frame outputs. This stage trains the model for that use, on
streams built from the training split only:

- **Streams.** Each training sequence is ``--seq-seconds`` of audio: the split's keyword and
  ``_unknown_`` clips (augmented: speed, volume, shift) in a fresh random order per epoch,
  each after a gap of ``--gap`` seconds of a training-split ``_silence_`` recording at a random
  gain. The features come from the C front end run over the whole sequence
  (``qsnnkit.stream.stream_features``), exactly as the device computes them on a stream.
- **Scores.** The network runs over the sequence from one reset at its start; each class's
  score is the detector's leaky sum of the per-frame readout, ``S(t) = S(t-1) (1 - 2^-W) +
  r(t)`` (in float: the device floors), scaled by ``CLIP_FRAMES / 2^W`` into logits.
- **Loss.** Per keyword, inside its hit window (from ``KW_FROM_S`` after its start to
  ``LATE_S`` after its end, the benchmark's rule): the cross-entropy of its class at the frame
  where that class is most likely (max pooling) plus ``KEYWORD_DENSE`` times the window's mean.
  Every frame outside all hit windows is trained towards ``_silence_``, the frames of an
  ``_unknown_`` clip's window towards ``_unknown_``, and the ``HARD_NEGATIVES`` most
  keyword-like of those background frames per stream count again. Plus the WS-DR spike-rate
  term as in training.
- **Selection.** After each epoch the model runs the validation stream
  (``qsnnkit.stream.build_stream``, the split's clips, seed 0: the stream benchmarks/kws_stream.py
  chooses its setting on) through the integer-exact evaluation forward. Each epoch (and the
  initial model) is scored by the mean of its best hit rates at no more than ``--max-fa``, 5,
  20 and 100 false alarms per hour (``LOG_FA``; each over the smoothing shifts of ``--shifts``
  and all thresholds); the best is kept. The test split is never read.

The result is an ordinary checkpoint (same architecture, same contract): ``qsnn-convert``
turns it into a model folder, and the same model still classifies clips.

    qsnn-stream-tune --init firmware/models/default/model.safetensors --out build/stream
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from qsnnkit import spec
from qsnnkit import stream as S
from qsnnkit.cli_help import DefaultsHelp
from qsnnkit.spec import CLIP_FRAMES, HOP_LEN, SAMPLE_RATE

if TYPE_CHECKING:  # imported where used: --help stays fast
    from qsnnkit.train.model import QSNN

#: a keyword's hit window starts this long after the clip's start (nothing is heard before)
KW_FROM_S = 0.25
#: and ends this long after its end (the benchmark's rule: qsnnkit.stream.score_detections)
LATE_S = 0.5
#: an _unknown_ clip's frames are trained towards _unknown_ from/to these offsets; the rest of
#: its hit window is left free (the word has barely begun, or the sum still holds it)
UNKNOWN_FROM_S, UNKNOWN_TO_S = 0.3, 0.3
IGNORE = -100
#: weight of the keyword windows' mean cross-entropy next to their max-pooling term
KEYWORD_DENSE = 1.0
#: background frames per training stream where a keyword is most likely, trained harder
HARD_NEGATIVES = 4
#: false alarms per hour of the validation operating points: each epoch is scored by the mean
#: of its hit rates at these and at --max-fa (the low-false-alarm part of the curve; one
#: point alone, at a handful of false alarms on a 24-minute stream, is mostly noise)
LOG_FA = (5.0, 20.0, 100.0)


@dataclass
class StreamTuneSettings:
    epochs: int = 3
    lr: float = 3e-4
    weight_decay: float = 1e-4
    batch_size: int = 16
    seq_seconds: float = 6.0
    gap_s: tuple[float, float] = (0.2, 2.0)
    noise_gain: tuple[float, float] = (0.05, 0.6)
    augment: str = "speed,volume,shift"
    synthetic: int = 100
    smooth_shift: int = 4
    lambda_sr: float = 5e-3
    seed: int = 0
    threads: int = 2
    max_fa: float = 5.0
    shifts: tuple[int, ...] = (3, 4, 5)
    refractory: int = 50
    limit: int | None = None  # clips per split, for quick runs and tests

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs and batch size must be >= 1 and the learning rate > 0")
        if self.seq_seconds < 2.0:
            raise ValueError(f"a training sequence must hold at least one gap and one 1 s clip: "
                             f"--seq-seconds >= 2, got {self.seq_seconds}")
        if not 0 <= self.gap_s[0] <= self.gap_s[1] or not 0 <= self.noise_gain[0] <= self.noise_gain[1]:
            raise ValueError(f"gap {self.gap_s} and noise gain {self.noise_gain} must be ordered ranges >= 0")
        for w in (self.smooth_shift, *self.shifts):
            if not 0 <= w <= spec.DETECT_MAX_SHIFT:
                raise ValueError(f"smoothing shifts must be 0..{spec.DETECT_MAX_SHIFT}, got {w}")


@dataclass
class Sequences:
    """A batch of training streams: features, per-frame targets and keyword hit windows."""

    feats: np.ndarray  # uint8 [B, T, bands]
    targets: np.ndarray  # int64 [B, T]: class, or IGNORE
    windows: list[tuple[int, int, int, int]] = field(default_factory=list)  # (b, t_lo, t_hi, label)
    placed: list[list[tuple[int, int, int]]] = field(default_factory=list)  # per stream: (label, start, end) samples


def frame_end(t: np.ndarray | int) -> np.ndarray | int:
    """The stream sample at which frame t's window ends (qsnnkit.stream.Detection.time_s)."""
    return (np.asarray(t) + 2) * HOP_LEN


def build_sequences(clips: np.ndarray, labels: np.ndarray, order: np.ndarray, noise: np.ndarray,
                    classes: list[str], st: StreamTuneSettings, rng: np.random.Generator) -> list[Sequences]:
    """Training streams of st.seq_seconds from the clips in `order` (each once, gaps of
    training noise between them), grouped st.batch_size to a batch."""
    n_samples = int(st.seq_seconds * SAMPLE_RATE)
    silence, unknown = classes.index("_silence_"), classes.index("_unknown_")
    seqs: list[tuple[np.ndarray, list[tuple[int, int, int]]]] = []
    i = 0
    while i < len(order):
        pcm = np.zeros(n_samples, np.float64)
        placed: list[tuple[int, int, int]] = []  # (label, start, end)
        pos = 0
        while True:
            g = int(rng.uniform(*st.gap_s) * SAMPLE_RATE)
            g = min(g, n_samples - pos)
            if len(noise) and g > 0:
                bed = np.resize(noise[int(rng.integers(len(noise)))].astype(np.float64), g)
                pcm[pos:pos + g] = bed * rng.uniform(*st.noise_gain)
            pos += g
            if i >= len(order) or pos + clips.shape[1] > n_samples:
                break
            k = int(order[i])
            i += 1
            pcm[pos:pos + clips.shape[1]] += clips[k]
            placed.append((int(labels[k]), pos, pos + clips.shape[1]))
            pos += clips.shape[1]
        if not placed:  # a gap longer than the sequence: nothing would be learnt from it
            continue
        seqs.append((np.clip(np.round(pcm), -32768, 32767).astype(np.int16), placed))
    out: list[Sequences] = []
    for b0 in range(0, len(seqs), st.batch_size):
        chunk = seqs[b0:b0 + st.batch_size]
        feats = np.stack([S.stream_features(p) for p, _ in chunk])
        T = feats.shape[1]
        te = frame_end(np.arange(T))
        targets = np.full((len(chunk), T), silence, np.int64)
        windows: list[tuple[int, int, int, int]] = []
        late = int(LATE_S * SAMPLE_RATE)
        for b, (_, placed) in enumerate(chunk):
            for lab, s0, e0 in placed:
                hit = (te >= s0) & (te <= e0 + late)
                targets[b, hit] = IGNORE
                if lab == unknown:
                    sel = (te >= s0 + int(UNKNOWN_FROM_S * SAMPLE_RATE)) & (te <= e0 + int(UNKNOWN_TO_S * SAMPLE_RATE))
                    targets[b, sel] = unknown
                elif lab != silence:
                    idx = np.flatnonzero((te >= s0 + int(KW_FROM_S * SAMPLE_RATE)) & (te <= e0 + late))
                    if len(idx):
                        windows.append((b, int(idx[0]), int(idx[-1]) + 1, lab))
        out.append(Sequences(feats, targets, windows, [p for _, p in chunk]))
    return out


def leaky_logits(per_frame: torch.Tensor, shift: int) -> torch.Tensor:
    """[B, T, C] per-frame readouts -> the detector's leaky sums, scaled to clip logits."""
    decay = 1.0 - 2.0 ** -shift
    s = torch.zeros_like(per_frame[:, 0])
    outs = []
    for t in range(per_frame.shape[1]):
        s = s * decay + per_frame[:, t]
        outs.append(s)
    return torch.stack(outs, dim=1) * (CLIP_FRAMES / 2.0 ** shift)


def stream_loss(logits: torch.Tensor, seq: Sequences, keyword_mask: torch.Tensor,
                hard: int = HARD_NEGATIVES) -> tuple[torch.Tensor, torch.Tensor]:
    """(background loss, keyword max-pooling loss) of one batch. The background loss is the
    mean cross-entropy of every background frame plus, per stream, that of the ``hard``
    background frames where a keyword is most likely (where a false alarm would fire)."""
    tgt = torch.from_numpy(seq.targets).to(logits.device)
    C = logits.shape[-1]
    ce = F.cross_entropy(logits.reshape(-1, C), tgt.reshape(-1), ignore_index=IGNORE, reduction="none")
    ce = ce.view(tgt.shape)
    is_bg = tgt != IGNORE
    bg = ce[is_bg].mean() if bool(is_bg.any()) else torch.zeros((), device=logits.device)
    logp = F.log_softmax(logits, dim=-1)
    if hard > 0 and bool(is_bg.any()):
        kw_like = logp.masked_fill(~keyword_mask.view(1, 1, -1), -math.inf).max(dim=-1).values
        kw_like = kw_like.detach().masked_fill(~is_bg, -math.inf)
        k = min(hard, kw_like.shape[1])
        top = kw_like.topk(k, dim=1).indices  # [B, k]
        picked = ce.gather(1, top)
        ok = is_bg.gather(1, top)
        bg = bg + picked[ok].mean()
    if not seq.windows:
        return bg, torch.zeros((), device=logits.device)
    kw = []
    for b, lo, hi, lab in seq.windows:  # the best frame, and the window on average
        kw.append(-logp[b, lo:hi, lab].max() - KEYWORD_DENSE * logp[b, lo:hi, lab].mean())
    return bg, torch.stack(kw).mean()


@torch.no_grad()
def integer_readouts(model: QSNN, feats: np.ndarray) -> np.ndarray:
    """r_k(t) of a whole stream, int64 [T, C], from the model's (integer-exact) evaluation forward."""
    model.eval()
    o = model(torch.from_numpy(np.asarray(feats, np.uint8)[None]))
    scale = 2.0 ** model.readout_exponent()
    r = o.per_frame[0].double().numpy() / scale
    ri = np.rint(r)
    if np.abs(r - ri).max() != 0:
        raise AssertionError("the evaluation forward left the readout's integer grid")
    return ri.astype(np.int64)


def best_points(readouts: np.ndarray, truth: list[S.Keyword], hours: float, classes: list[str],
                shifts: tuple[int, ...], refractory: int, limits: list[float]) -> dict[float, dict[str, float]]:
    """Per false-alarm limit: the most keywords detected at <= that many false alarms per hour,
    over shifts and thresholds (each shift's curve computed once)."""
    curves = [(w, S.detection_curve(S.scores(readouts, w), truth, hours, w, refractory, S.keyword_mask(classes)))
              for w in shifts]
    out = {}
    for max_fa in limits:
        best = {"hit_rate": 0.0, "fa_per_hour": math.inf, "smooth_shift": shifts[0], "threshold": 0}
        for w, rows in curves:
            for r in rows:
                if r["fa_per_hour"] <= max_fa and (r["hit_rate"], -r["fa_per_hour"]) > (best["hit_rate"], -best["fa_per_hour"]):
                    best = {**r, "smooth_shift": w}
        out[max_fa] = best
    return out


def tune(init: Path, out_dir: Path, st: StreamTuneSettings, data_root: str | None, command: str) -> dict[str, object]:
    from qsnnkit import data
    from qsnnkit.dataset import load_split
    from qsnnkit.train import checkpoint
    from qsnnkit.train.augment import augment
    from qsnnkit.train.synth import synthesize

    t0 = time.time()
    model, meta = checkpoint.load(init)
    settings = meta.get("settings", {})
    if not isinstance(settings, dict) or settings.get("dataset", "speech_commands") != "speech_commands":
        raise ValueError(f"{init}: stream tuning is for keyword spotters trained on speech_commands")
    if not model.cfg.integer or model.cfg.readout != "sum":
        raise ValueError(f"{init}: only an integer model with the 'sum' readout runs as a stream on the device")
    classes = list(meta.get("classes", data.CLASSES))
    torch.manual_seed(st.seed)
    torch.set_num_threads(st.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    rng = np.random.default_rng([st.seed, 7])
    tr = load_split(data_root, "train", st.limit)
    silence = classes.index("_silence_")
    noise = tr.pcm[tr.labels == silence]
    clips, labels = tr.pcm[tr.labels != silence], tr.labels[tr.labels != silence]
    if st.synthetic > 0:
        s_pcm, s_labels = synthesize(st.synthetic, int(settings.get("seed", 0)), noise)
        clips, labels = np.concatenate([clips, s_pcm]), np.concatenate([labels, s_labels])
    val_items = data.list_split(data_root, "val")
    if st.limit is not None:
        val_items = val_items[: st.limit]
    v_pcm, v_truth, v_secs = S.build_stream(val_items, classes, seed=0)
    v_feats = S.stream_features(v_pcm)
    print(f"training streams from {len(clips)} clips ({len(noise)} noise recordings); validation stream "
          f"{v_secs / 60:.1f} min, {len(v_truth)} keywords", flush=True)

    def validate() -> dict[str, float]:
        r = integer_readouts(model, v_feats)
        pts = best_points(r, v_truth, v_secs / 3600, classes, st.shifts, st.refractory, sorted({*LOG_FA, st.max_fa}))
        print("  validation stream: " + ", ".join(f"{p['hit_rate']:.3f} at <= {f:g} FA/h" for f, p in pts.items()),
              flush=True)
        sel = float(np.mean([p["hit_rate"] for p in pts.values()]))
        return {**pts[st.max_fa], **{f"hit_rate_at_{f:g}_fa": p["hit_rate"] for f, p in pts.items()}, "select": sel}

    start = validate()
    print(f"before tuning: validation stream {start['hit_rate']:.3f} of keywords at {start['fa_per_hour']:.1f} FA/h "
          f"(W {start['smooth_shift']}, threshold {start['threshold']})", flush=True)
    kw_mask = torch.tensor([c not in S.NON_KEYWORDS for c in classes])
    model.tanh_t = 10.0  # the end of the training schedule's backward sharpness
    gains = [p for n, p in model.named_parameters() if n.startswith("gain")]
    others = [p for n, p in model.named_parameters() if not n.startswith("gain")]
    groups: list[dict[str, object]] = [{"params": others}, {"params": gains, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=st.lr,
                            weight_decay=st.weight_decay)
    sched: torch.optim.lr_scheduler.OneCycleLR | None = None
    best = (start["select"], -start["fa_per_hour"], -1, copy.deepcopy(model.state_dict()), start)
    history: list[dict[str, float]] = [{"epoch": -1, **start}]
    for ep in range(st.epochs):
        aug = augment(clips, noise, rng, st.augment) if st.augment else clips
        batches = build_sequences(aug, labels, rng.permutation(len(labels)), noise, classes, st, rng)
        if sched is None:  # sized by the first epoch; later ones may differ by a batch (random gaps)
            per_epoch = len(batches)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=st.lr, total_steps=st.epochs * per_epoch + 1)
        model.train()
        tot = np.zeros(3)
        bar = tqdm(batches, desc=f"stream epoch {ep + 1}/{st.epochs}", unit="batch")
        for seq in bar:
            o = model(torch.from_numpy(seq.feats))
            assert o.per_frame is not None
            logits = leaky_logits(o.per_frame, st.smooth_shift)
            bg, kw = stream_loss(logits, seq, kw_mask)
            reg = st.lambda_sr * torch.stack([(r - 0.5) ** 2 for r in o.rates]).mean()
            loss = bg + kw + reg
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched.last_epoch + 1 < sched.total_steps:
                sched.step()
            tot += [bg.item(), kw.item(), 1]
            bar.set_postfix(bg=f"{tot[0] / tot[2]:.3f}", kw=f"{tot[1] / tot[2]:.3f}")
        v = validate()
        rec = {"epoch": ep, "loss_background": tot[0] / tot[2], "loss_keyword": tot[1] / tot[2], **v}
        history.append(rec)
        print(f"epoch {ep + 1}: validation stream {v['hit_rate']:.3f} of keywords at {v['fa_per_hour']:.1f} FA/h "
              f"(W {v['smooth_shift']}, threshold {v['threshold']})", flush=True)
        if (v["select"], -v["fa_per_hour"]) > best[:2]:
            best = (v["select"], -v["fa_per_hour"], ep, copy.deepcopy(model.state_dict()), v)
    model.load_state_dict(best[3])
    model.tanh_t = 10.0
    init_hash = hashlib.sha256(Path(init).read_bytes()).hexdigest()[:16]
    meta = {**meta, "stream_tune": {"command": command, "settings": asdict(st), "init": str(init),
                                     "init_sha256": init_hash, "best_epoch": best[2], "val_stream": best[4],
                                     "history": history, "seconds": round(time.time() - t0, 1)}}
    ck = checkpoint.save(model, Path(out_dir) / "model.safetensors", meta)
    print(f"kept epoch {best[2] + 1 if best[2] >= 0 else 'none (the initial model)'}: validation stream "
          f"{best[4]['hit_rate']:.3f} at {best[4]['fa_per_hour']:.1f} FA/h; wrote {ck}", flush=True)
    return {"checkpoint": str(ck), "best_epoch": best[2], "val_stream": best[4], "history": history}


def parser() -> argparse.ArgumentParser:
    d = StreamTuneSettings()
    p = argparse.ArgumentParser(prog="qsnn-stream-tune", description=__doc__.split("\n\n")[0] + "\n\n" +
                                __doc__.split("\n\n")[1], formatter_class=DefaultsHelp)
    p.add_argument("--init", type=Path, required=True, help="the trained keyword spotter's checkpoint (safetensors)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: build/stream_tune)")
    p.add_argument("--data-root", default=None, help="dataset root (default: $QSNN_DATA_ROOT or ../shared/data)")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (AdamW, one-cycle)")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="training streams per batch")
    p.add_argument("--seq-seconds", type=float, default=d.seq_seconds, help="length of one training stream")
    p.add_argument("--gap", default=",".join(map(str, d.gap_s)), help="noise gap before each clip, seconds: MIN,MAX")
    p.add_argument("--noise-gain", default=",".join(map(str, d.noise_gain)), help="gain of the gap noise: MIN,MAX")
    p.add_argument("--augment", default=d.augment, help="audio augmentation of the clips (train/augment.py kinds)")
    p.add_argument("--synthetic", type=int, default=d.synthetic,
                   help="espeak-ng clips per keyword and for _unknown_ added to the training clips (0: none)")
    p.add_argument("--smooth-shift", type=int, default=d.smooth_shift, help="W of the leaky sum the loss reads")
    p.add_argument("--lambda-sr", type=float, default=d.lambda_sr, help="WS-DR spike-rate loss weight (0: off)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--threads", type=int, default=d.threads, help="torch threads (results depend on it)")
    p.add_argument("--max-fa", type=float, default=d.max_fa,
                   help="selection: an operating point (false alarms per hour) scored with those of LOG_FA")
    p.add_argument("--shifts", default=",".join(map(str, d.shifts)), help="selection: smoothing shifts W tried")
    p.add_argument("--refractory", type=int, default=d.refractory, help="detector refractory period, frames")
    p.add_argument("--limit", type=int, default=None, help="clips per split (quick runs and tests)")
    return p


def _pair(text: str, what: str) -> tuple[float, float]:
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--{what} takes MIN,MAX, got {text!r}") from None
    return a, b


def main(argv: list[str] | None = None) -> int:
    from qsnnkit.paths import build_dir
    from qsnnkit.train.synth import SynthError

    a = parser().parse_args(argv)
    try:
        st = StreamTuneSettings(epochs=a.epochs, lr=a.lr, weight_decay=a.weight_decay, batch_size=a.batch_size,
                                seq_seconds=a.seq_seconds, gap_s=_pair(a.gap, "gap"),
                                noise_gain=_pair(a.noise_gain, "noise-gain"), augment=a.augment,
                                synthetic=a.synthetic, smooth_shift=a.smooth_shift, lambda_sr=a.lambda_sr,
                                seed=a.seed, threads=a.threads, max_fa=a.max_fa,
                                shifts=tuple(int(v) for v in a.shifts.split(",")), refractory=a.refractory,
                                limit=a.limit)
        argv_ = sys.argv[1:] if argv is None else argv
        res = tune(a.init, a.out or build_dir() / "stream_tune", st, a.data_root,
                   "qsnn-stream-tune " + " ".join(shlex.quote(x) for x in argv_))
    except (FileNotFoundError, ValueError, SynthError) as e:
        print(f"qsnn-stream-tune: {e}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in res.items() if k != "history"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
