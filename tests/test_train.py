"""Training: same seed and thread count give the same model hash; CLIs fail clearly."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from qsnnkit import data
from qsnnkit.convert.integerize import integerize
from qsnnkit.paths import REPO_ROOT
from qsnnkit.train import checkpoint
from qsnnkit.train.model import QSNN, QSNNConfig
from qsnnkit.train.trainer import TrainSettings, train


def _hash(tmp: Path, data_root: Path, seed: int) -> str:
    st = TrainSettings(epochs=2, batch_size=16, seed=seed, threads=1, limit=48, binary_init_std=1.0)
    res = train(QSNNConfig(conv=(), hidden=(32, 32), recurrent=(True, False)), st, data_root, tmp)
    model, _ = checkpoint.load(res.checkpoint)
    return integerize(model, list(data.CLASSES)).hash_hex


def test_same_seed_and_threads_give_the_same_model_hash(tmp_path: Path, data_root: Path) -> None:
    a = _hash(tmp_path / "a", data_root, 3)
    b = _hash(tmp_path / "b", data_root, 3)
    c = _hash(tmp_path / "c", data_root, 4)
    assert a == b
    assert a != c  # the hash does depend on the training run


def test_each_epoch_is_written_as_it_ends_and_the_platform_is_recorded(tmp_path: Path, data_root: Path) -> None:
    """history.jsonl holds one line per epoch, equal to the checkpoint's history (a stopped run
    keeps its curve); the checkpoint records what its float results depend on beyond the
    settings (the CPU's kernels, the threads), and the converter's report carries it on."""
    import json

    from qsnnkit.convert.cli import provenance

    st = TrainSettings(epochs=2, batch_size=16, threads=1, limit=32, augment="", synthetic=0)
    res = train(QSNNConfig(conv=(), hidden=(16,), recurrent=(True,)), st, data_root, tmp_path)
    model, meta = checkpoint.load(res.checkpoint)
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == meta["history"] == res.history
    assert [h["epoch"] for h in meta["history"]] == [0, 1]
    plat = meta["platform"]
    assert plat["threads"] == 1 and plat["device"] == "cpu" and plat["torch"] == torch.__version__
    assert plat["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert provenance(res.checkpoint, model, meta, str(data_root))["trained_on"] == plat
    # a checkpoint from before the platform was recorded converts without it
    old = {k: v for k, v in meta.items() if k != "platform"}
    assert "trained_on" not in provenance(res.checkpoint, model, old, str(data_root))


def _interrupt_after(monkeypatch: pytest.MonkeyPatch, epochs_done: int) -> None:
    """Stop training (as a killed process would) right after the state of epoch epochs_done - 1 is on disk."""
    from qsnnkit.train import resume

    real = resume.save

    def save_then_stop(path: Path, st: resume.State, identity: dict) -> None:
        real(path, st, identity)
        if st.next_epoch == epochs_done:
            raise KeyboardInterrupt

    monkeypatch.setattr(resume, "save", save_then_stop)


def test_an_interrupted_run_resumes_to_the_same_bits(tmp_path: Path, data_root: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Stopped after 2 of 3 epochs and resumed, a run ends with exactly the weights, best epoch
    and history of the same run never stopped: the optimizer's moments, the schedule's position
    and the NumPy draws of augmentation, masks and batch order all continue where they were."""
    import json

    from safetensors.torch import load_file

    from qsnnkit.train import resume

    st = TrainSettings(epochs=3, batch_size=16, threads=1, limit=32, augment="speed,volume,shift,noise,mask",
                       synthetic=0, lambda_sr=0.05)
    cfg = QSNNConfig(conv=(), hidden=(16,), recurrent=(True,))
    # the last epoch's live state too (the checkpoint holds the best epoch's weights, which may
    # come from before the stop): model, optimizer moments, schedule
    last: dict[str, resume.State] = {}
    real = resume.save

    def keep_last(path: Path, s: resume.State, identity: dict) -> None:
        real(path, s, identity)
        if s.next_epoch == st.epochs:
            last[path.parent.name] = s

    monkeypatch.setattr(resume, "save", keep_last)
    whole = train(cfg, st, data_root, tmp_path / "whole")
    with monkeypatch.context() as m:
        _interrupt_after(m, 2)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, st, data_root, tmp_path / "cut")
    assert (tmp_path / "cut" / "resume.safetensors").is_file()
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    assert len((tmp_path / "cut" / "history.jsonl").read_text().splitlines()) == 2  # the curve so far
    capsys.readouterr()
    cont = train(cfg, st, data_root, tmp_path / "cut", resume=True)
    assert "continuing" in capsys.readouterr().out and cont.resumed_at == 2
    a, b = load_file(whole.checkpoint), load_file(cont.checkpoint)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k}: {_first_mismatch(a[k], b[k])}"
    assert (cont.best_epoch, cont.val_accuracy, cont.history) == (whole.best_epoch, whole.val_accuracy, whole.history)
    x, y = last["whole"], last["cut"]
    for k in x.model:
        assert torch.equal(x.model[k], y.model[k]), f"last epoch's {k}: {_first_mismatch(x.model[k], y.model[k])}"
    assert x.scheduler == y.scheduler and x.optimizer["param_groups"] == y.optimizer["param_groups"]
    xs, ys = x.optimizer["state"], y.optimizer["state"]
    assert isinstance(xs, dict) and isinstance(ys, dict)
    for i, mom in xs.items():
        for n, v in mom.items():
            assert torch.equal(v, ys[i][n]), f"optimizer state {i}.{n}"
    assert x.numpy_rng == y.numpy_rng
    lines = (tmp_path / "cut" / "history.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == whole.history
    assert not (tmp_path / "cut" / "resume.safetensors").exists()  # finished: nothing left to resume


def test_a_state_left_by_another_run_is_not_continued(tmp_path: Path, data_root: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Other settings (here the learning rate), an unreadable file or none: epoch 0, and why."""
    from dataclasses import replace

    st = TrainSettings(epochs=2, batch_size=16, threads=1, limit=32, augment="", synthetic=0)
    cfg = QSNNConfig(conv=(), hidden=(16,), recurrent=(True,))
    with monkeypatch.context() as m:
        _interrupt_after(m, 1)
        with pytest.raises(KeyboardInterrupt):
            train(cfg, st, data_root, tmp_path)
    capsys.readouterr()
    res = train(cfg, replace(st, lr=st.lr / 2), data_root, tmp_path, resume=True)
    assert res.resumed_at == 0 and "left by a different run (settings differ)" in capsys.readouterr().out
    res = train(cfg, st, data_root, tmp_path, resume=True)  # the finished run removed its state
    assert res.resumed_at == 0 and "no resume.safetensors" in capsys.readouterr().out
    (tmp_path / "resume.safetensors").write_bytes(b"not a state")
    res = train(cfg, st, data_root, tmp_path, resume=True)
    assert res.resumed_at == 0 and "not a readable resume state" in capsys.readouterr().out


def test_fsdd_trains_converts_and_the_model_knows_its_dataset(tmp_path: Path, data_root: Path) -> None:
    """The spoken digits go through the same front end: 10 classes, FSDD's split, and the
    converted model names its dataset (the host evaluates it on FSDD's clips)."""
    from qsnnkit.convert.cli import eval_split

    st = TrainSettings(dataset="fsdd", augment="shift,mask", epochs=1, batch_size=16, threads=1, limit=32)
    res = train(QSNNConfig(conv=(), hidden=(16,), recurrent=(True,), n_classes=10), st, data_root, tmp_path)
    model, meta = checkpoint.load(res.checkpoint)
    assert meta["classes"] == list(data.FSDD_CLASSES)
    cm = integerize(model, meta["classes"], provenance={"train_settings": meta["settings"]})
    assert cm.dataset == "fsdd" and cm.n_classes == 10
    x, y = eval_split(cm, str(data_root), "val")
    assert x.shape == (300, 49, 40) and sorted(set(y.tolist())) == list(range(10))
    with pytest.raises(ValueError, match="FSDD has no background-noise"):
        TrainSettings(dataset="fsdd", augment="noise")


def test_checkpoint_is_safetensors_with_config(tmp_path: Path) -> None:
    from qsnnkit.train.model import QSNN

    m = QSNN(QSNNConfig(conv=(), hidden=(8,), recurrent=(True,)))
    p = checkpoint.save(m, tmp_path / "m.safetensors", {"x": 1})
    m2, meta = checkpoint.load(p)
    assert m2.cfg == m.cfg and meta == {"x": 1}
    (tmp_path / "bad.safetensors").write_bytes(b"\x80\x04not safetensors")
    with pytest.raises(ValueError, match="not a safetensors"):
        checkpoint.load(tmp_path / "bad.safetensors")


@pytest.mark.parametrize("module", ["qsnnkit.train.cli", "qsnnkit.convert.cli", "qsnnkit.train.sweep", "qsnnkit.train.stream_tune",
                                    "qsnnkit.generated", "qsnnkit.dataset"])
def test_cli_help(module: str) -> None:
    r = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "usage:" in r.stdout


def test_train_cli_bad_root_is_a_clear_error(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "qsnnkit.train.cli", "--data-root", str(tmp_path / "nope"),
                        "--epochs", "1", "--out", str(tmp_path / "o")], capture_output=True, text=True, cwd=REPO_ROOT)
    assert r.returncode == 2
    assert "qsnn-train:" in r.stderr and "nope" in r.stderr


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="leak_shift"):
        QSNNConfig(mem_bits=8, leak_shift=2)


@pytest.mark.parametrize("cfg,st", [
    (QSNNConfig(), TrainSettings()),
    (QSNNConfig(conv=((8, 5, 5, 2),), hidden=(32,), recurrent=(True,), hidden_bits=4, norm="bn"),
     TrainSettings(epochs=3, loss_on="sum")),
    (QSNNConfig(conv=(), hidden=(64, 32, 16), recurrent=(False, True, True), mem_bits=8, leak_shift=1),
     TrainSettings(epochs=7, batch_size=32, lr=3e-3, weight_decay=0.0, lambda_sr=0.0, seed=5, threads=2,
                   augment=True,  # type: ignore[arg-type]  # a bool, as old checkpoints store it
                   limit=100, gain_lr_scale=0.0, binary_init_std=0.0, device="cuda")),
    (QSNNConfig(conv=((8, 5, 5, 2),), hidden=(16,), recurrent=(True,), norm="bn", float_weights=True,
                float_membranes=True), TrainSettings(epochs=2)),
    (QSNNConfig(float_weights=True), TrainSettings(epochs=2, loss_on="mean")),
    (QSNNConfig(float_membranes=True), TrainSettings(epochs=2)),
    (QSNNConfig(), TrainSettings(teacher_epochs=15, kd_weight=0.7, kd_temp=3.0)),
    (QSNNConfig(), TrainSettings(augment="mask,noise,speed,volume")),
    (QSNNConfig(), TrainSettings(synthetic=150, augment="shift,noise")),
    (QSNNConfig(readout="max"), TrainSettings()),
    (QSNNConfig(adapt_shift=2, adapt_beta=0.125, adapt_layers="all"), TrainSettings()),
    (QSNNConfig(readout="late", adapt_shift=3, adapt_beta=0.5), TrainSettings(augment="speed,volume,shift,noise,mask",
                                                                              synthetic=100)),
    (QSNNConfig(), TrainSettings(split_rule="official", unknown_percent=25.0, silence_percent=5.0)),
    (QSNNConfig(n_classes=10), TrainSettings(dataset="fsdd", augment="speed,volume,shift,mask")),
    (QSNNConfig(n_classes=10), TrainSettings(dataset="fsdd", augment="")),
    (QSNNConfig(weight_reg=False), TrainSettings(lambda_sr=0.0)),
])
def test_provenance_command_reproduces_the_training_settings(cfg: QSNNConfig, st: TrainSettings) -> None:
    """The command in a model's provenance parses back to exactly the settings it was trained with."""
    import shlex
    from dataclasses import asdict

    from qsnnkit.train import cli

    line = cli.command_for(cfg, st)
    argv = shlex.split(line)
    assert argv[0] == "qsnn-train"
    cfg2, st2 = cli.settings_from_args(cli.parser().parse_args(argv[1:]))
    assert cfg2 == cfg
    assert asdict(st2) == asdict(st)
    with pytest.raises(ValueError, match="in_shift"):
        cli.command_for(QSNNConfig(in_shift=4), st)


def test_default_model_header_names_its_exact_training_command() -> None:
    from qsnnkit.model import load_converted
    from qsnnkit.train import cli

    d = REPO_ROOT / "firmware" / "models" / "default"
    m = load_converted(d / "model.npz")
    net, meta = checkpoint.load(d / "model.safetensors")
    cmd = cli.command_for(net.cfg, TrainSettings(**meta["settings"]))
    assert m.provenance["train_command"] == cmd
    assert cmd in (d / "qsnn_model.c").read_text().splitlines()[0]


@pytest.mark.parametrize("kwargs,msg", [
    ({"hidden": (8,) * 9, "recurrent": (False,) * 9}, "at most 8"),
    ({"hidden": (70000,), "recurrent": (False,)}, "16 bits"),
    ({"conv": ((8, 17, 5, 2),)}, "outside the contract"),
    ({"conv": ((8, 3, 5, 6),)}, "outside the contract"),
    ({"hidden_bits": 3}, "hidden_bits"),
])
def test_configs_the_device_cannot_run_are_refused_before_training(kwargs: dict, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        QSNNConfig(**kwargs)


def test_train_cli_refuses_a_bad_conv_spec_clearly(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "qsnnkit.train.cli", "--conv", "8:5:5", "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=REPO_ROOT)
    assert r.returncode == 2 and "qsnn-train:" in r.stderr and "channels:kt:kf:stride" in r.stderr, r.stderr


@pytest.mark.parametrize("fw,fm", [(True, True), (True, False), (False, True)])
def test_float_twin_trains_but_is_refused_by_the_converter(fw: bool, fm: bool) -> None:
    """The float twin (issue 14's full-precision rows) runs forward and backward with batch norm,
    its membranes are off the b-bit grid, and conversion refuses it by name."""
    from qsnnkit.convert.integerize import integerize

    torch.manual_seed(0)
    cfg = QSNNConfig(conv=((4, 3, 5, 2),), hidden=(16,), recurrent=(True,), norm="bn", float_weights=fw,
                     float_membranes=fm)
    m = QSNN(cfg)
    x = torch.randint(0, 256, (4, 12, 40)).float()
    m.train()
    out = m(x)
    out.logits_sum.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.w)
    m.eval()
    tr = m(x, trace=True)
    codes = torch.cat([t.flatten() for t in tr.trace_mem])
    off_grid = bool((codes != torch.floor(codes)).any())
    assert off_grid == fm  # float membranes leave the grid; quantized ones never do
    with pytest.raises(ValueError, match="float (weights|membranes)"):
        integerize(m, [str(i) for i in range(12)])


def test_readout_levers_are_refused_by_the_converter_and_adaptation_converts() -> None:
    """--readout late|max: measured levers. The late readout is the sum over the second half of
    the frames, max each class's peak frame; neither converts. --adapt: adaptive LIF lowers the
    firing, trains (finite gradients) and converts (its exactness: tests/test_core.py);
    settings the contract cannot hold are refused with the reason."""
    from qsnnkit.convert.integerize import integerize

    torch.manual_seed(0)
    base = QSNNConfig(conv=((4, 3, 5, 2),), hidden=(16,), recurrent=(True,))
    m = QSNN(base)
    x = torch.randint(0, 256, (3, 12, 40)).float()
    m.eval()
    total = m(x).logits_sum
    for readout in ("late", "max"):
        lever = QSNN(QSNNConfig(**{**base.__dict__, "readout": readout}))
        lever.load_state_dict(m.state_dict())
        lever.eval()
        got = lever(x).logits_sum
        assert got.shape == total.shape and not torch.equal(got, total)
        with pytest.raises(ValueError, match=f"the '{readout}' readout"):
            integerize(lever, [str(i) for i in range(12)])
    alif = QSNN(QSNNConfig(**{**base.__dict__, "adapt_shift": 3, "adapt_beta": 0.5}))
    alif.load_state_dict(m.state_dict())
    alif.train()
    out = alif(x)
    out.logits_sum.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in alif.w)
    m.train()
    with torch.no_grad():
        assert float(alif(x).rates[-1]) <= float(m(x).rates[-1])  # adaptation only ever lowers the current
    alif.eval()
    cm = integerize(alif, [str(i) for i in range(12)])
    assert [(L.adapt_shift, L.adapt_beta) for L in cm.layers] == [(0, 0), (3, 16)]  # dense layers only
    with pytest.raises(ValueError, match="readout must be one of"):
        QSNNConfig(readout="mean")
    with pytest.raises(ValueError, match="multiple of 2\\^-5"):
        QSNNConfig(**{**base.__dict__, "adapt_shift": 3, "adapt_beta": 0.3})
    with pytest.raises(ValueError, match="adapt_shift must be 0"):
        QSNNConfig(**{**base.__dict__, "adapt_shift": 9})
    with pytest.raises(ValueError, match="at least one dense layer"):
        QSNNConfig(**{**base.__dict__, "hidden": (), "recurrent": (), "adapt_shift": 2})


def test_distillation_trains_a_float_teacher_first_and_is_recorded(tmp_path: Path, data_root: Path) -> None:
    """--teacher-epochs N: a float twin (batch norm) is trained in OUT/teacher, then the student
    learns from its outputs too; the teacher is not deployable, the student is."""
    from qsnnkit.train.trainer import distill_loss

    st = TrainSettings(epochs=1, teacher_epochs=1, limit=24, batch_size=8)
    cfg = QSNNConfig(conv=((4, 3, 5, 2),), hidden=(8,), recurrent=(True,))
    res = train(cfg, st, data_root, tmp_path)
    teacher, _ = checkpoint.load(tmp_path / "teacher" / "model.safetensors")
    assert teacher.cfg.float_weights and teacher.cfg.float_membranes and teacher.cfg.norm == "bn"
    student, meta = checkpoint.load(res.checkpoint)
    assert student.cfg.integer and meta["settings"]["teacher_epochs"] == 1
    with pytest.raises(ValueError, match="float weights and float membranes"):
        integerize(teacher, list(data.CLASSES))
    # the term is zero when the outputs agree and positive when they do not
    t = torch.tensor([[2.0, -1.0, 0.5]])
    assert float(distill_loss(t, t, 2.0)) == pytest.approx(0.0, abs=1e-7)
    assert float(distill_loss(torch.zeros_like(t), t, 2.0)) > 0.0
    with pytest.raises(ValueError, match="augment"):
        train(cfg, TrainSettings(epochs=1, teacher_epochs=1, augment="shift,noise", limit=8), data_root, tmp_path / "x")


def _train_cli(args: list[str], out: Path, env: dict[str, str], procs: int = 1) -> None:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs), "-m"]
                if procs > 1 else [sys.executable, "-m"])
    res = subprocess.run([*launcher, "qsnnkit.train.cli", *args, "--out", str(out)], capture_output=True, text=True,
                         timeout=900, env=env)
    assert res.returncode == 0, f"{procs} process(es):\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"


