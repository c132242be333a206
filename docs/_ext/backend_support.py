"""Sphinx extension: which array namespaces each public name is tested on.

How the table is made (static analysis of the test suite; nothing is executed at build time):

1. Every ``tests/**/test_*.py`` is parsed with :mod:`ast`. For each test function we collect
   the dotted names it references (``ivd.operators.Inpainting``, ``ops.DenseMatrix``,
   ``DenseMatrix`` after ``from invdiff.operators import DenseMatrix``), including those in its
   decorators (``pytest.mark.parametrize`` lists) and, transitively, in the module-level helpers,
   factories and fixtures it uses. Each dotted name is resolved by importing the module prefix and
   following attributes, and matched *by object identity* against the public names of the API
   reference (so re-exports count once).
2. A test that takes the ``xp`` fixture (directly or through a module fixture) runs on every
   backend of the fixture, read from ``tests/conftest.py`` (numpy, array-api-strict, torch CPU,
   CuPy; CuPy only where CuPy and a CUDA GPU are present). A backend named in a skip condition in
   the test body (``if ...strict...: pytest.skip(...)``) is removed (or, for ``not in``/``!=``
   conditions, is the only one kept). Other tests count as NumPy tests, plus the backends the
   test imports itself (``import torch``, ``pytest.importorskip("array_api_strict")``); tests
   under ``tests/models`` run on torch.
3. A public name is "tested on" the union of the backends of the tests that reference it. The
   "doctest" column says whether its docstring has a ``>>>`` example (run with NumPy inputs by
   ``pytest --doctest-modules`` in CI).

This is an honest *lower bound of intent*, not a coverage measurement: a test that references
a name exercises it on that backend, but may not exercise every code path. Names that tests only
reach through an instance (``op.apply``) are attributed to the class. The result is written to
``generated/backend_support.rst.inc`` (one table per module, included by
``backend_support.rst``) and appended to every public docstring as a small table.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

BACKENDS = ("numpy", "array_api_strict", "torch", "cupy")
LABELS = {"numpy": "NumPy", "array_api_strict": "array-api-strict", "torch": "PyTorch (CPU)",
          "cupy": "CuPy (CUDA)†"}
# Words that identify a backend inside a skip condition or an import.
_KEYWORDS = {"numpy": ("numpy",), "array_api_strict": ("strict",), "torch": ("torch",),
             "cupy": ("cupy",)}
_ROOTS = ("invdiff", "invdiff_models")
FOOTNOTE = ("† CuPy runs only where CuPy and a CUDA GPU are present (the ``xp`` fixture skips it "
            "otherwise; CI is CPU-only).")


@dataclass
class Support:
    backends: set = field(default_factory=set)
    tests: list = field(default_factory=list)
    doctest: bool = False


# ------------------------------------------------------------------------------ resolution
class _Resolver:
    """Dotted name -> the public object it reaches (by identity), with a cache."""

    def __init__(self, public: dict[int, str]):
        self.public = public
        self.cache: dict[str, str | None] = {}

    def __call__(self, dotted: str) -> str | None:
        if dotted not in self.cache:
            self.cache[dotted] = self._resolve(dotted)
        return self.cache[dotted]

    def _resolve(self, dotted: str) -> str | None:
        # Follow attributes the way Python does, from the top-level package: a package
        # attribute (the function ``invdiff.samplers.ancestral``) wins over a submodule of the
        # same name, and a submodule not yet imported is imported.
        parts = dotted.split(".")
        if parts[0] not in _ROOTS:
            return None
        try:
            obj = importlib.import_module(parts[0])
        except ImportError:
            return None
        found = self.public.get(id(obj))
        for attr in parts[1:]:
            try:
                nxt = getattr(obj, attr)
            except Exception:  # noqa: BLE001  (AttributeError, or a lazy import that fails)
                nxt = None
                if inspect.ismodule(obj):
                    try:
                        nxt = importlib.import_module(f"{obj.__name__}.{attr}")
                    except ImportError:
                        nxt = None
            if nxt is None:
                break
            obj = nxt
            found = self.public.get(id(obj), found)  # the most specific public object
        return found


def _chain(node) -> str | None:
    """``a.b.c`` for an Attribute/Name chain, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _aliases(nodes) -> dict[str, str]:
    out = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
        elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
              and _chain(node.value.func) == "pytest.importorskip" and node.value.args
              and isinstance(node.value.args[0], ast.Constant)):
            for t in node.targets:  # xps = pytest.importorskip("array_api_strict")
                if isinstance(t, ast.Name):
                    out[t.id] = str(node.value.args[0].value)
    return out


