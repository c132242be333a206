"""One prepared GPU check: the test suite on torch-CUDA and CuPy, then timings on one GPU.

1. **Tests**: the suite's ``torch_cuda`` and ``cupy`` parametrisations (``pytest -k "cuda or
   cupy"``, the default markers), pass/fail/skip counts and the failures' names.
2. **DMPS and DPS with the ADM of DPS's ``ffhq_10m``** (guided-diffusion UNet, 93.6 M
   parameters, the configuration of ``manifest_adm_ffhq256.json``; random weights — timings
   do not depend on them), 256x256x3, batch 1, 1000 DDPM steps, SR x4 (block),
   sigma_y = 0.05: seconds per image, DPS / DMPS, and host synchronisations per DMPS step
   (counted by ``tests/_syncs.SyncCounter``; the goal is 0).
3. **QCS-SGM+ (EP)** at M = 4000 and 16000 measurements of an N = 64x64x3 signal, batch 16,
   float32, 5 iterations: milliseconds per call next to the floor of its matrix products,
   and the one-time eigendecomposition of A A^T.
4. **The same DMPS pipeline on CuPy arrays** (the network stays torch; arrays cross by DLPack,
   zero-copy): seconds per image and CuPy / torch.

Writes ``benchmarks/results/gpu.md`` and ``.json`` (``gpu-quick`` with ``--quick``). Run on a GPU
with ``bash benchmarks/gpu_check.sh`` (about 5 minutes on one H100; at most 8); here, the
plumbing is tested with ``python -m benchmarks.gpu --device cpu --quick`` (a tiny network, a
few steps, small EP sizes, the test selection of one module).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import subprocess
import sys
import time

import invdiff as ivd

from ._common import results_dir, write_results
from ._timing import ep_floor, ep_problem, median_time

REPO = pathlib.Path(__file__).resolve().parents[1]
MANIFEST = REPO.parent / "shared" / "conformance" / "manifest_adm_ffhq256.json"
# DPS's configs/model_config.yaml for ffhq_10m.pt (the manifest's "config"), used when the
# manifest is not beside the repository (it is not copied to a GPU machine)
FFHQ_10M = {"image_size": 256, "num_channels": 128, "num_res_blocks": 1, "channel_mult": "",
            "learn_sigma": True, "class_cond": False, "use_checkpoint": False,
            "attention_resolutions": 16, "num_heads": 4, "num_head_channels": 64,
            "num_heads_upsample": -1, "use_scale_shift_norm": True, "dropout": 0.0,
            "resblock_updown": True, "use_fp16": False, "use_new_attention_order": False}
TINY = {"image_size": 32, "num_channels": 32, "num_res_blocks": 1, "channel_mult": "1,2",
        "learn_sigma": True, "attention_resolutions": "16", "num_head_channels": 16,
        "use_scale_shift_norm": True, "resblock_updown": True}


# -- 1. tests --------------------------------------------------------------------------------
def run_tests(select: str, paths, timeout: float) -> dict:
    """``pytest -k select paths`` in a subprocess; counts and failing test names."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-rf", "-k", select, "-p", "no:cacheprovider",
           "--continue-on-collection-errors", *map(str, paths)]
    start = time.perf_counter()
    try:
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        text, code = out.stdout + out.stderr, out.returncode
    except subprocess.TimeoutExpired as e:
        text, code = _text(e.stdout) + _text(e.stderr), "timeout"
    counts = {k: int(n) for n, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors|"
                                                r"deselected)", text)}
    failed = re.findall(r"^FAILED (\S+)", text, flags=re.M)
    return {"command": " ".join(cmd[2:]), "exit_code": code, "counts": counts,
            "failed": failed[:50], "seconds": time.perf_counter() - start,
            "tail": text[-3000:]}


def _text(out) -> str:
    return out.decode(errors="replace") if isinstance(out, bytes) else (out or "")


# -- 2. and 4. the ADM network -----------------------------------------------------------------
def adm_model(device: str, quick: bool):
    """The ffhq_10m ADM (or a tiny one with ``quick``), random weights, on ``device``."""
    import torch

    import invdiff_models as ivm  # noqa: F401  (registers the adapters)
    from invdiff_models import adapter, adm

    config = TINY if quick else _ffhq_config()
    torch.manual_seed(0)
    net = adm.build(config)
    with torch.no_grad():  # the output convolutions start at zero: make eps non-trivial
        for p in net.parameters():
            if not bool(p.any()):
                p.normal_(0.0, 1e-3)
    net = net.to(device).eval()
    params = sum(p.numel() for p in net.parameters())
    return adapter.adm(net, source="random weights"), config, params


