"""The layering reads like the pipeline: the shared layer (qsnnkit/) imports no stage and no
torch; host/ depends only on the shared layer; convert/ on the shared layer and train/;
baseline/ (the DS-CNN the benchmark compares against) on the shared layer and train/'s data
augmentation, and it alone imports TensorFlow; no module imports another that imports it back
(no cycle, at any depth, counting imports made inside functions too)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from qsnnkit.paths import REPO_ROOT

#: folder -> installed package (pyproject.toml's package-dir)
FOLDERS = {"qsnnkit": "qsnnkit", "train": "qsnnkit.train", "convert": "qsnnkit.convert", "host": "qsnnkit.host",
           "baseline": "qsnnkit.baseline"}
STAGES = ("qsnnkit.train", "qsnnkit.convert", "qsnnkit.host", "qsnnkit.baseline")
#: stage -> stages it may import
ALLOWED = {"shared": set(), "qsnnkit.train": set(), "qsnnkit.convert": {"qsnnkit.train"}, "qsnnkit.host": set(),
           "qsnnkit.baseline": {"qsnnkit.train"}}
#: the heavy optional packages only the baseline may import (the [baseline] extra)
BASELINE_ONLY = ("tensorflow", "keras", "ai_edge_litert", "tflite_micro")


def _layer(mod: str) -> str:
    for s in STAGES:
        if mod == s or mod.startswith(s + "."):
            return s
    return "shared"


def _modules() -> dict[str, Path]:
    mods = {}
    for folder, pkg in FOLDERS.items():
        for p in sorted((REPO_ROOT / folder).glob("*.py")):
            mods[pkg if p.stem == "__init__" else f"{pkg}.{p.stem}"] = p
    return mods


def _imports(path: Path, mod: str) -> set[str]:
    """Every module imported anywhere in the file (top level or inside functions)."""
    out: set[str] = set()
    pkg = mod if path.stem == "__init__" else mod.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: {i for i in _imports(p, m) if i in mods and i != m} for m, p in mods.items()}


def test_every_package_file_is_seen() -> None:
    mods = _modules()
    assert {"qsnnkit.spec", "qsnnkit.model", "qsnnkit.reference", "qsnnkit.train.trainer", "qsnnkit.convert.codegen",
            "qsnnkit.host.eval"} <= set(mods)


def test_no_stage_imports_a_later_or_sibling_stage() -> None:
    bad = []
    for mod, deps in _graph().items():
        src = _layer(mod)
        for d in deps:
            dst = _layer(d)
            if dst != "shared" and dst != src and dst not in ALLOWED[src]:
                bad.append(f"{mod} -> {d}")
    assert bad == [], "imports against the layering (shared <- train <- convert; shared <- host): " + ", ".join(bad)


def test_shared_layer_needs_no_torch() -> None:
    mods = _modules()
    bad = [m for m, p in mods.items() if _layer(m) == "shared"
           and any(i == "torch" or i.startswith("torch.") for i in _imports(p, m))]
    assert bad == [], f"shared modules importing torch: {bad}"


def test_only_the_baseline_imports_tensorflow() -> None:
    """TensorFlow and the TFLite runtimes are an optional extra: the pipeline never needs them."""
    mods = _modules()
    bad = [f"{m} -> {i}" for m, p in mods.items() if _layer(m) != "qsnnkit.baseline"
           for i in _imports(p, m) if i.split(".")[0] in BASELINE_ONLY]
    assert bad == [], f"modules outside baseline/ importing the [baseline] extra: {bad}"


def test_no_import_cycle() -> None:
    g = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(g[m]):
            if state.get(d) == 1:
                cyc = stack[stack.index(d):] + [d]
                raise AssertionError("import cycle: " + " -> ".join(cyc))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)


def test_the_checker_finds_what_it_looks_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rules fire on a back edge and on a cycle (so the tests above can fail)."""
    import sys

    g = {"qsnnkit.a": {"qsnnkit.train.x"}, "qsnnkit.train.x": {"qsnnkit.a"}}
    monkeypatch.setattr(sys.modules[__name__], "_graph", lambda: g)
    for check in (test_no_stage_imports_a_later_or_sibling_stage, test_no_import_cycle):
        try:
            check()
        except AssertionError:
            continue
        raise AssertionError(f"{check.__name__} missed a planted violation")
