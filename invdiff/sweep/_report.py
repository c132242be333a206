"""Tables of a finished (or partly finished) sweep: ``invdiff sweep report DIR``.

The records of the units of ``DIR/sweep.json`` are pooled per (data, task, method) over
image batches and seeds into one *row* (per-image PSNR, SSIM and consistency, NFE, seconds
per image), and printed as

* mean ± std (ddof 1) over the images of every row, with the finite count;
* per data table: a PSNR / SSIM pivot (tasks × methods, best PSNR in bold), the cost of
  each method (NFE, sampler seconds per image, mean over tasks), and the paired PSNR
  differences of the ``report.pairs`` (default: the first method of each family against
  the others of its family) as mean ± 95 % CI over images with the wins — every method
  saw the same images and the same measurements, so the per-image differences are what
  to test.

These are the tables ``benchmarks/summary.py`` prints for the restoration benchmark.
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np

from . import _store

__all__ = ["rows_of", "report", "markdown_table", "pivot_tables", "paired", "fmt"]


def markdown_table(header, table) -> str:
    """A GitHub Markdown table; numeric-looking columns are right-aligned.

    Examples
    --------
    >>> from invdiff.sweep._report import markdown_table
    >>> print(markdown_table(["name", "ms"], [["a", "1.0"]]))
    | name | ms |
    |---|---:|
    | a | 1.0 |
    """
    def numeric(j):
        try:
            [float(str(row[j]).rstrip("x%")) for row in table]
        except ValueError:
            return False
        return bool(table)

    align = ["---:" if numeric(j) else "---" for j in range(len(header))]
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table]
    return "\n".join(lines)


def mean_std(values) -> tuple[float, float]:
    """Mean and standard deviation (ddof 1) of the finite entries; NaN when there are none.

    Examples
    --------
    >>> from invdiff.sweep._report import mean_std
    >>> mean_std([1.0, 3.0, float("nan")])
    (2.0, 1.4142135623730951)
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def fmt(mean: float, std: float, digits: int) -> str:
    """``"mean ± std"``, or ``"diverged"`` when no image stayed finite.

    Examples
    --------
    >>> from invdiff.sweep._report import fmt
    >>> fmt(20.123, 1.5, 2), fmt(float("nan"), 0.0, 2)
    ('20.12 ± 1.50', 'diverged')
    """
    if not math.isfinite(mean):
        return "diverged"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def rows_of(out) -> tuple[list[dict], dict]:
    """``(rows, manifest)``: one row per (data, task, method) of the last run's units.

    Each row: ``dataset``, ``task`` (its title), ``task_key``, ``method``, ``family``,
    ``ids`` (``[seed, image]`` per image), ``psnr``, ``ssim``, ``consistency`` (lists,
    NaN where diverged), ``*_mean`` / ``*_std``, ``n``, ``n_finite``, ``nfe``,
    ``seconds_per_image``, ``selected`` (baselines: the parameter chosen per seed),
    ``failed`` and ``missing`` unit counts and ``errors``.
    """
    manifest = _store.read_manifest(out)
    groups: dict[tuple, list] = {}
    for u in manifest["units"]:
        groups.setdefault((u["data"], u["task"], u["method"]), []).append(u)
    titles, families = manifest.get("tasks", {}), manifest.get("families", {})
    quantized = set(manifest.get("quantized_tasks", []))
    rows = []
    for (data, task, method), units in groups.items():
        row = {"dataset": data, "task": titles.get(task, task), "task_key": task,
               "method": method, "family": families.get(method), "ids": [], "psnr": [],
               "ssim": [], "consistency": [], "finite": [], "nfe": None, "seconds": 0.0,
               "selected": [], "failed": 0, "missing": 0, "errors": [],
               "consistency_kind": "bins" if task in quantized else "ratio"}
        for u in units:
            rec = _store.read_record(out, u["key"])
            if rec is None:
                row["missing"] += 1
                continue
            if rec["status"] != "ok":
                row["failed"] += 1
                msg = f"{rec['error']['type']}: {rec['error']['message']}"
                if msg not in row["errors"]:
                    row["errors"].append(msg)
                continue
            m = rec["metrics"]
            row["ids"] += [[u["seed"], i] for i in u["images"]]
            for k in ("psnr", "ssim", "consistency", "finite"):
                row[k] += m[k]
            row["nfe"] = m["nfe"] if row["nfe"] is None else row["nfe"]
            row["seconds"] += rec["cost"]["seconds"] or 0.0
            if "selected" in m and m["selected"] not in row["selected"]:
                row["selected"].append(m["selected"])
        n = len(row["ids"])
        row["n"], row["n_finite"] = n, int(sum(row.pop("finite")))
        for k in ("psnr", "ssim", "consistency"):
            row[f"{k}_mean"], row[f"{k}_std"] = mean_std(row[k])
        row["seconds_per_image"] = row.pop("seconds") / n if n else math.nan
        rows.append(row)
    return rows, manifest


