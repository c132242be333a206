"""Sphinx configuration of the invdiff documentation.

Build: ``make -C docs html`` (warnings are errors). Environment switches:

``INVDIFF_DOCS_FAST=1``
    Execute only the gallery examples matching ``INVDIFF_DOCS_GALLERY_PATTERN`` (default
    :data:`FAST_EXAMPLES`: every example but the two that take most of a minute); the others
    are rendered as code without output, with the thumbnail their file names
    (``sphinx_gallery_thumbnail_path``: a figure of a full run kept in ``_static/thumbs``).
``INVDIFF_DOCS_GALLERY=0``
    Execute no gallery example at all (pages without figures).
``INVDIFF_DOCS_OFFLINE=1``
    Never try the network for intersphinx. Without it, intersphinx inventories are used from
    ``docs/_intersphinx/<name>.inv`` when present, else fetched only if the host is reachable,
    else the mapping is dropped (references then render as plain text): the build passes with
    ``-W`` on a machine without internet.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(ROOT))  # document the checkout, installed or not

import api_pages  # noqa: E402
import bench_tables  # noqa: E402

import invdiff  # noqa: E402

# -- project -------------------------------------------------------------------------------
project = "invdiff"
author = "the invdiff developers"
copyright = "the invdiff developers, BSD-3-Clause"
release = invdiff.__version__
version = re.sub(r"(\.dev\d*|rc\d*|a\d*|b\d*)$", "", release)

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "backend_support",
    "method_defaults",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_intersphinx", "**.ipynb_checkpoints", "auto_examples/*.py",
                    "auto_examples/*.ipynb", "auto_examples/*.zip", "auto_examples/*.md5"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
default_role = "obj"
pygments_style = "sphinx"

# -- generated pages (before Sphinx looks for sources) -------------------------------------
_api = api_pages.write(DOCS)
_bench = bench_tables.write(DOCS, ROOT / "benchmarks" / "results")
bench_tables.write_readme(DOCS, ROOT / "benchmarks" / "README.md")
_cards = bench_tables.write_model_cards(DOCS, ROOT / "invdiff_models" / "bundled")


def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:  # unchanged mtime: no re-read
        path.write_text(text)


def _readme_quickstart() -> None:
    """The README's quick start, converted, so that the docs never disagree with it."""
    readme = ROOT / "README.md"
    md = bench_tables.markdown_sections(readme.read_text() if readme.is_file() else "",
                                        ["Quick start", "A first posterior sample"])
    text = bench_tables.convert(md, ROOT, DOCS / "generated" / "bench", "readme") if md else (
        "See ``README.md`` in the repository.\n")
    _write_if_changed(DOCS / "generated" / "readme_quickstart.rst.inc", text)


_readme_quickstart()
if _api["missing"]:
    print("invdiff docs: modules not available, left out of the API reference:",
          ", ".join(_api["missing"]))

# -- autodoc / autosummary / numpydoc ------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc Parameters section is the documentation
autodoc_inherit_docstrings = False  # never show torch.nn.Module's docstrings as ours
numpydoc_show_class_members = False  # members are listed by the class template instead
numpydoc_class_members_toctree = False
numpydoc_use_plots = False
numpydoc_xref_param_type = False

# -- math ----------------------------------------------------------------------------------
# MathJax 3 is served from the site itself (the files of the ``sphinx-mathjax-offline`` wheel,
# a docs dependency), never from a CDN: the pages typeset their math offline.
mathjax_path = "mathjax/tex-chtml.js"  # relative to _static
mathjax3_config = {"tex": {"macros": {"E": r"\mathbb{E}", "R": r"\mathbb{R}"}}}
#: The parts of MathJax the pages load: the TeX -> CommonHTML bundle, the TeX extensions it
#: autoloads, its fonts, and the menu / accessibility modules it loads on demand.
_MATHJAX_PARTS = ("tex-chtml.js", "input", "output", "a11y", "ui", "sre", "adaptors")


def _mathjax_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    folder = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" \
        if spec and spec.submodule_search_locations else None
    if folder is None or not (folder / "tex-chtml.js").is_file():
        from sphinx.errors import ConfigError

        raise ConfigError("MathJax is served locally: pip install sphinx-mathjax-offline "
                          "(part of invdiff[docs])")
    return folder