def test_ddp_on_two_gloo_processes_equals_one_process_with_the_same_global_batch(tmp_path: Path,
                                                                                 data_root: Path) -> None:
    """torchrun, 2 CPU processes on gloo, DistributedDataParallel: after 20 steps (140 clips,
    global batch 7: shards of 4 and 3, so the per-shard scaling matters) from one
    initialisation, every parameter equals a single-process run of the same global batch within
    1e-5 relative (train/distributed.py: the cross-entropy scaled per shard, the WS-DR rate
    term over the global batch)."""
    import os

    from safetensors.torch import load_file

    args = ["--data-root", str(data_root), "--limit", "140", "--batch-size", "7", "--epochs", "1", "--augment", "",
            "--synthetic", "0", "--threads", "1", "--seed", "3", "--lambda-sr", "0.05"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                            "MASTER_PORT")}
    _train_cli(args, tmp_path / "one", env)
    _train_cli(args, tmp_path / "two", env, procs=2)
    one, two = load_file(tmp_path / "one" / "model.safetensors"), load_file(tmp_path / "two" / "model.safetensors")
    assert one.keys() == two.keys()
    for k in one:
        a, b = one[k].double(), two[k].double()
        rel = float((a - b).abs().max() / a.abs().max().clamp_min(1e-12))
        assert rel <= 1e-5, f"{k}: relative difference {rel:.2e}"
    meta = checkpoint.load(tmp_path / "two" / "model.safetensors")[1]
    # data-parallel indeed: rank 0 ran 4 of each 7 clips; the epoch's logged numbers
    # (summed over the shards) equal the single process's
    assert meta["distributed"] == {"world_size": 2, "backend": "gloo", "rank0_clips_per_epoch": 80}  # 20 x 4
    h1, h2 = checkpoint.load(tmp_path / "one" / "model.safetensors")[1]["history"][0], meta["history"][0]
    assert h1["clips"] == h2["clips"] == 140 and h1["train_acc"] == h2["train_acc"]
    assert abs(h1["loss"] - h2["loss"]) <= 1e-5 * abs(h1["loss"])


