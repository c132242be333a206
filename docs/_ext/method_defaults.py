"""``.. method-defaults:: invdiff.methods.dmps``: the keyword defaults of a function, as a table.

The method pages state the papers' defaults in prose; this directive adds the defaults the code
actually uses, read from the signature at build time, so that the two cannot drift apart
unnoticed. When the function does not exist (yet), it renders a short note instead of failing.
"""

from __future__ import annotations

import importlib
import inspect

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective


def _lookup(path: str):
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


#: Arguments every method shares (documented in the module docstring), left out of the tables.
COMMON = ("rng", "x_init", "n", "progress", "return_info", "record_guidance", "in_shape")


def _rows(func) -> list[tuple[str, str]]:
    rows = []
    for p in inspect.signature(func).parameters.values():
        if (p.default is inspect.Parameter.empty or p.kind is p.VAR_KEYWORD
                or p.name in COMMON):
            continue
        rows.append((p.name, repr(p.default)))
    return rows


class MethodDefaults(SphinxDirective):
    required_arguments = 1
    has_content = False

    def run(self):
        path = self.arguments[0]
        func = _lookup(path)
        if func is None or not callable(func):
            lines = [".. note::", "",
                     f"   ``{path}`` is not available in this build, so its defaults are not "
                     "listed here."]
        else:
            source = inspect.getsourcefile(func)
            if source:  # re-read this page when the function's module changes
                self.env.note_dependency(source)
            rows = _rows(func)
            lines = [f"Defaults of :func:`{path}`, read from its signature when these pages "
                     "were built (the common arguments ``rng``, ``x_init``, ``n``, ``progress``, "
                     "``return_info`` and ``record_guidance`` are left out):", ""]
            if rows:
                lines += [".. list-table::", "   :header-rows: 1", "   :class: method-defaults",
                          "", "   * - argument", "     - default"]
                for name, value in rows:
                    lines += [f"   * - ``{name}``", f"     - ``{value}``"]
            else:
                lines += ["(no keyword defaults)"]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]),
                                self.content_offset, container)
        return container.children


def setup(app):
    app.add_directive("method-defaults", MethodDefaults)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
