"""Benchmarks: scripts that report figures (speedup against FLOPs ratio); the accuracy study is the `study` grid.

A benchmark is not a test: these print tables for closing notes and papers. They are built on
``bench.measure``, ``bench.training`` and ``bench.grid``.
"""
