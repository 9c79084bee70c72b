"""Bad files give one line naming the file and the problem, and a non-zero exit; never a
traceback, never a pickle. (Model .npz files: test_core.test_model_file_integrity; WAV and
dataset roots: test_data.)"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

from qsnnkit import data
from qsnnkit.convert import cli as convert_cli
from qsnnkit.host import eval as host_eval
from qsnnkit.paths import REPO_ROOT

CKPT = REPO_ROOT / "firmware" / "models" / "default" / "model.safetensors"
NPZ = REPO_ROOT / "firmware" / "models" / "default" / "model.npz"


def _variant(tmp: Path, name: str, tensors: dict[str, np.ndarray] | None = None, **meta_over: str) -> Path:
    with safe_open(str(CKPT), "np") as f:
        meta = dict(f.metadata())
    meta.update(meta_over)
    out = tmp / f"{name}.safetensors"
    save_file(tensors if tensors is not None else load_file(str(CKPT)), str(out), metadata=meta)
    return out


def _one_line_error(capsys: pytest.CaptureFixture, rc: int, path: Path, what: str) -> None:
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert str(path) in err and what in err, err


def _bad_checkpoints(tmp: Path) -> list[tuple[Path, str]]:
    t = load_file(str(CKPT))
    key = next(k for k, v in t.items() if v.ndim == 2)
    narrow = dict(t)
    narrow[key] = np.ascontiguousarray(t[key][:, :5])
    nan = dict(t)
    nan[key] = t[key].copy()
    nan[key][0, 0] = np.nan
    missing = {k: v for k, v in t.items() if k != key}
    meta = json.loads(dict(safe_open(str(CKPT), "np").metadata())["meta"])
    meta["classes"] = ["yes\nno"] + meta.get("classes", data.CLASSES)[1:]
    cut = tmp / "cut.safetensors"
    cut.write_bytes(CKPT.read_bytes()[:1000])
    return [
        (cut, "not a safetensors checkpoint"),
        (_variant(tmp, "narrow", narrow), f"tensor {key} is"),
        (_variant(tmp, "nan", nan), "NaN or infinite"),
        (_variant(tmp, "missing", missing), "missing"),
        (_variant(tmp, "badcfg", config='{"hidden": [256'), "config metadata is not a valid"),
        (_variant(tmp, "badmeta", meta="[1, 2"), "meta metadata is not valid JSON"),
        (_variant(tmp, "ctrlname", meta=json.dumps(meta)), "control characters"),
        (tmp / "absent.safetensors", "not found"),
    ]


def test_converter_refuses_bad_checkpoints_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for path, what in _bad_checkpoints(tmp_path):
        rc = convert_cli.main([str(path), "--out", str(tmp_path / "out"), "--split", "none"])
        _one_line_error(capsys, rc, path, what)
    assert not (tmp_path / "out" / "model.npz").exists()


def test_evaluator_refuses_bad_models_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    d = dict(np.load(NPZ))
    cases = []
    p = tmp_path / "cut.npz"
    p.write_bytes(NPZ.read_bytes()[:500])
    cases.append((p, "not a converted"))
    for name, change, what in (("dtype", ("l0.w", np.float32), "dtype float32"),
                               ("hash", ("b_out", None), "does not match its contents")):
        arrs = dict(d)
        arrs[change[0]] = arrs[change[0]].astype(change[1]) if change[1] else arrs[change[0]] + 1
        q = tmp_path / f"{name}.npz"
        np.savez(q, **arrs)
        cases.append((q, what))
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF")  # the model is read before any board starts
    for path, what in cases:
        rc = host_eval.main(["--model", str(path), "--port", "qemu", "--elf", str(elf), "--limit", "1", "--quiet"])
        err = capsys.readouterr().err.strip()
        assert rc != 0 and "Traceback" not in err and len(err.splitlines()) == 1, err
        assert str(path) in err and what in err, err


def _wav_bytes(fmt: int, channels: int, rate: int, bits: int, payload: bytes) -> bytes:
    block = channels * bits // 8
    fmt_chunk = struct.pack("<HHIIHH", fmt, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_chunk)) + fmt_chunk + b"data" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_non_pcm_and_odd_wavs_name_the_file(tmp_path: Path) -> None:
    cases = {
        "float.wav": (_wav_bytes(3, 1, 16000, 32, np.zeros(8, "<f4").tobytes()), "not a readable PCM WAV"),
        "alaw.wav": (_wav_bytes(6, 1, 16000, 8, bytes(8)), "not a readable PCM WAV"),
        "header_only.wav": (_wav_bytes(1, 1, 16000, 16, b"")[:30], "not a readable PCM WAV"),
        "surround.wav": (_wav_bytes(1, 6, 16000, 16, bytes(24)), "6 channels"),
    }
    for name, (raw, what) in cases.items():
        f = tmp_path / name
        f.write_bytes(raw)
        with pytest.raises(ValueError) as e:
            data.read_wav(f)
        assert str(f) in str(e.value) and what in str(e.value), str(e.value)


def test_no_pickle_is_ever_loaded() -> None:
    """No code path can unpickle a file: no torch loader, no pickle module, no numpy pickle switch."""
    banned = ("torch." + "load(", "import " + "pickle", "pickle." + "load", "allow_pickle=" + "True")
    found = []
    for folder in ("qsnnkit", "train", "convert", "host", "benchmarks", "scripts", "tests"):
        for f in (REPO_ROOT / folder).rglob("*.py"):
            text = f.read_text()
            found += [f"{f.relative_to(REPO_ROOT)}: {b}" for b in banned if b in text]
    assert found == []
