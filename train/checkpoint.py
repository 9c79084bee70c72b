"""Checkpoints in safetensors (tensors) + JSON metadata: no pickle is ever loaded."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def load(path: str | Path) -> tuple[QSNN, dict[str, Any]]:
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
    try:
        cfg = QSNNConfig.from_json(md["config"])
    except (ValueError, TypeError, KeyError) as e:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path}: its config metadata is not a valid qsnnkit configuration: {e}") from e
    try:
        meta = json.loads(md.get("meta", "{}"))
    except ValueError as e:
        raise ValueError(f"{path}: its meta metadata is not valid JSON: {e}") from e
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: its meta metadata is not a JSON object")
    model = QSNN(cfg)
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types
        raise ValueError(f"{path} is not a readable safetensors checkpoint: {e}") from e
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ValueError(f"{path}: tensors do not match its config: missing {missing}, unexpected {unexpected}")
    for k, v in expected.items():
        if tuple(tensors[k].shape) != tuple(v.shape) or tensors[k].dtype != v.dtype:
            raise ValueError(f"{path}: tensor {k} is {tensors[k].dtype} {tuple(tensors[k].shape)}, its config needs "
                             f"{v.dtype} {tuple(v.shape)}")
        if not torch.isfinite(tensors[k]).all():
            raise ValueError(f"{path}: tensor {k} holds NaN or infinite values")
    model.load_state_dict(tensors)
    model.eval()
    return model, meta
