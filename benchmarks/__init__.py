"""Benchmarks: run each as ``python -m benchmarks.<name> [--quick]`` from the repository root.

Results (Markdown for reading, JSON for tools) go to ``benchmarks/results/`` through
:func:`benchmarks._common.write_results`, with the machine, library versions and date;
``--quick`` runs go to ``benchmarks/results/quick/`` (ignored by git, never the committed
results) unless ``--results-dir`` names another folder. MNIST is found without an
environment variable when it sits in ``shared/data/mnist`` next to the checkout
(``$INVDIFF_MNIST_DIR`` or ``--data-dir`` point elsewhere).
"""
