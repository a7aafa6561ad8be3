"""Import direction, read statically from the source (ast): backbones <- strategies <- bench, and inside bench
measure/data <- training <- grid/report/cli. Every import counts, also those inside functions and
``TYPE_CHECKING`` blocks, so a forbidden dependency cannot hide behind a lazy import."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: (folder, modules it must never import)
RULES: list[tuple[str, tuple[str, ...]]] = [
    ("bench/measure", ("bench.grid", "bench.report", "bench.training", "bench.cli", "bench.search")),
    ("bench/data", ("bench.grid", "bench.report", "bench.training", "bench.cli", "bench.search")),
    ("bench/training", ("bench.grid", "bench.report", "bench.cli", "bench.search")),
    ("bench/grid", ("bench.report", "bench.benchmarks", "bench.cli", "bench.search")),
    ("bench/report", ("bench.benchmarks", "bench.cli", "bench.search")),
    ("bench/search", ("bench.benchmarks", "bench.cli")),
    ("backbones", ("strategies", "bench")),
    ("strategies", ("bench",)),
]


def module_name(path: Path, root: Path = REPO) -> str:
    """Dotted module name of ``path`` under ``root`` (``pkg/__init__.py`` -> ``pkg``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path = REPO) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of everything ``path`` imports; ``from a import b`` yields a and a.b."""
    tree = ast.parse(path.read_text(), filename=str(path))
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            out += [(node.lineno, f"{mod}.{a.name}") for a in node.names if a.name != "*"]
    return sorted(out)


def violations(folder: Path, forbidden: tuple[str, ...], root: Path = REPO) -> list[str]:
    """``file:line imports name`` for every import of a ``forbidden`` module (or a submodule) under ``folder``."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        for line, name in imported_modules(path, root):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                found.append(f"{path.relative_to(root)}:{line} imports {name}")
    return found


@pytest.mark.parametrize(("folder", "forbidden"), RULES, ids=[r[0] for r in RULES])
def test_import_direction(folder: str, forbidden: tuple[str, ...]) -> None:
    assert (REPO / folder).is_dir(), folder
    assert list((REPO / folder).rglob("*.py")), folder
    assert violations(REPO / folder, forbidden) == []