def _copy_mathjax(app, exc) -> None:
    import shutil

    if exc is not None or app.builder.format != "html":
        return
    src, dst = _mathjax_dir(), Path(app.outdir) / "_static" / "mathjax"
    for part in _MATHJAX_PARTS:
        if (src / part).is_dir():
            shutil.copytree(src / part, dst / part, dirs_exist_ok=True)
        else:
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src / part, dst / part)


# -- intersphinx (works offline) -----------------------------------------------------------
_INVENTORIES = {
    "python": "https://docs.python.org/3",
    "numpy": "https://numpy.org/doc/stable",
    "scipy": "https://docs.scipy.org/doc/scipy",
    "torch": "https://pytorch.org/docs/stable",
    "array_api": "https://data-apis.org/array-api/latest",
}


def _online(host: str = "docs.python.org", timeout: float = 3.0) -> bool:
    """Whether ``host`` answers on port 443 within ``timeout`` s (DNS included)."""
    if os.environ.get("INVDIFF_DOCS_OFFLINE", "") not in ("", "0"):
        return False
    result = []

    def probe():
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)  # a resolver that hangs must not hang the build
    return bool(result)


def _intersphinx_mapping() -> dict:
    online = _online()
    mapping = {}
    for name, url in _INVENTORIES.items():
        local = DOCS / "_intersphinx" / f"{name}.inv"
        if local.is_file():
            mapping[name] = (url, (str(local), None) if online else str(local))
        elif online:
            mapping[name] = (url, None)
    if not online:
        dropped = sorted(set(_INVENTORIES) - set(mapping))
        if dropped:
            print("invdiff docs: offline, intersphinx disabled for", ", ".join(dropped))
    return mapping


intersphinx_mapping = _intersphinx_mapping()
intersphinx_timeout = 10

# -- sphinx-gallery ------------------------------------------------------------------------
_EXAMPLES = ROOT / "examples"
_LIBRARIES = ("invdiff", "invdiff_models")


def _missing_requirements(path: Path) -> list[str]:
    """Modules an example needs that cannot be found: its imports, and the submodules of
    invdiff / invdiff_models it uses as attributes (``ivd.methods``), read from its AST."""
    import ast

    tree = ast.parse(path.read_text())
    optional = set()  # imports guarded by ``try: ... except ImportError``
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError",
                                                               "ModuleNotFoundError")
                for h in node.handlers):
            optional.update(id(n) for b in node.body for n in ast.walk(b))
    aliases, needed = {}, set()
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            for a in node.names:
                needed.add(a.name)
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else \
                    a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            needed.add(node.module)
            for a in node.names:  # "from invdiff_models import hub": a submodule or a name
                if node.module.split(".")[0] in _LIBRARIES:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and aliases.get(node.value.id, "").split(".")[0] in _LIBRARIES):
            needed.add(f"{aliases[node.value.id]}.{node.attr}")
    missing = []
    for mod in sorted(needed):
        if not _importable(mod):
            missing.append(mod)
    return missing


def _importable(name: str) -> bool:
    """``name`` is a findable module, or an attribute (function, class) of one."""
    import importlib.util

    try:
        if importlib.util.find_spec(name) is not None:
            return True
    except (ImportError, ValueError):
        pass
    parent, _, attr = name.rpartition(".")
    if not parent:
        return False
    try:
        getattr(importlib.import_module(parent), attr)
    except Exception:  # noqa: BLE001  (absent, or a lazy submodule that fails to import)
        return False
    return True


def _gallery_patterns() -> tuple[str, str]:
    """(filename_pattern, ignore_pattern) from the environment and what is installed."""
    skipped = {}
    for path in sorted(_EXAMPLES.rglob("plot_*.py")):
        missing = _missing_requirements(path)
        if missing:
            skipped[path.name] = missing
    for name, missing in skipped.items():
        print(f"invdiff docs: gallery example {name} left out (needs {', '.join(missing)})")
    ignore = r"__init__\.py"
    if skipped:
        ignore += "|" + "|".join(re.escape(n) for n in skipped)
    run = r"/plot_"
    if os.environ.get("INVDIFF_DOCS_FAST", "") not in ("", "0"):
        run = os.environ.get("INVDIFF_DOCS_GALLERY_PATTERN", "|".join(FAST_EXAMPLES))
    return run, ignore


