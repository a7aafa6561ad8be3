from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main, parse_axis
from strategies import ScheduleError

REPO = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "run_bench.py", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_help_lists_the_commands():
    r = run("--help")
    assert r.returncode == 0
    for word in ("list", "flops", "train", "evaluate"):
        assert word in r.stdout


def test_unknown_backbone_exits_2_with_one_line_naming_known_ones():
    r = run("flops", "--backbone", "mixtse")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: unknown backbone 'mixtse'")
    for name in ("mixste", "motionbert", "mhformer", "strided"):
        assert name in lines[0]
    assert "Traceback" not in r.stderr


def test_list_backbones_json_has_metadata(capsys):
    assert main(["list", "backbones", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_name = {d["name"]: d for d in data}
    assert set(by_name) >= {"mixste", "motionbert", "mhformer", "strided"}
    assert by_name["mixste"]["pipeline"] == "seq2seq"
    assert by_name["mhformer"]["pipeline"] == "seq2frame"
    assert by_name["mixste"]["presets"]["paper"]["frames"] == 243
    assert by_name["mixste"]["presets"]["paper"]["paper"]["params"] == 33_783_811


@pytest.mark.parametrize("kind", ["pruners", "recoverers", "configs"])
def test_list_other_kinds_json(kind, capsys):
    assert main(["list", kind, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data, list) and all("name" in d for d in data)


def test_list_text_mentions_every_backbone(capsys):
    assert main(["list", "backbones"]) == 0
    out = capsys.readouterr().out
    for name in ("mixste", "motionbert", "mhformer", "strided"):
        assert name in out


def test_parse_axis():
    assert parse_axis("81") == [81]
    assert parse_axis("121,81,41") == [121, 81, 41]
    assert parse_axis("0.33") == [0.33]
    with pytest.raises(ScheduleError, match="cannot parse 'x'"):
        parse_axis("81,x")


def test_tokens_without_pruner_is_a_user_error(capsys):
    assert main(["flops", "--backbone", "mixste", "--tokens", "81"]) == 2
    assert "need a --pruner" in capsys.readouterr().err


def test_bad_schedule_is_one_line_exit_2(capsys):
    assert main(["flops", "--backbone", "mixste", "--pruner", "cluster", "--tokens", "500", "--depths", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "500" in err


def test_unknown_grid_file_lists_known_ones(capsys):
    assert main(["run", "nonexistent-grid"]) == 2
    err = capsys.readouterr().err
    assert "quick" in err and "nonexistent-grid" in err


def _subcommands() -> list[str]:
    import argparse

    from bench.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def test_every_benchmark_is_a_subcommand():
    assert {
        "run",
        "speed",
        "speedup",
        "precision",
        "study",
        "targets",
        "flops",
        "train",
        "evaluate",
        "report",
        "list",
    } <= set(_subcommands())


@pytest.mark.parametrize("command", _subcommands())
def test_help_works_on_every_subcommand(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: run_bench.py {command}") and "--help" in out


def test_speed_flags_default_to_the_one_protocol(capsys):
    """No --warmup/--iters: SpeedConfig's defaults, the same as a grid's speed cells."""
    from bench.config import SpeedConfig

    assert main(["speed", "-b", "mixste", "-p", "tiny", "--threads", "1", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["warmup"], d["iters"]) == (SpeedConfig().warmup, SpeedConfig().iters)
    assert main(["speed", "-b", "mixste", "-p", "tiny", "--iters", "0"]) == 2
    assert "--iters" in capsys.readouterr().err


def test_targets_subcommand_filters_by_backbone(capsys):
    assert main(["targets", "--backbone", "mixste", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all("mixste" in r["name"].lower() for r in rows) and all("error" not in r for r in rows)
    assert main(["targets", "--backbone", "nosuch"]) == 2


def test_study_without_its_grid_is_one_line(capsys):
    from bench.grid import packaged_grids

    if "study" in packaged_grids():
        pytest.skip("configs/study.yaml is shipped: `study` runs it")
    assert main(["study", "--dry-run"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_changed_grid_reports_only_its_own_cells(tmp_path, capsys):
    """Rows of cells a grid no longer holds stay on disk but are not mixed into its tables and results.csv."""
    import pandas as pd

    grid = tmp_path / "g.yaml"
    text = (
        "name: g\nbackbones: [strided]\npresets: [tiny]\npruners: [none, cluster]\ntokens: [{t}]\ndepths: [1]\n"
        "measure: [flops]\n"
    )
    grid.write_text(text.format(t=9))
    assert main(["run", str(grid), "--out", str(tmp_path / "r")]) == 0
    grid.write_text(text.format(t=3))
    capsys.readouterr()
    assert main(["run", str(grid), "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "1 stored cell(s) are not in this grid" in out
    rows = pd.read_csv(tmp_path / "r" / "g" / "results.csv")
    assert sorted(rows["label"]) == ["strided/tiny", "strided/tiny cluster(3@1)+none"]
    assert sum(1 for _ in (tmp_path / "r" / "g").glob("flops-*.jsonl")) == 1
    stored = (tmp_path / "r" / "g").glob("flops-*.jsonl").__next__().read_text().splitlines()
    assert len(stored) == 3  # the T/3 cell's row is kept on disk


def test_json_output_is_strict_json_with_null_for_non_finite_numbers():
    import json
    import math

    from bench.cli import to_json

    text = to_json({"mpjpe_mm": math.nan, "rows": [{"fps": math.inf}, 1.5], "ok": "x"})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}")) == {
        "mpjpe_mm": None,
        "rows": [{"fps": None}, 1.5],
        "ok": "x",
    }


def test_a_closed_pipe_ends_quietly():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    r = subprocess.run(
        f"{sys.executable} {root / 'run_bench.py'} targets | head -1", shell=True, capture_output=True, text=True
    )
    assert r.stdout.startswith("config") and r.stderr == "", r.stderr  # no broken-pipe message, no traceback


def test_report_on_a_folder_a_run_is_writing_says_so(tmp_path, capsys):

    from bench.cli import main
    from bench.grid import ResultStore

    folder = tmp_path / "g"
    ident = {"backbone": "strided", "preset": "tiny", "pruner": "none", "recoverer": "none", "tokens": "[]"}
    ident |= {"depths": "[]", "seed": 0, "label": "strided/tiny", "error": "", "gflops": 1.0, "params": 10}
    with ResultStore(folder, tag="x") as store:
        store.append("flops", {"cell_id": "a", **ident})
        assert main(["report", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "a run is writing" in out and "finished so far" in out
    assert main(["report", str(folder)]) == 0
    assert "a run is writing" not in capsys.readouterr().out
