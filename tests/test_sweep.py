"""The sweep engine: records identical serially and on Dask workers, resume, failures, errors.

The sweeps here use an exact Gaussian-mixture prior on 16×16 images (NumPy only, no torch),
so each unit takes milliseconds and the tests measure the engine, not the network.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket

import numpy as np
import pytest

import invdiff as ivd
import invdiff.sweep as sw
from invdiff.sweep._keys import canonical

SHAPE = (1, 16, 16)


@pytest.fixture
def tiny(tmp_path):
    """A 3-component GMM prior, 8 test + 4 validation images drawn from it, and a spec."""
    K, d = 3, int(np.prod(SHAPE))
    yy, xx = np.mgrid[0:16, 0:16] / 15.0
    means = np.stack([0.7 * np.cos(np.pi * (k + 1) * xx) * np.cos(np.pi * k * yy)
                      for k in range(K)]).reshape(K, d)
    covs = np.full((K, d), 0.02)
    weights = np.array([0.5, 0.3, 0.2])
    np.savez(tmp_path / "gmm.npz", weights=weights, means=means, covs=covs)
    prior = ivd.priors.GaussianMixturePrior(weights, means, covs,
                                            process=ivd.processes.VP.linear())
    u = np.clip((prior.sample(12, ivd.random.Generator(1)) + 1) / 2, 0, 1).reshape(12, *SHAPE)
    np.savez(tmp_path / "images.npz", images=u[:8], val=u[8:])
    spec = {
        "name": "tiny", "batch": 4, "seeds": [0],
        "priors": {"gmm": {"gmm": "gmm.npz", "shape": list(SHAPE)}},
        "data": {"toy": {"prior": "gmm", "source": "npz", "path": "images.npz",
                         "val_key": "val"}},
        "tasks": {"sr2": {"operator": "super_resolution", "factor": 2, "sigma_y": 0.05},
                  "inpaint": {"operator": "inpainting", "observed": 0.5, "sigma_y": 0.05}},
        "methods": {"DMPS": {"steps": 20}, "DPS": {"steps": 20},
                    "TV": {"recipe": "tv", "grid": [0.01, 0.1], "iters": 30},
                    "Broken": {"recipe": "dmps", "steps": 0}},
    }
    return spec, tmp_path


def _records(out) -> dict:
    """key -> canonical record text without what legitimately varies (cost, traceback)."""
    recs = {}
    for path in sorted(pathlib.Path(out, "records").glob("*.json")):
        r = json.loads(path.read_text())
        r.pop("cost")
        if r["error"]:
            r["error"].pop("traceback")
        recs[r["key"]] = canonical(r)
    return recs


def test_serial_records_resume_and_failures(tiny):
    spec, base = tiny
    out = base / "out"
    seen = []

    def interrupt(record):
        seen.append(record)
        if len(seen) == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sw.run(spec, out, scheduler="serial", base=base, progress=False, on_record=interrupt)
    assert len(_records(out)) == 5  # what arrived before the interrupt is on disk
    summary = sw.run(spec, out, scheduler="serial", base=base, progress=False,
                     retry_failed=False)
    n_units = 2 * 4 * 2  # tasks x methods x batches
    assert summary["units"] == n_units
    assert summary["done_before"] == 5 and summary["computed"] == n_units - 5
    records = [json.loads(p.read_text()) for p in (out / "records").glob("*.json")]
    assert len(records) == n_units
    failed = [r for r in records if r["status"] == "failed"]
    # the broken method fails on every unit, with its error; everything else went on
    assert {r["spec"]["method"]["args"]["steps"] for r in failed} == {0}
    assert len(failed) == 4 and all("steps" in r["error"]["message"] for r in failed)
    for r in records:
        if r["status"] == "ok":
            m = r["metrics"]
            assert len(m["psnr"]) == len(r["spec"]["images"]) == 4
            assert all(np.isfinite(m["psnr"])) and all(0 < s <= 1 for s in m["ssim"])
            assert all(c > 0 for c in m["consistency"])
            assert r["cost"]["seconds"] > 0
    # a finished sweep reruns nothing (the failed units were kept: retry_failed=False)
    again = sw.run(spec, out, scheduler="serial", base=base, progress=False,
                   retry_failed=False)
    assert again["computed"] == 0 and again["done_before"] == n_units
    # the same measurement for every method: the baselines tuned on validation
    tv = [r for r in records if r["spec"]["method"]["recipe"] == "tv"]
    assert all(r["metrics"]["selected"]["lam"] in (0.01, 0.1) for r in tv)
    text = sw.report(out)
    assert "DMPS − DPS" in text and "Broken" in text and (out / "report.json").is_file()


def test_changed_spec_recomputes_only_what_changed(tiny):
    spec, base = tiny
    out = base / "out"
    del spec["methods"]["Broken"]
    first = sw.run(spec, out, scheduler="serial", base=base, progress=False)
    spec["methods"]["DPS"]["by_task"] = {"inpaint": {"zeta": 0.5}}  # 2 DPS units change
    spec["methods"]["DMPS (renamed)"] = {"recipe": "dmps", "steps": 20}  # same units as DMPS
    del spec["methods"]["DMPS"]
    second = sw.run(spec, out, scheduler="serial", base=base, progress=False)
    assert first["computed"] == 12
    assert second["computed"] == 2 and second["done_before"] == 10


def test_unit_keys_and_streams_depend_on_the_unit_only(tiny):
    spec, base = tiny
    units = {(u.method, u.task, u.images): u for u in sw.load_spec(spec, base=base).units()}
    grown = dict(spec, data={"toy": {**spec["data"]["toy"], "test": 6}}, batch=4)
    grown["tasks"] = {"inpaint": spec["tasks"]["inpaint"]}
    other = {(u.method, u.task, u.images): u for u in sw.load_spec(grown, base=base).units()}
    # fewer images, one task less: the units that remain keep their keys
    assert other[("DMPS", "inpaint", (0, 1, 2, 3))].key == units[("DMPS", "inpaint",
                                                                  (0, 1, 2, 3))].key
    assert ("DMPS", "inpaint", (4, 5)) in other
    # measurement noise: one stream per image, shared by methods and batch sizes
    from invdiff.sweep._execute import noise

    s = units[("DMPS", "sr2", (4, 5, 6, 7))].spec
    like = np.zeros(1)
    a = noise(s, "test", [5, 6], (3,), like)
    b = noise(dict(s, method={"recipe": "dps", "args": {}}), "test", [6], (3,), like)
    assert np.array_equal(a[1], b[0]) and not np.array_equal(a[0], a[1])


@pytest.mark.parametrize("change, match", [
    (lambda s: s["methods"].update(DMSP={}), "methods.DMSP.recipe: unknown recipe 'dmsp'"),
    (lambda s: s["methods"]["DPS"].update(zeeta=1.0), r"methods.DPS: dps takes no argument"),
    (lambda s: s["tasks"]["sr2"].update(operator="sr8"), "tasks.sr2.operator must be one of"),
    (lambda s: s["data"]["toy"].update(prior="nope"), "data.toy.prior must name"),
    (lambda s: s["priors"].update(x={"bundled": "cifar"}), "priors.x.bundled: unknown prior"),
    (lambda s: s["data"].update(pics={"prior": "gmm", "source": "folder", "path": "nowhere"}),
     "data.pics.path: folder not found"),
    (lambda s: s["methods"]["TV"].pop("grid"), "methods.TV.grid is required"),
    (lambda s: s["methods"]["DMPS"].update(by_task={"sr3": {}}), "by_task: unknown"),
])
def test_bad_spec_is_one_clear_error_before_anything_runs(tiny, change, match):
    spec, base = tiny
    change(spec)
    with pytest.raises(sw.SweepError, match=match):
        sw.run(spec, base / "out", scheduler="serial", base=base, progress=False)
    assert not (base / "out").exists()


def test_unreachable_scheduler_is_one_error_before_anything_runs(tiny):
    pytest.importorskip("distributed")
    spec, base = tiny
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(sw.SweepError, match="cannot reach tcp://127.0.0.1"):
        sw.run(spec, base / "out", scheduler=f"tcp://127.0.0.1:{port}", base=base,
               progress=False, timeout=1.0)
    assert not (base / "out").exists()
    with pytest.raises(sw.SweepError, match="--scheduler must be"):
        sw.run(spec, base / "out", scheduler="localhost", base=base, progress=False)


def test_cli_sweep_run_report_and_errors(tiny, capsys):
    from invdiff.cli import main

    spec, base = tiny
    del spec["methods"]["Broken"]
    path = base / "spec.json"
    path.write_text(json.dumps(spec))
    out = base / "out"
    assert main(["sweep", "run", str(path), "--out", str(out), "--scheduler", "serial",
                 "--no-progress"]) == 0
    assert "12 units: 0 already done, 12 computed" in capsys.readouterr().out
    assert main(["sweep", "report", str(out)]) == 0
    assert "| toy | sr2 | DMPS |" in capsys.readouterr().out
    spec["methods"]["DPS"]["zeeta"] = 1
    path.write_text(json.dumps(spec))
    assert main(["sweep", "run", str(path), "--out", str(out), "--scheduler", "serial"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "methods.DPS" in err and "Traceback" not in err
    assert main(["sweep", "report", str(base / "nothing")]) == 2
    assert "DIR: no sweep.json" in capsys.readouterr().err


def _cluster():
    distributed = pytest.importorskip("distributed")
    import logging

    return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                    silence_logs=logging.ERROR, dashboard_address=None)


def test_local_cluster_records_equal_serial(tiny):
    spec, base = tiny
    spec["seeds"] = [0, 1]
    sw.run(spec, base / "serial", scheduler="serial", base=base, progress=False)
    with _cluster() as cluster:
        summary = sw.run(spec, base / "dask", scheduler=cluster.scheduler_address, base=base,
                         progress=False)
    assert summary["computed"] == 32 and summary["failed"] == 8
    serial, dask = _records(base / "serial"), _records(base / "dask")
    assert len(serial) == 32 and serial == dask


@pytest.mark.slow
def test_killed_worker_loses_nothing(tiny):
    """A worker process killed mid-sweep: its units run elsewhere, records as serial."""
    distributed = pytest.importorskip("distributed")
    spec, base = tiny
    spec["batch"] = 1
    spec["methods"] = {"DMPS": {"steps": 400}, "DPS": {"steps": 200}}
    sw.run(spec, base / "serial", scheduler="serial", base=base, progress=False)
    killed = []
    with _cluster() as cluster, distributed.Client(cluster) as client:
        def kill_busy_worker(record):
            if killed:
                return
            busy = [w for w, tasks in client.processing().items() if tasks]
            if busy:
                pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                os.kill(pid, signal.SIGKILL)
                killed.append(busy[0])

        summary = sw.run(spec, base / "dask", scheduler=cluster.scheduler_address, base=base,
                         progress=False, on_record=kill_busy_worker)
    assert killed, "no worker was busy to kill"
    assert summary["computed"] == 32 and summary["failed"] == 0
    assert _records(base / "serial") == _records(base / "dask")


def test_interrupted_client_on_a_cluster_resumes(tiny):
    spec, base = tiny
    seen = []

    def interrupt(record):
        seen.append(record)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with _cluster() as cluster:
        with pytest.raises(KeyboardInterrupt):
            sw.run(spec, base / "dask", scheduler=cluster.scheduler_address, base=base,
                   progress=False, on_record=interrupt)
        assert len(_records(base / "dask")) == 3
        summary = sw.run(spec, base / "dask", scheduler=cluster.scheduler_address, base=base,
                         progress=False, retry_failed=False)
    assert summary["done_before"] == 3 and summary["computed"] == 16 - 3
    sw.run(spec, base / "serial", scheduler="serial", base=base, progress=False)
    assert _records(base / "serial") == _records(base / "dask")


def test_quantized_task_change_of_variables_and_shared_matrix(tiny):
    """The sampler's likelihood in prior units is the measured one: with no noise, A/s x
    lands in the shifted bins for every measurement; 1- and 2-bit tasks share the matrix."""
    from invdiff.sweep import _execute, _priors

    spec, base = tiny
    spec["tasks"] = {f"cs{b}": {"operator": "gaussian_matrix", "M": 64, "sigma": 0.0, "bits": b}
                     for b in (1, 2)}
    spec["methods"] = {"QCS-SGM": {"levels": 5, "sigma_max": 1.0, "sigma_min": 0.01}}
    units = sw.load_spec(spec, base=base).units()
    problems = []
    for u in units[::2]:  # the first batch of each task
        prior = u.spec["prior"]
        model = _priors.load_prior(prior["name"], prior["spec"], str(base), "cpu")
        problems.append(_execute.Problem(u.spec, str(base), model, "numpy", "cpu"))
    for p in problems:
        A_x, lower, upper = p.in_model_units()
        z = p.x.reshape(len(p.x), -1) @ A_x.T
        assert np.all((z >= lower - 1e-12) & (z < upper + 1e-12))
        assert _execute.consistency(p, p.x) == pytest.approx([1.0] * len(p.x), abs=0.02)
    assert np.array_equal(problems[0].A, problems[1].A)
    spec["tasks"]["cs1"]["sigma"] = 0.05  # the recipe itself needs noise
    unit = sw.load_spec(spec, base=base).units()[0]
    record, _ = _execute.execute({"key": "k", "spec": unit.spec, "base": str(base)})
    assert record["status"] == "ok", record["error"]


def test_folder_source_gives_the_same_images_as_the_npz(tiny):
    from PIL import Image

    spec, base = tiny
    images = np.load(base / "images.npz")["images"]
    (base / "pngs").mkdir()
    raw = np.round(images[:4, 0] * 255).astype(np.uint8)
    for i, a in enumerate(raw):
        Image.fromarray(a).save(base / "pngs" / f"img{i}.png")
    spec["data"] = {"pics": {"prior": "gmm", "source": "folder", "path": "pngs"}}
    spec["methods"] = {"DMPS": {"steps": 5}}
    sweep = sw.load_spec(spec, base=base)
    assert {u.images for u in sweep.units()} == {("img0.png", "img1.png", "img2.png",
                                                 "img3.png")}
    from invdiff.sweep import _data

    x, scale = _data.images("pics", spec["data"]["pics"], base, ["img2.png"], "test")
    assert x.shape == (1, 1, 16, 16) and np.allclose(x[0, 0] * 255 / scale, raw[2])
    summary = sw.run(sweep, base / "out", scheduler="serial", progress=False)
    assert summary["computed"] == 2 and summary["failed"] == 0


@pytest.mark.parametrize("task, label, args", [
    ("sr2", "DiffPIR", {"steps": 4, "lam": 0.5, "zeta": 0.25}),
    ("sr2", "DAPS", {"annealing_steps": 3, "langevin_steps": 3, "ode_steps": 2,
                     "sigma_max": 20.0}),
    ("sr2", "RED-diff", {"steps": 4, "lam": 16.0}),
    ("cs1", "DAPS", {"annealing_steps": 3, "langevin_steps": 3, "lr": 2e-3,
                     "lr_min_ratio": 1.0}),
])
def test_decoupled_units_call_the_recipe_as_the_benchmarks(tiny, task, label, args):
    """A unit's sample is the recipe's own call: DiffPIR from the shared N(0, I) draw, DAPS
    from sigma_max times it (Gaussian tasks) or its own start with bin edges as a pair
    (quantized), RED-diff without sigma_y from its own start A⁺y."""
    from invdiff.sweep import _execute, _priors

    spec, base = tiny
    spec["tasks"]["cs1"] = {"operator": "gaussian_matrix", "M": 64, "sigma": 0.05, "bits": 1}
    spec["methods"] = {label: {"tasks": [task], **args}}
    spec["samples"] = True
    unit = sw.load_spec(spec, base=base).units()[0]
    record, x_unit = _execute.execute({"key": "k", "spec": unit.spec, "base": str(base),
                                       "samples": True})
    assert record["status"] == "ok", record["error"]
    prior = unit.spec["prior"]
    model = _priors.load_prior(prior["name"], prior["spec"], str(base), "cpu")
    p = _execute.Problem(unit.spec, str(base), model, "numpy", "cpu")
    fn = {"DiffPIR": ivd.methods.diffpir, "DAPS": ivd.methods.daps,
          "RED-diff": ivd.methods.red_diff}[label]
    if task == "cs1":
        A_x, lower, upper = p.in_model_units()
        x = fn(model, A_x, (lower, upper), p.sigma, rng=p.rng(), in_shape=p.shape, **args)
    elif label == "RED-diff":
        x = fn(model, p.op, p.y, rng=p.rng(), **args)
    else:
        scale = args.get("sigma_max", 1.0)
        x = fn(model, p.op, p.y, p.sigma_y, rng=p.rng(), x_init=scale * p.start("normal"),
               **args)
    np.testing.assert_allclose(x_unit, np.asarray(x, dtype=np.float32), rtol=1e-6, atol=1e-6)


def test_local_workers_keep_glibcs_dynamic_mmap_threshold():
    # Dask's default pre-spawn environment sets MALLOC_TRIM_THRESHOLD_, which turns off
    # glibc's dynamic mmap threshold (measured: ~45 % kernel time in a recipe's worker)
    pytest.importorskip("distributed")
    import dask

    from invdiff.sweep import _dask

    with dask.config.set({"distributed.nanny.pre-spawn-environ":
                          {"MALLOC_TRIM_THRESHOLD_": 65536, "OMP_NUM_THREADS": 1}}):
        assert _dask._worker_environ() == {"OMP_NUM_THREADS": 1}
