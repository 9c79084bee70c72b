"""Checkpoints in safetensors (tensors) + JSON metadata: no pickle is ever loaded."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from safetensors import safe_open

from qsnnkit.train.model import QSNN, QSNNConfig


def save(model: QSNN, path: str | Path, meta: dict[str, object]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    md = {"config": model.cfg.to_json(), "meta": json.dumps(meta, sort_keys=True)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=md)
    tmp.replace(path)
    return path


def load(path: str | Path) -> tuple[QSNN, dict[str, object]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found (train one with qsnn-train)")
    try:
        with safe_open(str(path), framework="pt") as f:
            md = f.metadata() or {}
    except Exception as e:  # safetensors raises its own error types
        raise ValueError(f"{path} is not a safetensors checkpoint: {e}") from e
    if "config" not in md:
        raise ValueError(f"{path} has no qsnnkit config in its metadata")
    model = QSNN(QSNNConfig.from_json(md["config"]))
    model.load_state_dict(load_file(str(path)))
    model.eval()
    return model, json.loads(md.get("meta", "{}"))
