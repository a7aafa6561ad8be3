"""Precision as an axis: fp16 refused on the CPU in one line, bf16 close to fp32, autocast really on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from backbones import list_backbones
from bench.cli import main
from bench.config import ConfigError, ModelConfig, SpeedConfig, TrainConfig, validate
from bench.measure import speed as S
from bench.measure.flops.counters import input_shape
from bench.measure.precision import PRECISIONS, autocast, check_precision

REPO = Path(__file__).resolve().parents[3]
TINY = ModelConfig.create("mixste", "tiny")


def test_precisions_are_the_three_named() -> None:
    assert PRECISIONS == ("fp32", "bf16", "fp16")
    assert SpeedConfig().precision == "fp32" and TrainConfig().eval_precision == "fp32"


def test_fp16_on_cpu_is_one_config_error_naming_precision() -> None:
    with pytest.raises(ConfigError) as e:
        validate(SpeedConfig, {"precision": "fp16"}, "speed")
    msg = str(e.value)
    assert msg.startswith("speed.precision: fp16 runs on CUDA only") and "\n" not in msg
    assert validate(SpeedConfig, {"precision": "fp16", "device": "cuda:0"}, "speed").precision == "fp16"
    assert validate(SpeedConfig, {"precision": "bf16"}, "speed").precision == "bf16"
    with pytest.raises(ConfigError, match=r"^speed\.precision: Input should be 'fp32', 'bf16' or 'fp16'"):
        validate(SpeedConfig, {"precision": "fp8"}, "speed")
    with pytest.raises(ConfigError, match=r"^train\.eval_precision: fp16 runs on CUDA only"):
        validate(TrainConfig, {"eval_precision": "fp16"}, "train")
    with pytest.raises(ConfigError, match=r"^precision: fp16 runs on CUDA only"):
        check_precision("fp16", "cpu")
    with pytest.raises(ConfigError, match=r"^speed\.precision: fp16"):  # the replace() copy is validated too
        SpeedConfig().replace(precision="fp16")


def test_cli_fp16_on_cpu_exits_2_with_one_line() -> None:
    r = subprocess.run(
        [sys.executable, "run_bench.py", "speed", "-b", "mixste", "-p", "tiny", "--precision", "fp16"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --precision: fp16 runs on CUDA only"), r.stderr


@pytest.mark.parametrize(
    ("args", "start"),
    [
        (["--batch", "0"], "error: --batch:"),
        (["--iters", "0"], "error: --iters:"),
        (["--warmup", "-1"], "error: --warmup:"),
        (["--threads", "0"], "error: --threads:"),
        (["--device", "gpu"], "error: --device: must be cpu or cuda[:N]"),
        (["--precision", "fp8"], "error: --precision:"),
    ]
    + ([] if torch.cuda.is_available() else [(["--device", "cuda"], "error: speed.device: 'cuda' requested")]),
)
def test_cli_speed_options_are_validated(args: list[str], start: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["speed", "-b", "mixste", "-p", "tiny", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(start), err


def test_cli_train_and_evaluate_refuse_fp16(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["train", "-b", "mixste", "-p", "tiny", "--steps", "1", "--precision", "fp16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --precision: fp16 runs on CUDA only")
    ckpt = tmp_path / "w.pt"
    torch.save(TINY.build().state_dict(), ckpt)
    assert main(["evaluate", "-b", "mixste", "-p", "tiny", "--checkpoint", str(ckpt), "--precision", "fp16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: precision: fp16 runs on CUDA only")


@pytest.mark.parametrize("name", list_backbones())
def test_bf16_output_stays_close_to_fp32(name: str) -> None:
    torch.manual_seed(0)
    model = ModelConfig.create(name, "tiny").build().eval()
    x = torch.randn(input_shape(model, 2))
    with torch.inference_mode():
        ref = model(x)
        with autocast("bf16", "cpu"):
            low = model(x)
    assert low.dtype == torch.bfloat16  # autocast was really on
    rel = float((low.float() - ref).norm() / ref.norm())
    assert 0 < rel < 0.03, rel  # bf16 has 8 mantissa bits (eps 2^-8 ~ 0.4 %); measured 0.4-0.8 % at tiny
    with autocast("fp32", "cpu"), torch.inference_mode():
        assert torch.equal(model(x), ref)  # fp32 is the plain model


def test_speed_step_runs_under_the_requested_autocast(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bool, torch.dtype]] = []
    real = S.make_step

    def make_step(model: nn.Module, x: Tensor, flip: bool):  # type: ignore[no-untyped-def]
        step = real(model, x, flip)

        def spy() -> Tensor:
            seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
            return step()

        return spy

    monkeypatch.setattr(S, "make_step", make_step)
    r = S.measure_speed(TINY, SpeedConfig(warmup=1, iters=2, threads=1, precision="bf16", throughput_batch=1))
    assert r.ok and r.precision == "bf16" and r.env["precision"] == "bf16"
    assert len(seen) == 1 + 1 + 2 and all(on and dt == torch.bfloat16 for on, dt in seen)
    seen.clear()
    r = S.measure_speed(TINY, SpeedConfig(warmup=0, iters=1, threads=1))
    assert r.precision == "fp32" and seen and not any(on for on, _ in seen)
    with pytest.raises(ConfigError, match=r"^speed\.precision: fp16"):
        S.measure_speed(TINY, SpeedConfig().replace(iters=1, precision="fp16"))
