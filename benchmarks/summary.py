"""Compact tables of the full runs, for ``benchmarks/README.md``.

Reads ``benchmarks/results/restoration.json`` and ``quantized_cs.json`` (or the ``-quick``
files with ``--quick``), and the supplementary runs ``quantized_cs-part2-stable`` and
``quantized_cs-baselines-wide-grid`` when present. Prints
Markdown: one row per task and one column per method (PSNR and SSIM, the best PSNR of each
row in bold), the data consistency ‖y − A x̂‖/(σ_y √M) of each method (when the run recorded
it), the cost per image of each method, the paired PSNR differences of DMPS against
each competitor (every method saw the same images and measurements, so the per-image
differences are what to test), and the quantized-CS tables.

Run ``python -m benchmarks.summary [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

from ._common import markdown_table, results_dir

PAIRS = (("DMPS", "DPS"), ("DMPS", "PiGDM"), ("DMPS-flow", "DPS-flow"), ("DMPS-flow", "OT-ODE"))


def _load(stem):
    path = results_dir(quick=stem.endswith("-quick")) / f"{stem}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _cell(r, best=False):
    if not math.isfinite(r["psnr_mean"]):
        return "diverged"
    psnr = f"{r['psnr_mean']:.2f}"
    psnr = f"**{psnr}**" if best else psnr
    cell = f"{psnr} / {r['ssim_mean']:.3f}"
    return cell + (f" ({r['n_finite']}/{r['n']})" if r["n_finite"] < r["n"] else "")


def _short(method):
    """'QCS-SGM+ (EP 3), eps=0.0002 (paper)' -> 'QCS-SGM+ (EP 3) ε=2e-4'."""
    return method.replace(", eps=0.0002 (paper)", " ε=2e-4").replace(", eps=2e-05 (stable)",
                                                                      " ε=2e-5")


def restoration_tables(payload) -> str:
    """Per dataset: PSNR / SSIM pivot, data consistency, cost per method, and paired DMPS
    differences (:func:`invdiff.sweep._report.pivot_tables`, what ``invdiff sweep report``
    prints)."""
    from invdiff.sweep._report import pivot_tables

    return pivot_tables(payload["rows"], PAIRS)


def quantized_tables(payload) -> str:
    """Part 1 (bits × method) and part 2 (matrix × method) PSNR / SSIM tables."""
    rows = payload["rows"]
    out = []
    for part, title in (("1", "Part 1: i.i.d. Gaussian A, M = 200, σ = 0.05"),
                        ("2", "Part 2: 1 bit, M = 400, σ = 0.1")):
        sub = [r for r in rows if r["part"] == part]
        if not sub:
            continue
        methods = list(dict.fromkeys(r["method"] for r in sub))
        problems = list(dict.fromkeys(r["problem"] for r in sub))
        table = []
        for prob in problems:
            by = {r["method"]: r for r in sub if r["problem"] == prob}
            top = max(by, key=lambda m: np.nan_to_num(by[m]["psnr_mean"], nan=-np.inf))
            name = prob.split(", ")[-1] if part == "1" else prob.split(", M=")[0]
            table.append([name] + [_cell(by[m], m == top) if m in by else "-"
                                   for m in methods])
        out.append(f"**{title}** ({sub[0]['n']} test images; PSNR dB / SSIM)\n")
        out.append(markdown_table([""] + [_short(m) for m in methods], table))
        out.append("")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="summarise the -quick results (in benchmarks/results/quick)")
    args = p.parse_args(argv)
    suffix = "-quick" if args.quick else ""
    stems = (("restoration", restoration_tables),
             ("quantized_cs", quantized_tables),
             ("quantized_cs-part2-stable", quantized_tables),
             ("quantized_cs-baselines-wide-grid", quantized_tables))
    for stem, fn in stems:
        payload = _load(stem + suffix)
        if payload is None:
            print(f"(no {stem}{suffix}.json)\n")
            continue
        env = payload["environment"]
        print(f"### {stem}\n\n`{env['command']}`: wall time {payload['wall_seconds'] / 60:.1f} "
              f"min, commit {env['git_commit']}, {env['date_utc']}.\n")
        print(fn(payload))


if __name__ == "__main__":
    main()
