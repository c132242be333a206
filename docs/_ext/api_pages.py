"""Write the API reference pages (one per public module) before Sphinx reads the sources.

For every module of :data:`MODULES` that can be imported, ``generated/api/<module>.rst`` gets
the module docstring (``automodule``) and an ``autosummary`` table of the names in the
module's ``__all__`` (stub pages for each name are then written by ``autosummary_generate``).
``generated/api_toctree.rst.inc`` lists the pages that were written; ``api.rst`` includes it,
so the reference contains exactly the modules that exist.

A module that does not exist yet (``ModuleNotFoundError`` naming that very module) is listed
as "not available" instead of breaking the build; any other import error is a bug in the
module and is raised, so the build fails loudly.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

#: The public modules documented in the API reference, in reading order: (module, blurb).
MODULES: tuple[tuple[str, str], ...] = (
    ("invdiff.processes", "forward processes a_t, b_t and prediction conversions"),
    ("invdiff.random", "one seeded RNG over every backend"),
    ("invdiff.operators", "linear operators with an implicit SVD"),
    ("invdiff.measurements", "Gaussian noise and quantizers"),
    ("invdiff.likelihoods", "pseudo-likelihood scores (DMPS, QCS-SGM, QCS-SGM+, DPS, ΠGDM)"),
    ("invdiff.samplers", "integrators (ancestral, DDIM, Langevin, SDE, ODE)"),
    ("invdiff.priors", "exact Gaussian and Gaussian-mixture priors"),
    ("invdiff.methods", "published methods with their paper defaults"),
    ("invdiff.baselines", "sparsity baselines (Lasso, TV, BIHT)"),
    ("invdiff.metrics", "PSNR and SSIM on any backend"),
    ("invdiff.io", "image files in and out of a prior's range"),
    ("invdiff.special", "normal tails and truncated-normal moments"),
    ("invdiff.sweep", "method x task x image sweeps, serially or on Dask (resumable)"),
    ("invdiff_models", "the torch side: top-level shortcuts"),
    ("invdiff_models.adapter", "wrap a torch network as a ScoreModel"),
    ("invdiff_models.adm", "ADM / guided-diffusion UNet"),
    ("invdiff_models.ncsnv2", "NCSNv2 (QCS-SGM)"),
    ("invdiff_models.ncsnpp", "NCSN++ (RectifiedFlow)"),
    ("invdiff_models.hub", "diffusers folders"),
    ("invdiff_models.checkpoints", "safe reading of original checkpoints"),
    ("invdiff_models.bundled", "the priors shipped with the package"),
)


def public_names(module) -> list[str]:
    """The module's ``__all__`` minus submodules (documented on their own pages)."""
    names = list(getattr(module, "__all__", None) or [])
    if not names:  # no __all__: public callables and classes defined in the module itself
        names = [n for n, v in vars(module).items() if not n.startswith("_")
                 and (inspect.isclass(v) or inspect.isfunction(v))
                 and getattr(v, "__module__", None) == module.__name__]
    out = []
    for n in names:
        try:
            v = getattr(module, n)
        except AttributeError:
            continue  # a lazily listed name whose module is not there yet
        if inspect.ismodule(v) or n.startswith("__"):
            continue
        out.append(n)
    return out


def try_import(name: str):
    """``(module, None)``, or ``(None, reason)`` when the module does not exist yet."""
    try:
        return importlib.import_module(name), None
    except ModuleNotFoundError as e:
        # Only the module itself (or its parent package) being absent counts as "not landed";
        # a missing dependency *inside* the module is reported with the dependency's name.
        if e.name is not None and (name == e.name or name.startswith(e.name + ".")):
            return None, f"module {e.name!r} not found"
        if e.name is not None and e.name.split(".")[0] in ("torch", "diffusers", "safetensors"):
            return None, f"optional dependency {e.name!r} is not installed"
        raise


def _underline(text: str, char: str = "=") -> str:
    return f"{text}\n{char * len(text)}\n"


def module_page(name: str, module) -> str:
    names = public_names(module)
    lines = [f".. _api-{name}:", "", _underline(name),
             f".. automodule:: {name}", "   :no-members:", "", f".. currentmodule:: {name}", ""]
    if names:
        lines += [".. rubric:: Public names", "", ".. autosummary::", "   :toctree: .",
                  "   :nosignatures:", ""]
        lines += [f"   {n}" for n in names]
        lines.append("")
    return "\n".join(lines)


def write(docs: Path, modules=MODULES) -> dict:
    """Write the pages; returns ``{"written": [...], "missing": {module: reason}}``."""
    out = docs / "generated" / "api"
    out.mkdir(parents=True, exist_ok=True)
    written, missing, expected = [], {}, set()
    for name, blurb in modules:
        module, reason = try_import(name)
        if module is None:
            missing[name] = reason
            continue
        page = out / f"{name}.rst"
        text = module_page(name, module)
        if not page.is_file() or page.read_text() != text:  # keep mtimes: incremental builds
            page.write_text(text)
        written.append((name, blurb))
        expected.add(f"{name}.rst")
        expected.update(f"{name}.{n}.rst" for n in public_names(module))
    for stale in out.glob("*.rst"):  # pages of names that no longer exist: not in any toctree
        if stale.name not in expected:
            stale.unlink()
    toc = [".. toctree::", "   :maxdepth: 1", ""]
    toc += [f"   {name} — {blurb} <generated/api/{name}>" for name, blurb in written]
    toc.append("")
    if missing:
        toc += [".. note::", "",
                "   Not available in this build (the module is not importable here):", ""]
        toc += [f"   * ``{name}``: {reason}" for name, reason in missing.items()]
        toc.append("")
    inc = docs / "generated" / "api_toctree.rst.inc"
    text = "\n".join(toc)
    if not inc.is_file() or inc.read_text() != text:
        inc.write_text(text)
    return {"written": [n for n, _ in written], "missing": missing}
