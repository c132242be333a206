"""Benchmarks: run each as ``python -m benchmarks.<name> [--quick]`` from the repository root.

Results (Markdown for reading, JSON for tools) go to ``benchmarks/results/`` through
:func:`benchmarks._common.write_results`, with the machine, library versions and date.
"""