def test_the_checker_sees_every_form_of_import(tmp_path: Path) -> None:
    pkg = tmp_path / "bench" / "measure" / "flops"
    pkg.mkdir(parents=True)
    (tmp_path / "bench" / "__init__.py").write_text("")
    (tmp_path / "bench" / "measure" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from ... import report\n")  # bench.report
    (pkg / "bad.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "import bench.grid.store\n"
        "from bench import cli\n"
        "from ...training import loop\n"
        "if TYPE_CHECKING:\n"
        "    from bench.grid.spec import GridSpec\n"
        "def f():\n"
        "    import bench.report.tables\n"
        "from ..speed import x\n"  # bench.measure.speed: allowed
    )
    found = violations(tmp_path / "bench" / "measure", RULES[0][1], root=tmp_path)
    assert found == [
        "bench/measure/flops/__init__.py:1 imports bench.report",
        "bench/measure/flops/bad.py:2 imports bench.grid.store",
        "bench/measure/flops/bad.py:3 imports bench.cli",
        "bench/measure/flops/bad.py:4 imports bench.training",
        "bench/measure/flops/bad.py:4 imports bench.training.loop",
        "bench/measure/flops/bad.py:6 imports bench.grid.spec",
        "bench/measure/flops/bad.py:6 imports bench.grid.spec.GridSpec",
        "bench/measure/flops/bad.py:8 imports bench.report.tables",
    ]


# ---- "add a backbone = one file": nothing outside backbones/ and tests/ names a concrete backbone ------------
SCANNED = ("bench", "strategies", "run_bench.py")
#: torch op names that contain a backbone name as a word ("strided")
TORCH_OPS = frozenset({"as_strided", "empty_strided", "new_empty_strided"})
#: (file, text) still allowed, each with its reason; the lead's task is to bring this to zero
ALLOWED: set[tuple[str, str]] = set()


def _docstrings(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                out.add(id(first.value))
    return out


def backbone_mentions(path: Path, names: list[str], root: Path = REPO) -> list[tuple[str, int, str]]:
    """(file, line, text) of every string literal (docstrings excepted) and identifier naming a backbone."""
    import re

    pattern = re.compile(rf"(?<![a-z0-9])({'|'.join(map(re.escape, names))})", re.IGNORECASE)
    tree = ast.parse(path.read_text(), filename=str(path))
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        texts: list[str] = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            texts.append(node.value)
        elif isinstance(node, ast.Name):
            texts.append(node.id)
        elif isinstance(node, ast.Attribute):
            texts.append(node.attr)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            texts.append(node.name)
        elif isinstance(node, ast.arg) or (isinstance(node, ast.keyword) and node.arg):
            texts.append(node.arg)
        elif isinstance(node, ast.alias):
            texts += [node.name, node.asname or ""]
        elif isinstance(node, ast.ImportFrom) and node.module:
            texts.append(node.module)
        for text in texts:
            if text not in TORCH_OPS and pattern.search(text):
                found.append((str(path.relative_to(root)), getattr(node, "lineno", 0), text))
    return found


def _scanned_files(root: Path = REPO) -> list[Path]:
    files: list[Path] = []
    for entry in SCANNED:
        p = root / entry
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    return files


def test_no_concrete_backbone_is_named_outside_backbones_and_tests() -> None:
    from backbones import list_backbones

    names = list_backbones()
    assert {"mixste", "motionbert", "mhformer", "strided"} <= set(names)
    files = _scanned_files()
    assert len(files) > 30 and all(f.is_file() for f in files)
    found = [m for f in files for m in backbone_mentions(f, names)]
    left = [m for m in found if not any(m[0] == file and text in m[2] for file, text in ALLOWED)]
    assert left == []
    stale = [a for a in ALLOWED if not any(m[0] == a[0] and a[1] in m[2] for m in found)]
    assert stale == []  # an allowance no longer needed must go


def test_the_name_scan_sees_literals_and_identifiers_but_not_docstrings(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        '"""Module docstring: mixste is fine here."""\n'
        "from backbones.mixste import MixSTE\n"
        "import torch\n"
        "def f(strided_x):\n"
        '    """mhformer in a docstring is fine."""\n'
        '    torch.as_strided  # "as_strided" the torch op is not a backbone\n'
        '    return {"motionbert": MixSTE, "label": f"HoT-MixSTE({strided_x})", "op": "as_strided"}\n'
    )
    found = backbone_mentions(tmp_path / "m.py", ["mixste", "motionbert", "mhformer", "strided"], root=tmp_path)
    assert sorted((line, text) for _, line, text in found) == [
        (2, "MixSTE"),
        (2, "backbones.mixste"),
        (4, "strided_x"),
        (7, "HoT-MixSTE("),
        (7, "MixSTE"),
        (7, "motionbert"),
        (7, "strided_x"),
    ]


@pytest.mark.parametrize("leaf", ["errors.py", "rows.py"])
def test_the_error_contract_and_the_row_schema_are_leaves(leaf: str) -> None:
    """bench/errors.py and bench/rows.py import nothing of the suite: everything may import them."""
    suite = ("bench", "backbones", "strategies")
    found = [n for _, n in imported_modules(REPO / "bench" / leaf) if n.split(".")[0] in suite]
    assert found == []


def test_every_error_bench_raises_for_the_user_is_a_user_error() -> None:
    import importlib
    import inspect
    import pkgutil

    import bench
    from bench.errors import UserError

    errors = []
    for info in pkgutil.walk_packages(bench.__path__, "bench."):
        mod = importlib.import_module(info.name)
        errors += [
            c
            for _, c in inspect.getmembers(mod, inspect.isclass)
            if issubclass(c, Exception) and c.__module__ == mod.__name__
        ]
    names = {c.__name__ for c in errors}
    assert {"ConfigError", "GridError", "TrainError", "DataError", "UnsafeFileError", "ResultsError"} <= names
    assert [c.__name__ for c in errors if not issubclass(c, UserError)] == []


def import_cycles(
    root: Path = REPO, packages: tuple[str, ...] = ("backbones", "strategies", "bench")
) -> list[list[str]]:
    """Strongly connected groups (> 1 module) of the project's import graph, lazy imports included."""
    files = {module_name(p, root): p for pkg in packages for p in sorted((root / pkg).rglob("*.py"))}
    graph = {m: {n for _, n in imported_modules(p, root) if n in files and n != m} for m, p in files.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycles() -> None:
    assert import_cycles() == []


def test_the_cycle_walk_finds_a_lazy_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "bench"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from bench.b import x\n")
    (pkg / "b.py").write_text("def x():\n    from bench.a import y\n")
    assert import_cycles(tmp_path, ("bench",)) == [["bench.a", "bench.b"]]
