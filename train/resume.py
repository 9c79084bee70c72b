"""Epoch-level resume: a run's whole training state, written after every epoch, so that an
interrupted run continues to the same bits as one that was never stopped.

What continuing needs, and what the file holds: the model's and the best epoch's tensors,
AdamW's moments and step counts, the one-cycle schedule's position, the torch and NumPy
random states (augmentation, masks and the batch order draw from NumPy), the history so far
and the training seconds spent. Tensors go into safetensors, everything else into its JSON
metadata: no pickle is written or read.

A state is only continued by the run that left it: the same architecture, the same settings
and the same training code (a hash of the sources under ``train/`` and ``qsnnkit/``).
Anything else starts at epoch 0 with a message saying why. Resuming on another CPU kind is
allowed with a warning: the floats may then round differently from there on
(docs/results.md: where two runs part).
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from qsnnkit.paths import REPO_ROOT

STATE_FILE = "resume.safetensors"
_CODE_DIRS = ("train", "qsnnkit")
_CODE_SUFFIXES = (".py", ".c", ".h")


def code_hash(root: Path = REPO_ROOT) -> str:
    """sha256 (16 hex digits) over the training code's sources: a state written by other code
    would continue on different arithmetic."""
    h = hashlib.sha256()
    for d in _CODE_DIRS:
        for p in sorted((root / d).rglob("*")):
            if p.is_file() and p.suffix in _CODE_SUFFIXES and "__pycache__" not in p.parts:
                h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@dataclass
class State:
    """What an interrupted run left: the next epoch to run and everything to run it with."""
    next_epoch: int
    seconds: float
    history: list[dict[str, float]]
    best_val: float
    best_epoch: int
    model: dict[str, torch.Tensor]
    best_model: dict[str, torch.Tensor]
    optimizer: dict[str, object]
    scheduler: dict[str, object]
    torch_rng: torch.Tensor
    cuda_rng: list[torch.Tensor]
    numpy_rng: dict[str, object]
    platform: dict[str, object]


def save(path: Path, st: State, identity: dict[str, object]) -> None:
    """Write the state atomically (a stop while writing leaves the previous epoch's)."""
    tensors: dict[str, torch.Tensor] = {}
    for k, v in st.model.items():
        tensors[f"model.{k}"] = v
    for k, v in st.best_model.items():
        tensors[f"best.{k}"] = v
    opt_state = st.optimizer["state"]
    assert isinstance(opt_state, dict)
    names: dict[str, list[str]] = {}
    for i, s in opt_state.items():
        names[str(i)] = sorted(s)
        for n in s:
            tensors[f"opt.{i}.{n}"] = s[n]
    tensors["torch_rng"] = st.torch_rng
    for i, r in enumerate(st.cuda_rng):
        tensors[f"cuda_rng.{i}"] = r
    meta = {"identity": identity, "next_epoch": st.next_epoch, "seconds": st.seconds, "history": st.history,
            "best_val": st.best_val, "best_epoch": st.best_epoch, "opt_groups": st.optimizer["param_groups"],
            "opt_names": names, "scheduler": st.scheduler, "numpy_rng": st.numpy_rng,
            "cuda_rngs": len(st.cuda_rng), "platform": st.platform}
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"resume": json.dumps(meta)})
    os.replace(tmp, path)


def load(path: Path, identity: dict[str, object], platform: dict[str, object]) -> State | None:
    """The state an interrupted run with this identity left at ``path``; None, with a line on
    stdout saying why, when there is none to continue (no file, another run's, unreadable)."""
    if not path.is_file():
        print(f"resume: no {path.name} in {path.parent}; starting at epoch 0", flush=True)
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:  # one read: metadata and tensors
            meta = json.loads((f.metadata() or {})["resume"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors' own errors, a missing key, bad JSON
        print(f"resume: {path} is not a readable resume state ({e}); starting at epoch 0", flush=True)
        return None
    theirs = meta.get("identity", {})
    if theirs != identity:
        what = [k for k in sorted(set(identity) | set(theirs)) if identity.get(k) != theirs.get(k)]
        print(f"resume: {path} was left by a different run ({', '.join(what)} differ); starting at epoch 0",
              flush=True)
        return None
    if meta.get("platform") != platform:
        print(f"resume: warning: {path} was written on {meta.get('platform')}, this is {platform}; the run "
              "continues, but its floats may round differently from an uninterrupted run's", flush=True)
    state: dict[int, dict[str, torch.Tensor]] = {
        int(i): {n: tensors[f"opt.{i}.{n}"] for n in ns} for i, ns in meta["opt_names"].items()}
    groups = meta["opt_groups"]
    for g in groups:  # JSON has no tuples; AdamW's betas are one
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    return State(
        next_epoch=int(meta["next_epoch"]), seconds=float(meta["seconds"]), history=list(meta["history"]),
        best_val=float(meta["best_val"]), best_epoch=int(meta["best_epoch"]),
        model={k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
        best_model={k[5:]: v for k, v in tensors.items() if k.startswith("best.")},
        optimizer={"state": state, "param_groups": groups}, scheduler=dict(meta["scheduler"]),
        torch_rng=tensors["torch_rng"], cuda_rng=[tensors[f"cuda_rng.{i}"] for i in range(int(meta["cuda_rngs"]))],
        numpy_rng=dict(meta["numpy_rng"]), platform=dict(meta.get("platform", {})))


def numpy_state(rng: np.random.Generator) -> dict[str, object]:
    """The generator's state as JSON can hold it (PCG64's 128-bit integers are Python ints)."""
    return dict(rng.bit_generator.state)