#: Examples the fast build (CI's ``make -C docs html-fast``) executes: each takes seconds on
#: two CPU cores. The others (plot_natural_image_restoration, plot_mnist_quantized_cs) run in
#: the full build only.
FAST_EXAMPLES = ("plot_gmm_posterior", "plot_restore_own_image", "plot_one_bit_own_matrix",
                 "plot_own_operator", "plot_own_checkpoint", "plot_diffusers_folder",
                 "plot_gpu", "plot_uncertainty")


_run, _ignore = _gallery_patterns()
sphinx_gallery_conf = {
    "examples_dirs": os.path.relpath(_EXAMPLES, DOCS),
    "gallery_dirs": "auto_examples",
    "filename_pattern": _run,
    "ignore_pattern": _ignore,
    "plot_gallery": "False" if os.environ.get("INVDIFF_DOCS_GALLERY", "1") == "0" else "True",
    "within_subsection_order": "FileNameSortKey",
    "subsection_order": [os.path.relpath(_EXAMPLES / d, DOCS) for d in
                         ("own_data", "own_models", "backends", "uncertainty")] + ["*"],
    "download_all_examples": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "remove_config_comments": True,
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    "show_memory": False,
    # the computation-time pages load jQuery and DataTables from CDNs: not on an offline site
    "write_computation_times": False,
    "min_reported_time": 1,
    "capture_repr": ("_repr_html_",),
    "matplotlib_animations": False,
    "default_thumb_file": None,
}

# -- HTML ----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"invdiff {release}"
html_logo = "_static/logo.svg"
html_static_path = ["_static"]
html_css_files = ["invdiff.css"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 8,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "logo": {"alt_text": "invdiff - home"},
}
# Pages without a section of their own get no (empty) left sidebar.
html_sidebars = {page: [] for page in ("index", "getting_started", "backend_support",
                                       "search", "genindex")}
html_sidebars["**"] = ["sidebar-nav-bs"]
html_show_sourcelink = False
html_last_updated_fmt = None

# Nothing the build needs may come from the network: no external fonts, no analytics.
html_theme_options["analytics"] = {}


# -- the figure on the front page ----------------------------------------------------------
# A restored image: the first executed example of _FRONT, else the figure of `invdiff demo`
# that the README shows (a full run's output, kept in _static).
_FRONT = (
    ("own_data/plot_restore_own_image", "Super-resolution ×4 of a held-out photograph with "
     "DMPS and the bundled natural-image prior: the low-resolution PNG, one posterior sample, "
     "the posterior mean and the pixel-wise posterior standard deviation."),
    ("plot_natural_image_restoration", "DMPS on a held-out photograph: posterior mean and "
     "pixel-wise posterior standard deviation for SR×4, deblurring and colorization."),
)
_DEMO_FIGURE = ("_static/invdiff_demo.png", "Output of ``invdiff demo``: held-out photographs "
                "restored by DMPS (4 posterior samples) against total variation, and 1-bit "
                "compressed sensing with QCS-SGM against BIHT; the last column is the "
                "posterior standard deviation.")


def _front_figure(app) -> None:
    path, caption = _DEMO_FIGURE
    text = (f".. figure:: /{path}\n   :alt: restored images\n   :width: 100%\n\n"
            f"   {caption} (:doc:`getting_started`)\n")
    for name, caption in _FRONT:
        stem = name.rsplit("/", 1)[-1]
        folder = f"auto_examples/{name.rsplit('/', 1)[0]}" if "/" in name else "auto_examples"
        image = DOCS / folder / "images" / f"sphx_glr_{stem}_001.png"
        page = DOCS / folder / f"{stem}.rst"
        if image.is_file() and page.is_file() and "skipped, missing" not in page.read_text():
            text = (f".. figure:: /{folder}/images/sphx_glr_{stem}_001.png\n"
                    f"   :alt: {caption}\n   :width: 100%\n"
                    f"   :target: {folder}/{stem}.html\n\n"
                    f"   {caption} (:doc:`the example </{folder}/{stem}>`)\n")
            break
    _write_if_changed(DOCS / "generated" / "index_figure.rst.inc", text)


def setup(app):
    _mathjax_dir()  # fail at once, not after the build, when MathJax is missing
    # after sphinx-gallery (priority 500) has executed the examples
    app.connect("builder-inited", _front_figure, priority=900)
    app.connect("build-finished", _copy_mathjax)
