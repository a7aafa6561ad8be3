"""A non-editable install finds its packaged grids from any directory (configs/ ships as data files)."""

from __future__ import annotations

import os
import re
import site
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_non_editable_install_runs_quick_dry_run_elsewhere(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], capture_output=True, text=True
    ).stdout.strip()
    # the dependencies (torch from constraints-cpu.txt, ...) come from this interpreter's site-packages
    Path(purelib, "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    r = subprocess.run(
        [str(venv / "bin" / "hourglass-bench"), "run", "quick", "--dry-run"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "grid 'quick'" in r.stdout and re.search(r"\n\d+ cells, 0 skipped\n", r.stdout), r.stdout
    assert str(elsewhere / "results" / "quick") in r.stdout  # results go to ./results of the CWD
    where = subprocess.run(
        [str(py), "-c", "import bench; print(bench.__file__)"], cwd=elsewhere, capture_output=True, text=True
    ).stdout
    assert str(venv) in where  # the installed copy ran, not the checkout
