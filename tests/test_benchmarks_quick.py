"""The ``--quick`` modes of the image benchmarks run end to end and write well-formed results.

Slow (about a minute each on one CPU thread); run with ``pytest -m slow
tests/test_benchmarks_quick.py``. They need the MNIST test file (``$INVDIFF_MNIST_DIR`` or
``../shared/data/mnist``) and the MNIST prior: the bundled weights, or the export folder named
by ``$INVDIFF_BENCH_WEIGHTS`` (e.g. an unfinished training run); otherwise they skip.
Results go to a temporary folder, not ``benchmarks/results``.
"""

from __future__ import annotations

import json
import math
import os

import pytest

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")


def _inputs():
    from benchmarks import _images

    weights = os.environ.get("INVDIFF_BENCH_WEIGHTS")
    if _images.find_weights("mnist", weights) is None:
        pytest.skip(f"no MNIST prior weights ({weights or 'bundled'})")
    data = _images.default_mnist_dir()
    if not _images.mnist_available(data):
        pytest.skip(f"no MNIST data in {data}")
    return weights, _images


def _args(weights, out):
    args = ["--quick", "--results-dir", str(out)]
    return args + (["--weights-dir", weights] if weights else [])


def _load(out, stem):
    payload = json.loads((out / f"{stem}.json").read_text())
    assert (out / f"{stem}.md").read_text().startswith(f"# {stem.replace('-quick', '')}")
    for png in (f"{stem}.png", f"{stem}-examples.png"):
        assert (out / png).stat().st_size > 1000
    for key in ("date_utc", "versions", "machine", "git_commit"):
        assert key in payload["environment"]
    assert payload["settings"]["seed"] == 0
    assert len(payload["table"]) == len(payload["rows"]) > 0
    return payload


def test_restoration_quick(tmp_path):
    weights, images = _inputs()
    from benchmarks import restoration

    restoration.main(_args(weights, tmp_path) + ["--datasets", "mnist"])
    payload = _load(tmp_path, "restoration-quick")
    rows = payload["rows"]
    # every task x method present once, on the same 8 test images
    tasks = {r["task"] for r in rows}
    assert len(tasks) == 6
    assert len(rows) == len(tasks) * len(restoration.METHODS)
    assert {r["method"] for r in rows} == set(restoration.METHODS)
    for r in rows:
        assert r["n"] == 8 and len(r["psnr"]) == 8
        assert r["n_finite"] == 8, (r["task"], r["method"])
        assert math.isfinite(r["psnr_mean"]) and 0.0 < r["ssim_mean"] <= 1.0
        assert r["seconds_per_image"] > 0
    # the baselines picked their lambda on validation images from the grid
    grid = payload["settings"]["lambda_grid"]
    assert all(r["lambda"] in grid for r in rows if r["family"] == "sparsity")


def test_quantized_cs_quick(tmp_path):
    weights, images = _inputs()
    from benchmarks import quantized_cs

    quantized_cs.main(_args(weights, tmp_path))
    payload = _load(tmp_path, "quantized_cs-quick")
    rows = payload["rows"]
    part1 = [r for r in rows if r["part"] == "1"]
    part2 = [r for r in rows if r["part"] == "2"]
    # 3 bit depths x (2 eps of QCS-SGM + Lasso) + BIHT at 1 bit
    assert len(part1) == 3 * 3 + 1
    # 2 matrices x 2 eps x (QCS-SGM + 4 EP iteration counts)
    assert len(part2) == 2 * 2 * (1 + len(quantized_cs.EP_ITERS))
    for r in rows:
        assert r["n"] == 8 and len(r["psnr"]) == 8
        if r["expect_finite"]:  # the paper's eps may legitimately diverge; others may not
            assert r["n_finite"] == 8 and math.isfinite(r["psnr_mean"]), r["method"]
        # the reported eps is the reference's; the run used 4x that in [-1, 1] units
        if r["eps_reference_units"] is not None:
            assert r["eps_used"] == pytest.approx(4 * r["eps_reference_units"])
