"""The results store and the grid runner under kills, damage, concurrency and crashes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.grid import GridError, ResultStore, load_grid, plan_grid, run_grid
from bench.grid.store import load_rows


def default_sigint() -> None:
    """Child start-up: SIGINT at its default, as under a terminal. A background job of a non-interactive shell
    starts with SIGINT ignored, the child would inherit that, and its Ctrl-C would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


ROOT = Path(__file__).resolve().parents[3]
GRID = """name: t
backbones: [mixste]
presets: [tiny]
pruners: [none, cluster, uniform]
tokens: [9, 3]
depths: [1]
measure: [flops]
"""


def _cli(*args, cwd=None, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(ROOT / "run_bench.py"), *args], capture_output=True, text=True, cwd=cwd, env=env, **kw
    )


@pytest.fixture
def grid_file(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text(GRID)
    return p


def test_append_is_linear(tmp_path):
    def timed(n):
        with ResultStore(tmp_path / f"s{n}", tag="x", fsync=False) as s:
            t0 = time.perf_counter()
            for i in range(n):
                s.append("flops", {**json.loads(VALID), "cell_id": f"c{i}", "gflops": 1.0, "tokens": "[1]"})
            return time.perf_counter() - t0

    small, big = timed(1_000), timed(10_000)
    assert big / small < 25, (small, big)  # O(n) in total; the old store was O(n^2) (ratio ~100)
    assert len(load_rows(tmp_path / "s10000")) == 10_000


def test_truncated_last_row_reruns_only_that_cell(grid_file, tmp_path, counting):
    out = tmp_path / "r"
    df = run_grid(plan_grid(load_grid(grid_file)), out)
    assert len(df) == 5
    f = next(out.glob("flops-*.jsonl"))
    data = f.read_bytes()
    f.write_bytes(data[: len(data) - 40])  # a kill in the middle of the last row
    df2 = run_grid(plan_grid(load_grid(grid_file)), out, counting)
    assert len(counting.ran) == 1 and len(df2) == 5 and df2["cell_id"].is_unique
    assert set(df2["cell_id"]) == set(df["cell_id"])


VALID = (
    '{"cell_id": "a", "seed": 0, "backbone": "strided", "preset": "tiny", "pruner": "none", "recoverer": "none", '
    '"tokens": "[]", "depths": "[]", "label": "strided/tiny", "gflops": 1.5, "error": ""}'
)


def rec(**kw) -> str:
    """A record line: VALID with fields replaced."""
    return json.dumps({**json.loads(VALID), **kw})


DAMAGE = {  # a record file's content -> the lines a repair must drop (every other line is a valid record)
    "truncated_last": (VALID + "\n" + rec(cell_id="b")[:30], ["a partial last line"]),
    "garbage_middle": (VALID + "\n\x01\x02garbage\n" + rec(cell_id="b") + "\n", ["not JSON"]),
    "wrong_types": (
        VALID + "\n" + rec(cell_id="c", gflops="lots") + "\n" + rec(cell_id="d", depths={"a": 1}) + "\n",
        ["gflops is str", "depths is dict"],
    ),
    "wrong_seeds": (
        VALID + "\n" + rec(cell_id="e", seed=1e20) + "\n" + rec(cell_id="f", seed=10**20) + "\n",
        ["seed 1e+20", "seed 100000000000000000000"],
    ),
    "not_records": (
        VALID + '\n{"gflops": 1}\n[1, 2]\n' + rec(cell_id="g", backbone=None).replace(', "backbone": null', "") + "\n",
        ["no cell_id", "not a JSON object", "no backbone"],
    ),
    "not_utf8": (None, ["not UTF-8"]),
    "all_garbage": (None, ["dropped line 1 ("]),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_record_file_is_repaired_keeping_every_valid_record(grid_file, tmp_path, damage):
    out = tmp_path / "t"
    out.mkdir()
    target = out / "flops-pt-any.jsonl"
    text, reasons = DAMAGE[damage]
    if damage == "all_garbage":
        raw = b"\x01" + os.urandom(300).replace(b"\n", b"x").replace(b"{", b"x") + b"\n" + VALID.encode() + b"\n"
    elif damage == "not_utf8":
        raw = VALID.encode() + b'\n{"cell_id": "\xff\xfe"}\n'
    else:
        raw = text.encode()
    target.write_bytes(raw)
    r = _cli("run", str(grid_file), "--out", str(tmp_path), timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    kept = [json.loads(x) for x in target.read_text().splitlines()]
    valid = [x for x in raw.split(b"\n") if x in (VALID.encode(), rec(cell_id="b").encode())]
    assert [k["cell_id"] for k in kept] == [json.loads(v)["cell_id"] for v in valid]  # no valid record lost
    rejected = target.with_name(target.name + ".rejected").read_bytes()
    assert sorted([x for x in rejected.split(b"\n") if x] + valid) == sorted(x for x in raw.split(b"\n") if x.strip())
    (line,) = [x for x in r.stdout.splitlines() if x.startswith("repaired flops-pt-any.jsonl")]
    assert f"kept {len(valid)} records" in line
    for why in reasons:
        assert why in line, line
    assert "[1/" in r.stdout  # the grid's own cells ran after the repair


def test_report_skips_lines_that_are_not_records_and_says_so(tmp_path):
    from bench.cli import main

    out = tmp_path / "t"
    out.mkdir()
    (out / "flops-pt-any.jsonl").write_text(VALID + "\n" + rec(cell_id="c", gflops="lots") + "\n")
    df = load_rows(out, note=(notes := []).append)
    assert list(df["cell_id"]) == ["a"] and df["gflops"].dtype == float and "gflops is str" in notes[0]
    assert main(["report", str(out)]) in (0, 2)  # never a traceback on a folder with wrong types


@pytest.mark.parametrize("damage", ["directory", "folder_is_file", "symlink_outside", "symlink_inside", "unreadable"])
def test_what_cannot_be_repaired_is_one_error_before_any_cell(grid_file, tmp_path, damage, monkeypatch):
    out = tmp_path / "t"
    out.mkdir()
    target = out / "flops-pt-any.jsonl"
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text(VALID + "\n")
    if damage == "directory":
        target.mkdir()
    elif damage == "folder_is_file":
        out.rmdir()
        out.write_text("x")
    elif damage == "symlink_outside":
        target.symlink_to(outside)
    elif damage == "symlink_inside":
        (out / "real.txt").write_text(VALID + "\n")
        target.symlink_to(out / "real.txt")
    elif damage == "unreadable":
        target.write_text(VALID + "\n")
        from pathlib import Path as P

        real = P.read_bytes
        monkeypatch.setattr(
            P,
            "read_bytes",
            lambda self: (
                (_ for _ in ()).throw(PermissionError(13, "Permission denied"))
                if self.name == target.name
                else real(self)
            ),
        )
        from bench.cli import main

        assert main(["run", str(grid_file), "--out", str(tmp_path)]) == 2
        return
    r = _cli("run", str(grid_file), "--out", str(tmp_path), timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert "[1/" not in r.stdout  # no cell ran
    assert outside.read_text() == VALID + "\n"  # nothing outside the folder was touched


def test_second_concurrent_run_is_refused(grid_file, tmp_path):
    with ResultStore(tmp_path / "t"):
        r = _cli("run", str(grid_file), "--out", str(tmp_path), timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "in use by another run" in r.stderr


def test_lock_is_released_and_rows_are_read_back(grid_file, tmp_path):
    run_grid(plan_grid(load_grid(grid_file)), tmp_path / "a", limit=2)
    with ResultStore(tmp_path / "a") as s:  # the lock was released
        assert s.tag
    df = load_rows(tmp_path / "a")
    assert len(df) == 2 and df["tokens"].map(type).eq(list).all() and df["gflops"].dtype == float


def _flops_tasks(seeds):
    from bench.config import ModelConfig, TrainConfig
    from bench.grid import Cell, Task

    model = ModelConfig.create("mixste", "tiny")
    return [Task(Cell(model, TrainConfig(seed=s)), "flops") for s in seeds]


def test_abort_in_a_worker_becomes_an_error_row(monkeypatch, tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import faulty

    from bench.grid.baselines import BaselineCache
    from bench.grid.executors import process_executor

    tasks = _flops_tasks([0, faulty.BOOM, 1, 2])
    rows = list(process_executor(2, task=faulty.abort_or_row).run(tasks, BaselineCache(tmp_path)))
    by = {r["cell_id"]: r for r in rows}
    ids = [t.cell.id for t in tasks]
    assert sorted(by) == sorted(ids) and len(rows) == 4
    assert "WorkerDied" in by[ids[1]]["error"] and "SIGABRT" in by[ids[1]]["error"]
    assert by[ids[1]]["seed"] == faulty.BOOM and by[ids[1]]["measure"] == "flops"  # the cell's identity
    assert all(by[c]["error"] == "" for c in ids[:1] + ids[2:])


@pytest.mark.slow
def test_no_orphan_workers_after_kill_9(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    script = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import faulty\n"
        "from bench.config import ModelConfig, TrainConfig\n"
        "from bench.grid import Cell, Task\n"
        "from bench.grid.baselines import BaselineCache\n"
        "from bench.grid.executors import process_executor\n"
        "tasks = [Task(Cell(ModelConfig.create('mixste', 'tiny'), TrainConfig(seed=i)), 'flops') for i in range(2)]\n"
        f"list(process_executor(2, task=faulty.sleep_forever).run(tasks, BaselineCache({str(tmp_path)!r})))\n"
    )
    p = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, "FAULTY_PIDS": str(pids)})
    deadline = time.time() + 120
    while len(list(pids.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.2)
    workers = [int(f.name) for f in pids.iterdir()]
    assert len(workers) == 2
    p.send_signal(signal.SIGKILL)
    p.wait()
    time.sleep(2)
    alive = [
        w for w in workers if Path(f"/proc/{w}").exists() and "Z" not in Path(f"/proc/{w}/stat").read_text().split()[2]
    ]
    assert alive == []


@pytest.mark.slow
def test_sigkill_mid_grid_and_resume_has_every_cell_once(grid_file, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(ROOT / "run_bench.py"), "run", str(grid_file), "--out", str(tmp_path)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    assert p.stdout is not None
    for line in p.stdout:
        if line.startswith("[2/"):
            break
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert 2 <= len(load_rows(tmp_path / "t")) < 5
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    df = load_rows(tmp_path / "t")
    assert len(df) == 5 and df["cell_id"].is_unique
    recs = [line for f in (tmp_path / "t").glob("flops-*.jsonl") for line in f.read_text().splitlines()]
    assert len(recs) == 5  # each cell measured exactly once


@pytest.mark.parametrize(
    ("sets", "key"),
    [
        (["speed.iterz=3"], "speed.iterz"),
        (["bogus=1"], "bogus"),
        (["train.steps=abc"], "train.steps"),
        (["train.steps=-5"], "train.steps"),
        (["speed.batch=0"], "speed.batch"),
        (["data.source=mocap"], "data.source"),
        (["tokens=[999]"], "tokens"),
        (["tokens=[[9, 27]]", "depths=[[1, 2]]"], "tokens"),
        (["name=../../x"], "name"),
        (["name.x=1"], "name"),
        (["pruner_options.cluster.kk=3"], "pruner_options.cluster.kk"),
        (["backbones=[nothing]"], "backbones"),
        (["seeds=[-1]"], "seeds"),
        (["measure=[vibes]"], "measure"),
        (["noequals"], "noequals"),
    ],
)
def test_bad_set_is_one_error_naming_the_key(grid_file, tmp_path, sets, key):
    from bench.cli import main

    argv = ["run", str(grid_file), "--out", str(tmp_path), "--dry-run"]
    for s in sets:
        argv += ["--set", s]
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    assert code == 2
    lines = err.getvalue().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and key in lines[0], lines
    assert not (tmp_path / "t").exists()


def test_set_reaches_every_axis_and_the_cell_id(grid_file):
    g = load_grid(
        grid_file,
        ["pruners=[cluster]", "pruner_options.cluster.k=[1, 3]", "backbone_options.mixste.depth=[2]", "tokens=[9]"],
    )
    plan = plan_grid(g)
    labels = sorted(dict(c.model.pruner_options)["k"] for c in plan.cells)
    assert labels == [1, 3] and len({c.id for c in plan.cells}) == 2
    assert all(dict(c.model.overrides) == {"depth": 2} for c in plan.cells)


def test_impossible_combinations_are_skipped_not_errors(tmp_path):
    p = tmp_path / "g.yaml"
    p.write_text(
        "name: s\nbackbones: [mixste, mhformer]\npresets: [tiny]\npruners: [cluster]\ntokens: [9]\ndepths: [1, 3]\n"
    )
    plan = plan_grid(load_grid(p))
    assert [s[0] for s in plan.skipped] == ["mhformer/tiny cluster(9@3)+none"]
    assert "pruning depths" in plan.skipped[0][1] and len(plan.cells) == 3


def test_adding_a_measure_runs_only_that_measure(grid_file, tmp_path):
    run_grid(plan_grid(load_grid(grid_file)), tmp_path / "t")
    ran = []

    def progress(row, i, n):
        ran.append(row["measure"])

    grid = load_grid(grid_file, ["measure=[flops, speed]", "speed.iters=1", "speed.warmup=0"])
    df = run_grid(plan_grid(grid), tmp_path / "t", progress=progress)
    assert ran == ["speed"] * 5 and df["fps"].gt(0).all() and df["gflops"].gt(0).all()


def test_grid_file_bytes_and_paths_are_one_line_errors(tmp_path):
    from bench.grid import grid_source

    b = tmp_path / "bin.yaml"
    b.write_bytes(b"\x00\x01\xff\xfe")
    u = tmp_path / "u.yaml"
    u.write_bytes(b"name: \xff\xfe\n")
    for p, msg in ((b, "binary"), (u, "UTF-8")):
        with pytest.raises(GridError, match=msg):
            load_grid(p)
    with pytest.raises(GridError, match=r"cannot read|no grid"):
        grid_source("x" * 5000)


def test_error_rows_and_result_rows_carry_the_same_identity():
    """A row a dead worker could not return has every identity column a measured row has, with equal values."""
    from bench.config import ModelConfig, TrainConfig
    from bench.grid.cell import Baseline, Cell, Task, error_row, identity_row, run_cell

    cfg = ModelConfig.create("strided", "tiny", "cluster", None, 9, 1)
    base = Baseline(cfg.baseline(), TrainConfig(steps=1, seed=2), Cell(cfg).data)
    task = Task(Cell(cfg, TrainConfig(mode="finetune", seed=2), baseline=base), "flops")
    ok, err = run_cell(task), error_row(task, "WorkerDied: SIGKILL")
    identity = set(identity_row(task)) - {"error"}
    assert identity <= set(err) and {"train_mode", "baseline_key", "torch", "measure", "key"} <= identity
    assert {k: err[k] for k in identity} == {k: ok[k] for k in identity}
    assert err["error"].startswith("WorkerDied") and ok["error"] == "" and ok["baseline_key"] == base.key


@pytest.mark.slow
def test_ctrl_c_with_two_workers_is_one_line_keeps_the_baselines_steps_and_leaves_no_worker(tmp_path):
    """Ctrl-C reaches the whole process group (as in a terminal): the workers leave it to the grid's process,
    which stops them; each training baseline saves its steps, and one line says it was interrupted."""
    grid = tmp_path / "g.yaml"
    grid.write_text(
        "name: ci\nbackbones: [strided, mhformer]\npresets: [tiny]\npruners: [none, uniform]\ntokens: [9]\n"
        "depths: [1]\nmodes: [finetune]\nmeasure: [flops, accuracy]\n"
        "train: {steps: 5, eval_stride: 9, eval_every: 5, test_flip: false, threads: 1}\nbaseline: {steps: 5000}\n"
        "data: {source: synthetic, noise: none, frames_per_sequence: 150}\n"
    )
    cmd = [sys.executable, str(ROOT / "run_bench.py"), "run", str(grid), "--workers", "2", "--out", str(tmp_path)]
    kw = {"start_new_session": True, "preexec_fn": default_sigint}
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    assert p.stdout is not None
    for line in p.stdout:
        if line.startswith("baseline ") and "strided" in line:
            break
    time.sleep(12)
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130 and err.strip() == "interrupted", err  # no worker traceback, no leak warning
    import torch

    steps = [torch.load(f, weights_only=True)["step"] for f in (tmp_path / "ci" / "baselines").glob("*/train_state.pt")]
    assert len(steps) == 2 and all(s > 0 for s in steps)  # saved when stopped, not only every 200 steps
    time.sleep(1)
    ps = subprocess.run(["ps", "-eo", "pid,pgid,stat,args"], capture_output=True, text=True).stdout
    left = [x for x in ps.splitlines() if x.split()[1:2] == [str(p.pid)] and not x.split()[2].startswith("Z")]
    assert not left  # no live process of its group is left (an exited one awaits the reaper)


KILL_GRID = (
    "name: k\nbackbones: [strided]\npresets: [tiny]\npruners: [none, uniform, cluster, attention, motion]\n"
    "tokens: [9]\ndepths: [1, 2]\nmodes: [finetune]\nmeasure: [flops, accuracy]\n"
    "train: {steps: 20, eval_stride: 9, eval_every: 5, test_flip: false, threads: 1}\nbaseline: {steps: 400}\n"
    "data: {source: synthetic, noise: none, frames_per_sequence: 150}\n"
)


def _records(folder: Path) -> list[tuple[str, str]]:
    return [
        (f.name.split("-")[0], json.loads(x)["cell_id"])
        for f in folder.glob("*.jsonl")
        for x in f.read_text().splitlines()
        if x.strip()
    ]


def _live_in_group(pgid: int) -> list[str]:
    ps = subprocess.run(["ps", "-eo", "pid,pgid,stat,args"], capture_output=True, text=True).stdout
    return [x for x in ps.splitlines()[1:] if x.split()[1] == str(pgid) and not x.split()[2].startswith("Z")]


@pytest.mark.slow
def test_kill_9_at_five_instants_with_two_workers_loses_and_repeats_nothing(tmp_path):
    import random

    grid = tmp_path / "k.yaml"
    grid.write_text(KILL_GRID)
    cmd = [sys.executable, str(ROOT / "run_bench.py"), "run", str(grid), "--workers", "2", "--out", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rng = random.Random(21)
    folder = tmp_path / "k"
    for _ in range(5):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        time.sleep(rng.uniform(3.0, 9.0))  # start-up (~3 s), baseline training, fine-tuning: wherever it lands
        p.send_signal(signal.SIGKILL)  # the grid's process only, as kill -9 PID does
        p.wait()
        deadline = time.time() + 10
        while _live_in_group(p.pid) and time.time() < deadline:
            time.sleep(0.2)
        assert _live_in_group(p.pid) == []  # its workers saw it die and left: no orphan
        recs = _records(folder) if folder.is_dir() else []
        assert len(recs) == len(set(recs))  # never a (measure, cell) twice
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    recs = _records(folder)
    cells = {c for _, c in recs}
    assert len(cells) == 9 and len(recs) == 18 == len(set(recs))  # every cell once per measure: none lost


@pytest.mark.slow
def test_a_second_run_on_the_same_folder_is_refused_while_the_first_writes(tmp_path):
    grid = tmp_path / "k.yaml"
    grid.write_text(KILL_GRID)
    cmd = [sys.executable, str(ROOT / "run_bench.py"), "run", str(grid), "--out", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert first.stdout is not None
    for line in first.stdout:  # the first run holds the folder once it says where its results go
        if line.startswith("[1/"):
            break
    second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert second.returncode == 2 and second.stderr.strip().count("\n") == 0
    assert "in use by another run" in second.stderr
    first.communicate(timeout=600)
    assert first.returncode == 0
    recs = _records(tmp_path / "k")
    assert len(recs) == 18 == len(set(recs))
