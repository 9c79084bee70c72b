"""The PyTorch evaluation forward of a trained checkpoint on dataset splits, for models that
have no integer form (float twins, the measured readout levers): what
qsnn-convert's report gives for convertible ones, without the integer reference.

    python -m qsnnkit.train.evaluate build/train/model.safetensors --split val,test --json out.json
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qsnnkit.cli_help import DefaultsHelp

if TYPE_CHECKING:  # numpy is imported where used: --help stays fast
    import numpy as np


def split_inputs(settings: Mapping[str, Any], data_root: str | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 inputs [N, steps, n_in] and labels of a split, for the dataset a checkpoint was trained on."""
    from qsnnkit import nmnist
    from qsnnkit.dataset import features, load_split
    from qsnnkit.train.trainer import TrainSettings

    st = TrainSettings(**settings)
    if st.dataset == "nmnist":
        ev = nmnist.load_frames(data_root, split, st.events(), st.ev_steps)
        return ev.frames, ev.labels
    sp = load_split(data_root, split, dataset=st.dataset)
    return features(sp.pcm, desc=f"{split} features"), sp.labels


def evaluate_checkpoint(ck: str | Path, data_root: str | None, splits: list[str]) -> dict[str, object]:
    from qsnnkit.train import checkpoint
    from qsnnkit.train.trainer import evaluate

    model, meta = checkpoint.load(ck)
    out: dict[str, object] = {"checkpoint": str(ck), "convertible": not model.cfg.not_convertible,
                              "not_convertible": model.cfg.not_convertible}
    for split in splits:
        x, y = split_inputs(meta.get("settings", {}), data_root, split)
        acc, rates, logits = evaluate(model, x, y)
        out[split] = {"samples": int(len(y)), "torch_accuracy": acc, "firing_rates": rates,
                      # per sample, in split order: 1 where the answer is right (paired statistics)
                      "correct": "".join("1" if c else "0" for c in logits.argmax(1) == y)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m qsnnkit.train.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=DefaultsHelp)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data-root", default=None, help="dataset root (default: $QSNN_DATA_ROOT or ../shared/data)")
    p.add_argument("--split", default="val,test", help="comma-separated splits: train, val, test, all")
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    a = p.parse_args(argv)
    try:
        res = evaluate_checkpoint(a.checkpoint, a.data_root, [s for s in a.split.split(",") if s])
    except (FileNotFoundError, ValueError) as e:
        print(f"qsnn-evaluate: {e}", file=sys.stderr)
        return 2
    if a.json is not None:
        a.json.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps({k: ({kk: vv for kk, vv in v.items() if kk != "correct"} if isinstance(v, dict) else v)
                      for k, v in res.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
