"""The error contract, table-driven: every user mistake is one ``error:`` line and exit 2, before any work.

Each row is a command line (``{t}`` is a folder of prepared good, corrupt and hostile files), the
fragment the one stderr line must contain (the flag or key at fault) and the files that must not
exist afterwards (no checkpoint written, no row appended, no hostile side effect). Rows run
in-process through :func:`bench.cli.main`; a few run as real processes to check the exit status.
"""

from __future__ import annotations

import json
import os
import pickle
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backbones import create_backbone, save_checkpoint
from bench import cli
from bench.cli import main
from bench.measure.metrics import p_mpjpe

REPO = Path(__file__).resolve().parents[2]
TINY = "-b mixste -p tiny"
SEQ2FRAME = "-b strided -p tiny"
TR = f"train {TINY} --steps 1"  # a train command that could run: every error row must stop it first
SP = f"speed {TINY} --iters 1 --warmup 0"


class _Evil:
    """A pickle that would create a file if it were ever unpickled with code execution."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(self.target)}",))


def _model_dir(root: Path, name: str, overrides: dict | None = None, *, meta: bool = True) -> Path:
    d = root / name
    d.mkdir()
    torch.manual_seed(0)
    save_checkpoint(create_backbone("mixste", "tiny"), d / "model.pt")
    if meta:
        model = {"backbone": "mixste", "preset": "tiny", "pruner": "none", "overrides": overrides or {}}
        (d / "model.json").write_text(json.dumps({"model": model}))
    return d


def _h36m(root: Path, name: str, nan_in: str) -> Path:
    """Minimal VideoPose3D-layout files holding one take, S1/Walking, with NaN in the 3D or the 2D."""
    d = root / name
    d.mkdir()
    rng = np.random.default_rng(0)
    world = rng.uniform(-1, 1, size=(12, 32, 3)).astype(np.float32)
    cams = [rng.uniform(0, 1000, size=(12, 17, 2)).astype(np.float32) for _ in range(4)]
    if nan_in == "3d":
        world[5, 3, 1] = np.nan
    else:
        cams[0][7, 2, 0] = np.inf
    sym = {"keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    np.savez_compressed(d / "data_3d_h36m.npz", positions_3d={"S1": {"Walking": world}})
    np.savez_compressed(d / "data_2d_h36m_gt.npz", positions_2d={"S1": {"Walking": cams}}, metadata=sym)
    return d


@pytest.fixture(scope="module")
def t(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("contract")
    (root / "runs").mkdir()
    (root / "a_file.txt").write_text("not a folder")
    (root / "empty").mkdir()
    # hostile npz: an object array whose pickle calls os.system
    hostile = root / "hostile_npz"
    hostile.mkdir()
    np.savez(hostile / "data_3d_h36m.npz", positions_3d=np.array(_Evil(root / "pwned_npz"), dtype=object))
    _h36m(root, "nan3d", "3d")
    _h36m(root, "nan2d", "2d")
    good = _model_dir(root, "good")
    evil = _model_dir(root, "evil")
    torch.save({"w": torch.zeros(1), "payload": _Evil(root / "pwned_ckpt")}, evil / "model.pt", pickle_module=pickle)
    nan = _model_dir(root, "nan")
    sd = torch.load(nan / "model.pt", weights_only=True)
    sd["STEblocks.0.attn.qkv.weight"][0, 0] = float("nan")
    torch.save(sd, nan / "model.pt")
    _model_dir(root, "negwidth", {"embed_dim_ratio": -4})
    _model_dir(root, "heads", {"num_heads": 3})
    _model_dir(root, "deep", {"depth": 10**6})
    _model_dir(root, "strdepth", {"depth": "4"})
    _model_dir(root, "unknownopt", {"wings": 2})
    (_model_dir(root, "badjson") / "model.json").write_text("{not json")
    _model_dir(root, "nojson", meta=False)
    (_model_dir(root, "text") / "model.pt").write_text("hello, I am not a checkpoint")
    torch.save([1, 2, 3], _model_dir(root, "list") / "model.pt")
    for name, state in (("state_list", [1, 2]), ("state_noopt", {"model": {}, "step": 3})):
        (root / name).mkdir()
        torch.save(state, root / name / "train_state.pt")
    # checkpoints of the right keys and shapes but of another kind (issue 21)
    base = torch.load(good / "model.pt", weights_only=True)
    for name, cast in (
        ("ck_bool", lambda v: v.bool()),
        ("ck_int", lambda v: v.long()),
        ("ck_uint8", lambda v: v.to(torch.uint8)),
        ("ck_complex", lambda v: v.to(torch.complex64)),
        ("ck_sparse", lambda v: v.to_sparse()),
        ("ck_meta", lambda v: v.to("meta")),
    ):
        d = _model_dir(root, name)
        torch.save({k: cast(v) if v.is_floating_point() else v for k, v in base.items()}, d / "model.pt")
    # a finished 2-step run (its train state resumes only the same run), and train states with impossible numbers
    assert (
        main(["train", *shlex.split(SEQ2FRAME), "--steps", "2", "--out", str(root / "resumable"), "--format", "json"])
        == 0
    )
    state = torch.load(root / "resumable" / "train_state.pt", weights_only=True)
    for name, change in (
        ("state_negstep", {"step": -1}),
        ("state_hugestep", {"step": 10**30}),
        ("state_nan_s", {"seconds": float("nan")}),
    ):
        (root / name).mkdir()
        torch.save({**state, **change}, root / name / "train_state.pt")
    # grid files a hostile or careless user writes
    lines = ["a0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    (root / "bomb.yaml").write_text("name: b\nbackbones: [strided]\n" + "\n".join(lines) + "\n")
    (root / "deep.yaml").write_text("name: d\nbackbones: [strided]\nx: " + "[" * 5000 + "]" * 5000 + "\n")
    (root / "dup.yaml").write_text("name: d\nbackbones: [strided]\nbackbones: [mixste]\n")
    (root / "empty.yaml").write_text("")
    (root / "huge.yaml").write_text("name: h\nbackbones: [strided]\n" + "# padding\n" * 110_000)
    (root / "tokens.yaml").write_text(
        "name: t\nbackbones: [strided]\ntokens: [" + ", ".join(map(str, range(1, 300))) + "]\n"
    )
    (root / "typo.yaml").write_text("name: t\nbackbones: [strided, mixstee]\n")
    (root / "strided.yaml").write_text("name: s\nbackbones: [strided]\npresets: [tiny]\nmeasure: [flops]\n")
    (root / "symroot" / "s").mkdir(parents=True)
    (root / "outside.jsonl").write_text("")
    (root / "symroot" / "s" / "flops-pt-any.jsonl").symlink_to(root / "outside.jsonl")
    (root / "bin.csv").write_bytes(b"\x00\xff\xfe" * 100)
    assert good.is_dir()
    return root


# (id, command line, fragment of the one error line, files that must not exist afterwards)
R = "{t}/runs"
ROWS: list = [
    # ---- global ---------------------------------------------------------------------------------
    ("unknown-command", "frobnicate", "frobnicate", []),
    ("unknown-flag", f"flops {TINY} --bogus", "--bogus", []),
    # ---- flops ----------------------------------------------------------------------------------
    ("flops-no-backbone", "flops", "--backbone", []),
    ("flops-unknown-backbone", "flops -b nope", "unknown backbone 'nope'", []),
    ("flops-unknown-preset", "flops -b mixste -p huge", "no preset 'huge'", []),
    ("flops-batch-0", f"flops {TINY} --batch 0", "--batch", []),
    ("flops-batch-neg", f"flops {TINY} --batch -3", "--batch", []),
    ("flops-batch-str", f"flops {TINY} --batch abc", "--batch", []),
    ("flops-format", f"flops {TINY} --format xml", "--format", []),
    ("flops-pruner-none-tokens", f"flops {TINY} --pruner none --tokens 9 --depths 1", "--pruner none", []),
    ("flops-tokens-no-pruner", f"flops {TINY} --tokens 9", "--pruner", []),
    ("flops-recoverer-no-pruner", f"flops {TINY} --recoverer attention", "--recoverer attention", []),
    ("flops-recoverer-pruner-none", f"flops {TINY} --pruner none --recoverer attention", "--pruner none", []),
    ("flops-pruner-no-depths", f"flops {TINY} --pruner cluster --tokens 9", "--depths", []),
    ("flops-unknown-pruner", f"flops {TINY} --pruner nope --tokens 9 --depths 1", "unknown pruner 'nope'", []),
    ("flops-unknown-recoverer", f"flops {TINY} --pruner cluster --tokens 9 --depths 1 --recoverer nope", "nope", []),
    ("flops-tokens-over-T", f"flops {TINY} --pruner cluster --tokens 99 --depths 1", "token count 99", []),
    ("flops-tokens-0", f"flops {TINY} --pruner cluster --tokens 0 --depths 1", "token count 0", []),
    ("flops-depth-beyond", f"flops {TINY} --pruner cluster --tokens 9 --depths 9", "depth 9", []),
    ("flops-depths-decrease", f"flops {TINY} --pruner cluster --tokens 9,3 --depths 3,1", "depths must increase", []),
    ("flops-depths-float", f"flops {TINY} --pruner cluster --tokens 9 --depths 1.5", "--depths", []),
    ("flops-tokens-str", f"flops {TINY} --pruner cluster --tokens abc --depths 1", "abc", []),
    # ---- speed ----------------------------------------------------------------------------------
    ("speed-unknown-backbone", "speed -b nope", "unknown backbone 'nope'", []),
    ("speed-pruner-none-tokens", f"speed {TINY} --pruner none --tokens 9 --depths 1", "--pruner none", []),
    ("speed-recoverer-no-pruner", f"speed {TINY} --recoverer attention", "--recoverer", []),
    ("speed-iters-str", f"speed {TINY} --iters abc", "--iters", []),
    pytest.param("speed-batch-0", f"{SP} --batch 0", "--batch", []),
    pytest.param("speed-iters-0", f"speed {TINY} --warmup 0 --iters 0", "--iters", []),
    pytest.param("speed-warmup-neg", f"speed {TINY} --iters 1 --warmup -1", "--warmup", []),
    pytest.param("speed-threads-0", f"{SP} --threads 0", "--threads", []),
    pytest.param("speed-device-tpu", f"{SP} --device tpu", "--device", []),
    pytest.param(
        "speed-cuda-absent",
        f"{SP} --device cuda",
        "cuda",
        [],
        marks=[pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")],
    ),
    # ---- train: types and ranges (nothing may be written: the run folder must not appear) ---------
    ("train-steps-neg", f"train {TINY} --steps -1 --out {R}/a", "--steps", [f"{R}/a"]),
    ("train-steps-0", f"train {TINY} --steps 0 --out {R}/b", "--steps", [f"{R}/b"]),
    ("train-steps-float", f"train {TINY} --steps 1.5 --out {R}/c", "--steps", [f"{R}/c"]),
    ("train-minutes-neg", f"train {TINY} --minutes -1 --out {R}/d", "--minutes", [f"{R}/d"]),
    ("train-minutes-nan", f"train {TINY} --minutes nan --out {R}/e", "--minutes", [f"{R}/e"]),
    ("train-minutes-inf", f"train {TINY} --minutes inf --out {R}/f", "--minutes", [f"{R}/f"]),
    ("train-batch-size-0", f"{TR} --batch-size 0 --out {R}/g", "--batch-size", [f"{R}/g"]),
    ("train-lr-nan", f"{TR} --lr nan --out {R}/h", "--lr", [f"{R}/h"]),
    ("train-lr-0", f"{TR} --lr 0 --out {R}/i", "--lr", [f"{R}/i"]),
    ("train-lr-neg", f"{TR} --lr -1 --out {R}/j", "--lr", [f"{R}/j"]),
    ("train-eval-stride-0", f"train {SEQ2FRAME} --steps 1 --eval-stride 0 --out {R}/k", "--eval-stride", [f"{R}/k"]),
    ("train-seed-neg", f"{TR} --seed -1 --out {R}/l", "--seed", [f"{R}/l"]),
    ("train-threads-0", f"{TR} --threads 0 --out {R}/m", "--threads", [f"{R}/m"]),
    ("train-data-seed-neg", f"{TR} --data-seed -1 --out {R}/n", "--data-seed", [f"{R}/n"]),
    ("train-no-budget", f"train {TINY} --out {R}/o", "--steps N or --minutes M", [f"{R}/o"]),
    ("train-mode-str", f"{TR} --mode nope --out {R}/p", "--mode", [f"{R}/p"]),
    ("train-loss-str", f"{TR} --loss nope --out {R}/q", "--loss", [f"{R}/q"]),
    ("train-out-is-file", f"{TR} --out {{t}}/a_file.txt", "--out", []),
    ("train-unknown-backbone", f"train -b nope --steps 1 --out {R}/r", "unknown backbone", [f"{R}/r"]),
    ("train-bad-schedule", f"{TR} --pruner cluster --tokens 99 --depths 1 --out {R}/s", "99", [f"{R}/s"]),
    # ---- train: contradictions ----------------------------------------------------------------
    ("train-pruner-none-tokens", f"{TR} --pruner none --tokens 9 --depths 1 --out {R}/t", "--tokens", [f"{R}/t"]),
    ("train-recoverer-no-pruner", f"{TR} --recoverer attention --out {R}/u", "--recoverer", [f"{R}/u"]),
    ("train-data-root-synthetic", f"{TR} --data-root {{t}}/empty --out {R}/v", "--data h36m", [f"{R}/v"]),
    ("train-keypoints-synthetic", f"{TR} --keypoints gt --out {R}/w", "--keypoints", [f"{R}/w"]),
    (
        "train-mode-none-steps",
        f"train {TINY} --mode none --steps 5 --init {{t}}/good/model.pt --out {R}/x",
        "--mode none",
        [f"{R}/x"],
    ),
    ("train-finetune-no-init", f"train {TINY} --mode finetune --steps 1 --out {R}/y", "--init", [f"{R}/y"]),
    ("train-scratch-init", f"{TR} --init {{t}}/good/model.pt --out {R}/z", "--init", [f"{R}/z"]),
    (
        "train-init-missing",
        f"train {TINY} --mode finetune --steps 1 --init {{t}}/nowhere.pt --out {R}/aa",
        "--init",
        [f"{R}/aa"],
    ),
    # ---- train: data files ----------------------------------------------------------------------
    ("train-h36m-no-root", f"{TR} --data h36m --out {R}/ab", "--data-root", [f"{R}/ab"]),
    ("train-h36m-empty", f"{TR} --data h36m --data-root {{t}}/empty --out {R}/ac", "data_3d_h36m", [f"{R}/ac"]),
    (
        "train-h36m-hostile-npz",
        f"{TR} --data h36m --keypoints gt --data-root {{t}}/hostile_npz --out {R}/ad",
        "refusing to unpickle global posix.system",
        ["{t}/pwned_npz", f"{R}/ad"],
    ),
    (
        "train-h36m-nan-3d",
        f"{TR} --data h36m --keypoints gt --data-root {{t}}/nan3d --out {R}/ae",
        "positions_3d[S1][Walking] holds non-finite",
        [f"{R}/ae"],
    ),
    (
        "train-h36m-inf-2d",
        f"{TR} --data h36m --keypoints gt --data-root {{t}}/nan2d --out {R}/af",
        "positions_2d[S1][Walking][0] holds non-finite",
        [f"{R}/af"],
    ),
    # ---- train: checkpoints and train state -------------------------------------------------------
    (
        "train-init-hostile",
        f"train {TINY} --mode finetune --steps 1 --init {{t}}/evil/model.pt --out {R}/ag",
        "holds non-tensor objects",
        ["{t}/pwned_ckpt", f"{R}/ag"],
    ),
    (
        "train-init-nan",
        f"train {TINY} --mode finetune --steps 1 --init {{t}}/nan/model.pt --out {R}/ah",
        "'STEblocks.0.attn.qkv.weight' holds 1 non-finite",
        [f"{R}/ah"],
    ),
    (
        "train-state-list",
        f"{TR} --batch-size 2 --out {{t}}/state_list",
        "holds a list",
        ["{t}/state_list/model.pt"],
    ),
    (
        "train-state-no-optimizer",
        f"{TR} --batch-size 2 --out {{t}}/state_noopt",
        "optimizer",
        ["{t}/state_noopt/model.pt"],
    ),
    (
        "train-diverges",
        f"train {TINY} --steps 4 --batch-size 2 --lr 1e30 --format json --out {R}/ai",
        "training diverged: the loss is nan at step",
        [f"{R}/ai/model.pt", f"{R}/ai/model.json"],
    ),
    # ---- evaluate -------------------------------------------------------------------------------
    ("eval-no-checkpoint-flag", "evaluate", "--checkpoint", []),
    ("eval-checkpoint-missing", "evaluate --checkpoint {t}/nowhere.pt", "--checkpoint", []),
    ("eval-hostile", "evaluate --checkpoint {t}/evil/model.pt", "holds non-tensor objects", ["{t}/pwned_ckpt"]),
    ("eval-nan-weights", "evaluate --checkpoint {t}/nan/model.pt", "'STEblocks.0.attn.qkv.weight'", []),
    ("eval-text-file", "evaluate --checkpoint {t}/text/model.pt", "not a weights-only torch checkpoint", []),
    ("eval-list", "evaluate --checkpoint {t}/list/model.pt", "holds a list", []),
    ("eval-neg-width", "evaluate --checkpoint {t}/negwidth/model.pt", "embed_dim_ratio must be between 1", []),
    ("eval-heads", "evaluate --checkpoint {t}/heads/model.pt", "not divisible by num_heads=3", []),
    ("eval-huge-depth", "evaluate --checkpoint {t}/deep/model.pt", "depth must be between 1", []),
    ("eval-str-depth", "evaluate --checkpoint {t}/strdepth/model.pt", "depth must be an integer", []),
    ("eval-unknown-override", "evaluate --checkpoint {t}/unknownopt/model.pt", "does not take wings", []),
    ("eval-bad-json", "evaluate --checkpoint {t}/badjson/model.pt", "model.json", []),
    ("eval-no-json", "evaluate --checkpoint {t}/nojson/model.pt", "--backbone", []),
    ("eval-other-backbone", "evaluate -b motionbert -p tiny --checkpoint {t}/good/model.pt", "does not match", []),
    ("eval-data-root-synthetic", "evaluate --checkpoint {t}/good/model.pt --data-root {t}/empty", "--data h36m", []),
    ("eval-eval-stride-0", "evaluate --checkpoint {t}/good/model.pt --eval-stride 0", "--eval-stride", []),
    ("eval-axes-no-backbone", "evaluate --checkpoint {t}/good/model.pt --pruner cluster", "--backbone", []),
    ("eval-data-seed-neg", "evaluate --checkpoint {t}/good/model.pt --data-seed -2", "--data-seed", []),
    (
        "eval-h36m-hostile",
        "evaluate --checkpoint {t}/good/model.pt --data h36m --keypoints gt --data-root {t}/hostile_npz",
        "refusing to unpickle",
        ["{t}/pwned_npz"],
    ),
    # ---- run (options and the grid file; the grid's content is validated by bench.grid) ------------
    ("run-missing-grid", f"run {{t}}/no_such_grid.yaml --out {R}/r1", "no grid", [f"{R}/r1"]),
    ("run-workers-0", f"run quick --workers 0 --out {R}/r2", "--workers", [f"{R}/r2"]),
    ("run-workers-str", f"run quick --workers many --out {R}/r3", "--workers", [f"{R}/r3"]),
    ("run-limit-0", f"run quick --limit 0 --out {R}/r4", "--limit", [f"{R}/r4"]),
    ("run-out-is-file", "run quick --out {t}/a_file.txt", "a_file.txt", []),
    # ---- issue 21: what a hostile probe found, and its classes --------------------------------------
    (
        "run-set-typo-backbone",
        f"run quick --set backbones=[strided,mixstee] --out {R}/r5",
        "'mixstee' names no",
        [f"{R}/r5"],
    ),
    (
        "run-set-override-gone",
        f"run quick --set backbones=[strided] --set by_backbone.mixste.train.steps=3 --out {R}/r6",
        "by_backbone.mixste",
        [f"{R}/r6"],
    ),
    ("run-file-typo-backbone", f"run {{t}}/typo.yaml --out {R}/r7", "'mixstee' names no", [f"{R}/r7"]),
    ("run-alias-bomb", f"run {{t}}/bomb.yaml --out {R}/r8", "YAML aliases", [f"{R}/r8"]),
    ("run-nested-5000", f"run {{t}}/deep.yaml --out {R}/r9", "nested too deeply", [f"{R}/r9"]),
    ("run-duplicate-key", f"run {{t}}/dup.yaml --out {R}/r10", "'backbones' is given twice", [f"{R}/r10"]),
    ("run-empty-grid", f"run {{t}}/empty.yaml --out {R}/r11", "empty grid file", [f"{R}/r11"]),
    ("run-huge-grid-file", f"run {{t}}/huge.yaml --out {R}/r12", "larger than 1,000,000 bytes", [f"{R}/r12"]),
    ("run-300-tokens", f"run {{t}}/tokens.yaml --out {R}/r13", "at most 256", [f"{R}/r13"]),
    ("run-seed-1e20", f"run quick --set seeds=[100000000000000000000] --out {R}/r14", "seeds", [f"{R}/r14"]),
    ("run-threads-huge", f"run quick --set train.threads=100000 --out {R}/r15", "threads", [f"{R}/r15"]),
    ("run-batch-huge", f"run quick --set speed.batch=100000000 --out {R}/r16", "speed.batch", [f"{R}/r16"]),
    ("run-steps-huge", f"run quick --set train.steps=10000000000000 --out {R}/r17", "train.steps", [f"{R}/r17"]),
    ("run-ray-no-host", f"run quick --ray-address nosuchhost.invalid:1 --out {R}/r18", "is not known", [f"{R}/r18"]),
    ("run-ray-no-port", f"run quick --ray-address bogus --out {R}/r19", "host:port", [f"{R}/r19"]),
    ("run-ray-and-workers", f"run quick --ray --workers 2 --out {R}/r20", "--workers and --ray", [f"{R}/r20"]),
    ("run-only-empty-item", f"run quick --only flops,,speed --out {R}/r21", "--only", [f"{R}/r21"]),
    ("run-only-empty", f"run quick --only '' --out {R}/r22", "--only", [f"{R}/r22"]),
    ("run-set-no-value", f"run quick --set train.steps --out {R}/r23", "KEY=VALUE", [f"{R}/r23"]),
    ("run-set-not-section", f"run quick --set name.x=3 --out {R}/r24", "not a section", [f"{R}/r24"]),
    ("run-symlinked-record", "run {t}/strided.yaml --out {t}/symroot", "symbolic link", []),
    ("run-set-minutes", f"run quick --set train.minutes=1 --out {R}/r25", "minutes", [f"{R}/r25"]),
    ("run-compile-alone", f"run quick --set speed.compile=[inductor] --out {R}/r26", "speed.compile", [f"{R}/r26"]),
    ("run-compile-unknown", f"run quick --set speed.compile=tvm --out {R}/r27", "speed.compile", [f"{R}/r27"]),
    # ---- report ---------------------------------------------------------------------------------
    ("report-missing", "report {t}/nowhere", "no results folder", []),
    ("report-empty-folder", "report {t}/empty", "no result rows", []),
    ("report-binary-csv", "report {t}/bin.csv", "bin.csv", []),
    ("report-table", "report {t}/empty --table nope", "--table", []),
    ("report-format", "report {t}/empty --format xml", "--format", []),
    ("report-symlinked-record", "report {t}/symroot/s", "symbolic link", []),
    # ---- list -----------------------------------------------------------------------------------
    ("list-unknown-kind", "list nope", "nope", []),
    ("list-format", "list backbones --format xml", "--format", []),
    # ---- targets --------------------------------------------------------------------------------
    ("targets-format", "targets --format xml", "--format", []),
    ("targets-empty-backbone", "targets --backbone ''", "--backbone", []),
    # ---- speed (bounds) ---------------------------------------------------------------------------
    ("speed-threads-100000", f"{SP} --threads 100000", "--threads", []),
    ("speed-threads-over-cpus", f"{SP} --threads {min(1024, (os.cpu_count() or 1) + 1)}", "CPU(s)", []),
    ("speed-batch-1e8", f"{SP} --batch 100000000", "--batch", []),
    ("speed-throughput-batch-1e8", f"{SP} --throughput-batch 100000000", "--throughput-batch", []),
    ("speed-iters-1e9", f"speed {TINY} --iters 1000000000", "--iters", []),
    ("speed-compile-with-value", f"speed {TINY} --compile inductor", "unrecognized arguments", []),
    # ---- speedup --------------------------------------------------------------------------------
    ("speedup-empty-backbone", "speedup --backbone ''", "--backbone", []),
    ("speedup-empty-item", "speedup -b mixste,,strided", "--backbone", []),
    ("speedup-unknown-backbone", "speedup -b nope", "unknown backbone 'nope'", []),
    ("speedup-unknown-preset", "speedup --preset huge", "no preset 'huge'", []),
    ("speedup-threads-100000", "speedup --threads 100000", "--threads", []),
    ("speedup-batch-1e8", "speedup --batch 100000000", "--batch", []),
    # ---- precision ------------------------------------------------------------------------------
    ("precision-fp32", "precision --precision fp32", "fp32", []),
    ("precision-unknown-preset", "precision --preset huge", "no preset 'huge'", []),
    ("precision-results-missing", "precision --results {t}/nowhere", "--results", []),
    ("precision-results-and-preset", "precision --results {t}/empty --preset tiny", "--preset", []),
    ("precision-empty-backbone", "precision --backbone ''", "--backbone", []),
    # ---- study ----------------------------------------------------------------------------------
    ("study-workers-0", f"study --workers 0 --out {R}/st1", "--workers", [f"{R}/st1"]),
    ("study-ray-and-workers", f"study --ray --workers 2 --out {R}/st2", "--workers and --ray", [f"{R}/st2"]),
    ("study-only-empty-item", f"study --only accuracy,, --out {R}/st3", "--only", [f"{R}/st3"]),
    ("study-set-typo", f"study --set backbones=[mixstee] --out {R}/st4", "mixstee", [f"{R}/st4"]),
    # ---- search ---------------------------------------------------------------------------------
    ("search-no-trials", f"search search_quick --out {R}/se1", "--trials", [f"{R}/se1"]),
    ("search-trials-0", f"search search_quick --trials 0 --out {R}/se2", "--trials", [f"{R}/se2"]),
    ("search-sampler", f"search search_quick --trials 2 --sampler annealing --out {R}/se3", "--sampler", [f"{R}/se3"]),
    (
        "search-objectives",
        f"search search_quick --trials 2 --objectives gflops,fps --out {R}/se4",
        "--objectives",
        [f"{R}/se4"],
    ),
    (
        "search-objectives-empty",
        f"search search_quick --trials 2 --objectives mpjpe_mm,, --out {R}/se5",
        "--objectives",
        [f"{R}/se5"],
    ),
    (
        "search-fps-without-speed",
        f"search search_quick --trials 2 --objectives mpjpe_mm,fps --out {R}/se6",
        "speed",
        [f"{R}/se6"],
    ),
    (
        "search-where-syntax",
        f"search search_quick --trials 2 --where 'gflops<<3' --out {R}/se7",
        "--where",
        [f"{R}/se7"],
    ),
    (
        "search-where-not-free",
        f"search search_quick --trials 2 --where 'mpjpe_mm<=50' --out {R}/se8",
        "not a free measure",
        [f"{R}/se8"],
    ),
    (
        "search-ray-and-workers",
        f"search search_quick --trials 2 --ray --workers 2 --out {R}/se9",
        "--workers and --ray",
        [f"{R}/se9"],
    ),
    (
        "search-ray-no-host",
        f"search search_quick --trials 2 --ray-address nosuchhost.invalid:1 --out {R}/se10",
        "is not known",
        [f"{R}/se10"],
    ),
    (
        "search-set-typo",
        f"search search_quick --trials 2 --set backbones=[mixstee] --out {R}/se11",
        "mixstee",
        [f"{R}/se11"],
    ),
    ("search-missing-grid", f"search {{t}}/nowhere.yaml --trials 2 --out {R}/se12", "no grid", [f"{R}/se12"]),
    ("search-flops-only-grid", f"search {{t}}/strided.yaml --trials 2 --out {R}/se13", "accuracy", [f"{R}/se13"]),
    # ---- train (bounds, budgets, resumes) --------------------------------------------------------
    ("train-threads-100000", f"{TR} --threads 100000 --out {R}/ba", "--threads", [f"{R}/ba"]),
    (
        "train-threads-over-cpus",
        f"{TR} --threads {min(1024, (os.cpu_count() or 1) + 1)} --out {R}/bb",
        "CPU(s)",
        [f"{R}/bb/model.pt"],
    ),
    ("train-seed-1e20", f"{TR} --seed 100000000000000000000 --out {R}/bc", "--seed", [f"{R}/bc"]),
    ("train-data-seed-1e20", f"{TR} --data-seed 100000000000000000000 --out {R}/bd", "--data-seed", [f"{R}/bd"]),
    ("train-batch-size-1e8", f"{TR} --batch-size 100000000 --out {R}/be", "--batch-size", [f"{R}/be"]),
    ("train-steps-1e12", f"train {TINY} --steps 1000000000000 --out {R}/bf", "--steps", [f"{R}/bf"]),
    (
        "train-steps-and-minutes",
        f"train {TINY} --steps 3 --minutes 1 --out {R}/bg",
        "--steps and --minutes",
        [f"{R}/bg"],
    ),
    (
        "train-resume-other-lr",
        f"train {SEQ2FRAME} --steps 2 --lr 0.5 --out {{t}}/resumable",
        "lr None there, 0.5 now",
        [],
    ),
    ("train-resume-other-data", f"train {SEQ2FRAME} --steps 2 --data-seed 3 --out {{t}}/resumable", "other data", []),
    ("train-resume-fewer-steps", f"train {SEQ2FRAME} --steps 1 --out {{t}}/resumable", "beyond this run's 1 steps", []),
    ("train-resume-other-model", f"train {TINY} --steps 2 --out {{t}}/resumable", "another model", []),
    (
        "train-state-negative-step",
        f"train {SEQ2FRAME} --steps 2 --out {{t}}/state_negstep",
        "step -1",
        ["{t}/state_negstep/model.pt"],
    ),
    (
        "train-state-step-1e30",
        f"train {SEQ2FRAME} --steps 2 --out {{t}}/state_hugestep",
        "is not a step count",
        ["{t}/state_hugestep/model.pt"],
    ),
    (
        "train-state-nan-seconds",
        f"train {SEQ2FRAME} --steps 2 --out {{t}}/state_nan_s",
        "seconds nan",
        ["{t}/state_nan_s/model.pt"],
    ),
    (
        "train-init-bool",
        f"train {TINY} --mode finetune --steps 1 --init {{t}}/ck_bool/model.pt --out {R}/bh",
        "is bool where",
        [f"{R}/bh"],
    ),
    # ---- evaluate (checkpoint kinds) ---------------------------------------------------------------
    ("eval-bool", "evaluate --checkpoint {t}/ck_bool/model.pt", "is bool where the model holds float32", []),
    ("eval-int", "evaluate --checkpoint {t}/ck_int/model.pt", "is int64 where", []),
    ("eval-uint8", "evaluate --checkpoint {t}/ck_uint8/model.pt", "is uint8 where", []),
    ("eval-complex", "evaluate --checkpoint {t}/ck_complex/model.pt", "is complex64 where", []),
    ("eval-sparse", "evaluate --checkpoint {t}/ck_sparse/model.pt", "sparse_coo tensor", []),
    ("eval-meta", "evaluate --checkpoint {t}/ck_meta/model.pt", "meta tensor", []),
    ("eval-preset-without-backbone", "evaluate --checkpoint {t}/good/model.pt -p small", "--preset", []),
]


def _call(argv: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own exit
        code = int(e.code or 0)
    return code, capsys.readouterr().err


def _ids(rows: list) -> list[str]:
    return [r.values[0] if hasattr(r, "values") else r[0] for r in rows]


COMMANDS = ("flops", "speed", "speedup", "train", "eval", "run", "report", "list", "targets", "precision", "study")
COMMANDS += ("search",)


def _command(row_id: str) -> str:
    return max((c for c in COMMANDS if row_id.startswith(c + "-")), key=len, default="global")


def test_the_table_is_large_and_ids_are_unique():
    ids = _ids(ROWS)
    assert len(ids) >= 160
    assert len(set(ids)) == len(ids)
    counts = {c: sum(_command(i) == c for i in ids) for c in COMMANDS}
    assert all(n >= 2 for n in counts.values()), counts  # every subcommand is probed


@pytest.mark.parametrize(("name", "command", "fragment", "absent"), ROWS, ids=_ids(ROWS))
def test_user_mistake_is_one_error_line_exit_2_and_no_work(name, command, fragment, absent, t, capsys):
    argv = [a.format(t=t) for a in shlex.split(command)]
    code, err = _call(argv, capsys)
    lines = err.splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert fragment in lines[0], lines[0]
    assert "weights_only" not in lines[0]  # never the advice that would run a hostile file
    assert "Traceback" not in err
    for path in absent:
        assert not Path(path.format(t=t)).exists(), f"{name}: {path} was written"


def test_debug_shows_the_traceback_of_a_user_error(capsys):
    code, err = _call(["--debug", "flops", *shlex.split(TINY), "--batch", "0"], capsys)
    assert code == 2
    assert "Traceback" in err
    assert err.splitlines()[-1].startswith("error: --batch")


def test_a_bug_is_not_a_user_error(monkeypatch):
    def broken(_a):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "cmd_flops", broken)
    with pytest.raises(RuntimeError, match="a bug"):  # propagates: a traceback and exit 1
        main(["flops", *shlex.split(TINY)])


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        (f"flops {TINY} --batch 0", "--batch"),
        ("evaluate --checkpoint {t}/evil/model.pt", "holds non-tensor objects"),
    ],
)
def test_real_process_exit_status(command, fragment, t):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, str(REPO / "run_bench.py"), *(a.format(t=t) for a in shlex.split(command))]
    r = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.splitlines()) == 1, r.stderr
    assert fragment in r.stderr
    assert not (t / "pwned_ckpt").exists()


def test_p_mpjpe_of_non_finite_frames_is_nan_not_a_crash():
    torch.manual_seed(0)
    target = torch.randn(4, 17, 3)
    pred = target + 0.01 * torch.randn(4, 17, 3)
    pred[1, 3, 0] = float("nan")
    pred[2] = float("inf")
    per_frame = p_mpjpe(pred, target, per_frame=True)
    assert torch.isnan(per_frame[1]) and torch.isnan(per_frame[2])
    assert torch.isfinite(per_frame[[0, 3]]).all()
    assert torch.allclose(per_frame[[0, 3]], p_mpjpe(pred[[0, 3]], target[[0, 3]], per_frame=True))
