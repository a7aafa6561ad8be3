"""Grid files: a YAML mapping plus ``--set KEY=VALUE`` overrides, validated whole by one pydantic model.

A grid names its axes (``backbones``, ``presets``, ``pruners``, ``recoverers``, ``tokens``, ``depths``
or explicit ``schedules``, ``seeds``, ``modes``, and the constructor-option axes
``backbone_options`` / ``pruner_options`` / ``recoverer_options``, each ``{name: {option: [values]}}``),
the measures to take, and the speed / train / data sections, which are the suite's own
:class:`~bench.config.SpeedConfig`, :class:`~bench.config.TrainConfig` and
:class:`~bench.config.DataConfig`. ``--set`` overrides go through the same model, so a bad value is
the same one-line :class:`GridError` naming its dotted key whether it came from the file or the
command line. Reading a file never executes code (``yaml.safe_load``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bench.config import ConfigError, DataConfig, Mode, Number, SpeedConfig, TrainConfig, _Config, validate
from bench.errors import UserError, one_line
from bench.rows import MAX_SEED

MEASURES = ("flops", "speed", "accuracy")
Measure = Literal["flops", "speed", "accuracy"]
OptionAxes = dict[str, dict[str, list[Any]]]  # {backbone|strategy name: {option: [values]}}


class GridError(UserError, ValueError):
    """A malformed grid (file, ``--set`` or results folder): one-line message."""


def _as_list(v: Any) -> Any:
    return v if isinstance(v, list) else [v]


def default_recoverers(v: list[Any]) -> list[Any]:
    """A grid's ``recoverers`` list with ``default`` read as None: HoT's default for the backbone
    (:attr:`~bench.config.ModelConfig.effective_recoverer` says which)."""
    return [None if r in (None, "default") else r for r in v]


class ScheduleSpec(BaseModel):
    """An explicit (tokens, depths) pair: HoT's one-shot form or H2OT's hierarchical lists."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    tokens: Number | list[Number]
    depths: int | list[int]


class BackboneAxes(_Config):
    """Axes of one backbone that replace the grid's (``by_backbone: {mixste: {...}}``).

    Its own presets, pruners, recoverers (a seq2frame backbone takes none), token counts, depths and
    schedules (each backbone has its own T and depth, so "the published configurations and a sweep
    around them" differ per backbone), and changes to the ``train`` section (the papers' budgets
    differ per backbone). Given ``tokens`` or ``depths``, ``schedules`` add to their product.
    """

    presets: list[str] | None = Field(None, min_length=1)
    pruners: list[str] | None = Field(None, min_length=1)
    recoverers: list[str | None] | None = Field(None, min_length=1)
    tokens: list[Number | list[Number]] | None = Field(None, min_length=1)
    depths: list[int | list[int]] | None = Field(None, min_length=1)
    schedules: list[ScheduleSpec] | None = None
    train: dict[str, Any] = Field(default_factory=dict)
    baseline: dict[str, Any] = Field(default_factory=dict)  # changes to the shared baseline's train options

    _lists = field_validator("presets", "pruners", "recoverers", "tokens", "depths", mode="before")(
        lambda v: v if v is None or isinstance(v, list) else [v]
    )

    @field_validator("recoverers")
    @classmethod
    def _default_recoverer(cls, v: list[str | None] | None) -> list[str | None] | None:
        return None if v is None else default_recoverers(v)


def _default(*values: Any) -> Any:
    return lambda: list(values)


#: the most values one axis of a grid file may list, and the most (axis product) combinations a grid may span
MAX_AXIS = 256
MAX_COMBINATIONS = 1_000_000


