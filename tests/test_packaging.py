"""A non-editable install (`pip install .`) carries conf/ and finds it from any directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_installed_package_finds_its_configs(tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(site), str(REPO)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    assert (site / "ssl_hybrid" / "conf" / "data" / "fashion_mnist.yaml").is_file()
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