def _first_mismatch(a: torch.Tensor, b: torch.Tensor) -> str:
    bad = (a != b).nonzero()
    if len(bad) == 0:
        return "equal"
    i = tuple(bad[0].tolist())
    return f"{len(bad)} elements differ, first at {i}: {a[i].item()!r} vs {b[i].item()!r}"


@pytest.mark.parametrize("mem_bits,fm,sat", [(4, False, True), (2, False, True), (8, False, True),
                                             (4, True, True), (4, True, False)])
def test_lif_sequence_kernel_equals_the_per_step_path_bit_for_bit(mem_bits: int, fm: bool, sat: bool) -> None:
    """train/lif_seq.py's C kernel against the time loop of quant.py's steps: the same spikes
    and the same gradient of the currents, exactly, on currents that reach the saturation,
    the threshold exactly, the membrane codes' ends and rounding ties."""
    from qsnnkit.train import lif_seq, quant

    if not lif_seq.available():
        pytest.fail("the C LIF sequence kernel did not build (a C compiler is part of the test setup)")
    g = torch.Generator().manual_seed(mem_bits * 10 + fm + 2 * sat)
    B, T, N = 5, 23, 37
    cur = torch.randn(B, T, N, generator=g) * 0.9 + 0.2
    q = float(2 ** (mem_bits - 1))
    edges = torch.tensor([1.0, 0.5, -1.0, 1.0 + 1 / q, -1.0 - 0.5 / q, 0.5 / q, -0.5 / q, 200.0, -200.0, 1e4, -1e4])
    cur[:, :, : len(edges)] = edges  # exact threshold, ties, code ends, beyond the int16 range
    cur = (cur * 256).round() / 256  # on a fine grid, as the model's currents are
    up = torch.randn(B, T, N, generator=g)
    up[0, 3] = 0.0  # zero gradients too

    def per_step(c_all: torch.Tensor) -> torch.Tensor:
        u = torch.zeros(B, N)
        out = []
        for c in c_all.unbind(1):
            c = quant.sat16_fine(c) if sat else c
            u, s = quant.lif_step_float(u, c, 1) if fm else quant.lif_step(u, c, 1, mem_bits)
            out.append(s)
        return torch.stack(out, dim=1)

    a_in = cur.clone().requires_grad_()
    b_in = cur.clone().requires_grad_()
    a = per_step(a_in)
    b = lif_seq.lif_seq(b_in, 1, None if fm else mem_bits, saturate=sat)
    assert torch.equal(a, b), _first_mismatch(a, b)
    assert 0.05 < float(a.detach().mean()) < 0.95  # both spiking and silent steps are exercised
    (a * up).sum().backward()
    (b * up).sum().backward()
    assert a_in.grad is not None and b_in.grad is not None
    assert torch.equal(a_in.grad, b_in.grad), _first_mismatch(a_in.grad, b_in.grad)
    assert bool((a_in.grad != 0).any())