def _expand(dotted: str, aliases: dict[str, str]) -> str:
    head, _, rest = dotted.partition(".")
    if head in aliases:
        return aliases[head] + ("." + rest if rest else "")
    return dotted


def _imported_backends(node) -> set:
    """Backends a test pulls in itself (imports, importorskip("...") strings)."""
    found = set()
    for sub in ast.walk(node):
        names = []
        if isinstance(sub, ast.Import):
            names = [a.name for a in sub.names]
        elif isinstance(sub, ast.ImportFrom) and sub.module:
            names = [sub.module]
        elif isinstance(sub, ast.Call) and _chain(sub.func) in ("pytest.importorskip",):
            names = [a.value for a in sub.args if isinstance(a, ast.Constant)
                     and isinstance(a.value, str)]
        for n in names:
            root = n.split(".")[0]
            if root in ("torch", "array_api_strict", "cupy"):
                found.add(root)
            if root == "array_api_compat" and "." in n:
                leaf = n.split(".")[1]
                if leaf in ("torch", "cupy"):
                    found.add(leaf)
    return found


def _skipped_backends(func, candidates: set) -> set:
    """Backends a test skips through ``if <condition naming a backend>: pytest.skip(...)``."""
    keep = set(candidates)
    for sub in ast.walk(func):
        if not isinstance(sub, ast.If):
            continue
        calls = {_chain(c.func) for b in sub.body for c in ast.walk(b) if isinstance(c, ast.Call)}
        if not calls & {"pytest.skip", "pytest.xfail"}:
            continue
        cond = ast.unparse(sub.test).lower()
        named = {b for b, words in _KEYWORDS.items() if any(w in cond for w in words)}
        if not named:
            continue
        negated = " not in " in cond or "!=" in cond or cond.startswith("not ")
        keep = keep & named if negated else keep - named
    return keep


# ------------------------------------------------------------------------------ the analysis
def _fixture_params(conftest: Path) -> tuple[str, ...]:
    """Backends of the ``xp`` fixture: the string ids in ``pytest.param("...")`` calls."""
    if not conftest.is_file():
        return BACKENDS
    tree = ast.parse(conftest.read_text())
    found = []
    for sub in ast.walk(tree):
        if isinstance(sub, ast.Call) and _chain(sub.func) == "pytest.param" and sub.args:
            a = sub.args[0]
            if isinstance(a, ast.Constant) and a.value in BACKENDS and a.value not in found:
                found.append(a.value)
    return tuple(found) or BACKENDS


def _is_fixture(node) -> bool:
    for d in getattr(node, "decorator_list", []):
        target = d.func if isinstance(d, ast.Call) else d
        if _chain(target) in ("pytest.fixture", "fixture"):
            return True
    return False


class _Module:
    """One test file: its aliases, module-level helpers and test functions."""

    def __init__(self, path: Path, tree: ast.Module):
        self.path = path
        self.aliases = _aliases(tree.body)
        self.helpers: dict[str, ast.AST] = {}
        self.tests: list[ast.FunctionDef] = []
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.name.startswith("test") and not _is_fixture(node):
                    self.tests.append(node)
                else:
                    self.helpers[node.name] = node
            elif isinstance(node, ast.ClassDef):
                if node.name.startswith("Test"):
                    self.tests += [n for n in node.body if isinstance(n, ast.FunctionDef)
                                   and n.name.startswith("test")]
                else:
                    self.helpers[node.name] = node
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name):
                            self.helpers[n.id] = node

    def references(self, func) -> tuple[set, bool]:
        """(dotted names reached from ``func``, whether it depends on the xp fixture)."""
        names, uses_xp, seen = set(), False, set()
        stack = [func]
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                params = [a.arg for a in node.args.args + node.args.kwonlyargs]
                if "xp" in params and (node is func or _is_fixture(node)):
                    uses_xp = True
                if node is func or _is_fixture(node):  # fixtures requested by parameter name
                    stack += [self.helpers[p] for p in params if p in self.helpers]
            local = _aliases(n for n in ast.walk(node) if isinstance(n, (ast.Import,
                                                                         ast.ImportFrom,
                                                                         ast.Assign)))
            aliases = {**self.aliases, **local}
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Attribute, ast.Name)):
                    dotted = _chain(sub)
                    if dotted is None:
                        continue
                    names.add(_expand(dotted, aliases))
                    head = dotted.split(".")[0]
                    if head in self.helpers and head not in local:
                        stack.append(self.helpers[head])
        return names, uses_xp