def _default_pairs(rows) -> list[tuple[str, str]]:
    first, pairs = {}, []
    for r in rows:
        fam = r["family"]
        if fam is None or fam == "sparsity":
            continue
        if fam not in first:
            first[fam] = r["method"]
        elif r["method"] != first[fam] and (first[fam], r["method"]) not in pairs:
            pairs.append((first[fam], r["method"]))
    return pairs


def _cell(r, best=False):
    if not math.isfinite(r["psnr_mean"]):
        return "diverged" if r["n"] else "-"
    psnr = f"{r['psnr_mean']:.2f}"
    psnr = f"**{psnr}**" if best else psnr
    cell = f"{psnr} / {r['ssim_mean']:.3f}"
    return cell + (f" ({r['n_finite']}/{r['n']})" if r["n_finite"] < r["n"] else "")


_FIT_TEXT = {
    "ratio": "‖y − A x̂‖ / (σ_y √M) of the clipped reconstruction, mean over images (≈ 1: "
             "explains y to the noise level; ≫ 1: underfits; < 1: fits the noise)",
    "bins": "fraction of the quantized measurements whose bin holds A x̂, mean over images",
    "mixed": "‖y − A x̂‖ / (σ_y √M) (Gaussian tasks) or the fraction of measurements in their "
             "bin (quantized tasks), mean over images",
}


def _fit_kind(rows) -> str:
    kinds = {r.get("consistency_kind", "ratio") for r in rows}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def _fit(r):
    v = r.get("consistency_mean", math.nan)
    return f"{v:.2f}" if math.isfinite(v) else "-"


