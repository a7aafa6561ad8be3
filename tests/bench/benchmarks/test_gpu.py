"""The GPU benchmark script, run on the CPU (a smoke run of the same path): rows on disk, budget, one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from bench.benchmarks import gpu


def _args(tmp_path, *extra: str) -> list[str]:  # type: ignore[no-untyped-def]
    base = ["--device", "cpu", "--preset", "tiny", "--backbones", "strided", "--precisions", "fp32,bf16"]
    return [*base, "--warmup", "0", "--iters", "2", "--throughput-batch", "4", "--out", str(tmp_path), *extra]


def test_each_group_is_on_disk_with_its_device_precision_and_batches(tmp_path, capsys) -> None:
    assert gpu.main(_args(tmp_path)) == 0
    (path,) = tmp_path.glob("gpu-cpu-*.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["form"], r["requested_precision"]) for r in rows] == [
        ("baseline", "fp32"),
        ("TPC(9,1)", "fp32"),
        ("baseline", "bf16"),
        ("TPC(9,1)", "bf16"),
    ]
    assert all(r["error"] is None and r["latency_ms_median"] > 0 for r in rows)
    assert {r["precision"] for r in rows} == {"fp32", "bf16"} and {r["timer"] for r in rows} == {"perf_counter"}
    assert {(r["batch"], r["throughput_batch"]) for r in rows} == {(1, 4)}
    assert rows[0]["speedup"] == 1.0 and rows[1]["speedup"] > 0
    out = capsys.readouterr().out
    assert "FPS @ batch" in out and "timer perf_counter" in out


def test_a_group_past_the_budget_is_not_timed_and_says_so(tmp_path) -> None:
    assert gpu.main(_args(tmp_path, "--budget-s", "-1")) == 1
    rows = [json.loads(line) for line in next(tmp_path.glob("*.jsonl")).read_text().splitlines()]
    assert len(rows) == 4 and all(r["error"].startswith("not timed: the -1 s budget") for r in rows)
    assert all(r["latency_ms_median"] is None for r in rows)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")
def test_no_cuda_is_one_line(tmp_path, capsys) -> None:
    assert gpu.main(["--out", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert out.startswith("error: speed.device: 'cuda' requested but CUDA is not available") and out.count("\n") == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--backbones", "foo"], "error: unknown backbone 'foo'"),
        (["--precisions", "fp32,fp8"], "error: speed.precision: Input should be"),
        (["--preset", "nope"], "error: backbone 'strided' has no preset 'nope'"),
    ],
)
def test_a_bad_name_stops_before_any_timing_in_one_line(tmp_path, capsys, extra: list[str], message: str) -> None:
    args = ["--device", "cpu", "--backbones", "strided", "--preset", "tiny", "--out", str(tmp_path), *extra]
    assert gpu.main(args) == 2
    out = capsys.readouterr().out
    assert out.startswith(message) and out.count("\n") == 1
    assert not list(tmp_path.glob("*.jsonl"))  # nothing was timed
