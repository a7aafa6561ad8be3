"""The pure schedule parser: one-shot, hierarchical, fractions, every invalid case with its message."""

from __future__ import annotations

import pytest

from strategies import Schedule, ScheduleError, parse_axis, parse_schedule, tokens_per_block

MIX = range(1, 8)  # MixSTE's pruning depths


@pytest.mark.parametrize(
    ("tokens", "depths", "stages"),
    [
        (81, 3, ((3, 81),)),  # HoT w. MixSTE
        (61, 7, ((7, 61),)),  # TPC w. MixSTE
        ([121, 81, 41], [2, 4, 6], ((2, 121), (4, 81), (6, 41))),  # H2OT's hierarchical form
        ((121, 41), (1, 7), ((1, 121), (7, 41))),
        (243, 1, ((1, 243),)),  # n = T allowed
        (1, 7, ((7, 1),)),  # n = 1 allowed
        (0.33, 3, ((3, 80),)),  # round(0.33 * 243) = 80
        (1.0, 3, ((3, 243),)),  # a float 1.0 is the whole clip
        (0.001, 3, ((3, 1),)),  # at least one token
        ([0.5, 0.25], [2, 5], ((2, 122), (5, 61))),  # 121.5 rounds half up
        ([121, 0.2], [2, 5], ((2, 121), (5, 49))),
    ],
)
def test_valid_schedules(tokens, depths, stages):
    s = parse_schedule(tokens, depths, 243, MIX)
    assert s == Schedule(stages=stages, frames=243)
    assert s.depths == [k for k, _ in stages] and s.tokens == [n for _, n in stages]


@pytest.mark.parametrize(
    ("tokens", "depths", "message"),
    [
        (244, 3, "token count 244 is outside [1, T = 243]"),
        (0, 3, "token count 0 is outside [1, T = 243]"),
        (-5, 3, "token count -5 is outside [1, T = 243]"),
        (1.5, 3, "token fraction 1.5 is not in (0, 1] (a fraction of T = 243)"),
        (0.0, 3, "token fraction 0.0 is not in (0, 1] (a fraction of T = 243)"),
        (float("nan"), 3, "token fraction nan is not in (0, 1] (a fraction of T = 243)"),
        (True, 3, "token count must be an int or a fraction of T in (0, 1], got True"),
        ("81", 3, "tokens must be numbers, not the string '81' (use parse_axis for CLI text)"),
        ([], 3, "tokens is empty"),
        (81, [], "depths is empty"),
        (81, 0, "depth 0 is outside this backbone's pruning depths (1..7)"),
        (81, 8, "depth 8 is outside this backbone's pruning depths (1..7)"),
        (81, 2.0, "depth must be an int, got 2.0"),
        ([121, 81], [3], "tokens has 2 value(s) but depths has 1: give one of each per stage"),
        (81, [2, 4], "tokens has 1 value(s) but depths has 2: give one of each per stage"),
        ([121, 81], [4, 2], "depths must increase strictly from stage to stage, got [4, 2]"),
        ([121, 81], [4, 4], "depths must increase strictly from stage to stage, got [4, 4]"),
        ([81, 121], [2, 4], "tokens must decrease strictly from stage to stage, got [81, 121]"),
        ([81, 81], [2, 4], "tokens must decrease strictly from stage to stage, got [81, 81]"),
        ([0.25, 61], [2, 4], "tokens must decrease strictly from stage to stage, got [61, 61]"),
    ],
)
def test_invalid_schedules(tokens, depths, message):
    with pytest.raises(ScheduleError) as e:
        parse_schedule(tokens, depths, 243, MIX)
    assert str(e.value) == message
    assert isinstance(e.value, ValueError) and "\n" not in str(e.value)


def test_invalid_frames_and_sparse_depths():
    with pytest.raises(ScheduleError, match="frames T must be a positive int"):
        parse_schedule(1, 1, 0, MIX)
    with pytest.raises(ScheduleError, match=r"pruning depths \(1, 3\)$"):
        parse_schedule(5, 2, 27, [1, 3])
    with pytest.raises(ScheduleError, match=r"pruning depths \(none\)$"):
        parse_schedule(5, 1, 27, [])


def test_tokens_per_block():
    s = parse_schedule([121, 81, 41], [2, 4, 6], 243, MIX)
    assert tokens_per_block(s, 8) == [243, 243, 121, 121, 81, 81, 41, 41]
    assert tokens_per_block(parse_schedule(81, 3, 243, MIX), 8) == [243] * 3 + [81] * 5
    assert tokens_per_block(Schedule((), 243), 3) == [243, 243, 243]
    # a backbone whose blocks 3.. subsample time by 3 (StridedTransformer-like)
    s = parse_schedule(117, 1, 351, range(1, 4))
    shrink = lambda i, c: c if i < 3 else (c - 1) // 3 + 1  # noqa: E731
    assert tokens_per_block(s, 6, shrink=shrink) == [351, 117, 117, 117, 39, 13]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("81", 81),
        (" 81 ", 81),
        ("0.33", 0.33),
        ("81,41", [81, 41]),
        ("121, 81 ,41", [121, 81, 41]),
        ("0.5,20", [0.5, 20]),
        ("1.0", 1.0),
        (81, 81),
        ([3, 6], [3, 6]),
    ],
)
def test_parse_axis(text, value):
    out = parse_axis(text)
    assert out == value and type(out) is type(value)
    if isinstance(value, list):
        assert [type(v) for v in out] == [type(v) for v in value]


@pytest.mark.parametrize("text", ["", "81,", ",81", "eighty", "81;41", "8 1"])
def test_parse_axis_errors(text):
    with pytest.raises(ScheduleError, match="cannot parse"):
        parse_axis(text)


def test_cli_axes_feed_the_parser():
    s = parse_schedule(parse_axis("121,81,41"), parse_axis("2,4,6"), 243, MIX)
    assert s.stages == ((2, 121), (4, 81), (6, 41))
    assert str(s) == "T=243 -> 121@2 -> 81@4 -> 41@6"
