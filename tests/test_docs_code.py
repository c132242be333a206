"""Every Python code block of the narrative docs runs as it stands.

The blocks of one page run in order in one namespace (a page reads like a notebook), in a
temporary working directory, with matplotlib's non-interactive backend. A block that needs a
file that cannot be in the repository (a downloaded checkpoint of hundreds of MB) is marked
in the page by the comment ``.. not run: <reason>`` on the line before its directive; such
blocks are listed here, so that a new one is a decision, not an accident.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
SKIP_MARK = re.compile(r"^\.\. not run: (.+)$")
DIRECTIVE = re.compile(r"^(\s*)\.\. (?:code-block|code|sourcecode):: (python|py|python3)\s*$")

#: (page, first line of the block) of the blocks that are deliberately not run.
NOT_RUN = {
    ("checkpoints.rst", 'model = ivm.load_checkpoint("ffhq_10m.pt", arch="adm", '
                        'config=adm_config)'),
    ("checkpoints.rst", 'model = ivm.load_checkpoint("checkpoint_50000.pth", arch="ncsnv2", '
                        'config=mnist_yml)'),
    ("checkpoints.rst", 'model = ivm.load_checkpoint("checkpoint_8.pth", arch="ncsnpp", '
                        'config=rf_config)'),
}


def blocks(path: Path) -> list[tuple[int, str, str | None]]:
    """``(line, code, reason_not_run)`` of every Python code block of an RST page."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for i, line in enumerate(lines):
        m = DIRECTIVE.match(line)
        if not m:
            continue
        indent = len(m.group(1))
        skip = None
        for back in range(i - 1, max(i - 3, -1), -1):
            if (s := SKIP_MARK.match(lines[back].strip())):
                skip = s.group(1)
        j = i + 1
        while j < len(lines) and lines[j].strip().startswith(":"):  # directive options
            j += 1
        body = []
        while j < len(lines) and (not lines[j].strip() or
                                  len(lines[j]) - len(lines[j].lstrip()) > indent):
            body.append(lines[j])
            j += 1
        width = min((len(b) - len(b.lstrip()) for b in body if b.strip()), default=0)
        code = "\n".join(b[width:] for b in body).strip("\n")
        out.append((i + 1, code, skip))
    return out


PAGES = sorted(p for p in DOCS.rglob("*.rst")
               if not any(part in ("_build", "generated", "auto_examples", "_templates")
                          for part in p.relative_to(DOCS).parts))


def test_pages_have_code_blocks():
    assert sum(len(blocks(p)) for p in PAGES) >= 15


def test_only_the_listed_blocks_are_not_run():
    marked = {(str(p.relative_to(DOCS)), code.splitlines()[0])
              for p in PAGES for _, code, skip in blocks(p) if skip}
    assert marked == NOT_RUN


@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)],
                         ids=lambda p: str(p.relative_to(DOCS)))
def test_page_code_runs(page, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for line, code, skip in blocks(page):
        if skip:
            continue
        try:
            exec(compile(code, f"{page.name}:{line}", "exec"), namespace)
        except Exception as e:  # name the block, keep the traceback
            raise AssertionError(f"{page.relative_to(DOCS)}, block at line {line} failed: "
                                 f"{type(e).__name__}: {e}") from e


def test_readme_sections_shown_in_the_docs_run(tmp_path, monkeypatch):
    """The README sections that getting_started.rst includes (docs/conf.py) run too."""
    import sys

    sys.path.insert(0, str(DOCS / "_ext"))
    import bench_tables

    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    md = bench_tables.markdown_sections(readme, ["Quick start", "A first posterior sample"])
    code = re.findall(r"```python\n(.*?)```", md, re.S)
    assert code, "the README sections shown in the docs have no Python block"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for block in code:
        exec(compile(block, "README.md", "exec"), namespace)
