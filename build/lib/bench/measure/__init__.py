"""Measurement: FLOPs (``flops/``), speed (``speed``), pose-accuracy metrics (``metrics``), environment.

Owns every number that describes a model's cost or a prediction's error. Imports ``backbones``,
``strategies`` and ``bench.config`` only; never ``bench.grid``, ``bench.report``, ``bench.training``
or ``bench.cli`` (checked by ``tests/bench/test_layers.py``).
"""
