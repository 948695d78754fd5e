"""A non-editable install (`pip install .`) carries conf/ and finds it from any directory."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOT_SOURCES = {".git", ".venv", "build", "logs", "data", "docs", ".pytest_cache"}  # at the repository's top level


def _sources(destination: Path) -> Path:
    """A copy of the sources alone: pip builds in the tree it is given, and would ship what a stale build/ holds."""

    def skipped(folder: str, names: list[str]) -> list[str]:
        top = Path(folder) == REPO
        return [n for n in names if (top and n in NOT_SOURCES) or n == "__pycache__" or n.endswith(".egg-info")]

    return shutil.copytree(REPO, destination, ignore=skipped)


def test_installed_package_finds_its_configs(tmp_path):
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(site),
         str(_sources(tmp_path / "sources"))],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    # a config folder missing from pyproject's packages: setuptools warns, at length, on every install
    assert "absent from the `packages` configuration" not in install.stderr
    shipped = sorted(p.relative_to(site / "ssl_hybrid" / "conf") for p in (site / "ssl_hybrid" / "conf").rglob("*.yaml"))
    assert shipped == sorted(p.relative_to(REPO / "conf") for p in (REPO / "conf").rglob("*.yaml"))
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "ssl_hybrid.train", "--cfg", "job", "data=fashion_mnist", "model.alpha=0.5"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "dataset: fashion_mnist" in result.stdout and "alpha: 0.5" in result.stdout
    where = subprocess.run(
        [sys.executable, "-c", "import ssl_hybrid; print(ssl_hybrid.__file__)"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert where.stdout.startswith(str(site))