@pytest.mark.parametrize("extra", [{}, {"float_weights": True, "float_membranes": True}, {"mem_bits": 2,
                                   "weight_reg": False}, {"hidden": (16, 8), "recurrent": (False, True)}])
def test_model_gives_the_same_outputs_and_gradients_with_the_sequence_kernel(monkeypatch: pytest.MonkeyPatch,
                                                                            extra: dict) -> None:
    """The whole model, one training step, with and without the sequence kernel: the same
    outputs and the same gradient of every parameter, exactly (training results do not depend
    on which path ran)."""
    from qsnnkit.train import model as model_mod

    cfg = QSNNConfig(**{"n_classes": 4, "hidden": (16,), "recurrent": (True,), "conv": ((4, 3, 5, 2), (6, 3, 3, 2)),
                        "adapt_shift": 3, **extra})
    x = torch.randint(0, 256, (6, 20, cfg.n_bands), generator=torch.Generator().manual_seed(1)).float()
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    got = []
    for on in (False, True):
        monkeypatch.setattr(model_mod, "SEQUENCE_KERNEL", on)
        torch.manual_seed(0)
        m = QSNN(cfg)
        m.train()
        o = m(x)
        loss = torch.nn.functional.cross_entropy(o.logits_sum, y) + torch.stack([(r - 0.5) ** 2 for r in o.rates]).mean()
        loss.backward()
        got.append((o.logits_sum.detach(), {n: p.grad for n, p in m.named_parameters() if p.grad is not None}))
    (la, ga), (lb, gb) = got
    assert torch.equal(la, lb), _first_mismatch(la, lb)
    assert ga.keys() == gb.keys() and ga
    for k in ga:
        assert torch.equal(ga[k], gb[k]), f"{k}: {_first_mismatch(ga[k], gb[k])}"
