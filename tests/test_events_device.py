"""Event-camera samples on the emulated boards: the committed N-MNIST model, built for each
target by the host's build cache (qsnnkit.host.build), evaluated through the real CLI with
events streamed in the protocol's binary records; the device's outputs must equal the integer
reference's on every sample. Also: the firmware refuses the other input kind (ERROR INPUT),
the host refuses a device whose model reads another kind, and the build cache reuses builds."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qsnnkit import protocol as P
from qsnnkit.model import load_converted
from qsnnkit.paths import FIRMWARE_DIR, REPO_ROOT

sys.path.insert(0, str(Path(__file__).resolve().parent))
import firmware_support as fw  # noqa: E402

NMNIST_MODEL = FIRMWARE_DIR / "models" / "nmnist" / "model.npz"
CHECKER = REPO_ROOT.parent / "shared" / "tools" / "check_results.py"


def _eval(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path / "eval.json"
    cmd = [sys.executable, str(REPO_ROOT / "host" / "eval.py"), "--model", str(NMNIST_MODEL), "--json", str(out),
           "--quiet", *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=dict(os.environ))
    assert res.returncode == 0, f"eval failed ({res.returncode}):\n{res.stdout}\n{res.stderr[-4000:]}"
    return res, json.loads(out.read_text())


def _exact(s: dict, n: int) -> None:
    assert s["samples"] == n
    if s["agreement"] != 1.0:
        m = s["mismatches"][0]
        raise AssertionError(f"first mismatch {m['path']}: device {m['device_outputs']} != "
                             f"reference {m['reference_outputs']}")
    assert s["label_agreement"] == 1.0 and s["accuracy"] == s["reference_accuracy"]


def test_nmnist_on_the_m4_is_bit_exact_and_reports_the_event_stream_cost(tmp_path: Path, data_root: Path) -> None:
    n = 25
    res, s = _eval(tmp_path, "--port", "qemu", "--split", "test", "--limit", str(n), "--data-root", str(data_root))
    _exact(s, n)
    model = load_converted(NMNIST_MODEL)
    assert s["input_kind"] == "events" and s["dataset"] == model.dataset and s["model_hash"] == model.short_hash
    es = s["event_stream"]
    assert es["step_us"] == model.event_config().window_us and es["steps"] == model.steps == 32
    ms = es["steps"] * es["step_us"] / 1000
    lat = s["latency"]
    assert es["per_ms_mean"] == pytest.approx((lat["frontend"]["mean"] + lat["network"]["mean"]) / ms)
    assert 0 < es["binning_per_ms_mean"] < es["network_per_ms_mean"]
    # the slowest step: more than an average step, less than a whole sample
    assert lat["total"]["mean"] / es["steps"] < es["worst_step"] < lat["total"]["median"]
    assert all(c["outputs"] == c["reference_outputs"] and c["frames"] == 32 for c in s["clips"])
    assert "event stream" in res.stdout and "samples on qemu:" in res.stdout
    chk = subprocess.run([sys.executable, str(CHECKER), str(tmp_path), str(tmp_path / "eval.json")],
                         capture_output=True, text=True)
    assert chk.returncode == 0, chk.stdout + chk.stderr


@pytest.mark.parametrize("target", ["m0", "m7", "rv32", "lx106"])
def test_nmnist_on_every_other_target_is_bit_exact(tmp_path: Path, data_root: Path, target: str) -> None:
    _, s = _eval(tmp_path, "--port", f"qemu:{target}", "--split", "test", "--limit", "6",
                 "--data-root", str(data_root))
    _exact(s, 6)


def test_nmnist_over_a_faulty_line_gives_the_clean_outputs(tmp_path: Path, data_root: Path) -> None:
    """Corrupted, dropped, doubled and delayed bytes and a board reset: every sample once, with
    the outputs and instruction counts of a clean run (the exactly-once rules cover EVENTS)."""
    common = ["--port", "qemu", "--split", "val", "--limit", "8", "--data-root", str(data_root), "--jobs", "1"]
    _, clean = _eval(tmp_path / "clean", *common)
    _, faulty = _eval(tmp_path / "faulty", *common, "--fault-rate", "0.001", "--fault-reset-rate", "4e-6",
                      "--chunk", "60", "--clip-retries", "12", "--fault-seed", "3", "--timeout", "0.5")
    _exact(faulty, 8)
    keys = ("id", "label", "predicted", "outputs", "frontend_ticks", "network_ticks")
    rows = lambda s: [{k: c.get(k) for k in keys} for c in s["clips"]]  # noqa: E731
    assert rows(faulty) == rows(clean)
    assert sum(faulty["link"]["injected"].values()) > 0


def test_the_firmware_answers_the_other_input_kind_with_error_input(data_root: Path) -> None:
    from qsnnkit.host.build import firmware_for
    from qsnnkit.host.device import Device
    from qsnnkit.host.qemu import QemuBoard

    for model, wrong, kind in ((NMNIST_MODEL, (P.Msg.CLIP_BEGIN, P.clip_begin(16000)), "events"),
                               (fw.model_dir_for_tests() / "model.npz", (P.Msg.EVENTS_BEGIN, P.events_begin(5, 0)),
                                "audio")):
        with QemuBoard(firmware_for(model, "m4", quiet=True)) as qb:
            assert qb.transport is not None
            dev = Device(qb.transport)
            ident = dev.connect()
            assert ident.input_kind == kind and ident.n_inputs == load_converted(model).n_bands
            assert (ident.n_bands, ident.hop_len) == ((0, 0) if kind == "events" else (40, 320))
            with pytest.raises(P.DeviceError, match="INPUT") as e:
                dev.request(*wrong)
            assert e.value.err.code == P.Err.INPUT and e.value.err.detail == (1 if kind == "events" else 0)
            if kind == "events":  # a sample still runs after the refusal, and streams are audio-only
                with pytest.raises(P.DeviceError, match="INPUT"):
                    dev.request(P.Msg.STREAM_BEGIN, P.stream_begin(100, 10, 1, 2))
                from qsnnkit import data

                ev = data.read_nmnist(data.list_nmnist(data_root, "test")[0][0])
                res = dev.run_events(ev, 0)
                assert res.frames == 32 and res.samples == len(ev)
                dev.request(P.Msg.EVENTS_BEGIN, P.events_begin(3, 0))
                with pytest.raises(P.DeviceError, match="BAD_PAYLOAD"):  # records must be whole
                    dev.request(P.Msg.EVENTS, P.events_payloads(ev[:3])[0] + b"\x01")
                dev.connect()  # HELLO ends the sample
                dev.request(P.Msg.EVENTS_BEGIN, P.events_begin(2, 0))
                with pytest.raises(P.DeviceError, match="SAMPLE_COUNT"):  # more events than announced
                    dev.request(P.Msg.EVENTS, P.events_payloads(ev[:3])[0])
            dev.bye(0)
            assert qb.wait(10) == 0


def test_eval_refuses_a_device_whose_model_reads_another_input(tmp_path: Path) -> None:
    from qsnnkit.host.build import firmware_for

    audio_elf = firmware_for(fw.model_dir_for_tests() / "model.npz", "m4", quiet=True)
    cmd = [sys.executable, str(REPO_ROOT / "host" / "eval.py"), "--elf", str(audio_elf), "--model",
           str(NMNIST_MODEL), "--limit", "1", "--jobs", "1", "--quiet"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "serves a model that reads audio, but MODEL reads events" in res.stderr


def test_the_build_cache_reuses_a_build_and_keys_on_model_and_target(tmp_path: Path) -> None:
    from qsnnkit.host import build

    a = build.firmware_for(NMNIST_MODEL, "m4", quiet=True)
    t = a.stat().st_mtime_ns
    assert build.firmware_for(NMNIST_MODEL, "m4", quiet=True) == a and a.stat().st_mtime_ns == t  # reused
    assert build.firmware_for(NMNIST_MODEL, "rv32", quiet=True) != a
    # a model folder without the C sources qsnn-convert writes beside the model: a clear error
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "model.npz").write_bytes(NMNIST_MODEL.read_bytes())
    with pytest.raises(FileNotFoundError, match="not qsnn_model.h, qsnn_model.c"):
        build.firmware_for(lone / "model.npz", "m4", quiet=True)
    assert a.parent.parent.parent.name.startswith(load_converted(NMNIST_MODEL).hash_hex[:16])
    with pytest.raises(ValueError, match="unknown emulated target"):
        build.firmware_for(NMNIST_MODEL, "z80")
    with pytest.raises(FileNotFoundError):
        build.firmware_for(tmp_path / "missing.npz", "m4")
