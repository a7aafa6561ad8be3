"""Training and evaluation of one configuration: the loop, the objectives, evaluation, checkpoints.

Owns how a model is optimised (scratch / finetune / training-free) and scored. Imports
``backbones``, ``strategies``, ``bench.config``, ``bench.data`` and ``bench.measure``; never
``bench.grid``, ``bench.report`` or ``bench.cli``.
"""