def _ffhq_config() -> dict:
    if MANIFEST.is_file():
        return json.loads(MANIFEST.read_text())["config"]
    return dict(FFHQ_10M)


def sr_problem(like, size: int):
    """SR x4 (block) of one random image in ``like``'s namespace: ``(op, y)``."""
    rng = ivd.random.Generator(0)
    op = ivd.operators.SuperResolution(4, in_shape=(3, size, size), kind="block")
    x_true = rng.uniform((1, 3, size, size), like=like, low=-1.0, high=1.0)
    y = op.apply(x_true)
    return op, y + 0.05 * rng.normal(tuple(y.shape), like=y)


def time_method(name: str, model, op, y, steps: int) -> dict:
    """One run of ``name`` (dmps or dps) with ``steps`` steps after a 2-step warm-up."""
    method = getattr(ivd.methods, name)
    kwargs = {"sigma_y": 0.05} if name == "dmps" else {}

    def run(n):
        return method(model, op, y, rng=0, steps=n, return_info=True, **kwargs)

    run(2)  # cuDNN autotuning, caches, allocator
    x, info = run(steps)  # info["seconds"]: device-synchronised (methods._run)
    finite = bool(ivd._array_api.namespace(x).all(ivd._array_api.namespace(x).isfinite(x)))
    return {"method": name, "steps": steps, "nfe": info["nfe"], "seconds": info["seconds"],
            "seconds_per_image": info["seconds"] / int(x.shape[0]), "finite": finite}


def syncs_per_step(model, op, y, device_only: bool) -> float:
    """Host synchronisations per DMPS step: the count at 10 steps minus the count at 5, / 5."""
    sys.path.insert(0, str(REPO / "tests"))
    from _syncs import SyncCounter

    counts = []
    for steps in (5, 10):
        with SyncCounter(device_only=device_only) as c:
            ivd.methods.dmps(model, op, y, 0.05, rng=0, steps=steps)
        counts.append(c.total)
    return (counts[1] - counts[0]) / 5


# -- 3. EP -----------------------------------------------------------------------------------
def ep_rows(Ms, N: int, batch: int, like, repeats: int) -> list[dict]:
    rows = []
    for M in Ms:
        start = time.perf_counter()
        ep, _, x_t, t = ep_problem(M, batch, like, N=N)
        ivd._array_api.synchronize(x_t)
        setup = time.perf_counter() - start
        floor = ep_floor(ep, x_t)
        t_ep = median_time(lambda ep=ep, x=x_t, t=t: ep.score(x, t), repeats, sync=x_t)
        t_floor = median_time(floor, repeats, sync=x_t)
        rows.append({"M": M, "N": N, "batch": batch, "ep_ms": 1e3 * t_ep,
                     "floor_ms": 1e3 * t_floor, "ep_over_floor": t_ep / t_floor,
                     "setup_s": setup})
    return rows


# -- driver ----------------------------------------------------------------------------------
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="torch device (default cuda)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny network, few steps, small EP, one test module (plumbing)")
    parser.add_argument("--steps", type=int, default=None, help="DDPM steps (default 1000)")
    parser.add_argument("--skip-tests", action="store_true", help="no pytest part")
    parser.add_argument("--test-timeout", type=float, default=200.0,
                        help="seconds for the pytest part (default 200)")
    parser.add_argument("--results-dir", default=None,
                        help="where to write the results (default benchmarks/results)")
    args = parser.parse_args(argv)
    import torch

    start = time.perf_counter()
    quick, device = args.quick, args.device
    steps = args.steps or (4 if quick else 1000)
    size = 32 if quick else 256
    rows: dict = {"device": device, "torch": torch.__version__}
    if device.startswith("cuda"):
        rows["gpu"] = torch.cuda.get_device_name(device)
    # 1. the test suite's GPU parametrisations
    if not args.skip_tests:
        paths = ["tests/test_random.py"] if quick else ["tests"]
        rows["tests"] = run_tests("cuda or cupy", paths, args.test_timeout)
    # 2. DMPS and DPS with ADM ffhq_10m on torch
    torch.backends.cudnn.benchmark = True
    model, config, params = adm_model(device, quick)
    like = torch.zeros(1, dtype=torch.float32, device=device)
    op, y = sr_problem(like, size)
    adm_rows = [time_method(m, model, op, y, steps) for m in ("dmps", "dps")]
    rows["adm"] = {"config": config, "parameters": params, "size": size, "runs": adm_rows,
                   "dps_over_dmps": adm_rows[1]["seconds"] / adm_rows[0]["seconds"],
                   "syncs_per_dmps_step": syncs_per_step(model, op, y,
                                                         device_only=device != "cpu")}
    # 3. EP at large M
    Ms, N, batch = ((100, 200), 256, 4) if quick else ((4000, 16000), 3 * 64 * 64, 16)
    rows["ep"] = ep_rows(Ms, N, batch, like, repeats=5 if quick else 20)
    # 4. the DMPS pipeline on CuPy arrays
    rows["cupy"] = cupy_dmps(model, y, op, steps, adm_rows[0])

    table, notes = _table(rows, quick), _notes(rows, steps)
    stem = "gpu" + ("-quick" if quick else "")
    directory = results_dir(args.results_dir, quick)
    settings = {"seed": 0, "device": device, "steps": steps, "image_size": size, "batch": 1,
                "ep_Ms": list(Ms), "ep_N": N, "ep_batch": batch, "dtype": "float32"}
    write_results(stem, ["measure", "value"], table, settings=settings, rows=rows,
                  notes=notes, wall_seconds=time.perf_counter() - start, directory=directory)
    return rows