class Grid(_Config):
    """A whole grid, validated: the axes, the measures and the shared sections."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")
    description: str = ""
    backbones: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=MAX_AXIS)
    presets: list[str] = Field(default_factory=lambda: ["tiny"], min_length=1, max_length=MAX_AXIS)
    pruners: list[str] = Field(default_factory=lambda: ["none"], min_length=1, max_length=MAX_AXIS)
    recoverers: list[str | None] = Field(default_factory=_default(None), min_length=1, max_length=MAX_AXIS)
    tokens: list[Number | list[Number]] = Field(default_factory=_default(0.33), min_length=1, max_length=MAX_AXIS)
    depths: list[int | list[int]] = Field(default_factory=_default(1), min_length=1, max_length=MAX_AXIS)
    schedules: list[ScheduleSpec] = Field(default_factory=list, max_length=MAX_AXIS)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1, max_length=MAX_AXIS)
    # training modes axis: [finetune, {none: {recoverers: [interpolation]}}]; None: train.mode
    modes: list[Mode | dict[Mode, dict[str, Any] | None]] | None = None
    baseline: dict[str, Any] = Field(default_factory=dict)  # train options of the shared baselines
    backbone_options: OptionAxes = Field(default_factory=dict)
    pruner_options: OptionAxes = Field(default_factory=dict)
    recoverer_options: OptionAxes = Field(default_factory=dict)
    by_backbone: dict[str, BackboneAxes] = Field(default_factory=dict)
    measure: list[Measure] = Field(default_factory=_default("flops"), min_length=1)
    speed: SpeedConfig = Field(default_factory=SpeedConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)  # its seed comes from ``seeds``
    data: DataConfig = Field(default_factory=DataConfig)

    _lists = field_validator(
        "backbones", "presets", "pruners", "recoverers", "tokens", "depths", "seeds", "measure", mode="before"
    )(_as_list)

    @field_validator("recoverers")
    @classmethod
    def _default_recoverer(cls, v: list[str | None]) -> list[str | None]:
        return default_recoverers(v)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if any(not 0 <= s <= MAX_SEED for s in v):
            raise ValueError(f"seeds must be in [0, {MAX_SEED}]")
        return v

    @field_validator("backbone_options", "pruner_options", "recoverer_options", mode="before")
    @classmethod
    def _option_axes(cls, v: Any) -> Any:
        if isinstance(v, Mapping):
            return {
                n: {k: _as_list(x) for k, x in (o or {}).items()} if isinstance(o, Mapping) else o for n, o in v.items()
            }
        return v

    @field_validator("baseline")
    @classmethod
    def _baseline_options(cls, v: dict[str, Any]) -> dict[str, Any]:
        validate(TrainConfig, {k: x for k, x in v.items() if k != "mode"}, "baseline")
        return v

    def uses_training(self) -> bool:
        """True when some cell of the grid trains (a scratch or finetune mode, or a shared baseline)."""
        return "accuracy" in self.measure and (self.modes is not None or self.train.mode != "none")

    def sweeps_tokens(self) -> bool:
        """Whether ``tokens`` / ``depths`` were given: then ``schedules`` add to their product, else replace it."""
        return bool({"tokens", "depths"} & self.model_fields_set)

    def for_backbone(self, name: str) -> Grid:
        """This grid with ``by_backbone[name]``'s axes and train changes applied (itself when there are none)."""
        ov = self.by_backbone.get(name)
        if ov is None:
            return self
        axes = ("presets", "pruners", "recoverers", "tokens", "depths")
        update: dict[str, Any] = {k: v for k in axes if (v := getattr(ov, k)) is not None}
        if ov.schedules is not None:
            update["schedules"] = ov.schedules
        if ov.train:
            merged = {**self.train.model_dump(exclude_unset=True), **ov.train}
            update["train"] = validate(TrainConfig, merged, f"by_backbone.{name}.train")
        if ov.baseline:
            validate(TrainConfig, {k: x for k, x in ov.baseline.items() if k != "mode"}, f"by_backbone.{name}.baseline")
            update["baseline"] = {**self.baseline, **ov.baseline}
        g = self.model_copy(update=update)
        # a per-backbone sweep is explicit: its schedules add to its tokens x depths
        object.__setattr__(g, "__pydantic_fields_set__", self.model_fields_set | (set(update) & {"tokens", "depths"}))
        return g

    def resolved(self) -> dict[str, Any]:
        """The grid as plain data (written beside the results)."""
        return self.model_dump(mode="json")