def paired(ra, rb, key="psnr") -> str:
    """``"mean ± 95 % CI (wins/n)"`` of ``ra - rb`` over the images both have finite.

    Images are matched by their ``ids`` (``[seed, image]``), or by position in rows
    without ids (the benchmarks' JSON rows, where every method has the same images).

    Examples
    --------
    >>> from invdiff.sweep._report import paired
    >>> a = {"ids": [[0, 1], [0, 2], [0, 3]], "psnr": [20.0, 21.0, 22.0]}
    >>> b = {"ids": [[0, 1], [0, 2], [0, 3]], "psnr": [19.0, 21.5, 20.0]}
    >>> paired(a, b)
    '+0.83 ± 1.42 (2/3)'
    """
    ids_a = ra.get("ids") or [[0, i] for i in range(len(ra[key]))]  # rows without ids:
    ids_b = rb.get("ids") or [[0, i] for i in range(len(rb[key]))]  # images in the same order
    vb = {tuple(i): v for i, v in zip(ids_b, rb[key], strict=True)}
    d = np.asarray([v - vb[tuple(i)] for i, v in zip(ids_a, ra[key], strict=True)
                    if tuple(i) in vb], dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size < 2:
        return "-"
    half = 1.96 * d.std(ddof=1) / math.sqrt(d.size)
    return f"{d.mean():+.2f} ± {half:.2f} ({int((d > 0).sum())}/{d.size})"


def pivot_tables(rows, pairs=None) -> str:
    """Per dataset: PSNR / SSIM pivot, cost per method, paired PSNR differences."""
    out = []
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        sub = [r for r in rows if r["dataset"] == ds]
        methods = list(dict.fromkeys(r["method"] for r in sub))
        tasks = list(dict.fromkeys(r["task"] for r in sub))
        table = []
        for task in tasks:
            by = {r["method"]: r for r in sub if r["task"] == task}
            top = max(by, key=lambda m: np.nan_to_num(by[m]["psnr_mean"], nan=-np.inf))
            table.append([task] + [_cell(by[m], m == top and len(methods) > 1)
                                  if m in by else "-" for m in methods])
        n = max(r["n"] for r in sub)
        out.append(f"**{ds}** ({n} test images; PSNR dB / SSIM, mean over images; best PSNR "
                   "in bold)\n")
        out.append(markdown_table(["task"] + methods, table))
        fits = [r for r in sub if "consistency_mean" in r]
        if fits:
            out.append(f"\nData consistency on {ds}: {_FIT_TEXT[_fit_kind(fits)]}:\n")
            lines = []
            for task in tasks:
                by = {r["method"]: r for r in fits if r["task"] == task}
                lines.append([task] + [_fit(by[m]) if m in by else "-" for m in methods])
            out.append(markdown_table(["task"] + methods, lines))
        cost = []
        for m in methods:
            mr = [r for r in sub if r["method"] == m]
            secs = [r["seconds_per_image"] for r in mr if math.isfinite(r["seconds_per_image"])]
            nfe = next((r["nfe"] for r in mr if r["nfe"] is not None), None)
            cost.append([m, nfe if nfe is not None else "-",
                         f"{np.mean(secs):.3f}" if secs else "-"])
        out.append(f"\nCost on {ds} (NFE; sampler seconds per image, mean over tasks):\n")
        out.append(markdown_table(["method", "NFE", "s / image"], cost))
        use = [(a, b) for a, b in (pairs if pairs is not None else _default_pairs(sub))
               if a in methods and b in methods]
        if use:
            out.append(f"\nPaired PSNR differences on {ds} (mean ± 95 % CI over images; "
                       "wins = images where the first method is better):\n")
            lines = []
            for t in tasks:
                by = {r["method"]: r for r in sub if r["task"] == t}
                lines.append([t] + [paired(by[a], by[b]) if a in by and b in by else "-"
                                    for a, b in use])
            out.append(markdown_table(["task"] + [f"{a} − {b}" for a, b in use], lines))
        out.append("")
    return "\n".join(out)


def summary_table(rows):
    """``(header, table)``: mean ± std per row, consistency, NFE, seconds, finite count."""
    header = ["data", "task", "method", "PSNR (dB)", "SSIM", "consistency", "NFE",
              "s / image", "finite"]
    table = []
    for r in rows:
        name = r["method"] + "".join(
            f" ({k}={v:.0e})" if isinstance(v, float) else f" ({k}={v})"
            for s in r["selected"][:1] for k, v in s.items())
        status = f"{r['n_finite']}/{r['n']}"
        if r["failed"] or r["missing"]:
            status += f" ({r['failed']} failed, {r['missing']} missing units)"
        table.append([r["dataset"], r["task"], name, fmt(r["psnr_mean"], r["psnr_std"], 2),
                      fmt(r["ssim_mean"], r["ssim_std"], 3),
                      fmt(r["consistency_mean"], r["consistency_std"], 2),
                      r["nfe"] if r["nfe"] is not None else "-",
                      f"{r['seconds_per_image']:.3f}" if math.isfinite(r["seconds_per_image"])
                      else "-", status])
    return header, table


def report(out, *, write=True) -> str:
    """The Markdown report of the sweep in ``out``; also ``out/report.md`` and ``.json``.

    Parameters
    ----------
    out : path-like
        A sweep's results folder (with ``sweep.json``).
    write : bool
        Write ``report.md`` and ``report.json`` (the rows, per-image values included).

    Returns
    -------
    str
        Markdown: the mean ± std table, then per data table the pivot, cost and paired
        differences.

    Examples
    --------
    >>> import tempfile
    >>> import invdiff.sweep as sw
    >>> spec = {"batch": 2, "priors": {"natural": {"bundled": "natural"}},
    ...         "data": {"tiles": {"source": "natural", "prior": "natural", "test": 2}},
    ...         "tasks": {"denoise": {"operator": "identity", "sigma_y": 0.2}},
    ...         "methods": {"DMPS": {"steps": 2}, "DPS": {"steps": 2}}}
    >>> out = tempfile.mkdtemp()
    >>> _ = sw.run(spec, out, scheduler="serial", progress=False)
    >>> print(sw.report(out).splitlines()[4])
    | data | task | method | PSNR (dB) | SSIM | consistency | NFE | s / image | finite |
    """
    rows, manifest = rows_of(out)
    pairs = [tuple(p) for p in manifest.get("report", {}).get("pairs", [])] or None
    header, table = summary_table(rows)
    done = sum(r["n"] > 0 for r in rows)
    failed = sum(r["failed"] for r in rows)
    missing = sum(r["missing"] for r in rows)
    text = [f"# sweep {manifest['name']}", "",
            f"{len(manifest['units'])} units (invdiff {manifest['version']}): "
            f"{missing} without a record, {failed} failed; {done} of {len(rows)} rows have "
            "results. Mean ± std (ddof 1) over images (and seeds) of PSNR / SSIM on [0, 1] "
            "after clipping, and of the consistency ratio ||y - A x||/(sigma_y sqrt(M)) "
            "(quantized tasks: fraction of measurements in their bin); NFE and sampler "
            "seconds per image.", "", markdown_table(header, table), "",
            pivot_tables([r for r in rows if r["n"]], pairs)]
    errors = [f"* {r['dataset']}/{r['task_key']}/{r['method']}: {e}" for r in rows
              for e in r["errors"]]
    if errors:
        text += ["Failed units:", "", *errors, ""]
    if manifest.get("skipped"):
        text += ["Skipped (not applicable): " + "; ".join(manifest["skipped"]) + ".", ""]
    md = "\n".join(text)
    if write:
        out = pathlib.Path(out)
        (out / "report.md").write_text(md)
        (out / "report.json").write_text(json.dumps({"name": manifest["name"], "rows": rows},
                                                    indent=1))
    return md
