"""The sweep runner: configurations x seeds in, one result row per finished job out,
resumable, and a summary in the shared results schema (smoke-sized: one epoch, few clips)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from qsnnkit.paths import REPO_ROOT
from qsnnkit.train import sweep

SCHEMA = {"model", "model_hash", "dataset", "accuracies", "mean", "std", "model_bytes", "state_bytes",
          "sops_per_inference", "macs_per_inference", "command", "commit"}


def _sweep(tmp: Path, data_root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qsnnkit.train.sweep", "run", str(tmp / "sweep.json"), "--out",
                           str(tmp / "rows.jsonl"), "--work", str(tmp / "work"), "--data-root", str(data_root),
                           "--limit", "24", "--epochs", "1", "--jobs", "2", *extra],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=900)


def test_sweep_runs_resumes_and_summarizes(tmp_path: Path, data_root: Path) -> None:
    # no espeak-ng keywords (--synthetic 0): each seed would synthesize its 1,100 clips (about 25 s);
    # the runner, not the recipe, is under test
    cfg = {"runs": [
        {"name": "dense16", "args": ["--conv", "", "--hidden", "16", "--recurrent", "1", "--batch-size", "8",
                                     "--synthetic", "0"], "seeds": [0, 1]},
        {"name": "conv4", "args": ["--conv", "4:3:5:2", "--hidden", "", "--recurrent", "", "--batch-size", "8",
                                   "--synthetic", "0"], "seeds": [0]},
    ]}
    (tmp_path / "sweep.json").write_text(json.dumps(cfg))
    res = _sweep(tmp_path, data_root)
    assert res.returncode == 0, res.stderr[-3000:]
    rows = sweep.read_rows(tmp_path / "rows.jsonl")
    assert sorted((r["name"], r["seed"]) for r in rows) == [("conv4", 0), ("dense16", 0), ("dense16", 1)]
    for r in rows:
        assert r["torch_reference_agreement"] == 1.0
        assert 0.0 <= r["val_accuracy"] <= 1.0 and r["sops_per_inference"] > 0 and r["macs_per_inference"] > 0
        assert "--seed" in r["command"] and r["commit"]
    conv = next(r for r in rows if r["name"] == "conv4")
    assert "--conv 4:3:5:2" in conv["command"]
    # resumable: a finished job is not run again; a lost row is converted again without retraining
    conv_ckpt = tmp_path / "work" / "conv4" / "seed0" / "train" / "model.safetensors"
    stamp = conv_ckpt.stat().st_mtime_ns
    lines = (tmp_path / "rows.jsonl").read_text().splitlines()
    kept = [ln for ln in lines if json.loads(ln)["name"] != "conv4"]
    (tmp_path / "rows.jsonl").write_text("\n".join(kept) + "\n" + '{"torn line')
    res = _sweep(tmp_path, data_root)
    assert res.returncode == 0, res.stderr[-3000:]
    rows2 = sweep.read_rows(tmp_path / "rows.jsonl")
    assert sorted((r["name"], r["seed"]) for r in rows2) == [("conv4", 0), ("dense16", 0), ("dense16", 1)]
    assert [r for r in rows2 if r["name"] == "dense16"] == [r for r in rows if r["name"] == "dense16"]
    assert conv_ckpt.stat().st_mtime_ns == stamp  # not retrained
    assert [r["model_hash"] for r in rows2 if r["name"] == "conv4"] == [conv["model_hash"]]
    # summary in the shared schema
    out = subprocess.run([sys.executable, "-m", "qsnnkit.train.sweep", "summarize", str(tmp_path / "rows.jsonl"),
                          "--json", str(tmp_path / "pareto.json")], capture_output=True, text=True, cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "pareto.json").read_text()) == []  # under 3 seeds: printed, not written
    assert "not in --json" in out.stdout
    out = subprocess.run([sys.executable, "-m", "qsnnkit.train.sweep", "summarize", str(tmp_path / "rows.jsonl"),
                          "--json", str(tmp_path / "pareto.json"), "--min-seeds", "1"], capture_output=True, text=True,
                         cwd=REPO_ROOT)
    assert out.returncode == 0, out.stderr
    table = json.loads((tmp_path / "pareto.json").read_text())
    assert {t["model"] for t in table} == {"dense16", "conv4"}
    for t in table:
        assert SCHEMA <= set(t)
    d = next(t for t in table if t["model"] == "dense16")
    assert len(d["accuracies"]) == 2 and "--seed S" in d["command"]


def test_a_run_stopped_mid_training_continues_from_its_last_epoch(tmp_path: Path, data_root: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A session ends during a run's second epoch: the next sweep continues that run from its
    state after epoch 0 (qsnn-train --resume), keeps the stopped attempt's log, and the row equals
    the one of a sweep that was never stopped (same integer model hash)."""
    from qsnnkit.train import cli, resume

    args = ["--conv", "", "--hidden", "16", "--recurrent", "1", "--batch-size", "8", "--synthetic", "0"]
    cfg = {"runs": [{"name": "dense16", "args": args, "seeds": [0]}]}
    for d in ("whole", "cut"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "sweep.json").write_text(json.dumps(cfg))
    res = _sweep(tmp_path / "whole", data_root, "--epochs", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    run_dir = tmp_path / "cut" / "work" / "dense16" / "seed0"
    run_dir.mkdir(parents=True)
    real = resume.save

    def stop_after_first(path: Path, s: resume.State, identity: dict) -> None:
        real(path, s, identity)
        raise KeyboardInterrupt  # the stop, with epoch 0's state on disk

    with monkeypatch.context() as m:
        m.setattr(resume, "save", stop_after_first)
        with pytest.raises(KeyboardInterrupt):  # the same command the sweep gives qsnn-train
            cli.main([*args, "--limit", "24", "--epochs", "2", "--seed", "0", "--out", str(run_dir / "train"),
                      "--data-root", str(data_root)])
    (run_dir / "train.log").write_text("the stopped attempt's output\n")
    res = _sweep(tmp_path / "cut", data_root, "--epochs", "2")
    assert res.returncode == 0, res.stderr[-3000:]
    log = (run_dir / "train.log").read_text()
    assert log.startswith("the stopped attempt's output") and "continuing" in log and "at epoch 1 of 2" in log
    [whole], [cut] = sweep.read_rows(tmp_path / "whole" / "rows.jsonl"), sweep.read_rows(tmp_path / "cut" / "rows.jsonl")
    assert cut["model_hash"] == whole["model_hash"] and cut["test_correct"] == whole["test_correct"]
    assert cut["val_accuracy"] == whole["val_accuracy"]


@pytest.mark.parametrize("text,msg", [
    ("not json", "not a readable JSON"),
    ('{"runs": []}', "expected"),
    ('{"runs": [{"name": "a", "args": ["--seed", "3"]}]}', "set by the sweep"),
    ('{"runs": [{"name": "a"}, {"name": "a"}]}', "twice"),
])
def test_bad_sweep_files_are_refused(tmp_path: Path, text: str, msg: str) -> None:
    p = tmp_path / "s.json"
    p.write_text(text)
    with pytest.raises(ValueError, match=msg):
        sweep.load_config(p)


def test_ablation_smoke_writes_the_schema_with_paired_intervals(tmp_path: Path) -> None:
    """benchmarks/ablation.py end to end on N-MNIST at one epoch (the real tables are a
    benchmark): the twin, a naive and a WS-DR row and one sweep row, converted, summarized."""
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    import ablation

    rc = ablation.main(["--datasets", "nmnist", "--epochs", "1", "--limit", "16", "--seeds", "0", "--lrs", "0.01",
                        "--jobs", "2", "--only", "fp32,naive-m4,wsdr-m4,bits-w2-m4", "--results", str(tmp_path)])
    assert rc == 0
    doc = json.loads((tmp_path / "ablation-nmnist.json").read_text())
    rows = {r["model"]: r for r in doc["rows"]}
    assert set(rows) == {"fp32", "naive-m4", "wsdr-m4", "bits-w1-m4", "bits-w2-m4"}
    # the 1-bit sweep cell is the wsdr row's command, so it is that run (trained once)
    assert rows["bits-w1-m4"]["model_hash"] == rows["wsdr-m4"]["model_hash"]
    assert rows["bits-w1-m4"]["command"] == rows["wsdr-m4"]["command"]
    for k in ("model", "model_hash", "dataset", "accuracies", "mean", "std", "model_bytes", "state_bytes",
              "sops_per_inference", "command", "commit", "weight_bits", "membrane_bits", "weight_reg",
              "spike_reg", "fp32", "firing_rate"):
        assert all(k in r for r in rows.values()), k
    assert rows["fp32"]["fp32"] and rows["fp32"]["model_hash"] is None  # the twin has no integer form
    assert not rows["naive-m4"]["weight_reg"] and not rows["naive-m4"]["spike_reg"]
    assert "--no-weight-reg" in rows["naive-m4"]["command"] and "--no-weight-reg" not in rows["wsdr-m4"]["command"]
    for name in ("naive-m4", "wsdr-m4", "bits-w2-m4"):
        lo, hi = rows[name]["twin_minus_row"]["ci95"]
        assert lo <= rows[name]["twin_minus_row"]["mean"] <= hi
    # what regulation buys: the regulated row against the naive row of its membrane width, only there
    rn = rows["wsdr-m4"]["row_minus_naive"]
    assert rn["seeds"] == [0] and rn["ci95"][0] <= rn["mean"] <= rn["ci95"][1]
    assert "row_minus_naive" not in rows["naive-m4"] and "row_minus_naive" not in rows["bits-w2-m4"]
    assert rows["bits-w2-m4"]["model_bytes"] > rows["wsdr-m4"]["model_bytes"]  # 2-bit hidden weights take room
    assert (tmp_path / "ablation-nmnist.png").exists()


def test_ablation_device_check_takes_a_model_still_on_disk_with_the_reported_hash(tmp_path: Path) -> None:
    """The emulated-device check of benchmarks/ablation.py runs the WS-DR 4-bit row when its
    model is on disk, else the other WS-DR row, else the next quantized row; a folder holding
    another model than the results record is never taken, and every run passed over is named."""
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    import ablation

    def run(name: str, seed: int, h: str, on_disk: str | None) -> dict:
        d = tmp_path / name / f"seed{seed}" / "model"
        if on_disk is not None:
            d.mkdir(parents=True)
            (d / "model.npz").write_bytes(b"")
            (d / "report.json").write_text(json.dumps({"model_hash": on_disk + "00" * 24}))
        return {"name": name, "seed": seed, "model_hash": h, "model_dir": str(d)}

    def row(model: str, fp32: bool = False) -> dict:
        return {"model": model, "lr": 0.01, "seeds": [0, 1], "fp32": fp32}

    rows = [row("fp32", True), row("naive-m2"), row("wsdr-m2"), row("wsdr-m4"), row("bits-w1-m4")]
    results = [run("fp32-lr0.01", 0, "", None), run("naive-m2-lr0.01", 0, "a" * 16, "a" * 16),
               run("wsdr-m4-lr0.01", 0, "b" * 16, None), run("wsdr-m4-lr0.01", 1, "c" * 16, "d" * 16),
               run("wsdr-m2-lr0.01", 1, "e" * 16, "e" * 16)]
    picked, skipped = ablation.device_model("fsdd", results, rows)
    assert picked is not None and (picked[0]["model"], picked[1]["seed"]) == ("wsdr-m2", 1)
    assert skipped[0] == "wsdr-m4-lr0.01/s0 (model folder gone)"
    assert skipped[1].startswith("wsdr-m4-lr0.01/s1 (model on disk is dddd")
    # the WS-DR 4-bit row wins when its folder holds the reported model
    results[2] = run("wsdr-m4-lr0.01", 0, "b" * 16, "b" * 16)
    picked, skipped = ablation.device_model("fsdd", results, rows)
    assert picked is not None and (picked[0]["model"], picked[1]["seed"], skipped) == ("wsdr-m4", 0, [])
    # nothing deployable left: no pick, and the run passed over is named once (bits-w1-m4 is that run too)
    stale = [r for r in results if r["name"] == "wsdr-m4-lr0.01" and r["seed"] == 1]
    assert ablation.device_model("fsdd", stale, rows) == (
        None, ["wsdr-m4-lr0.01/s1 (model on disk is " + "d" * 16 + ", results say " + "c" * 16 + ")"])


def test_paired_intervals_pair_runs_by_seed() -> None:
    """A row missing a seed is paired with the twin's runs of the same seeds, not by position;
    the interval brackets the difference of the paired runs' means and is exact when every
    sample agrees; a run without its per-sample record gives no interval."""
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    import ablation

    twin = [{"seed": 0, "test_correct": "1111"}, {"seed": 1, "test_correct": "0000"}, {"seed": 2, "test_correct": "1100"}]
    row = [{"seed": 0, "test_correct": "1111"}, {"seed": 2, "test_correct": "1100"}]
    got = ablation.paired_interval(twin, row)
    assert got is not None and got["seeds"] == [0, 2]
    assert got["mean"] == 0.0 and got["ci95"] == [0.0, 0.0]  # seed 1's 0000 would make it +0.375 by position
    lower = [{"seed": 0, "test_correct": "1110"}, {"seed": 2, "test_correct": "1000"}]
    d = ablation.paired_interval(twin, lower)
    assert d is not None and d["mean"] == 0.25 and 0.0 <= d["ci95"][0] <= 0.25 <= d["ci95"][1] <= 0.5
    assert ablation.paired_interval(twin, [{"seed": 3, "test_correct": "1111"}]) is None
    assert ablation.paired_interval(twin, [{"seed": 0, "test_correct": ""}]) is None
    assert ablation.paired_interval(list(reversed(twin)), row) == got  # the runs' order does not matter
    with pytest.raises(ValueError, match="pair them by seed"):  # no silent pairing by position
        ablation.paired_bootstrap(["1111", "0000"], ["1111"])


def test_default_jobs_keep_threads_within_the_cores() -> None:
    """Runs at once by default: the cores over the threads a run uses (qsnn-train's --threads,
    2 by default), at least one, so runs never ask for more threads than there are cores."""
    from qsnnkit.train.trainer import TrainSettings

    plain = [{"name": "a", "args": ["--hidden", "16"]}]
    one = [{"name": "b", "args": ["--threads", "1"]}]
    four = [{"name": "c", "args": ["--threads", "4"]}]
    assert sweep.run_threads(["--hidden", "16"]) == TrainSettings().threads == 2
    assert sweep.default_jobs(plain, cores=2) == 1
    assert sweep.default_jobs(plain, cores=8) == 4
    assert sweep.default_jobs(plain, cores=1) == 1
    assert sweep.default_jobs(one, cores=2) == 2
    assert sweep.default_jobs(one + four, cores=8) == 2  # the widest run decides
    assert sweep.default_jobs(four, cores=2) == 1
    # a flag's value as argparse reads it: the last occurrence wins, a trailing flag gives none
    assert sweep.arg_value(["--epochs", "40", "--lr", "0.01", "--epochs", "1"], "--epochs") == "1"
    assert sweep.arg_value(["--lr", "0.01", "--epochs"], "--epochs") is None


def test_ablation_plan_scans_rates_on_scan_seeds_then_runs_the_rest_at_the_chosen_rate() -> None:
    """The learning-rate search of benchmarks/ablation.py: the scan seeds at every rate, the
    row's other seeds at the rate with the best validation mean over the seeds it finished at
    every rate, the sweep at the wsdr-m4 row's rate, its 1-bit cells the wsdr rows' own runs."""
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    import ablation

    lrs, seeds, scan = [0.002, 0.01], [0, 1, 2], [0]
    scan_runs = ablation.plan("fsdd", seeds, scan, lrs, 20, {}, "scan")
    assert len(scan_runs) == 9 * 2 and all(r["seeds"] == [0] for r in scan_runs)
    assert {r["name"] for r in scan_runs} >= {"fp32-lr0.002", "wsdr-m4-lr0.01", "naive-m2-lr0.002"}
    assert all(r["args"][-4:] == ["--lr", repr(float(r["name"].rsplit("-lr", 1)[1])), "--epochs", "20"]
               for r in scan_runs)
    assert ablation.plan("fsdd", seeds, scan, lrs, 20, {}, "seeds") == []  # nothing decided yet
    assert ablation.plan("fsdd", seeds, scan, lrs, 20, {}, "sweep") == []

    def row(name: str, seed: int, val: float) -> dict:
        return {"name": name, "seed": seed, "val_accuracy": val}

    results = [row("fp32-lr0.002", 0, 0.90), row("fp32-lr0.01", 0, 0.95),
               row("wsdr-m4-lr0.002", 0, 0.80), row("wsdr-m4-lr0.01", 0, 0.80),  # a tie: the first rate
               row("naive-m4-lr0.002", 0, 0.70)]  # not finished at every rate: undecided
    assert ablation.chosen_rates(results, lrs, scan) == {"fp32": 0.01, "wsdr-m4": 0.002}
    # once more seeds ran at every rate, the choice is on their mean
    more = results + [row("fp32-lr0.002", 1, 0.99), row("fp32-lr0.01", 1, 0.80)]
    assert ablation.chosen_rates(more, lrs, scan)["fp32"] == 0.002
    # a seed at one rate only does not enter the choice
    assert ablation.chosen_rates(results + [row("fp32-lr0.002", 1, 1.0)], lrs, scan)["fp32"] == 0.01
    rates = ablation.chosen_rates(results, lrs, scan)
    seeded = ablation.plan("fsdd", seeds, scan, lrs, 20, rates, "seeds")
    assert [(r["name"], r["seeds"]) for r in seeded] == [("fp32-lr0.01", seeds), ("wsdr-m4-lr0.002", seeds)]
    swept = {r["name"]: r for r in ablation.plan("fsdd", seeds, scan, lrs, 20, rates, "sweep")}
    assert len(swept) == 12 and all(n.endswith("-lr0.002") for n in swept)
    # 1-bit cells run under the wsdr rows' names with the wsdr rows' exact arguments
    assert {"wsdr-m2-lr0.002", "wsdr-m4-lr0.002", "bits-w1-m8-lr0.002"} <= set(swept)
    wsdr_m4 = next(r for r in ablation.plan("fsdd", seeds, scan, lrs, 20, rates, "seeds") if r["name"].startswith("wsdr"))
    assert swept["wsdr-m4-lr0.002"]["args"] == wsdr_m4["args"]
    assert "--hidden-bits" not in swept["bits-w1-m8-lr0.002"]["args"]
    assert swept["bits-w2-m8-lr0.002"]["args"][swept["bits-w2-m8-lr0.002"]["args"].index("--hidden-bits") + 1] == "2"
    # --only picks configurations by row name, the aliased 1-bit cell included
    only = ablation.plan("fsdd", seeds, scan, lrs, 20, rates, "sweep", {"bits-w1-m4"})
    assert [r["name"] for r in only] == ["wsdr-m4-lr0.002"]


def test_ablation_status_counts_the_runs_left_once_each() -> None:
    """--phase status: the runs still to train per stage, for rows decided or not, each run once
    (a 1-bit sweep cell is its wsdr row's run), runs of another epoch budget not counted as done."""
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    import ablation

    lrs, seeds, scan = [0.002, 0.01], [0, 1, 2], [0]
    # nothing run: 9 rows x 2 rates at the scan seed, 9 x 2 other seeds, sweep 12 cells - the 2 wsdr ones, x 3
    assert ablation.remaining("fsdd", [], seeds, scan, lrs, 20) == {"scan": 18, "seeds": 18, "sweep": 30}
    ep = "qsnn-train --epochs 20"

    def row(name: str, seed: int, val: float = 0.5, command: str = ep) -> dict:
        return {"name": name, "seed": seed, "val_accuracy": val, "command": command}

    done = [row(f"{n}-lr{lr:g}", 0, 0.9 if lr == 0.01 else 0.5) for n in ("fp32", "wsdr-m4") for lr in lrs]
    done += [row("fp32-lr0.01", 1), row("bits-w8-m8-lr0.01", 2), row("naive-m4-lr0.01", 0, command="qsnn-train --epochs 5")]
    left = ablation.remaining("fsdd", done, seeds, scan, lrs, 20)
    # scan: 7 undecided rows x 2 rates (naive-m4's 5-epoch run is another table's);
    # seeds: fp32's seed 2, wsdr-m4's 1 and 2, the 7 undecided rows' 2 each but wsdr-m2's, which the
    # sweep runs at wsdr-m4's rate; sweep: 10 cells x 3 - the finished one, + wsdr-m2 at 1e-2 seeds 1-2
    assert left == {"scan": 14, "seeds": 1 + 2 + 6 * 2, "sweep": 29 + 2}
    # once the sweep has run that cell's seed 1, it is left neither to the sweep nor to wsdr-m2's seeds
    assert ablation.remaining("fsdd", done + [row("wsdr-m2-lr0.01", 1)], seeds, scan, lrs, 20) == {
        "scan": 14, "seeds": 1 + 2 + 6 * 2, "sweep": 29 + 1}
    assert ablation.remaining("fsdd", done, seeds, scan, lrs, 20, {"fp32"}) == {"scan": 0, "seeds": 1, "sweep": 0}
    rc = ablation.main(["--datasets", "fsdd", "--phase", "status", "--results", str(REPO_ROOT / "no-such-dir")])
    assert rc == 0


def test_ablation_status_names_the_runs_a_stop_left_mid_training(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A run with a resume state and no finished marker is in flight, with the epochs its
    history has; one whose training finished (trained.json) is not."""
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    import ablation

    work = tmp_path / "work" / "fsdd"
    for name, seed, epochs, finished in (("wreg-m4-lr0.01", 0, 12, False), ("fp32-lr0.005", 1, 40, True)):
        d = work / name / f"seed{seed}"
        (d / "train").mkdir(parents=True)
        (d / "train" / "resume.safetensors").write_bytes(b"state")
        (d / "train" / "history.jsonl").write_text("{}\n" * epochs)
        if finished:
            (d / "trained.json").write_text("{}")
    assert ablation.in_flight(work) == [("wreg-m4-lr0.01", 0, 12)]
    assert ablation.main(["--datasets", "fsdd", "--phase", "status", "--results", str(tmp_path)]) == 0
    assert "in flight: wreg-m4-lr0.01 seed 0, 12 of 40 epochs trained" in capsys.readouterr().out


def test_runs_spread_over_gpus_one_device_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--gpus: which devices runs go to, and how a run is placed on one (its own
    CUDA_VISIBLE_DEVICES and --device cuda, unless it names a device); jobs default to one per
    GPU. A sweep's runs take a free GPU each, never two runs on one at once. This machine has
    no GPU, so the training subprocess is replaced by a recorder of what it was given."""
    assert sweep.parse_gpus("none", visible=4) == []
    assert sweep.parse_gpus("auto", visible=0) == []
    assert sweep.parse_gpus("auto", visible=3) == [0, 1, 2]
    assert sweep.parse_gpus("1,0", visible=2) == [1, 0]
    for bad, msg in (("2", "has 2 CUDA device"), ("0,0", "each index once"), ("gpu0", "expected none, auto")):
        with pytest.raises(ValueError, match=msg):
            sweep.parse_gpus(bad, visible=2)
    assert sweep.default_jobs([{"name": "a", "args": []}], cores=16, gpus=[0, 1, 2]) == 3
    args, env = sweep.device_args(["--hidden", "16"], 1)
    assert args == ["--hidden", "16", "--device", "cuda"] and env["CUDA_VISIBLE_DEVICES"] == "1"
    assert sweep.device_args(["--device", "cuda:0"], 0)[0] == ["--device", "cuda:0"]
    assert sweep.device_args(["--hidden", "16"], None)[0] == ["--hidden", "16"]

    import threading as th
    import time as tm

    busy: set[str] = set()
    seen: list[tuple[str, list[str]]] = []
    guard = th.Lock()

    def fake_run(self: sweep.Sweep, cmd: list[str], log: Path, env: dict[str, str] | None = None,
                 append: bool = False) -> None:
        assert "qsnnkit.train.cli" in cmd and "--resume" in cmd and append  # a stopped run continues, its log kept
        dev = (env or {})["CUDA_VISIBLE_DEVICES"]
        with guard:
            assert dev not in busy, f"two runs on GPU {dev} at once"
            busy.add(dev)
            seen.append((dev, cmd))
        tm.sleep(0.05)
        with guard:
            busy.discard(dev)
        raise RuntimeError("no real training here")  # as a failed run: the GPU must come back all the same

    monkeypatch.setattr(sweep.Sweep, "_run", fake_run)
    runs: list[sweep.SweepRun] = [{"name": f"r{i}", "args": ["--hidden", "16"], "seeds": [0, 1]} for i in range(3)]
    failures = sweep.Sweep(runs, tmp_path / "rows.jsonl", tmp_path / "work", None, None, None, [0, 1]).run(2)
    assert failures == 6 and len(seen) == 6  # every run was placed, even after others failed
    assert {d for d, _ in seen} == {"0", "1"}
    assert all(c[c.index("--device") + 1] == "cuda" for _, c in seen)
