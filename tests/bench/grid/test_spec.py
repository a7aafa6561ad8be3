"""Grid files under ``--set``: narrowing overrides drop what no longer applies, and say so; typos are errors."""

from __future__ import annotations

import pytest

from bench.grid import grid_source, load_grid
from bench.grid.spec import GridError


def test_narrowing_the_backbones_drops_their_overrides_and_keeps_the_others():
    notes: list[str] = []
    grid = load_grid(grid_source("quick"), ["backbones=[mixste, strided]"], notes.append)
    assert grid.backbones == ["mixste", "strided"]
    assert sorted(grid.by_backbone) == ["mixste", "strided"]
    assert grid.for_backbone("mixste").train.steps == 60  # the remaining overrides still apply
    assert grid.for_backbone("strided").baseline["steps"] == 1000
    assert notes == [
        "--set narrowed the grid: dropped by_backbone.motionbert, by_backbone.mhformer (backbones "
        "no longer in the grid)"
    ]


def test_narrowing_presets_lets_them_apply_to_every_backbone():
    notes: list[str] = []
    grid = load_grid(
        grid_source("full"),
        ["presets=[tiny]", "backbones=[strided]", "tokens=[9]", "depths=[1]", "schedules=[]"],
        notes.append,
    )
    assert grid.for_backbone("strided").presets == ["tiny"] and len(notes) == 1
    assert "by_backbone.strided.presets" in notes[0]


@pytest.mark.parametrize(
    "sets, message",
    [
        (["backbones=[strided, mixstee]"], "'mixstee' names no backbone"),
        (["backbones=[strided]", "by_backbone.mixste.train.steps=5"], "by_backbone.mixste: not one of this grid"),
        (["by_backbone.nosuch.train.steps=5"], "by_backbone.nosuch"),
    ],
)
def test_a_name_that_is_no_backbone_of_the_grid_stays_an_error(sets, message):
    with pytest.raises(GridError, match=message):
        load_grid(grid_source("quick"), sets)


def test_a_file_override_of_a_backbone_the_file_does_not_list_stays_an_error(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("backbones: [strided]\npresets: [tiny]\nby_backbone: {mixste: {train: {steps: 5}}}\n")
    with pytest.raises(GridError, match=r"by_backbone\.mixste"):
        load_grid(path, ["backbones=[strided]"])
