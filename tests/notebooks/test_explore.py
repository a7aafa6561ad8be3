"""notebooks/explore.ipynb runs top to bottom on a real Jupyter kernel and matches its jupytext pair."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def test_notebook_is_paired_and_stripped():
    jupytext = pytest.importorskip("jupytext")
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(NOTEBOOKS / "explore.ipynb", as_version=4)
    py = jupytext.read(NOTEBOOKS / "explore.py")
    assert [c.source for c in nb.cells] == [c.source for c in py.cells]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


@pytest.mark.slow
@pytest.mark.parametrize("results", ["missing", "synthetic"])
def test_notebook_runs_headless(tmp_path, monkeypatch, results):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    if results == "missing":  # a fresh clone: the notebook runs a small FLOPs-only grid itself
        folder = tmp_path / "nothing-here"
    else:  # rows with accuracy, speed and seeds: every table, plot and the hypervolume ranking
        import importlib.util

        spec = importlib.util.spec_from_file_location("synth", Path(__file__).parents[1] / "bench/report/conftest.py")
        synth = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(synth)
        folder = tmp_path / "synthetic"
        folder.mkdir()
        synth.synthetic_results().to_csv(folder / "results.csv", index=False)
    monkeypatch.setenv("HOURGLASS_RESULTS", str(folder))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    nb = nbformat.read(NOTEBOOKS / "explore.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    client.execute()  # raises CellExecutionError on any cell error
    text = "\n".join(
        o.get("text", "") or str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    if results == "missing":
        assert "No results in" in text and "Running a small FLOPs-only grid" in text
        assert "needs gflops, mpjpe_mm and trivial_mpjpe_mm" in text
        assert images == 2  # the GFLOPs heatmaps of the two backbones
    else:
        assert "hypervolume of the MPJPE-gflops fronts" in text and "cluster+attention" in text
        assert images == 9
