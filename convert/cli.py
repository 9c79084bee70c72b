"""qsnn-convert: trained checkpoint -> integer model (.npz + hash) -> C sources, and a report.

The report evaluates the converted model with the Python integer reference on a split and
checks that the PyTorch evaluation forward gives exactly the same per-class outputs.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qsnnkit import bounds, data, nmnist
from qsnnkit.spec import KERNELS
from qsnnkit import reference
from qsnnkit.convert import codegen
from qsnnkit.convert.integerize import integerize
from qsnnkit.model import ConvertedModel, events_specification
from qsnnkit.paths import build_dir
from qsnnkit.train import checkpoint
from qsnnkit.train import cli as train_cli
from qsnnkit.train.trainer import TrainSettings
from qsnnkit.dataset import features, load_split
from qsnnkit.train.model import QSNN
from qsnnkit.cli_help import DefaultsHelp


def compare(model: QSNN, cm: ConvertedModel, feats: np.ndarray, labels: np.ndarray) -> dict[str, object]:
    """Reference accuracy, PyTorch-eval accuracy, exact agreement, firing rates."""
    ref, tr = reference.run_batch(cm, feats, trace=True)
    assert tr is not None
    with torch.no_grad():
        model.eval()
        t_out = model(torch.from_numpy(feats)).logits_sum.numpy() / 2.0 ** cm.readout_exp
    same = np.all(t_out == ref, axis=1)
    first = None
    if not same.all():
        i = int(np.argmin(same))
        k = int(np.argmax(t_out[i] != ref[i]))
        first = {"clip": i, "class": k, "torch": float(t_out[i, k]), "reference": int(ref[i, k])}
    right = reference.predict(ref) == labels
    return {
        "samples": int(len(labels)),
        # per sample, in split order: 1 where the integer model's answer is right (paired statistics)
        "correct": "".join("1" if c else "0" for c in right),
        "reference_accuracy": float(right.mean()),
        "torch_accuracy": float((t_out.argmax(1) == labels).mean()),
        "torch_reference_agreement": float(same.mean()),
        "first_mismatch": first,
        "firing_rates": [float(s.mean()) for s in tr.spk],
        **reference.operation_counts(cm, tr),
    }


def input_spec(meta: dict[str, Any]) -> tuple[str, dict[str, object] | None]:
    """The dataset a checkpoint was trained on and, for event data, its input specification."""
    st = TrainSettings(**meta.get("settings", {}))
    if st.dataset == "nmnist":
        return st.dataset, events_specification(st.events(), st.ev_steps, st.dataset)
    return st.dataset, None


def eval_split(cm: ConvertedModel, data_root: str | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Inputs uint8 [N, steps, n_bands] and labels of a split, through the C front end or binner."""
    if cm.input_kind == "events":
        ev = nmnist.load_frames(data_root, split, cm.event_config(), cm.steps)
        return ev.frames, ev.labels
    sp = load_split(data_root, split, dataset=cm.dataset)
    return features(sp.pcm, desc=f"{split} features"), sp.labels


def provenance(ck: Path, model: QSNN, meta: dict[str, Any], data_root: str | None) -> dict[str, object]:
    st = meta.get("settings", {})
    try:
        command = train_cli.command_for(model.cfg, TrainSettings(**st))
    except (TypeError, ValueError) as e:
        command = f"(not reproducible from the command line: {e})"
    return {
        "checkpoint": ck.name, "train_command": command, "train_settings": st, "best_epoch": meta.get("best_epoch"),
        "val_accuracy": meta.get("val_accuracy"),
        "data": data.dataset_name(str(st.get("dataset", "speech_commands")), data_root),
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "machine": platform.machine(),
        # where the checkpoint was trained (older checkpoints do not record it)
        **({"trained_on": meta["platform"]} if isinstance(meta.get("platform"), dict) else {}),
        **({"stream_tune": {k: v for k, v in meta["stream_tune"].items() if k != "history"}}
           if isinstance(meta.get("stream_tune"), dict) else {}),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="qsnn-convert", description=__doc__,
                                formatter_class=DefaultsHelp)
    p.add_argument("checkpoint", type=Path, nargs="?", default=None,
                   help="trained checkpoint (default: build/train/model.safetensors)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: build/model)")
    p.add_argument("--data-root", default=None, help="dataset root (default: $QSNN_DATA_ROOT or ../shared/data)")
    p.add_argument("--kernels", default=None,
                   help=f"per-layer C kernels, comma-separated ({', '.join(KERNELS)}; default: AUTO for every "
                        "layer, the core picks; docs/firmware.md says what each runs)")
    p.add_argument("--split", default="test",
                   help="split(s) to evaluate the converted model on, comma-separated: train, val, test, all; "
                        "none: skip")
    a = p.parse_args(argv)
    splits = [] if a.split == "none" else [x.strip() for x in a.split.split(",") if x.strip()]
    bad = [x for x in splits if x not in ("train", "val", "test", "all")]
    if bad:
        p.error(f"--split: unknown split(s) {bad}; choose from train, val, test, all, none")
    ck = a.checkpoint or build_dir() / "train" / "model.safetensors"
    out = a.out or build_dir() / "model"
    try:
        model, meta = checkpoint.load(ck)  # its errors name the file
        prov = provenance(ck, model, meta, a.data_root)
    except (FileNotFoundError, ValueError) as e:
        print(f"qsnn-convert: {e}", file=sys.stderr)
        return 2
    try:
        classes = meta.get("classes", data.CLASSES)
        if not isinstance(classes, list):
            raise ValueError(f"class names must be a list, got {type(classes).__name__}")
        _, frontend = input_spec(meta)
        cm = integerize(model, classes, provenance=prov, frontend=frontend)
    except ValueError as e:  # includes bounds.BoundsError: the layer, row and bound
        print(f"qsnn-convert: {ck}: {e}", file=sys.stderr)
        return 2
    kernels = None if a.kernels is None else [k.strip().upper() for k in a.kernels.split(",")]
    try:
        resolved = codegen.layer_kernels(cm, kernels)
    except ValueError as e:
        print(f"qsnn-convert: --kernels {a.kernels}: {e}", file=sys.stderr)
        return 2
    cm.save(out / "model.npz")
    codegen.emit(cm, out, kernels)
    report: dict[str, object] = {"model_hash": cm.hash_hex, "format_version": cm.format_version,
                                 "bytes": codegen.weight_bytes(cm), "state_bytes": codegen.arena_bytes(cm),
                                 "kernels": resolved,
                                 "overflow_proof": [{"where": b.where, "quantity": b.quantity, "worst": b.worst,
                                                     "limit": b.limit} for b in bounds.check(cm)],
                                 "provenance": prov}
    for split in splits:
        report[split] = compare(model, cm, *eval_split(cm, a.data_root, split))
    (out / "report.json").write_text(json.dumps(report, indent=1))
    # the per-sample answers stay in the report file
    shown = {k: ({kk: vv for kk, vv in v.items() if kk != "correct"} if isinstance(v, dict) and k in splits else v)
             for k, v in report.items() if k != "provenance"}
    print(json.dumps(shown, indent=1))
    print(f"wrote {out / 'model.npz'}, {out / 'qsnn_model.h'}, {out / 'qsnn_model.c'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
