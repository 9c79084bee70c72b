"""The whole package type-checks: mypy over every module of qsnnkit, with the settings in
pyproject.toml ([tool.mypy]: every function annotated, no unused ``type: ignore``).

The stages keep their own folders (train/, convert/, host/, baseline/) and are installed as
qsnnkit.train, qsnnkit.convert, ...; an editable install maps them with an import hook that
mypy cannot follow. So the test links them into one qsnnkit tree, as installed, and checks
that: a module mypy could not resolve is an error, never a silent ``Any``."""
from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

from qsnnkit.paths import REPO_ROOT

STAGES = ("train", "convert", "host", "baseline")


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


def test_the_package_type_checks() -> None:
    root = REPO_ROOT / "build" / "typecheck"  # the tree and mypy's cache (a rerun checks what changed)
    link_tree(root)
    r = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(REPO_ROOT / "pyproject.toml"),
                        "--cache-dir", str(root / ".mypy_cache"), "-p", "qsnnkit"],
                       cwd=root, capture_output=True, text=True)
    assert r.returncode == 0, f"mypy found type errors (paths are under qsnnkit/, as installed):\n{r.stdout}{r.stderr}"
    assert "no issues found in" in r.stdout, r.stdout