# ---- reading -----------------------------------------------------------------------------------
def packaged_grids() -> dict[str, Path]:
    """Grid files shipped with the package: ``configs/`` of a checkout, else ``<prefix>/share/hourglassbench/grids``."""
    import sys
    import sysconfig

    checkout = Path(__file__).resolve().parents[2] / "configs"
    candidates = [checkout, Path(sysconfig.get_path("data")) / "share" / "hourglassbench" / "grids"]
    candidates.append(Path(sys.prefix) / "share" / "hourglassbench" / "grids")
    for root in candidates:
        if root.is_dir() and any(root.glob("*.y*ml")):
            return {p.stem: p for p in sorted(root.glob("*.y*ml"))}
    return {}


def grid_source(name: str) -> Path:
    """A packaged grid's name (``quick``) or a path to a grid file."""
    packaged = packaged_grids()
    if name in packaged:
        return packaged[name]
    try:
        p = Path(name)
        if p.is_file():
            return p
        exists = p.exists()
    except (OSError, ValueError) as e:
        raise GridError(
            f"grid '{name[:80]}': cannot read it ({type(e).__name__}: {e.strerror if isinstance(e, OSError) else e})"
        ) from None
    if exists:
        raise GridError(f"grid '{name}' is not a file")
    raise GridError(f"no grid '{name}' (a path, or one of: {', '.join(packaged)})")