def cupy_dmps(model, y_torch, op, steps: int, torch_row: dict) -> dict:
    """DMPS on CuPy arrays with the same network and measurement: seconds and CuPy/torch."""
    try:
        import cupy
    except ImportError:
        return {"skipped": "cupy is not installed"}
    if not y_torch.is_cuda:
        return {"skipped": "CuPy needs the measurement on a CUDA device"}
    y = cupy.from_dlpack(y_torch.contiguous())
    row = time_method("dmps", model, op, y, steps)
    row["cupy_over_torch"] = row["seconds"] / torch_row["seconds"]
    return row


def _table(rows: dict, quick: bool) -> list[list[str]]:
    table = []
    tests = rows.get("tests")
    if tests:
        c = tests["counts"]
        failed = c.get("failed", 0) + c.get("error", 0) + c.get("errors", 0)
        exit_note = "" if tests["exit_code"] in (0, 5) else f" (exit {tests['exit_code']})"
        table.append(["tests -k 'cuda or cupy': passed / failed / skipped",
                      f"{c.get('passed', 0)} / {failed} / {c.get('skipped', 0)}{exit_note}"])
    adm = rows["adm"]
    for r in adm["runs"]:
        table.append([f"ADM {'tiny' if quick else 'ffhq_10m'} {adm['size']}^2, "
                      f"{r['method'].upper()} {r['steps']} steps: s / image (NFE)",
                      f"{r['seconds_per_image']:.2f} ({r['nfe']})"
                      + ("" if r["finite"] else ", NON-FINITE output")])
    table.append(["DPS / DMPS (same network, steps)", f"{adm['dps_over_dmps']:.2f}"])
    table.append(["host synchronisations per DMPS step", f"{adm['syncs_per_dmps_step']:g}"])
    for r in rows["ep"]:
        table.append([f"EP M = {r['M']}, N = {r['N']}, batch {r['batch']}: call / floor (ms)",
                      f"{r['ep_ms']:.2f} / {r['floor_ms']:.2f} = {r['ep_over_floor']:.2f}x "
                      f"(A A^T eigendecomposition {r['setup_s']:.1f} s)"])
    cp = rows["cupy"]
    if "skipped" in cp:
        table.append(["DMPS on CuPy arrays", f"skipped: {cp['skipped']}"])
    else:
        table.append(["DMPS on CuPy arrays: s / image; CuPy / torch",
                      f"{cp['seconds_per_image']:.2f}; {cp['cupy_over_torch']:.2f}"])
    return table


def _notes(rows: dict, steps: int) -> str:
    where = rows.get("gpu", rows["device"])
    return (f"One GPU check on {where} (torch {rows['torch']}). Tests: the suite's torch_cuda "
            "and cupy parametrisations. ADM: guided-diffusion UNet with the ffhq_10m "
            f"configuration ({rows['adm']['parameters'] / 1e6:.1f} M parameters, random "
            f"weights), batch 1, float32, {steps} DDPM steps with its learned variance, SR x4 "
            "(block), sigma_y = 0.05; seconds from the methods' info (device-synchronised), "
            "after a 2-step warm-up. Host synchronisations are counted on CUDA tensors only "
            "(a conversion of a CPU tensor does not wait for the GPU). EP: QCS-SGM+ likelihood, "
            "1 bit, i.i.d. Gaussian A, 5 iterations, float32 (eigendecomposition in float64); "
            "the floor is the call's matrix products alone. CuPy: the same DMPS run with CuPy "
            "arrays for x, y and the sampler state (network in torch, DLPack in between).")


if __name__ == "__main__":
    main()