def analyse(root: Path, public: dict[str, object]) -> dict[str, Support]:
    """``{public full name: Support}`` from the tests under ``root/tests``."""
    by_id: dict[int, str] = {}
    aliases = defaultdict(list)  # one object listed under several public names
    for name, obj in public.items():
        by_id.setdefault(id(obj), name)
        aliases[by_id[id(obj)]].append(name)
    resolve = _Resolver(by_id)
    fixture = _fixture_params(root / "tests" / "conftest.py")
    out = {name: Support() for name in public}
    for name, obj in public.items():
        doc = inspect.getdoc(obj) or ""
        out[name].doctest = ">>>" in doc
    for path in sorted((root / "tests").rglob("test_*.py")):
        try:
            mod = _Module(path, ast.parse(path.read_text()))
        except SyntaxError:
            continue
        in_models = "models" in path.relative_to(root / "tests").parts[:-1]
        for func in mod.tests:
            names, uses_xp = mod.references(func)
            if uses_xp:
                backends = _skipped_backends(func, set(fixture))
            else:
                backends = {"torch"} if in_models else {"numpy"}
                backends |= _imported_backends(func)
                # backends the test (or its helpers) uses by name, e.g. a module-level
                # ``torch = pytest.importorskip("torch")``
                backends |= {n.split(".")[0] for n in names} & {"torch", "array_api_strict",
                                                                "cupy"}
            hits = {resolve(n) for n in names} - {None}
            test_id = f"{path.relative_to(root).as_posix()}::{func.name}"
            for hit in hits:
                for alias in aliases[hit]:
                    out[alias].backends |= backends
                    out[alias].tests.append(test_id)
    return out


# ------------------------------------------------------------------------------ rendering
def _cell(support: Support, backend: str) -> str:
    return "✓" if backend in support.backends else "—"


def object_table(support: Support) -> list[str]:
    """RST lines appended to a public docstring."""
    lines = ["", ".. rubric:: Backend support", ""]
    if not support.tests:
        lines += ["No test of the suite references this name directly"
                  + (" (its docstring example runs as a doctest with NumPy)."
                     if support.doctest else "."), ""]
        return lines
    lines += [".. list-table::", "   :header-rows: 1", "   :class: backend-support", ""]
    lines += ["   * - " + LABELS[BACKENDS[0]]] + [f"     - {LABELS[b]}" for b in BACKENDS[1:]]
    lines += ["   * - " + _cell(support, BACKENDS[0])]
    lines += [f"     - {_cell(support, b)}" for b in BACKENDS[1:]]
    n = len(support.tests)
    lines += ["", f"Exercised by {n} test function{'s' if n != 1 else ''} "
              f"(e.g. ``{support.tests[0]}``)"
              + ("; the docstring example runs as a doctest." if support.doctest else ".")]
    if "cupy" in support.backends:
        lines += ["", FOOTNOTE]
    lines.append("")
    return lines


def summary(modules: dict[str, list[str]], data: dict[str, Support]) -> str:
    """One table per module (``generated/backend_support.rst.inc``)."""
    lines = []
    for module, names in modules.items():
        if not names:
            continue
        lines += [f".. rubric:: {module}", "", ".. list-table::", "   :header-rows: 1",
                  "   :class: backend-support", ""]
        head = ["name"] + [LABELS[b] for b in BACKENDS] + ["doctest", "tests"]
        lines += ["   * - " + head[0]] + [f"     - {h}" for h in head[1:]]
        for n in names:
            s = data[f"{module}.{n}"]
            row = [f":obj:`~{module}.{n}`"] + [_cell(s, b) for b in BACKENDS]
            row += ["✓" if s.doctest else "—", str(len(s.tests))]
            lines += ["   * - " + row[0]] + [f"     - {c}" for c in row[1:]]
        lines.append("")
    lines += [FOOTNOTE, ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ Sphinx glue
def _collect(app) -> None:
    import api_pages

    root = Path(app.confdir).parent
    modules, public = {}, {}
    for name, _ in api_pages.MODULES:
        module, _reason = api_pages.try_import(name)
        if module is None:
            continue
        modules[name] = api_pages.public_names(module)
        for n in modules[name]:
            public[f"{name}.{n}"] = getattr(module, n)
    data = analyse(root, public)
    app.env_backend_support = data
    out = Path(app.confdir) / "generated" / "backend_support.rst.inc"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = summary(modules, data)
    if not out.is_file() or out.read_text() != text:
        out.write_text(text)


def _append(app, what, name, obj, options, lines) -> None:
    data = getattr(app, "env_backend_support", None)
    if data and name in data:
        lines.extend(object_table(data[name]))


def setup(app):
    app.connect("builder-inited", _collect)
    # After numpydoc (priority 500) has turned the numpydoc sections into RST.
    app.connect("autodoc-process-docstring", _append, priority=900)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
