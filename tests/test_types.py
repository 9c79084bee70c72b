"""The package, the benchmark scripts and the tests type-check: mypy with the settings in
pyproject.toml ([tool.mypy]: every function annotated, no unused ``type: ignore``).

The stages keep their own folders (train/, convert/, host/, baseline/) and are installed as
qsnnkit.train, qsnnkit.convert, ...; an editable install maps them with an import hook that
mypy cannot follow. So the tests link them into one qsnnkit tree, as installed, and check
that: a module mypy could not resolve is an error, never a silent ``Any``."""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qsnnkit.paths import REPO_ROOT

STAGES = ("train", "convert", "host", "baseline")
ROOT = REPO_ROOT / "build" / "typecheck"  # the linked tree and mypy's cache (a rerun checks what changed)


def link_tree(root: Path) -> Path:
    """root/qsnnkit: the package's own modules and each stage's folder, linked as installed."""
    pkg = root / "qsnnkit"
    if pkg.exists():
        for p in pkg.iterdir():
            p.unlink()
    pkg.mkdir(parents=True, exist_ok=True)
    for f in sorted((REPO_ROOT / "qsnnkit").glob("*.py")):
        (pkg / f.name).symlink_to(f)
    for stage in STAGES:
        (folder,) = importlib.import_module(f"qsnnkit.{stage}").__path__  # where it is installed from
        (pkg / stage).symlink_to(Path(folder))
    return pkg


@pytest.fixture(scope="module")
def tree() -> Path:
    link_tree(ROOT)
    return ROOT


def mypy(*args: str, cwd: Path, mypy_path: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MYPYPATH": mypy_path}
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(REPO_ROOT / "pyproject.toml"),
                           "--cache-dir", str(ROOT / ".mypy_cache"), *args],
                          cwd=cwd, env=env, capture_output=True, text=True)


def test_the_package_type_checks(tree: Path) -> None:
    r = mypy("-p", "qsnnkit", cwd=tree)
    assert r.returncode == 0, f"mypy found type errors (paths are under qsnnkit/, as installed):\n{r.stdout}{r.stderr}"
    assert "no issues found in" in r.stdout, r.stdout


@pytest.mark.parametrize("folders", [("benchmarks",), ("tests", "tests/fuzz")])
def test_the_scripts_and_tests_type_check(tree: Path, folders: tuple[str, ...]) -> None:
    # they import the package (as installed) and each other: benchmarks use helpers kept in
    # tests/, and tests run benchmark scripts
    files = sorted(str(p.relative_to(REPO_ROOT)) for d in folders for p in (REPO_ROOT / d).glob("*.py"))
    path = os.pathsep.join(str(p) for p in (tree, REPO_ROOT / "tests", REPO_ROOT / "benchmarks"))
    r = mypy(*files, cwd=REPO_ROOT, mypy_path=path)
    assert r.returncode == 0, f"mypy found type errors:\n{r.stdout}{r.stderr}"
    assert f"no issues found in {len(files)} source files" in r.stdout, r.stdout
