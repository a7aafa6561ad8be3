"""Benchmarks: figures for notes and papers (`run_bench.py speedup`: speedup against FLOPs ratio; `run_bench.py
precision`: bf16/fp16 against fp32); the accuracy study is the `study` grid.

A benchmark is not a test: these print tables for closing notes and papers. They are built on
``bench.measure``, ``bench.training`` and ``bench.grid``.
"""
