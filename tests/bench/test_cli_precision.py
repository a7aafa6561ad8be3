"""`run_bench.py precision`: the precision benchmark as a subcommand (issue 13)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main

REPO = Path(__file__).resolve().parents[2]
FAST = ["-p", "tiny", "--warmup", "0", "--iters", "2", "--threads", "1"]


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--precision", "fp16"], "--precision: fp16 runs on CUDA only"),
        (["--precision", "fp32"], "--precision fp32 is the reference"),
        (["--precision", "int8"], "--precision"),
        (["--iters", "0"], "--iters"),
        (["--backbone", "mixste,nosuch"], "unknown backbone 'nosuch'"),
        (["--device", "tpu"], "--device"),
        (["--format", "yaml"], "--format"),
    ],
)
def test_bad_input_is_one_error_line_exit_2(argv, fragment, capsys):
    try:
        code = main(["precision", *argv])
    except SystemExit as e:  # argparse's own refusal
        code = int(e.code or 0)
    assert code == 2
    assert fragment in _one_error_line(capsys)


def test_fp16_on_the_cpu_exits_2_from_a_real_process():
    r = subprocess.run(
        [sys.executable, "run_bench.py", "precision", "--precision", "fp16", "--device", "cpu"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [r.stderr.strip()] and "fp16 runs on CUDA only" in r.stderr
    assert r.stdout == ""


def test_json_has_one_row_per_backbone_asked_with_numeric_ratio(capsys):
    assert main(["precision", "-b", "mixste,strided", *FAST, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["backbone"] for r in rows] == ["mixste", "strided"]
    for r in rows:
        assert {"fp32_ms", "low_ms", "ratio", "ratio_iqr", "rel_change", "max_rel_change", "env", "error"} <= set(r)
        for key in ("fp32_ms", "low_ms", "ratio", "rel_change", "max_rel_change"):
            assert isinstance(r[key], float) and math.isfinite(r[key]), (key, r[key])
        assert r["precision"] == "bf16" and r["preset"] == "tiny" and r["iters"] == 2 and r["error"] is None
        assert 0 < r["rel_change"] < 0.05


def test_text_states_the_protocol(capsys):
    assert main(["precision", "-b", "strided", *FAST]) == 0
    out = capsys.readouterr().out
    assert "strided/tiny" in out and "low / fp32 (paired)" in out
    assert "over 2 interleaved rounds after 0 warm-ups" in out and "avx512_bf16=" in out