def read_grid_text(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The YAML mapping of a grid file; unreadable, binary or non-UTF-8 files are one-line errors."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)  # a huge or endless file is not read to its end
    except FileNotFoundError:
        raise GridError(f"grid file '{p}' does not exist") from None
    except OSError as e:
        raise GridError(f"grid file '{str(p)[:80]}': cannot read it ({e.strerror or type(e).__name__})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise GridError(f"{p}: larger than {MAX_FILE_BYTES:,} bytes, the most a grid file may be (split it into files)")
    if b"\x00" in raw:
        raise GridError(f"{p}: a binary file, not a YAML grid")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise GridError(f"{p}: not UTF-8 text (byte {e.start})") from None
    d = load_yaml(text, str(p))
    if d is None:
        raise GridError(f"{p}: an empty grid file (a grid names at least its backbones: see configs/quick.yaml)")
    if not isinstance(d, dict):
        raise GridError(f"{p}: a grid file is a mapping of axis names to lists")
    return d


#: how deep a grid file may nest, and how many values it may hold once its YAML aliases are expanded
MAX_DEPTH = 32
MAX_VALUES = 100_000
MAX_FILE_BYTES = 1_000_000


class _GridLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses a key given twice in one mapping (the last one would win silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if isinstance(key, str | int | float | bool) and key in seen:
                line = key_node.start_mark.line + 1
                raise yaml.constructor.ConstructorError(None, None, f"key '{key}' is given twice (line {line})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, where: str) -> Any:
    """YAML text of a grid file or a ``--set`` value, safely: no Python objects, no key twice, at most
    :data:`MAX_DEPTH` levels and :data:`MAX_VALUES` values with its aliases expanded (an alias bomb of 9
    levels of 9 is 387 million values), each a one-line :class:`GridError`."""
    try:
        d = yaml.load(text, Loader=_GridLoader)  # a SafeLoader subclass: no Python objects
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else "invalid YAML"
        problem = getattr(e, "problem", None)
        raise GridError(f"{where}: not valid YAML ({problem or first})") from None
    except RecursionError:
        raise GridError(f"{where}: nested too deeply (at most {MAX_DEPTH} levels)") from None
    _check_size(d, where)
    return d


def _check_size(d: Any, where: str) -> None:
    """Count ``d``'s values as a deep copy would (a shared alias once per use), without copying."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, int, bool]] = [(d, 1, False)]
    while stack:
        node, depth, children_done = stack.pop()
        if depth > MAX_DEPTH:
            raise GridError(f"{where}: nested too deeply (more than {MAX_DEPTH} levels)")
        kids = list(node.values()) if isinstance(node, dict) else node if isinstance(node, list) else None
        if kids is None or id(node) in sizes:
            continue
        if children_done:
            total = 1 + sum(sizes.get(id(k), 1) for k in kids)
            if total > MAX_VALUES:
                raise GridError(f"{where}: more than {MAX_VALUES:,} values once its YAML aliases are expanded")
            sizes[id(node)] = total
            continue
        stack.append((node, depth, True))
        stack.extend((k, depth + 1, False) for k in kids if isinstance(k, dict | list) and id(k) not in sizes)


def apply_sets(d: Mapping[str, Any], sets: Sequence[str]) -> dict[str, Any]:
    """Merge ``KEY=VALUE`` overrides (dotted keys, YAML values) into a copy of ``d``."""
    out: dict[str, Any] = _deepcopy(d)
    for item in sets:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise GridError(f"--set {item}: expected KEY=VALUE with a dotted key (e.g. train.steps=500)")
        value = load_yaml(text, f"--set {key}") if text.strip() else None
        node = out
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise GridError(f"--set {key}: '{'.'.join(parts[: i + 1])}' is not a section")
            node = nxt
        node[parts[-1]] = value
    return out


def _deepcopy(d: Any) -> Any:
    if isinstance(d, Mapping):
        return {k: _deepcopy(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_deepcopy(v) for v in d]
    return d


def parse_grid(d: Mapping[str, Any], where: str, default_name: str = "grid") -> Grid:
    """Validate a grid mapping: types, ranges and names (backbones, presets, pruners, recoverers)."""
    data = dict(d)
    data.setdefault("name", default_name)
    data["name"] = str(data["name"]) if isinstance(data["name"], int | float) else data["name"]
    try:
        grid = validate(Grid, data)
    except ConfigError as e:
        raise GridError(f"{where}: {e}") from None
    return _check_names(grid, where)


def _check_names(grid: Grid, where: str) -> Grid:
    from backbones import get_backbone_spec, list_backbones
    from strategies import list_pruners, list_recoverers

    names = list_backbones(list(grid.backbones))
    for pattern in grid.backbones:
        if names and not list_backbones(pattern):
            raise GridError(f"{where}: backbones: '{pattern}' names no backbone (known: {', '.join(list_backbones())})")
    if not names:
        raise GridError(
            f"{where}: backbones {list(grid.backbones)} match nothing (known: {', '.join(list_backbones())})"
        )
    unknown = sorted(set(grid.by_backbone) - set(names))
    if unknown:
        raise GridError(f"{where}: by_backbone.{unknown[0]}: not one of this grid's backbones ({', '.join(names)})")
    for n in names:
        try:
            presets = grid.for_backbone(n).presets
        except ConfigError as e:
            raise GridError(f"{where}: {e}") from None
        key = f"by_backbone.{n}.presets" if n in grid.by_backbone and grid.by_backbone[n].presets else "presets"
        for pr in presets:
            try:
                get_backbone_spec(n).preset(pr)
            except Exception as e:
                raise GridError(f"{where}: {key}: {one_line(e)}") from None
    sections = [("", grid.pruners, grid.recoverers)]
    sections += [(f"by_backbone.{n}.", o.pruners or [], o.recoverers or []) for n, o in grid.by_backbone.items()]
    all_pruners = [pr for _, prs, _ in sections for pr in prs]
    all_recoverers = [r for _, _, rs in sections for r in rs]
    for at, prs, rs in sections:
        for pr in prs:
            if pr not in list_pruners():
                raise GridError(f"{where}: {at}pruners: unknown pruner '{pr}' (known: {', '.join(list_pruners())})")
        for r in rs:
            if r is not None and r not in list_recoverers():
                names_r = ", ".join(list_recoverers())
                raise GridError(f"{where}: {at}recoverers: unknown recoverer '{r}' (known: {names_r})")
    for key, known in (
        ("backbone_options", names),
        ("pruner_options", all_pruners),
        ("recoverer_options", [r for r in all_recoverers if r] + ["attention", "none"]),
    ):
        for n in getattr(grid, key):
            if n not in known:
                raise GridError(f"{where}: {key}.{n}: not one of this grid's {key.split('_')[0]}s ({', '.join(known)})")
    return grid.model_copy(update={"backbones": names})


def check_data(grid: Grid, measures: Sequence[str]) -> None:
    """Before a run that trains (not a dry run): a real dataset needs ``data.data_root`` holding its files."""
    from bench.data.sources import REAL, required_files

    if grid.data.source not in REAL or "accuracy" not in measures:
        return
    source = grid.data.source
    if not grid.data.data_root:
        raise GridError(
            f"grid '{grid.name}': data.data_root: needed for data.source={source} (--set data.data_root=DIR, the "
            f"folder with {REAL[source]}), or run --only flops,speed"
        )
    for p in required_files(grid.data):
        if not p.is_file():
            raise GridError(f"grid '{grid.name}': data.data_root: {p} does not exist ({REAL[source]})")


def read_grid(
    path: str | os.PathLike[str], sets: Sequence[str] = (), note: Callable[[str], None] | None = None
) -> tuple[Grid, str]:
    """Parse a grid file plus ``--set`` overrides (types, ranges, names) and say where it came from; the
    protocol rules that need the expanded cells are checked by :func:`bench.grid.expand.load_grid`.

    ``note`` hears what a narrowing override dropped (:func:`narrow`)."""
    p = Path(path)
    where = str(p) if not sets else f"{p} (with --set)"
    text = read_grid_text(p)
    d, dropped = narrow(text, apply_sets(text, sets), sets)
    grid = parse_grid(d, where, default_name=p.stem)
    if dropped and note is not None:
        note(f"--set narrowed the grid: dropped {dropped}")
    return grid, where


def _set_keys(sets: Sequence[str]) -> set[str]:
    return {item.partition("=")[0].strip() for item in sets}


def narrow(file: Mapping[str, Any], d: dict[str, Any], sets: Sequence[str]) -> tuple[dict[str, Any], str]:
    """``--set backbones=[...]`` (or ``presets=[...]``) narrowing a grid file: the file's ``by_backbone``
    entries of the backbones it removed are dropped, and, under new ``presets``, the file's per-backbone
    ``presets`` (so the narrowed presets apply to every backbone). Returns the grid mapping and what was
    dropped ('' for nothing). A ``by_backbone`` key the grid file itself does not list stays an error."""
    keys = _set_keys(sets)
    by = d.get("by_backbone")
    if not isinstance(by, dict) or not by:
        return d, ""
    dropped: list[str] = []
    if "backbones" in keys:
        before = set(_matching(file.get("backbones")))
        after = set(_matching(d.get("backbones")))
        own = {k for k in by if any(x == f"by_backbone.{k}" or x.startswith(f"by_backbone.{k}.") for x in keys)}
        gone = [k for k in by if k in before and k not in after and k not in own]
        for k in gone:
            del by[k]
        if gone:
            dropped.append(", ".join(f"by_backbone.{k}" for k in gone) + " (backbones no longer in the grid)")
    if "presets" in keys:
        for k, ov in by.items():
            if isinstance(ov, dict) and "presets" in ov and f"by_backbone.{k}.presets" not in keys:
                del ov["presets"]
                dropped.append(f"by_backbone.{k}.presets (--set presets applies to every backbone)")
    return d, "; ".join(dropped)


def _matching(names: Any) -> list[str]:
    """The registered backbones a ``backbones`` list names (fnmatch patterns); [] for a malformed list."""
    from backbones import list_backbones

    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return []
    return list_backbones(names)
