"""The ``--quick`` modes of the image benchmarks run end to end and write well-formed results.

Slow (up to about a minute each on one CPU thread), so outside the default run; CI runs them
with ``pytest -m slow tests/test_benchmarks_quick.py``. ``validity`` needs nothing; ``speed``
needs the MNIST prior; ``quantized_cs`` also needs the MNIST test file (``$INVDIFF_MNIST_DIR``,
or found in ``shared/data/mnist`` next to the checkout); ``restoration`` uses MNIST when it
has it, else the bundled natural crops. The prior is the bundled one, or the export folder
named by ``$INVDIFF_BENCH_WEIGHTS`` (e.g. an unfinished training run); what is missing skips.
Results go to a temporary folder (``--results-dir``); one run checks the default, the
gitignored ``benchmarks/results/quick/``, and that no committed result changes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os

import pytest

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch")
pytest.importorskip("matplotlib")


def _prior(name):
    from benchmarks import _images

    weights = os.environ.get("INVDIFF_BENCH_WEIGHTS")
    if _images.find_weights(name, weights) is None:
        pytest.skip(f"no {name} prior weights ({weights or 'bundled'})")
    return weights


def _has_mnist():
    from benchmarks import _images

    return _images.mnist_available(_images.default_mnist_dir())


def _inputs():
    weights = _prior("mnist")
    if not _has_mnist():
        pytest.skip("no MNIST data")
    return weights, None


def _args(weights, out):
    args = ["--quick", "--results-dir", str(out)]
    return args + (["--weights-dir", weights] if weights else [])


def _load(out, stem, examples=True):
    payload = json.loads((out / f"{stem}.json").read_text())
    assert (out / f"{stem}.md").read_text().startswith(f"# {stem.replace('-quick', '')}")
    for png in (f"{stem}.png",) + ((f"{stem}-examples.png",) if examples else ()):
        assert (out / png).stat().st_size > 1000
    for key in ("date_utc", "versions", "machine", "git_commit"):
        assert key in payload["environment"]
    assert payload["settings"]["seed"] == 0
    assert len(payload["table"]) > 0
    if isinstance(payload["rows"], list):  # one table line per measured row
        assert len(payload["table"]) == len(payload["rows"])
    return payload


def test_restoration_quick(tmp_path):
    dataset = "mnist" if _has_mnist() else "natural"
    weights = _prior(dataset)
    from benchmarks import restoration

    restoration.main(_args(weights, tmp_path) + ["--datasets", dataset])
    payload = _load(tmp_path, "restoration-quick")
    rows = payload["rows"]
    # every task x method present once, on the same 8 test images (colorization: RGB only)
    tasks = {r["task"] for r in rows}
    assert len(tasks) == (6 if dataset == "mnist" else 7)
    assert len(rows) == len(tasks) * len(restoration.METHODS)
    assert {r["method"] for r in rows} == set(restoration.METHODS)
    for r in rows:
        assert r["n"] == 8 and len(r["psnr"]) == 8
        assert r["n_finite"] == 8, (r["task"], r["method"])
        assert math.isfinite(r["psnr_mean"]) and 0.0 < r["ssim_mean"] <= 1.0
        assert r["seconds_per_image"] > 0
        # the data fit of every image: a ratio to the noise level, never zero or negative
        assert len(r["consistency"]) == 8 and r["consistency_mean"] > 0.1
    # the baselines picked their lambda on validation images from the grid
    grid = payload["settings"]["lambda_grid"]
    assert all(r["lambda"] in grid for r in rows if r["family"] == "sparsity")


def test_quantized_cs_quick(tmp_path):
    weights, _ = _inputs()
    from benchmarks import quantized_cs

    quantized_cs.main(_args(weights, tmp_path))
    payload = _load(tmp_path, "quantized_cs-quick")
    rows = payload["rows"]
    part1 = [r for r in rows if r["part"] == "1"]
    part2 = [r for r in rows if r["part"] == "2"]
    # 3 bit depths x (DAPS + 2 eps of QCS-SGM + Lasso) + BIHT at 1 bit
    assert len(part1) == 3 * 4 + 1
    # 2 matrices x (DAPS + 2 eps x (QCS-SGM + 4 EP iteration counts))
    assert len(part2) == 2 * (1 + 2 * (1 + len(quantized_cs.EP_ITERS)))
    assert sum(r["method"] == "DAPS" for r in rows) == 3 + 2
    for r in rows:
        assert r["n"] == 8 and len(r["psnr"]) == 8
        if r["expect_finite"]:  # the paper's eps may legitimately diverge; others may not
            assert r["n_finite"] == 8 and math.isfinite(r["psnr_mean"]), r["method"]
        # the reported eps is the reference's; the run used 4x that in [-1, 1] units
        if r["eps_reference_units"] is not None:
            assert r["eps_used"] == pytest.approx(4 * r["eps_reference_units"])


def test_validity_quick(tmp_path):
    from benchmarks import validity

    rows = validity.main(["--quick", "--results-dir", str(tmp_path)])
    payload = _load(tmp_path, "validity-quick", examples=False)
    assert len(payload["rows"]) == len(rows) > 0
    oracle = next(r for r in rows if "oracle" in r["method"])
    # the exact likelihood with the exact prior score must sample the exact posterior
    assert oracle["finite"] and oracle["ratio"] < 2.0
    for r in rows:
        assert r["floor"] > 0
        assert r["nfe"] is None or r["nfe"] > 0


def test_validation_choices_quick(tmp_path):
    dataset = "mnist" if _has_mnist() else "natural"
    weights = _prior(dataset)
    from benchmarks import validation_choices

    args = ["--quick", "--datasets", dataset, "--results-dir", str(tmp_path)]
    rows, chosen = validation_choices.main(args + (["--weights-dir", weights] if weights else []))
    payload = _load(tmp_path, "validation_choices-quick", examples=False)
    assert len(payload["rows"]) == len(rows) > 0
    # one row per task and candidate; each method's pick is one of its candidates
    assert {r["method"] for r in rows} == {"DPS-flow", "PiGDM", "OT-ODE", "TV"}
    assert set(chosen) == {"DPS-flow", "PiGDM", "OT-ODE"}  # TV is a reference, not a pick
    for method, c in chosen.items():
        candidates = {r["setting"] for r in rows if r["method"] == method}
        assert c["best"] in candidates and set(c["per_task"].values()) <= candidates
    assert payload["settings"]["picks"] == {m: c["best"] for m, c in chosen.items()}


def test_speed_quick(tmp_path):
    weights = _prior("mnist")
    from benchmarks import speed

    args = ["--quick", "--results-dir", str(tmp_path)]
    rows = speed.main(args + (["--weights-dir", weights] if weights else []))
    payload = _load(tmp_path, "speed-quick", examples=False)
    methods = {r["method"]: r for r in rows["methods"]}
    assert set(methods) >= {"DMPS", "DPS", "PiGDM", "DMPS-flow", "DPS-flow", "OT-ODE",
                            "QCS-SGM", "QCS-SGM+ (EP 5)"}
    assert methods["DMPS"]["time_vs_dmps"] == 1.0
    assert all(r["nfe"] > 0 and r["seconds_per_image"] > 0 for r in methods.values())
    ep = payload["rows"]["ep"]
    assert len(ep) == 3 * 2 * 2  # M x batch (1, 16) x backend (torch, numpy)
    assert all(r["ep"] > 0 and r["floor"] > 0 for r in ep)
    ops = payload["rows"]["op_counts"]
    # the vectorised truncated-normal moments: a few hundred operations per EP call (was 4532)
    assert 0 < ops["ep_call_1bit"] < ops["ep_call_3bit"] < 1500 and ops["dmps_step"] > 0


def test_gpu_quick(tmp_path):
    """The prepared GPU check runs end to end on the CPU (tiny ADM, few steps, small EP)."""
    from benchmarks import gpu

    rows = gpu.main(["--device", "cpu", "--quick", "--results-dir", str(tmp_path)])
    payload = json.loads((tmp_path / "gpu-quick.json").read_text())
    assert (tmp_path / "gpu-quick.md").read_text().startswith("# gpu-quick")
    tests = rows["tests"]
    assert tests["exit_code"] in (0, 5) and tests["counts"].get("failed", 0) == 0
    assert tests["counts"]["skipped"] > 0  # the CUDA/CuPy parameters, without a GPU
    adm = rows["adm"]
    assert [r["method"] for r in adm["runs"]] == ["dmps", "dps"]
    assert all(r["finite"] and r["seconds"] > 0 for r in adm["runs"])
    assert adm["syncs_per_dmps_step"] == 0
    assert len(rows["ep"]) == 2 and all(r["ep_ms"] > 0 for r in rows["ep"])
    assert "skipped" in rows["cupy"] or rows["cupy"]["finite"]
    assert len(payload["table"]) >= 7


def test_quick_without_results_dir_leaves_committed_results_alone():
    """``--quick`` with no ``--results-dir`` writes to ``benchmarks/results/quick/`` only."""
    from benchmarks import _common, sampler_overhead

    def digests():
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                for p in _common.RESULTS.glob("*") if p.is_file()}

    before = digests()
    sampler_overhead.main(["--quick"])
    assert digests() == before
    out = _common.QUICK_RESULTS / "sampler_overhead-quick.json"
    assert json.loads(out.read_text())["name"] == "sampler_overhead-quick"


def test_sweep_scaling_quick(tmp_path):
    """The sweep engine's scaling benchmark runs and writes its rows (numbers: see its notes)."""
    weights = _prior("mnist")
    if weights is not None or not _has_mnist():
        pytest.skip("sweep_scaling uses the bundled MNIST prior and the MNIST test file")
    pytest.importorskip("distributed")
    from benchmarks import sweep_scaling

    rows = sweep_scaling.main(["--quick", "--units", "4", "--noop", "50",
                               "--results-dir", str(tmp_path)])
    payload = _load(tmp_path, "sweep_scaling-quick", examples=False)
    assert [r["run"] for r in rows][:2] == ["recipe called directly", "engine, serial"]
    assert len(rows) == 4 and all(r["units_per_second"] > 0 for r in rows)
    assert payload["settings"]["record_bytes"] > 100
