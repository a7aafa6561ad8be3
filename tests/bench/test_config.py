"""bench.config: the configuration models validate every copy, not only the first."""

from __future__ import annotations

import pytest

from bench.config import ConfigError, ModelConfig, TrainConfig


def test_replace_validates_the_copy():
    cfg = ModelConfig.create("mixste", "tiny", "cluster", None, 9, 1)
    assert cfg.replace(pruner="none", tokens=(), depths=()) == ModelConfig.create("mixste", "tiny")
    with pytest.raises(ConfigError, match="tokens/depths need a pruner"):
        cfg.replace(pruner="none")  # a contradiction a plain copy let through
    tc = TrainConfig(steps=10)
    assert tc.replace(steps=20).steps == 20
    with pytest.raises(ConfigError, match="steps"):
        tc.replace(steps=0)
