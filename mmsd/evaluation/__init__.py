"""Evaluation: the paper's protocol (Table 1, ablation, per-emotion gains, rate sweeps), metrics, BD-rate,
figures, and the speed benchmark.

Imports `restore`, `sender`, `models`, `data` and `media`; never `training`.
"""
